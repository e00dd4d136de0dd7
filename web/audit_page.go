package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/callvault/callvault"
)

// auditForm is the audit search as typed into the page or the API.
type auditForm struct {
	Actor, Action, TargetType, TargetID, From, To, Before, Limit string
}

func readAuditForm(q url.Values) auditForm {
	g := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	return auditForm{Actor: g("actor"), Action: g("action"), TargetType: g("target_type"), TargetID: g("target_id"),
		From: g("from"), To: g("to"), Before: g("before"), Limit: g("limit")}
}

func (f auditForm) filter() (callvault.AuditFilter, error) {
	af := callvault.AuditFilter{ActorName: f.Actor, Action: f.Action, TargetType: f.TargetType, TargetID: f.TargetID}
	var err error
	if af.From, err = parseWhen("from", f.From, false); err != nil {
		return af, err
	}
	if af.To, err = parseWhen("to", f.To, true); err != nil {
		return af, err
	}
	if f.Before != "" {
		if af.Before, err = strconv.ParseInt(f.Before, 10, 64); err != nil || af.Before < 1 {
			return af, callvault.Errorf(callvault.EINVALID, "before must be a sequence number")
		}
	}
	if f.Limit != "" {
		if af.Limit, err = strconv.Atoi(f.Limit); err != nil || af.Limit < 1 || af.Limit > 1000 {
			return af, callvault.Errorf(callvault.EINVALID, "limit must be between 1 and 1000")
		}
	}
	for _, v := range []string{af.ActorName, af.Action, af.TargetType, af.TargetID} {
		if len(v) > 200 {
			return af, callvault.Errorf(callvault.EINVALID, "filters are at most 200 characters")
		}
	}
	return af, nil
}

// findAudit runs an audit search and notes it in the pending entry.
func (s *Server) findAudit(r *http.Request, f auditForm) ([]*callvault.AuditEvent, string, error) {
	if !callvault.CanReadAudit(actor(r.Context())) {
		return nil, "", callvault.Errorf(callvault.EFORBIDDEN, "your role cannot read the audit trail")
	}
	af, err := f.filter()
	if err != nil {
		return nil, "", err
	}
	limit := af.Limit
	if limit == 0 {
		limit = 100
	}
	events, err := s.Audit.FindAuditEvents(r.Context(), af)
	if err != nil {
		return nil, "", err
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.Details = map[string]string{"query": trim(r.URL.RawQuery, 512), "shown": strconv.Itoa(len(events))}
		if af.TargetID != "" {
			e.TargetType, e.TargetID = af.TargetType, af.TargetID
		}
	})
	next := ""
	if len(events) == limit && len(events) > 0 {
		next = strconv.FormatInt(events[len(events)-1].Seq, 10)
	}
	return events, next, nil
}

// auditPage is the audit trail search for the DPO, the CEO and principals.
func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	form := readAuditForm(r.URL.Query())
	data := map[string]any{"Title": "Audit trail", "Form": form}
	events, next, err := s.findAudit(r, form)
	if err != nil {
		if callvault.ErrorCode(err) == callvault.EINVALID {
			data["Error"] = callvault.ErrorMessage(err)
			s.render(w, r, http.StatusBadRequest, "audit", data)
			return
		}
		s.pageError(w, r, err)
		return
	}
	data["Events"] = events
	if next != "" {
		q := r.URL.Query()
		q.Set("before", next)
		data["NextURL"] = "/audit?" + q.Encode()
	}
	s.render(w, r, http.StatusOK, "audit", data)
}

// apiAudit is GET /api/v1/audit.
func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	events, next, err := s.findAudit(r, readAuditForm(r.URL.Query()))
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if events == nil {
		events = []*callvault.AuditEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events, "next_before": next})
}
