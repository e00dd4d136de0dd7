package callvault

import (
	"context"
	"sync"
)

// PendingAudit is the audit entry of the action a request or command is
// carrying out. It is written exactly once, at the earliest of two moments:
//
//   - inside the first database write transaction made on its behalf, so the
//     change and its record commit together or not at all;
//   - before the first byte of the response leaves (web) or before the
//     command reports success (command line).
//
// If it cannot be written, the transaction rolls back or the response is
// replaced by 503: the action does not happen. Handlers only describe the
// action (Note); they never decide whether to audit.
type PendingAudit struct {
	mu    sync.Mutex
	event AuditEvent
	done  bool
	err   error
}

// NewPendingAudit starts the entry for an action.
func NewPendingAudit(e AuditEvent) *PendingAudit { return &PendingAudit{event: e} }

type pendingKey struct{}

// WithPendingAudit returns ctx carrying p.
func WithPendingAudit(ctx context.Context, p *PendingAudit) context.Context {
	return context.WithValue(ctx, pendingKey{}, p)
}

// PendingAuditFrom returns the pending entry in ctx, or nil.
func PendingAuditFrom(ctx context.Context) *PendingAudit {
	p, _ := ctx.Value(pendingKey{}).(*PendingAudit)
	return p
}

// NoteAudit lets the code doing the work describe it (target, academy,
// details, outcome) while the entry is still pending. Without a pending
// entry, or once it is written, it does nothing.
func NoteAudit(ctx context.Context, fn func(e *AuditEvent)) {
	if p := PendingAuditFrom(ctx); p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if !p.done {
			fn(&p.event)
		}
	}
}

// Commit writes the entry with write (once). Later calls return the first
// result without writing again.
func (p *PendingAudit) Commit(write func(e *AuditEvent) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return p.err
	}
	e := p.event
	p.err = write(&e)
	if p.err == nil {
		p.done, p.event = true, e
	}
	return p.err
}

// Done reports whether the entry has been written, and the entry as written.
func (p *PendingAudit) Done() (bool, AuditEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.event
}
