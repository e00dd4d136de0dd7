package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/callvault/callvault"
)

// upcomingDays is how far ahead the upcoming-deletions page looks.
const upcomingDays = 30

// upcomingWindow is [start of today in London, that plus days).
func (s *Server) upcomingWindow(days int) (from, to time.Time) {
	now := s.Now().In(callvault.London)
	from = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, callvault.London)
	return from, from.AddDate(0, 0, days)
}

// upcomingPage lists, per day and academy, the recordings that reach their
// deletion date in the next 30 days, and how many of them holds keep.
// Principals see their own academies only (the store scopes the count).
func (s *Server) upcomingPage(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanViewRetention(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot see the retention policy"))
		return
	}
	from, to := s.upcomingWindow(upcomingDays)
	rows, err := s.Retention.UpcomingDeletions(r.Context(), from, to)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	due, held := 0, 0
	for _, u := range rows {
		due, held = due+u.Count, held+u.Held
	}
	noteUpcoming(r, from, to, due, held)
	s.render(w, r, http.StatusOK, "retention_upcoming", map[string]any{"Title": "Deletions due in the next " + strconv.Itoa(upcomingDays) + " days",
		"Rows": rows, "Due": due, "Held": held, "From": from, "To": to.AddDate(0, 0, -1)})
}

func noteUpcoming(r *http.Request, from, to time.Time, due, held int) {
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType = "retention_policy"
		e.Details = map[string]string{"from": from.UTC().Format(time.RFC3339), "to": to.UTC().Format(time.RFC3339),
			"due": strconv.Itoa(due), "held": strconv.Itoa(held)}
	})
}
