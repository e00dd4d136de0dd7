package web

import (
	"net/http"
	"strings"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/phone"
)

// academiesPage lists academies with their numbers and a form to add one.
func (s *Server) academiesPage(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanManage(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators manage academies"))
		return
	}
	s.renderAcademies(w, r, http.StatusOK, nil, "")
}

func (s *Server) renderAcademies(w http.ResponseWriter, r *http.Request, status int, form map[string]string, msg string) {
	list, err := s.Academies.FindAcademies(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, status, "academies", map[string]any{"Title": "Academies", "Academies": list, "Form": form, "Error": msg})
}

func (s *Server) createAcademy(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanManage(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators manage academies"))
		return
	}
	form := map[string]string{"slug": r.PostFormValue("slug"), "name": r.PostFormValue("name"),
		"numbers": r.PostFormValue("numbers"), "extensions": r.PostFormValue("extensions")}
	a, err := academyFromForm(form)
	noteAcademy(r, form)
	if err == nil {
		err = s.Academies.CreateAcademy(r.Context(), a)
	}
	if err != nil {
		if st := ErrorStatus(err); st < 500 {
			s.renderAcademies(w, r, st, form, callvault.ErrorMessage(err))
			return
		}
		s.pageError(w, r, err)
		return
	}
	s.Logger.Info("academy created", "slug", a.Slug, "by", actor(r.Context()).User.Login)
	http.Redirect(w, r, "/academies", http.StatusSeeOther)
}

func (s *Server) academyEditPage(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanManage(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators manage academies"))
		return
	}
	a, err := s.Academies.FindAcademyBySlug(r.Context(), r.PathValue("slug"))
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.TargetType, e.TargetID = "academy", trim(r.PathValue("slug"), 64) })
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "academy_edit", map[string]any{"Title": "Edit " + a.Name, "Academy": a,
		"Form": map[string]string{"name": a.Name, "numbers": joinRanges(a.Numbers), "extensions": joinRanges(a.Extensions)}})
}

func (s *Server) updateAcademy(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanManage(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators manage academies"))
		return
	}
	old, err := s.Academies.FindAcademyBySlug(r.Context(), r.PathValue("slug"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	form := map[string]string{"slug": old.Slug, "name": r.PostFormValue("name"),
		"numbers": r.PostFormValue("numbers"), "extensions": r.PostFormValue("extensions")}
	a, err := academyFromForm(form)
	noteAcademy(r, form)
	if err == nil {
		a.ID = old.ID
		err = s.Academies.UpdateAcademy(r.Context(), a)
	}
	if err != nil {
		if st := ErrorStatus(err); st < 500 {
			s.render(w, r, st, "academy_edit", map[string]any{"Title": "Edit " + old.Name, "Academy": old, "Form": form,
				"Error": callvault.ErrorMessage(err)})
			return
		}
		s.pageError(w, r, err)
		return
	}
	s.Logger.Info("academy updated", "slug", a.Slug, "by", actor(r.Context()).User.Login)
	http.Redirect(w, r, "/academies", http.StatusSeeOther)
}

// academyFromForm parses an academy form: ranges one per line or comma
// separated, numbers normalised to E.164.
func academyFromForm(f map[string]string) (*callvault.Academy, error) {
	a := &callvault.Academy{Slug: strings.TrimSpace(f["slug"]), Name: strings.TrimSpace(f["name"])}
	var err error
	if a.Numbers, err = phone.ParseRanges(f["numbers"], true); err != nil {
		return nil, err
	}
	if a.Extensions, err = phone.ParseRanges(f["extensions"], false); err != nil {
		return nil, err
	}
	return a, nil
}

func joinRanges(rs []callvault.Range) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, "\n")
}

// noteAcademy records the academy settings submitted.
func noteAcademy(r *http.Request, form map[string]string) {
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "academy", trim(form["slug"], 64)
		e.Details = map[string]string{"name": trim(form["name"], 200), "numbers": trim(form["numbers"], 1000), "extensions": trim(form["extensions"], 1000)}
	})
}
