package sqldb

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audit"
)

// retentionJob acts as the retention job does.
func retentionJob() context.Context {
	return callvault.NewContextWithActor(context.Background(), &callvault.Actor{System: true, Name: "retention"})
}

// expiredAt returns a recording of academy whose 12 months end at until:
// it started 12 London months before.
func expiredAt(academy int64, ref string, until time.Time) *callvault.Recording {
	started := until.In(callvault.London).AddDate(0, -12, 0)
	if !callvault.RetainUntil(started, 12).Equal(until) {
		panic(fmt.Sprintf("no start is 12 months before %v", until))
	}
	return newRecording(academy, 0, ref, started, "+447700900123", "2001")
}

// expiredIDs walks ExpiredRecordings in pages of limit.
func expiredIDs(t testing.TB, ps *PurgeStore, asOf time.Time, limit int) []string {
	t.Helper()
	var (
		ids   []string
		after callvault.ExpiredCursor
	)
	for {
		page, err := ps.ExpiredRecordings(retentionJob(), asOf, after, limit)
		if err != nil {
			t.Fatalf("ExpiredRecordings(%v, %+v, %d): %v", asOf, after, limit, err)
		}
		for _, e := range page {
			ids = append(ids, e.ID)
		}
		if len(page) < limit {
			return ids
		}
		last := page[len(page)-1]
		after = callvault.ExpiredCursor{RetainUntil: last.RetainUntil, ID: last.ID}
	}
}

// auditRows returns every stored audit row, as stored.
func auditRows(t testing.TB, db *DB) []*callvault.AuditEvent {
	t.Helper()
	return walkAll(t, NewAuditStore(db))
}

func receipts(t testing.TB, db *DB) map[string]*callvault.AuditEvent {
	t.Helper()
	m := map[string]*callvault.AuditEvent{}
	for _, e := range auditRows(t, db) {
		if e.Action == callvault.ActionPurge {
			if m[e.TargetID] != nil {
				t.Errorf("two receipts for recording %s", e.TargetID)
			}
			m[e.TargetID] = e
		}
	}
	return m
}

func TestPurge_systemOnly(t *testing.T) {
	f := newGrantFixture(t)
	ps := NewPurgeStore(f.db)
	insertRecordings(t, f.db, expiredAt(f.north.ID, "old", t0.Add(-time.Hour)))
	source := callvault.NewContextWithActor(context.Background(), &callvault.Actor{Source: &callvault.Source{ID: 1}})
	for _, ctx := range []context.Context{f.as("admin"), f.as("dpo"), f.as("ceo"), f.as("pnorth"), f.as("lis1"), source, context.Background()} {
		a := callvault.ActorFromContext(ctx)
		name := fmt.Sprintf("%+v", a)
		if a != nil && a.User != nil {
			name = a.User.Login
		}
		_, err := ps.ExpiredRecordings(ctx, t0, callvault.ExpiredCursor{}, 10)
		wantCode(t, "ExpiredRecordings("+name+")", err, callvault.EFORBIDDEN)
		_, err = ps.QueuePurge(ctx, "run", t0, []string{f.n1})
		wantCode(t, "QueuePurge("+name+")", err, callvault.EFORBIDDEN)
		_, err = ps.QueuedPurges(ctx, 10)
		wantCode(t, "QueuedPurges("+name+")", err, callvault.EFORBIDDEN)
		wantCode(t, "FinishPurge("+name+")", ps.FinishPurge(ctx, []string{f.n1}), callvault.EFORBIDDEN)
		_, err = ps.EpochUsage(ctx, t0)
		wantCode(t, "EpochUsage("+name+")", err, callvault.EFORBIDDEN)
		_, err = ps.HeldInEpoch(ctx, "2026-03")
		wantCode(t, "HeldInEpoch("+name+")", err, callvault.EFORBIDDEN)
		wantCode(t, "MoveRecording("+name+")", ps.MoveRecording(ctx, f.n1, "x", "y", "z"), callvault.EFORBIDDEN)
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM purge_queue`); n != 0 {
		t.Errorf("%d recordings queued by refused calls", n)
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM recordings`); n != 5 {
		t.Errorf("%d recordings after refused calls, want 5", n)
	}
}

func TestPurge_expired(t *testing.T) {
	f := newGrantFixture(t)
	ps, hs := NewPurgeStore(f.db), NewHoldService(f.db)
	e1 := expiredAt(f.north.ID, "e1", t0.Add(-72*time.Hour))
	e2 := expiredAt(f.south.ID, "e2", t0.Add(-48*time.Hour))
	e3 := expiredAt(f.north.ID, "e3", t0.Add(-24*time.Hour))
	edge := expiredAt(f.south.ID, "edge", t0)
	live := expiredAt(f.north.ID, "live", t0.Add(time.Millisecond))
	insertRecordings(t, f.db, e1, e2, e3, edge, live)

	if got, want := expiredIDs(t, ps, t0, 100), []string{e1.ID, e2.ID, e3.ID, edge.ID}; !slices.Equal(got, want) {
		t.Errorf("ExpiredRecordings(t0) = %v, want %v (retain-until order, the edge included)", got, want)
	}
	if got, want := expiredIDs(t, ps, t0.Add(-time.Millisecond), 100), []string{e1.ID, e2.ID, e3.ID}; !slices.Equal(got, want) {
		t.Errorf("ExpiredRecordings(t0-1ms) = %v, want %v", got, want)
	}

	// What a page says about each recording.
	if _, err := NewRetentionService(f.db).SetRetentionRule(sysCtx(), &callvault.RetentionRule{AcademyID: f.south.ID, Months: 12}); err != nil {
		t.Fatal(err)
	}
	page, err := ps.ExpiredRecordings(retentionJob(), t0, callvault.ExpiredCursor{}, 2)
	if err != nil || len(page) != 2 {
		t.Fatalf("ExpiredRecordings(limit 2) = %d, %v", len(page), err)
	}
	want := []*callvault.Expired{
		{ID: e1.ID, AcademyID: f.north.ID, Academy: "north", SHA256: e1.SHA256, Size: e1.Size, BlobKey: e1.BlobKey,
			KeyEpoch: e1.KeyEpoch, RetainUntil: t0.Add(-72 * time.Hour), Rule: "trust default: 12 months"},
		{ID: e2.ID, AcademyID: f.south.ID, Academy: "south", SHA256: e2.SHA256, Size: e2.Size, BlobKey: e2.BlobKey,
			KeyEpoch: e2.KeyEpoch, RetainUntil: t0.Add(-48 * time.Hour), Rule: "academy south: 12 months"},
	}
	if !reflect.DeepEqual(page, want) {
		t.Errorf("ExpiredRecordings page =\n%+v\n%+v\nwant\n%+v\n%+v", page[0], page[1], want[0], want[1])
	}

	// Holds: one of two holds released still holds; both released, not.
	h1 := f.mustHold(t, "dpo", validHold(0), e1.ID)
	h2 := f.mustHold(t, "dpo", validHold(0), e1.ID, e2.ID)
	if got := expiredIDs(t, ps, t0, 100); !slices.Equal(got, []string{e3.ID, edge.ID}) {
		t.Errorf("ExpiredRecordings with e1, e2 held = %v, want e3, edge", got)
	}
	if _, err := hs.ReleaseHold(f.as("dpo"), h1.ID, "Done."); err != nil {
		t.Fatal(err)
	}
	if got := expiredIDs(t, ps, t0, 100); !slices.Equal(got, []string{e3.ID, edge.ID}) {
		t.Errorf("ExpiredRecordings with h1 released = %v, want e3, edge (h2 still holds e1 and e2)", got)
	}
	if _, err := hs.ReleaseHold(f.as("dpo"), h2.ID, "Done."); err != nil {
		t.Fatal(err)
	}
	if got := expiredIDs(t, ps, t0, 100); !slices.Equal(got, []string{e1.ID, e2.ID, e3.ID, edge.ID}) {
		t.Errorf("ExpiredRecordings with both released = %v, want all four", got)
	}
}

// TestPurge_expiredPaging pages through more candidates than one page, many
// sharing a retain-until, with the cursor of each page.
func TestPurge_expiredPaging(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	ps := NewPurgeStore(db)
	var recs []*callvault.Recording
	base := t0.Add(-90 * 24 * time.Hour)
	for i := range 230 {
		a := north.ID
		if i%3 == 0 {
			a = south.ID
		}
		// Groups of up to five share a retain-until; the order of
		// insertion is not the order of expiry.
		until := base.Add(time.Duration((i*7)%46) * time.Hour)
		recs = append(recs, expiredAt(a, fmt.Sprint("page-", i), until))
	}
	insertRecordings(t, db, recs...)
	slices.SortFunc(recs, func(a, b *callvault.Recording) int {
		if c := a.RetainUntil.Compare(b.RetainUntil); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var want []string
	for _, r := range recs {
		want = append(want, r.ID)
	}
	for _, limit := range []int{1, 9, 46, 229, 230, 500} {
		if got := expiredIDs(t, ps, t0, limit); !slices.Equal(got, want) {
			t.Errorf("ExpiredRecordings in pages of %d: %d ids, want %d in (retain-until, id) order", limit, len(got), len(want))
		}
	}
}

// purgeFixture: e1 (north) and e2 (south) expired, with earlier audit
// entries; live, not expired; held, expired but held.
type purgeFixture struct {
	*grantFixture
	ps                  *PurgeStore
	e1, e2, live, held  *callvault.Recording
	earlier             []*callvault.AuditEvent
	aboutLive, aboutKey *callvault.AuditEvent
}

func newPurgeFixture(t testing.TB) *purgeFixture {
	t.Helper()
	f := &purgeFixture{grantFixture: newGrantFixture(t)}
	f.ps = NewPurgeStore(f.db)
	f.e1 = expiredAt(f.north.ID, "e1", t0.Add(-72*time.Hour))
	f.e2 = expiredAt(f.south.ID, "e2", t0.Add(-48*time.Hour))
	f.held = expiredAt(f.north.ID, "held", t0.Add(-24*time.Hour))
	f.live = expiredAt(f.north.ID, "live", t0.Add(24*time.Hour))
	insertRecordings(t, f.db, f.e1, f.e2, f.held, f.live)
	f.mustHold(t, "dpo", validHold(0), f.held.ID)
	event := func(action, targetType, target string) *callvault.AuditEvent {
		e := auditEvent(action, f.north.ID, t0.Add(-time.Hour))
		e.TargetType, e.TargetID, e.Reason = targetType, target, "complaint about a call from +447700900123"
		e.Details = map[string]string{"number": "+447700900123", "file": "call.wav"}
		return e
	}
	f.earlier = []*callvault.AuditEvent{
		event("recording.ingest", "recording", f.e1.ID),
		event("recording.play", "recording", f.e1.ID),
		event("recording.ingest", "recording", f.e2.ID),
	}
	f.aboutLive = event("recording.ingest", "recording", f.live.ID)
	f.aboutKey = event("keyring.note", "key", f.e1.ID) // another kind of target with the same id
	mustAppendAudit(t, NewAuditStore(f.db), append(slices.Clone(f.earlier), f.aboutLive, f.aboutKey)...)
	return f
}

func TestPurge_queue(t *testing.T) {
	f := newPurgeFixture(t)
	store := NewAuditStore(f.db)
	before := len(auditRows(t, f.db))
	f.clock.Add(time.Minute)
	queued, err := f.ps.QueuePurge(retentionJob(), "run-1", t0, []string{f.live.ID, f.e2.ID, f.held.ID, f.e1.ID,
		"0190a0b0-0000-7000-8000-000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range queued {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, []string{f.e1.ID, f.e2.ID}) {
		t.Fatalf("QueuePurge queued %v, want e1, e2 (not live, not held, in retain-until order)", got)
	}

	// One receipt per queued recording, after the earlier entries.
	all := auditRows(t, f.db)
	rs := receipts(t, f.db)
	if len(all) != before+2 || len(rs) != 2 {
		t.Fatalf("%d audit entries (%d receipts) after QueuePurge, want %d (2)", len(all), len(rs), before+2)
	}
	for _, r := range []*callvault.Recording{f.e1, f.e2} {
		e := rs[r.ID]
		if e == nil {
			t.Errorf("no receipt for %s", r.SourceRef)
			continue
		}
		slug := map[int64]string{f.north.ID: "north", f.south.ID: "south"}[r.AcademyID]
		want := map[string]string{
			"run": "run-1", "sha256": r.SHA256, "bytes": strconv.FormatInt(r.Size, 10), "academy": slug,
			"rule": "trust default: 12 months", "retain_until": r.RetainUntil.UTC().Format(time.RFC3339), "key_epoch": r.KeyEpoch,
		}
		if !reflect.DeepEqual(e.Details, want) || e.TargetType != "recording" || e.AcademyID != r.AcademyID ||
			e.ActorKind != callvault.ActorSystem || e.ActorName != "retention" || e.Outcome != callvault.OutcomeAllowed ||
			e.Redacted || e.Reason != "" || !e.Time.Equal(f.clock.Now()) {
			t.Errorf("receipt for %s = %+v\nwant details %v", r.SourceRef, e, want)
		}
	}
	// Earlier entries about the purged recordings keep only their links.
	for i, e := range all[:before] {
		about := e.TargetType == "recording" && (e.TargetID == f.e1.ID || e.TargetID == f.e2.ID)
		switch {
		case about && (!e.Redacted || len(e.Details) != 0 || e.Reason != ""):
			t.Errorf("entry %d about a purged recording not redacted: %+v", i, e)
		case !about && (e.Redacted || e.Details["number"] == "" || e.Reason == ""):
			t.Errorf("entry %d about something else redacted: %+v", i, e)
		}
	}
	if n := verifyAudit(t, store); n != before+2 {
		t.Errorf("chain has %d entries, want %d", n, before+2)
	}
	rep, err := audit.Verify(sysCtx(), store, nil, nil)
	if err != nil || !rep.OK() || rep.Entries != int64(before+2) || rep.Redacted != int64(len(f.earlier)) {
		t.Errorf("audit.Verify = %v, %v; want %d entries, %d redacted, no problem", rep, err, before+2, len(f.earlier))
	}

	// Queued: no longer a candidate, not queued twice, not holdable.
	if ids := expiredIDs(t, f.ps, t0, 100); len(ids) != 0 {
		t.Errorf("ExpiredRecordings after QueuePurge = %v, want none", ids)
	}
	again, err := f.ps.QueuePurge(retentionJob(), "run-2", t0, []string{f.e1.ID, f.e2.ID})
	if err != nil || len(again) != 0 || len(receipts(t, f.db)) != 2 {
		t.Errorf("QueuePurge again = %d queued, %v; %d receipts; want none queued, 2 receipts", len(again), err, len(receipts(t, f.db)))
	}
	q, err := f.ps.QueuedPurges(retentionJob(), 10)
	want := []callvault.Queued{{ID: f.e1.ID, BlobKey: f.e1.BlobKey, RunID: "run-1"}, {ID: f.e2.ID, BlobKey: f.e2.BlobKey, RunID: "run-1"}}
	slices.SortFunc(want, func(a, b callvault.Queued) int { return strings.Compare(a.ID, b.ID) })
	if err != nil || !reflect.DeepEqual(q, want) {
		t.Errorf("QueuedPurges = %+v, %v; want %+v", q, err, want)
	}
	if q, err := f.ps.QueuedPurges(retentionJob(), 1); err != nil || len(q) != 1 || q[0] != want[0] {
		t.Errorf("QueuedPurges(limit 1) = %+v, %v; want %+v", q, err, want[:1])
	}
	err = NewHoldService(f.db).CreateHold(f.as("dpo"), validHold(0), []string{f.e1.ID})
	wantCode(t, "CreateHold(queued recording)", err, callvault.EINVALID)
	h := validHold(0)
	h.Filter = &callvault.HoldFilter{Number: "+447700900123"}
	f.mustHold(t, "dpo", h)
	if ids := heldIDs(t, f.db, h.ID); slices.Contains(ids, f.e1.ID) || slices.Contains(ids, f.e2.ID) || !slices.Contains(ids, f.live.ID) {
		t.Errorf("a saved search held %v: want live, not the queued e1, e2", ids)
	}

	_, err = f.ps.QueuePurge(retentionJob(), "", t0, []string{f.live.ID})
	wantCode(t, "QueuePurge(no run id)", err, callvault.EINVALID)
	if none, err := f.ps.QueuePurge(retentionJob(), "run-3", t0, nil); err != nil || len(none) != 0 {
		t.Errorf("QueuePurge(no ids) = %v, %v", none, err)
	}
}

// TestPurge_holdWins: a hold placed between listing and queueing keeps the
// recording.
func TestPurge_holdWins(t *testing.T) {
	f := newPurgeFixture(t)
	page, err := f.ps.ExpiredRecordings(retentionJob(), t0, callvault.ExpiredCursor{}, 100)
	if err != nil || len(page) != 2 {
		t.Fatalf("ExpiredRecordings = %d, %v; want e1, e2", len(page), err)
	}
	f.mustHold(t, "pnorth", validHold(f.north.ID), f.e1.ID)
	queued, err := f.ps.QueuePurge(retentionJob(), "run-1", t0, []string{page[0].ID, page[1].ID})
	if err != nil || len(queued) != 1 || queued[0].ID != f.e2.ID {
		t.Fatalf("QueuePurge = %v, %v; want only e2", queued, err)
	}
	if rs := receipts(t, f.db); rs[f.e1.ID] != nil || rs[f.e2.ID] == nil {
		t.Errorf("receipts for %v; want e2 only", slices.Collect(maps.Keys(rs)))
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM purge_queue WHERE recording_id = ?`, f.e1.ID); n != 0 {
		t.Errorf("held e1 queued")
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM audit_events WHERE target_id = ? AND redacted = 1`, f.e1.ID); n != 0 {
		t.Errorf("%d entries about held e1 redacted", n)
	}
}

// TestPurge_receiptFails: when the receipts cannot be written, nothing is
// queued and nothing redacted.
func TestPurge_receiptFails(t *testing.T) {
	f := newPurgeFixture(t)
	before := auditRows(t, f.db)
	if _, err := f.db.writer.Exec(`CREATE TRIGGER no_receipts BEFORE INSERT ON audit_events
		BEGIN SELECT RAISE(ABORT, 'audit trail unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	queued, err := f.ps.QueuePurge(retentionJob(), "run-1", t0, []string{f.e1.ID, f.e2.ID})
	if err == nil || len(queued) != 0 {
		t.Errorf("QueuePurge without an audit trail = %d queued, %v; want an error", len(queued), err)
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM purge_queue`); n != 0 {
		t.Errorf("%d recordings queued without receipts", n)
	}
	if after := auditRows(t, f.db); !reflect.DeepEqual(after, before) {
		t.Errorf("audit trail changed by a failed QueuePurge (redaction or receipts)")
	}
	if ids := expiredIDs(t, f.ps, t0, 100); !slices.Equal(ids, []string{f.e1.ID, f.e2.ID}) {
		t.Errorf("ExpiredRecordings after a failed QueuePurge = %v, want e1, e2", ids)
	}
	// The same call succeeds once the trail can be written.
	if _, err := f.db.writer.Exec(`DROP TRIGGER no_receipts`); err != nil {
		t.Fatal(err)
	}
	queued, err = f.ps.QueuePurge(retentionJob(), "run-1", t0, []string{f.e1.ID, f.e2.ID})
	if err != nil || len(queued) != 2 || len(receipts(t, f.db)) != 2 {
		t.Errorf("QueuePurge after the trail recovers = %d queued, %v", len(queued), err)
	}
	verifyAudit(t, NewAuditStore(f.db))
}

func TestPurge_finish(t *testing.T) {
	f := newPurgeFixture(t)
	// e1 was held once and was shared with a listener.
	h := f.mustHold(t, "dpo", validHold(0), f.e1.ID)
	if _, err := NewHoldService(f.db).ReleaseHold(f.as("dpo"), h.ID, "Closed."); err != nil {
		t.Fatal(err)
	}
	f.approve(t, "ceo", f.request(t, "admin", []string{f.e1.ID}, "lis1"))
	third := expiredAt(f.north.ID, "third", t0.Add(-time.Hour)) // expired, not queued
	insertRecordings(t, f.db, third)
	if _, err := f.ps.QueuePurge(retentionJob(), "run-1", t0, []string{f.e1.ID, f.e2.ID}); err != nil {
		t.Fatal(err)
	}
	linked := func(id string) int {
		n := 0
		for _, table := range []string{"participants", "hold_recordings", "grant_recordings", "listen_request_recordings"} {
			n += countRows(t, f.db, `SELECT COUNT(*) FROM `+table+` WHERE recording_id = ?`, id)
		}
		return n
	}
	if linked(f.e1.ID) < 5 { // 2 participants, a hold, a grant, a request
		t.Fatalf("e1 has %d linked rows before FinishPurge, want at least 5", linked(f.e1.ID))
	}
	thirdLinks := linked(third.ID)
	auditBefore := countRows(t, f.db, `SELECT COUNT(*) FROM audit_events`)

	if err := f.ps.FinishPurge(retentionJob(), []string{f.e1.ID, f.e2.ID, third.ID, f.live.ID}); err != nil {
		t.Fatalf("FinishPurge: %v", err)
	}
	for _, r := range []*callvault.Recording{f.e1, f.e2} {
		if n := countRows(t, f.db, `SELECT COUNT(*) FROM recordings WHERE id = ?`, r.ID); n != 0 || linked(r.ID) != 0 {
			t.Errorf("%s: %d rows and %d linked rows after FinishPurge, want none", r.SourceRef, n, linked(r.ID))
		}
	}
	for _, r := range []*callvault.Recording{third, f.live, f.held} {
		if _, err := NewRecordingService(f.db).FindRecordingByID(sysCtx(), r.ID); err != nil {
			t.Errorf("%s (not queued) gone after FinishPurge: %v", r.SourceRef, err)
		}
	}
	if linked(third.ID) != thirdLinks {
		t.Errorf("third's linked rows changed")
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM purge_queue`); n != 0 {
		t.Errorf("%d queue entries left", n)
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM audit_events`); n != auditBefore {
		t.Errorf("%d audit entries after FinishPurge, want %d: receipts stay", n, auditBefore)
	}
	if len(receipts(t, f.db)) != 2 {
		t.Errorf("receipts lost")
	}
	if err := f.ps.FinishPurge(retentionJob(), nil); err != nil {
		t.Errorf("FinishPurge(nothing): %v", err)
	}
}

func TestPurge_epochs(t *testing.T) {
	f := newPurgeFixture(t)
	// Epochs as the fixture made them: by month of the start in London.
	epoch := func(r *callvault.Recording) string { return callvault.KeyEpoch(r.StartedAt) }
	// live2 is held but not expired; e2 is queued.
	live2 := expiredAt(f.south.ID, "live2", t0.Add(48*time.Hour))
	live2.KeyEpoch = "hold-2026-03"
	insertRecordings(t, f.db, live2)
	f.mustHold(t, "dpo", validHold(0), live2.ID)
	if _, err := f.ps.QueuePurge(retentionJob(), "run-1", t0, []string{f.e2.ID}); err != nil {
		t.Fatal(err)
	}
	type use struct{ recordings, held, live int }
	model := map[string]*use{}
	add := func(r *callvault.Recording, held, live bool) {
		u := model[r.KeyEpoch]
		if u == nil {
			u = &use{}
			model[r.KeyEpoch] = u
		}
		u.recordings++
		if held {
			u.held++
		}
		if live {
			u.live++
		}
	}
	for _, id := range []string{f.n1, f.n2, f.s1, f.u1} {
		r, err := f.rs.FindRecordingByID(sysCtx(), id)
		if err != nil {
			t.Fatal(err)
		}
		add(r, false, true)
	}
	add(f.e1, false, false)
	add(f.e2, false, false) // queued
	add(f.held, true, false)
	add(f.live, false, true)
	add(live2, true, false)
	for _, r := range []*callvault.Recording{f.e1, f.e2, f.held, f.live} {
		if r.KeyEpoch != epoch(r) {
			t.Fatalf("%s: epoch %s, want %s", r.SourceRef, r.KeyEpoch, epoch(r))
		}
	}
	got, err := f.ps.EpochUsage(retentionJob(), t0)
	if err != nil {
		t.Fatal(err)
	}
	var want []callvault.EpochUsage
	for e, u := range model {
		want = append(want, callvault.EpochUsage{Epoch: e, Recordings: u.recordings, Held: u.held, Live: u.live})
	}
	slices.SortFunc(want, func(a, b callvault.EpochUsage) int { return strings.Compare(a.Epoch, b.Epoch) })
	if !reflect.DeepEqual(got, want) || len(want) < 3 {
		t.Errorf("EpochUsage(t0) = %+v\nwant %+v", got, want)
	}
	// Later, the live recording of its epoch is past its date too.
	got, _ = f.ps.EpochUsage(retentionJob(), t0.Add(25*time.Hour))
	for _, u := range got {
		if u.Epoch == f.live.KeyEpoch && u.Live != model[u.Epoch].live-1 {
			t.Errorf("EpochUsage(t0+25h) for %s = %+v, want one fewer live", u.Epoch, u)
		}
	}

	// The held recordings of an epoch, not the others.
	for _, tt := range []struct {
		epoch string
		want  []string
	}{
		{f.held.KeyEpoch, []string{f.held.ID}},
		{"hold-2026-03", []string{live2.ID}},
		{f.e2.KeyEpoch, nil}, // queued, and not held
		{"1999-01", nil},
	} {
		rs, err := f.ps.HeldInEpoch(retentionJob(), tt.epoch)
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		if tt.epoch == f.held.KeyEpoch && f.held.KeyEpoch == f.e2.KeyEpoch {
			t.Fatalf("fixture: held and e2 share epoch %s", tt.epoch)
		}
		if err != nil || !slices.Equal(ids, tt.want) {
			t.Errorf("HeldInEpoch(%s) = %v, %v; want %v", tt.epoch, ids, err, tt.want)
		}
		for _, r := range rs {
			if r.BlobKey == "" || r.KeyEpoch != tt.epoch {
				t.Errorf("HeldInEpoch(%s) returned %+v", tt.epoch, r)
			}
		}
	}
}

func TestPurge_moveRecording(t *testing.T) {
	f := newPurgeFixture(t)
	old := f.held.BlobKey
	p := callvault.NewPendingAudit(callvault.AuditEvent{Action: "recording.rewrap", ActorKind: callvault.ActorSystem})
	ctx := callvault.WithPendingAudit(retentionJob(), p)
	if err := f.ps.MoveRecording(ctx, f.held.ID, old, "rewrapped/"+f.held.ID, "hold-2026-03"); err != nil {
		t.Fatal(err)
	}
	got, err := f.rs.FindRecordingByID(sysCtx(), f.held.ID)
	if err != nil || got.BlobKey != "rewrapped/"+f.held.ID || got.KeyEpoch != "hold-2026-03" {
		t.Errorf("after MoveRecording: %+v, %v", got, err)
	}
	if done, _ := p.Done(); !done {
		t.Errorf("MoveRecording did not write its audit entry")
	}
	wantCode(t, "MoveRecording(old key again)", f.ps.MoveRecording(retentionJob(), f.held.ID, old, "x", "2026-04"), callvault.ECONFLICT)
	wantCode(t, "MoveRecording(unknown)", f.ps.MoveRecording(retentionJob(), "0190a0b0-0000-7000-8000-000000000000", old, "x", "2026-04"), callvault.ECONFLICT)
	if got, _ := f.rs.FindRecordingByID(sysCtx(), f.held.ID); got.BlobKey != "rewrapped/"+f.held.ID || got.KeyEpoch != "hold-2026-03" {
		t.Errorf("a refused MoveRecording changed the recording: %+v", got)
	}
	if rs, err := f.ps.HeldInEpoch(retentionJob(), "hold-2026-03"); err != nil || len(rs) != 1 || rs[0].ID != f.held.ID {
		t.Errorf("HeldInEpoch(hold-2026-03) after the move = %v, %v", rs, err)
	}
}

// TestPurge_queueEpoch: every recording of an unreadable epoch is queued
// with a receipt giving why, held or not, expired or not.
func TestPurge_queueEpoch(t *testing.T) {
	f := newPurgeFixture(t)
	epoch := f.held.KeyEpoch // held and live
	var want []string
	for _, r := range []*callvault.Recording{f.e1, f.e2, f.held, f.live} {
		if r.KeyEpoch == epoch {
			want = append(want, r.ID)
		}
	}
	slices.Sort(want)
	if len(want) < 2 || !slices.Contains(want, f.held.ID) {
		t.Fatalf("fixture: epoch %s has %v", epoch, want)
	}
	_, err := f.ps.QueueEpoch(f.as("dpo"), "run-1", epoch, "key destroyed")
	wantCode(t, "QueueEpoch(dpo)", err, callvault.EFORBIDDEN)
	_, err = f.ps.QueueEpoch(retentionJob(), "run-1", epoch, "")
	wantCode(t, "QueueEpoch(no reason)", err, callvault.EINVALID)
	_, err = f.ps.QueueEpoch(retentionJob(), "", epoch, "key destroyed")
	wantCode(t, "QueueEpoch(no run)", err, callvault.EINVALID)

	why := "restored backup: key of " + epoch + " destroyed"
	queued, err := f.ps.QueueEpoch(retentionJob(), "run-1", epoch, why)
	var got []string
	for _, e := range queued {
		got = append(got, e.ID)
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("QueueEpoch(%s) = %v, %v; want %v", epoch, got, err, want)
	}
	rs := receipts(t, f.db)
	for _, id := range want {
		if e := rs[id]; e == nil || e.Details["rule"] != why || e.Reason != why || e.Details["key_epoch"] != epoch || e.Details["run"] != "run-1" {
			t.Errorf("receipt for %s = %+v", id, e)
		}
	}
	if len(rs) != len(want) {
		t.Errorf("%d receipts, want %d", len(rs), len(want))
	}
	again, err := f.ps.QueueEpoch(retentionJob(), "run-2", epoch, why)
	if err != nil || len(again) != 0 || len(receipts(t, f.db)) != len(want) {
		t.Errorf("QueueEpoch again = %d queued, %v", len(again), err)
	}
	verifyAudit(t, NewAuditStore(f.db))
}
