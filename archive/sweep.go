package archive

import (
	"context"
	"time"

	"github.com/callvault/callvault"
)

// SweepReport says what a sweep found and did.
type SweepReport struct {
	TempRemoved    int // abandoned uploads
	OrphansRemoved int // committed blobs with no row: the ingest never returned success
	Missing        int // rows whose blob is gone: marked missing, loudly
}

// Sweep reconciles the blob store with the database after a crash. Only
// blobs older than grace are touched, so ingests in flight are left alone.
// Orphan blobs were never acknowledged to their source (the row is written
// after the blob), so the source still holds the recording and will retry.
func (a *Archive) Sweep(ctx context.Context, grace time.Duration) (SweepReport, error) {
	var rep SweepReport
	sys := callvault.NewContextWithActor(ctx, callvault.SystemActor)
	cutoff := a.now().Add(-grace)

	// Blobs first, rows second: a blob committed after the walk cannot be
	// mistaken for an orphan, and one committed before it is older than its row.
	type blobInfo struct {
		mod  time.Time
		temp bool
	}
	blobs := map[string]blobInfo{}
	if err := a.Blobs.Walk(ctx, func(key string, mod time.Time, temp bool) error {
		blobs[key] = blobInfo{mod, temp}
		return nil
	}); err != nil {
		return rep, err
	}
	rows := map[string]string{}
	if err := a.Recordings.RecordingBlobKeys(sys, func(id, key string) error {
		rows[key] = id
		return nil
	}); err != nil {
		return rep, err
	}
	for key, b := range blobs {
		if _, ok := rows[key]; ok || b.mod.After(cutoff) {
			continue
		}
		if err := a.Blobs.Delete(ctx, key); err != nil {
			return rep, err
		}
		if b.temp {
			rep.TempRemoved++
		} else {
			rep.OrphansRemoved++
			a.log().Warn("sweep: removed orphan blob with no recording row", "key", key, "modified", b.mod)
		}
	}
	for key, id := range rows {
		if _, ok := blobs[key]; ok {
			continue
		}
		a.log().Error("sweep: recording has no audio blob", "id", id, "key", key)
		if err := a.Recordings.SetRecordingState(sys, id, callvault.StateMissing); err != nil {
			return rep, err
		}
		rep.Missing++
	}
	return rep, nil
}
