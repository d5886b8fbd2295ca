package audit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Page sizes of List.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// recordTimeout bounds a best-effort Record.
const recordTimeout = 5 * time.Second

// Options configures [New].
type Options struct {
	// Store persists the chain (auditpg.New(pool)). Required.
	Store Store
	// FilePath is the JSONL mirror (AUDIT_LOG_PATH, e.g. "logs/audit.jsonl"); its directory is
	// created. Empty disables the file.
	FilePath string
	// Logger receives file write failures and failed Records; nil discards them.
	Logger *slog.Logger
	// Now is the clock stamping events without a Timestamp; nil means time.Now.
	Now func() time.Time
}

// Log is the audit log service. It is safe for concurrent use.
type Log struct {
	store  Store
	file   *fileSink
	logger *slog.Logger
	now    func() time.Time
	// turn admits one store append of this process at a time (a channel so waiting honours the
	// context). The store serialises appends anyway; holding the turn across the commit and the
	// file write also keeps this process's JSONL lines in chain order and uses one pool
	// connection instead of many waiting on the chain-head lock.
	turn chan struct{}

	// Group commit of Record: events wait in queue; one recorder at a time (the leader) appends
	// the waiting events in one transaction, then hands the lead to the first event still
	// waiting. Under a burst (a login flood audits every failure) this turns hundreds of
	// serialised transactions per second into a few, while each Record still returns only once
	// its event is stored.
	mu      sync.Mutex
	queue   []*pending
	leading bool
}

// pending is an event waiting in the group-commit queue.
type pending struct {
	e Event
	// done receives true when this recorder is to lead the next batch, false when its event was
	// handled (err says how).
	done chan bool
	err  error
}

// maxBatch bounds the events one group commit appends.
const maxBatch = 256

// New returns a Log. When opts.FilePath is set the file is opened now, and an error is returned
// if that fails (a misconfigured path shows at start-up); later write failures are only logged.
func New(opts Options) (*Log, error) {
	if opts.Store == nil {
		return nil, errors.New("audit: Options.Store is required")
	}
	l := &Log{store: opts.Store, logger: opts.Logger, now: opts.Now, turn: make(chan struct{}, 1)}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = timeNow
	}
	if opts.FilePath != "" {
		f, err := openFileSink(opts.FilePath)
		if err != nil {
			return nil, err
		}
		l.file = f
	}
	return l, nil
}

// Close closes the JSONL file. Appends after Close still reach the store; their file writes fail
// and are logged.
func (l *Log) Close() error {
	if l.file == nil {
		return nil
	}
	if err := l.file.close(); err != nil {
		return fmt.Errorf("audit: close log file: %w", err)
	}
	return nil
}

// prepare validates e and gives it an ID.
func prepare(e Event) (Event, error) {
	e, err := normalize(e)
	if err != nil {
		return Event{}, err
	}
	if e.ID == "" {
		e.ID = newEventID()
	}
	return e, nil
}

// Append validates e, chains it to the end of the log and stores it, then mirrors it to the JSONL
// file. It returns the stored entry (ID, Timestamp, Seq, PrevHash and Hash set; Details
// normalised). Invalid events fail with ErrInvalidEvent. The file write happens after the
// commit and its failure is logged, not returned: the database is the source of truth.
func (l *Log) Append(ctx context.Context, e Event) (Event, error) {
	e, err := prepare(e)
	if err != nil {
		return Event{}, err
	}
	stored, err := l.commit(ctx, []Event{e})
	if err != nil {
		return Event{}, fmt.Errorf("audit: append %s/%s: %w", e.Category, e.Action, err)
	}
	return stored[0], nil
}

// commit appends events (prepared) to the chain in one store transaction, in order, then mirrors
// them to the file.
func (l *Log) commit(ctx context.Context, events []Event) ([]Event, error) {
	select {
	case l.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-l.turn }()

	stored, err := l.store.Append(ctx, func(head Head) ([]Event, error) {
		out := make([]Event, len(events))
		// Stamped under the chain lock, so timestamps follow the chain order.
		now := l.now().UTC().Truncate(time.Microsecond)
		for i, ev := range events {
			if ev.Timestamp.IsZero() {
				ev.Timestamp = now
			}
			ev.Seq = head.Seq + 1
			ev.PrevHash = head.Hash
			h, err := ComputeHash(ev)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
			}
			ev.Hash = h
			out[i] = ev
			head = Head{Seq: ev.Seq, Hash: ev.Hash}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	if l.file != nil {
		for _, ev := range stored {
			if err := l.file.write(ev); err != nil {
				l.logger.ErrorContext(ctx, "audit: JSONL mirror write failed; the entry is stored in the database",
					slog.Int64("seq", ev.Seq), slog.String("event_id", ev.ID), slog.Any("error", err))
			}
		}
	}
	return stored, nil
}

// Record appends e on a best-effort basis for call sites that must not fail because of auditing
// (a denied request, a failed login): errors are logged, not returned. It detaches from ctx's
// cancellation (a client hanging up must not drop its failed login from the log) and bounds the
// append by its own timeout. Concurrent Records are group-committed (see Log); each returns once
// its own event is stored (or has failed).
func (l *Log) Record(ctx context.Context, e Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err := l.record(ctx, e); err != nil {
		l.logger.ErrorContext(ctx, "audit: event not recorded",
			slog.String("category", e.Category), slog.String("action", e.Action), slog.Any("error", err))
	}
}

func (l *Log) record(ctx context.Context, e Event) error {
	e, err := prepare(e)
	if err != nil {
		return err
	}
	me := &pending{e: e, done: make(chan bool, 1)}
	l.mu.Lock()
	l.queue = append(l.queue, me)
	lead := !l.leading
	l.leading = true
	l.mu.Unlock()
	// A follower waits without a deadline: the leader's append is bounded by the leader's own
	// timeout, and a follower that left could be handed the lead and leave the queue stuck.
	if !lead && !<-me.done {
		return me.err
	}
	// Leading: the queue starts with this event (it was empty, or the lead was handed to its
	// first waiter), so one batch covers it.
	l.mu.Lock()
	n := min(len(l.queue), maxBatch)
	batch := slices.Clone(l.queue[:n])
	l.queue = slices.Delete(l.queue, 0, n)
	l.mu.Unlock()

	l.commitBatch(ctx, batch)
	for _, p := range batch[1:] {
		p.done <- false
	}
	l.mu.Lock()
	if len(l.queue) > 0 {
		l.queue[0].done <- true // buffered: never blocks
	} else {
		l.leading = false
	}
	l.mu.Unlock()
	return me.err
}

// commitBatch appends the batch's events in one transaction and sets each one's err. When the
// batch fails as a whole (e.g. one duplicate event ID), each event is retried alone so that one
// bad event does not drop the others.
func (l *Log) commitBatch(ctx context.Context, batch []*pending) {
	events := make([]Event, len(batch))
	for i, p := range batch {
		events[i] = p.e
	}
	_, err := l.commit(ctx, events)
	if err == nil || len(batch) == 1 {
		for _, p := range batch {
			p.err = wrapAppend(p.e, err)
		}
		return
	}
	for _, p := range batch {
		_, err := l.commit(ctx, []Event{p.e})
		p.err = wrapAppend(p.e, err)
	}
}

func wrapAppend(e Event, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("audit: append %s/%s: %w", e.Category, e.Action, err)
}

// Filter selects entries for List. Zero-valued fields do not filter; all combine with AND.
type Filter struct {
	// UserID selects entries acted by that user (a UUID).
	UserID string
	// Actor selects entries whose acting principal (Event.UserID) is exactly this identity: a
	// user id, or a non-user one such as "operator/alice" or "svc/billing".
	Actor    string
	Category string
	Action   string
	// MinLevel keeps entries at least this severe (INFO < WARNING < SECURITY < ERROR).
	MinLevel Level
	// From is an inclusive lower bound of the event time; To an exclusive upper bound.
	From, To time.Time
	// PageSize: 0 means DefaultPageSize; capped at MaxPageSize.
	PageSize int
	// PageToken continues a previous List (its NextPageToken).
	PageToken string
}

// Page is one page of List results.
type Page struct {
	// Events, newest (highest Seq) first.
	Events []Event
	// NextPageToken continues the listing; empty on the last page.
	NextPageToken string
}

// List returns entries matching f, newest first, with keyset pagination on Seq (stable while
// entries are appended). A malformed page token or an inverted time range fails with
// ErrInvalidFilter.
func (l *Log) List(ctx context.Context, f Filter) (Page, error) {
	if err := ValidateActor(f.Actor); err != nil {
		return Page{}, fmt.Errorf("%w: actor %v", ErrInvalidFilter, err)
	}
	q := Query{UserID: f.UserID, Actor: f.Actor, Category: f.Category, Action: f.Action, From: f.From, To: f.To}
	if f.MinLevel != "" {
		if q.Levels = f.MinLevel.AtLeast(); q.Levels == nil {
			return Page{}, fmt.Errorf("%w: level %q", ErrInvalidFilter, f.MinLevel)
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return Page{}, fmt.Errorf("%w: to must be after from", ErrInvalidFilter)
	}
	size := f.PageSize
	switch {
	case size < 0:
		return Page{}, fmt.Errorf("%w: negative page size", ErrInvalidFilter)
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	if f.PageToken != "" {
		before, err := decodePageToken(f.PageToken)
		if err != nil {
			return Page{}, err
		}
		q.BeforeSeq = before
	}
	q.Limit = size + 1 // one more tells whether there is a next page
	events, err := l.store.List(ctx, q)
	if err != nil {
		return Page{}, fmt.Errorf("audit: list: %w", err)
	}
	var page Page
	if len(events) > size {
		events = events[:size]
		page.NextPageToken = encodePageToken(events[size-1].Seq)
	}
	page.Events = events
	return page, nil
}

// MaxActorLen bounds an actor filter (the stored user_id is at most 512 bytes; identities are
// far shorter).
const MaxActorLen = 128

// ValidateActor checks an actor filter: empty (no filter), or 1 to MaxActorLen characters of
// letters, digits and ._@:/- starting with a letter or digit, as identities are written
// ("operator/alice", "svc/billing", a user id).
func ValidateActor(actor string) error {
	if actor == "" {
		return nil
	}
	if len(actor) > MaxActorLen {
		return fmt.Errorf("must be at most %d characters", MaxActorLen)
	}
	for i, c := range actor {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && strings.ContainsRune("._@:/-", c):
		default:
			return errors.New(`must be an identity such as "operator/alice" or a user id`)
		}
	}
	return nil
}

// pageTokenPrefix versions the page token format.
const pageTokenPrefix = "audit1:"

func encodePageToken(beforeSeq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.FormatInt(beforeSeq, 10)))
}

func decodePageToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), pageTokenPrefix); ok {
			if seq, err := strconv.ParseInt(rest, 10, 64); err == nil && seq > 0 {
				return seq, nil
			}
		}
	}
	return 0, fmt.Errorf("%w: malformed page token", ErrInvalidFilter)
}

// Result is the outcome of Verify.
type Result struct {
	// OK is true when every checked entry re-hashes to its Hash and links to its predecessor.
	OK bool
	// Checked is the number of entries that verified before the first broken one (all of them
	// when OK).
	Checked int64
	// BrokenSeq is the sequence number of the first broken entry; 0 when OK. For a deleted
	// entry it is the missing sequence number.
	BrokenSeq int64
	// Broken is the first broken entry as stored; nil when OK or when the entry is missing.
	Broken *Event
	// Reason says why the entry is broken, e.g. "hash mismatch: the entry's content was changed".
	Reason string
	// HeadHash is the Hash of the last entry that verified (GenesisHash if none).
	HeadHash string
}

// Verify recomputes the chain for the entries from..to (inclusive; from 0 or 1 means the first
// entry, to 0 means the current end) in sequence order and reports the first broken entry:
//   - a changed entry (its Hash no longer matches its content),
//   - a changed link (its PrevHash is not the previous entry's Hash),
//   - a deleted entry (a gap in the sequence, or entries missing at the end of the chain).
//
// Entries appended while Verify runs are not checked. A broken chain is reported in Result, not
// as an error; errors are reserved for failures to read the store.
func (l *Log) Verify(ctx context.Context, from, to int64) (Result, error) {
	if from < 0 || to < 0 || (to > 0 && to < from) {
		return Result{}, fmt.Errorf("%w: invalid sequence range %d..%d", ErrInvalidFilter, from, to)
	}
	if from == 0 {
		from = 1
	}
	head, err := l.store.Head(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("audit: verify: read chain head: %w", err)
	}
	if to == 0 || to > head.Seq {
		to = head.Seq
	}
	res := Result{HeadHash: GenesisHash}
	if from > to { // empty range (empty chain, or from past the end)
		res.OK = true
		return res, nil
	}

	prevHash := GenesisHash
	if from > 1 {
		prev, err := l.store.Get(ctx, from-1)
		switch {
		case errors.Is(err, ErrNotFound):
			res.BrokenSeq, res.Reason = from-1, fmt.Sprintf("entry %d is missing", from-1)
			return res, nil
		case err != nil:
			return Result{}, fmt.Errorf("audit: verify: read entry %d: %w", from-1, err)
		}
		prevHash = prev.Hash
	}

	expect := from
	var last Event
	errBroken := errors.New("broken")
	err = l.store.Walk(ctx, from, to, func(e Event) error {
		var reason string
		switch {
		case e.Seq != expect:
			res.BrokenSeq = expect
			res.Reason = fmt.Sprintf("entry %d is missing (the next stored entry is %d)", expect, e.Seq)
			return errBroken
		case e.PrevHash != prevHash:
			reason = fmt.Sprintf("prev_hash does not match the hash of entry %d", e.Seq-1)
		default:
			h, err := ComputeHash(e)
			if err != nil {
				reason = fmt.Sprintf("entry cannot be encoded: %v", err)
			} else if h != e.Hash {
				reason = "hash mismatch: the entry's content was changed"
			}
		}
		if reason != "" {
			broken := e
			res.BrokenSeq, res.Broken, res.Reason = e.Seq, &broken, reason
			return errBroken
		}
		res.Checked++
		res.HeadHash = e.Hash
		prevHash = e.Hash
		last = e
		expect++
		return nil
	})
	switch {
	case errors.Is(err, errBroken):
		return res, nil
	case err != nil:
		return Result{}, fmt.Errorf("audit: verify: %w", err)
	}
	if expect <= to {
		res.BrokenSeq = expect
		if expect == to {
			res.Reason = fmt.Sprintf("entry %d is missing (the chain head is at %d)", expect, head.Seq)
		} else {
			res.Reason = fmt.Sprintf("entries %d to %d are missing (the chain head is at %d)", expect, to, head.Seq)
		}
		return res, nil
	}
	if to == head.Seq && prevHash != head.Hash {
		// The last entry is self-consistent but not the one the head recorded: it was replaced.
		res.BrokenSeq, res.Broken = last.Seq, &last
		res.Reason = fmt.Sprintf("entry %d does not match the chain head's hash", last.Seq)
		res.Checked--
		res.HeadHash = last.PrevHash
		return res, nil
	}
	res.OK = true
	return res, nil
}

// newEventID returns 16 random lower-case hex characters (the manual's event_id).
func newEventID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
