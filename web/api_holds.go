package web

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// The legal-hold API: the same decisions and checks as the pages, in JSON.

// holdJSON is one hold with a page of the recordings it keeps.
type holdJSON struct {
	*callvault.Hold
	RecordingIDs []string `json:"recording_ids"`
	NextAfter    string   `json:"next_after,omitempty"`
}

// apiHolds is GET /api/v1/holds[?active=true][&recording=ID].
func (s *Server) apiHolds(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanViewHolds(actor(r.Context())) {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot see legal holds"))
		return
	}
	q := r.URL.Query()
	f := callvault.HoldListFilter{Active: q.Get("active") == "true", RecordingID: trim(q.Get("recording"), 64)}
	holds, err := s.Holds.FindHolds(r.Context(), f)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if holds == nil {
		holds = []*callvault.Hold{}
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.Details = map[string]string{"query": trim(r.URL.RawQuery, 512), "shown": strconv.Itoa(len(holds))}
	})
	writeJSON(w, http.StatusOK, map[string]any{"holds": holds})
}

// apiHold is GET /api/v1/holds/{id}[?after=ID&limit=N]: the hold and a page
// of the recordings it keeps, in id order.
func (s *Server) apiHold(w http.ResponseWriter, r *http.Request) {
	h, err := s.findHold(r)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	limit := 1000
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "limit must be between 1 and 1000"))
			return
		}
	}
	ids, err := s.Holds.HeldRecordingIDs(r.Context(), h.ID, r.URL.Query().Get("after"), limit)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	out := holdJSON{Hold: h, RecordingIDs: ids}
	if out.RecordingIDs == nil {
		out.RecordingIDs = []string{}
	}
	if len(ids) == limit {
		out.NextAfter = ids[len(ids)-1]
	}
	writeJSON(w, http.StatusOK, out)
}

// holdInput is the body of POST /api/v1/holds.
type holdInput struct {
	Reason       string   `json:"reason"`
	Title        string   `json:"title"`
	Reference    string   `json:"reference"`
	Academy      string   `json:"academy"`   // slug; empty for a trust-wide hold
	ReviewAt     string   `json:"review_at"` // a date or RFC 3339; default 90 days ahead
	RecordingIDs []string `json:"recording_ids"`
	Filter       *struct {
		Number    string `json:"number"`
		Extension string `json:"extension"`
		Direction string `json:"direction"`
		From      string `json:"from"`
		To        string `json:"to"`
	} `json:"filter"`
}

// apiCreateHold is POST /api/v1/holds.
func (s *Server) apiCreateHold(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := actor(ctx)
	if !canPlaceHolds(a) {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only the data-protection lead, the CEO and principals place legal holds"))
		return
	}
	var in holdInput
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "the request body is not the JSON described in the API"))
		return
	}
	f := holdForm{Reason: in.Reason, Title: strings.TrimSpace(in.Title), Reference: strings.TrimSpace(in.Reference),
		Academy: in.Academy, Review: in.ReviewAt, Recordings: dedupe(in.RecordingIDs)}
	if f.Review == "" {
		f.Review = s.Now().Add(callvault.DefaultHoldReview).Format(time.RFC3339)
	}
	if in.Filter != nil {
		f.WithFilter = true
		f.Number, f.Extension, f.Direction, f.From, f.To = in.Filter.Number, in.Filter.Extension, in.Filter.Direction, in.Filter.From, in.Filter.To
	}
	if len(f.Recordings) == 0 && in.Filter == nil {
		s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "send recording_ids, a filter, or both"))
		return
	}
	errs := newFormErrors()
	h, ids := s.holdFromForm(r, f, errs)
	noteHoldRequest(r, h, ids)
	if !s.mayHold(w, r, h, ids, errs, s.jsonError) {
		return
	}
	if errs.Any() {
		s.jsonError(w, r, firstError(errs))
		return
	}
	if err := s.Holds.CreateHold(ctx, h, ids); err != nil {
		s.jsonError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/holds/"+strconv.FormatInt(h.ID, 10))
	writeJSON(w, http.StatusCreated, h)
}

// firstError is the first problem of a form as an EINVALID error naming
// its field.
func firstError(errs *formErrors) error {
	fe := errs.List()[0]
	if fe.Field == "" {
		return callvault.Errorf(callvault.EINVALID, "%s", fe.Message)
	}
	return callvault.Errorf(callvault.EINVALID, "%s: %s", fe.Field, fe.Message)
}

// apiReleaseHold is POST /api/v1/holds/{id}/release with {"note": "why"}.
func (s *Server) apiReleaseHold(w http.ResponseWriter, r *http.Request) {
	h, err := s.findHold(r)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	var in struct {
		Note string `json:"note"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, `send {"note": "why the hold is no longer needed"}`))
		return
	}
	note := strings.TrimSpace(in.Note)
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.Reason = trim(note, 500) })
	if !callvault.CanReleaseHold(actor(r.Context()), h) {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only the data-protection lead, the CEO, the hold's owner or its academy's principal may release it"))
		return
	}
	if note == "" {
		s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "note: say why the hold is no longer needed"))
		return
	}
	released, err := s.Holds.ReleaseHold(r.Context(), h.ID, note)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, released)
}
