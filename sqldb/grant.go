package sqldb

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/callvault/callvault"
)

// GrantService implements callvault.GrantService: listen requests, their
// decisions, and the grants that let named people stream recordings for a
// while (migrations/sqlite/0003_grants.sql).
//
// Every decision is made by the root package's functions (CanRequest,
// CanDecide, CanRevoke, CanBreakGlass, CanRatify), evaluated inside the
// write transaction that acts on it, with the academies of the recordings
// read in that transaction. Reads are scoped in SQL from the actor in the
// context (see readScope); what the actor may not see is ENOTFOUND, and a
// mutation refused that way marks the pending audit entry denied.
//
// Times: a grant runs from its From (inclusive, the DB's clock truncated to
// the second) to its Until (exclusive), stored as unix milliseconds and
// compared with the current time on every check, so it expires by itself,
// exact to the millisecond, with no job.
type GrantService struct {
	db *DB

	// ActiveGrant's statement, prepared once (on each reader connection,
	// by database/sql) instead of on every call.
	mu         sync.Mutex
	activeStmt *sql.Stmt
}

var _ callvault.GrantService = (*GrantService)(nil)

// NewGrantService returns a GrantService backed by db.
func NewGrantService(db *DB) *GrantService {
	return &GrantService{db: db}
}

// Limits of a listen request and of the texts that explain decisions, in
// characters (runes, after trimming spaces).
const (
	maxRequestRecordings = 100
	maxRequestListeners  = 20
	minJustification     = 10
	minReason            = 10 // break-glass
	minNote              = 3  // decision, revocation, ratification
	maxText              = 2000
	maxPurposeText       = 200
)

// Audit target types.
const (
	targetListenRequest = "listen_request"
	targetGrant         = "grant"
)

// readScope is what the actor may read of listen requests and grants.
type readScope struct {
	none       bool
	all        bool    // system, admin, dpo, ceo
	userID     int64   // the user's own: requests naming them, grants they hold
	principal  bool    // also what they made or granted, and what concerns only their academies
	academyIDs []int64 // the principal's academies
}

func readScopeOf(a *callvault.Actor) readScope {
	switch {
	case a == nil:
		return readScope{none: true}
	case a.System:
		return readScope{all: true}
	case a.User == nil || a.User.Disabled:
		return readScope{none: true}
	}
	switch a.User.Role {
	case callvault.RoleAdmin, callvault.RoleDPO, callvault.RoleCEO:
		return readScope{all: true}
	case callvault.RolePrincipal:
		return readScope{userID: a.User.ID, principal: true, academyIDs: slices.Clone(a.User.AcademyIDs)}
	case callvault.RoleListener:
		return readScope{userID: a.User.ID}
	}
	return readScope{none: true}
}

// allRecordingsIn is an SQL condition: the request or grant whose id is
// outer has at least one recording (in link, keyed by col) and every one of
// them belongs to academies — callvault's rule for what a principal may
// authorise. academies must not be empty.
func allRecordingsIn(link, col, outer string, academies []int64) (string, []any) {
	args := make([]any, len(academies))
	for i, id := range academies {
		args[i] = id
	}
	return "(EXISTS (SELECT 1 FROM " + link + " x WHERE x." + col + " = " + outer + ")" +
		" AND NOT EXISTS (SELECT 1 FROM " + link + " x CROSS JOIN recordings r WHERE x." + col + " = " + outer +
		" AND r.id = x.recording_id AND r.academy_id NOT IN (" + placeholders(len(academies)) + ")))", args
}

// addRequestScope restricts listen_requests q to the scope: everything, or
// the requests naming the user as a listener, and for a principal also the
// requests they made and those whose recordings are all in their
// academies. Callers handle none.
func (sc readScope) addRequestScope(w *where) {
	if sc.all {
		return
	}
	conds := []string{"q.id IN (SELECT l.request_id FROM listen_request_listeners l WHERE l.user_id = ?)"}
	args := []any{sc.userID}
	if sc.principal {
		conds = append(conds, "q.requester_id = ?")
		args = append(args, sc.userID)
		if len(sc.academyIDs) > 0 {
			c, a := allRecordingsIn("listen_request_recordings", "request_id", "q.id", sc.academyIDs)
			conds = append(conds, c)
			args = append(args, a...)
		}
	}
	w.add("("+strings.Join(conds, " OR ")+")", args...)
}

// addGrantScope restricts grants g to the scope: everything, or the grants
// the user holds, and for a principal also those they granted and those
// whose recordings are all in their academies. Callers handle none.
func (sc readScope) addGrantScope(w *where) {
	if sc.all {
		return
	}
	conds := []string{"g.listener_id = ?"}
	args := []any{sc.userID}
	if sc.principal {
		conds = append(conds, "g.granted_by = ?")
		args = append(args, sc.userID)
		if len(sc.academyIDs) > 0 {
			c, a := allRecordingsIn("grant_recordings", "grant_id", "g.id", sc.academyIDs)
			conds = append(conds, c)
			args = append(args, a...)
		}
	}
	w.add("("+strings.Join(conds, " OR ")+")", args...)
}

// text trims s and checks its length in characters.
func text(what, s string, lo, hi int) (string, error) {
	s = strings.TrimSpace(s)
	switch n := utf8.RuneCountInString(s); {
	case !utf8.ValidString(s):
		return "", callvault.Errorf(callvault.EINVALID, "%s is not valid text", what)
	case n == 0 && lo > 0:
		return "", callvault.Errorf(callvault.EINVALID, "%s is required", what)
	case n < lo || n > hi:
		return "", callvault.Errorf(callvault.EINVALID, "%s must be %d to %d characters", what, lo, hi)
	}
	return s, nil
}

// checkRecordingIDs checks a list of recordings for a request or a
// break-glass grant: 1 to 100, none twice.
func checkRecordingIDs(ids []string) error {
	switch {
	case len(ids) == 0:
		return callvault.Errorf(callvault.EINVALID, "name at least one recording")
	case len(ids) > maxRequestRecordings:
		return callvault.Errorf(callvault.EINVALID, "at most %d recordings at a time", maxRequestRecordings)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id == "" {
			return callvault.Errorf(callvault.EINVALID, "empty recording id")
		}
		if seen[id] {
			return callvault.Errorf(callvault.EINVALID, "recording %s is named twice", id)
		}
		seen[id] = true
	}
	return nil
}

// recordingAcademies returns the academy of each of ids that exists and is
// within scope (evaluated at tx.now), or EINVALID naming the first that is
// not: to the actor, a recording outside their scope does not exist.
func recordingAcademies(ctx context.Context, tx *dbTx, ids []string, scope callvault.Scope) (map[string]int64, error) {
	found := make(map[string]int64, len(ids))
	if !scope.None {
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		w := where{}
		w.add("r.id IN ("+placeholders(len(ids))+")", args...)
		addScope(&w, scope, tx.now)
		rows, err := tx.query(ctx, `SELECT r.id, r.academy_id FROM recordings r`+w.String(), w.args...)
		if err != nil {
			return nil, dbError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var academy int64
			if err := rows.Scan(&id, &academy); err != nil {
				return nil, err
			}
			found[id] = academy
		}
		if err := rows.Err(); err != nil {
			return nil, dbError(err)
		}
	}
	for _, id := range ids {
		if _, ok := found[id]; !ok {
			return nil, callvault.Errorf(callvault.EINVALID, "recording %s not found", id)
		}
	}
	return found, nil
}

// academiesOf returns the distinct academies of m, sorted.
func academiesOf(m map[string]int64) []int64 {
	ids := make([]int64, 0, len(m))
	for _, id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// firstAcademy is the academy an audit entry is filed under.
func firstAcademy(ids []int64) int64 {
	if len(ids) == 0 {
		return 0
	}
	return ids[0]
}

// noteTarget names the request or grant an action is about in the pending
// audit entry, with its academy, reason and details once known. Details
// already noted (by the web layer) are kept unless replaced.
func noteTarget(ctx context.Context, targetType string, id int64, academies []int64, reason string, details map[string]string) {
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		e.TargetType = targetType
		if id != 0 {
			e.TargetID = strconv.FormatInt(id, 10)
		}
		if len(academies) > 0 {
			e.AcademyID = firstAcademy(academies)
		}
		if reason != "" {
			e.Reason = reason
		}
		if len(details) > 0 && e.Details == nil {
			e.Details = map[string]string{}
		}
		for k, v := range details {
			e.Details[k] = v
		}
	})
}

// notVisible is the error for a request or grant the actor cannot see:
// ENOTFOUND either way, but when it exists the refusal was an access
// decision, and the pending audit entry says so (denied).
func notVisible(ctx context.Context, tx *dbTx, table string, id int64, what string) error {
	var n int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE id = ?`, id).Scan(&n); err != nil {
		return dbError(err)
	}
	if n > 0 {
		callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) { e.Outcome = callvault.OutcomeDenied })
	}
	return callvault.Errorf(callvault.ENOTFOUND, "%s not found", what)
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}

// idBatch is how many ids one "IN (...)" lists when loading the recordings
// and listeners of many requests or grants.
const idBatch = 500

// inBatches calls fn with placeholders and arguments for ids, idBatch at a
// time.
func inBatches(ids []int64, fn func(ph string, args []any) error) error {
	for lo := 0; lo < len(ids); lo += idBatch {
		part := ids[lo:min(lo+idBatch, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		if err := fn(placeholders(len(part)), args); err != nil {
			return err
		}
	}
	return nil
}

// ---- Listen requests ----

// DecideListenRequest approves or declines a request in one write
// transaction: ENOTFOUND when the actor cannot see it, ECONFLICT unless it
// is pending, EFORBIDDEN unless callvault.CanDecide (with the academies of
// its recordings as they are now). The note is required (3 to 2,000
// characters). Approval creates one grant per listener, from now (to the
// second) for the requested duration, covering the request's recordings;
// EINVALID if a listener has been disabled or no recording is left since.
func (s *GrantService) DecideListenRequest(ctx context.Context, id int64, approve bool, note string) (*callvault.ListenRequest, []*callvault.Grant, error) {
	a := callvault.ActorFromContext(ctx)
	decision := map[bool]string{true: "approve", false: "decline"}[approve]
	noteTarget(ctx, targetListenRequest, id, nil, "", map[string]string{"decision": decision})
	note, err := text("a note on the decision", note, minNote, maxText)
	if err != nil {
		return nil, nil, err
	}
	sc := readScopeOf(a)
	if sc.none {
		return nil, nil, callvault.Errorf(callvault.ENOTFOUND, "listen request not found")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()

	r, err := findRequestByID(ctx, tx, sc, id)
	if callvault.ErrorCode(err) == callvault.ENOTFOUND {
		return nil, nil, notVisible(ctx, tx, "listen_requests", id, "listen request")
	} else if err != nil {
		return nil, nil, err
	}
	noteTarget(ctx, targetListenRequest, id, r.AcademyIDs, "", nil)
	switch {
	case r.State != callvault.RequestPending:
		return nil, nil, callvault.Errorf(callvault.ECONFLICT, "this request has already been %s", r.State)
	case !callvault.CanDecide(a, r):
		return nil, nil, callvault.Errorf(callvault.EFORBIDDEN,
			"only the CEO, or the Principal of every academy concerned, may decide; never the person who asked")
	}

	state := map[bool]string{true: callvault.RequestApproved, false: callvault.RequestDeclined}[approve]
	decidedAt := tx.now.Truncate(time.Millisecond)
	res, err := tx.exec(ctx, `UPDATE listen_requests SET state = ?, decider_id = ?, decided_at = ?, decision_note = ?
		WHERE id = ? AND state = ?`, state, a.User.ID, decidedAt.UnixMilli(), note, id, callvault.RequestPending)
	if err != nil {
		return nil, nil, dbError(err)
	} else if n, err := res.RowsAffected(); err != nil {
		return nil, nil, dbError(err)
	} else if n != 1 {
		return nil, nil, callvault.Errorf(callvault.ECONFLICT, "this request has already been decided")
	}

	details := map[string]string{"decision": decision, "listeners": strings.Join(r.Listeners, ",")}
	grants := []*callvault.Grant{}
	if approve {
		if len(r.RecordingIDs) == 0 {
			return nil, nil, callvault.Errorf(callvault.EINVALID, "the recordings of this request no longer exist")
		}
		if _, err := enabledUsers(ctx, tx, r.ListenerIDs); err != nil {
			return nil, nil, err
		}
		from := tx.now.Truncate(time.Second)
		for i, uid := range r.ListenerIDs {
			g := &callvault.Grant{
				RequestID: r.ID, ListenerID: uid, Listener: r.Listeners[i],
				RecordingIDs: slices.Clone(r.RecordingIDs), AcademyIDs: slices.Clone(r.AcademyIDs),
				From: from, Until: from.Add(r.Duration), GrantedBy: a.User.ID,
			}
			if err := insertGrant(ctx, tx, g); err != nil {
				return nil, nil, err
			}
			grants = append(grants, g)
		}
		ids := make([]int64, len(grants))
		for i, g := range grants {
			ids[i] = g.ID
		}
		details["until"] = from.Add(r.Duration).Format(time.RFC3339)
		details["grants"] = joinIDs(ids)
	}
	noteTarget(ctx, targetListenRequest, id, r.AcademyIDs, note, details)
	if err := tx.commit(); err != nil {
		return nil, nil, err
	}
	r.State, r.DeciderID, r.Decider, r.DecidedAt, r.DecisionNote = state, a.User.ID, a.User.Login, decidedAt, note
	return r, grants, nil
}

// ---- Grants ----

// insertGrant stores g and its recordings, and sets g.ID.
func insertGrant(ctx context.Context, tx *dbTx, g *callvault.Grant) error {
	var requestID any
	if g.RequestID != 0 {
		requestID = g.RequestID
	}
	if err := tx.queryRow(ctx, `INSERT INTO grants (request_id, listener_id, from_ms, until_ms, granted_by, break_glass, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, requestID, g.ListenerID, g.From.UnixMilli(), g.Until.UnixMilli(),
		g.GrantedBy, g.BreakGlass, g.Reason).Scan(&g.ID); err != nil {
		return dbError(err)
	}
	stmt, err := tx.prepare(ctx, `INSERT INTO grant_recordings (recording_id, listener_id, grant_id) VALUES (?, ?, ?)`)
	if err != nil {
		return dbError(err)
	}
	defer stmt.Close()
	for _, rid := range g.RecordingIDs {
		if _, err := stmt.ExecContext(ctx, rid, g.ListenerID, g.ID); err != nil {
			return dbError(err)
		}
	}
	return nil
}

// grantColumns are read by queryGrants, in this order, from grants g.
const grantColumns = `g.id, g.request_id, g.listener_id, (SELECT u.login FROM users u WHERE u.id = g.listener_id),
	g.from_ms, g.until_ms, g.granted_by, g.revoked_at, g.revoked_by, g.break_glass, g.reason,
	g.ratified_by, g.ratified_at`

// queryGrants runs q, which selects grantColumns, and loads the recordings
// and academies of the grants.
func queryGrants(ctx context.Context, tx *dbTx, q string, args ...any) ([]*callvault.Grant, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, dbError(err)
	}
	gs, err := scanGrants(rows)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*callvault.Grant, len(gs))
	ids := make([]int64, len(gs))
	for i, g := range gs {
		byID[g.ID], ids[i] = g, g.ID
	}
	err = inBatches(ids, func(ph string, args []any) error {
		rows, err := tx.query(ctx, `SELECT gr.grant_id, gr.recording_id, r.academy_id
			FROM grant_recordings gr CROSS JOIN recordings r
			WHERE gr.grant_id IN (`+ph+`) AND r.id = gr.recording_id ORDER BY gr.grant_id, gr.recording_id`, args...)
		if err != nil {
			return dbError(err)
		}
		return scanGrantRecordings(rows, byID)
	})
	if err != nil {
		return nil, err
	}
	return gs, nil
}

// scanGrants reads grantColumns from rows and closes them.
func scanGrants(rows *sql.Rows) ([]*callvault.Grant, error) {
	defer rows.Close()
	var gs []*callvault.Grant
	for rows.Next() {
		var s grantScan
		if err := rows.Scan(s.dest()...); err != nil {
			return nil, err
		}
		gs = append(gs, s.grant())
	}
	return gs, dbError(rows.Err())
}

// grantScan receives grantColumns.
type grantScan struct {
	g                                callvault.Grant
	requestID, revokedBy, ratifiedBy sql.NullInt64
}

func (s *grantScan) dest() []any {
	g := &s.g
	return []any{&g.ID, &s.requestID, &g.ListenerID, &g.Listener, msTime{&g.From}, msTime{&g.Until},
		&g.GrantedBy, msTime{&g.RevokedAt}, &s.revokedBy, &g.BreakGlass, &g.Reason, &s.ratifiedBy, msTime{&g.RatifiedAt}}
}

func (s *grantScan) grant() *callvault.Grant {
	g := s.g
	g.RequestID, g.RevokedBy, g.RatifiedBy = s.requestID.Int64, s.revokedBy.Int64, s.ratifiedBy.Int64
	g.RecordingIDs, g.AcademyIDs = []string{}, []int64{}
	return &g
}

// scanGrantRecordings reads (grant id, recording id, academy id) rows,
// ordered by grant and recording, into the grants of byID, and closes them.
func scanGrantRecordings(rows *sql.Rows, byID map[int64]*callvault.Grant) error {
	defer rows.Close()
	for rows.Next() {
		var (
			id, academy int64
			rid         string
		)
		if err := rows.Scan(&id, &rid, &academy); err != nil {
			return err
		}
		g := byID[id]
		g.RecordingIDs = append(g.RecordingIDs, rid)
		if i, found := slices.BinarySearch(g.AcademyIDs, academy); !found {
			g.AcademyIDs = slices.Insert(g.AcademyIDs, i, academy)
		}
	}
	return dbError(rows.Err())
}

// FindGrantByID returns ENOTFOUND when the grant does not exist or is
// outside the actor's scope (see FindGrants).
func (s *GrantService) FindGrantByID(ctx context.Context, id int64) (*callvault.Grant, error) {
	sc := readScopeOf(callvault.ActorFromContext(ctx))
	if sc.none {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "grant not found")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findGrantByID(ctx, tx, sc, id)
}

func findGrantByID(ctx context.Context, tx *dbTx, sc readScope, id int64) (*callvault.Grant, error) {
	w := where{}
	w.add("g.id = ?", id)
	sc.addGrantScope(&w)
	gs, err := queryGrants(ctx, tx, `SELECT `+grantColumns+` FROM grants g`+w.String(), w.args...)
	if err != nil {
		return nil, err
	} else if len(gs) == 0 {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "grant not found")
	}
	return gs[0], nil
}

// FindGrants lists the grants in the actor's scope matching f, newest
// first. Scope: everyone sees the grants they hold; admins, the DPO and the
// CEO every grant; a principal also those they granted and those whose
// recordings are all in their academies. ActiveAt keeps the grants with
// From <= t < Until, not revoked.
func (s *GrantService) FindGrants(ctx context.Context, f callvault.GrantFilter) ([]*callvault.Grant, error) {
	w, none := grantFilter(callvault.ActorFromContext(ctx), f)
	if none {
		return []*callvault.Grant{}, nil
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	gs, err := queryGrants(ctx, tx, grantsSQL(w), w.args...)
	if err != nil {
		return nil, err
	}
	if gs == nil {
		gs = []*callvault.Grant{}
	}
	return gs, nil
}

// grantFilter turns the actor's scope and f into conditions on grants g;
// none when nothing can match.
func grantFilter(a *callvault.Actor, f callvault.GrantFilter) (w where, none bool) {
	sc := readScopeOf(a)
	if sc.none {
		return w, true
	}
	sc.addGrantScope(&w)
	if f.ListenerID != 0 {
		w.add("g.listener_id = ?", f.ListenerID)
	}
	if !f.ActiveAt.IsZero() {
		// The upper bound on until_ms follows from from_ms <= t and the
		// table's CHECK (no grant lasts longer than MaxGrantDuration); it
		// tells the planner how narrow the range of grants_until is.
		t := f.ActiveAt.UnixMilli()
		w.add("g.until_ms > ? AND g.until_ms <= ? AND g.from_ms <= ? AND g.revoked_at IS NULL",
			t, t+callvault.MaxGrantDuration.Milliseconds(), t)
	}
	if f.BreakGlass {
		w.add("g.break_glass = 1")
	}
	if f.RecordingID != "" {
		w.add("g.id IN (SELECT x.grant_id FROM grant_recordings x WHERE x.recording_id = ?)", f.RecordingID)
	}
	return w, false
}

// grantsSQL selects grantColumns matching w, newest first.
func grantsSQL(w where) string {
	return `SELECT ` + grantColumns + ` FROM grants g` + w.String() + ` ORDER BY g.id DESC`
}

// grantForChange opens a write transaction and loads a grant the actor can
// see, naming it in the pending audit entry. ENOTFOUND otherwise (recorded
// as a denial when the grant exists). The caller rolls tx back when done.
func (s *GrantService) grantForChange(ctx context.Context, a *callvault.Actor, id int64) (*dbTx, *callvault.Grant, error) {
	sc := readScopeOf(a)
	if sc.none {
		return nil, nil, callvault.Errorf(callvault.ENOTFOUND, "grant not found")
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return nil, nil, err
	}
	g, err := findGrantByID(ctx, tx, sc, id)
	if callvault.ErrorCode(err) == callvault.ENOTFOUND {
		err = notVisible(ctx, tx, "grants", id, "grant")
	}
	if err != nil {
		tx.Rollback()
		return nil, nil, err
	}
	noteTarget(ctx, targetGrant, id, g.AcademyIDs, "", nil)
	return tx, g, nil
}

// RevokeGrant ends a grant now, in one write transaction: ENOTFOUND when
// the actor cannot see it, EFORBIDDEN unless callvault.CanRevoke (with the
// academies of its recordings), ECONFLICT when it is already revoked or
// expired. The reason is required (3 to 2,000 characters).
func (s *GrantService) RevokeGrant(ctx context.Context, id int64, reason string) (*callvault.Grant, error) {
	a := callvault.ActorFromContext(ctx)
	noteTarget(ctx, targetGrant, id, nil, "", nil)
	reason, err := text("the reason for revoking", reason, minNote, maxText)
	if err != nil {
		return nil, err
	}
	tx, g, err := s.grantForChange(ctx, a, id)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	now := tx.now.Truncate(time.Millisecond)
	switch {
	case !callvault.CanRevoke(a, g):
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "only an admin, whoever granted it, or the CEO or Principal concerned may revoke a grant")
	case !g.RevokedAt.IsZero():
		return nil, callvault.Errorf(callvault.ECONFLICT, "this grant has already been revoked")
	case !now.Before(g.Until):
		return nil, callvault.Errorf(callvault.ECONFLICT, "this grant has already expired")
	}
	if _, err := tx.exec(ctx, `UPDATE grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ?`,
		now.UnixMilli(), a.User.ID, reason, id); err != nil {
		return nil, dbError(err)
	}
	noteTarget(ctx, targetGrant, id, g.AcademyIDs, reason, map[string]string{
		"listener": g.Listener, "until": g.Until.Format(time.RFC3339),
	})
	if err := tx.commit(); err != nil {
		return nil, err
	}
	g.RevokedAt, g.RevokedBy = now, a.User.ID
	return g, nil
}

// ActiveGrant returns the grant of userID that covers recordingID at now
// (From <= now < Until, not revoked), with its recordings and academies;
// of several, the one that lasts longest. ENOTFOUND when there is none. It
// does not look at the actor: the caller decides with callvault.CanPlay.
//
// It runs on every audio range request, so it is one prepared statement
// (activeGrantSQL), run outside beginRead: a single statement reads one
// snapshot anyway, and BEGIN and ROLLBACK would cost as much as the lookup.
func (s *GrantService) ActiveGrant(ctx context.Context, userID int64, recordingID string, now time.Time) (*callvault.Grant, error) {
	stmt, err := s.activeStatement(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, activeGrantArgs(userID, recordingID, now)...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var g *callvault.Grant
	for rows.Next() {
		var (
			gs      grantScan
			rid     string
			academy int64
		)
		if err := rows.Scan(append(gs.dest(), &rid, &academy)...); err != nil {
			return nil, err
		}
		if g == nil {
			g = gs.grant()
		}
		g.RecordingIDs = append(g.RecordingIDs, rid)
		if i, found := slices.BinarySearch(g.AcademyIDs, academy); !found {
			g.AcademyIDs = slices.Insert(g.AcademyIDs, i, academy)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	if g == nil {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "no active grant")
	}
	slices.Sort(g.RecordingIDs)
	return g, nil
}

// activeGrantSQL finds the grant (subquery f: the grants of this recording
// and listener from grant_recordings' primary key, each checked by id in
// grants) and returns it once per recording it covers, with the recording's
// academy.
//
// Its parameters are wrapped (CAST, unary +) so that SQLite's STAT4
// statistics do not make it recompile the statement whenever a parameter
// changes (sqlite3_prepare_v2: a value compared with an indexed column
// "might influence the choice of query plan"), which would cost more than
// running it. The plan is fixed anyway: CROSS JOIN orders the tables, and
// the primary keys are the only sensible indexes. Arguments:
// activeGrantArgs.
const activeGrantSQL = `SELECT ` + grantColumns + `, x.recording_id, r.academy_id
	FROM (SELECT gr.grant_id FROM grant_recordings gr CROSS JOIN grants a
		WHERE gr.recording_id = CAST(? AS TEXT) AND gr.listener_id = CAST(? AS INTEGER) AND a.id = gr.grant_id
		AND +a.from_ms <= ? AND +a.until_ms > ? AND a.revoked_at IS NULL
		ORDER BY a.until_ms DESC, a.id DESC LIMIT 1) f
	CROSS JOIN grants g CROSS JOIN grant_recordings x CROSS JOIN recordings r
	WHERE g.id = f.grant_id AND x.grant_id = g.id AND r.id = x.recording_id`

func activeGrantArgs(userID int64, recordingID string, now time.Time) []any {
	t := now.UnixMilli() // grant times are whole ms: floor(now) compares exactly
	return []any{recordingID, userID, t, t}
}

// activeStatement prepares activeGrantSQL on the reader pool, once.
func (s *GrantService) activeStatement(ctx context.Context) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.activeStmt == nil {
		stmt, err := s.db.reader.PrepareContext(ctx, s.db.rebind(activeGrantSQL))
		if err != nil {
			return nil, dbError(err)
		}
		s.activeStmt = stmt
	}
	return s.activeStmt, nil
}

// BreakGlass opens emergency access for the actor (callvault.CanBreakGlass,
// else EFORBIDDEN) to 1 to 100 existing recordings of any academy, for
// callvault.BreakGlassPeriod from now (to the second). The reason is
// required (10 to 2,000 characters). The grant awaits ratification.
func (s *GrantService) BreakGlass(ctx context.Context, recordingIDs []string, reason string) (*callvault.Grant, error) {
	a := callvault.ActorFromContext(ctx)
	noteTarget(ctx, targetGrant, 0, nil, "", map[string]string{"break_glass": "true"})
	if !callvault.CanBreakGlass(a) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "only an admin or the DPO may open emergency access")
	}
	reason, err := text("the reason for emergency access", reason, minReason, maxText)
	if err != nil {
		return nil, err
	}
	if err := checkRecordingIDs(recordingIDs); err != nil {
		return nil, err
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	academies, err := recordingAcademies(ctx, tx, recordingIDs, callvault.Scope{All: true})
	if err != nil {
		return nil, err
	}
	from := tx.now.Truncate(time.Second)
	g := &callvault.Grant{
		ListenerID: a.User.ID, Listener: a.User.Login,
		RecordingIDs: slices.Sorted(slices.Values(recordingIDs)), AcademyIDs: academiesOf(academies),
		From: from, Until: from.Add(callvault.BreakGlassPeriod), GrantedBy: a.User.ID,
		BreakGlass: true, Reason: reason,
	}
	if err := insertGrant(ctx, tx, g); err != nil {
		return nil, err
	}
	noteTarget(ctx, targetGrant, g.ID, g.AcademyIDs, reason, map[string]string{
		"break_glass": "true", "recordings": strconv.Itoa(len(g.RecordingIDs)), "until": g.Until.Format(time.RFC3339),
	})
	if err := tx.commit(); err != nil {
		return nil, err
	}
	return g, nil
}

// RatifyBreakGlass confirms a break-glass grant, in one write transaction:
// ENOTFOUND when the actor cannot see it, ECONFLICT when it is not a
// break-glass grant or is already ratified, EFORBIDDEN unless
// callvault.CanRatify (the CEO or the Principal of every academy concerned,
// never who opened it). The note is required (3 to 2,000 characters).
// Expired or revoked grants may still be ratified: ratification judges the
// emergency after the fact.
func (s *GrantService) RatifyBreakGlass(ctx context.Context, id int64, note string) (*callvault.Grant, error) {
	a := callvault.ActorFromContext(ctx)
	noteTarget(ctx, targetGrant, id, nil, "", nil)
	note, err := text("a note on the ratification", note, minNote, maxText)
	if err != nil {
		return nil, err
	}
	tx, g, err := s.grantForChange(ctx, a, id)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	switch {
	case !g.BreakGlass:
		return nil, callvault.Errorf(callvault.ECONFLICT, "only emergency (break-glass) access is ratified")
	case !callvault.CanRatify(a, g):
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "only the CEO, or the Principal of every academy concerned, may ratify; never who opened it")
	case !g.RatifiedAt.IsZero():
		return nil, callvault.Errorf(callvault.ECONFLICT, "this emergency access has already been ratified")
	}
	now := tx.now.Truncate(time.Millisecond)
	if _, err := tx.exec(ctx, `UPDATE grants SET ratified_by = ?, ratified_at = ?, ratify_note = ? WHERE id = ?`,
		a.User.ID, now.UnixMilli(), note, id); err != nil {
		return nil, dbError(err)
	}
	noteTarget(ctx, targetGrant, id, g.AcademyIDs, note, map[string]string{
		"break_glass": "true", "ratified": "true", "listener": g.Listener,
	})
	if err := tx.commit(); err != nil {
		return nil, err
	}
	g.RatifiedBy, g.RatifiedAt = a.User.ID, now
	return g, nil
}
