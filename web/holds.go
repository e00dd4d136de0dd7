package web

import (
	"context"
	"net/http"
	"strconv"

	"github.com/callvault/callvault"
)

// The legal holds list. A hold suspends deletion under the retention
// policy; the form to place one is hold_new.go, one hold's page hold.go.

// holdsPage lists the holds the actor may see, active ones first (the
// store's order), with those past their review date marked in words.
func (s *Server) holdsPage(w http.ResponseWriter, r *http.Request) {
	a := actor(r.Context())
	if !callvault.CanViewHolds(a) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot see legal holds"))
		return
	}
	holds, err := s.Holds.FindHolds(r.Context(), callvault.HoldListFilter{})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	now := s.Now()
	active, due := 0, 0
	for _, h := range holds {
		if h.Active() {
			active++
		}
		if h.ReviewDue(now) {
			due++
		}
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.Details = map[string]string{"shown": strconv.Itoa(len(holds)), "active": strconv.Itoa(active)}
	})
	s.render(w, r, http.StatusOK, "holds", map[string]any{"Title": "Legal holds", "Holds": holds, "Active": active,
		"ReviewDue": due, "Now": now, "CanPlace": canPlaceHolds(a)})
}

// canPlaceHolds reports whether the actor may place a hold anywhere: on the
// whole trust or on one of their academies.
func canPlaceHolds(a *callvault.Actor) bool {
	if callvault.CanCreateHold(a, 0, nil) {
		return true
	}
	if a == nil || a.User == nil {
		return false
	}
	for _, id := range a.User.AcademyIDs {
		if callvault.CanCreateHold(a, id, nil) {
			return true
		}
	}
	return false
}

// holdAcademies are the academies the actor may place a hold for, and
// whether a trust-wide hold is open to them.
func (s *Server) holdAcademies(ctx context.Context) ([]*callvault.Academy, bool, error) {
	a := actor(ctx)
	all, err := s.Academies.FindAcademies(ctx)
	if err != nil {
		return nil, false, err
	}
	var out []*callvault.Academy
	for _, x := range all {
		if callvault.CanCreateHold(a, x.ID, nil) {
			out = append(out, x)
		}
	}
	return out, callvault.CanCreateHold(a, 0, nil), nil
}

// recordingAcademies looks up recordings as the actor and returns their
// academies. A recording the actor cannot see is refused as forbidden, never
// "not found": for someone with a partial scope the two must look the same,
// so that a hold form cannot be used to probe for other academies' calls.
func (s *Server) recordingAcademies(ctx context.Context, ids []string) ([]int64, error) {
	var out []int64
	whole := callvault.RecordingScope(actor(ctx)).All
	for _, id := range ids {
		rec, err := s.Recordings.FindRecordingByID(ctx, id)
		switch {
		case callvault.ErrorCode(err) == callvault.ENOTFOUND && whole:
			return nil, callvault.Errorf(callvault.EINVALID, "recording %q does not exist", trim(id, 64))
		case callvault.ErrorCode(err) == callvault.ENOTFOUND:
			return nil, callvault.Errorf(callvault.EFORBIDDEN, "you may not place a hold on recording %q: it is not one of your academies' recordings", trim(id, 64))
		case err != nil:
			return nil, err
		}
		out = append(out, rec.AcademyID)
	}
	return out, nil
}

// dedupe keeps the first of each id, dropping empty ones.
func dedupe(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
