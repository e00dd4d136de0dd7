package web_test

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/callvault/callvault"
)

// request is how the route-table test exercises one route.
type request struct {
	as     string // login; "" anonymous; "source" uses the ingest token; "half:login" password only, no second factor yet
	method string
	path   string
	form   url.Values
	json   string
	upload *upload
}

// routeRequests exercises every audited route. Adding a route with an
// action without adding it here fails TestEveryRouteIsAudited.
func routeRequests(h *harness, id string) map[string]request {
	pending := func() string { return strconv.FormatInt(h.request("listener2", id).ID, 10) }
	gid := strconv.FormatInt(h.grant("listener2", time.Hour, id).ID, 10)
	bg := strconv.FormatInt(h.breakGlass("dpo", id).ID, 10)
	h.softPasskey("principal2") // Passkeys: one to sign in with
	// Retention and legal holds: an override to remove, holds to view and release.
	if _, err := h.d.Retention.SetRetentionRule(h.as("dpo"), &callvault.RetentionRule{AcademyID: h.academy["riverside"].ID, Months: 36}); err != nil {
		h.t.Fatal(err)
	}
	holdID := func() string { return strconv.FormatInt(h.hold("dpo", "oakfield", id).ID, 10) }
	review := time.Now().AddDate(0, 0, 60).Format(time.DateOnly)
	return map[string]request{
		"GET /retention":                  {as: "principal", method: "GET", path: "/retention"},
		"POST /retention/preview":         {as: "admin", method: "POST", path: "/retention/preview", form: url.Values{"op": {"set"}, "academy": {"oakfield"}, "months": {"24"}}},
		"POST /retention":                 {as: "dpo", method: "POST", path: "/retention", form: url.Values{"academy": {"oakfield"}, "months": {"24"}}},
		"POST /retention/remove":          {as: "admin", method: "POST", path: "/retention/remove", form: url.Values{"academy": {"riverside"}}},
		"POST /retention/categories":      {as: "admin", method: "POST", path: "/retention/categories", form: url.Values{"slug": {"safeguarding"}, "name": {"Safeguarding line"}, "extensions": {"2050-2059"}}},
		"GET /retention/upcoming":         {as: "principal", method: "GET", path: "/retention/upcoming"},
		"GET /api/v1/retention":           {as: "ceo", method: "GET", path: "/api/v1/retention"},
		"GET /api/v1/retention/upcoming":  {as: "admin", method: "GET", path: "/api/v1/retention/upcoming?days=60"},
		"GET /holds":                      {as: "admin", method: "GET", path: "/holds"},
		"GET /holds/new":                  {as: "principal", method: "GET", path: "/holds/new?recording=" + id},
		"POST /holds":                     {as: "ceo", method: "POST", path: "/holds", form: url.Values{"reason": {"litigation"}, "title": {"a claim about this call"}, "recording": {id}, "review": {review}}},
		"GET /holds/{id}":                 {as: "principal", method: "GET", path: "/holds/" + holdID()},
		"POST /holds/{id}/release":        {as: "dpo", method: "POST", path: "/holds/" + holdID() + "/release", form: url.Values{"note": {"the complaint is closed"}}},
		"POST /holds/{id}/recordings":     {as: "principal", method: "POST", path: "/holds/" + holdID() + "/recordings", form: url.Values{"recordings": {id}}},
		"GET /api/v1/holds":               {as: "admin", method: "GET", path: "/api/v1/holds?active=true"},
		"POST /api/v1/holds":              {as: "dpo", method: "POST", path: "/api/v1/holds", json: `{"reason":"subject_access","title":"SAR from a parent","reference":"SAR-2026-041","filter":{"number":"07700 900123"}}`},
		"GET /api/v1/holds/{id}":          {as: "ceo", method: "GET", path: "/api/v1/holds/" + holdID()},
		"POST /api/v1/holds/{id}/release": {as: "ceo", method: "POST", path: "/api/v1/holds/" + holdID() + "/release", json: `{"note":"the request is answered"}`},

		// Passkeys
		"POST /mfa/passkey/begin":   {as: "half:principal2", method: "POST", path: "/mfa/passkey/begin", form: url.Values{}},
		"POST /mfa/passkey/finish":  {as: "half:principal2", method: "POST", path: "passkey:login"},
		"POST /mfa/passkeys/begin":  {as: "principal2", method: "POST", path: "/mfa/passkeys/begin", form: url.Values{"name": {"Laptop"}}},
		"POST /mfa/passkeys/finish": {as: "principal2", method: "POST", path: "passkey:register"},
		// End Passkeys
		"POST /mfa":                                 {as: "half:listener2", method: "POST", path: "/mfa", form: url.Values{"code": {h.takeRecovery("listener2")}}},
		"POST /mfa/enrol":                           {as: "half:fresh", method: "POST", path: "enrol"},
		"GET /requests/new":                         {as: "dpo", method: "GET", path: "/requests/new?recording=" + id},
		"POST /requests":                            {as: "dpo", method: "POST", path: "/requests", form: url.Values{"recording": {id}, "purpose": {"complaint"}, "justification": {"a parent complained about this call"}, "listeners": {"listener2"}, "duration": {"60"}}},
		"GET /requests":                             {as: "ceo", method: "GET", path: "/requests"},
		"GET /requests/{id}":                        {as: "ceo", method: "GET", path: "/requests/" + pending()},
		"POST /requests/{id}/decision":              {as: "ceo", method: "POST", path: "/requests/" + pending() + "/decision", form: url.Values{"decision": {"approve"}, "note": {"necessary"}}},
		"GET /grants":                               {as: "ceo", method: "GET", path: "/grants"},
		"POST /grants/{id}/revoke":                  {as: "admin", method: "POST", path: "/grants/" + gid + "/revoke", form: url.Values{"reason": {"no longer needed"}}},
		"POST /grants/{id}/ratify":                  {as: "ceo", method: "POST", path: "/grants/" + bg + "/ratify", form: url.Values{"note": {"the emergency was real"}}},
		"GET /shared":                               {as: "listener", method: "GET", path: "/shared"},
		"GET /recordings/{id}/break-glass":          {as: "admin", method: "GET", path: "/recordings/" + id + "/break-glass"},
		"POST /recordings/{id}/break-glass":         {as: "admin", method: "POST", path: "/recordings/" + id + "/break-glass", form: url.Values{"reason": {"a child may be at risk tonight"}}},
		"POST /api/v1/listen-requests":              {as: "dpo", method: "POST", path: "/api/v1/listen-requests", json: `{"recording_ids":["` + id + `"],"purpose":"training","justification":"training need for reception staff","listeners":["listener2"],"minutes":30}`},
		"POST /api/v1/listen-requests/{id}/approve": {as: "ceo", method: "POST", path: "/api/v1/listen-requests/" + pending() + "/approve", json: `{"note":"yes"}`},
		"POST /api/v1/listen-requests/{id}/decline": {as: "ceo", method: "POST", path: "/api/v1/listen-requests/" + pending() + "/decline", json: `{"note":"not necessary"}`},
		"GET /api/v1/grants":                        {as: "listener", method: "GET", path: "/api/v1/grants"},
		"POST /api/v1/grants/{id}/revoke":           {as: "ceo", method: "POST", path: "/api/v1/grants/" + strconv.FormatInt(h.grant("listener2", time.Hour, id).ID, 10) + "/revoke"},
		"POST /login":                               {method: "POST", path: "/login", form: url.Values{"login": {"ceo"}, "password": {h.password}}},
		"POST /logout":                              {as: "dpo", method: "POST", path: "/logout"},
		"POST /password":                            {as: "newbie", method: "POST", path: "/password", form: url.Values{"current": {h.password}, "new": {"a new long passphrase"}, "confirm": {"a new long passphrase"}}},
		"GET /recordings":                           {as: "admin", method: "GET", path: "/recordings?number=900123"},
		"GET /recordings/{id}":                      {as: "admin", method: "GET", path: "/recordings/" + id},
		"POST /api/v1/recordings":                   {as: "source", upload: &upload{meta: meta("route-test", time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC), ""), audio: wav(h.t, "ulaw", time.Second)}},
		"GET /api/v1/recordings":                    {as: "ceo", method: "GET", path: "/api/v1/recordings"},
		"GET /api/v1/recordings/{id}":               {as: "ceo", method: "GET", path: "/api/v1/recordings/" + id},
		"GET /api/v1/recordings/{id}/audio":         {as: "listener", method: "GET", path: "audio:" + id},
		"GET /academies":                            {as: "admin", method: "GET", path: "/academies"},
		"POST /academies":                           {as: "admin", method: "POST", path: "/academies", form: url.Values{"slug": {"hillside"}, "name": {"Hillside"}}},
		"GET /academies/{slug}/edit":                {as: "admin", method: "GET", path: "/academies/oakfield/edit"},
		"POST /academies/{slug}":                    {as: "admin", method: "POST", path: "/academies/oakfield", form: url.Values{"name": {"Oakfield Primary"}, "numbers": {"01632 960000-01632 960099"}}},
		"GET /audit":                                {as: "dpo", method: "GET", path: "/audit"},
		"GET /api/v1/audit":                         {as: "dpo", method: "GET", path: "/api/v1/audit?action=recording."},
		// OpenID Connect: a whole sign-in through the provider (withOIDC) as "head".
		"GET /auth/oidc/callback": {method: "GET", path: "oidc:head", form: url.Values{"login": {"head"}}},
		// End OpenID Connect
	}
}

func (h *harness) do(c *http.Client, rq request) *http.Response {
	h.t.Helper()
	if rq.upload != nil {
		resp, _ := h.ingest(*rq.upload)
		return resp
	}
	if id, ok := strings.CutPrefix(rq.path, "audio:"); ok {
		rq.path = h.audioURL(c, id) // a play token for this session
	}
	if strings.HasPrefix(rq.path, "passkey:") { // Passkeys
		rq = h.passkeyRoute(c, rq)
	}
	// OpenID Connect
	if opUser, ok := strings.CutPrefix(rq.path, "oidc:"); ok {
		resp, _ := h.oidcSignIn(c, opUser)
		return resp
	}
	// End OpenID Connect
	if rq.path == "enrol" {
		rq.path, rq.form = "/mfa/enrol", h.enrolForm(c)
	}
	req, _ := http.NewRequest(rq.method, h.ts.URL+rq.path, nil)
	switch {
	case rq.form != nil:
		req, _ = http.NewRequest(rq.method, h.ts.URL+rq.path, strings.NewReader(rq.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case rq.json != "":
		req, _ = http.NewRequest(rq.method, h.ts.URL+rq.path, strings.NewReader(rq.json))
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// newest returns the most recent audit events (system view).
func (h *harness) newest(n int) []*callvault.AuditEvent {
	h.t.Helper()
	events, err := h.d.Audit.FindAuditEvents(h.d.Sys, callvault.AuditFilter{Limit: n})
	if err != nil {
		h.t.Fatal(err)
	}
	return events
}

// TestEveryRouteIsAudited walks the route table: every route either has an
// audit action, proven here to write an entry with the right actor, or says
// why it needs none.
func TestEveryRouteIsAudited(t *testing.T) {
	h := newHarness(t)
	h.withOIDC() // OpenID Connect: its routes exist only with a provider
	id := h.storeOne("r", "ulaw", time.Second)
	h.grant("listener", time.Hour, id)
	reqs := routeRequests(h, id)
	for _, rt := range h.srv.Routes() {
		if rt.Action == "" {
			if rt.Why == "" {
				t.Errorf("route %s has neither an audit action nor a reason for having none", rt.Pattern)
			}
			continue
		}
		rq, ok := reqs[rt.Pattern]
		if !ok {
			t.Errorf("route %s (%s) is not exercised by TestEveryRouteIsAudited: add it to routeRequests", rt.Pattern, rt.Action)
			continue
		}
		before := h.newest(1)[0].Seq
		var c *http.Client
		wantActor := rq.as
		switch {
		case rq.as == "source":
			wantActor = "pbx"
		case strings.HasPrefix(rq.as, "half:"):
			wantActor = strings.TrimPrefix(rq.as, "half:")
			c = h.halfClient(wantActor)
		case rq.as == "":
			wantActor = rq.form.Get("login")
			c = h.client("")
		default:
			c = h.client(rq.as)
		}
		// Signing in writes its own entry; look only at what this request adds.
		if c != nil {
			before = h.newest(1)[0].Seq
		}
		resp := h.do(c, rq)
		if resp.StatusCode >= 400 {
			t.Errorf("%s: status %d, want success", rt.Pattern, resp.StatusCode)
		}
		events := h.newest(5)
		var found *callvault.AuditEvent
		for _, e := range events {
			if e.Seq > before && e.Action == rt.Action {
				found = e
			}
		}
		if found == nil {
			t.Errorf("%s: no %s audit entry written (newest: %s)", rt.Pattern, rt.Action, events[0].Action)
			continue
		}
		if found.ActorName != wantActor || found.Outcome != callvault.OutcomeAllowed || found.ClientAddr != "127.0.0.1" {
			t.Errorf("%s: entry %+v; want actor %s, allowed, from 127.0.0.1", rt.Pattern, found, wantActor)
		}
	}
}

func TestAuditRecordsDenialsAndDetails(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", 2*time.Second)

	// A listener may not search: denied, and recorded.
	h.do(h.client("listener"), request{method: "GET", path: "/api/v1/recordings?number=900123"})
	e := h.newest(1)[0]
	if e.Action != "recording.search" || e.Outcome != callvault.OutcomeDenied || e.ActorName != "listener" {
		t.Errorf("listener search recorded as %+v; want recording.search denied by listener", e)
	}
	// A wrong password: auth.login_failed, with the login tried and no secret.
	h.do(h.client(""), request{method: "POST", path: "/login", form: url.Values{"login": {"admin"}, "password": {"not the password"}}})
	e = h.newest(1)[0]
	if e.Action != "auth.login_failed" || e.Outcome != callvault.OutcomeDenied || e.Details["login"] != "admin" {
		t.Errorf("failed sign-in recorded as %+v", e)
	}
	for _, ev := range h.newest(50) {
		for k, v := range ev.Details {
			if strings.Contains(v, h.password) || strings.Contains(v, "not the password") || strings.Contains(v, h.token) {
				t.Errorf("audit entry %d detail %s holds a secret", ev.Seq, k)
			}
		}
	}
	// A play records the range and the time it covers.
	h.grant("listener", time.Hour, id)
	c := h.client("listener")
	req, _ := http.NewRequest("GET", h.ts.URL+h.audioURL(c, id), nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", 44+8000*2*2)) // from 1 s in
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e = h.newest(1)[0]
	if e.Action != "recording.play" || e.TargetID != id || e.AcademyID != h.academy["oakfield"].ID ||
		e.Details["range"] != "bytes=32044-" || !strings.HasPrefix(e.Details["seconds"], "1.0-") || e.Details["status"] != "206" {
		t.Errorf("play recorded as %+v", e)
	}
	// The recording page shows who accessed it, to those who may read the trail.
	resp, _ = h.client("dpo").Get(h.ts.URL + "/recordings/" + id)
	body := readAll(t, resp)
	if !strings.Contains(body, "Who has accessed this recording") || !strings.Contains(body, "recording.play") {
		t.Errorf("the DPO's recording page does not list accesses")
	}
	resp, _ = h.client("admin").Get(h.ts.URL + "/recordings/" + id)
	if body := readAll(t, resp); strings.Contains(body, "Who has accessed") {
		t.Errorf("an admin sees the access history; only audit readers should")
	}
	// The audit API: the DPO filters, a principal sees only their academies, an admin nothing.
	var out struct {
		Events []callvault.AuditEvent `json:"events"`
	}
	getJSON(t, h.client("dpo"), h.ts.URL+"/api/v1/audit?action=recording.play&target_type=recording&target_id="+id, &out)
	if len(out.Events) != 1 || out.Events[0].Details["range"] != "bytes=32044-" {
		t.Errorf("DPO audit search for the play found %d events", len(out.Events))
	}
	resp, _ = h.client("admin").Get(h.ts.URL + "/api/v1/audit")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin reading the audit trail: %d, want 403", resp.StatusCode)
	}
	resp, _ = h.client("dpo").Get(h.ts.URL + "/api/v1/audit?limit=0")
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad audit filter: %d, want 400", resp.StatusCode)
	}
}

// If the audit trail cannot be written, nothing happens: no change, no data
// shown, no audio sent — 503 with a clear message instead.
func TestFailClosedWhenAuditCannotBeWritten(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	h.grant("listener", time.Hour, id)
	listener := h.client("listener")
	play := h.audioURL(listener, id)
	admin, ceo := h.client("admin"), h.client("ceo")
	rows0, files0 := h.countStored()

	// Break the trail for real: SQLite refuses every new audit row.
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(h.dir, "callvault.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER audit_full BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name  string
		c     *http.Client
		rq    request
		leaks []string // must not appear in the body
	}{
		{"search", ceo, request{method: "GET", path: "/api/v1/recordings"}, []string{id, "+447700900123"}},
		{"view", ceo, request{method: "GET", path: "/recordings/" + id}, []string{"+447700900123"}},
		{"play", listener, request{method: "GET", path: play}, []string{"RIFF"}},
		{"academy create", admin, request{method: "POST", path: "/academies", form: url.Values{"slug": {"ghost"}, "name": {"Ghost"}}}, nil},
		{"ingest", nil, request{as: "source", upload: &upload{meta: meta("lost", time.Date(2026, 10, 1, 9, 0, 0, 0, time.UTC), ""), audio: wav(t, "ulaw", time.Second)}}, nil},
	}
	for _, tt := range checks {
		var resp *http.Response
		var body string
		if tt.rq.upload != nil {
			var out map[string]any
			resp, out = h.ingest(*tt.rq.upload)
			body = fmt.Sprint(out)
		} else {
			req, _ := http.NewRequest(tt.rq.method, h.ts.URL+tt.rq.path, strings.NewReader(tt.rq.form.Encode()))
			if tt.rq.form != nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			resp, err = tt.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body = readAll(t, resp)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "audit trail cannot be written") {
			t.Errorf("%s with a broken audit trail: %d %.200q; want 503 saying why", tt.name, resp.StatusCode, body)
		}
		for _, leak := range tt.leaks {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the refused response still carries %q", tt.name, leak)
			}
		}
	}
	if rows, files := h.countStored(); rows != rows0 || files != files0 {
		t.Errorf("recordings stored while the trail was broken: rows %d→%d files %d→%d", rows0, rows, files0, files)
	}
	if _, err := h.d.Academies.FindAcademyBySlug(h.d.Sys, "ghost"); callvault.ErrorCode(err) != callvault.ENOTFOUND {
		t.Errorf("an academy was created while the trail was broken: %v", err)
	}
	// Mended, everything works again and the chain is intact.
	if _, err := raw.Exec(`DROP TRIGGER audit_full`); err != nil {
		t.Fatal(err)
	}
	resp, _ := ceo.Get(h.ts.URL + "/api/v1/recordings")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after mending the trail: %d", resp.StatusCode)
	}
}
