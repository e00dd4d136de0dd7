package web_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"

	"github.com/callvault/callvault"
)

// Every state-changing route refuses a cross-site form post, before the
// handler runs (so nothing changes and nothing is audited as done).
func TestCrossSitePostRefusedOnEveryRoute(t *testing.T) {
	h := newHarness(t)
	c := h.client("admin")
	n := 0
	for _, rt := range h.srv.Routes() {
		method, path, ok := strings.Cut(rt.Pattern, " ")
		if !ok || method != "POST" {
			continue
		}
		n++
		path = strings.NewReplacer("{id}", "1", "{slug}", "oakfield").Replace(path)
		before := h.newest(1)
		req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader("name=x&reason=x&note=x&decision=approve"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %s = %d, want 403", path, resp.StatusCode)
		}
		if after := h.newest(1); len(after) > 0 && len(before) > 0 && after[0].Seq != before[0].Seq {
			t.Errorf("cross-site POST %s reached a handler (audit entry %s)", path, after[0].Action)
		}
	}
	if n < 15 {
		t.Errorf("only %d POST routes found", n)
	}
}

// A play token works only for the session it was minted for.
func TestPlayTokenBoundToSession(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	h.grant("listener", time.Hour, id)
	a := h.client("listener")
	u := h.audioURL(a, id)
	status := func(c *http.Client) int {
		resp, err := c.Get(h.ts.URL + u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := status(a); st != 200 {
		t.Fatalf("the minting session: %d, want 200", st)
	}
	if st := status(h.client("listener")); st != 403 {
		t.Errorf("the same listener in another session: %d, want 403", st)
	}
	if st := status(h.client("listener2")); st != 404 {
		t.Errorf("another listener with the URL: %d, want 404 (not even visible)", st)
	}
	if st := status(h.client("ceo")); st != 403 {
		t.Errorf("the CEO with the URL: %d, want 403 (no grant)", st)
	}
	resp, _ := a.PostForm(h.ts.URL+"/logout", nil)
	resp.Body.Close()
	if st := status(a); st != 401 {
		t.Errorf("after sign-out: %d, want 401", st)
	}
}

// A revoked grant stops playback on the next range request.
func TestRevokeStopsPlaybackAtOnce(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	g := h.grant("listener", time.Hour, id)
	c := h.client("listener")
	u := h.audioURL(c, id)
	if _, err := h.d.Grants.RevokeGrant(h.as("admin"), g.ID, "complaint closed"); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(h.ts.URL + u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 || resp.StatusCode == 206 {
		t.Errorf("after revocation the audio still plays: %d", resp.StatusCode)
	}
}

// A session cookie chosen by an attacker before sign-in is not adopted.
func TestSessionFixation(t *testing.T) {
	h := newHarness(t)
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse(h.ts.URL)
	planted := "cvs_attacker-chosen-value"
	jar.SetCookies(base, []*http.Cookie{{Name: "callvault_session", Value: planted, Path: "/"}})
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(h.ts.URL+"/login", url.Values{"login": {"ceo"}, "password": {h.password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var got string
	for _, ck := range jar.Cookies(base) {
		if ck.Name == "callvault_session" {
			got = ck.Value
		}
	}
	if got == "" || got == planted {
		t.Fatalf("after sign-in the session cookie is %q; want a fresh one", got)
	}
	fix := &http.Client{}
	req, _ := http.NewRequest("GET", h.ts.URL+"/api/v1/recordings", nil)
	req.AddCookie(&http.Cookie{Name: "callvault_session", Value: planted})
	resp, _ = fix.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("the planted cookie: %d, want 401", resp.StatusCode)
	}
}

// Ten failures per account (and per address) in five minutes, then even the
// right password is refused, with the same answer.
func TestLoginThrottled(t *testing.T) {
	h := newHarness(t)
	c := h.client("")
	post := func(login, pw string) int {
		resp, err := c.PostForm(h.ts.URL+"/login", url.Values{"login": {login}, "password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 10 {
		if st := post("ceo", "wrong password number "+string(rune('a'+i))); st != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, st)
		}
	}
	if st := post("ceo", h.password); st != http.StatusTooManyRequests {
		t.Errorf("the right password after 10 failures: %d, want 429", st)
	}
	if st := post("dpo", h.password); st != http.StatusTooManyRequests {
		t.Errorf("another account from the same address: %d, want 429 (per-address limit)", st)
	}
	e := h.newest(1)[0]
	if e.Action != "auth.login_failed" || e.Reason != "throttled" {
		t.Errorf("throttled sign-in recorded as %+v", e)
	}
	h.srv.Throttle.Now = func() time.Time { return time.Now().Add(5*time.Minute + time.Second) }
	if st := post("ceo", h.password); st != http.StatusSeeOther {
		t.Errorf("five minutes later: %d, want 303", st)
	}
}

// Unknown and known logins take about as long (argon2 runs either way), so
// timing does not reveal which accounts exist. Generous bounds: this guards
// against a missing dummy hash (a ~50× difference), not against jitter.
func TestLoginTimingDoesNotRevealAccounts(t *testing.T) {
	h := newHarness(t)
	c := h.client("")
	median := func(login string) time.Duration {
		var ds []time.Duration
		for range 4 {
			start := time.Now()
			resp, err := c.PostForm(h.ts.URL+"/login", url.Values{"login": {login}, "password": {"not the password at all"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return (ds[1] + ds[2]) / 2
	}
	known, unknown := median("ceo"), median("nobody-here")
	if r := float64(unknown) / float64(known); r < 0.33 || r > 3 {
		t.Errorf("sign-in takes %v for an unknown login and %v for a known one (ratio %.2f)", unknown, known, r)
	}
}

// A TOTP code works once: replaying it, even in another session, fails.
func TestTOTPReplayRefused(t *testing.T) {
	h := newHarness(t)
	code, err := pqtotp.GenerateCode(h.totpKey["ceo"], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	try := func() int {
		c := h.halfClient("ceo")
		resp, err := c.PostForm(h.ts.URL+"/mfa", url.Values{"code": {code}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := try(); st != http.StatusSeeOther {
		t.Fatalf("first use of the code: %d, want 303", st)
	}
	if st := try(); st != http.StatusUnauthorized {
		t.Errorf("replayed code: %d, want 401", st)
	}
	e := h.newest(1)[0]
	if e.Action != "auth.mfa_failed" || e.Outcome != callvault.OutcomeDenied {
		t.Errorf("replay recorded as %+v", e)
	}
	// A recovery code also works once.
	rc := h.takeRecovery("dpo")
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		c := h.halfClient("dpo")
		resp, _ := c.PostForm(h.ts.URL+"/mfa", url.Values{"code": {rc}})
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("recovery code use %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

// Enrolment refuses a secret sealed for someone else, and a wrong code.
func TestMFAEnrolmentChecks(t *testing.T) {
	h := newHarness(t)
	c := h.halfClient("fresh")
	form := h.enrolForm(c)
	form.Set("code", "000000")
	resp, _ := c.PostForm(h.ts.URL+"/mfa/enrol", form)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("enrolment with a wrong code: %d, want 400", resp.StatusCode)
	}
	form.Set("sealed", "AAAA"+form.Get("sealed")[4:])
	resp, _ = c.PostForm(h.ts.URL+"/mfa/enrol", form)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("enrolment with an altered secret: %d, want 400", resp.StatusCode)
	}
	resp, _ = c.PostForm(h.ts.URL+"/mfa/enrol", h.enrolForm(c))
	body := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "recovery-codes") {
		t.Fatalf("enrolment: %d", resp.StatusCode)
	}
	resp, _ = c.Get(h.ts.URL + "/shared")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after enrolling, /shared = %d, want 200", resp.StatusCode)
	}
}
