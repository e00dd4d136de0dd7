package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

var holdLocation = regexp.MustCompile(`^/holds/(\d+)$`)

// createdHold reads the hold a successful form post redirected to.
func (h *harness) createdHold(resp *http.Response) *callvault.Hold {
	h.t.Helper()
	m := holdLocation.FindStringSubmatch(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || m == nil {
		h.t.Fatalf("placing a hold: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	hd, err := h.d.Holds.FindHoldByID(h.d.Sys, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return hd
}

// allHolds is every hold, as the system sees them.
func (h *harness) allHolds() []*callvault.Hold {
	h.t.Helper()
	hs, err := h.d.Holds.FindHolds(h.d.Sys, callvault.HoldListFilter{})
	if err != nil {
		h.t.Fatal(err)
	}
	return hs
}

func reviewIn(days int) string { return time.Now().AddDate(0, 0, days).Format(time.DateOnly) }

// From a recording's page: the link pre-fills the form with the recording,
// the hold keeps it, and the recording's page then names the hold.
func TestHoldFromRecordingPage(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	c := h.client("principal")
	_, body := h.page(c, "/recordings/"+id)
	link := `href="/holds/new?recording=` + id + `"`
	if !strings.Contains(body, link) || !strings.Contains(body, "No active legal hold that you can see keeps this recording.") || !strings.Contains(body, `id="keep-until"`) {
		t.Fatalf("the recording page offers no hold:\n%.4000s", body)
	}
	resp, body := h.page(c, "/holds/new?recording="+id)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="recording" value="`+id+`"`) || !strings.Contains(body, `<option value="oakfield" selected>`) ||
		!strings.Contains(body, `value="`+time.Now().Add(callvault.DefaultHoldReview).In(callvault.London).Format(time.DateOnly)+`"`) {
		t.Fatalf("hold form: %d\n%.4000s", resp.StatusCode, body)
	}
	// A missing title is shown at its field; nothing is stored.
	form := url.Values{"reason": {callvault.HoldComplaint}, "title": {""}, "academy": {"oakfield"}, "review": {reviewIn(90)}, "recording": {id}}
	resp, body = h.postForm(c, "/holds", form)
	if resp.StatusCode != 400 || !strings.Contains(body, `id="title-error"`) || !strings.Contains(body, `name="recording" value="`+id+`"`) || len(h.allHolds()) != 0 {
		t.Fatalf("hold without a title: %d, %d holds", resp.StatusCode, len(h.allHolds()))
	}
	form.Set("title", "A parent's complaint about this call")
	form.Set("reference", "C-2026-17")
	resp, _ = h.postForm(c, "/holds", form)
	hd := h.createdHold(resp)
	if hd.Recordings != 1 || hd.Filter != nil || hd.Academy != "oakfield" || hd.Owner != "principal" || hd.Reference != "C-2026-17" {
		t.Errorf("hold = %+v", hd)
	}
	e := h.newest(1)[0]
	if e.Action != "hold.create" || e.ActorName != "principal" || e.Outcome != callvault.OutcomeAllowed || e.TargetID != strconv.FormatInt(hd.ID, 10) ||
		e.Details["recording_ids"] != id || e.AcademyID != h.academy["oakfield"].ID {
		t.Errorf("hold.create audited as %+v", e)
	}
	_, body = h.page(c, "/holds/"+strconv.FormatInt(hd.ID, 10))
	for _, want := range []string{"This hold keeps 1 recording.", `href="/recordings/` + id + `"`, "Complaint", "C-2026-17", `action="/holds/` + strconv.FormatInt(hd.ID, 10) + `/release"`} {
		if !strings.Contains(body, want) {
			t.Errorf("hold page lacks %q", want)
		}
	}
	_, body = h.page(h.client("dpo"), "/recordings/"+id)
	if !strings.Contains(body, `href="/holds/`+strconv.FormatInt(hd.ID, 10)+`"`) || !strings.Contains(body, "and longer while a legal hold keeps it") {
		t.Errorf("the recording page does not name its hold:\n%.4000s", body)
	}
	// Admins see why it is kept but may not place holds; listeners see none of it.
	_, body = h.page(h.client("admin"), "/recordings/"+id)
	if !strings.Contains(body, `href="/holds/`+strconv.FormatInt(hd.ID, 10)+`"`) || strings.Contains(body, link) {
		t.Errorf("admin's recording page: holds shown / hold offered wrongly")
	}
	h.grant("listener", time.Hour, id)
	_, body = h.page(h.client("listener"), "/recordings/"+id)
	if strings.Contains(body, "Keep until") || strings.Contains(body, "/holds") {
		t.Errorf("a listener sees retention or holds")
	}
	// The list shows it, active.
	_, body = h.page(c, "/holds")
	if !strings.Contains(body, "1 active hold.") || !strings.Contains(body, "A parent&#39;s complaint about this call") {
		t.Errorf("holds list:\n%.3000s", body)
	}
	// More recordings can be added to it.
	other := h.storeAt("second", time.Date(2026, 10, 2, 9, 0, 0, 0, time.UTC), "07700 900777")
	resp, body = h.postForm(c, "/holds/"+strconv.FormatInt(hd.ID, 10)+"/recordings", url.Values{"recordings": {""}})
	if resp.StatusCode != 400 || !strings.Contains(body, `id="recordings-error"`) {
		t.Errorf("adding nothing: %d", resp.StatusCode)
	}
	resp, _ = h.postForm(c, "/holds/"+strconv.FormatInt(hd.ID, 10)+"/recordings", url.Values{"recordings": {other + "\n" + id}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("adding a recording: %d", resp.StatusCode)
	}
	if got, _ := h.d.Holds.FindHoldByID(h.d.Sys, hd.ID); got.Recordings != 2 {
		t.Errorf("after adding, the hold keeps %d recordings", got.Recordings)
	}
}

// From search results: the saved search is pre-filled from the filters,
// holds every matching call, and catches calls that arrive later.
func TestSavedSearchHold(t *testing.T) {
	h := newHarness(t)
	a := h.storeAt("a1", time.Date(2026, 9, 1, 9, 0, 0, 0, time.UTC), "07700 900321")
	b := h.storeAt("a2", time.Date(2026, 9, 2, 9, 0, 0, 0, time.UTC), "07700 900321")
	h.storeAt("other", time.Date(2026, 9, 3, 9, 0, 0, 0, time.UTC), "07700 900999")
	c := h.client("ceo")
	_, body := h.page(c, "/recordings?number=900321")
	want := `href="/holds/new?number=900321"`
	if !strings.Contains(body, want) || !strings.Contains(body, "Hold every call matching this search") {
		t.Fatalf("search results offer no saved-search hold:\n%.4000s", body)
	}
	_, body = h.page(c, "/holds/new?number=900321")
	if !strings.Contains(body, `id="number" name="number" inputmode="tel" value="900321"`) || strings.Contains(body, `name="recording"`) {
		t.Fatalf("the form is not pre-filled with the search:\n%.4000s", body)
	}
	// Neither a number nor an extension: refused, so a hold never covers every call.
	form := url.Values{"reason": {callvault.HoldSubjectAccess}, "title": {"SAR from a parent"}, "review": {reviewIn(90)}}
	resp, body := h.postForm(c, "/holds", form)
	if resp.StatusCode != 400 || !strings.Contains(body, `id="number-error"`) || len(h.allHolds()) != 0 {
		t.Errorf("saved search without a number: %d", resp.StatusCode)
	}
	form.Set("number", "12")
	resp, body = h.postForm(c, "/holds", form)
	if resp.StatusCode != 400 || !strings.Contains(body, "at least its last 3 digits") {
		t.Errorf("saved search with 2 digits: %d", resp.StatusCode)
	}
	form.Set("number", "900321")
	resp, _ = h.postForm(c, "/holds", form)
	hd := h.createdHold(resp)
	if hd.Recordings != 2 || hd.Filter == nil || hd.Filter.Number != "900321" || hd.AcademyID != 0 {
		t.Fatalf("saved-search hold = %+v (filter %+v)", hd, hd.Filter)
	}
	ids, err := h.d.Holds.HeldRecordingIDs(h.d.Sys, hd.ID, "", 10)
	if err != nil || len(ids) != 2 || !(ids[0] == a && ids[1] == b) {
		t.Errorf("held ids = %v, %v; want %s %s", ids, err, a, b)
	}
	later := h.storeAt("a3", time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), "+44 7700 900321")
	ids, _ = h.d.Holds.HeldRecordingIDs(h.d.Sys, hd.ID, "", 10)
	if len(ids) != 3 || ids[2] != later {
		t.Errorf("a matching call that arrived later is not held: %v", ids)
	}
	_, body = h.page(c, "/holds/"+strconv.FormatInt(hd.ID, 10))
	if !strings.Contains(body, "This hold keeps 3 recordings.") || !strings.Contains(body, "No end: later calls are held as they arrive") {
		t.Errorf("saved-search hold page:\n%.4000s", body)
	}
}

// Releasing needs a note; without one nothing changes.
func TestReleaseHold(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	hd := h.hold("dpo", "oakfield", id)
	path := "/holds/" + strconv.FormatInt(hd.ID, 10) + "/release"
	active := func() bool {
		got, err := h.d.Holds.FindHoldByID(h.d.Sys, hd.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Active()
	}
	resp, _ := h.postForm(h.client("admin"), path, url.Values{"note": {"not needed"}})
	if resp.StatusCode != 403 || !active() {
		t.Errorf("admin releasing: %d", resp.StatusCode)
	}
	resp, _ = h.postForm(h.client("principal2"), path, url.Values{"note": {"not needed"}})
	if resp.StatusCode != 404 || !active() {
		t.Errorf("principal of another academy releasing: %d", resp.StatusCode)
	}
	c := h.client("principal")
	for _, note := range []string{"", "   "} {
		resp, body := h.postForm(c, path, url.Values{"note": {note}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="note-error"`) || !strings.Contains(body, "Say why the hold is no longer needed") || !active() {
			t.Errorf("release with note %q: %d, active %v", note, resp.StatusCode, active())
		}
	}
	resp, _ = h.postForm(c, path, url.Values{"note": {"The complaint was resolved on 20 November."}})
	if resp.StatusCode != http.StatusSeeOther || active() {
		t.Fatalf("release with a note: %d, active %v", resp.StatusCode, active())
	}
	got, _ := h.d.Holds.FindHoldByID(h.d.Sys, hd.ID)
	if got.ReleaseNote != "The complaint was resolved on 20 November." || got.ReleasedBy != "principal" {
		t.Errorf("released hold = %+v", got)
	}
	e := h.newest(1)[0]
	if e.Action != "hold.release" || e.Outcome != callvault.OutcomeAllowed || e.Reason != "The complaint was resolved on 20 November." {
		t.Errorf("release audited as %+v", e)
	}
	resp, body := h.page(c, "/holds/"+strconv.FormatInt(hd.ID, 10))
	if !strings.Contains(body, "Released") || strings.Contains(body, `action="`+path+`"`) {
		t.Errorf("released hold page still offers release")
	}
	resp, _ = h.postForm(c, path, url.Values{"note": {"again"}})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("releasing twice: %d, want 409", resp.StatusCode)
	}
	// A hold past its review date says so in words.
	old := h.hold("dpo", "oakfield", id)
	h.srv.Now = func() time.Time { return time.Now().Add(callvault.DefaultHoldReview + time.Hour) }
	defer func() { h.srv.Now = time.Now }()
	_, body = h.page(c, "/holds")
	if !strings.Contains(body, "Review due") || !strings.Contains(body, "past its review date") {
		t.Errorf("a hold past review is not marked in words:\n%.3000s", body)
	}
	_, body = h.page(c, "/holds/"+strconv.FormatInt(old.ID, 10))
	if !strings.Contains(body, "Review due:") {
		t.Errorf("the hold page does not say the review is due")
	}
}

// A principal may hold only their own academy's calls: another academy's
// recording is refused with 403 whatever the form says, and nothing is
// stored — by page or API.
func TestPrincipalCannotHoldAnotherAcademy(t *testing.T) {
	h := newHarness(t)
	oak := h.storeOne("oak", "ulaw", time.Second)
	c := h.client("principal2")
	for _, academy := range []string{"riverside", "oakfield", ""} {
		resp, _ := h.postForm(c, "/holds", url.Values{"reason": {"other"}, "title": {"probe"}, "academy": {academy}, "recording": {oak}, "review": {reviewIn(30)}})
		if resp.StatusCode != 403 {
			t.Errorf("principal2 holding an Oakfield call (academy %q): %d, want 403", academy, resp.StatusCode)
		}
	}
	// A recording that does not exist looks the same: no probing.
	resp, _ := h.postForm(c, "/holds", url.Values{"reason": {"other"}, "title": {"probe"}, "academy": {"riverside"}, "recording": {"00000000-0000-7000-8000-000000000000"}, "review": {reviewIn(30)}})
	if resp.StatusCode != 403 {
		t.Errorf("principal2 holding a recording that does not exist: %d, want 403", resp.StatusCode)
	}
	resp, _ = h.page(c, "/holds/new?recording="+oak)
	if resp.StatusCode != 404 {
		t.Errorf("principal2 opening the form for an Oakfield call: %d, want 404", resp.StatusCode)
	}
	st, body := h.post(c, "/api/v1/holds", jsonType, `{"reason":"other","title":"probe","academy":"riverside","recording_ids":["`+oak+`"]}`)
	if st != 403 {
		t.Errorf("API: principal2 holding an Oakfield call: %d %s", st, body)
	}
	// A saved search may not reach into another academy either.
	resp, body2 := h.postForm(c, "/holds", url.Values{"reason": {"other"}, "title": {"probe"}, "academy": {"oakfield"}, "number": {"900123"}, "review": {reviewIn(30)}})
	if resp.StatusCode != 400 || !strings.Contains(body2, `id="academy-error"`) {
		t.Errorf("principal2 saved search for Oakfield: %d", resp.StatusCode)
	}
	if n := len(h.allHolds()); n != 0 {
		t.Errorf("%d holds were created", n)
	}
	e := h.newest(1)[0]
	if e.Action != "hold.create" || e.ActorName != "principal2" {
		t.Errorf("the refusal is not in the trail: %+v", e)
	}
	// Their own academy's calls, by saved search: allowed, and scoped to it.
	resp, _ = h.postForm(c, "/holds", url.Values{"reason": {"other"}, "title": {"riverside calls"}, "academy": {"riverside"}, "number": {"900123"}, "review": {reviewIn(30)}})
	hd := h.createdHold(resp)
	if hd.AcademyID != h.academy["riverside"].ID || hd.Recordings != 0 || hd.Filter.AcademyID != hd.AcademyID {
		t.Errorf("principal2's saved-search hold = %+v (filter %+v); want Riverside only, nothing of Oakfield", hd, hd.Filter)
	}
}

// Cross-site form posts are refused before any handler: no hold placed,
// released or grown, no rule changed.
func TestHoldAndRetentionRefuseCrossSite(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	hd := h.hold("dpo", "oakfield", id)
	before := h.retainUntil(id)
	c := h.client("dpo")
	hid := strconv.FormatInt(hd.ID, 10)
	for path, form := range map[string]url.Values{
		"/holds":                     {"reason": {"other"}, "title": {"x"}, "recording": {id}, "review": {reviewIn(30)}},
		"/holds/" + hid + "/release": {"note": {"forged"}},
		"/retention":                 {"academy": {"oakfield"}, "months": {"1"}},
		"/retention/remove":          {"academy": {"oakfield"}},
		"/retention/categories":      {"slug": {"forged"}, "name": {"Forged"}, "extensions": {"2080"}},
	} {
		seq := h.newest(1)[0].Seq
		req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("cross-site POST %s: %d, want 403", path, resp.StatusCode)
		}
		if e := h.newest(1)[0]; e.Seq != seq {
			t.Errorf("cross-site POST %s reached a handler (%s)", path, e.Action)
		}
	}
	// The same over the JSON API with a session cookie.
	req, _ := http.NewRequest("POST", h.ts.URL+"/api/v1/holds/"+hid+"/release", strings.NewReader(`{"note":"forged"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, _ := c.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("cross-site API release: %d", resp.StatusCode)
	}
	if hs := h.allHolds(); len(hs) != 1 || !hs[0].Active() || hs[0].Recordings != 1 {
		t.Errorf("holds after forged posts: %+v", hs)
	}
	if got := h.retainUntil(id); !got.Equal(before) {
		t.Errorf("a forged post moved keep-until to %v", got)
	}
	if cats, _ := h.d.Retention.FindCategories(h.d.Sys); len(cats) != 0 {
		t.Errorf("a forged post created a category")
	}
}

// The JSON API: session or personal token; read tokens only read.
func TestHoldsAPI(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	mk := func(login, scope string) string {
		tok := secret.Token("cvt_")
		at := &callvault.APIToken{UserID: h.userID[login], Name: "script", TokenHash: secret.HashToken(tok), Scopes: []string{scope}, ExpiresAt: time.Now().Add(time.Hour)}
		if err := h.d.Tokens.CreateToken(h.d.Sys, at); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	read, write := mk("dpo", callvault.ScopeRead), mk("dpo", callvault.ScopeWrite)
	call := func(tok, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, h.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	create := `{"reason":"subject_access","title":"SAR from a parent","reference":"SAR-7","academy":"oakfield","recording_ids":["` + id + `"],"filter":{"number":"07700 900123","direction":"inbound"}}`
	if st, body := call(read, "POST", "/api/v1/holds", create); st != 403 || !strings.Contains(body, "may only read") {
		t.Errorf("read token creating a hold: %d %s", st, body)
	}
	st, body := call(write, "POST", "/api/v1/holds", create)
	var hd callvault.Hold
	if err := json.Unmarshal([]byte(body), &hd); st != 201 || err != nil || hd.ID == 0 || hd.Recordings != 1 || hd.Filter == nil || hd.Filter.Direction != "inbound" {
		t.Fatalf("write token creating a hold: %d %s", st, body)
	}
	hid := strconv.FormatInt(hd.ID, 10)
	if st, body := call(write, "POST", "/api/v1/holds", `{"reason":"nonsense","title":"x","recording_ids":["`+id+`"]}`); st != 400 || !strings.Contains(body, "reason") {
		t.Errorf("bad reason: %d %s", st, body)
	}
	if st, body := call(write, "POST", "/api/v1/holds", `{"reason":"other","title":"x"}`); st != 400 {
		t.Errorf("no recordings and no filter: %d %s", st, body)
	}
	if st, body := call(read, "GET", "/api/v1/holds?active=true&recording="+id, ""); st != 200 || !strings.Contains(body, `"SAR-7"`) {
		t.Errorf("list: %d %s", st, body)
	}
	st, body = call(read, "GET", "/api/v1/holds/"+hid, "")
	var one struct {
		ID           int64    `json:"id"`
		RecordingIDs []string `json:"recording_ids"`
	}
	if err := json.Unmarshal([]byte(body), &one); st != 200 || err != nil || one.ID != hd.ID || len(one.RecordingIDs) != 1 || one.RecordingIDs[0] != id {
		t.Errorf("one hold: %d %s", st, body)
	}
	if st, _ := call(write, "POST", "/api/v1/holds/"+hid+"/release", `{"note":""}`); st != 400 {
		t.Errorf("release without a note: %d", st)
	}
	if got, _ := h.d.Holds.FindHoldByID(h.d.Sys, hd.ID); !got.Active() {
		t.Fatal("released without a note")
	}
	if st, body := call(write, "POST", "/api/v1/holds/"+hid+"/release", `{"note":"answered"}`); st != 200 || !strings.Contains(body, `"release_note": "answered"`) {
		t.Errorf("release: %d %s", st, body)
	}
	if st, _ := call(read, "GET", "/api/v1/holds/999999", ""); st != 404 {
		t.Errorf("unknown hold: %d", st)
	}
	// A session works too; an admin may read holds but not place them.
	admin := h.client("admin")
	var list struct {
		Holds []callvault.Hold `json:"holds"`
	}
	getJSON(t, admin, h.ts.URL+"/api/v1/holds", &list)
	if len(list.Holds) != 1 || list.Holds[0].Active() {
		t.Errorf("admin's hold list = %+v", list.Holds)
	}
	if st, _ := h.post(admin, "/api/v1/holds", jsonType, create); st != 403 {
		t.Errorf("admin placing a hold: %d", st)
	}
}

// Every hold and retention API route is described in openapi.json, with
// its method.
func TestOpenAPIDescribesHoldsAndRetention(t *testing.T) {
	h := newHarness(t)
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	n := 0
	for _, rt := range h.srv.Routes() {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		rest, ok := strings.CutPrefix(path, "/api/v1")
		if !ok || !(strings.HasPrefix(rest, "/holds") || strings.HasPrefix(rest, "/retention")) {
			continue
		}
		n++
		if _, ok := doc.Paths[rest][strings.ToLower(method)]; !ok {
			t.Errorf("%s is not described in web/openapi.json", rt.Pattern)
		}
	}
	if n < 6 {
		t.Errorf("only %d hold and retention API routes", n)
	}
}
