package sqldb

import (
	"context"
	"strconv"
	"time"

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
	actor := callvault.ActorFromContext(ctx)
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
	receipts := make([]*callvault.AuditEvent, len(queued))
	for i, e := range queued {
		if _, err := tx.exec(ctx, `UPDATE audit_events SET reason = '', details = '{}', redacted = 1
			WHERE target_type = 'recording' AND target_id = ? AND redacted = 0`, e.ID); err != nil {
			return nil, auditError(err)
		}
		if _, err := tx.exec(ctx, `INSERT INTO purge_queue (recording_id, run_id, blob_key, queued_at) VALUES (?, ?, ?, ?)`,
			e.ID, runID, e.BlobKey, tx.now.UnixMilli()); err != nil {
			return nil, dbError(err)
		}
		e.Rule = why
		ev := &callvault.AuditEvent{
			Action: callvault.ActionPurge, TargetType: "recording", TargetID: e.ID, AcademyID: e.AcademyID,
			Outcome: callvault.OutcomeAllowed, Reason: why,
			Details: map[string]string{"run": runID, "sha256": e.SHA256, "bytes": strconv.FormatInt(e.Size, 10),
				"academy": e.Academy, "rule": why, "retain_until": e.RetainUntil.UTC().Format(time.RFC3339), "key_epoch": e.KeyEpoch},
		}
		ev.SetActor(actor)
		receipts[i] = ev
	}
	if err := validateAuditEvents(receipts); err != nil {
		return nil, err
	}
	if err := appendAudit(ctx, tx, receipts); err != nil {
		return nil, auditError(err)
	}
	if err := tx.Commit(); err != nil {
		return nil, auditError(err)
	}
	return queued, nil
}
