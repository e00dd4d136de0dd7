package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/callvault/callvault"
)

// One legal hold's page: what it is, its saved search, the recordings it
// keeps (a page at a time), and the forms to release it or add recordings.

// heldPageSize is how many held recordings the page lists at a time.
const heldPageSize = 50

// holdID reads the {id} of the path and names the hold in the audit entry.
func holdID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, callvault.Errorf(callvault.ENOTFOUND, "no such hold")
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.TargetType, e.TargetID = "hold", strconv.FormatInt(id, 10) })
	return id, nil
}

// findHold loads the hold of the path as the actor: 403 for roles that see
// no holds, 404 for a hold outside the actor's scope.
func (s *Server) findHold(r *http.Request) (*callvault.Hold, error) {
	if !callvault.CanViewHolds(actor(r.Context())) {
		return nil, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot see legal holds")
	}
	id, err := holdID(r)
	if err != nil {
		return nil, err
	}
	h, err := s.Holds.FindHoldByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.AcademyID = h.AcademyID })
	return h, nil
}

// holdPage shows one hold.
func (s *Server) holdPage(w http.ResponseWriter, r *http.Request) {
	h, err := s.findHold(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.renderHold(w, r, http.StatusOK, h, map[string]string{}, newFormErrors(), "")
}

// heldRecording is one line of the held list: the recording, or only its
// id when it can no longer be read.
type heldRecording struct {
	ID  string
	Rec *callvault.Recording
}

func (s *Server) renderHold(w http.ResponseWriter, r *http.Request, status int, h *callvault.Hold, form map[string]string, errs *formErrors, notice string) {
	ctx := r.Context()
	after := r.URL.Query().Get("after")
	ids, err := s.Holds.HeldRecordingIDs(ctx, h.ID, after, heldPageSize)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	held := make([]heldRecording, len(ids))
	for i, id := range ids {
		held[i].ID = id
		if rec, err := s.Recordings.FindRecordingByID(ctx, id); err == nil {
			held[i].Rec = rec
		}
	}
	a := actor(ctx)
	base := "/holds/" + strconv.FormatInt(h.ID, 10)
	data := map[string]any{"Title": "Legal hold: " + h.Title, "Hold": h, "Held": held, "Now": s.Now(),
		"CanRelease": h.Active() && callvault.CanReleaseHold(a, h), "CanAdd": h.Active() && callvault.CanCreateHold(a, h.AcademyID, nil),
		"Form": form, "Errors": errs, "Notice": notice, "After": after}
	if len(ids) == heldPageSize {
		data["NextURL"] = base + "?" + url.Values{"after": {ids[len(ids)-1]}}.Encode()
	}
	if after != "" {
		data["FirstURL"] = base
	}
	s.render(w, r, status, "hold", data)
}

// releaseHold ends a hold; a note saying why is required.
func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request) {
	h, err := s.findHold(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.Reason = trim(note, 500) })
	if !callvault.CanReleaseHold(actor(r.Context()), h) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only the data-protection lead, the CEO, the hold's owner or its academy's principal may release it"))
		return
	}
	if !h.Active() {
		s.pageError(w, r, callvault.Errorf(callvault.ECONFLICT, "this hold was already released"))
		return
	}
	errs := newFormErrors()
	switch {
	case note == "":
		errs.Add("note", "Say why the hold is no longer needed")
	case len(note) > 1000:
		errs.Add("note", "The note must be 1000 characters or fewer")
	}
	if !errs.Any() {
		if _, err := s.Holds.ReleaseHold(r.Context(), h.ID, note); err == nil {
			s.Logger.Info("legal hold released", "hold", h.ID, "by", actor(r.Context()).User.Login)
			http.Redirect(w, r, "/holds/"+strconv.FormatInt(h.ID, 10), http.StatusSeeOther)
			return
		} else if st := ErrorStatus(err); st >= 500 || st == http.StatusForbidden || st == http.StatusNotFound {
			s.pageError(w, r, err)
			return
		} else {
			errs.AddErr("note", err)
			s.renderHold(w, r, st, h, map[string]string{"note": note}, errs, "")
			return
		}
	}
	s.renderHold(w, r, http.StatusBadRequest, h, map[string]string{"note": note}, errs, "")
}

// addToHold adds recordings, by id, to an active hold.
func (s *Server) addToHold(w http.ResponseWriter, r *http.Request) {
	h, err := s.findHold(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	a := actor(r.Context())
	raw := r.PostFormValue("recordings")
	ids := dedupe(append(strings.FieldsFunc(raw, func(c rune) bool { return c == ',' || c == ';' || c == ' ' || c == '\n' || c == '\r' || c == '\t' }),
		r.PostForm["recording"]...))
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.Details = map[string]string{"recording_ids": trim(strings.Join(ids, ","), 1000)}
	})
	if !callvault.CanCreateHold(a, h.AcademyID, nil) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "you may not add recordings to this hold"))
		return
	}
	if !h.Active() {
		s.pageError(w, r, callvault.Errorf(callvault.ECONFLICT, "this hold was released; place a new one"))
		return
	}
	form := map[string]string{"recordings": raw}
	errs := newFormErrors()
	switch {
	case len(ids) == 0:
		errs.Add("recordings", "Enter the ids of the recordings to add, one per line")
	case len(ids) > maxHoldFormRecordings:
		errs.Add("recordings", "Add at most "+strconv.Itoa(maxHoldFormRecordings)+" recordings at a time")
	}
	if !errs.Any() {
		academies, err := s.recordingAcademies(r.Context(), ids)
		switch {
		case callvault.ErrorCode(err) == callvault.EINVALID:
			errs.AddErr("recordings", err)
		case err != nil:
			s.pageError(w, r, err)
			return
		case !callvault.CanCreateHold(a, h.AcademyID, academies):
			s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "you may not place a hold on recordings of another academy"))
			return
		}
	}
	status := http.StatusBadRequest
	if !errs.Any() {
		err := s.Holds.AddToHold(r.Context(), h.ID, ids)
		if err == nil {
			s.Logger.Info("recordings added to legal hold", "hold", h.ID, "added", len(ids), "by", a.User.Login)
			http.Redirect(w, r, "/holds/"+strconv.FormatInt(h.ID, 10), http.StatusSeeOther)
			return
		}
		if status = ErrorStatus(err); status >= 500 || status == http.StatusForbidden || status == http.StatusNotFound {
			s.pageError(w, r, err)
			return
		}
		errs.AddErr("recordings", err)
	}
	s.renderHold(w, r, status, h, form, errs, "")
}
