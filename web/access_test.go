package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRoleMatrix checks every page and API endpoint as every kind of user.
func TestRoleMatrix(t *testing.T) {
	h := newHarness(t)
	oak := h.storeOne("oak", "ulaw", time.Second)
	// A Riverside call: matched by its DDI.
	resp, out := h.ingest(upload{meta: `{"source_ref":"river","started_at":"2026-10-02T10:00:00Z","participants":[{"number":"01632 961005","side":"staff"}]}`, audio: wav(t, "ulaw", time.Second)})
	if resp.StatusCode != 201 || out["academy"] != "riverside" {
		t.Fatalf("riverside ingest: %d %v", resp.StatusCode, out)
	}
	river := out["id"].(string)
	h.grant("listener", time.Hour, oak)

	tests := []struct {
		as, method, path string
		status           int
		body             string // must appear in the response
	}{
		{"", "GET", "/recordings", 303, ""},
		{"", "GET", "/api/v1/recordings", 401, "sign in"},
		{"", "GET", "/api/v1/recordings/" + oak + "/audio", 401, ""},
		{"", "GET", "/login", 200, "Sign in"},
		{"", "GET", "/healthz", 200, "ok"},
		{"", "GET", "/readyz", 200, "ready"},
		{"", "GET", "/metrics", 200, "callvault_ingests_total"},
		{"", "GET", "/api/v1/openapi.json", 200, "source_ref"},
		{"", "GET", "/nowhere", 404, "nothing at this address"},
		{"", "GET", "/api/v1/nowhere", 404, "not_found"},

		{"admin", "GET", "/recordings", 200, "2 recordings found"},
		{"admin", "GET", "/recordings/" + oak, 200, "You cannot play"},
		{"admin", "GET", "/api/v1/recordings/" + oak + "/audio", 403, "may not play"},
		{"admin", "GET", "/academies", 200, "Oakfield"},
		{"admin", "GET", "/academies/oakfield/edit", 200, "2000-2099"},

		{"ceo", "GET", "/api/v1/recordings", 200, river},
		{"ceo", "GET", "/recordings/" + oak, 200, "You cannot play"},
		{"ceo", "GET", "/api/v1/recordings/" + oak + "/audio", 403, "may not play"},
		{"ceo", "GET", "/academies", 403, "only administrators"},

		{"dpo", "GET", "/api/v1/recordings/" + river, 200, river},
		{"dpo", "GET", "/api/v1/recordings/" + oak + "/audio", 403, ""},

		{"principal", "GET", "/recordings", 200, "1 recording found"},
		{"principal", "GET", "/recordings", 200, "Request access to listen to the 1 recording on this page"},
		{"principal", "GET", "/api/v1/recordings/" + oak, 200, oak},
		{"principal", "GET", "/api/v1/recordings/" + river, 404, "not_found"},
		{"principal", "GET", "/recordings/" + river, 404, ""},
		{"principal", "GET", "/api/v1/recordings/" + oak + "/audio", 403, ""},
		{"principal", "GET", "/api/v1/recordings/" + river + "/audio", 404, ""},

		{"listener", "GET", "/recordings", 403, "cannot search"},
		{"listener", "GET", "/api/v1/recordings", 403, "forbidden"},
		{"listener", "GET", "/api/v1/recordings/" + oak, 200, "audio_url"},
		{"listener", "GET", "/recordings/" + oak, 200, "<audio"},
		{"listener", "GET", "/api/v1/recordings/" + oak + "/audio", 403, "not valid for your session"},
		{"listener", "GET", "/api/v1/recordings/" + oak + "/audio?token=cvp_guessed", 403, "not valid for your session"},
		{"listener", "GET", "/api/v1/recordings/" + river, 404, ""},
		{"listener", "GET", "/shared", 200, oak},
		{"listener", "GET", "/recordings/" + oak, 200, "Duration"},
		{"listener2", "GET", "/api/v1/recordings/" + oak, 404, ""},
		{"listener2", "GET", "/api/v1/recordings/" + oak + "/audio", 404, ""},
		{"principal2", "GET", "/api/v1/recordings/" + oak, 404, ""},
		{"fresh", "GET", "/recordings", 303, ""},
		{"fresh", "GET", "/api/v1/recordings", 403, "second factor"},

		{"newbie", "GET", "/recordings", 303, ""},
		{"newbie", "GET", "/api/v1/recordings", 403, "one-time password"},
		{"newbie", "GET", "/password", 200, "one-time password"},
	}
	clients := map[string]*http.Client{}
	for _, tt := range tests {
		c, ok := clients[tt.as]
		if !ok {
			c = h.client(tt.as)
			clients[tt.as] = c
		}
		req, _ := http.NewRequest(tt.method, h.ts.URL+tt.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("%s %s as %q = %d, want %d containing %q; body: %.200s", tt.method, tt.path, tt.as, resp.StatusCode, tt.status, tt.body, body)
		}
	}
}

func TestFirstSignInMustReplacePassword(t *testing.T) {
	h := newHarness(t)
	c := h.client("newbie")
	other := h.client("newbie") // a second browser signed in with the same password
	form := func(cur, nw, again string) int {
		resp, err := c.PostForm(h.ts.URL+"/password", url.Values{"current": {cur}, "new": {nw}, "confirm": {again}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := form("wrong", "a fresh long passphrase", "a fresh long passphrase"); st != 400 {
		t.Errorf("wrong current password: status %d, want 400", st)
	}
	if st := form(h.password, "short", "short"); st != 400 {
		t.Errorf("short password: status %d, want 400", st)
	}
	if st := form(h.password, "a fresh long passphrase", "a different long one"); st != 400 {
		t.Errorf("mismatch: status %d, want 400", st)
	}
	if st := form(h.password, "a fresh long passphrase", "a fresh long passphrase"); st != 303 {
		t.Fatalf("good change: status %d, want 303", st)
	}
	resp, err := c.Get(h.ts.URL + "/recordings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/mfa/enrol" {
		t.Errorf("after the change /recordings = %d to %q, want 303 to the second-factor enrolment", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = other.Get(h.ts.URL + "/api/v1/recordings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("the other browser's session after a password change: %d, want 401 (ended)", resp.StatusCode)
	}
}

func TestSignInFailuresAndLogout(t *testing.T) {
	h := newHarness(t)
	c := h.client("")
	for _, tc := range []url.Values{
		{"login": {"admin"}, "password": {"wrong password!"}},
		{"login": {"nobody"}, "password": {h.password}},
	} {
		resp, err := c.PostForm(h.ts.URL+"/login", tc)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 401 || !strings.Contains(body, "not right") {
			t.Errorf("login %v = %d, want 401 with one message for both cases", tc["login"], resp.StatusCode)
		}
	}
	c = h.client("admin")
	resp, _ := c.PostForm(h.ts.URL+"/logout", nil)
	resp.Body.Close()
	resp, _ = c.Get(h.ts.URL + "/api/v1/recordings")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("after logout the API answered %d, want 401", resp.StatusCode)
	}
}

// Cross-origin form posts are refused (CSRF), same-origin ones are not.
func TestCrossOriginPostRefused(t *testing.T) {
	h := newHarness(t)
	c := h.client("admin")
	req, _ := http.NewRequest("POST", h.ts.URL+"/academies", strings.NewReader("slug=evil&name=Evil"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST = %d, want 403", resp.StatusCode)
	}
	resp, _ = c.Get(h.ts.URL + "/academies")
	if body := readAll(t, resp); strings.Contains(body, "Evil") {
		t.Error("the cross-origin POST created an academy")
	}
}

func TestSearchFilters(t *testing.T) {
	h := newHarness(t)
	mk := func(ref, started, ext string, secs int, number string, dir string) {
		m := `{"source_ref":"` + ref + `","started_at":"` + started + `","direction":"` + dir + `","participants":[{"number":"` + number + `","side":"external"},{"extension":"` + ext + `","side":"staff"}]}`
		resp, out := h.ingest(upload{meta: m, audio: wav(t, "ulaw", time.Duration(secs)*time.Second)})
		if resp.StatusCode != 201 {
			t.Fatalf("ingest %s: %d %v", ref, resp.StatusCode, out)
		}
	}
	mk("a", "2026-09-01T09:00:00Z", "2001", 2, "020 7183 8750", "inbound")
	mk("b", "2026-09-15T09:00:00Z", "2002", 4, "07700 900123", "outbound")
	mk("c", "2026-10-01T09:00:00Z", "2001", 6, "+44 20 7183 8750", "inbound")
	c := h.client("ceo")
	tests := []struct {
		query string
		want  []string // source refs, newest first
	}{
		{"", []string{"c", "b", "a"}},
		{"number=7183+8750", []string{"c", "a"}},
		{"number=%2B442071838750", []string{"c", "a"}},
		{"number=900123", []string{"b"}},
		{"extension=2001", []string{"c", "a"}},
		{"direction=outbound", []string{"b"}},
		{"from=2026-09-10&to=2026-09-30", []string{"b"}},
		{"min_duration=3", []string{"c", "b"}},
		{"max_duration=5", []string{"b", "a"}},
		{"academy=riverside", nil},
		{"source=siprec", nil},
		{"limit=1", []string{"c"}},
	}
	for _, tt := range tests {
		var out struct {
			Recordings []struct {
				SourceRef string `json:"source_ref"`
			} `json:"recordings"`
			Total int `json:"total"`
		}
		getJSON(t, c, h.ts.URL+"/api/v1/recordings?"+tt.query, &out)
		var got []string
		for _, r := range out.Recordings {
			got = append(got, r.SourceRef)
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("search %q = %v, want %v", tt.query, got, tt.want)
		}
	}
	for _, bad := range []string{"from=tomorrow", "number=ab", "direction=up", "limit=0", "limit=500", "min_duration=-1", "academy=nowhere", "after=!!!", "from=2026-10-01&to=2026-09-01"} {
		resp, err := c.Get(h.ts.URL + "/api/v1/recordings?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 400 || !strings.Contains(body, `"invalid"`) {
			t.Errorf("search %q = %d %s, want 400 invalid", bad, resp.StatusCode, body)
		}
	}
	// Paging with the cursor walks everything exactly once.
	var seen []string
	next := ""
	for i := 0; i < 5; i++ {
		var out struct {
			Recordings []struct {
				SourceRef string `json:"source_ref"`
			} `json:"recordings"`
			Next string `json:"next"`
		}
		getJSON(t, c, h.ts.URL+"/api/v1/recordings?limit=2&after="+url.QueryEscape(next), &out)
		for _, r := range out.Recordings {
			seen = append(seen, r.SourceRef)
		}
		if next = out.Next; next == "" {
			break
		}
	}
	if strings.Join(seen, ",") != "c,b,a" {
		t.Errorf("paging saw %v, want c,b,a", seen)
	}
}

// A listener sees only what is needed to play the call: no numbers, names
// or source references.
func TestListenerSeesMinimalMetadata(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("secret-ref", "ulaw", time.Second)
	h.grant("listener", time.Hour, id)
	c := h.client("listener")
	for _, path := range []string{"/recordings/" + id, "/api/v1/recordings/" + id} {
		resp, err := c.Get(h.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		for _, leak := range []string{"+447700900123", "Parent", "secret-ref", "Reception"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s shows a listener %q", path, leak)
			}
		}
	}
}
