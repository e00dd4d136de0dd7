package sqldb

import (
	"context"

	"github.com/callvault/callvault"
)

// QueueEpoch queues every recording of a key epoch that can no longer be
// read (its key was destroyed after a backup was taken, and the backup has
// been restored), with a receipt each saying why, in one transaction. Holds
// and retain-until do not matter: the audio is gone.
func (s *PurgeStore) QueueEpoch(ctx context.Context, runID, epoch, why string) ([]*callvault.Expired, error) {
	if err := requireSystem(ctx); err != nil {
		return nil, err
	}
	if runID == "" || why == "" {
		return nil, callvault.Errorf(callvault.EINVALID, "a purge needs a run id and a reason")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	queued, err := scanExpired(ctx, tx, `SELECT `+expiredColumns+` FROM recordings r
		WHERE r.key_epoch = ? AND `+notQueued+` ORDER BY r.id`, epoch)
	if err != nil || len(queued) == 0 {
		return nil, err
	}
	for _, e := range queued {
		e.Rule = why
	}
	if err := queueWithReceipts(ctx, tx, runID, queued, why); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, auditError(err)
	}
	return queued, nil
}
