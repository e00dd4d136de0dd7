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

// apiCreateRequest is POST /api/v1/listen-requests with a JSON body:
// {"recording_ids": [...], "purpose": "...", "purpose_text": "...",
// "justification": "...", "listeners": ["login", ...], "minutes": 10080}.
func (s *Server) apiCreateRequest(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RecordingIDs  []string `json:"recording_ids"`
		Purpose       string   `json:"purpose"`
		PurposeText   string   `json:"purpose_text"`
		Justification string   `json:"justification"`
		Listeners     []string `json:"listeners"`
		Minutes       int      `json:"minutes"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "the request body is not the JSON described in the API"))
		return
	}
	if in.Minutes == 0 {
		in.Minutes = int(callvault.MaxGrantDuration / time.Minute)
	}
	req, err := s.requestFromForm(r, in.Purpose, in.PurposeText, in.Justification, strings.Join(in.Listeners, ","), strconv.Itoa(in.Minutes), in.RecordingIDs)
	if err == nil {
		noteRequest(r, req)
		err = s.Grants.CreateListenRequest(r.Context(), req)
	}
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	w.Header().Set("Location", "/requests/"+strconv.FormatInt(req.ID, 10))
	writeJSON(w, http.StatusCreated, req)
}

// apiDecide is POST /api/v1/listen-requests/{id}/approve or /decline with
// {"note": "..."}.
func (s *Server) apiDecide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			s.jsonError(w, r, callvault.Errorf(callvault.ENOTFOUND, "no such request"))
			return
		}
		var in struct {
			Note string `json:"note"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, `send {"note": "why"}`))
			return
		}
		decision := "decline"
		if approve {
			decision = "approve"
		}
		callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
			e.TargetType, e.TargetID, e.Reason = "listen_request", strconv.FormatInt(id, 10), trim(in.Note, 500)
			e.Details = map[string]string{"decision": decision}
		})
		req, grants, err := s.Grants.DecideListenRequest(r.Context(), id, approve, strings.TrimSpace(in.Note))
		if err != nil {
			s.jsonError(w, r, err)
			return
		}
		if grants == nil {
			grants = []*callvault.Grant{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"request": req, "grants": grants})
	}
}

// apiGrants is GET /api/v1/grants (scoped to the actor).
func (s *Server) apiGrants(w http.ResponseWriter, r *http.Request) {
	f := callvault.GrantFilter{}
	if r.URL.Query().Get("active") == "true" {
		f.ActiveAt = s.Now()
	}
	grants, err := s.Grants.FindGrants(r.Context(), f)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if grants == nil {
		grants = []*callvault.Grant{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": grants})
}
