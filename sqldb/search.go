package sqldb

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/google/uuid"
)

// Page sizes of FindRecordings.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// FindRecordings searches the recordings in the actor's scope, newest first.
// See callvault.RecordingService.
func (s *RecordingService) FindRecordings(ctx context.Context, f callvault.RecordingFilter) ([]*callvault.Recording, int, string, error) {
	a := callvault.ActorFromContext(ctx)
	scope := callvault.RecordingScope(a)
	if !callvault.CanSearch(a) {
		return nil, 0, "", callvault.Errorf(callvault.EFORBIDDEN, "not allowed to search recordings")
	}
	q, err := buildSearchAt(f, scope, s.db.Now().UTC())
	if err != nil {
		return nil, 0, "", err
	}

	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, 0, "", err
	}
	defer tx.Rollback()

	var total int
	if err := tx.queryRow(ctx, q.countSQL, q.countArgs...).Scan(&total); err != nil {
		return nil, 0, "", dbError(err)
	}
	rs, err := queryRecordings(ctx, tx, q.pageSQL, q.pageArgs...)
	if err != nil {
		return nil, 0, "", err
	}
	next := ""
	if len(rs) > q.limit {
		rs = rs[:q.limit]
		last := rs[len(rs)-1]
		next = encodeCursor(last.StartedAt, last.ID)
	}
	if err := attachParticipants(ctx, tx, rs); err != nil {
		return nil, 0, "", err
	}
	if rs == nil {
		rs = []*callvault.Recording{}
	}
	return rs, total, next, nil
}

// search is a FindRecordings query, built but not run, so that tests can
// EXPLAIN exactly what runs.
type search struct {
	limit     int
	countSQL  string
	countArgs []any
	pageSQL   string
	pageArgs  []any
}

// buildSearch is buildSearchAt for scopes without grants, whose SQL does not
// depend on the time (plan tests and benchmarks).
func buildSearch(f callvault.RecordingFilter, scope callvault.Scope) (*search, error) {
	if scope.GrantedTo != 0 {
		return nil, callvault.Errorf(callvault.EINTERNAL, "a scope with grants needs the time: use buildSearchAt")
	}
	return buildSearchAt(f, scope, time.Time{})
}

// buildSearchAt turns a filter and a scope into SQL; now decides which
// grants of scope.GrantedTo are active (see addScope).
//
// The driving table depends on the most selective filter. With a number (or
// an extension) the participants index yields the matching recording ids
// (number, then date, both read from the index) and recordings are fetched
// by primary key; CROSS JOIN pins that join order in SQLite (in PostgreSQL it
// is a plain join). Without one, recordings are read newest first from
// (started_at, id) or (academy_id, started_at, id).
func buildSearchAt(f callvault.RecordingFilter, scope callvault.Scope, now time.Time) (*search, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultLimit
	} else if limit > maxLimit {
		limit = maxLimit
	}

	if f.Direction != "" && !validDirection(f.Direction) {
		return nil, callvault.Errorf(callvault.EINVALID, "unknown direction %q", f.Direction)
	}
	if f.SourceKind != "" && !validSourceKind(f.SourceKind) {
		return nil, callvault.Errorf(callvault.EINVALID, "unknown source kind %q", f.SourceKind)
	}
	var cursor *cursor
	if f.After != "" {
		c, err := decodeCursor(f.After)
		if err != nil {
			return nil, err
		}
		cursor = &c
	}

	// Conditions on the participant that drives the search.
	var (
		drive   where
		driving bool
	)
	number, suffix, err := callvault.ParseNumberQuery(f.Number)
	if err != nil {
		return nil, err
	}
	switch {
	case number != "":
		driving = true
		rev := reverseDigits(number)
		drive.add("p.number_rev <> ''") // lets SQLite use the partial index
		if suffix {
			drive.add("p.number_rev >= ?", rev)
			if hi, ok := prefixEnd(rev); ok {
				drive.add("p.number_rev < ?", hi)
			}
		} else {
			// The same digits, however the number was stored; answered
			// from the index alone.
			drive.add("p.number_rev = ?", rev)
		}
	case f.Extension != "":
		driving = true
		drive.add("p.extension <> ''")
		drive.add("p.extension = ?", f.Extension)
	}
	if driving {
		if !f.From.IsZero() {
			drive.add("p.started_at >= ?", ceilMS(f.From))
		}
		if !f.To.IsZero() {
			drive.add("p.started_at < ?", ceilMS(f.To))
		}
	}

	// Conditions on the recording.
	var w where
	addScope(&w, scope, now)
	if !f.From.IsZero() {
		w.add("r.started_at >= ?", ceilMS(f.From))
	}
	if !f.To.IsZero() {
		w.add("r.started_at < ?", ceilMS(f.To))
	}
	if f.AcademyID != 0 {
		w.add("r.academy_id = ?", f.AcademyID)
	}
	if f.Direction != "" {
		w.add("r.direction = ?", f.Direction)
	}
	if f.MinDuration > 0 {
		w.add("r.duration_ms >= ?", f.MinDuration.Milliseconds())
	}
	if f.MaxDuration > 0 {
		w.add("r.duration_ms <= ?", f.MaxDuration.Milliseconds())
	}
	if f.SourceKind != "" {
		w.add("r.source_kind = ?", f.SourceKind)
	}
	if number != "" && f.Extension != "" {
		// Both filters: the extension may be on another participant.
		w.add(`EXISTS (SELECT 1 FROM participants pe WHERE pe.recording_id = r.id
			AND pe.extension <> '' AND pe.extension = ?)`, f.Extension)
	}

	from := func(d where) string {
		if !driving {
			return "recordings r"
		}
		return "(SELECT DISTINCT p.recording_id FROM participants p" + d.String() +
			") m CROSS JOIN recordings r"
	}
	join := func(w where) where {
		if driving {
			w.conds = append([]string{"r.id = m.recording_id"}, w.conds...)
		}
		return w
	}

	q := &search{limit: limit}
	cw := join(w)
	q.countSQL = "SELECT COUNT(*) FROM (SELECT 1 FROM " + from(drive) + cw.String() +
		" LIMIT ?) c"
	q.countArgs = append(append(append([]any{}, drive.args...), cw.args...), callvault.CountCap)

	// The page: older than the cursor. The bound goes into the driving
	// subquery too, so deeper pages read less of the index.
	pd, pw := drive, w
	if cursor != nil {
		if driving {
			pd.conds = append(append([]string{}, drive.conds...), "p.started_at <= ?")
			pd.args = append(append([]any{}, drive.args...), cursor.startedAt)
		}
		pw.conds = append(append([]string{}, w.conds...), "(r.started_at, r.id) < (?, ?)")
		pw.args = append(append([]any{}, w.args...), cursor.startedAt, cursor.id)
	}
	pw = join(pw)
	// One row more than the page tells whether there is a next page.
	q.pageSQL = "SELECT " + recordingColumns + " FROM " + from(pd) + pw.String() +
		" ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
	q.pageArgs = append(append(append([]any{}, pd.args...), pw.args...), limit+1)
	return q, nil
}

// prefixEnd returns the smallest digit string greater than every string
// that starts with prefix, so that "x >= prefix AND x < end" is a prefix
// match using only digits (it sorts the same under any collation). It
// reports false when there is none (prefix is all nines).
func prefixEnd(prefix string) (string, bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < '9' {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// cursor is the position after the last recording of a page.
type cursor struct {
	startedAt int64 // unix ms
	id        string
}

// encodeCursor returns an opaque cursor: base64url of "millis.id".
func encodeCursor(startedAt time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(startedAt.UnixMilli(), 10) + "." + id))
}

func decodeCursor(s string) (cursor, error) {
	bad := callvault.Errorf(callvault.EINVALID, "invalid cursor")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	ts, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return cursor{}, bad
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return cursor{}, bad
	}
	if _, err := uuid.Parse(id); err != nil {
		return cursor{}, bad
	}
	return cursor{startedAt: ms, id: id}, nil
}
