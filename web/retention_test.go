package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// storeAt ingests a call that started at started, from number to the
// Oakfield reception (extension 2001), and returns its id.
func (h *harness) storeAt(ref string, started time.Time, number string) string {
	h.t.Helper()
	m := `{"source_ref":"` + ref + `","started_at":"` + started.UTC().Format(time.RFC3339) + `","direction":"inbound","participants":[` +
		`{"number":"` + number + `","side":"external"},{"number":"01632 960010","extension":"2001","side":"staff"}]}`
	resp, out := h.ingest(upload{meta: m, audio: wav(h.t, "ulaw", time.Second)})
	if resp.StatusCode != http.StatusCreated {
		h.t.Fatalf("ingest %s: %d %v", ref, resp.StatusCode, out)
	}
	return out["id"].(string)
}

// retainUntil is the recording's keep-until date as the store has it.
func (h *harness) retainUntil(id string) time.Time {
	h.t.Helper()
	rec, err := h.d.Recordings.FindRecordingByID(h.d.Sys, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return rec.RetainUntil
}

// page GETs a path of the server as c.
func (h *harness) page(c *http.Client, path string) (*http.Response, string) {
	h.t.Helper()
	return h.get(c, h.ts.URL+path)
}

func (h *harness) postForm(c *http.Client, path string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	resp, err := c.PostForm(h.ts.URL+path, form)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, readAll(h.t, resp)
}

// A rule change is previewed first (nothing changes), then confirmed: the
// recordings' keep-until dates move, with the audit entry, at once.
func TestRetentionPreviewThenConfirm(t *testing.T) {
	h := newHarness(t)
	started := time.Date(2026, 10, 1, 9, 30, 0, 0, time.UTC)
	id := h.storeOne("r", "ulaw", time.Second)
	if got, want := h.retainUntil(id), callvault.RetainUntil(started, 12); !got.Equal(want) {
		t.Fatalf("keep until after ingest = %v, want %v (the 12-month default)", got, want)
	}
	dpo := h.client("dpo")

	// The page: the trust default first, and the form.
	resp, body := h.page(dpo, "/retention")
	if resp.StatusCode != 200 || !strings.Contains(body, "Trust default") || !strings.Contains(body, "12 months") || !strings.Contains(body, `id="months"`) {
		t.Fatalf("retention page: %d\n%.2000s", resp.StatusCode, body)
	}

	// Preview: one month for Oakfield makes the October call due at once.
	form := url.Values{"op": {"set"}, "academy": {"oakfield"}, "months": {"1"}}
	resp, body = h.postForm(dpo, "/retention/preview", form)
	for _, want := range []string{"This change moves 1 recording&#39;s deletion date: 1 earlier, 0 later.",
		"1 recording would be deleted at the next run unless held.", `action="/retention"`, `id="confirm"`, `href="/retention"`} {
		if !strings.Contains(body, want) {
			t.Errorf("preview lacks %q:\n%.3000s", want, body)
		}
	}
	if resp.StatusCode != 200 {
		t.Errorf("preview: %d", resp.StatusCode)
	}
	if got := h.retainUntil(id); !got.Equal(callvault.RetainUntil(started, 12)) {
		t.Fatalf("the preview changed keep-until to %v", got)
	}
	e := h.newest(1)[0]
	if e.Action != "retention.preview" || e.ActorName != "dpo" || e.Details["due_now"] != "1" || e.TargetID != "academy:oakfield" {
		t.Errorf("preview audited as %+v", e)
	}

	// Confirm: stored, recomputed, audited in the same transaction.
	resp, _ = h.postForm(dpo, "/retention", url.Values{"academy": {"oakfield"}, "months": {"1"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/retention?") {
		t.Fatalf("confirm: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got, want := h.retainUntil(id), callvault.RetainUntil(started, 1); !got.Equal(want) {
		t.Errorf("keep until after the change = %v, want %v", got, want)
	}
	e = h.newest(1)[0]
	if e.Action != "retention.set" || e.Outcome != callvault.OutcomeAllowed || e.Details["changed"] != "1" || !strings.Contains(e.Details["after"], "1 month") {
		t.Errorf("change audited as %+v", e)
	}
	resp, body = h.page(dpo, resp.Header.Get("Location"))
	if !strings.Contains(body, "The retention rule was saved. 1 recording&#39;s deletion date moved.") || !strings.Contains(body, "Oakfield, every category") {
		t.Errorf("after saving, the page says:\n%.3000s", body)
	}

	// Removing the override is previewed and confirmed the same way.
	resp, body = h.postForm(dpo, "/retention/preview", url.Values{"op": {"remove"}, "academy": {"oakfield"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "0 earlier, 1 later") || !strings.Contains(body, `action="/retention/remove"`) {
		t.Errorf("remove preview: %d\n%.3000s", resp.StatusCode, body)
	}
	resp, _ = h.postForm(dpo, "/retention/remove", url.Values{"academy": {"oakfield"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("remove: %d", resp.StatusCode)
	}
	if got := h.retainUntil(id); !got.Equal(callvault.RetainUntil(started, 12)) {
		t.Errorf("after removing the override keep-until = %v, want the default's", got)
	}
	// The trust default cannot be removed.
	resp, body = h.postForm(dpo, "/retention/remove", url.Values{})
	if resp.StatusCode != 400 || !strings.Contains(body, "trust default cannot be removed") {
		t.Errorf("removing the default: %d", resp.StatusCode)
	}
}

// Months outside 1–120 (or not a number) are refused next to the field, on
// the preview and on the confirmation alike, and nothing changes.
func TestRetentionInvalidMonths(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	before := h.retainUntil(id)
	admin := h.client("admin")
	for _, months := range []string{"0", "-3", "500", "twelve", "", "1.5"} {
		for _, path := range []string{"/retention/preview", "/retention"} {
			seq := h.newest(1)[0].Seq
			resp, body := h.postForm(admin, path, url.Values{"op": {"set"}, "months": {months}})
			if resp.StatusCode != 400 {
				t.Errorf("%s months=%q: %d, want 400", path, months, resp.StatusCode)
			}
			for _, want := range []string{`id="months-error"`, `aria-invalid="true"`, `href="#months"`, "There is a problem", "120"} {
				if !strings.Contains(body, want) {
					t.Errorf("%s months=%q: the page lacks %s", path, months, want)
				}
			}
			if months == "500" && !strings.Contains(body, "500 is outside that") {
				t.Errorf("months=500: the message does not say what was wrong")
			}
			if got := h.retainUntil(id); !got.Equal(before) {
				t.Errorf("%s months=%q changed keep-until to %v", path, months, got)
			}
			for _, e := range h.newest(3) {
				if e.Seq > seq && e.Action == "retention.set" && e.Outcome == callvault.OutcomeAllowed {
					t.Errorf("%s months=%q recorded as a change", path, months)
				}
			}
		}
	}
	p, err := h.d.Retention.RetentionPolicy(h.d.Sys)
	if err != nil || len(p) != 1 || p[0].Months != 12 {
		t.Errorf("policy after refused changes: %+v %v", p, err)
	}
	// An academy that is not in the list is refused at its field too.
	resp, body := h.postForm(admin, "/retention/preview", url.Values{"op": {"set"}, "academy": {"nowhere"}, "months": {"12"}})
	if resp.StatusCode != 400 || !strings.Contains(body, `id="academy-error"`) {
		t.Errorf("unknown academy: %d", resp.StatusCode)
	}
}

// Who sees the forms: the CEO and principals read the rules; only admins
// and the DPO change them, and the others' POSTs are refused.
func TestRetentionFormsOnlyForChangers(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	before := h.retainUntil(id)
	for login, forms := range map[string]bool{"admin": true, "dpo": true, "ceo": false, "principal": false} {
		c := h.client(login)
		resp, body := h.page(c, "/retention")
		if resp.StatusCode != 200 {
			t.Errorf("%s: /retention %d", login, resp.StatusCode)
		}
		if got := strings.Contains(body, "/retention/preview"); got != forms {
			t.Errorf("%s sees the change forms: %v, want %v", login, got, forms)
		}
		if !forms {
			for _, path := range []string{"/retention/preview", "/retention", "/retention/categories"} {
				resp, _ := h.postForm(c, path, url.Values{"months": {"1"}, "slug": {"x-" + login}, "name": {"X"}, "extensions": {"2090"}})
				if resp.StatusCode != 403 {
					t.Errorf("%s POST %s: %d, want 403", login, path, resp.StatusCode)
				}
			}
		}
	}
	if got := h.retainUntil(id); !got.Equal(before) {
		t.Errorf("refused changes moved keep-until to %v", got)
	}
	resp, _ := h.page(h.client("listener"), "/retention")
	if resp.StatusCode != 403 {
		t.Errorf("a listener reads the retention page: %d", resp.StatusCode)
	}
	// The navigation offers what each role may open.
	for login, want := range map[string][2]bool{"admin": {true, true}, "principal": {true, true}, "listener": {false, false}} {
		_, body := h.page(h.client(login), "/shared")
		if got := [2]bool{strings.Contains(body, `href="/holds"`), strings.Contains(body, `href="/retention"`)}; got != want {
			t.Errorf("%s's navigation links holds, retention = %v, want %v", login, got, want)
		}
	}
}

// Categories: checked field by field; a category can then carry a rule.
func TestCreateCategory(t *testing.T) {
	h := newHarness(t)
	dpo := h.client("dpo")
	resp, body := h.postForm(dpo, "/retention/categories", url.Values{"slug": {"Safe Guarding"}, "name": {""}, "extensions": {"abc-"}})
	if resp.StatusCode != 400 {
		t.Errorf("bad category: %d", resp.StatusCode)
	}
	for _, want := range []string{`id="slug-error"`, `id="name-error"`, `id="extensions-error"`} {
		if !strings.Contains(body, want) {
			t.Errorf("bad category: the page lacks %s", want)
		}
	}
	resp, _ = h.postForm(dpo, "/retention/categories", url.Values{"slug": {"safeguarding"}, "name": {"Safeguarding line"}, "extensions": {"2050-2059"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("category: %d", resp.StatusCode)
	}
	resp, body = h.postForm(dpo, "/retention/categories", url.Values{"slug": {"safeguarding"}, "name": {"Again"}, "extensions": {"2060"}})
	if resp.StatusCode != 409 || !strings.Contains(body, `id="slug-error"`) {
		t.Errorf("taken slug: %d", resp.StatusCode)
	}
	resp, body = h.page(dpo, "/retention")
	if !strings.Contains(body, "Safeguarding line") || !strings.Contains(body, `<option value="safeguarding"`) {
		t.Errorf("the new category is not offered:\n%.3000s", body)
	}
	resp, body = h.postForm(dpo, "/retention/preview", url.Values{"op": {"set"}, "category": {"safeguarding"}, "months": {"72"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "every academy, Safeguarding line") {
		t.Errorf("preview of a category rule: %d\n%.2000s", resp.StatusCode, body)
	}
}

// Upcoming deletions: per academy and day, held ones counted apart;
// principals see their own academies only.
func TestUpcomingDeletions(t *testing.T) {
	h := newHarness(t)
	// Started a year ago less five days: due in five days.
	started := time.Now().AddDate(-1, 0, 5)
	due := h.storeAt("due", started, "07700 900555")
	h.storeOne("later", "ulaw", time.Second)

	resp, body := h.page(h.client("principal"), "/retention/upcoming")
	day := callvault.RetainUntil(started, 12).In(callvault.London).Format("Mon 2 Jan 2006")
	if resp.StatusCode != 200 || !strings.Contains(body, "1 recording will be deleted; 0 more are due but kept by a legal hold.") || !strings.Contains(body, day) {
		t.Errorf("principal's upcoming page: %d\n%.3000s", resp.StatusCode, body)
	}
	_, body = h.page(h.client("principal2"), "/retention/upcoming")
	if !strings.Contains(body, "0 recordings will be deleted") || strings.Contains(body, day) {
		t.Errorf("principal2 sees Oakfield's deletions:\n%.3000s", body)
	}
	h.hold("principal", "oakfield", due)
	_, body = h.page(h.client("ceo"), "/retention/upcoming")
	if !strings.Contains(body, "0 recordings will be deleted; 1 more is due but kept by a legal hold.") {
		t.Errorf("after a hold, the upcoming page says:\n%.3000s", body)
	}
	var out struct {
		Upcoming []callvault.UpcomingDeletion `json:"upcoming"`
	}
	getJSON(t, h.client("admin"), h.ts.URL+"/api/v1/retention/upcoming", &out)
	if len(out.Upcoming) != 1 || out.Upcoming[0].Academy != "oakfield" || out.Upcoming[0].Held != 1 || out.Upcoming[0].Count != 0 {
		t.Errorf("API upcoming = %+v", out.Upcoming)
	}
	var pol struct {
		Rules      []callvault.RetentionRule `json:"rules"`
		Categories []callvault.Category      `json:"categories"`
	}
	getJSON(t, h.client("principal"), h.ts.URL+"/api/v1/retention", &pol)
	if len(pol.Rules) != 1 || !pol.Rules[0].IsDefault() || pol.Rules[0].Months != 12 || pol.Categories == nil {
		t.Errorf("API policy = %+v", pol)
	}
}
