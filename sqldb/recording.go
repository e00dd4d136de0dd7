package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/google/uuid"
)

// RecordingService implements callvault.RecordingService.
type RecordingService struct {
	db *DB
}

var _ callvault.RecordingService = (*RecordingService)(nil)

// NewRecordingService returns a RecordingService backed by db.
func NewRecordingService(db *DB) *RecordingService {
	return &RecordingService{db: db}
}

// CreateRecording inserts r and its participants in one transaction. An
// empty ID gets a new UUIDv7 and an empty State becomes StateStored; ID,
// State, Academy and CreatedAt are set on r.
func (s *RecordingService) CreateRecording(ctx context.Context, r *callvault.Recording) error {
	if err := validateRecording(r); err != nil {
		return err
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := createRecording(ctx, tx, r); err != nil {
		return err
	}
	return tx.commit()
}

func validateRecording(r *callvault.Recording) error {
	if r.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		r.ID = id.String()
	} else if _, err := uuid.Parse(r.ID); err != nil {
		return callvault.Errorf(callvault.EINVALID, "recording id %q is not a UUID", r.ID)
	}
	if r.State == "" {
		r.State = callvault.StateStored
	}
	switch {
	case r.AcademyID <= 0:
		return callvault.Errorf(callvault.EINVALID, "recording has no academy")
	case !validSourceKind(r.SourceKind):
		return callvault.Errorf(callvault.EINVALID, "unknown source kind %q", r.SourceKind)
	case r.SourceRef == "":
		return callvault.Errorf(callvault.EINVALID, "recording has no source reference")
	case r.StartedAt.IsZero():
		return callvault.Errorf(callvault.EINVALID, "recording has no start time")
	case r.Duration < 0:
		return callvault.Errorf(callvault.EINVALID, "negative duration")
	case !validDirection(r.Direction):
		return callvault.Errorf(callvault.EINVALID, "unknown direction %q", r.Direction)
	case !validState(r.State):
		return callvault.Errorf(callvault.EINVALID, "unknown state %q", r.State)
	case r.BlobKey == "":
		return callvault.Errorf(callvault.EINVALID, "recording has no blob key")
	}
	for _, p := range r.Participants {
		if p.Side != callvault.SideExternal && p.Side != callvault.SideStaff {
			return callvault.Errorf(callvault.EINVALID, "participant side %q is neither external nor staff", p.Side)
		}
	}
	return nil
}

func validSourceKind(k string) bool {
	return k == callvault.SourceSIPREC || k == callvault.SourceAPI || k == callvault.SourceImport
}

// validDirection accepts "" for calls whose direction the source did not say.
func validDirection(d string) bool {
	return d == "" || d == callvault.DirectionInbound || d == callvault.DirectionOutbound || d == callvault.DirectionInternal
}

func validState(s string) bool {
	return s == callvault.StateStored || s == callvault.StateMissing
}

func createRecording(ctx context.Context, tx *dbTx, r *callvault.Recording) error {
	// Name the missing parent instead of letting a bare FK error through.
	var slug string
	err := tx.queryRow(ctx, `SELECT slug FROM academies WHERE id = ?`, r.AcademyID).Scan(&slug)
	if errors.Is(err, sql.ErrNoRows) {
		return callvault.Errorf(callvault.EINVALID, "academy %d does not exist", r.AcademyID)
	} else if err != nil {
		return dbError(err)
	}
	var sourceID any
	if r.SourceID != 0 {
		sourceID = r.SourceID
		var n int
		if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM sources WHERE id = ?`, r.SourceID).Scan(&n); err != nil {
			return dbError(err)
		} else if n == 0 {
			return callvault.Errorf(callvault.EINVALID, "source %d does not exist", r.SourceID)
		}
	}

	if err := applyRetention(ctx, tx, r); err != nil {
		return err
	}
	createdAt := tx.now.Truncate(time.Millisecond)
	_, err = tx.exec(ctx, `INSERT INTO recordings (
		id, academy_id, source_id, source_kind, source_ref, started_at, ended_at,
		duration_ms, direction, format, codec, sample_rate, channels, data_offset,
		data_size, size, sha256, blob_key, key_epoch, retain_until, state, created_at, category,
		interrupted, pauses
	) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.AcademyID, sourceID, r.SourceKind, r.SourceRef, r.StartedAt.UnixMilli(), ms(r.EndedAt),
		r.Duration.Milliseconds(), r.Direction, r.Format, r.Codec, r.SampleRate, r.Channels, r.DataOffset,
		r.DataSize, r.Size, r.SHA256, r.BlobKey, r.KeyEpoch, ms(r.RetainUntil), r.State, createdAt.UnixMilli(), r.Category,
		r.Interrupted, encodePauses(r.Pauses))
	if isUnique(err) {
		if strings.Contains(err.Error(), "blob_key") {
			return callvault.Wrap(callvault.ECONFLICT, err, "another recording uses this blob key")
		}
		if strings.Contains(err.Error(), "recordings.id") {
			return callvault.Wrap(callvault.ECONFLICT, err, "recording id already exists")
		}
		return callvault.Wrap(callvault.ECONFLICT, err, "this source has already delivered a recording with this reference")
	} else if err != nil {
		return dbError(err)
	}

	if len(r.Participants) > 0 {
		stmt, err := tx.prepare(ctx, `INSERT INTO participants (
			recording_id, idx, number, number_rev, extension, name, side, started_at
		) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return dbError(err)
		}
		defer stmt.Close()
		for i, p := range r.Participants {
			if _, err := stmt.ExecContext(ctx, r.ID, i, p.Number, reverseDigits(p.Number), p.Extension,
				p.Name, p.Side, r.StartedAt.UnixMilli()); err != nil {
				return dbError(err)
			}
		}
	}
	r.Academy = slug
	if err := holdNewRecording(ctx, tx, r); err != nil {
		return err
	}
	r.CreatedAt = createdAt
	return nil
}

// reverseDigits returns the digits of s in reverse order: "+44 1632 718387"
// becomes "783817236144". A suffix of the number is then a prefix of this.
func reverseDigits(s string) string {
	b := make([]byte, 0, len(s))
	for i := len(s) - 1; i >= 0; i-- {
		if c := s[i]; c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	return string(b)
}

// FindRecordingByID returns ENOTFOUND when the recording does not exist or
// lies outside the actor's scope; the two are indistinguishable on purpose.
func (s *RecordingService) FindRecordingByID(ctx context.Context, id string) (*callvault.Recording, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findRecordingByID(ctx, tx, id)
}

func findRecordingByID(ctx context.Context, tx *dbTx, id string) (*callvault.Recording, error) {
	w := where{}
	w.add("r.id = ?", id)
	return findOneRecording(ctx, tx, w, "recording not found")
}

// FindRecordingBySourceRef is scoped like every read: ingest runs as the
// system actor.
func (s *RecordingService) FindRecordingBySourceRef(ctx context.Context, sourceID int64, ref string) (*callvault.Recording, error) {
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findRecordingBySourceRef(ctx, tx, sourceID, ref)
}

func findRecordingBySourceRef(ctx context.Context, tx *dbTx, sourceID int64, ref string) (*callvault.Recording, error) {
	w := where{}
	if sourceID == 0 {
		w.add("r.source_id IS NULL")
	} else {
		w.add("r.source_id = ?", sourceID)
	}
	w.add("r.source_ref = ?", ref)
	return findOneRecording(ctx, tx, w, "recording not found")
}

// findOneRecording runs a single-row lookup under the actor's scope.
func findOneRecording(ctx context.Context, tx *dbTx, w where, notFound string) (*callvault.Recording, error) {
	scope := callvault.RecordingScope(callvault.ActorFromContext(ctx))
	if scope.None {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "%s", notFound)
	}
	addScope(&w, scope, tx.now)
	rs, err := queryRecordings(ctx, tx, `SELECT `+recordingColumns+` FROM recordings r`+w.String(), w.args...)
	if err != nil {
		return nil, err
	} else if len(rs) == 0 {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "%s", notFound)
	}
	if err := attachParticipants(ctx, tx, rs); err != nil {
		return nil, err
	}
	return rs[0], nil
}

// addScope restricts r to what scope lets the actor see: the recordings of
// its academies and, when scope.GrantedTo is set, those of that user's
// grants active at now (from <= now < until, not revoked), whatever their
// academy. With neither, nothing. Callers handle None, and pass the time of
// their transaction (the DB's clock) as now.
//
// The grants are a list subquery, run once per statement: the user's
// unexpired grants from grants_listener, their recordings from
// grant_recordings_grant. A listener's search is then driven by it
// (recordings by primary key); for a principal it is an OR beside the
// academy, which leaves the number searches' plans as they were.
func addScope(w *where, scope callvault.Scope, now time.Time) {
	if scope.All {
		return
	}
	var (
		conds []string
		args  []any
	)
	if len(scope.AcademyIDs) > 0 {
		conds = append(conds, "r.academy_id IN ("+placeholders(len(scope.AcademyIDs))+")")
		for _, id := range scope.AcademyIDs {
			args = append(args, id)
		}
	}
	if scope.GrantedTo != 0 {
		conds = append(conds, grantedRecordings)
		t := now.UnixMilli() // grant times are whole ms: floor(now) compares exactly
		args = append(args, scope.GrantedTo, t, t)
	}
	switch len(conds) {
	case 0:
		w.add("1 = 0")
	case 1:
		w.add(conds[0], args...)
	default:
		w.add("("+strings.Join(conds, " OR ")+")", args...)
	}
}

// grantedRecordings is true for r when one of the user's grants active at
// now covers it. Arguments: user id, now, now (unix ms).
const grantedRecordings = `r.id IN (SELECT gr.recording_id FROM grants g CROSS JOIN grant_recordings gr
		WHERE g.listener_id = ? AND g.until_ms > ? AND g.from_ms <= ? AND g.revoked_at IS NULL
		AND gr.grant_id = g.id)`

// recordingColumns are read by queryRecordings, in this order, from
// recordings r. The academy's slug is a scalar subquery rather than a join
// so that the planner's choice of index for r is never upset by a tiny table.
const recordingColumns = `r.id, r.academy_id, (SELECT a.slug FROM academies a WHERE a.id = r.academy_id), r.source_id, r.source_kind, r.source_ref,
	r.started_at, r.ended_at, r.duration_ms, r.direction, r.format, r.codec, r.sample_rate,
	r.channels, r.data_offset, r.data_size, r.size, r.sha256, r.blob_key, r.key_epoch,
	r.retain_until, r.state, r.created_at, r.category, r.interrupted, r.pauses`

func queryRecordings(ctx context.Context, tx *dbTx, q string, args ...any) ([]*callvault.Recording, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var rs []*callvault.Recording
	for rows.Next() {
		var (
			r        callvault.Recording
			sourceID sql.NullInt64
			duration int64
			pauses   string
		)
		if err := rows.Scan(&r.ID, &r.AcademyID, &r.Academy, &sourceID, &r.SourceKind, &r.SourceRef,
			msTime{&r.StartedAt}, msTime{&r.EndedAt}, &duration, &r.Direction, &r.Format, &r.Codec, &r.SampleRate,
			&r.Channels, &r.DataOffset, &r.DataSize, &r.Size, &r.SHA256, &r.BlobKey, &r.KeyEpoch,
			msTime{&r.RetainUntil}, &r.State, msTime{&r.CreatedAt}, &r.Category, &r.Interrupted, &pauses); err != nil {
			return nil, err
		}
		if r.Pauses, err = decodePauses(pauses); err != nil {
			return nil, err
		}
		r.SourceID = sourceID.Int64
		r.Duration = time.Duration(duration) * time.Millisecond
		rs = append(rs, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	return rs, nil
}

// attachParticipants loads the participants of rs in one query.
func attachParticipants(ctx context.Context, tx *dbTx, rs []*callvault.Recording) error {
	if len(rs) == 0 {
		return nil
	}
	byID := make(map[string]*callvault.Recording, len(rs))
	args := make([]any, len(rs))
	for i, r := range rs {
		byID[r.ID] = r
		args[i] = r.ID
		r.Participants = []callvault.Participant{}
	}
	rows, err := tx.query(ctx, `SELECT recording_id, number, extension, name, side
		FROM participants WHERE recording_id IN (`+placeholders(len(args))+`)
		ORDER BY recording_id, idx`, args...)
	if err != nil {
		return dbError(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var p callvault.Participant
		if err := rows.Scan(&id, &p.Number, &p.Extension, &p.Name, &p.Side); err != nil {
			return err
		}
		if r := byID[id]; r != nil {
			r.Participants = append(r.Participants, p)
		}
	}
	return dbError(rows.Err())
}

// blobKeyBatch is how many keys RecordingBlobKeys reads per query. Reading
// in batches keeps read transactions short while fn does slow I/O, so WAL
// checkpoints are never held back by the sweeper.
const blobKeyBatch = 1000

// RecordingBlobKeys calls fn for every recording in the actor's scope, in id
// order. An error from fn stops the walk and is returned.
func (s *RecordingService) RecordingBlobKeys(ctx context.Context, fn func(id, key string) error) error {
	// The bulk listing is for the system (the sweeper): grants never widen it.
	scope := callvault.RecordingScope(callvault.ActorFromContext(ctx))
	scope.GrantedTo = 0
	if scope.None || (!scope.All && len(scope.AcademyIDs) == 0) {
		return callvault.Errorf(callvault.EFORBIDDEN, "not allowed to list recordings")
	}
	after := ""
	for {
		type idKey struct{ id, key string }
		var batch []idKey
		err := func() error {
			tx, err := s.db.beginRead(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			w := where{}
			w.add("r.id > ?", after)
			addScope(&w, scope, tx.now)
			rows, err := tx.query(ctx, `SELECT r.id, r.blob_key FROM recordings r`+w.String()+
				` ORDER BY r.id LIMIT ?`, append(w.args, blobKeyBatch)...)
			if err != nil {
				return dbError(err)
			}
			defer rows.Close()
			for rows.Next() {
				var k idKey
				if err := rows.Scan(&k.id, &k.key); err != nil {
					return err
				}
				batch = append(batch, k)
			}
			return dbError(rows.Err())
		}()
		if err != nil {
			return err
		}
		for _, k := range batch {
			if err := fn(k.id, k.key); err != nil {
				return err
			}
		}
		if len(batch) < blobKeyBatch {
			return nil
		}
		after = batch[len(batch)-1].id
	}
}

// SetRecordingState changes a recording's state. EINVALID for an unknown
// state, ENOTFOUND for an unknown recording.
func (s *RecordingService) SetRecordingState(ctx context.Context, id, state string) error {
	if !validState(state) {
		return callvault.Errorf(callvault.EINVALID, "unknown state %q", state)
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.exec(ctx, `UPDATE recordings SET state = ? WHERE id = ?`, state, id)
	if err != nil {
		return dbError(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err)
	} else if n == 0 {
		return callvault.Errorf(callvault.ENOTFOUND, "recording not found")
	}
	return tx.commit()
}

// encodePauses stores pauses as a JSON array of [from_ms, to_ms]; "" for
// none.
func encodePauses(ps []callvault.Pause) string {
	if len(ps) == 0 {
		return ""
	}
	pairs := make([][2]int64, len(ps))
	for i, p := range ps {
		pairs[i] = [2]int64{p.From.Milliseconds(), p.To.Milliseconds()}
	}
	b, _ := json.Marshal(pairs)
	return string(b)
}

func decodePauses(s string) ([]callvault.Pause, error) {
	if s == "" {
		return nil, nil
	}
	var pairs [][2]int64
	if err := json.Unmarshal([]byte(s), &pairs); err != nil {
		return nil, callvault.Wrap(callvault.EINTERNAL, err, "a recording's pauses are damaged")
	}
	out := make([]callvault.Pause, len(pairs))
	for i, p := range pairs {
		out[i] = callvault.Pause{From: time.Duration(p[0]) * time.Millisecond, To: time.Duration(p[1]) * time.Millisecond}
	}
	return out, nil
}
