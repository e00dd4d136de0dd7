package archive_test

import (
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/diskspace"
)

// Below the floor, a recording is refused before anything is written, with
// an error that tells the source to retry; above it, it is stored. Nothing
// is ever deleted to make room.
func TestIngestRefusedWhenStorageIsNearlyFull(t *testing.T) {
	f := newFixture(t)
	warn, _ := diskspace.ParseThreshold("10%")
	floor, _ := diskspace.ParseThreshold("1GB")
	free, clock := uint64(900e6), time.Now()
	mon := &diskspace.Monitor{Paths: []string{"/data"}, Warn: warn, Floor: floor,
		Statfs: func(string) (uint64, uint64, error) { return free, 100e9, nil },
		Now:    func() time.Time { return clock }}
	f.arch.Space = mon

	kept, _, err := f.ingest(t, "before", callWAV(t, "ulaw", time.Second))
	if callvault.ErrorCode(err) != callvault.EUNAVAILABLE || !strings.Contains(callvault.ErrorMessage(err), "nothing has been deleted") {
		t.Fatalf("ingest below the floor = %v, %v; want EUNAVAILABLE saying nothing was deleted", kept, err)
	}
	if committed, temp := f.walk(t); committed != 0 || temp != 0 {
		t.Errorf("a refused ingest left %d blobs and %d temp files", committed, temp)
	}

	free, clock = 5e9, clock.Add(2*time.Second) // readings are reused for a second
	rec, created, err := f.ingest(t, "after", callWAV(t, "ulaw", time.Second))
	if err != nil || !created {
		t.Fatalf("ingest with room = %v, %v", created, err)
	}
	if committed, _ := f.walk(t); committed != 1 {
		t.Errorf("%d blobs after one stored recording", committed)
	}
	if _, err := f.arch.Recordings.FindRecordingByID(f.sys, rec.ID); err != nil {
		t.Error(err)
	}
}
