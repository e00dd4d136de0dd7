package audit

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callvault/callvault"
)

// memStore is an in-memory callvault.AuditStore for tests and benchmarks.
// Like a database it computes Seq, PrevHash and Hash itself, from its own
// head, inside AppendAudit (with callvault.ChainHash), and keeps copies of
// what it is given. Rows are kept in storage order, which WalkAudit follows
// ("as stored"), so tests can play a hostile administrator with the tamper
// methods below.
//
// WalkAudit hands out the stored rows themselves (no copy, as a benchmark
// of Verify should not measure copying): callers must not modify them.
type memStore struct {
	mu         sync.Mutex
	rows       []*callvault.AuditEvent
	anchorSeq  int64
	anchorHash string
	headOK     bool // hSeq and hHash are the head
	hSeq       int64
	hHash      string

	appends  int           // AppendAudit calls, failed ones included
	appended int           // events stored
	maxBatch int           // largest batch stored
	failNext int           // fail this many AppendAudit calls
	failOn   int           // fail the AppendAudit call with this number (1 = first)
	delay    time.Duration // per AppendAudit call, like an fsync
	before   func()        // if set, called at the start of AppendAudit
}

func newMemStore() *memStore { return &memStore{anchorHash: callvault.GenesisHash} }

var errDiskFull = errors.New("disk full")

// head is the row with the highest seq, or the anchor (like SELECT ...
// ORDER BY seq DESC LIMIT 1). Callers hold mu.
func (m *memStore) head() (int64, string) {
	if !m.headOK {
		m.hSeq, m.hHash = m.anchorSeq, m.anchorHash
		for _, r := range m.rows {
			if r.Seq > m.hSeq {
				m.hSeq, m.hHash = r.Seq, r.Hash
			}
		}
		m.headOK = true
	}
	return m.hSeq, m.hHash
}

// changed makes the rows safe to change under walkers that hold the old
// slice, and forgets the head. Callers hold mu.
func (m *memStore) changed() {
	m.rows = slices.Clone(m.rows)
	m.headOK = false
}

func (m *memStore) AppendAudit(ctx context.Context, events []*callvault.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.before != nil {
		m.before()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appends++
	if m.delay > 0 {
		time.Sleep(m.delay)
	}
	if m.failNext > 0 || m.failOn == m.appends {
		m.failNext = max(m.failNext-1, 0)
		return callvault.Wrap(callvault.EUNAVAILABLE, errDiskFull, "the audit trail cannot be written")
	}
	seq, hash := m.head()
	// All or none: compute everything first.
	stored := make([]*callvault.AuditEvent, len(events))
	for i, e := range events {
		c := *e
		c.Details = maps.Clone(e.Details)
		c.Seq = seq + 1
		c.PrevHash = hash
		c.Hash = callvault.ChainHash(hash, &c)
		c.Redacted = false
		seq, hash = c.Seq, c.Hash
		stored[i] = &c
	}
	for i, e := range events {
		e.Seq, e.PrevHash, e.Hash, e.Redacted = stored[i].Seq, stored[i].PrevHash, stored[i].Hash, false
	}
	m.rows = append(m.rows, stored...)
	m.hSeq, m.hHash = seq, hash
	m.appended += len(events)
	m.maxBatch = max(m.maxBatch, len(events))
	return nil
}

func (m *memStore) AuditHead(ctx context.Context) (int64, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, h := m.head()
	return s, h, ctx.Err()
}

func (m *memStore) AuditAnchor(ctx context.Context) (int64, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.anchorSeq, m.anchorHash, ctx.Err()
}

func (m *memStore) WalkAudit(ctx context.Context, from int64, fn func(*callvault.AuditEvent) error) error {
	m.mu.Lock()
	rows := m.rows[:len(m.rows):len(m.rows)] // appends do not touch these
	m.mu.Unlock()
	for i, r := range rows {
		if i&1023 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if r.Seq < from {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) FindAuditEvents(ctx context.Context, f callvault.AuditFilter) ([]*callvault.AuditEvent, error) {
	a := callvault.ActorFromContext(ctx)
	if !callvault.CanReadAudit(a) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "you may not read the audit trail")
	}
	scope := callvault.AuditScope(a)
	limit := cmp.Or(f.Limit, 100)
	limit = min(limit, 1000)
	m.mu.Lock()
	rows := slices.Clone(m.rows)
	m.mu.Unlock()
	slices.SortFunc(rows, func(a, b *callvault.AuditEvent) int { return cmp.Compare(b.Seq, a.Seq) })
	var out []*callvault.AuditEvent
	for _, e := range rows {
		self := a.User != nil && e.ActorKind == callvault.ActorUser && e.ActorID == strconv.FormatInt(a.User.ID, 10)
		switch {
		case !scope.InScope(e.AcademyID) && !self,
			f.ActorName != "" && e.ActorName != f.ActorName,
			f.Action != "" && e.Action != f.Action && !(strings.HasSuffix(f.Action, ".") && strings.HasPrefix(e.Action, f.Action)),
			f.TargetType != "" && e.TargetType != f.TargetType,
			f.TargetID != "" && e.TargetID != f.TargetID,
			!f.From.IsZero() && e.Time.Before(f.From),
			!f.To.IsZero() && !e.Time.Before(f.To),
			f.Before != 0 && e.Seq >= f.Before:
			continue
		}
		c := *e
		c.Details = maps.Clone(e.Details)
		out = append(out, &c)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func (m *memStore) RedactAudit(ctx context.Context, targetType, targetID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	var n int64
	for i, r := range m.rows {
		if r.TargetType == targetType && r.TargetID == targetID && !r.Redacted {
			c := *r // rows handed out by WalkAudit are not modified
			c.Reason, c.Details, c.Redacted = "", nil, true
			m.rows[i] = &c
			n++
		}
	}
	return n, ctx.Err()
}

// PruneAudit deletes the longest run of oldest entries (by seq) that are
// all older than before, so the chain left behind has no holes.
func (m *memStore) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	slices.SortStableFunc(m.rows, func(a, b *callvault.AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	n := 0
	for n < len(m.rows) && m.rows[n].Time.Before(before) {
		n++
	}
	if n > 0 {
		m.anchorSeq, m.anchorHash = m.rows[n-1].Seq, m.rows[n-1].Hash
		m.rows = slices.Clone(m.rows[n:])
	}
	return int64(n), ctx.Err()
}

var _ callvault.AuditStore = (*memStore)(nil)

// The hostile administrator. Each method changes stored rows the way SQL
// run against the database could; rows are replaced, never modified in
// place, so events handed out earlier keep their values.

func (m *memStore) index(seq int64) int {
	i := slices.IndexFunc(m.rows, func(r *callvault.AuditEvent) bool { return r.Seq == seq })
	if i < 0 {
		panic("memStore: no row with seq " + strconv.FormatInt(seq, 10))
	}
	return i
}

// edit changes the stored row at seq (without fixing any hash).
func (m *memStore) edit(seq int64, change func(*callvault.AuditEvent)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	i := m.index(seq)
	c := *m.rows[i]
	c.Details = maps.Clone(c.Details)
	change(&c)
	m.rows[i] = &c
}

// deleteRow removes the row at seq.
func (m *memStore) deleteRow(seq int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	i := m.index(seq)
	m.rows = slices.Delete(m.rows, i, i+1)
}

// swapRows exchanges the storage positions of the rows at seqs a and b.
func (m *memStore) swapRows(a, b int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	i, j := m.index(a), m.index(b)
	m.rows[i], m.rows[j] = m.rows[j], m.rows[i]
}

// swapSeqs exchanges the seq numbers of the rows at a and b, and their
// places, as UPDATE ... SET seq on a table walked in seq order would: every
// other field, hashes included, stays with its row.
func (m *memStore) swapSeqs(a, b int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	i, j := m.index(a), m.index(b)
	x, y := *m.rows[i], *m.rows[j]
	x.Seq, y.Seq = b, a
	m.rows[i], m.rows[j] = &y, &x
}

// truncate deletes every row with seq >= from.
func (m *memStore) truncate(from int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	m.rows = slices.DeleteFunc(m.rows, func(r *callvault.AuditEvent) bool { return r.Seq >= from })
}

// rewrite changes the row at seq and then recomputes the whole chain from
// there on, consistently, as someone who knows the encoding would: the
// chain alone no longer shows anything.
func (m *memStore) rewrite(seq int64, change func(*callvault.AuditEvent)) {
	m.edit(seq, change)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	slices.SortStableFunc(m.rows, func(a, b *callvault.AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	prev := m.anchorHash
	for i, r := range m.rows {
		if r.Seq >= seq {
			c := *r
			c.PrevHash = prev
			c.Hash = callvault.ChainHash(prev, &c)
			m.rows[i] = &c
		}
		prev = m.rows[i].Hash
	}
}

// snapshot is a copy of the stored trail, like a backup.
type snapshot struct {
	rows       []*callvault.AuditEvent
	anchorSeq  int64
	anchorHash string
}

func (m *memStore) backup() snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return snapshot{slices.Clone(m.rows), m.anchorSeq, m.anchorHash}
}

// restore replaces the stored trail with a backup.
func (m *memStore) restore(s snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows, m.anchorSeq, m.anchorHash = s.rows, s.anchorSeq, s.anchorHash
	m.changed()
}

// stats returns the AppendAudit calls, events stored and largest batch.
func (m *memStore) stats() (appends, appended, maxBatch int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appends, m.appended, m.maxBatch
}

func (m *memStore) failNextAppends(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext = n
}

func (m *memStore) failAppendNumber(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failOn = n
}

// tamper lets a test rewrite the stored rows (a copy) any way it likes.
func (m *memStore) tamper(change func(rows []*callvault.AuditEvent) []*callvault.AuditEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	m.rows = change(m.rows)
}

// setAnchor overwrites the anchor.
func (m *memStore) setAnchor(seq int64, hash string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed()
	m.anchorSeq, m.anchorHash = seq, hash
}
