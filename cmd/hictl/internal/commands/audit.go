package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// AuditTimeLayout is the manual's audit timestamp: UTC with milliseconds,
// "2025-10-03T12:00:00.000Z" (the auth service writes logs/audit.jsonl with it).
const AuditTimeLayout = "2006-01-02T15:04:05.000Z"

// DefaultFollowInterval is how often `audit tail --follow` asks for new events.
const DefaultFollowInterval = 2 * time.Second

// auditPageSize is the page size of follow polls.
const auditPageSize = 100

// auditLine is one audit event in the manual's JSON format (logs/audit.jsonl):
// exactly its fields, in its order.
type auditLine struct {
	Timestamp string         `json:"timestamp"`
	EventID   string         `json:"event_id"`
	Level     string         `json:"level"`
	Category  string         `json:"category"`
	Action    string         `json:"action"`
	UserID    string         `json:"user_id"`
	UserEmail string         `json:"user_email"`
	UserRole  string         `json:"user_role"`
	IPAddress string         `json:"ip_address"`
	Status    string         `json:"status"`
	Details   map[string]any `json:"details"`
}

func newAuditLine(e *authv1.AuditEvent) auditLine {
	details := e.GetDetails().AsMap()
	if details == nil {
		details = map[string]any{}
	}
	ts := ""
	if e.GetTimestamp() != nil {
		ts = e.GetTimestamp().AsTime().UTC().Format(AuditTimeLayout)
	}
	return auditLine{
		Timestamp: ts,
		EventID:   e.GetEventId(),
		Level:     auditLevelName(e.GetLevel()),
		Category:  e.GetCategory(),
		Action:    e.GetAction(),
		UserID:    e.GetUserId(),
		UserEmail: e.GetUserEmail(),
		UserRole:  e.GetUserRole(),
		IPAddress: e.GetIpAddress(),
		Status:    e.GetStatus(),
		Details:   details,
	}
}

// auditLevelName is the manual's level: INFO, WARNING, SECURITY, ERROR.
func auditLevelName(l authv1.AuditLevel) string {
	if l == authv1.AuditLevel_AUDIT_LEVEL_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(l.String(), "AUDIT_LEVEL_")
}

// parseAuditLevel reads info|warning|security|error (any case).
func parseAuditLevel(s string) (authv1.AuditLevel, error) {
	v, ok := authv1.AuditLevel_value["AUDIT_LEVEL_"+strings.ToUpper(strings.TrimSpace(s))]
	if !ok || v == 0 {
		return 0, usageError{fmt.Errorf("--level %q: want info, warning, security or error", s)}
	}
	return authv1.AuditLevel(v), nil
}

// writeAuditLines writes events as JSON lines, oldest (lowest sequence) first.
func writeAuditLines(w io.Writer, events []*authv1.AuditEvent) error {
	slices.SortFunc(events, func(a, b *authv1.AuditEvent) int {
		switch {
		case a.GetSequence() < b.GetSequence():
			return -1
		case a.GetSequence() > b.GetSequence():
			return 1
		}
		return 0
	})
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, e := range events {
		if err := enc.Encode(newAuditLine(e)); err != nil {
			return fmt.Errorf("encode audit event %s: %w", e.GetEventId(), err)
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func newAuditCmd(s IO) *cobra.Command {
	var af authFlags
	cmd := newGroupCmd("audit", "Read and verify the tamper-evident audit log",
		`audit reads the hash-chained audit log of the auth service over gRPC with the operator
certificate: tail prints events as JSON lines in the manual's audit.jsonl format, verify
recomputes the hash chain.`)
	af.registerOn(cmd)
	cmd.AddCommand(newAuditTailCmd(s, &af), newAuditVerifyCmd(s, &af))
	return cmd
}

// sinceTime reads --since: an RFC 3339 time, or a duration back from now ("24h", "7d").
func sinceTime(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := parseDuration(v)
	if err != nil || d <= 0 {
		return time.Time{}, usageError{fmt.Errorf("--since %q: want an RFC 3339 time (2025-10-03T12:00:00Z) or a duration back from now (24h, 7d)", v)}
	}
	return now.Add(-d), nil
}

func newAuditTailCmd(s IO, af *authFlags) *cobra.Command {
	var (
		lines                    int
		follow                   bool
		userID, category, action string
		actor, level, since      string
		interval                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the latest audit events as JSON lines (--follow for new ones)",
		Long: `tail prints the last -n audit events matching the filters, oldest first, one JSON object per
line in the manual's audit.jsonl format (timestamp, event_id, level, category, action, user_id,
user_email, user_role, ip_address, status, details), so the manual's jq queries work on it.
--follow keeps polling every 2 s for newer events until interrupted (Ctrl-C).`,
		Example: `  hictl audit tail -n 100
  hictl audit tail --action login_failed --since 24h
  hictl audit tail --follow --level security | jq .
  hictl audit tail --user-id 5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f -n 20
  hictl audit tail --actor operator/alice`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lines < 0 {
				return usageError{fmt.Errorf("-n %d: want 0 or more", lines)}
			}
			if lines == 0 && !follow {
				return usageError{fmt.Errorf("-n 0 prints nothing without --follow")}
			}
			if interval <= 0 {
				return usageError{fmt.Errorf("--poll-interval must be positive")}
			}
			if err := checkUUID("--user-id", userID, true); err != nil {
				return err
			}
			filter := &authv1.ListAuditEventsRequest{UserId: userID, Actor: actor, Category: category, Action: action}
			if level != "" {
				l, err := parseAuditLevel(level)
				if err != nil {
					return err
				}
				filter.Level = l
			}
			if since != "" {
				t, err := sinceTime(since, time.Now())
				if err != nil {
					return err
				}
				filter.From = timestamppb.New(t)
			}
			return withAuth(cmd, s, af, nil, func(ctx context.Context, c *authClient) error {
				t := auditTail{c: c, filter: filter, w: cmd.OutOrStdout(), errw: cmd.ErrOrStderr()}
				last, err := t.initial(ctx, lines)
				if err != nil {
					return err
				}
				if !follow {
					return nil
				}
				return t.follow(ctx, last, interval)
			})
		},
	}
	f := cmd.Flags()
	f.IntVarP(&lines, "lines", "n", 100, "number of latest events to print (0 with --follow: only new ones)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new events until interrupted")
	f.StringVar(&userID, "user-id", "", "only events of this acting user (UUID)")
	f.StringVar(&actor, "actor", "", "only events of this acting identity as stored: a user id, operator/<name> or svc/<name>")
	f.StringVar(&category, "category", "", "only this category, e.g. authentication")
	f.StringVar(&action, "action", "", "only this action (login, login_failed, role_change, ...)")
	f.StringVar(&level, "level", "", "minimum level: info, warning, security or error")
	f.StringVar(&since, "since", "", "only events at or after this RFC 3339 time or this long ago (24h, 7d)")
	f.DurationVar(&interval, "poll-interval", DefaultFollowInterval, "how often --follow asks for new events")
	_ = f.MarkHidden("poll-interval")
	return cmd
}

// auditTail lists audit events matching filter.
type auditTail struct {
	c      *authClient
	filter *authv1.ListAuditEventsRequest
	w      io.Writer
	errw   io.Writer // warnings while following
}

// list fetches one page (newest first).
func (t auditTail) list(ctx context.Context, pageSize int32, token string) (*authv1.ListAuditEventsResponse, error) {
	req := &authv1.ListAuditEventsRequest{
		PageSize:  pageSize,
		PageToken: token,
		UserId:    t.filter.GetUserId(),
		Actor:     t.filter.GetActor(),
		Category:  t.filter.GetCategory(),
		Action:    t.filter.GetAction(),
		Level:     t.filter.GetLevel(),
		From:      t.filter.GetFrom(),
	}
	ctx, cancel := t.c.callCtx(ctx)
	defer cancel()
	resp, err := t.c.ListAuditEvents(ctx, req)
	if err != nil {
		return nil, t.c.wrap("list audit events", err)
	}
	return resp, nil
}

// initial prints the newest n events (oldest first) and returns the highest
// sequence seen. With n == 0 it prints nothing and only learns that sequence.
func (t auditTail) initial(ctx context.Context, n int) (int64, error) {
	pageSize := int32(min(max(n, 1), 1000))
	var events []*authv1.AuditEvent
	token := ""
	seen := map[string]bool{}
	for {
		resp, err := t.list(ctx, pageSize, token)
		if err != nil {
			return 0, err
		}
		events = append(events, resp.GetAuditEvents()...)
		token = resp.GetNextPageToken()
		if len(events) >= max(n, 1) || token == "" {
			break
		}
		if seen[token] {
			return 0, errors.New("list audit events: the server returned the same page token twice")
		}
		seen[token] = true
	}
	var last int64
	for _, e := range events {
		last = max(last, e.GetSequence())
	}
	if len(events) > n {
		events = events[:n]
	}
	return last, writeAuditLines(t.w, events)
}

// follow polls every interval for events after sequence last and prints
// them, until ctx ends (which is how it is meant to stop: nil).
func (t auditTail) follow(ctx context.Context, last int64, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		fresh, err := t.newerThan(ctx, last)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		case transient(err):
			// Keep following through a restart of the auth service.
			fmt.Fprintf(t.errw, "hictl: %v (retrying)\n", err)
			continue
		default:
			return err
		}
		for _, e := range fresh {
			last = max(last, e.GetSequence())
		}
		if err := writeAuditLines(t.w, fresh); err != nil {
			return err
		}
	}
}

// newerThan pages newest-first until it meets an event at or below
// sequence last, and returns the events above it.
func (t auditTail) newerThan(ctx context.Context, last int64) ([]*authv1.AuditEvent, error) {
	var fresh []*authv1.AuditEvent
	token := ""
	seen := map[string]bool{}
	for {
		resp, err := t.list(ctx, auditPageSize, token)
		if err != nil {
			return nil, err
		}
		reached := false
		for _, e := range resp.GetAuditEvents() {
			if e.GetSequence() <= last {
				reached = true
				continue
			}
			fresh = append(fresh, e)
		}
		token = resp.GetNextPageToken()
		if reached || token == "" {
			return fresh, nil
		}
		if seen[token] {
			return nil, errors.New("list audit events: the server returned the same page token twice")
		}
		seen[token] = true
	}
}

// transient reports whether err is a failure worth retrying (the service is
// unavailable or slow).
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// verifyView is `audit verify -o json`.
type verifyView struct {
	Valid               bool   `json:"valid"`
	CheckedCount        int64  `json:"checked_count"`
	FirstBrokenSequence int64  `json:"first_broken_sequence,omitempty"`
	FirstBrokenEventID  string `json:"first_broken_event_id,omitempty"`
	Reason              string `json:"reason,omitempty"`
	HeadHash            string `json:"head_hash,omitempty"`
}

func newAuditVerifyCmd(s IO, af *authFlags) *cobra.Command {
	var (
		out      outputFlag
		from, to int64
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit hash chain; exit 1 naming the first broken entry",
		Long: `verify asks the auth service to recompute the audit log's hash chain (each entry's hash, and
its link to the previous entry). It prints OK with the number of entries checked, or the first
entry whose hash or link does not match, and then exits 1.`,
		Example: `  hictl audit verify
  hictl audit verify --from-seq 1000 -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from < 0 || to < 0 {
				return usageError{fmt.Errorf("--from-seq and --to-seq must not be negative")}
			}
			if to != 0 && to < from {
				return usageError{fmt.Errorf("--to-seq %d is before --from-seq %d", to, from)}
			}
			return withAuth(cmd, s, af, &out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.VerifyAuditChain(ctx, &authv1.VerifyAuditChainRequest{FromSequence: from, ToSequence: to})
				if err != nil {
					return c.wrap("verify audit chain", err)
				}
				w := cmd.OutOrStdout()
				if out.json() {
					err = writeJSON(w, verifyView{
						Valid:               resp.GetValid(),
						CheckedCount:        resp.GetCheckedCount(),
						FirstBrokenSequence: resp.GetFirstBrokenSequence(),
						FirstBrokenEventID:  resp.GetFirstBrokenEventId(),
						Reason:              resp.GetReason(),
						HeadHash:            resp.GetHeadHash(),
					})
				} else if resp.GetValid() {
					_, err = fmt.Fprintf(w, "OK: audit chain intact, %d entries checked (head %s)\n", resp.GetCheckedCount(), orDash(resp.GetHeadHash()))
				} else {
					_, err = fmt.Fprintf(w, "BROKEN: audit entry %d (event %s): %s\nChecked: %d entries\n",
						resp.GetFirstBrokenSequence(), orDash(resp.GetFirstBrokenEventId()), orDash(resp.GetReason()), resp.GetCheckedCount())
				}
				if err != nil {
					return err
				}
				if !resp.GetValid() {
					return exitError{fmt.Errorf("audit chain broken at entry %d (event %s): %s",
						resp.GetFirstBrokenSequence(), orDash(resp.GetFirstBrokenEventId()), orDash(resp.GetReason())), ExitError}
				}
				return nil
			})
		},
	}
	out.register(cmd)
	cmd.Flags().Int64Var(&from, "from-seq", 0, "first sequence to check (default: the start)")
	cmd.Flags().Int64Var(&to, "to-seq", 0, "last sequence to check (default: the end)")
	return cmd
}
