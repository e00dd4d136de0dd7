package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// HoldService implements callvault.HoldService. Decisions are the root
// package's (CanCreateHold, CanReleaseHold, HoldScope), made on what is read
// inside the transaction that acts on them.
type HoldService struct {
	db *DB
}

var _ callvault.HoldService = (*HoldService)(nil)

// NewHoldService returns a HoldService backed by db.
func NewHoldService(db *DB) *HoldService { return &HoldService{db: db} }

// maxHoldRecordings bounds the explicit list of one create or add.
const maxHoldRecordings = 10000

// CreateHold stores h with its explicit recordings and, for a saved search,
// every stored recording it finds now. Later matches are added at ingest.
func (s *HoldService) CreateHold(ctx context.Context, h *callvault.Hold, recordingIDs []string) error {
	a := callvault.ActorFromContext(ctx)
	// Whether the actor may hold anything in this academy is decided
	// before their input is looked at; the recordings are checked later.
	if !callvault.CanCreateHold(a, h.AcademyID, nil) {
		return callvault.Errorf(callvault.EFORBIDDEN, "you may not place holds here")
	}
	now := s.db.Now()
	if err := h.Validate(now); err != nil {
		return err
	}
	if h.Filter == nil && len(recordingIDs) == 0 {
		return callvault.Errorf(callvault.EINVALID, "a hold needs recordings or a saved search")
	}
	if len(recordingIDs) > maxHoldRecordings {
		return callvault.Errorf(callvault.EINVALID, "at most %d recordings at a time; use a saved search", maxHoldRecordings)
	}
	if h.Filter != nil && h.AcademyID != 0 {
		if h.Filter.AcademyID != 0 && h.Filter.AcademyID != h.AcademyID {
			return callvault.Errorf(callvault.EINVALID, "the saved search must stay within the hold's academy")
		}
		h.Filter.AcademyID = h.AcademyID
	}
	if h.OwnerID == 0 && a.User != nil {
		h.OwnerID = a.User.ID
	}
	if h.OwnerID == 0 {
		return callvault.Errorf(callvault.EINVALID, "a hold needs an owner")
	}

	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if h.AcademyID != 0 {
		if err := tx.queryRow(ctx, `SELECT slug FROM academies WHERE id = ?`, h.AcademyID).Scan(&h.Academy); errors.Is(err, sql.ErrNoRows) {
			return callvault.Errorf(callvault.EINVALID, "academy %d does not exist", h.AcademyID)
		} else if err != nil {
			return dbError(err)
		}
	}
	var ownerRole string
	if err := tx.queryRow(ctx, `SELECT login, role FROM users WHERE id = ? AND disabled = 0`, h.OwnerID).Scan(&h.Owner, &ownerRole); errors.Is(err, sql.ErrNoRows) {
		return callvault.Errorf(callvault.EINVALID, "the owner must be an active account")
	} else if err != nil {
		return dbError(err)
	}
	if ownerRole != callvault.RoleDPO && ownerRole != callvault.RoleCEO && ownerRole != callvault.RolePrincipal {
		return callvault.Errorf(callvault.EINVALID, "the owner must be the DPO, the CEO or a principal: someone who may release the hold")
	}
	academies, err := heldAcademies(ctx, tx, callvault.RecordingScope(a), recordingIDs, h.AcademyID)
	if err != nil {
		return err
	}
	if !callvault.CanCreateHold(a, h.AcademyID, academies) {
		return callvault.Errorf(callvault.EFORBIDDEN, "you may not place a hold on these recordings")
	}
	var filter any
	if h.Filter != nil {
		b, err := json.Marshal(h.Filter)
		if err != nil {
			return callvault.Wrap(callvault.EINTERNAL, err, "could not store the saved search")
		}
		filter = string(b)
	}
	var academy any
	if h.AcademyID != 0 {
		academy = h.AcademyID
	}
	h.CreatedAt = tx.now.Truncate(time.Millisecond)
	h.ReviewAt = h.ReviewAt.UTC().Truncate(time.Millisecond)
	if err := tx.queryRow(ctx, `INSERT INTO holds (reason, title, reference, academy_id, filter, owner_id, review_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		h.Reason, h.Title, h.Reference, academy, filter, h.OwnerID, h.ReviewAt.UnixMilli(), h.CreatedAt.UnixMilli()).Scan(&h.ID); err != nil {
		return dbError(err)
	}
	if err := addHoldRecordings(ctx, tx, h.ID, recordingIDs); err != nil {
		return err
	}
	if h.Filter != nil {
		w, err := holdFilterWhere(h.Filter)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO hold_recordings (hold_id, recording_id, added_at)
			SELECT ?, r.id, ? FROM recordings r`+w.String()+` ON CONFLICT DO NOTHING`, append([]any{h.ID, tx.now.UnixMilli()}, w.args...)...); err != nil {
			return dbError(err)
		}
	}
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM hold_recordings WHERE hold_id = ?`, h.ID).Scan(&h.Recordings); err != nil {
		return dbError(err)
	}
	noteHold(ctx, h, map[string]string{
		"reason": h.Reason, "reference": h.Reference, "owner": h.Owner,
		"review_at": h.ReviewAt.Format(time.RFC3339), "recordings": strconv.Itoa(h.Recordings),
		"saved_search": strconv.FormatBool(h.Filter != nil),
	})
	return tx.commit()
}

func noteHold(ctx context.Context, h *callvault.Hold, details map[string]string) {
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID, e.AcademyID = "hold", strconv.FormatInt(h.ID, 10), h.AcademyID
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		for k, v := range details {
			e.Details[k] = v
		}
	})
}

// heldAcademies returns the academies of ids (distinct). EINVALID for
// an unknown recording, one already being purged, or one outside the hold's
// academy. A recording outside the actor's scope is reported exactly like
// one that does not exist.
func heldAcademies(ctx context.Context, tx *dbTx, scope callvault.Scope, ids []string, holdAcademy int64) ([]int64, error) {
	var out []int64
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := tx.query(ctx, `SELECT r.id, r.academy_id, EXISTS (SELECT 1 FROM purge_queue q WHERE q.recording_id = r.id)
			FROM recordings r WHERE r.id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, dbError(err)
		}
		found := map[string]bool{}
		for rows.Next() {
			var (
				id      string
				acad    int64
				purging bool
			)
			if err := rows.Scan(&id, &acad, &purging); err != nil {
				rows.Close()
				return nil, dbError(err)
			}
			if !scope.InScope(acad) {
				continue // reported as not existing below
			}
			if purging {
				rows.Close()
				return nil, callvault.Errorf(callvault.EINVALID, "recording %s has already been deleted under the retention policy", id)
			}
			if holdAcademy != 0 && acad != holdAcademy {
				rows.Close()
				return nil, callvault.Errorf(callvault.EINVALID, "recording %s belongs to another academy than the hold", id)
			}
			found[id] = true
			if !slices.Contains(out, acad) {
				out = append(out, acad)
			}
		}
		rows.Close()
		for _, id := range chunk {
			if !found[id] {
				return nil, callvault.Errorf(callvault.EINVALID, "recording %q does not exist", id)
			}
		}
	}
	return out, nil
}

func addHoldRecordings(ctx context.Context, tx *dbTx, holdID int64, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	stmt, err := tx.prepare(ctx, `INSERT INTO hold_recordings (hold_id, recording_id, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return dbError(err)
	}
	defer stmt.Close()
	for _, id := range ids {
		if _, err := stmt.ExecContext(ctx, holdID, id, tx.now.UnixMilli()); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// holdFilterWhere is the saved search as conditions on recordings r, with
// the search's semantics (see FindRecordings), excluding recordings whose
// purge has begun.
func holdFilterWhere(f *callvault.HoldFilter) (where, error) {
	var w where
	number, suffix, err := callvault.ParseNumberQuery(f.Number)
	if err != nil {
		return w, err
	}
	if number != "" {
		rev := reverseDigits(number)
		if suffix {
			cond, args := "p.number_rev >= ?", []any{rev}
			if hi, ok := prefixEnd(rev); ok {
				cond += " AND p.number_rev < ?"
				args = append(args, hi)
			}
			w.add("EXISTS (SELECT 1 FROM participants p WHERE p.recording_id = r.id AND p.number_rev <> '' AND "+cond+")", args...)
		} else {
			w.add("EXISTS (SELECT 1 FROM participants p WHERE p.recording_id = r.id AND p.number_rev <> '' AND p.number_rev = ?)", rev)
		}
	}
	// With both, as in search, the extension may be on another participant.
	if f.Extension != "" {
		w.add("EXISTS (SELECT 1 FROM participants p WHERE p.recording_id = r.id AND p.extension <> '' AND p.extension = ?)", f.Extension)
	}
	if f.AcademyID != 0 {
		w.add("r.academy_id = ?", f.AcademyID)
	}
	if f.Direction != "" {
		w.add("r.direction = ?", f.Direction)
	}
	if !f.From.IsZero() {
		w.add("r.started_at >= ?", ceilMS(f.From))
	}
	if !f.To.IsZero() {
		w.add("r.started_at < ?", ceilMS(f.To))
	}
	w.add("NOT EXISTS (SELECT 1 FROM purge_queue q WHERE q.recording_id = r.id)")
	return w, nil
}

// holdNewRecording adds a recording being ingested to every active hold
// whose saved search finds it, inside the ingest transaction, and notes the
// holds in the ingest's audit entry.
func holdNewRecording(ctx context.Context, tx *dbTx, r *callvault.Recording) error {
	rows, err := tx.query(ctx, `SELECT id, filter FROM holds WHERE released_at IS NULL AND filter IS NOT NULL`)
	if err != nil {
		return dbError(err)
	}
	var held []int64
	for rows.Next() {
		var (
			id  int64
			raw string
			f   callvault.HoldFilter
		)
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return dbError(err)
		}
		if err := json.Unmarshal([]byte(raw), &f); err != nil {
			rows.Close()
			return callvault.Wrap(callvault.EINTERNAL, err, "the saved search of hold "+strconv.FormatInt(id, 10)+" is damaged")
		}
		if f.Matches(r) {
			held = append(held, id)
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return dbError(err)
	}
	rows.Close()
	if len(held) == 0 {
		return nil
	}
	names := make([]string, len(held))
	for i, id := range held {
		if _, err := tx.exec(ctx, `INSERT INTO hold_recordings (hold_id, recording_id, added_at) VALUES (?, ?, ?)`,
			id, r.ID, tx.now.UnixMilli()); err != nil {
			return dbError(err)
		}
		names[i] = strconv.FormatInt(id, 10)
	}
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["holds"] = strings.Join(names, ",")
	})
	return nil
}

// AddToHold adds recordings to an active hold.
func (s *HoldService) AddToHold(ctx context.Context, id int64, recordingIDs []string) error {
	a := callvault.ActorFromContext(ctx)
	if len(recordingIDs) == 0 {
		return callvault.Errorf(callvault.EINVALID, "choose recordings to add")
	}
	if len(recordingIDs) > maxHoldRecordings {
		return callvault.Errorf(callvault.EINVALID, "at most %d recordings at a time", maxHoldRecordings)
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	h, err := findHold(ctx, tx, a, id)
	if err != nil {
		return err
	}
	if !callvault.CanCreateHold(a, h.AcademyID, nil) {
		return callvault.Errorf(callvault.EFORBIDDEN, "you may not add to this hold")
	}
	if !h.Active() {
		return callvault.Errorf(callvault.ECONFLICT, "hold %d has been released", id)
	}
	academies, err := heldAcademies(ctx, tx, callvault.RecordingScope(a), recordingIDs, h.AcademyID)
	if err != nil {
		return err
	}
	if !callvault.CanCreateHold(a, h.AcademyID, academies) {
		return callvault.Errorf(callvault.EFORBIDDEN, "you may not place a hold on these recordings")
	}
	if err := addHoldRecordings(ctx, tx, id, recordingIDs); err != nil {
		return err
	}
	noteHold(ctx, h, map[string]string{"added": strconv.Itoa(len(recordingIDs))})
	return tx.commit()
}

// ReleaseHold ends an active hold, with a note saying why.
func (s *HoldService) ReleaseHold(ctx context.Context, id int64, note string) (*callvault.Hold, error) {
	a := callvault.ActorFromContext(ctx)
	note = strings.TrimSpace(note)
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	h, err := findHold(ctx, tx, a, id)
	if err != nil {
		return nil, err
	}
	if !callvault.CanReleaseHold(a, h) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "you may not release this hold")
	}
	if !h.Active() {
		return nil, callvault.Errorf(callvault.ECONFLICT, "hold %d was already released", id)
	}
	if note == "" {
		return nil, callvault.Errorf(callvault.EINVALID, "say why the hold is released")
	} else if len(note) > 1000 {
		return nil, callvault.Errorf(callvault.EINVALID, "the note is longer than 1000 characters")
	}
	var by any
	if a.User != nil {
		by = a.User.ID
		h.ReleasedBy = a.User.Login
	}
	h.ReleasedAt, h.ReleaseNote = tx.now.Truncate(time.Millisecond), note
	if _, err := tx.exec(ctx, `UPDATE holds SET released_at = ?, released_by = ?, release_note = ? WHERE id = ?`,
		h.ReleasedAt.UnixMilli(), by, note, id); err != nil {
		return nil, dbError(err)
	}
	var still int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM hold_recordings hr WHERE hr.hold_id = ? AND EXISTS (
		SELECT 1 FROM hold_recordings o CROSS JOIN holds oh WHERE o.recording_id = hr.recording_id
		AND oh.id = o.hold_id AND oh.released_at IS NULL)`, id).Scan(&still); err != nil {
		return nil, dbError(err)
	}
	noteHold(ctx, h, map[string]string{"recordings": strconv.Itoa(h.Recordings), "still_held_by_other_holds": strconv.Itoa(still)})
	return h, tx.commit()
}

// FindHoldByID returns ENOTFOUND outside the actor's scope.
func (s *HoldService) FindHoldByID(ctx context.Context, id int64) (*callvault.Hold, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findHold(ctx, tx, callvault.ActorFromContext(ctx), id)
}

func findHold(ctx context.Context, tx *dbTx, a *callvault.Actor, id int64) (*callvault.Hold, error) {
	hs, err := queryHolds(ctx, tx, a, callvault.HoldListFilter{}, id)
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "hold %d not found", id)
	}
	return hs[0], nil
}

// FindHolds lists the holds in scope, active first, newest first.
func (s *HoldService) FindHolds(ctx context.Context, f callvault.HoldListFilter) ([]*callvault.Hold, error) {
	a := callvault.ActorFromContext(ctx)
	if !callvault.CanViewHolds(a) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "you may not see holds")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return queryHolds(ctx, tx, a, f, 0)
}

func queryHolds(ctx context.Context, tx *dbTx, a *callvault.Actor, f callvault.HoldListFilter, id int64) ([]*callvault.Hold, error) {
	scope := callvault.HoldScope(a)
	if scope.None {
		return nil, nil
	}
	var w where
	if !scope.All {
		conds := []string{"h.owner_id = ?"}
		args := []any{scope.GrantedTo}
		if len(scope.AcademyIDs) > 0 {
			conds = append(conds, "h.academy_id IN ("+placeholders(len(scope.AcademyIDs))+")")
			for _, id := range scope.AcademyIDs {
				args = append(args, id)
			}
		}
		w.add("("+strings.Join(conds, " OR ")+")", args...)
	}
	if id != 0 {
		w.add("h.id = ?", id)
	}
	if f.Active {
		w.add("h.released_at IS NULL")
	}
	if f.RecordingID != "" {
		w.add("h.id IN (SELECT hold_id FROM hold_recordings WHERE recording_id = ?)", f.RecordingID)
	}
	rows, err := tx.query(ctx, `SELECT h.id, h.reason, h.title, h.reference, COALESCE(h.academy_id, 0),
		COALESCE((SELECT a.slug FROM academies a WHERE a.id = h.academy_id), ''), h.filter, h.owner_id,
		(SELECT u.login FROM users u WHERE u.id = h.owner_id), h.review_at, h.created_at, h.released_at,
		COALESCE((SELECT u.login FROM users u WHERE u.id = h.released_by), ''), h.release_note,
		(SELECT COUNT(*) FROM hold_recordings hr WHERE hr.hold_id = h.id)
		FROM holds h`+w.String()+` ORDER BY h.released_at IS NOT NULL, h.id DESC LIMIT 1000`, w.args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var hs []*callvault.Hold
	for rows.Next() {
		var (
			h      callvault.Hold
			filter sql.NullString
		)
		if err := rows.Scan(&h.ID, &h.Reason, &h.Title, &h.Reference, &h.AcademyID, &h.Academy, &filter, &h.OwnerID,
			&h.Owner, msTime{&h.ReviewAt}, msTime{&h.CreatedAt}, msTime{&h.ReleasedAt}, &h.ReleasedBy, &h.ReleaseNote,
			&h.Recordings); err != nil {
			return nil, dbError(err)
		}
		if filter.Valid {
			h.Filter = new(callvault.HoldFilter)
			if err := json.Unmarshal([]byte(filter.String), h.Filter); err != nil {
				return nil, callvault.Wrap(callvault.EINTERNAL, err, "the saved search of a hold is damaged")
			}
		}
		hs = append(hs, &h)
	}
	return hs, dbError(rows.Err())
}

// HeldRecordingIDs lists a hold's recordings in the actor's recording scope.
func (s *HoldService) HeldRecordingIDs(ctx context.Context, id int64, after string, limit int) ([]string, error) {
	a := callvault.ActorFromContext(ctx)
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := findHold(ctx, tx, a, id); err != nil {
		return nil, err
	}
	var w where
	w.add("r.id IN (SELECT recording_id FROM hold_recordings WHERE hold_id = ?)", id)
	w.add("r.id > ?", after)
	addScope(&w, callvault.RecordingScope(a), tx.now)
	rows, err := tx.query(ctx, `SELECT r.id FROM recordings r`+w.String()+` ORDER BY r.id LIMIT ?`, append(w.args, limit)...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var rid string
		if err := rows.Scan(&rid); err != nil {
			return nil, dbError(err)
		}
		ids = append(ids, rid)
	}
	return ids, dbError(rows.Err())
}
