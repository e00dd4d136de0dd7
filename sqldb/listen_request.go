package sqldb

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// Listen requests: creating, reading and listing them. Deciding them
// creates grants and lives with the grants in grant.go.

// CreateListenRequest stores a pending request by the actor (CanRequest,
// else EFORBIDDEN). EINVALID unless: the purpose is known (PurposeOther
// with a PurposeText); the justification is 10 to 2,000 characters; the
// duration (0: MaxGrantDuration; whole seconds) is between MinGrantDuration
// and MaxGrantDuration; 1 to 100 distinct recordings exist and are visible
// to the actor (the scope of FindRecordingByID, else "recording X not
// found"); 1 to 20 distinct listeners are existing, enabled users. Sets ID,
// RequesterID, Requester, State, CreatedAt and AcademyIDs, and sorts
// RecordingIDs and ListenerIDs (with Listeners) as reads return them.
func (s *GrantService) CreateListenRequest(ctx context.Context, r *callvault.ListenRequest) error {
	a := callvault.ActorFromContext(ctx)
	noteTarget(ctx, targetListenRequest, 0, nil, "", nil)
	if !callvault.CanRequest(a) {
		return callvault.Errorf(callvault.EFORBIDDEN, "not allowed to ask for listening access")
	}
	if err := validateRequest(r); err != nil {
		return err
	}
	tx, err := s.db.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	academies, err := recordingAcademies(ctx, tx, r.RecordingIDs, callvault.RecordingScope(a))
	if err != nil {
		return err
	}
	logins, err := enabledUsers(ctx, tx, r.ListenerIDs)
	if err != nil {
		return err
	}
	createdAt := tx.now.Truncate(time.Millisecond)
	var id int64
	if err := tx.queryRow(ctx, `INSERT INTO listen_requests (requester_id, purpose, purpose_text,
		justification, duration_ms, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		a.User.ID, r.Purpose, r.PurposeText, r.Justification, r.Duration.Milliseconds(),
		callvault.RequestPending, createdAt.UnixMilli()).Scan(&id); err != nil {
		return dbError(err)
	}
	recordingIDs := slices.Sorted(slices.Values(r.RecordingIDs))
	for _, rid := range recordingIDs {
		if _, err := tx.exec(ctx, `INSERT INTO listen_request_recordings (request_id, recording_id) VALUES (?, ?)`, id, rid); err != nil {
			return dbError(err)
		}
	}
	listenerIDs := slices.Sorted(slices.Values(r.ListenerIDs))
	listeners := make([]string, len(listenerIDs))
	for i, uid := range listenerIDs {
		if _, err := tx.exec(ctx, `INSERT INTO listen_request_listeners (request_id, user_id) VALUES (?, ?)`, id, uid); err != nil {
			return dbError(err)
		}
		listeners[i] = logins[uid]
	}
	academyIDs := academiesOf(academies)
	noteTarget(ctx, targetListenRequest, id, academyIDs, "", map[string]string{
		"purpose":    r.Purpose,
		"recordings": strconv.Itoa(len(recordingIDs)),
		"listeners":  strings.Join(listeners, ","),
		"duration":   r.Duration.String(),
	})
	if err := tx.commit(); err != nil {
		return err
	}
	r.ID, r.RequesterID, r.Requester = id, a.User.ID, a.User.Login
	r.RecordingIDs, r.AcademyIDs = recordingIDs, academyIDs
	r.ListenerIDs, r.Listeners = listenerIDs, listeners
	r.State, r.CreatedAt = callvault.RequestPending, createdAt
	r.DeciderID, r.Decider, r.DecidedAt, r.DecisionNote = 0, "", time.Time{}, ""
	return nil
}

// validateRequest checks and normalises what the requester chose.
func validateRequest(r *callvault.ListenRequest) error {
	var err error
	if !callvault.ValidPurpose(r.Purpose) {
		return callvault.Errorf(callvault.EINVALID, "unknown purpose %q", r.Purpose)
	}
	lo := 0
	if r.Purpose == callvault.PurposeOther {
		lo = minNote
	}
	if r.PurposeText, err = text("the description of the purpose", r.PurposeText, lo, maxPurposeText); err != nil {
		return err
	}
	if r.Justification, err = text("the justification", r.Justification, minJustification, maxText); err != nil {
		return err
	}
	if r.Duration == 0 {
		r.Duration = callvault.MaxGrantDuration
	}
	r.Duration = r.Duration.Truncate(time.Second)
	if r.Duration < callvault.MinGrantDuration || r.Duration > callvault.MaxGrantDuration {
		return callvault.Errorf(callvault.EINVALID, "listening may last from a minute to seven days") // Min/MaxGrantDuration
	}
	if err := checkRecordingIDs(r.RecordingIDs); err != nil {
		return err
	}
	switch {
	case len(r.ListenerIDs) == 0:
		return callvault.Errorf(callvault.EINVALID, "name at least one listener")
	case len(r.ListenerIDs) > maxRequestListeners:
		return callvault.Errorf(callvault.EINVALID, "at most %d listeners", maxRequestListeners)
	}
	seen := map[int64]bool{}
	for _, id := range r.ListenerIDs {
		if seen[id] {
			return callvault.Errorf(callvault.EINVALID, "listener %d is named twice", id)
		}
		seen[id] = true
	}
	return nil
}

// enabledUsers returns the logins of ids, or EINVALID naming the first that
// does not exist or is disabled.
func enabledUsers(ctx context.Context, tx *dbTx, ids []int64) (map[int64]string, error) {
	type user struct {
		login    string
		disabled bool
	}
	found := map[int64]user{}
	err := inBatches(ids, func(ph string, args []any) error {
		rows, err := tx.query(ctx, `SELECT id, login, disabled FROM users WHERE id IN (`+ph+`)`, args...)
		if err != nil {
			return dbError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			var u user
			if err := rows.Scan(&id, &u.login, &u.disabled); err != nil {
				return err
			}
			found[id] = u
		}
		return dbError(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	logins := make(map[int64]string, len(ids))
	for _, id := range ids {
		u, ok := found[id]
		switch {
		case !ok:
			return nil, callvault.Errorf(callvault.EINVALID, "user %d not found", id)
		case u.disabled:
			return nil, callvault.Errorf(callvault.EINVALID, "user %s is disabled", u.login)
		}
		logins[id] = u.login
	}
	return logins, nil
}

// FindListenRequestByID returns ENOTFOUND when the request does not exist
// or is outside the actor's scope.
func (s *GrantService) FindListenRequestByID(ctx context.Context, id int64) (*callvault.ListenRequest, error) {
	sc := readScopeOf(callvault.ActorFromContext(ctx))
	if sc.none {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "listen request not found")
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return findRequestByID(ctx, tx, sc, id)
}

func findRequestByID(ctx context.Context, tx *dbTx, sc readScope, id int64) (*callvault.ListenRequest, error) {
	w := where{}
	w.add("q.id = ?", id)
	sc.addRequestScope(&w)
	rs, err := findRequests(ctx, tx, w)
	if err != nil {
		return nil, err
	} else if len(rs) == 0 {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "listen request not found")
	}
	return rs[0], nil
}

// FindListenRequests lists the requests in the actor's scope matching f,
// newest first. Scope: admins, the DPO and the CEO see every request; a
// principal the requests they made, that name them, or whose recordings
// are all in their academies; a listener the requests naming them; anyone
// else none. AwaitingDecision keeps the pending requests the actor may
// decide (callvault.CanDecide, in SQL): for the CEO every one they did not
// make, for a principal those they did not make whose recordings are all in
// their academies; nothing for anyone else. EINVALID for an unknown state.
func (s *GrantService) FindListenRequests(ctx context.Context, f callvault.RequestFilter) ([]*callvault.ListenRequest, error) {
	w, none, err := requestFilter(callvault.ActorFromContext(ctx), f)
	if err != nil {
		return nil, err
	} else if none {
		return []*callvault.ListenRequest{}, nil
	}
	tx, err := s.db.beginRead(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rs, err := findRequests(ctx, tx, w)
	if err != nil {
		return nil, err
	}
	if rs == nil {
		rs = []*callvault.ListenRequest{}
	}
	return rs, nil
}

// requestFilter turns the actor's scope and f into conditions on
// listen_requests q; none when nothing can match.
func requestFilter(a *callvault.Actor, f callvault.RequestFilter) (w where, none bool, err error) {
	switch f.State {
	case "", callvault.RequestPending, callvault.RequestApproved, callvault.RequestDeclined:
	default:
		return w, true, callvault.Errorf(callvault.EINVALID, "unknown state %q", f.State)
	}
	sc := readScopeOf(a)
	if sc.none {
		return w, true, nil
	}
	sc.addRequestScope(&w)
	if f.State != "" {
		w.add("q.state = ?", f.State)
	}
	if (f.Mine || f.AwaitingDecision) && a.User == nil {
		return w, true, nil // the system asks for and decides nothing
	}
	if f.Mine {
		w.add("q.requester_id = ?", a.User.ID)
	}
	if f.AwaitingDecision {
		u := a.User
		w.add("q.state = ?", callvault.RequestPending)
		w.add("q.requester_id <> ?", u.ID)
		switch {
		case u.Role == callvault.RoleCEO:
		case u.Role == callvault.RolePrincipal && len(u.AcademyIDs) > 0:
			c, args := allRecordingsIn("listen_request_recordings", "request_id", "q.id", u.AcademyIDs)
			w.add(c, args...)
		default:
			return w, true, nil
		}
	}
	return w, false, nil
}

// requestsSQL selects requestColumns matching w, newest first.
func requestsSQL(w where) string {
	return `SELECT ` + requestColumns + ` FROM listen_requests q` + w.String() + ` ORDER BY q.id DESC`
}

// requestColumns are read by findRequests, in this order, from
// listen_requests q.
const requestColumns = `q.id, q.requester_id, (SELECT u.login FROM users u WHERE u.id = q.requester_id),
	q.purpose, q.purpose_text, q.justification, q.duration_ms, q.state, q.created_at,
	q.decider_id, (SELECT u.login FROM users u WHERE u.id = q.decider_id), q.decided_at, q.decision_note`

// findRequests returns the requests matching w (on listen_requests q),
// newest first, with their recordings, academies and listeners.
func findRequests(ctx context.Context, tx *dbTx, w where) ([]*callvault.ListenRequest, error) {
	rows, err := tx.query(ctx, requestsSQL(w), w.args...)
	if err != nil {
		return nil, dbError(err)
	}
	defer rows.Close()
	var (
		rs   []*callvault.ListenRequest
		ids  []int64
		byID = map[int64]*callvault.ListenRequest{}
	)
	for rows.Next() {
		r := &callvault.ListenRequest{RecordingIDs: []string{}, AcademyIDs: []int64{}, ListenerIDs: []int64{}, Listeners: []string{}}
		var (
			duration  int64
			deciderID sql.NullInt64
			decider   sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.RequesterID, &r.Requester, &r.Purpose, &r.PurposeText, &r.Justification,
			&duration, &r.State, msTime{&r.CreatedAt}, &deciderID, &decider, msTime{&r.DecidedAt}, &r.DecisionNote); err != nil {
			return nil, err
		}
		r.Duration = time.Duration(duration) * time.Millisecond
		r.DeciderID, r.Decider = deciderID.Int64, decider.String
		rs = append(rs, r)
		ids = append(ids, r.ID)
		byID[r.ID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err)
	}
	rows.Close()

	err = inBatches(ids, func(ph string, args []any) error {
		rows, err := tx.query(ctx, `SELECT x.request_id, x.recording_id, r.academy_id
			FROM listen_request_recordings x CROSS JOIN recordings r
			WHERE x.request_id IN (`+ph+`) AND r.id = x.recording_id ORDER BY x.request_id, x.recording_id`, args...)
		if err != nil {
			return dbError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id, academy int64
				rid         string
			)
			if err := rows.Scan(&id, &rid, &academy); err != nil {
				return err
			}
			r := byID[id]
			r.RecordingIDs = append(r.RecordingIDs, rid)
			if i, found := slices.BinarySearch(r.AcademyIDs, academy); !found {
				r.AcademyIDs = slices.Insert(r.AcademyIDs, i, academy)
			}
		}
		if err := rows.Err(); err != nil {
			return dbError(err)
		}
		rows.Close()

		rows, err = tx.query(ctx, `SELECT l.request_id, l.user_id, u.login
			FROM listen_request_listeners l CROSS JOIN users u
			WHERE l.request_id IN (`+ph+`) AND u.id = l.user_id ORDER BY l.request_id, l.user_id`, args...)
		if err != nil {
			return dbError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, uid int64
			var login string
			if err := rows.Scan(&id, &uid, &login); err != nil {
				return err
			}
			r := byID[id]
			r.ListenerIDs = append(r.ListenerIDs, uid)
			r.Listeners = append(r.Listeners, login)
		}
		return dbError(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return rs, nil
}
