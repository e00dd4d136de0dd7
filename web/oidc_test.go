package web_test

// OpenID Connect: sign-in with a real OpenID provider (the zitadel example
// OP, in-process on 127.0.0.1), driven by a cookie-jar client through its
// login form, as a browser would be.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/oidc"
)

const (
	opClientID     = "callvault"
	opClientSecret = "op client secret 7f3a"
	opPassword     = "verysecure"
)

// opUsers is the provider's directory, by username.
type opUsers map[string]*storage.User

func (u opUsers) GetUserByID(id string) *storage.User {
	for _, x := range u {
		if x.ID == id {
			return x
		}
	}
	return nil
}
func (u opUsers) GetUserByUsername(name string) *storage.User { return u[name] }
func (u opUsers) ExampleClientID() string                     { return storage.ServiceUserID }

// amrStorage lets a test say which authentication methods the provider
// reports (the example storage always says "pwd").
type amrStorage struct {
	*storage.Storage
	mu  sync.Mutex
	amr []string
}

type amrRequest struct {
	op.AuthRequest
	amr []string
}

func (r amrRequest) GetAMR() []string { return r.amr }

func (s *amrStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.Storage.AuthRequestByCode(ctx, code)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || s.amr == nil {
		return r, err
	}
	return amrRequest{r, s.amr}, nil
}

func (s *amrStorage) setAMR(amr ...string) {
	s.mu.Lock()
	s.amr = amr
	s.mu.Unlock()
}

// testOP is a running provider.
type testOP struct {
	url     string
	storage *amrStorage
}

// startOP runs the example OP with callvault registered as a web client
// whose only redirect URI is redirect.
func startOP(t testing.TB, redirect string, users opUsers) *testOP {
	t.Helper()
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	clients := map[string]*storage.Client{opClientID: storage.WebClient(opClientID, opClientSecret, redirect)}
	st := &amrStorage{Storage: storage.NewStorageWithClients(users, clients)}
	// The example sets the process's default logger to the one given: keep it quiet.
	handler = exampleop.SetupServer(ts.URL, st, cvtest.Quiet, false)
	return &testOP{url: ts.URL, storage: st}
}

// withOIDC configures the harness's server for sign-in with a fresh OP and
// adds the accounts the OIDC tests use. Its provider knows:
// head (account "head"), stranger (no account), unverified (e-mail of
// "head" but not verified), leaver (a disabled account), twin (two enabled
// accounts share the e-mail).
func (h *harness) withOIDC() *testOP {
	h.t.Helper()
	mk := func(id, email string, verified bool) *storage.User {
		return &storage.User{ID: id, Username: id, Password: opPassword, FirstName: id, LastName: "Test", Email: email, EmailVerified: verified}
	}
	o := startOP(h.t, h.ts.URL+"/auth/oidc/callback", opUsers{
		"head":       mk("head", "Head.Teacher@Oakfield.example.org", true),
		"stranger":   mk("stranger", "stranger@example.org", true),
		"unverified": mk("unverified", "head.teacher@oakfield.example.org", false),
		"leaver":     mk("leaver", "leaver@oakfield.example.org", true),
		"twin":       mk("twin", "office@oakfield.example.org", true),
		"dpo":        mk("dpo", "dpo@trust.example.org", true),
	})
	p, err := oidc.New(context.Background(), oidc.Config{Issuer: o.url, ClientID: opClientID, ClientSecret: opClientSecret,
		RedirectURL: h.ts.URL + "/auth/oidc/callback"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.srv.OIDC, h.srv.OIDCName = p, "Trust <Google>"
	if err := h.srv.Init(); err != nil {
		h.t.Fatal(err)
	}
	for _, u := range []*callvault.User{
		{Login: "head", Email: "head.teacher@oakfield.example.org", Role: callvault.RolePrincipal, AcademyIDs: []int64{h.academy["oakfield"].ID}},
		{Login: "leaver", Email: "leaver@oakfield.example.org", Role: callvault.RoleListener},
		{Login: "office1", Email: "office@oakfield.example.org", Role: callvault.RoleListener},
		{Login: "office2", Email: "Office@Oakfield.example.org", Role: callvault.RoleListener},
	} {
		if err := h.d.Users.CreateUser(h.d.Sys, u); err != nil {
			h.t.Fatal(err)
		}
		h.userID[u.Login] = u.ID
		if u.Login == "leaver" {
			if err := h.d.Users.DisableUser(h.d.Sys, u.ID); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	return o
}

// oidcCallbackURL drives c from /auth/oidc/start through the provider's
// login form as opUser and returns the callback URL the provider sends the
// browser to (not yet visited).
func (h *harness) oidcCallbackURL(c *http.Client, opUser string) string {
	h.t.Helper()
	get := func(u string) *http.Response {
		h.t.Helper()
		resp, err := c.Get(u)
		if err != nil {
			h.t.Fatal(err)
		}
		return resp
	}
	resp := get(h.ts.URL + "/auth/oidc/start?next=" + url.QueryEscape("/recordings?number=1"))
	form := ""
	for i := 0; ; i++ {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `name="username"`) {
			form = string(body)
			break
		}
		if loc == "" || i > 10 {
			h.t.Fatalf("no login form from the provider: %d %s %s", resp.StatusCode, loc, body)
		}
		resp = get(resp.Request.URL.ResolveReference(mustParse(h.t, loc)).String())
	}
	loginURL := resp.Request.URL
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(form)
	if id == nil {
		h.t.Fatalf("no auth request id in the provider's form: %s", form)
	}
	resp, err := c.PostForm(loginURL.ResolveReference(&url.URL{Path: "/login/username"}).String(),
		url.Values{"id": {id[1]}, "username": {opUser}, "password": {opPassword}})
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; ; i++ {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" || i > 10 {
			h.t.Fatalf("the provider did not send the browser back: %d %q", resp.StatusCode, loc)
		}
		next := resp.Request.URL.ResolveReference(mustParse(h.t, loc)).String()
		if strings.HasPrefix(next, h.ts.URL+"/auth/oidc/callback?") {
			return next
		}
		resp = get(next)
	}
}

func mustParse(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// oidcSignIn signs c in through the provider as opUser and returns the
// callback's response (body read and closed).
func (h *harness) oidcSignIn(c *http.Client, opUser string) (*http.Response, string) {
	h.t.Helper()
	return h.get(c, h.oidcCallbackURL(c, opUser))
}

func (h *harness) get(c *http.Client, u string) (*http.Response, string) {
	h.t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		h.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// lastAuth is the newest auth.login or auth.login_failed entry.
func (h *harness) lastAuth() *callvault.AuditEvent {
	h.t.Helper()
	for _, e := range h.newest(20) {
		if e.Action == "auth.login" || e.Action == "auth.login_failed" {
			return e
		}
	}
	h.t.Fatal("no sign-in audit entry")
	return nil
}

const genericLoginError = "The login name or password is not right, or the account is disabled."

func TestOIDCSignIn(t *testing.T) {
	h := newHarness(t)
	h.withOIDC()

	// The sign-in page offers the provider, its name escaped.
	_, body := h.get(h.client(""), h.ts.URL+"/login?next=/grants")
	if !strings.Contains(body, `href="/auth/oidc/start?next=%2fgrants"`) || !strings.Contains(body, "Sign in with Trust &lt;Google&gt;") {
		t.Errorf("sign-in page has no (escaped) provider link:\n%s", body)
	}

	// An account whose e-mail the provider verifies (in another case) signs
	// in, then passes callvault's second factor as after a password.
	c := h.client("")
	resp, _ := h.oidcSignIn(c, "head")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/mfa/enrol?next="+url.QueryEscape("/recordings?number=1") {
		t.Fatalf("callback: %d %q, want 303 to /mfa/enrol", resp.StatusCode, resp.Header.Get("Location"))
	}
	e := h.lastAuth()
	if e.Action != "auth.login" || e.Outcome != callvault.OutcomeAllowed || e.ActorName != "head" || e.Details["method"] != "oidc" ||
		e.Details["email"] != "head.teacher@oakfield.example.org" || e.Details["mfa"] != "callvault" || e.Details["subject"] != "head" ||
		e.ClientAddr != "127.0.0.1" {
		t.Errorf("sign-in recorded as %+v", e)
	}
	for k, v := range e.Details {
		if strings.Contains(v, opClientSecret) || strings.Contains(v, opPassword) {
			t.Errorf("audit detail %s holds a secret", k)
		}
	}
	// The session is real: it reaches the enrolment page, not the sign-in page.
	resp, _ = h.get(c, h.ts.URL+"/mfa/enrol")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the new session's /mfa/enrol: %d", resp.StatusCode)
	}
	resp, _ = h.get(c, h.ts.URL+"/recordings")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/mfa/enrol" {
		t.Errorf("before the second factor, /recordings: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = h.get(c, h.ts.URL+"/login")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("signed in, /login: %d, want a redirect onwards", resp.StatusCode)
	}
}

func TestOIDCProviderMFA(t *testing.T) {
	h := newHarness(t)
	o := h.withOIDC()
	dpo, err := h.d.Users.FindUserByLogin(h.d.Sys, "dpo")
	if err != nil {
		t.Fatal(err)
	}
	dpo.Email = "DPO@trust.example.org"
	if err := h.d.Users.UpdateUser(h.d.Sys, dpo); err != nil {
		t.Fatal(err)
	}
	// The provider reports only a password: callvault asks for its own code.
	c := h.client("")
	resp, _ := h.oidcSignIn(c, "dpo")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/mfa?next=") {
		t.Errorf("password-only at the provider: %d %q, want 303 to /mfa", resp.StatusCode, loc)
	}
	// The provider reports MFA: the session has passed its second factor.
	o.storage.setAMR("pwd", "mfa")
	c = h.client("")
	resp, _ = h.oidcSignIn(c, "dpo")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/recordings?number=1" {
		t.Fatalf("MFA at the provider: %d %q, want 303 to the page asked for", resp.StatusCode, loc)
	}
	if e := h.lastAuth(); e.Action != "auth.login" || e.ActorName != "dpo" || e.Details["mfa"] != "provider" || e.Details["amr"] != "pwd mfa" {
		t.Errorf("sign-in recorded as %+v", e)
	}
	resp, _ = h.get(c, h.ts.URL+"/audit")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the DPO's audit page after provider MFA: %d", resp.StatusCode)
	}
	// MFA at the provider, but no second factor enrolled here: enrol first.
	c = h.client("")
	resp, _ = h.oidcSignIn(c, "head")
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/mfa/enrol?") {
		t.Errorf("provider MFA for an unenrolled account: %q, want /mfa/enrol", loc)
	}
}

func TestOIDCRefusals(t *testing.T) {
	h := newHarness(t)
	h.withOIDC()
	h.srv.Throttle.Max = 1000 // until the throttle's own check below
	refused := func(name string, resp *http.Response, body, reason, msg string) {
		t.Helper()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, msg) {
			t.Errorf("%s: %d, want 401 with %q", name, resp.StatusCode, msg)
		}
		if strings.Contains(body, "Set-Cookie") || hasSession(resp) {
			t.Errorf("%s: a session cookie was set", name)
		}
		e := h.lastAuth()
		if e.Action != "auth.login_failed" || e.Outcome != callvault.OutcomeDenied || e.Details["method"] != "oidc" || e.Reason != reason {
			t.Errorf("%s recorded as %+v, want auth.login_failed (%s)", name, e, reason)
		}
	}

	// No account for the verified e-mail, an unverified e-mail, a disabled
	// account, an e-mail two accounts share: the password sign-in's message.
	for _, tt := range []struct{ user, reason string }{
		{"stranger", "no account"},
		{"unverified", "e-mail not verified by the provider"},
		{"leaver", "account disabled"},
		{"twin", "several accounts share the e-mail"},
	} {
		resp, body := h.oidcSignIn(h.client(""), tt.user)
		refused(tt.user, resp, body, tt.reason, genericLoginError)
	}
	// Entra sends no email_verified: with --oidc-trust-email the same
	// unverified claim signs its account in.
	h.srv.OIDCTrustEmail = true
	if resp, _ := h.oidcSignIn(h.client(""), "unverified"); resp.StatusCode != http.StatusSeeOther || !hasSession(resp) {
		t.Errorf("with OIDCTrustEmail the unverified e-mail's account was refused: %d", resp.StatusCode)
	}
	h.srv.OIDCTrustEmail = false

	// A tampered state, a missing one, a replayed callback, a callback
	// carried to another browser: refused, and the genuine one still works
	// only once.
	c := h.client("")
	cb := h.oidcCallbackURL(c, "head")
	u := mustParse(t, cb)
	q := u.Query()
	q.Set("state", q.Get("state")+"x")
	u.RawQuery = q.Encode()
	resp, body := h.get(c, u.String())
	refused("tampered state", resp, body, "unknown or used state", "That sign-in could not be completed")
	q.Del("state")
	u.RawQuery = q.Encode()
	resp, body = h.get(c, u.String())
	refused("missing state", resp, body, "unknown or used state", "That sign-in could not be completed")
	resp, body = h.get(h.client(""), cb)
	refused("another browser", resp, body, "state from another browser", "That sign-in could not be completed")

	c = h.client("")
	cb = h.oidcCallbackURL(c, "head")
	if resp, _ := h.get(c, cb); resp.StatusCode != http.StatusSeeOther || !hasSession(resp) {
		t.Fatalf("genuine callback: %d", resp.StatusCode)
	}
	resp, body = h.get(c, cb)
	refused("replayed callback", resp, body, "unknown or used state", "That sign-in could not be completed")
	resp, body = h.get(h.client(""), cb)
	refused("replayed callback, other browser", resp, body, "unknown or used state", "That sign-in could not be completed")

	// A valid state with a forged code: the provider will not redeem it.
	c = h.client("")
	cb = h.oidcCallbackURL(c, "head")
	u = mustParse(t, cb)
	q = u.Query()
	q.Set("code", "forged")
	u.RawQuery = q.Encode()
	resp, body = h.get(c, u.String())
	refused("forged code", resp, body, "token not accepted", "could not be checked")

	// The provider's own refusal (the person cancelled).
	c = h.client("")
	cb = h.oidcCallbackURL(c, "head")
	u = mustParse(t, cb)
	q = u.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	u.RawQuery = q.Encode()
	resp, body = h.get(c, u.String())
	refused("provider error", resp, body, "provider: access_denied", "did not complete")

	// Failures count towards the per-address throttle.
	h.srv.Throttle.Max = 1
	resp, body = h.get(h.client(""), h.ts.URL+"/auth/oidc/callback?state=nope&code=x")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed sign-ins") {
		t.Errorf("throttled callback: %d", resp.StatusCode)
	}
	if e := h.lastAuth(); e.Action != "auth.login_failed" || e.Reason != "throttled" || e.Details["method"] != "oidc" {
		t.Errorf("throttled callback recorded as %+v", e)
	}
}

func hasSession(resp *http.Response) bool {
	for _, c := range resp.Cookies() {
		if c.Name == "callvault_session" && c.Value != "" {
			return true
		}
	}
	return false
}

// The state is bound to a 10-minute, HttpOnly, SameSite=Lax cookie, and the
// provider is asked for PKCE, a nonce and a query-mode response.
func TestOIDCStartRequest(t *testing.T) {
	h := newHarness(t)
	h.withOIDC()
	resp, _ := h.get(h.client(""), h.ts.URL+"/auth/oidc/start?next=//evil.example")
	loc := mustParse(t, resp.Header.Get("Location"))
	q := loc.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 40 {
			t.Errorf("authorisation request %s = %q", k, q.Get(k))
		}
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("response_mode") != "query" || q.Get("response_type") != "code" ||
		q.Get("client_id") != opClientID || q.Get("redirect_uri") != h.ts.URL+"/auth/oidc/callback" || !strings.Contains(q.Get("scope"), "email") {
		t.Errorf("authorisation request: %s", loc)
	}
	var bind *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "callvault_oidc" {
			bind = c
		}
	}
	if bind == nil || !bind.HttpOnly || bind.SameSite != http.SameSiteLaxMode || bind.MaxAge != int((10*time.Minute).Seconds()) || bind.Path != "/auth/oidc/" {
		t.Errorf("binding cookie: %+v", bind)
	}
	if strings.Contains(resp.Header.Get("Set-Cookie"), q.Get("state")) {
		t.Errorf("the state itself is in the cookie")
	}
}

// Without a provider there is no link and no route.
func TestOIDCOffByDefault(t *testing.T) {
	h := newHarness(t)
	_, body := h.get(h.client(""), h.ts.URL+"/login")
	if strings.Contains(body, "/auth/oidc/") {
		t.Errorf("sign-in page offers OpenID Connect without a provider")
	}
	for _, p := range []string{"/auth/oidc/start", "/auth/oidc/callback?state=x&code=y"} {
		if resp, _ := h.get(h.client(""), h.ts.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s without a provider: %d, want 404", p, resp.StatusCode)
		}
	}
}
