package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

// The form that places a legal hold: on recordings chosen on a recording's
// page or a page of search results (hidden fields), or on a saved search
// that also catches calls arriving later.

// maxHoldFormRecordings bounds the recordings one form may carry: a page
// of search results holds at most 200.
const maxHoldFormRecordings = 200

// holdForm is the hold form as typed (or pre-filled from the query).
type holdForm struct {
	Reason, Title, Reference, Academy, Review string
	Recordings                                []string
	Number, Extension, Direction, From, To    string
	// WithFilter reads the saved search even with recordings named (the
	// API may send both; the page offers one or the other).
	WithFilter bool
}

func readHoldForm(v url.Values) holdForm {
	g := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return holdForm{Reason: g("reason"), Title: g("title"), Reference: g("reference"), Academy: g("academy"), Review: g("review"),
		Recordings: dedupe(v["recording"]), Number: g("number"), Extension: g("extension"), Direction: g("direction"),
		From: g("from"), To: g("to")}
}

// holdNewPage is the form, pre-filled from the query: recording=ID (from a
// recording or a page of results) or number, extension, direction, from,
// to and academy (from a search).
func (s *Server) holdNewPage(w http.ResponseWriter, r *http.Request) {
	if !canPlaceHolds(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only the data-protection lead, the CEO and principals place legal holds"))
		return
	}
	f := readHoldForm(r.URL.Query())
	if len(f.Recordings) > maxHoldFormRecordings {
		s.pageError(w, r, callvault.Errorf(callvault.EINVALID, "a form can hold at most %d recordings; use a saved search", maxHoldFormRecordings))
		return
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType = "hold"
		e.Details = map[string]string{"recordings": trim(strings.Join(f.Recordings, ","), 1000)}
	})
	var recs []*callvault.Recording
	for _, id := range f.Recordings {
		rec, err := s.Recordings.FindRecordingByID(r.Context(), id)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		recs = append(recs, rec)
	}
	if f.Review == "" {
		f.Review = s.Now().Add(callvault.DefaultHoldReview).In(callvault.London).Format(time.DateOnly)
	}
	if f.Academy == "" && len(recs) > 0 {
		// The recordings' academy, when they share one: its principals
		// then see the hold.
		f.Academy = recs[0].Academy
		for _, rec := range recs {
			if rec.Academy != f.Academy {
				f.Academy = ""
			}
		}
	}
	s.renderHoldForm(w, r, http.StatusOK, f, recs, newFormErrors())
}

func (s *Server) renderHoldForm(w http.ResponseWriter, r *http.Request, status int, f holdForm, recs []*callvault.Recording, errs *formErrors) {
	academies, trustWide, err := s.holdAcademies(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if f.Academy == "" && !trustWide && len(academies) == 1 {
		f.Academy = academies[0].Slug
	}
	today := s.Now().In(callvault.London)
	s.render(w, r, status, "hold_new", map[string]any{"Title": "Place a legal hold", "Form": f, "Recordings": recs, "Errors": errs,
		"Reasons": callvault.HoldReasons, "Academies": academies, "TrustWide": trustWide,
		"MinReview": today.AddDate(0, 0, 1).Format(time.DateOnly), "MaxReview": today.Add(callvault.MaxHoldReview).Format(time.DateOnly)})
}

// createHold places the hold from the form.
func (s *Server) createHold(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a := actor(ctx)
	if !canPlaceHolds(a) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only the data-protection lead, the CEO and principals place legal holds"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.pageError(w, r, callvault.Errorf(callvault.EINVALID, "the form could not be read"))
		return
	}
	f := readHoldForm(r.PostForm)
	errs := newFormErrors()
	h, ids := s.holdFromForm(r, f, errs)
	noteHoldRequest(r, h, ids)
	if !s.mayHold(w, r, h, ids, errs, s.pageError) {
		return
	}
	status := http.StatusBadRequest
	if !errs.Any() {
		err := s.Holds.CreateHold(ctx, h, ids)
		if err == nil {
			s.Logger.Info("legal hold placed", "hold", h.ID, "recordings", h.Recordings, "by", a.User.Login)
			http.Redirect(w, r, "/holds/"+strconv.FormatInt(h.ID, 10), http.StatusSeeOther)
			return
		}
		if status = ErrorStatus(err); status >= 500 || status == http.StatusForbidden {
			s.pageError(w, r, err)
			return
		}
		errs.AddErr(holdErrorField(err), err)
	}
	recs := make([]*callvault.Recording, 0, len(f.Recordings))
	for _, id := range f.Recordings {
		if rec, err := s.Recordings.FindRecordingByID(ctx, id); err == nil {
			recs = append(recs, rec)
		}
	}
	s.renderHoldForm(w, r, status, f, recs, errs)
}

// mayHold decides, before anything is stored, whether the actor may hold
// the recordings named: each must be visible to them (else 403, whatever
// else is wrong with the form) and, once the form is sound, inside what
// CanCreateHold allows for the hold's academy. A recording that does not
// exist at all is a problem with the form. It answers refusals itself with
// fail and reports whether to go on.
func (s *Server) mayHold(w http.ResponseWriter, r *http.Request, h *callvault.Hold, ids []string, errs *formErrors,
	fail func(http.ResponseWriter, *http.Request, error)) bool {
	if len(ids) == 0 {
		return true
	}
	academies, err := s.recordingAcademies(r.Context(), ids)
	switch {
	case callvault.ErrorCode(err) == callvault.EINVALID:
		errs.AddErr("", err)
	case err != nil:
		fail(w, r, err)
		return false
	case !errs.Any() && !callvault.CanCreateHold(actor(r.Context()), h.AcademyID, academies):
		fail(w, r, callvault.Errorf(callvault.EFORBIDDEN, "you may not place a hold on recordings of another academy"))
		return false
	}
	return true
}

// holdErrorField guesses which field a refusal from the store is about.
func holdErrorField(err error) string {
	msg := callvault.ErrorMessage(err)
	switch {
	case strings.Contains(msg, "academy"):
		return "academy"
	case strings.Contains(msg, "review"):
		return "review"
	case strings.Contains(msg, "saved search"), strings.Contains(msg, "number"):
		return "number"
	}
	return ""
}

// holdFromForm checks the form field by field and builds the hold and the
// recordings it names. The store checks everything again.
func (s *Server) holdFromForm(r *http.Request, f holdForm, errs *formErrors) (*callvault.Hold, []string) {
	h := &callvault.Hold{Reason: f.Reason, Title: f.Title, Reference: f.Reference}
	if !callvault.ValidHoldReason(f.Reason) {
		errs.Add("reason", "Choose the reason for the hold")
	}
	switch {
	case f.Title == "":
		errs.Add("title", "Say what the hold is for")
	case len(f.Title) > callvault.MaxHoldTitle:
		errs.Add("title", "The description must be "+strconv.Itoa(callvault.MaxHoldTitle)+" characters or fewer")
	}
	if len(f.Reference) > callvault.MaxHoldReference {
		errs.Add("reference", "The reference must be "+strconv.Itoa(callvault.MaxHoldReference)+" characters or fewer")
	}
	academies, trustWide, err := s.holdAcademies(r.Context())
	if err != nil {
		errs.AddErr("", err)
	}
	if f.Academy == "" {
		if !trustWide {
			errs.Add("academy", "Choose the academy whose recordings the hold keeps")
		}
	} else {
		for _, x := range academies {
			if x.Slug == f.Academy {
				h.AcademyID, h.Academy = x.ID, x.Slug
			}
		}
		if h.AcademyID == 0 {
			errs.Add("academy", "Choose an academy from the list")
		}
	}
	now := s.Now()
	if review, err := parseReview(f.Review); f.Review == "" {
		errs.Add("review", "Enter the date by which the hold must be reviewed")
	} else if err != nil {
		errs.Add("review", "Enter the review date as a date, for example "+now.Add(callvault.DefaultHoldReview).In(callvault.London).Format(time.DateOnly))
	} else if !review.After(now) {
		errs.Add("review", "The review date must be in the future")
	} else if review.After(now.Add(callvault.MaxHoldReview)) {
		errs.Add("review", "The review date must be within two years; review the hold then and extend it if needed")
	} else {
		h.ReviewAt = review
	}
	if len(f.Recordings) > maxHoldFormRecordings {
		errs.Add("", "A form can hold at most "+strconv.Itoa(maxHoldFormRecordings)+" recordings; use a saved search")
	}
	if len(f.Recordings) == 0 || f.WithFilter {
		h.Filter = s.holdFilterFromForm(f, errs)
		h.Filter.AcademyID = h.AcademyID
	}
	if !errs.Any() {
		if err := h.Validate(now); err != nil {
			errs.AddErr(holdErrorField(err), err)
		}
	}
	return h, f.Recordings
}

// parseReview reads a review date: a day (London; the hold is due for
// review from its start) or an RFC 3339 time.
func parseReview(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.ParseInLocation(time.DateOnly, v, callvault.London)
}

// holdFilterFromForm reads the saved search with exactly the rules of the
// search page, one field at a time so that each problem is shown at its field.
func (s *Server) holdFilterFromForm(f holdForm, errs *formErrors) *callvault.HoldFilter {
	one := func(field string, sf searchForm, msg string) callvault.RecordingFilter {
		rf, err := s.filter(sf, nil)
		if err != nil {
			errs.Add(field, msg)
		}
		return rf
	}
	hf := &callvault.HoldFilter{}
	hf.Number = one("number", searchForm{Number: f.Number}, "Enter a full phone number or at least its last 3 digits").Number
	hf.Extension = one("extension", searchForm{Extension: f.Extension}, "An extension may hold only digits, * and #").Extension
	hf.Direction = one("direction", searchForm{Direction: f.Direction}, "Choose a direction from the list").Direction
	hf.From = one("from", searchForm{From: f.From}, "Enter the first day as a date, for example 2026-09-01").From
	hf.To = one("to", searchForm{To: f.To}, "Enter the last day as a date, for example 2026-09-30").To
	if f.Number == "" && f.Extension == "" {
		errs.Add("number", "Enter a phone number or an extension: a saved search must name at least one, so that a hold never covers every call")
	}
	if !hf.From.IsZero() && !hf.To.IsZero() && !hf.From.Before(hf.To) {
		errs.Add("to", "The last day must not be before the first day")
	}
	return hf
}

// noteHoldRequest records what was asked for, before the store adds what
// it did (inside its transaction).
func noteHoldRequest(r *http.Request, h *callvault.Hold, ids []string) {
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.AcademyID = "hold", h.AcademyID
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["reason"], e.Details["reference"] = trim(h.Reason, 64), trim(h.Reference, callvault.MaxHoldReference)
		if len(ids) > 0 {
			e.Details["recording_ids"] = trim(strings.Join(ids, ","), 1000)
		}
		if h.Filter != nil {
			if b, err := json.Marshal(h.Filter); err == nil {
				e.Details["filter"] = trim(string(b), 1000)
			}
		}
	})
}
