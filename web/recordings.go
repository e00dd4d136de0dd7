package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/callvault/callvault"
)

// recordingsPage is the search page: filters, a results table, keyset paging.
func (s *Server) recordingsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !callvault.CanSearch(actor(ctx)) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot search recordings"))
		return
	}
	academies, err := s.Academies.FindAcademies(ctx)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	form := readSearchForm(r.URL.Query())
	data := map[string]any{"Title": "Recordings", "Form": form, "Academies": academies}
	f, err := s.filter(form, academies)
	if err != nil {
		data["Error"] = callvault.ErrorMessage(err)
		s.render(w, r, http.StatusBadRequest, "recordings", data)
		return
	}
	recs, total, next, err := s.Recordings.FindRecordings(ctx, f)
	if err != nil {
		if callvault.ErrorCode(err) == callvault.EINVALID {
			data["Error"] = callvault.ErrorMessage(err)
			s.render(w, r, http.StatusBadRequest, "recordings", data)
			return
		}
		s.pageError(w, r, err)
		return
	}
	noteSearch(r, len(recs), total)
	data["Recordings"] = recs
	if len(recs) > 0 && callvault.CanRequest(actor(ctx)) {
		q := url.Values{}
		for _, rec := range recs {
			q.Add("recording", rec.ID)
		}
		data["RequestURL"] = "/requests/new?" + q.Encode()
	}
	if canPlaceHolds(actor(ctx)) {
		if len(recs) > 0 {
			q := url.Values{}
			for _, rec := range recs {
				q.Add("recording", rec.ID)
			}
			data["HoldPageURL"] = "/holds/new?" + q.Encode()
		}
		if form.Number != "" || form.Extension != "" {
			// A saved search: the same filters, and calls arriving later.
			q := url.Values{}
			for k, v := range map[string]string{"number": form.Number, "extension": form.Extension, "direction": form.Direction,
				"from": form.From, "to": form.To, "academy": form.Academy} {
				if v != "" {
					q.Set(k, v)
				}
			}
			data["HoldSearchURL"] = "/holds/new?" + q.Encode()
		}
	}
	data["Total"] = total
	data["TotalCapped"] = total >= callvault.CountCap
	if next != "" {
		q := r.URL.Query()
		q.Set("after", next)
		data["NextURL"] = "/recordings?" + q.Encode()
	}
	if form.After != "" {
		q := r.URL.Query()
		q.Del("after")
		data["FirstURL"] = "/recordings?" + q.Encode()
	}
	s.render(w, r, http.StatusOK, "recordings", data)
}

// recordingPage shows one recording's metadata, and a player when the actor
// may play it.
func (s *Server) recordingPage(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Recordings.FindRecordingByID(r.Context(), r.PathValue("id"))
	s.noteRecording(r, rec)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	audio, grant, err := s.playURL(r, rec)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	a := actor(r.Context())
	data := map[string]any{
		"Title":         "Recording " + rec.StartedAt.In(callvault.London).Format("2 Jan 2006 15:04"),
		"Recording":     rec,
		"CanPlay":       audio != "",
		"AudioURL":      audio,
		"Grant":         grant,
		"CanRequest":    callvault.CanRequest(a),
		"CanBreakGlass": callvault.CanBreakGlass(a),
		// A listener is shown only what they need to play the call.
		"Minimal": a.Role() == callvault.RoleListener,
	}
	if callvault.CanViewHolds(a) {
		// Why it is kept, and until when: part of the view being audited.
		holds, err := s.Holds.FindHolds(r.Context(), callvault.HoldListFilter{Active: true, RecordingID: rec.ID})
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		data["ShowRetention"], data["Holds"] = true, holds
		data["HoldsPartial"] = !callvault.HoldScope(a).All
		data["CanHold"] = callvault.CanCreateHold(a, rec.AcademyID, []int64{rec.AcademyID})
	}
	if callvault.CanReadAudit(actor(r.Context())) {
		// Who has accessed it: reading this is part of the view being audited.
		events, err := s.Audit.FindAuditEvents(r.Context(), callvault.AuditFilter{TargetType: "recording", TargetID: rec.ID, Limit: 20})
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		data["Accesses"], data["ShowAccesses"] = events, true
	}
	s.render(w, r, http.StatusOK, "recording", data)
}

// noteSearch records what was searched for and how much was seen. The
// query may hold a phone number: searching by number is what it is for.
func noteSearch(r *http.Request, n, total int) {
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.Details = map[string]string{"query": trim(r.URL.RawQuery, 512), "shown": strconv.Itoa(n), "total": strconv.Itoa(total)}
	})
}

// noteRecording names the recording a request is about (or tried to be).
// A recording that exists but is outside the actor's scope is answered "not
// found" (no probing), but recorded as a denial of that academy's recording,
// so attempts show up for those who oversee it.
func (s *Server) noteRecording(r *http.Request, rec *callvault.Recording) {
	id := trim(r.PathValue("id"), 64)
	if rec == nil && id != "" {
		sys := callvault.NewContextWithActor(r.Context(), callvault.SystemActor)
		if hidden, err := s.Recordings.FindRecordingByID(sys, id); err == nil {
			callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
				e.Outcome, e.AcademyID = callvault.OutcomeDenied, hidden.AcademyID
			})
		}
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "recording", id
		if rec != nil {
			e.AcademyID = rec.AcademyID
		}
	})
}
