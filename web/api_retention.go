package web

import (
	"net/http"
	"strconv"

	"github.com/callvault/callvault"
)

// The retention API: the policy and the deletions coming up. Changing the
// policy is done on the page, through its preview.

// apiRetention is GET /api/v1/retention: every rule (the trust default
// first) and the categories.
func (s *Server) apiRetention(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanViewRetention(actor(r.Context())) {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot see the retention policy"))
		return
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.TargetType = "retention_policy" })
	policy, err := s.Retention.RetentionPolicy(r.Context())
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	cats, err := s.Retention.FindCategories(r.Context())
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if policy == nil {
		policy = callvault.RetentionPolicy{}
	}
	if cats == nil {
		cats = []*callvault.Category{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": policy, "categories": cats})
}

// apiUpcoming is GET /api/v1/retention/upcoming[?days=N]: per academy in
// the actor's scope and London day, the recordings reaching their deletion
// date from today for N days (default 30, at most 366).
func (s *Server) apiUpcoming(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanViewRetention(actor(r.Context())) {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot see the retention policy"))
		return
	}
	days := upcomingDays
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 366 {
			s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "days must be between 1 and 366"))
			return
		}
		days = n
	}
	from, to := s.upcomingWindow(days)
	rows, err := s.Retention.UpcomingDeletions(r.Context(), from, to)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	due, held := 0, 0
	for _, u := range rows {
		due, held = due+u.Count, held+u.Held
	}
	noteUpcoming(r, from, to, due, held)
	if rows == nil {
		rows = []callvault.UpcomingDeletion{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "upcoming": rows})
}
