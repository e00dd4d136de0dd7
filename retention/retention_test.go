package retention_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/audit"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/retention"
	"github.com/callvault/callvault/vault"
)

var _ retention.Keyring = (*vault.Vault)(nil)
var _ retention.Rewrapper = (*archive.Archive)(nil)

// fixture is a whole deployment on real parts with a purger over it.
type fixture struct {
	*cvtest.Deployment
	purger *retention.Purger
	src    *callvault.Source
	dpo    *callvault.User
	now    time.Time
	audio  []byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	d := cvtest.New(t)
	f := &fixture{Deployment: d, now: time.Now()}
	f.src = &callvault.Source{Name: "pbx", Kind: callvault.SourceAPI, TokenHash: "ab" + hex.EncodeToString(make([]byte, 31))}
	if err := d.Sources.CreateSource(d.Sys, f.src); err != nil {
		t.Fatal(err)
	}
	f.dpo = &callvault.User{Login: "dpo", Name: "DPO", Role: callvault.RoleDPO}
	if err := d.Users.CreateUser(d.Sys, f.dpo); err != nil {
		t.Fatal(err)
	}
	f.purger = &retention.Purger{Store: d.Purges, Blobs: d.Blobs, Keys: d.Vault, Rewrap: d.Archive, Auditor: d.Log,
		Now: func() time.Time { return f.now }, Logger: cvtest.Quiet, Batch: 7, CloseGrace: -1}
	f.audio = cvtest.CallWAV(t, "ulaw", 2*time.Second)
	return f
}

// ingest stores a call from number that started at started.
func (f *fixture) ingest(t testing.TB, ref, number string, started time.Time) *callvault.Recording {
	t.Helper()
	rec, _, err := f.Archive.Ingest(context.Background(), archive.IngestRequest{Source: f.src,
		Meta: archive.Metadata{SourceRef: ref, StartedAt: started,
			Participants: []archive.MetadataParticipant{{Number: number, Side: callvault.SideExternal}}},
		Audio: bytes.NewReader(f.audio)})
	if err != nil {
		t.Fatalf("ingest %s: %v", ref, err)
	}
	return rec
}

func (f *fixture) asDPO() context.Context {
	return callvault.NewContextWithActor(context.Background(), &callvault.Actor{User: f.dpo})
}

func (f *fixture) hold(t testing.TB, ids []string, filter *callvault.HoldFilter) *callvault.Hold {
	t.Helper()
	h := &callvault.Hold{Reason: callvault.HoldComplaint, Title: "complaint 12", ReviewAt: f.now.Add(30 * 24 * time.Hour), Filter: filter}
	if err := f.Holds.CreateHold(f.asDPO(), h, ids); err != nil {
		t.Fatalf("CreateHold: %v", err)
	}
	return h
}

func (f *fixture) exists(t testing.TB, id string) bool {
	t.Helper()
	_, err := f.Recordings.FindRecordingByID(f.Sys, id)
	if err != nil && callvault.ErrorCode(err) != callvault.ENOTFOUND {
		t.Fatal(err)
	}
	return err == nil
}

func (f *fixture) blobExists(t testing.TB, key string) bool {
	t.Helper()
	b, err := f.Blobs.Open(context.Background(), key)
	if err != nil {
		return false
	}
	b.Close()
	return true
}

// receipts returns the deletion receipts in the trail, by recording id.
func (f *fixture) receipts(t testing.TB) map[string]*callvault.AuditEvent {
	t.Helper()
	out := map[string]*callvault.AuditEvent{}
	err := f.Audit.WalkAudit(f.Sys, 0, func(e *callvault.AuditEvent) error {
		if e.Action == callvault.ActionPurge {
			if out[e.TargetID] != nil {
				t.Errorf("two receipts for %s", e.TargetID)
			}
			out[e.TargetID] = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) run(t testing.TB, dry bool, asOf time.Time) (retention.Report, []string) {
	t.Helper()
	var ids []string
	rep, err := f.purger.Run(context.Background(), retention.Options{DryRun: dry, AsOf: asOf,
		Each: func(e *callvault.Expired) { ids = append(ids, e.ID) }})
	if err != nil {
		t.Fatalf("Run(dry=%v): %v", dry, err)
	}
	return rep, ids
}

// Recordings that started 13 months ago are purged without a hold, kept
// with one, kept while a second hold still covers them, and purged after
// the last release. The dry run names exactly what the real run deletes,
// and every deletion has one receipt in a trail that still verifies.
func TestPurgeRespectsHolds(t *testing.T) {
	f := newFixture(t)
	old := f.now.AddDate(0, -13, 0)
	var expired []*callvault.Recording
	for i := range 20 {
		expired = append(expired, f.ingest(t, "old-"+string(rune('a'+i)), "+441632960"+string(rune('0'+i%10))+"00", old.Add(time.Duration(i)*time.Minute)))
	}
	held := f.ingest(t, "held", "+447700900123", old.Add(time.Hour))
	recent := f.ingest(t, "recent", "+447700900123", f.now.AddDate(0, -1, 0))

	h1 := f.hold(t, []string{held.ID}, nil)
	h2 := f.hold(t, nil, &callvault.HoldFilter{Number: "900123"}) // holds recent too
	if h2.Recordings != 2 {
		t.Fatalf("saved-search hold covers %d recordings, want 2", h2.Recordings)
	}

	dryRep, dryIDs := f.run(t, true, time.Time{})
	if dryRep.Purged != len(expired) || len(f.receipts(t)) != 0 {
		t.Fatalf("dry run: %s; receipts %d; want %d and none written", dryRep.Summary(), len(f.receipts(t)), len(expired))
	}
	for _, r := range expired {
		if !f.exists(t, r.ID) || !f.blobExists(t, r.BlobKey) {
			t.Fatalf("dry run deleted %s", r.ID)
		}
	}

	rep, ids := f.run(t, false, time.Time{})
	if !slices.Equal(ids, dryIDs) {
		t.Errorf("real run purged\n%v\ndry run said\n%v", ids, dryIDs)
	}
	if rep.Purged != len(expired) || rep.Bytes != int64(len(expired)*len(f.audio)) {
		t.Errorf("report %s; want %d recordings, %d bytes", rep.Summary(), len(expired), len(expired)*len(f.audio))
	}
	receipts := f.receipts(t)
	for _, r := range expired {
		if f.exists(t, r.ID) || f.blobExists(t, r.BlobKey) {
			t.Errorf("%s survived the purge", r.ID)
		}
		e := receipts[r.ID]
		if e == nil {
			t.Errorf("no receipt for %s", r.ID)
			continue
		}
		if e.Details["sha256"] != r.SHA256 || e.Details["run"] != rep.RunID || e.Details["rule"] != "trust default: 12 months" ||
			e.Details["academy"] != callvault.UnassignedSlug || e.Details["key_epoch"] != r.KeyEpoch {
			t.Errorf("receipt of %s = %v", r.ID, e.Details)
		}
	}
	if !f.exists(t, held.ID) || !f.exists(t, recent.ID) {
		t.Fatal("a held or recent recording was purged")
	}

	// Releasing one hold keeps what the other still holds.
	if _, err := f.Holds.ReleaseHold(f.asDPO(), h1.ID, "complaint closed"); err != nil {
		t.Fatal(err)
	}
	if rep, _ := f.run(t, false, time.Time{}); rep.Purged != 0 || !f.exists(t, held.ID) {
		t.Fatalf("after releasing one of two holds: %s", rep.Summary())
	}
	if _, err := f.Holds.ReleaseHold(f.asDPO(), h2.ID, "no longer needed"); err != nil {
		t.Fatal(err)
	}
	rep, ids = f.run(t, false, time.Time{})
	if rep.Purged != 1 || !slices.Equal(ids, []string{held.ID}) || f.exists(t, held.ID) || !f.exists(t, recent.ID) {
		t.Fatalf("after releasing both holds: %s, %v", rep.Summary(), ids)
	}
	if f.receipts(t)[held.ID] == nil {
		t.Error("no receipt for the released recording")
	}

	// The receipts are chained: the trail verifies, and earlier entries
	// about purged recordings are redacted.
	vr, err := audit.Verify(f.Sys, f.Audit, nil, nil)
	if err != nil || vr.Problem != nil {
		t.Fatalf("audit verify: %v, %v", vr, err)
	}
	err = f.Audit.WalkAudit(f.Sys, 0, func(e *callvault.AuditEvent) error {
		if e.TargetID == held.ID && e.Action != callvault.ActionPurge && !e.Redacted {
			t.Errorf("entry %d (%s) about a purged recording kept its details %v", e.Seq, e.Action, e.Details)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A real run never looks ahead; a dry run may.
func TestRunRefusesTheFuture(t *testing.T) {
	f := newFixture(t)
	rec := f.ingest(t, "a", "+441632960001", f.now.AddDate(0, -6, 0))
	if rep, ids := f.run(t, true, f.now.AddDate(0, 7, 0)); rep.Purged != 1 || ids[0] != rec.ID {
		t.Fatalf("dry run in 7 months: %s", rep.Summary())
	}
	_, err := f.purger.Run(context.Background(), retention.Options{AsOf: f.now.AddDate(0, 7, 0)})
	if callvault.ErrorCode(err) != callvault.EINVALID || !f.exists(t, rec.ID) {
		t.Fatalf("real run in the future = %v; recording exists %v", err, f.exists(t, rec.ID))
	}
}

// When every recording of a month is purged its key is destroyed: a copy of
// the ciphertext (a backup) can never be read again. Held recordings of the
// month are re-wrapped under a hold epoch first and still play.
func TestShredsEmptyMonthsAndRewrapsHeld(t *testing.T) {
	f := newFixture(t)
	month := time.Date(f.now.Year(), f.now.Month(), 1, 12, 0, 0, 0, callvault.London).AddDate(0, -13, 0)
	a := f.ingest(t, "a", "+441632960001", month)
	b := f.ingest(t, "b", "+441632960002", month.Add(time.Hour))
	c := f.ingest(t, "c", "+441632960003", month.Add(2*time.Hour))
	epoch := a.KeyEpoch
	if b.KeyEpoch != epoch || c.KeyEpoch != epoch {
		t.Fatalf("epochs %s %s %s", a.KeyEpoch, b.KeyEpoch, c.KeyEpoch)
	}
	// A backup of b's ciphertext, taken before the purge.
	backup := readBlob(t, f, b.BlobKey)
	f.hold(t, []string{c.ID}, nil)

	rep, _ := f.run(t, false, time.Time{})
	if rep.Purged != 2 || rep.Rewrapped != 1 || !slices.Contains(rep.Destroyed, epoch) {
		t.Fatalf("run: %s; want 2 purged, 1 re-wrapped, %s destroyed", rep.Summary(), epoch)
	}
	_, _, err := f.Vault.Decrypt(bytes.NewReader(backup), int64(len(backup)), b.ID, epoch)
	if !errors.Is(err, vault.ErrEpochDestroyed) {
		t.Fatalf("decrypting the backup copy after shredding = %v, want ErrEpochDestroyed", err)
	}

	held, err := f.Recordings.FindRecordingByID(f.Sys, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if held.KeyEpoch != callvault.HoldEpoch(f.now) || held.BlobKey == c.BlobKey || f.blobExists(t, c.BlobKey) {
		t.Fatalf("held recording: epoch %s key %s (old key still there: %v)", held.KeyEpoch, held.BlobKey, f.blobExists(t, c.BlobKey))
	}
	ct := readBlob(t, f, held.BlobKey)
	plain, size, err := f.Vault.Decrypt(bytes.NewReader(ct), int64(len(ct)), held.ID, held.KeyEpoch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(plain, 0, size))
	if err != nil || !bytes.Equal(got, f.audio) {
		t.Fatalf("held audio after re-wrap: %d bytes (want the original %d), %v", len(got), len(f.audio), err)
	}
	if _, err := f.Archive.OpenAudio(context.Background(), held); err != nil {
		t.Errorf("the held recording no longer plays: %v", err)
	}
	// A late arrival for the shredded month is still stored, under the
	// current month.
	late := f.ingest(t, "late", "+441632960009", month.Add(3*time.Hour))
	if late.KeyEpoch != callvault.KeyEpoch(time.Now()) {
		t.Errorf("late arrival's epoch = %s, want this month", late.KeyEpoch)
	}
	states, err := f.Vault.Epochs()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Epoch == epoch && s.State != callvault.KeyEpochDestroyed {
			t.Errorf("epoch %s is %s", epoch, s.State)
		}
	}
}

// An epoch is only closed, not destroyed, until it has been closed for the
// grace period; an ingest racing the closure cannot land in it.
func TestCloseGrace(t *testing.T) {
	f := newFixture(t)
	f.purger.CloseGrace = time.Hour
	a := f.ingest(t, "a", "+441632960001", f.now.AddDate(0, -13, 0))
	rep, _ := f.run(t, false, time.Time{})
	if !slices.Contains(rep.Closed, a.KeyEpoch) || len(rep.Destroyed) != 0 {
		t.Fatalf("first run: %s; want %s closed, nothing destroyed", rep.Summary(), a.KeyEpoch)
	}
	if _, err := f.Vault.Encrypt(io.Discard, "x", a.KeyEpoch); !errors.Is(err, vault.ErrEpochDestroyed) {
		t.Errorf("Encrypt under a closing epoch = %v", err)
	}
	f.now = f.now.Add(2 * time.Hour)
	rep, _ = f.run(t, false, time.Time{})
	if !slices.Contains(rep.Destroyed, a.KeyEpoch) {
		t.Fatalf("second run after the grace: %s", rep.Summary())
	}
}

// A run killed after its receipts were written is finished by the next:
// no row without a blob, no blob without a row, one receipt each.
func TestResumesInterruptedPurge(t *testing.T) {
	f := newFixture(t)
	old := f.now.AddDate(0, -13, 0)
	a := f.ingest(t, "a", "+441632960001", old)
	b := f.ingest(t, "b", "+441632960002", old.Add(time.Minute))
	// The state a kill -9 leaves: both queued with receipts; a's blob
	// already deleted, b's not.
	ctx := callvault.NewContextWithActor(context.Background(), &callvault.Actor{System: true, Name: "retention:killed"})
	queued, err := f.Purges.QueuePurge(ctx, "killed", f.now, []string{a.ID, b.ID})
	if err != nil || len(queued) != 2 {
		t.Fatalf("QueuePurge = %d, %v", len(queued), err)
	}
	if err := f.Blobs.Delete(context.Background(), a.BlobKey); err != nil {
		t.Fatal(err)
	}
	rep, ids := f.run(t, false, time.Time{})
	if rep.Resumed != 2 || rep.Purged != 0 || len(ids) != 0 {
		t.Fatalf("resume: %s", rep.Summary())
	}
	for _, r := range []*callvault.Recording{a, b} {
		if f.exists(t, r.ID) || f.blobExists(t, r.BlobKey) {
			t.Errorf("%s half-deleted after resume", r.ID)
		}
	}
	if rc := f.receipts(t); len(rc) != 2 || rc[a.ID].Details["run"] != "killed" {
		t.Errorf("receipts after resume: %d", len(rc))
	}
}

func readBlob(t testing.TB, f *fixture, key string) []byte {
	t.Helper()
	b, err := f.Blobs.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	buf := make([]byte, b.Size())
	if _, err := b.ReadAt(buf, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return buf
}
