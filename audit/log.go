package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/callvault/callvault"
)

// DefaultMaxBatch is how many events one AppendAudit call carries at most.
const DefaultMaxBatch = 512

// unavailableMessage is what a caller (and, through it, a user) is told
// when the trail cannot be written. The cause is kept for operators.
const unavailableMessage = "the audit trail cannot be written; the action was not carried out"

// LogOptions configures a Log. Zero values select the defaults.
type LogOptions struct {
	Now      callvault.Clock // default time.Now
	MaxBatch int             // events per AppendAudit call; default DefaultMaxBatch
	Logger   *slog.Logger    // default slog.Default()
}

// Log is the audit service: it implements callvault.Auditor with group
// commit (see the package documentation). It is safe for concurrent use.
type Log struct {
	store    callvault.AuditStore
	now      callvault.Clock
	maxBatch int
	logger   *slog.Logger

	mu     sync.Mutex
	queue  []*pending // waiting for the writer, in arrival order
	closed bool
	wake   chan struct{} // capacity 1: "the queue or closed changed"
	done   chan struct{} // closed when the writer has exited
}

// pending is one queued event. The writer works on ev, a copy, so that a
// caller who gave up waiting (ctx done) never races with the store setting
// Seq and hashes on its event.
type pending struct {
	ev     callvault.AuditEvent
	result chan error // capacity 1; receives exactly once
}

var _ callvault.Auditor = (*Log)(nil)

// NewLog starts a Log writing to store. Call Close to stop it.
func NewLog(store callvault.AuditStore, opts LogOptions) *Log {
	l := &Log{
		store:    store,
		now:      opts.Now,
		maxBatch: opts.MaxBatch,
		logger:   opts.Logger,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	go l.write()
	return l
}

// Record validates e, sets its Time from the clock if it is zero (and in
// any case to UTC, truncated to the millisecond: what the trail keeps), and
// returns once e is durable in the trail, with e.Seq, e.PrevHash and e.Hash
// set. An invalid event is a bug in the caller and is
// refused with EINVALID. Any other error is EUNAVAILABLE: the action e
// describes must not be carried out or reported as done.
//
// If ctx ends first Record returns EUNAVAILABLE wrapping ctx.Err(). An event
// still queued is then dropped, but one already handed to the store may yet
// be written: the trail can hold an entry for an action that was then not
// carried out, never the reverse.
func (l *Log) Record(ctx context.Context, e *callvault.AuditEvent) error {
	if err := validate(e); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	if err := ctx.Err(); err != nil {
		return callvault.Wrap(callvault.EUNAVAILABLE, err, unavailableMessage)
	}

	p := &pending{ev: *e, result: make(chan error, 1)}
	p.ev.Details = maps.Clone(e.Details)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return callvault.Wrap(callvault.EUNAVAILABLE, errClosed, unavailableMessage)
	}
	l.queue = append(l.queue, p)
	l.mu.Unlock()
	l.signal()

	select {
	case err := <-p.result:
		if err != nil {
			return err
		}
		e.Seq, e.PrevHash, e.Hash = p.ev.Seq, p.ev.PrevHash, p.ev.Hash
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		i := slices.Index(l.queue, p)
		if i >= 0 {
			l.queue = slices.Delete(l.queue, i, i+1)
		}
		l.mu.Unlock()
		cause := ctx.Err()
		if i < 0 {
			// The writer has it. If it is done, report what happened;
			// otherwise the event may still be written, and its result
			// goes unread into the buffered channel.
			select {
			case err := <-p.result:
				if err == nil {
					e.Seq, e.PrevHash, e.Hash = p.ev.Seq, p.ev.PrevHash, p.ev.Hash
				}
				return err
			default:
			}
			cause = fmt.Errorf("%w (the event was already handed to the store and may still be written)", cause)
		}
		return callvault.Wrap(callvault.EUNAVAILABLE, cause, unavailableMessage)
	}
}

// Close stops accepting events, waits until every event already queued has
// been written (or has failed), and stops the writer. Record after Close
// fails with EUNAVAILABLE. Close is idempotent and always returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
	<-l.done
	return nil
}

var errClosed = errors.New("audit log is closed")

func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default: // a wake-up is already pending; the writer will see our change
	}
}

// write is the single writer: it takes everything pending (up to maxBatch)
// and commits it in one AppendAudit call.
func (l *Log) write() {
	defer close(l.done)
	var (
		batch  []*pending
		events []*callvault.AuditEvent
	)
	for {
		l.mu.Lock()
		for len(l.queue) == 0 && !l.closed {
			l.mu.Unlock()
			<-l.wake
			l.mu.Lock()
		}
		if len(l.queue) == 0 { // closed and drained
			l.mu.Unlock()
			return
		}
		n := min(len(l.queue), l.maxBatch)
		batch = append(batch[:0], l.queue[:n]...)
		// Shift the rest down so the queue's backing array is reused and
		// taken entries are not kept alive by it.
		rest := copy(l.queue, l.queue[n:])
		clear(l.queue[rest:])
		l.queue = l.queue[:rest]
		l.mu.Unlock()

		events = events[:0]
		for _, p := range batch {
			events = append(events, &p.ev)
		}
		err := l.commit(events)
		for _, p := range batch {
			p.result <- err
		}
		clear(batch)
		clear(events)
	}
}

func (l *Log) commit(events []*callvault.AuditEvent) (err error) {
	defer func() {
		// A bug in the store must not kill the writer and leave every
		// caller, now and later, waiting forever.
		if r := recover(); r != nil {
			err = fmt.Errorf("audit store panicked: %v", r)
			l.logger.Error("audit: cannot write to the trail; the actions were refused", "events", len(events), "err", err)
			err = callvault.Wrap(callvault.EUNAVAILABLE, err, unavailableMessage)
		}
	}()
	// Not the context of any one caller: the batch serves all of them, and
	// a caller that gives up must not abort the others' write.
	err = l.store.AppendAudit(context.Background(), events)
	if err == nil {
		return nil
	}
	// Operators get the cause and the size of the damage, never contents.
	l.logger.Error("audit: cannot write to the trail; the actions were refused", "events", len(events), "err", err)
	return callvault.Wrap(callvault.EUNAVAILABLE, err, unavailableMessage)
}

// validate refuses events that no correct caller produces.
func validate(e *callvault.AuditEvent) error {
	switch {
	case e == nil:
		return callvault.Errorf(callvault.EINVALID, "audit: nil event")
	case e.Action == "":
		return callvault.Errorf(callvault.EINVALID, "audit: event has no action")
	case e.Outcome != callvault.OutcomeAllowed && e.Outcome != callvault.OutcomeDenied && e.Outcome != callvault.OutcomeFailed:
		return callvault.Errorf(callvault.EINVALID, "audit: %s: outcome %q is not allowed, denied or failed", e.Action, e.Outcome)
	case !callvault.ValidActorKind(e.ActorKind):
		return callvault.Errorf(callvault.EINVALID, "audit: %s: actor kind %q is not user, source or system", e.Action, e.ActorKind)
	case e.Redacted:
		return callvault.Errorf(callvault.EINVALID, "audit: %s: a new event cannot be redacted", e.Action)
	}
	return nil
}
