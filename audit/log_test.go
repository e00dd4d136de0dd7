package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

var quiet = slog.New(slog.DiscardHandler)

func newTestLog(store callvault.AuditStore, opts LogOptions) *Log {
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	return NewLog(store, opts)
}

// queued is how many events wait for the writer.
func (l *Log) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// gate makes the store's AppendAudit calls wait until released, and tells
// how many have started.
type gate struct {
	mu      sync.Mutex
	started int
	release chan struct{}
}

func newGate(m *memStore) *gate {
	g := &gate{release: make(chan struct{})}
	m.before = func() {
		g.mu.Lock()
		g.started++
		g.mu.Unlock()
		<-g.release
	}
	return g
}

func (g *gate) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started
}

// checkTrail verifies the stored chain and that its seqs are 1..n.
func checkTrail(t *testing.T, store *memStore, n int64) {
	t.Helper()
	r, err := Verify(context.Background(), store, nil, nil)
	if err != nil || r.Problem != nil || r.Entries != n || r.Head.Seq != n {
		t.Fatalf("Verify(store) = %v, %v; want %d clean entries", r, err, n)
	}
}

func TestLogConcurrentRecordGroupsCommits(t *testing.T) {
	const writers, each = 64, 40
	store := newMemStore()
	store.delay = 200 * time.Microsecond // like an fsync, so that events pile up
	l := newTestLog(store, LogOptions{})
	defer l.Close()

	events := make([][]*callvault.AuditEvent, writers)
	errs := make(chan error, writers*each)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 2))
			for i := range each {
				e := randomEvent(r, i)
				e.TargetID = fmt.Sprintf("w%d-e%d", g, i)
				e.Time = time.Time{} // the Log sets it
				events[g] = append(events[g], e)
				if err := l.Record(context.Background(), e); err != nil {
					errs <- fmt.Errorf("Record(%s) = %w", e.TargetID, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	const n = writers * each
	stored := map[string]*callvault.AuditEvent{}
	store.WalkAudit(context.Background(), 0, func(e *callvault.AuditEvent) error {
		if _, dup := stored[e.TargetID]; dup {
			t.Errorf("event %s stored twice", e.TargetID)
		}
		stored[e.TargetID] = e
		return nil
	})
	seen := map[int64]bool{}
	for _, evs := range events {
		for _, e := range evs {
			s := stored[e.TargetID]
			switch {
			case s == nil:
				t.Errorf("Record(%s) returned nil but the event is not stored", e.TargetID)
			case s.Seq != e.Seq || s.Hash != e.Hash || s.PrevHash != e.PrevHash:
				t.Errorf("Record(%s) set seq %d hash %s, stored seq %d hash %s", e.TargetID, e.Seq, e.Hash, s.Seq, s.Hash)
			case seen[e.Seq]:
				t.Errorf("seq %d given to two events", e.Seq)
			case !e.Time.Equal(t0):
				t.Errorf("Record(%s) set time %v, want the clock's %v", e.TargetID, e.Time, t0)
			}
			seen[e.Seq] = true
		}
	}
	if len(stored) != n {
		t.Errorf("store holds %d events, want %d", len(stored), n)
	}
	checkTrail(t, store, n)
	appends, appended, maxBatch := store.stats()
	t.Logf("%d events in %d AppendAudit calls (largest batch %d)", appended, appends, maxBatch)
	if appends >= n || maxBatch < 2 {
		t.Errorf("%d events took %d AppendAudit calls, largest batch %d: commits were not grouped", n, appends, maxBatch)
	}
}

func TestLogFailedBatch(t *testing.T) {
	store := newMemStore()
	g := newGate(store)
	var logs bytes.Buffer
	l := newTestLog(store, LogOptions{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	defer l.Close()
	ctx := context.Background()

	// The first event occupies the writer; three more queue behind it and
	// go to the store together, in a call that fails.
	first := make(chan error, 1)
	go func() {
		first <- l.Record(ctx, &callvault.AuditEvent{ActorKind: "system", Action: "first", Outcome: "allowed"})
	}()
	waitFor(t, "the first AppendAudit", func() bool { return g.calls() == 1 })
	failed := make(chan error, 3)
	for i := range 3 {
		go func() {
			failed <- l.Record(ctx, &callvault.AuditEvent{ActorKind: "user", Action: "recording.play", Outcome: "allowed", Reason: fmt.Sprintf("secret reason %d", i)})
		}()
	}
	waitFor(t, "three queued events", func() bool { return l.queued() == 3 })
	store.failAppendNumber(2)
	close(g.release)

	if err := <-first; err != nil {
		t.Fatalf("Record(first) = %v, want nil", err)
	}
	for range 3 {
		err := <-failed
		if callvault.ErrorCode(err) != callvault.EUNAVAILABLE || callvault.ErrorMessage(err) != unavailableMessage || !errors.Is(err, errDiskFull) {
			t.Errorf("Record(batch that fails) = %v; want %s %q wrapping %v", err, callvault.EUNAVAILABLE, unavailableMessage, errDiskFull)
		}
	}
	if appends, _, _ := store.stats(); appends != 2 {
		t.Errorf("store saw %d AppendAudit calls, want 2 (the three failed events in one)", appends)
	}
	// The failure does not poison what comes next.
	e := &callvault.AuditEvent{ActorKind: "user", Action: "after", Outcome: "allowed"}
	if err := l.Record(ctx, e); err != nil || e.Seq != 2 {
		t.Fatalf("Record(after a failed batch) = %v, seq %d; want nil, seq 2", err, e.Seq)
	}
	checkTrail(t, store, 2)
	if !bytes.Contains(logs.Bytes(), []byte("disk full")) {
		t.Errorf("the cause was not logged for operators: %s", logs.Bytes())
	}
	if bytes.Contains(logs.Bytes(), []byte("secret reason")) || bytes.Contains(logs.Bytes(), []byte("recording.play")) {
		t.Errorf("event contents were logged: %s", logs.Bytes())
	}
}

func TestLogClose(t *testing.T) {
	store := newMemStore()
	g := newGate(store)
	l := newTestLog(store, LogOptions{})
	ctx := context.Background()

	// Events queued before Close are written before Close returns.
	results := make(chan error, 10)
	record := func() {
		results <- l.Record(ctx, &callvault.AuditEvent{ActorKind: "system", Action: "job", Outcome: "allowed"})
	}
	go record()
	waitFor(t, "the first AppendAudit", func() bool { return g.calls() == 1 })
	for range 9 {
		go record()
	}
	waitFor(t, "nine queued events", func() bool { return l.queued() == 9 })
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	waitFor(t, "Close to stop accepting events", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.closed
	})
	select {
	case <-closed:
		t.Fatal("Close returned while events were still queued")
	default:
	}
	close(g.release)
	<-closed
	for range 10 {
		if err := <-results; err != nil {
			t.Errorf("Record(queued before Close) = %v, want nil", err)
		}
	}
	checkTrail(t, store, 10)

	err := l.Record(ctx, &callvault.AuditEvent{ActorKind: "system", Action: "late", Outcome: "allowed"})
	if callvault.ErrorCode(err) != callvault.EUNAVAILABLE {
		t.Errorf("Record(after Close) = %v, want %s", err, callvault.EUNAVAILABLE)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func TestLogContextCancelled(t *testing.T) {
	store := newMemStore()
	g := newGate(store)
	l := newTestLog(store, LogOptions{})
	defer l.Close()
	event := func(action string) *callvault.AuditEvent {
		return &callvault.AuditEvent{ActorKind: "system", Action: action, Outcome: "allowed"}
	}

	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if err := l.Record(done, event("too-late")); callvault.ErrorCode(err) != callvault.EUNAVAILABLE || !errors.Is(err, context.Canceled) {
		t.Errorf("Record(cancelled context) = %v, want %s wrapping context.Canceled", err, callvault.EUNAVAILABLE)
	}

	// The first event is in the writer's hands (its AppendAudit is held).
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- l.Record(ctx1, event("in-the-store")) }()
	waitFor(t, "the first AppendAudit", func() bool { return g.calls() == 1 })

	// The second is still queued.
	ctx2, cancel2 := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { second <- l.Record(ctx2, event("queued")) }()
	waitFor(t, "the second event queued", func() bool { return l.queued() == 1 })

	cancel2()
	err := <-second
	if callvault.ErrorCode(err) != callvault.EUNAVAILABLE || !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "may still be written") {
		t.Errorf("Record(cancelled while queued) = %v, want %s wrapping context.Canceled", err, callvault.EUNAVAILABLE)
	}
	if n := l.queued(); n != 0 {
		t.Errorf("a cancelled event stays queued: queue holds %d", n)
	}
	cancel1()
	err = <-first
	if callvault.ErrorCode(err) != callvault.EUNAVAILABLE || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "may still be written") {
		t.Errorf("Record(cancelled while being written) = %v, want %s saying it may still be written", err, callvault.EUNAVAILABLE)
	}
	close(g.release)
	l.Close()
	// As documented: the event handed to the store was written, the
	// queued one and the one refused up front were not.
	checkTrail(t, store, 1)
	store.WalkAudit(context.Background(), 0, func(e *callvault.AuditEvent) error {
		if e.Action != "in-the-store" {
			t.Errorf("stored %q, want only the event that reached the store", e.Action)
		}
		return nil
	})
}

func TestLogMaxBatch(t *testing.T) {
	store := newMemStore()
	g := newGate(store)
	l := newTestLog(store, LogOptions{MaxBatch: 4})
	var wg sync.WaitGroup
	record := func() {
		if err := l.Record(context.Background(), &callvault.AuditEvent{ActorKind: "system", Action: "x", Outcome: "allowed"}); err != nil {
			t.Errorf("Record = %v", err)
		}
	}
	wg.Go(record)
	waitFor(t, "the first AppendAudit", func() bool { return g.calls() == 1 })
	for range 20 {
		wg.Go(record)
	}
	waitFor(t, "20 queued events", func() bool { return l.queued() == 20 })
	close(g.release)
	wg.Wait()
	l.Close()
	appends, appended, maxBatch := store.stats()
	if appended != 21 || maxBatch != 4 || appends != 6 {
		t.Errorf("MaxBatch 4: %d events in %d calls, largest %d; want 21 in 6 (1 + 5×4), largest 4", appended, appends, maxBatch)
	}
	checkTrail(t, store, 21)
}

func TestLogValidation(t *testing.T) {
	valid := func() *callvault.AuditEvent {
		return &callvault.AuditEvent{ActorKind: callvault.ActorUser, Action: "recording.play", Outcome: callvault.OutcomeAllowed}
	}
	tests := []struct {
		name   string
		change func(e *callvault.AuditEvent) *callvault.AuditEvent
		code   string
	}{
		{"valid", func(e *callvault.AuditEvent) *callvault.AuditEvent { return e }, ""},
		{"source", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.ActorKind = callvault.ActorSource; return e }, ""},
		{"system denied", func(e *callvault.AuditEvent) *callvault.AuditEvent {
			e.ActorKind, e.Outcome = callvault.ActorSystem, callvault.OutcomeDenied
			return e
		}, ""},
		{"failed", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.Outcome = callvault.OutcomeFailed; return e }, ""},
		{"nil", func(e *callvault.AuditEvent) *callvault.AuditEvent { return nil }, callvault.EINVALID},
		{"no action", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.Action = ""; return e }, callvault.EINVALID},
		{"no outcome", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.Outcome = ""; return e }, callvault.EINVALID},
		{"outcome ok", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.Outcome = "ok"; return e }, callvault.EINVALID},
		{"outcome case", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.Outcome = "Allowed"; return e }, callvault.EINVALID},
		{"no actor kind", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.ActorKind = ""; return e }, callvault.EINVALID},
		{"actor kind admin", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.ActorKind = "admin"; return e }, callvault.EINVALID},
		{"redacted", func(e *callvault.AuditEvent) *callvault.AuditEvent { e.Redacted = true; return e }, callvault.EINVALID},
	}
	store := newMemStore()
	l := newTestLog(store, LogOptions{})
	defer l.Close()
	written := 0
	for _, tt := range tests {
		e := tt.change(valid())
		err := l.Record(context.Background(), e)
		if got := callvault.ErrorCode(err); got != tt.code {
			t.Errorf("%s: Record(%+v) = %v, want code %q", tt.name, e, err, tt.code)
		}
		if err == nil {
			written++
		}
	}
	if _, appended, _ := store.stats(); appended != written {
		t.Errorf("store holds %d events, want the %d valid ones", appended, written)
	}
}

func TestLogTime(t *testing.T) {
	london := time.FixedZone("BST", 3600)
	clockTime := time.Date(2026, 6, 1, 10, 0, 0, 123_456_789, london)
	tests := []struct {
		in, want time.Time
	}{
		{time.Time{}, time.Date(2026, 6, 1, 9, 0, 0, 123_000_000, time.UTC)},
		{time.Date(2025, 1, 2, 3, 4, 5, 999_999_999, london), time.Date(2025, 1, 2, 2, 4, 5, 999_000_000, time.UTC)},
	}
	l := newTestLog(newMemStore(), LogOptions{Now: func() time.Time { return clockTime }})
	defer l.Close()
	for _, tt := range tests {
		e := &callvault.AuditEvent{Time: tt.in, ActorKind: "system", Action: "x", Outcome: "allowed"}
		if err := l.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if !e.Time.Equal(tt.want) || e.Time.Location() != time.UTC {
			t.Errorf("Record(time %v) set time %v, want %v", tt.in, e.Time, tt.want)
		}
	}
}

func TestLogStoreFailsOnce(t *testing.T) {
	store := newMemStore()
	store.failNextAppends(1)
	l := newTestLog(store, LogOptions{})
	defer l.Close()
	tests := []struct {
		action string
		code   string
		seq    int64
	}{
		{"while the disk is full", callvault.EUNAVAILABLE, 0},
		{"after it was freed", "", 1},
		{"and again", "", 2},
	}
	for _, tt := range tests {
		e := &callvault.AuditEvent{ActorKind: "system", Action: tt.action, Outcome: "allowed"}
		err := l.Record(context.Background(), e)
		if callvault.ErrorCode(err) != tt.code || e.Seq != tt.seq {
			t.Errorf("Record(%q) = %v, seq %d; want code %q, seq %d", tt.action, err, e.Seq, tt.code, tt.seq)
		}
	}
	checkTrail(t, store, 2)
}

// panickingStore has a bug.
type panickingStore struct{ *memStore }

func (panickingStore) AppendAudit(context.Context, []*callvault.AuditEvent) error {
	panic("nil map")
}

func TestLogStorePanics(t *testing.T) {
	l := newTestLog(panickingStore{newMemStore()}, LogOptions{})
	defer l.Close()
	for i := range 2 { // the writer survives the first panic
		err := l.Record(context.Background(), &callvault.AuditEvent{ActorKind: "system", Action: "x", Outcome: "allowed"})
		if callvault.ErrorCode(err) != callvault.EUNAVAILABLE || !strings.Contains(err.Error(), "nil map") {
			t.Errorf("Record #%d(store that panics) = %v, want %s with the panic", i+1, err, callvault.EUNAVAILABLE)
		}
	}
}
