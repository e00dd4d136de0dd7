package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/callvault/callvault"
)

// grantsPage lists the grants the actor may see, with time left and revoke.
func (s *Server) grantsPage(w http.ResponseWriter, r *http.Request) {
	grants, err := s.Grants.FindGrants(r.Context(), callvault.GrantFilter{})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "grants", map[string]any{"Title": "Listening grants", "Grants": grants, "Now": s.Now()})
}

// revokeGrant ends a grant at once.
func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.pageOrJSONError(w, r, callvault.Errorf(callvault.ENOTFOUND, "no such grant"))
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		reason = "revoked"
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID, e.Reason = "grant", strconv.FormatInt(id, 10), trim(reason, 500)
	})
	g, err := s.Grants.RevokeGrant(r.Context(), id, reason)
	if err != nil {
		s.pageOrJSONError(w, r, err)
		return
	}
	if isAPI(r) {
		writeJSON(w, http.StatusOK, g)
		return
	}
	http.Redirect(w, r, "/grants", http.StatusSeeOther)
}

// sharedPage is the listener's view: the recordings shared with them now.
func (s *Server) sharedPage(w http.ResponseWriter, r *http.Request) {
	a := actor(r.Context())
	grants, err := s.Grants.FindGrants(r.Context(), callvault.GrantFilter{ListenerID: a.User.ID, ActiveAt: s.Now()})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	type item struct {
		Rec   *callvault.Recording
		Grant *callvault.Grant
	}
	var items []item
	for _, g := range grants {
		for _, id := range g.RecordingIDs {
			rec, err := s.Recordings.FindRecordingByID(r.Context(), id)
			if err != nil {
				continue // purged since, or not visible: nothing to play
			}
			items = append(items, item{rec, g})
		}
	}
	s.render(w, r, http.StatusOK, "shared", map[string]any{"Title": "Shared with me", "Items": items, "Now": s.Now()})
}

// breakGlassPage warns and asks for the reason.
func (s *Server) breakGlassPage(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanBreakGlass(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators and the data-protection lead can open emergency access"))
		return
	}
	rec, err := s.Recordings.FindRecordingByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "break_glass", map[string]any{"Title": "Emergency access", "Recording": rec})
}

// breakGlass opens 24 hours of access for the actor, alerts the CEO and
// the DPO, and flags it for ratification.
func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanBreakGlass(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators and the data-protection lead can open emergency access"))
		return
	}
	id := r.PathValue("id")
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID, e.Reason = "recording", trim(id, 64), trim(reason, 500)
		e.Details = map[string]string{"break_glass": "true"}
	})
	g, err := s.Grants.BreakGlass(r.Context(), []string{id}, reason)
	if err != nil {
		if rec, ferr := s.Recordings.FindRecordingByID(r.Context(), id); ferr == nil && ErrorStatus(err) < 500 && callvault.ErrorCode(err) != callvault.ENOTFOUND {
			s.render(w, r, ErrorStatus(err), "break_glass", map[string]any{"Title": "Emergency access", "Recording": rec,
				"Error": callvault.ErrorMessage(err), "Reason": reason})
			return
		}
		s.pageError(w, r, err)
		return
	}
	s.alertBreakGlass(r, g)
	http.Redirect(w, r, "/recordings/"+id, http.StatusSeeOther)
}

// ratifyGrant confirms a break-glass grant.
func (s *Server) ratifyGrant(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.pageError(w, r, callvault.Errorf(callvault.ENOTFOUND, "no such grant"))
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID, e.Reason = "grant", strconv.FormatInt(id, 10), trim(note, 500)
	})
	if _, err := s.Grants.RatifyBreakGlass(r.Context(), id, note); err != nil {
		s.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/grants", http.StatusSeeOther)
}

// Mailer sends notification e-mail.
type Mailer interface {
	Send(ctx context.Context, to []string, subject, body string) error
}

// alertBreakGlass e-mails the CEO and the DPO at once. Failing to alert
// does not undo the emergency access (that could cost a child's safety),
// but it is logged loudly; the audit entry is flagged either way.
func (s *Server) alertBreakGlass(r *http.Request, g *callvault.Grant) {
	users, err := s.Users.FindUsers(r.Context())
	var to []string
	for _, u := range users {
		if (u.Role == callvault.RoleCEO || u.Role == callvault.RoleDPO) && !u.Disabled && u.Email != "" {
			to = append(to, u.Email)
		}
	}
	if err == nil && len(to) == 0 {
		err = fmt.Errorf("no CEO or DPO account has an e-mail address")
	}
	if err == nil && s.Mailer == nil {
		err = fmt.Errorf("no SMTP relay is configured (--smtp)")
	}
	if err == nil {
		who := actor(r.Context()).User
		body := fmt.Sprintf("%s (%s) opened emergency access to %d recording(s) until %s.\n\nReason given:\n%s\n\n"+
			"It must be ratified by the CEO or the academy's Principal within 3 days, or it will be listed as a possible breach.\n"+
			"Review it under Listening grants (grant %d).\n",
			who.Login, who.Role, len(g.RecordingIDs), g.Until.In(callvault.London).Format("Mon 2 Jan 2006 15:04"), g.Reason, g.ID)
		err = s.Mailer.Send(r.Context(), to, "callvault: emergency (break-glass) access opened", body)
	}
	if err != nil {
		s.Logger.Error("break-glass alert could not be e-mailed; tell the CEO and DPO another way", "grant", g.ID, "err", err)
	}
}
