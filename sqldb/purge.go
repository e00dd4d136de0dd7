package sqldb

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/callvault/callvault"
)

// PurgeStore implements callvault.PurgeStore for the retention package.
type PurgeStore struct {
	db *DB
}

var _ callvault.PurgeStore = (*PurgeStore)(nil)

// NewPurgeStore returns a PurgeStore backed by db.
func NewPurgeStore(db *DB) *PurgeStore { return &PurgeStore{db: db} }

// purgeChunk bounds the ids in one IN list; maxPurgePage a page of
// ExpiredRecordings.
const (
	purgeChunk   = 500
	maxPurgePage = 10000
)

func requireSystem(ctx context.Context) error {
	if a := callvault.ActorFromContext(ctx); a == nil || !a.System {
		return callvault.Errorf(callvault.EFORBIDDEN, "only the retention job may purge recordings")
	}
	return nil
}

// notHeld is true for recordings r that no active hold covers.
const notHeld = `NOT EXISTS (SELECT 1 FROM hold_recordings hr CROSS JOIN holds h
	WHERE hr.recording_id = r.id AND h.id = hr.hold_id AND h.released_at IS NULL)`

// notQueued is true for recordings r whose purge has not begun.
const notQueued = `NOT EXISTS (SELECT 1 FROM purge_queue q WHERE q.recording_id = r.id)`

const expiredColumns = `r.id, r.academy_id, (SELECT a.slug FROM academies a WHERE a.id = r.academy_id), r.category,
	r.sha256, r.size, r.blob_key, r.key_epoch, r.retain_until`

func scanExpired(ctx context.Context, tx *dbTx, q string, args ...any) ([]*callvault.Expired, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var out []*callvault.Expired
	for rows.Next() {
		var e callvault.Expired
		if err := rows.Scan(&e.ID, &e.AcademyID, &e.Academy, &e.Category, &e.SHA256, &e.Size, &e.BlobKey,
			&e.KeyEpoch, msTime{&e.RetainUntil}); err != nil {
			return nil, dbError(err)
		}
		out = append(out, &e)
	}
	return out, dbError(rows.Err())
}

// ExpiredRecordings pages through the purge candidates in retain-until
// order (index recordings_retain).
func (s *PurgeStore) ExpiredRecordings(ctx context.Context, asOf time.Time, after callvault.ExpiredCursor, limit int) ([]*callvault.Expired, error) {
	if err := requireSystem(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxPurgePage {
		return nil, callvault.Errorf(callvault.EINVALID, "page size must be 1 to %d", maxPurgePage)
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	policy, err := loadPolicy(ctx, tx)
	if err != nil {
		return nil, err
	}
	afterMS := int64(-1)
	if !after.RetainUntil.IsZero() {
		afterMS = after.RetainUntil.UnixMilli()
	}
	out, err := scanExpired(ctx, tx, `SELECT `+expiredColumns+` FROM recordings r
		WHERE r.retain_until IS NOT NULL AND r.retain_until <= ? AND (r.retain_until, r.id) > (?, ?)
		AND `+notHeld+` AND `+notQueued+`
		ORDER BY r.retain_until, r.id LIMIT ?`, asOf.UnixMilli(), afterMS, after.ID, limit)
	if err != nil {
		return nil, err
	}
	describeRules(policy, out)
	return out, nil
}

func describeRules(policy callvault.RetentionPolicy, es []*callvault.Expired) {
	for _, e := range es {
		rule := policy.RuleFor(e.AcademyID, e.Category)
		if rule.AcademyID != 0 {
			rule.Academy = e.Academy
		}
		e.Rule = rule.String()
	}
}

// QueuePurge writes the receipts and queues, in one transaction; see
// callvault.PurgeStore. The receipts are this transaction's audit entries:
// a pending entry in ctx is not written here.
func (s *PurgeStore) QueuePurge(ctx context.Context, runID string, asOf time.Time, ids []string) ([]*callvault.Expired, error) {
	if err := requireSystem(ctx); err != nil {
		return nil, err
	}
	if runID == "" {
		return nil, callvault.Errorf(callvault.EINVALID, "a purge needs a run id")
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	policy, err := loadPolicy(ctx, tx)
	if err != nil {
		return nil, err
	}
	var queued []*callvault.Expired
	for chunk := range slices.Chunk(ids, purgeChunk) {
		args := []any{asOf.UnixMilli()}
		for _, id := range chunk {
			args = append(args, id)
		}
		es, err := scanExpired(ctx, tx, `SELECT `+expiredColumns+` FROM recordings r
			WHERE r.retain_until IS NOT NULL AND r.retain_until <= ? AND r.id IN (`+placeholders(len(chunk))+`)
			AND `+notHeld+` AND `+notQueued+` ORDER BY r.retain_until, r.id`, args...)
		if err != nil {
			return nil, err
		}
		queued = append(queued, es...)
	}
	if len(queued) == 0 {
		return nil, nil
	}
	describeRules(policy, queued)
	if err := queueWithReceipts(ctx, tx, runID, queued, ""); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, auditError(err)
	}
	return queued, nil
}

// queueWithReceipts queues recordings for deletion in tx and writes their
// receipts (with reason why, if any). Earlier entries about each recording
// lose their details (numbers, file names) first; the receipts keep only
// what the policy allows: id, hash, academy, rule, when and which run.
func queueWithReceipts(ctx context.Context, tx *dbTx, runID string, queued []*callvault.Expired, why string) error {
	actor := callvault.ActorFromContext(ctx)
	redact, err := tx.prepare(ctx, `UPDATE audit_events SET reason = '', details = '{}', redacted = 1
		WHERE target_type = 'recording' AND target_id = ? AND redacted = 0`)
	if err != nil {
		return auditError(err)
	}
	defer redact.Close()
	enqueue, err := tx.prepare(ctx, `INSERT INTO purge_queue (recording_id, run_id, blob_key, queued_at) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return dbError(err)
	}
	defer enqueue.Close()
	receipts := make([]*callvault.AuditEvent, len(queued))
	for i, e := range queued {
		if _, err := redact.ExecContext(ctx, e.ID); err != nil {
			return auditError(err)
		}
		if _, err := enqueue.ExecContext(ctx, e.ID, runID, e.BlobKey, tx.now.UnixMilli()); err != nil {
			return dbError(err)
		}
		ev := &callvault.AuditEvent{
			Action: callvault.ActionPurge, TargetType: "recording", TargetID: e.ID, AcademyID: e.AcademyID,
			Outcome: callvault.OutcomeAllowed, Reason: why,
			Details: map[string]string{
				"run":          runID,
				"sha256":       e.SHA256,
				"bytes":        strconv.FormatInt(e.Size, 10),
				"academy":      e.Academy,
				"rule":         e.Rule,
				"retain_until": e.RetainUntil.UTC().Format(time.RFC3339),
				"key_epoch":    e.KeyEpoch,
			},
		}
		ev.SetActor(actor)
		receipts[i] = ev
	}
	if err := validateAuditEvents(receipts); err != nil {
		return err
	}
	if err := appendAudit(ctx, tx, receipts); err != nil {
		return auditError(err)
	}
	return nil
}

// QueuedPurges lists the queue in id order.
func (s *PurgeStore) QueuedPurges(ctx context.Context, limit int) ([]callvault.Queued, error) {
	if err := requireSystem(ctx); err != nil {
		return nil, err
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, `SELECT recording_id, blob_key, run_id FROM purge_queue ORDER BY recording_id LIMIT ?`, limit)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var out []callvault.Queued
	for rows.Next() {
		var q callvault.Queued
		if err := rows.Scan(&q.ID, &q.BlobKey, &q.RunID); err != nil {
			return nil, dbError(err)
		}
		out = append(out, q)
	}
	return out, dbError(rows.Err())
}

// FinishPurge deletes queued recordings' rows and queue entries.
func (s *PurgeStore) FinishPurge(ctx context.Context, ids []string) error {
	if err := requireSystem(ctx); err != nil {
		return err
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for chunk := range slices.Chunk(ids, purgeChunk) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		in := `(` + placeholders(len(chunk)) + `)`
		// Only queued recordings: a receipt exists for every row deleted.
		if _, err := tx.exec(ctx, `DELETE FROM recordings WHERE id IN `+in+`
			AND id IN (SELECT recording_id FROM purge_queue)`, args...); err != nil {
			return dbError(err)
		}
		if _, err := tx.exec(ctx, `DELETE FROM purge_queue WHERE recording_id IN `+in, args...); err != nil {
			return dbError(err)
		}
	}
	return dbError(tx.Commit())
}

// EpochUsage counts, per key epoch, the rows, the held ones and the live
// ones (neither held nor expired at asOf).
func (s *PurgeStore) EpochUsage(ctx context.Context, asOf time.Time) ([]callvault.EpochUsage, error) {
	if err := requireSystem(ctx); err != nil {
		return nil, err
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.query(ctx, `SELECT key_epoch, COUNT(*), COALESCE(SUM(held), 0),
		COALESCE(SUM(NOT held AND NOT queued AND (retain_until IS NULL OR retain_until > ?)), 0)
		FROM (SELECT r.key_epoch, r.retain_until, NOT (`+notHeld+`) AS held, NOT (`+notQueued+`) AS queued FROM recordings r)
		GROUP BY key_epoch ORDER BY key_epoch`, asOf.UnixMilli())
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var out []callvault.EpochUsage
	for rows.Next() {
		var u callvault.EpochUsage
		if err := rows.Scan(&u.Epoch, &u.Recordings, &u.Held, &u.Live); err != nil {
			return nil, dbError(err)
		}
		out = append(out, u)
	}
	return out, dbError(rows.Err())
}

// HeldInEpoch returns the recordings of epoch, for re-wrapping.
func (s *PurgeStore) HeldInEpoch(ctx context.Context, epoch string) ([]*callvault.Recording, error) {
	if err := requireSystem(ctx); err != nil {
		return nil, err
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return queryRecordings(ctx, tx, `SELECT `+recordingColumns+` FROM recordings r
		WHERE r.key_epoch = ? AND NOT (`+notHeld+`) AND `+notQueued+` ORDER BY r.id`, epoch)
}

// MoveRecording re-points a recording at its re-encrypted blob, with the
// action's audit entry (from ctx) in the same transaction.
func (s *PurgeStore) MoveRecording(ctx context.Context, id, oldKey, newKey, newEpoch string) error {
	if err := requireSystem(ctx); err != nil {
		return err
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE recordings SET blob_key = ?, key_epoch = ? WHERE id = ? AND blob_key = ?`,
		newKey, newEpoch, id, oldKey)
	if err != nil {
		return dbError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err)
	} else if n == 0 {
		return callvault.Errorf(callvault.ECONFLICT, "recording %s no longer uses blob %s", id, oldKey)
	}
	return tx.commit()
}
