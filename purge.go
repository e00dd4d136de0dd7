package callvault

import (
	"context"
	"time"
)

// ActionPurge is the audit action of a deletion receipt: one entry per
// purged recording, written before anything is deleted.
const ActionPurge = "recording.purge"

// Expired is a recording past its retain-until that no active hold covers:
// what a purge run deletes, and what its receipt says.
type Expired struct {
	ID          string    `json:"id"`
	AcademyID   int64     `json:"academy_id"`
	Academy     string    `json:"academy"`
	Category    string    `json:"category,omitempty"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	BlobKey     string    `json:"-"`
	KeyEpoch    string    `json:"key_epoch"`
	RetainUntil time.Time `json:"retain_until"`
	Rule        string    `json:"rule"` // the retention rule, as RetentionRule.String
}

// ExpiredCursor is the position after the last Expired of a page.
type ExpiredCursor struct {
	RetainUntil time.Time
	ID          string
}

// Queued is a recording whose receipt is written and whose deletion must
// be finished (after a crash, by the next run).
type Queued struct {
	ID      string
	BlobKey string
	RunID   string
}

// EpochUsage says what still uses a key epoch.
type EpochUsage struct {
	Epoch      string `json:"epoch"`
	Recordings int    `json:"recordings"` // rows, including ones being purged
	Held       int    `json:"held"`       // of those, covered by an active hold
	Live       int    `json:"live"`       // of those, neither held nor past retain-until: the month is not done
}

// PurgeStore is what retention needs of the database. Every method is for
// the system actor (the retention job or command).
type PurgeStore interface {
	// ExpiredRecordings lists up to limit recordings with retain-until at or
	// before asOf, not held and not queued, in (retain-until, id) order
	// after the cursor.
	ExpiredRecordings(ctx context.Context, asOf time.Time, after ExpiredCursor, limit int) ([]*Expired, error)
	// QueuePurge, in one transaction, re-checks each id (still expired at
	// asOf, not held, not queued), blanks the reason and details of earlier
	// audit entries about it, writes its deletion receipt (ActionPurge,
	// details run, sha256, academy, rule, retain_until, key_epoch) and
	// queues it. If the receipts cannot be written nothing is queued.
	// Returns what was queued.
	QueuePurge(ctx context.Context, runID string, asOf time.Time, ids []string) ([]*Expired, error)
	// QueuedPurges lists up to limit queued recordings.
	QueuedPurges(ctx context.Context, limit int) ([]Queued, error)
	// FinishPurge deletes the rows of queued recordings (participants,
	// hold and request links cascade) and their queue entries, in one
	// transaction. Call it only after their blobs are deleted.
	FinishPurge(ctx context.Context, ids []string) error
	// EpochUsage reports every epoch any recording uses, at asOf.
	EpochUsage(ctx context.Context, asOf time.Time) ([]EpochUsage, error)
	// HeldInEpoch lists the recordings of epoch (all of which must be held,
	// or past retain-until and held) for re-wrapping.
	HeldInEpoch(ctx context.Context, epoch string) ([]*Recording, error)
	// QueueEpoch queues every recording of epoch, whatever its date or
	// holds, with a receipt each giving why: for a restored backup whose
	// recordings' key was destroyed since, which can never be read again.
	QueueEpoch(ctx context.Context, runID, epoch, why string) ([]*Expired, error)
	// MoveRecording points a recording at a new blob and key epoch after
	// its audio was re-encrypted there, if it still has oldKey. ECONFLICT
	// when it does not.
	MoveRecording(ctx context.Context, id, oldKey, newKey, newEpoch string) error
}
