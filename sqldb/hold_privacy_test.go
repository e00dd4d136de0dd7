package sqldb

import (
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/google/uuid"
)

// A principal cannot tell another academy's recording from one that does
// not exist; permission is decided before anything they typed is judged;
// and only someone who may release a hold can own it.
func TestHold_privacyAndOrder(t *testing.T) {
	f := newGrantFixture(t)
	s := NewHoldService(f.db)
	N := f.north.ID

	errOther := s.CreateHold(f.as("pnorth"), validHold(N), []string{f.s1})
	errMissing := s.CreateHold(f.as("pnorth"), validHold(N), []string{uuid.Must(uuid.NewV7()).String()})
	if callvault.ErrorCode(errOther) != callvault.EINVALID || callvault.ErrorCode(errMissing) != callvault.EINVALID ||
		!strings.Contains(callvault.ErrorMessage(errOther), "does not exist") || !strings.Contains(callvault.ErrorMessage(errMissing), "does not exist") {
		t.Errorf("another academy's recording: %v; a missing one: %v; want the same 'does not exist'", errOther, errMissing)
	}

	// Bad input from someone who may not hold at all is still EFORBIDDEN.
	bad := validHold(0)
	bad.Title = ""
	wantCode(t, "CreateHold(admin, no title)", s.CreateHold(f.as("admin"), bad, []string{f.n1}), callvault.EFORBIDDEN)

	h := f.mustHold(t, "dpo", validHold(0), f.n1)
	_, err := s.ReleaseHold(f.as("admin"), h.ID, "")
	wantCode(t, "ReleaseHold(admin, no note)", err, callvault.EFORBIDDEN)
	if _, err := s.ReleaseHold(f.as("dpo"), h.ID, "done"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "AddToHold(admin, released hold)", s.AddToHold(f.as("admin"), h.ID, []string{f.n2}), callvault.EFORBIDDEN)

	owned := validHold(0)
	owned.OwnerID = f.users["lis1"].ID
	wantCode(t, "CreateHold(owner a listener)", s.CreateHold(f.as("dpo"), owned, []string{f.n1}), callvault.EINVALID)
}

// Purge pages are bounded, and an id given twice is queued once.
func TestPurge_limitsAndDuplicates(t *testing.T) {
	f := newGrantFixture(t)
	p := NewPurgeStore(f.db)
	for _, n := range []int{0, -1, maxPurgePage + 1} {
		_, err := p.ExpiredRecordings(sysCtx(), t0.AddDate(5, 0, 0), callvault.ExpiredCursor{}, n)
		wantCode(t, "ExpiredRecordings(limit "+itoa(n)+")", err, callvault.EINVALID)
	}
	ids := []string{f.n1}
	for range purgeChunk + 3 {
		ids = append(ids, f.n2)
	}
	ids = append(ids, f.n1)
	q, err := p.QueuePurge(sysCtx(), "dup", t0.AddDate(5, 0, 0), ids)
	if err != nil || len(q) != 2 {
		t.Fatalf("QueuePurge(two ids, repeated) = %d queued, %v; want 2", len(q), err)
	}
}
