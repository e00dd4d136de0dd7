package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/phone"
)

// The retention settings page: the rules in force, a form to set one (which
// goes through a preview of what it would change before anything is
// stored), removing an override (previewed the same way) and the categories.

// ruleForm is the retention rule form as typed: slugs ("" for every academy
// or category) and the months.
type ruleForm struct {
	Academy, Category, Months string
}

func readRuleForm(r *http.Request) ruleForm {
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	return ruleForm{Academy: g("academy"), Category: g("category"), Months: g("months")}
}

// ruleRow is a rule with the names of what it applies to.
type ruleRow struct {
	callvault.RetentionRule
	AppliesTo string
	Default   bool // the trust default, which can be changed but not removed
}

// retentionChoices are the academies and categories a rule may name.
type retentionChoices struct {
	Academies  []*callvault.Academy
	Categories []*callvault.Category
}

func (s *Server) retentionChoices(ctx context.Context) (retentionChoices, error) {
	var c retentionChoices
	var err error
	if c.Academies, err = s.Academies.FindAcademies(ctx); err != nil {
		return c, err
	}
	c.Categories, err = s.Retention.FindCategories(ctx)
	return c, err
}

// appliesTo describes what a rule covers, in words.
func (c retentionChoices) appliesTo(academyID int64, academySlug, category string) string {
	academy, cat := "every academy", "every category"
	if academyID != 0 {
		academy = academySlug
		if academy == "" {
			academy = "academy #" + strconv.FormatInt(academyID, 10)
		}
		for _, a := range c.Academies {
			if a.ID == academyID {
				academy = a.Name
			}
		}
	}
	if category != "" {
		cat = category
		for _, x := range c.Categories {
			if x.Slug == category {
				cat = x.Name
			}
		}
	}
	if academyID == 0 && category == "" {
		return "Trust default: every academy, every category"
	}
	return academy + ", " + cat
}

// ruleFromForm checks the form field by field. With remove, months are not
// asked for and the trust default may not be named.
func (c retentionChoices) ruleFromForm(f ruleForm, remove bool, errs *formErrors) callvault.RetentionRule {
	var rule callvault.RetentionRule
	if f.Academy != "" {
		for _, a := range c.Academies {
			if a.Slug == f.Academy {
				rule.AcademyID, rule.Academy = a.ID, a.Slug
			}
		}
		if rule.AcademyID == 0 {
			errs.Add("academy", "Choose an academy from the list")
		}
	}
	if f.Category != "" {
		found := false
		for _, x := range c.Categories {
			found = found || x.Slug == f.Category
		}
		if !found {
			errs.Add("category", "Choose a category from the list")
		}
		rule.Category = f.Category
	}
	if remove {
		if f.Academy == "" && f.Category == "" {
			errs.Add("", "The trust default cannot be removed, only changed")
		}
		return rule
	}
	n, err := strconv.Atoi(f.Months)
	switch {
	case f.Months == "":
		errs.Add("months", "Enter how many months to keep recordings, from 1 to 120")
	case err != nil:
		errs.Add("months", "Enter the number of months as a whole number, from 1 to 120")
	case n < callvault.MinRetentionMonths || n > callvault.MaxRetentionMonths:
		errs.Add("months", "Recordings can be kept for between 1 and 120 months; "+strconv.Itoa(n)+" is outside that")
	default:
		rule.Months = n
		if err := rule.Validate(); err != nil && !errs.Any() {
			errs.AddErr("", err)
		}
	}
	return rule
}

// retentionPage shows the rules and, to those who may change them, the forms.
func (s *Server) retentionPage(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanViewRetention(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot see the retention policy"))
		return
	}
	notice := ""
	q := r.URL.Query()
	switch q.Get("saved") {
	case "rule", "removed":
		notice = "The retention rule was saved."
		if q.Get("saved") == "removed" {
			notice = "The override was removed."
		}
		if n, err := strconv.Atoi(q.Get("changed")); err == nil && n >= 0 {
			notice += " " + recordingsMoved(n) + "."
		}
	case "category":
		notice = "The category was added. Recordings are put in it as they arrive; give it a rule below."
	}
	s.renderRetention(w, r, http.StatusOK, ruleForm{}, newFormErrors(), map[string]string{}, newFormErrors(), notice)
}

func recordingsMoved(n int) string {
	switch n {
	case 0:
		return "No recording's deletion date moved"
	case 1:
		return "1 recording's deletion date moved"
	}
	return strconv.Itoa(n) + " recordings' deletion dates moved"
}

func (s *Server) renderRetention(w http.ResponseWriter, r *http.Request, status int, rule ruleForm, ruleErrs *formErrors,
	cat map[string]string, catErrs *formErrors, notice string) {
	ctx := r.Context()
	policy, err := s.Retention.RetentionPolicy(ctx)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	choices, err := s.retentionChoices(ctx)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	rows := make([]ruleRow, len(policy))
	for i, p := range policy {
		rows[i] = ruleRow{p, choices.appliesTo(p.AcademyID, p.Academy, p.Category), p.IsDefault()}
	}
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		if e.TargetType == "" {
			e.TargetType = "retention_policy"
		}
	})
	s.render(w, r, status, "retention", map[string]any{"Title": "Retention", "Rules": rows,
		"Academies": choices.Academies, "Categories": choices.Categories,
		"CanChange": callvault.CanChangeRetention(actor(ctx)), "Rule": rule, "RuleErrors": ruleErrs,
		"Cat": cat, "CatErrors": catErrs, "Notice": notice,
		"Min": callvault.MinRetentionMonths, "Max": callvault.MaxRetentionMonths})
}

// noteRule records the rule a preview or change is about.
func noteRule(r *http.Request, f ruleForm, op string) {
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		id := "default"
		switch {
		case f.Academy != "" && f.Category != "":
			id = "academy:" + f.Academy + "/category:" + f.Category
		case f.Academy != "":
			id = "academy:" + f.Academy
		case f.Category != "":
			id = "category:" + f.Category
		}
		e.TargetType, e.TargetID = "retention_rule", trim(id, 200)
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["op"] = op
		if op != "remove" {
			e.Details["months"] = trim(f.Months, 16)
		}
	})
}

// checkRuleChange is the start of every rule change: the actor may change
// the policy and the form is sound. It answers the request itself and
// returns ok false when it is not.
func (s *Server) checkRuleChange(w http.ResponseWriter, r *http.Request, op string) (callvault.RetentionRule, ruleForm, bool) {
	if !callvault.CanChangeRetention(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators and the data-protection lead change retention"))
		return callvault.RetentionRule{}, ruleForm{}, false
	}
	f := readRuleForm(r)
	noteRule(r, f, op)
	choices, err := s.retentionChoices(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return callvault.RetentionRule{}, f, false
	}
	errs := newFormErrors()
	rule := choices.ruleFromForm(f, op == "remove", errs)
	if errs.Any() {
		s.renderRetention(w, r, http.StatusBadRequest, f, errs, map[string]string{}, newFormErrors(), "")
		return rule, f, false
	}
	return rule, f, true
}

// ruleChangeFailed shows a refused change next to the form, or the error page.
func (s *Server) ruleChangeFailed(w http.ResponseWriter, r *http.Request, f ruleForm, err error) {
	if st := ErrorStatus(err); st < 500 && st != http.StatusForbidden {
		errs := newFormErrors()
		field := ""
		if strings.Contains(callvault.ErrorMessage(err), "month") {
			field = "months"
		}
		errs.AddErr(field, err)
		s.renderRetention(w, r, st, f, errs, map[string]string{}, newFormErrors(), "")
		return
	}
	s.pageError(w, r, err)
}

// previewRetention shows what a change would do, with Confirm and Cancel.
// Nothing is stored.
func (s *Server) previewRetention(w http.ResponseWriter, r *http.Request) {
	op := "set"
	if r.PostFormValue("op") == "remove" {
		op = "remove"
	}
	rule, f, ok := s.checkRuleChange(w, r, op)
	if !ok {
		return
	}
	impact, err := s.Retention.PreviewRetentionRule(r.Context(), &rule, op == "remove")
	if err != nil {
		s.ruleChangeFailed(w, r, f, err)
		return
	}
	policy, err := s.Retention.RetentionPolicy(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	choices, err := s.retentionChoices(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	var current *callvault.RetentionRule
	for _, p := range policy {
		if p.AcademyID == rule.AcademyID && p.Category == rule.Category {
			current = &p
		}
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["changed"], e.Details["earlier"] = strconv.Itoa(impact.Changed), strconv.Itoa(impact.Earlier)
		e.Details["later"], e.Details["due_now"] = strconv.Itoa(impact.Later), strconv.Itoa(impact.DueNow)
	})
	moves, due := impactText(impact)
	s.render(w, r, http.StatusOK, "retention_preview", map[string]any{"Title": "Check the change to retention",
		"Remove": op == "remove", "Form": f, "Rule": rule, "Current": current, "Impact": impact, "Moves": moves, "Due": due,
		"AppliesTo": choices.appliesTo(rule.AcademyID, rule.Academy, rule.Category)})
}

// setRetention stores a rule (after the preview's Confirm) and recomputes
// the recordings it covers, with the audit entry, in one transaction.
func (s *Server) setRetention(w http.ResponseWriter, r *http.Request) {
	rule, f, ok := s.checkRuleChange(w, r, "set")
	if !ok {
		return
	}
	impact, err := s.Retention.SetRetentionRule(r.Context(), &rule)
	if err != nil {
		s.ruleChangeFailed(w, r, f, err)
		return
	}
	s.Logger.Info("retention rule set", "rule", rule.String(), "changed", impact.Changed, "by", actor(r.Context()).User.Login)
	http.Redirect(w, r, "/retention?"+url.Values{"saved": {"rule"}, "changed": {strconv.Itoa(impact.Changed)}}.Encode(), http.StatusSeeOther)
}

// removeRetention removes an override (after the preview's Confirm).
func (s *Server) removeRetention(w http.ResponseWriter, r *http.Request) {
	rule, f, ok := s.checkRuleChange(w, r, "remove")
	if !ok {
		return
	}
	impact, err := s.Retention.DeleteRetentionRule(r.Context(), rule.AcademyID, rule.Category)
	if err != nil {
		s.ruleChangeFailed(w, r, f, err)
		return
	}
	s.Logger.Info("retention rule removed", "academy", rule.AcademyID, "category", rule.Category, "changed", impact.Changed, "by", actor(r.Context()).User.Login)
	http.Redirect(w, r, "/retention?"+url.Values{"saved": {"removed"}, "changed": {strconv.Itoa(impact.Changed)}}.Encode(), http.StatusSeeOther)
}

// createCategory adds a kind of call with its own retention.
func (s *Server) createCategory(w http.ResponseWriter, r *http.Request) {
	if !callvault.CanChangeRetention(actor(r.Context())) {
		s.pageError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "only administrators and the data-protection lead change categories"))
		return
	}
	g := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	form := map[string]string{"slug": g("slug"), "name": g("name"), "numbers": r.PostFormValue("numbers"), "extensions": r.PostFormValue("extensions")}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "category", trim(form["slug"], 64)
		e.Details = map[string]string{"name": trim(form["name"], 200), "numbers": trim(form["numbers"], 1000), "extensions": trim(form["extensions"], 1000)}
	})
	errs := newFormErrors()
	c := &callvault.Category{Slug: form["slug"], Name: form["name"]}
	if !callvault.ValidSlug(c.Slug) {
		errs.Add("slug", "Enter a short name of 2 to 64 lower-case letters, digits and hyphens, such as safeguarding")
	}
	if c.Name == "" {
		errs.Add("name", "Enter the category's name")
	}
	var err error
	if c.Numbers, err = phone.ParseRanges(form["numbers"], true); err != nil {
		errs.AddErr("numbers", err)
	}
	if c.Extensions, err = phone.ParseRanges(form["extensions"], false); err != nil {
		errs.AddErr("extensions", err)
	}
	if !errs.Any() && len(c.Numbers) == 0 && len(c.Extensions) == 0 {
		errs.Add("numbers", "Enter the phone numbers or extensions of the line whose calls belong to this category")
	}
	status := http.StatusBadRequest
	if !errs.Any() {
		if err := s.Retention.CreateCategory(r.Context(), c); err != nil {
			status = ErrorStatus(err)
			switch {
			case status >= 500 || status == http.StatusForbidden:
				s.pageError(w, r, err)
				return
			case callvault.ErrorCode(err) == callvault.ECONFLICT:
				errs.AddErr("slug", err)
			default:
				errs.AddErr("", err)
			}
		}
	}
	if errs.Any() {
		s.renderRetention(w, r, status, ruleForm{}, newFormErrors(), form, errs, "")
		return
	}
	s.Logger.Info("category created", "slug", c.Slug, "by", actor(r.Context()).User.Login)
	http.Redirect(w, r, "/retention?saved=category", http.StatusSeeOther)
}

// impactText says what a rule change does, for the preview.
func impactText(i callvault.RetentionImpact) (moves, due string) {
	switch i.Changed {
	case 0:
		moves = "This change moves no recording's deletion date."
	case 1:
		moves = "This change moves 1 recording's deletion date: " + strconv.Itoa(i.Earlier) + " earlier, " + strconv.Itoa(i.Later) + " later."
	default:
		moves = "This change moves " + strconv.Itoa(i.Changed) + " recordings' deletion dates: " + strconv.Itoa(i.Earlier) + " earlier, " + strconv.Itoa(i.Later) + " later."
	}
	switch i.DueNow {
	case 0:
		due = "No recording would become due for deletion at once."
	case 1:
		due = "1 recording would be deleted at the next run unless held."
	default:
		due = strconv.Itoa(i.DueNow) + " recordings would be deleted at the next run unless held."
	}
	return moves, due
}
