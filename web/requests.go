package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// requestNewPage is the listen-request form, for one or more recordings
// (from a recording's page or a page of search results).
func (s *Server) requestNewPage(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanRequest(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot request listening access"))
		return
	}
	ids := r.URL.Query()["recording"]
	recs, err := s.recordingsByID(r, ids)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "request_new", map[string]any{"Title": "Request access to listen", "Recordings": recs,
		"Purposes": callvault.Purposes, "Form": map[string]string{"duration": "10080"}})
}

func (s *Server) recordingsByID(r *http.Request, ids []string) ([]*callvault.Recording, error) {
	if len(ids) == 0 || len(ids) > 100 {
		return nil, callvault.Errorf(callvault.EINVALID, "choose between 1 and 100 recordings")
	}
	var out []*callvault.Recording
	for _, id := range ids {
		rec, err := s.Recordings.FindRecordingByID(r.Context(), id)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// createRequest records a listen request from the form.
func (s *Server) createRequest(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, callvault.Errorf(callvault.EINVALID, "the form could not be read"))
		return
	}
	f := r.PostForm
	req, err := s.requestFromForm(r, f.Get("purpose"), f.Get("purpose_text"), f.Get("justification"), f.Get("listeners"), f.Get("duration"), f["recording"])
	if err == nil {
		noteRequest(r, req)
		err = s.Grants.CreateListenRequest(r.Context(), req)
	}
	if err != nil {
		if ErrorStatus(err) >= 500 {
			s.pageError(w, r, err)
			return
		}
		recs, _ := s.recordingsByID(r, f["recording"])
		form := map[string]string{"purpose": f.Get("purpose"), "purpose_text": f.Get("purpose_text"), "justification": f.Get("justification"),
			"listeners": f.Get("listeners"), "duration": f.Get("duration")}
		s.render(w, r, ErrorStatus(err), "request_new", map[string]any{"Title": "Request access to listen", "Recordings": recs,
			"Purposes": callvault.Purposes, "Form": form, "Error": callvault.ErrorMessage(err)})
		return
	}
	http.Redirect(w, r, "/requests/"+strconv.FormatInt(req.ID, 10), http.StatusSeeOther)
}

// requestFromForm builds a request; listeners are logins separated by
// commas or spaces; duration is in minutes.
func (s *Server) requestFromForm(r *http.Request, purpose, purposeText, justification, listeners, duration string, recordings []string) (*callvault.ListenRequest, error) {
	req := &callvault.ListenRequest{Purpose: purpose, PurposeText: strings.TrimSpace(purposeText),
		Justification: strings.TrimSpace(justification), RecordingIDs: recordings}
	mins, err := strconv.Atoi(strings.TrimSpace(duration))
	if err != nil || mins < 1 {
		return nil, callvault.Errorf(callvault.EINVALID, "choose how long access should last")
	}
	req.Duration = time.Duration(mins) * time.Minute
	for _, login := range strings.FieldsFunc(listeners, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == ';' }) {
		u, err := s.Users.FindUserByLogin(r.Context(), strings.ToLower(login))
		if err != nil {
			if callvault.ErrorCode(err) == callvault.ENOTFOUND {
				return nil, callvault.Errorf(callvault.EINVALID, "there is no account %q to name as a listener", trim(login, 64))
			}
			return nil, err
		}
		req.ListenerIDs = append(req.ListenerIDs, u.ID)
	}
	if len(req.ListenerIDs) == 0 {
		return nil, callvault.Errorf(callvault.EINVALID, "name at least one person who should listen")
	}
	return req, nil
}

func noteRequest(r *http.Request, req *callvault.ListenRequest) {
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType = "listen_request"
		if req.ID != 0 {
			e.TargetID = strconv.FormatInt(req.ID, 10)
		}
		if len(req.AcademyIDs) > 0 {
			e.AcademyID = req.AcademyIDs[0]
		}
		e.Reason = trim(req.Justification, 500)
		e.Details = map[string]string{"purpose": req.Purpose, "recordings": trim(strings.Join(req.RecordingIDs, ","), 1000),
			"listeners": fmt.Sprint(req.ListenerIDs), "minutes": strconv.Itoa(int(req.Duration.Minutes()))}
	})
}

// requestsPage lists requests awaiting the actor's decision and their own.
func (s *Server) requestsPage(w http.ResponseWriter, r *http.Request) {
	awaiting, err := s.Grants.FindListenRequests(r.Context(), callvault.RequestFilter{AwaitingDecision: true})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	mine, err := s.Grants.FindListenRequests(r.Context(), callvault.RequestFilter{Mine: true})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "requests", map[string]any{"Title": "Listen requests", "Awaiting": awaiting, "Mine": mine})
}

// requestPage shows one request and, to those who may decide it, the
// decision form.
func (s *Server) requestPage(w http.ResponseWriter, r *http.Request) {
	req, err := s.findRequest(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	var grants []*callvault.Grant
	if req.State == callvault.RequestApproved {
		all, err := s.Grants.FindGrants(r.Context(), callvault.GrantFilter{})
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		for _, g := range all {
			if g.RequestID == req.ID {
				grants = append(grants, g)
			}
		}
	}
	s.render(w, r, http.StatusOK, "request", map[string]any{"Title": "Listen request " + strconv.FormatInt(req.ID, 10), "Request": req,
		"CanDecide": req.State == callvault.RequestPending && callvault.CanDecide(actor(r.Context()), req), "Grants": grants, "Now": s.Now()})
}

func (s *Server) findRequest(r *http.Request) (*callvault.ListenRequest, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, callvault.Errorf(callvault.ENOTFOUND, "no such request")
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.TargetType, e.TargetID = "listen_request", strconv.FormatInt(id, 10) })
	return s.Grants.FindListenRequestByID(r.Context(), id)
}

// decideRequest approves or declines with a note.
func (s *Server) decideRequest(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.pageError(w, r, callvault.Errorf(callvault.ENOTFOUND, "no such request"))
		return
	}
	approve := r.PostFormValue("decision") == "approve"
	if d := r.PostFormValue("decision"); d != "approve" && d != "decline" {
		s.pageError(w, r, callvault.Errorf(callvault.EINVALID, "choose approve or decline"))
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID, e.Reason = "listen_request", strconv.FormatInt(id, 10), trim(note, 500)
		e.Details = map[string]string{"decision": r.PostFormValue("decision")}
	})
	if _, _, err := s.Grants.DecideListenRequest(r.Context(), id, approve, note); err != nil {
		if ErrorStatus(err) < 500 && callvault.ErrorCode(err) != callvault.ENOTFOUND {
			req, ferr := s.Grants.FindListenRequestByID(r.Context(), id)
			if ferr == nil {
				s.render(w, r, ErrorStatus(err), "request", map[string]any{"Title": "Listen request " + strconv.FormatInt(id, 10),
					"Request": req, "CanDecide": req.State == callvault.RequestPending && callvault.CanDecide(actor(r.Context()), req),
					"Error": callvault.ErrorMessage(err), "Note": note})
				return
			}
		}
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/requests/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

// untilText says how long is left, for the expiry countdown.
func untilText(t time.Time, now time.Time) string {
	d := t.Sub(now)
	if d <= 0 {
		return "ended"
	}
	days, hours, mins := int(d.Hours())/24, int(d.Hours())%24, int(d.Minutes())%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d d %d h left", days, hours)
	case hours > 0:
		return fmt.Sprintf("%d h %d min left", hours, mins)
	}
	return fmt.Sprintf("%d min left", max(mins, 1))
}

func purposeLabel(p string) string {
	for _, x := range callvault.Purposes {
		if x.Value == p {
			return x.Label
		}
	}
	return p
}
