package auditpg_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hashinsight/platform/pkg/postgres"
	"github.com/hashinsight/platform/pkg/postgres/pgtest"
	"github.com/hashinsight/platform/services/auth/internal/audit"
	"github.com/hashinsight/platform/services/auth/internal/audit/auditpg"
	"github.com/hashinsight/platform/services/auth/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	pool  *pgxpool.Pool
	store *auditpg.Store
	log   *audit.Log
	clock *fakeClock
	path  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t, pgtest.Options{Schema: "auth", Migrations: migrations.FS, Role: true})
	f := &fixture{
		pool:  pool,
		store: auditpg.New(pool),
		clock: &fakeClock{now: time.Date(2025, 10, 3, 12, 0, 0, 0, time.UTC)},
		path:  filepath.Join(t.TempDir(), "logs", "audit.jsonl"),
	}
	var err error
	f.log, err = audit.New(audit.Options{Store: f.store, FilePath: f.path, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.log.Close() })
	return f
}

func (f *fixture) append(t *testing.T, e audit.Event) audit.Event {
	t.Helper()
	got, err := f.log.Append(t.Context(), e)
	if err != nil {
		t.Fatalf("Append(%s): %v", e.Action, err)
	}
	return got
}

// appendN appends n login events for alternating users, one second apart.
func (f *fixture) appendN(t *testing.T, n int) []audit.Event {
	t.Helper()
	var out []audit.Event
	for i := range n {
		out = append(out, f.append(t, audit.Event{
			Category: audit.CategoryAuthentication, Action: audit.ActionLogin,
			UserID: fmt.Sprintf("user-%d", i%2), UserEmail: fmt.Sprintf("u%d@example.com", i%2),
			IPAddress: "192.168.1.100", Details: map[string]any{"login_method": "password", "n": i},
		}))
		f.clock.Advance(time.Second)
	}
	return out
}

// tamper runs sql with the append-only trigger disabled, as an attacker holding the schema
// owner's credentials could.
func (f *fixture) tamper(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx := t.Context()
	conn, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, stmt := range []string{
		"ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
	if tag.RowsAffected() != 1 {
		t.Fatalf("tamper affected %d rows, want 1", tag.RowsAffected())
	}
	if _, err := conn.Exec(ctx, "ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"); err != nil {
		t.Fatal(err)
	}
}

func verifyOK(t *testing.T, l *audit.Log, want int64) audit.Result {
	t.Helper()
	res, err := l.Verify(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Checked != want || res.BrokenSeq != 0 {
		t.Fatalf("Verify = %+v, want OK with %d checked", res, want)
	}
	return res
}

func TestAppendChains(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	events := f.appendN(t, 5)
	prev := audit.GenesisHash
	for i, e := range events {
		if e.Seq != int64(i+1) || e.PrevHash != prev || len(e.Hash) != 64 || len(e.ID) != 16 {
			t.Fatalf("event %d = seq %d prev %s hash %s id %s", i, e.Seq, e.PrevHash, e.Hash, e.ID)
		}
		if want := time.Date(2025, 10, 3, 12, 0, i, 0, time.UTC); !e.Timestamp.Equal(want) {
			t.Fatalf("event %d timestamp %v, want %v", i, e.Timestamp, want)
		}
		if e.Level != audit.LevelInfo || e.Status != audit.StatusSuccess {
			t.Fatalf("defaults not applied: %+v", e)
		}
		prev = e.Hash
	}
	// What is read back equals what Append returned (and so re-hashes identically).
	for _, want := range events {
		got, err := f.store.Get(t.Context(), want.Seq)
		if err != nil {
			t.Fatal(err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Fatalf("stored entry differs:\n got %s\nwant %s", gj, wj)
		}
	}
	res := verifyOK(t, f.log, 5)
	if res.HeadHash != events[4].Hash {
		t.Fatalf("HeadHash %s, want %s", res.HeadHash, events[4].Hash)
	}
	if _, err := f.store.Get(t.Context(), 99); !errors.Is(err, audit.ErrNotFound) {
		t.Fatalf("Get(99) err = %v, want ErrNotFound", err)
	}
}

func TestAppendRejects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.log.Append(ctx, audit.Event{Action: "x"}); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Fatalf("missing category: err = %v", err)
	}
	e := f.append(t, audit.Event{Category: "c", Action: "a", ID: "0123456789abcdef"})
	if e.ID != "0123456789abcdef" {
		t.Fatalf("ID = %s", e.ID)
	}
	if _, err := f.log.Append(ctx, audit.Event{Category: "c", Action: "a", ID: "0123456789abcdef"}); !errors.Is(err, audit.ErrDuplicateEventID) {
		t.Fatalf("duplicate id: err = %v", err)
	}
	// Nothing half-written: the chain is still one entry long and valid.
	verifyOK(t, f.log, 1)
}

func TestAppendOnlyTrigger(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.appendN(t, 2)
	ctx := t.Context()
	for _, sql := range []string{
		"UPDATE audit_events SET details = '{}' WHERE seq = 1",
		"DELETE FROM audit_events WHERE seq = 2",
		"TRUNCATE audit_events",
	} {
		if _, err := f.pool.Exec(ctx, sql); !postgres.IsInsufficientPrivilege(err) {
			t.Errorf("%s: err = %v, want insufficient_privilege", sql, err)
		}
	}
	verifyOK(t, f.log, 2)
}

func TestConcurrentAppendsFormOneChain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Each goroutine gets its own Log, standing in for a replica: 20 transactions race for the
	// chain head at once (bounded by the pool's 8 connections).
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		l, err := audit.New(audit.Options{Store: auditpg.New(f.pool)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			_, err := l.Append(context.Background(), audit.Event{
				Category: audit.CategoryAuthentication, Action: audit.ActionLoginFailed, Level: audit.LevelSecurity,
				Status: audit.StatusFailure, Details: map[string]any{"i": i},
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, f.log, n)
	page, err := f.log.List(t.Context(), audit.Filter{PageSize: n})
	if err != nil {
		t.Fatal(err)
	}
	var is []float64
	for i, e := range page.Events {
		if e.Seq != int64(n-i) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		is = append(is, e.Details["i"].(float64))
	}
	slices.Sort(is)
	for i, v := range is {
		if v != float64(i) {
			t.Fatalf("details.i values %v, want 0..%d once each", is, n-1)
		}
	}
}

// TestConcurrentRecordsGroupCommit: many concurrent Records (a login flood) are group-committed;
// every one is stored exactly once, in one valid chain, and mirrored to the file, and each Record
// returns only after its own event is stored. A duplicate event ID fails alone, not its batch.
func TestConcurrentRecordsGroupCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const n = 200
	dup := f.append(t, audit.Event{Category: audit.CategoryAuthentication, Action: audit.ActionLogin})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := audit.Event{
				Category: audit.CategoryAuthentication, Action: audit.ActionLoginFailed, Level: audit.LevelSecurity,
				Status: audit.StatusFailure, Details: map[string]any{"i": i},
			}
			if i == n/2 {
				e.ID = dup.ID // refused (duplicate), must not take the others with it
			}
			f.log.Record(context.Background(), e)
			if i == n/2 {
				return
			}
			page, err := f.log.List(context.Background(), audit.Filter{Action: audit.ActionLoginFailed, PageSize: audit.MaxPageSize})
			if err != nil {
				t.Error(err)
				return
			}
			found := false
			for _, e := range page.Events {
				found = found || e.Details["i"] == float64(i)
			}
			if !found {
				t.Errorf("Record %d returned before its event was stored", i)
			}
		})
	}
	wg.Wait()
	verifyOK(t, f.log, n)
	page, err := f.log.List(t.Context(), audit.Filter{Action: audit.ActionLoginFailed, PageSize: audit.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[float64]bool{}
	for _, e := range page.Events {
		seen[e.Details["i"].(float64)] = true
	}
	if len(page.Events) != n-1 || len(seen) != n-1 || seen[n/2] {
		t.Fatalf("%d login_failed entries (%d distinct), want %d without the duplicate", len(page.Events), len(seen), n-1)
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(b, []byte("\n")); lines != n {
		t.Errorf("%d JSONL lines, want %d", lines, n)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	base := f.clock.Now()
	add := func(userID, category, action string, level audit.Level) {
		f.append(t, audit.Event{UserID: userID, Category: category, Action: action, Level: level})
		f.clock.Advance(time.Minute)
	}
	add("u1", audit.CategoryAuthentication, audit.ActionLogin, audit.LevelInfo)               // 1 @ +0m
	add("u2", audit.CategoryAuthentication, audit.ActionLoginFailed, audit.LevelSecurity)     // 2 @ +1m
	add("u1", audit.CategoryAPIKeyManagement, audit.ActionAPIKeyCreate, audit.LevelInfo)      // 3 @ +2m
	add("u1", audit.CategoryAuthorization, audit.ActionPermissionDenied, audit.LevelSecurity) // 4 @ +3m
	add("u2", audit.CategoryUserManagement, audit.ActionRoleChange, audit.LevelWarning)       // 5 @ +4m
	add("", audit.CategoryAuthentication, audit.ActionLoginFailed, audit.LevelSecurity)       // 6 @ +5m
	add("u1", audit.CategoryAuthentication, audit.ActionLogout, audit.LevelInfo)              // 7 @ +6m
	add("u2", audit.CategoryConfiguration, "settings_change", audit.LevelError)               // 8 @ +7m

	tests := []struct {
		name   string
		filter audit.Filter
		want   []int64
	}{
		{"all, newest first", audit.Filter{}, []int64{8, 7, 6, 5, 4, 3, 2, 1}},
		{"user", audit.Filter{UserID: "u1"}, []int64{7, 4, 3, 1}},
		{"category", audit.Filter{Category: audit.CategoryAuthentication}, []int64{7, 6, 2, 1}},
		{"action", audit.Filter{Action: audit.ActionLoginFailed}, []int64{6, 2}},
		{"user and category", audit.Filter{UserID: "u1", Category: audit.CategoryAuthentication}, []int64{7, 1}},
		{"min level warning", audit.Filter{MinLevel: audit.LevelWarning}, []int64{8, 6, 5, 4, 2}},
		{"min level security", audit.Filter{MinLevel: audit.LevelSecurity}, []int64{8, 6, 4, 2}},
		{"from inclusive", audit.Filter{From: base.Add(5 * time.Minute)}, []int64{8, 7, 6}},
		{"to exclusive", audit.Filter{To: base.Add(2 * time.Minute)}, []int64{2, 1}},
		{"range", audit.Filter{From: base.Add(time.Minute), To: base.Add(4 * time.Minute)}, []int64{4, 3, 2}},
		{"range and action", audit.Filter{Action: audit.ActionLoginFailed, From: base.Add(2 * time.Minute)}, []int64{6}},
		{"nothing", audit.Filter{UserID: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Page through with page size 3 and collect.
			var got []int64
			flt := tt.filter
			flt.PageSize = 3
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("too many pages")
				}
				page, err := f.log.List(t.Context(), flt)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Events) > 3 {
					t.Fatalf("page of %d entries, page size 3", len(page.Events))
				}
				for _, e := range page.Events {
					got = append(got, e.Seq)
				}
				if page.NextPageToken == "" {
					break
				}
				flt.PageToken = page.NextPageToken
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	for _, bad := range []audit.Filter{
		{PageToken: "garbage"},
		{MinLevel: "DEBUG"},
		{From: base, To: base},
		{PageSize: -1},
	} {
		if _, err := f.log.List(t.Context(), bad); !errors.Is(err, audit.ErrInvalidFilter) {
			t.Errorf("List(%+v) err = %v, want ErrInvalidFilter", bad, err)
		}
	}
	// Page sizes above the maximum are capped, not rejected.
	if page, err := f.log.List(t.Context(), audit.Filter{PageSize: 100000}); err != nil || len(page.Events) != 8 {
		t.Fatalf("big page: %d entries, %v", len(page.Events), err)
	}
}

func TestVerifyDetectsChangedDetails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	events := f.appendN(t, 10)
	verifyOK(t, f.log, 10)

	// One byte of entry 7's details: "password" → "passwore".
	f.tamper(t, `UPDATE audit_events SET details = jsonb_set(details, '{login_method}', '"passwore"') WHERE seq = 7`)

	res, err := f.log.Verify(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.BrokenSeq != 7 || res.Broken == nil || res.Broken.ID != events[6].ID || res.Checked != 6 {
		t.Fatalf("Verify = %+v, want entry 7 (%s) broken after 6 checked", res, events[6].ID)
	}
	if !strings.Contains(res.Reason, "hash mismatch") {
		t.Fatalf("reason %q", res.Reason)
	}
	if res.HeadHash != events[5].Hash {
		t.Fatalf("HeadHash is not entry 6's hash")
	}
	// A range that stops before the change is still valid; one that starts after it too.
	if res, _ := f.log.Verify(t.Context(), 1, 6); !res.OK || res.Checked != 6 {
		t.Fatalf("Verify(1,6) = %+v", res)
	}
	if res, _ := f.log.Verify(t.Context(), 8, 0); !res.OK || res.Checked != 3 {
		t.Fatalf("Verify(8,0) = %+v", res)
	}
	if res, _ := f.log.Verify(t.Context(), 5, 9); res.OK || res.BrokenSeq != 7 {
		t.Fatalf("Verify(5,9) = %+v", res)
	}
}

func TestVerifyDetects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		tamper     string
		wantSeq    int64
		wantReason string
		wantEntry  bool
	}{
		{"changed user", `UPDATE audit_events SET user_email = 'x@example.com' WHERE seq = 3`, 3, "hash mismatch", true},
		{"changed timestamp", `UPDATE audit_events SET ts = ts + interval '1 microsecond' WHERE seq = 2`, 2, "hash mismatch", true},
		{"changed level", `UPDATE audit_events SET level = 'ERROR' WHERE seq = 1`, 1, "hash mismatch", true},
		{"changed prev_hash", `UPDATE audit_events SET prev_hash = repeat('1', 64) WHERE seq = 4`, 4, "prev_hash", true},
		{"re-hashed entry", `UPDATE audit_events SET hash = repeat('2', 64) WHERE seq = 2`, 2, "hash mismatch", true},
		{"deleted entry", `DELETE FROM audit_events WHERE seq = 3`, 3, "entry 3 is missing", false},
		{"deleted first entry", `DELETE FROM audit_events WHERE seq = 1`, 1, "entry 1 is missing", false},
		{"deleted last entry", `DELETE FROM audit_events WHERE seq = 5`, 5, "entry 5 is missing", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.appendN(t, 5)
			f.tamper(t, tt.tamper)
			res, err := f.log.Verify(t.Context(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK || res.BrokenSeq != tt.wantSeq || !strings.Contains(res.Reason, tt.wantReason) ||
				(res.Broken != nil) != tt.wantEntry || res.Checked != tt.wantSeq-1 {
				t.Fatalf("Verify = %+v (reason %q), want seq %d reason %q", res, res.Reason, tt.wantSeq, tt.wantReason)
			}
			if tt.wantEntry && res.Broken.Seq != tt.wantSeq {
				t.Fatalf("Broken.Seq = %d", res.Broken.Seq)
			}
		})
	}
}

func TestVerifyReplacedLastEntry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	events := f.appendN(t, 3)
	// Replace entry 3 with a self-consistent forgery: its hash is recomputed correctly, only the
	// chain head still remembers the original.
	forged := events[2]
	forged.UserEmail = "someone-else@example.com"
	h, err := audit.ComputeHash(forged)
	if err != nil {
		t.Fatal(err)
	}
	f.tamper(t, `UPDATE audit_events SET user_email = $1, hash = $2 WHERE seq = 3`, forged.UserEmail, h)
	res, err := f.log.Verify(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || res.BrokenSeq != 3 || res.Broken == nil || res.Checked != 2 {
		t.Fatalf("Verify = %+v", res)
	}
}

func TestVerifyEmptyAndRanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	verifyOK(t, f.log, 0)
	f.appendN(t, 4)
	if res, err := f.log.Verify(t.Context(), 2, 3); err != nil || !res.OK || res.Checked != 2 {
		t.Fatalf("Verify(2,3) = %+v, %v", res, err)
	}
	if res, err := f.log.Verify(t.Context(), 10, 0); err != nil || !res.OK || res.Checked != 0 {
		t.Fatalf("Verify(10,0) = %+v, %v", res, err)
	}
	if _, err := f.log.Verify(t.Context(), 3, 2); !errors.Is(err, audit.ErrInvalidFilter) {
		t.Fatalf("Verify(3,2) err = %v", err)
	}
}

func TestJSONLMirror(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.now = time.Date(2025, 10, 3, 12, 0, 0, 123456789, time.UTC)
	stored := []audit.Event{
		f.append(t, audit.Event{
			Level: audit.LevelInfo, Category: audit.CategoryAuthentication, Action: audit.ActionLogin,
			UserID: "123", UserEmail: "user@example.com", UserRole: "admin", IPAddress: "192.168.1.100",
			Status: audit.StatusSuccess, Details: map[string]any{"login_method": "password", "two_factor": true},
		}),
		f.append(t, audit.Event{
			Level: audit.LevelSecurity, Category: audit.CategoryAuthentication, Action: audit.ActionLoginFailed,
			UserEmail: "admin@hashinsight.net", IPAddress: "10.0.0.1", Status: audit.StatusFailure,
		}),
	}
	if err := f.log.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
	}
	file, err := os.Open(f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	wantKeys := []string{"timestamp", "event_id", "level", "category", "action", "user_id", "user_email",
		"user_role", "ip_address", "status", "details"}
	tsRE := regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
	sc := bufio.NewScanner(file)
	var i int
	for ; sc.Scan(); i++ {
		line := sc.Bytes()
		if keys := topLevelKeys(t, line); !slices.Equal(keys, wantKeys) {
			t.Fatalf("line %d keys %v, want %v", i, keys, wantKeys)
		}
		var got audit.FileLine
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		want := audit.ToFileLine(stored[i])
		if !tsRE.MatchString(got.Timestamp) {
			t.Fatalf("timestamp %q is not the manual's format", got.Timestamp)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Fatalf("line %d\n got %s\nwant %s", i, gj, wj)
		}
	}
	if i != 2 {
		t.Fatalf("%d lines, want 2", i)
	}
	first := audit.ToFileLine(stored[0])
	if first.Timestamp != "2025-10-03T12:00:00.123Z" || first.Details["two_factor"] != true {
		t.Fatalf("first line %+v", first)
	}

	// After Close the database still records; the failed file write is only logged.
	if _, err := f.log.Append(t.Context(), audit.Event{Category: "c", Action: "a"}); err != nil {
		t.Fatalf("append after Close: %v", err)
	}
}

// topLevelKeys returns the keys of a JSON object in document order.
func topLevelKeys(t *testing.T, line []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", line)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestFileOpenFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// The log's directory would have to be a regular file.
	if _, err := audit.New(audit.Options{Store: auditpg.New(nil), FilePath: filepath.Join(blocker, "audit.jsonl")}); err == nil {
		t.Fatal("New succeeded with an unusable path")
	}
}
