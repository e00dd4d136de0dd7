package oidc_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/callvault/callvault/oidc"
)

const redirect = "http://127.0.0.1:9/auth/oidc/callback" // never visited: the test stops at it

type users map[string]*storage.User

func (u users) GetUserByID(id string) *storage.User {
	for _, x := range u {
		if x.ID == id {
			return x
		}
	}
	return nil
}
func (u users) GetUserByUsername(n string) *storage.User { return u[n] }
func (u users) ExampleClientID() string                  { return storage.ServiceUserID }

// startOP runs the zitadel example OpenID provider on 127.0.0.1 with
// client "cv" (secret "s3cret") registered for redirect.
func startOP(t *testing.T) string {
	t.Helper()
	var h http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	st := storage.NewStorageWithClients(users{"ann": {ID: "sub-ann", Username: "ann", Password: "pw", Email: "Ann@Example.org", EmailVerified: true}},
		map[string]*storage.Client{"cv": storage.WebClient("cv", "s3cret", redirect)})
	h = exampleop.SetupServer(ts.URL, st, slog.New(slog.DiscardHandler), false)
	return ts.URL
}

// authorise follows authURL through the provider's login form as ann and
// returns the code and state it sends back to the redirect URI.
func authorise(t *testing.T, authURL string) (code, state string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var back *url.URL
	c := &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), redirect) {
			back = r.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindSubmatch(body)
	if id == nil {
		t.Fatalf("no login form: %s", body)
	}
	resp, err = c.PostForm(resp.Request.URL.ResolveReference(&url.URL{Path: "/login/username"}).String(),
		url.Values{"id": {string(id[1])}, "username": {"ann"}, "password": {"pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if back == nil {
		t.Fatalf("the provider did not redirect back (status %d)", resp.StatusCode)
	}
	return back.Query().Get("code"), back.Query().Get("state")
}

func TestOIDCExchange(t *testing.T) {
	issuer := startOP(t)
	ctx := context.Background()
	p, err := oidc.New(ctx, oidc.Config{Issuer: issuer, ClientID: "cv", ClientSecret: "s3cret", RedirectURL: redirect})
	if err != nil {
		t.Fatal(err)
	}

	f := oidc.NewFlow()
	u, _ := url.Parse(p.AuthURL(f))
	if q := u.Query(); q.Get("state") != f.State || q.Get("nonce") != f.Nonce || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || strings.Contains(u.String(), f.Verifier) || q.Get("response_mode") != "query" {
		t.Errorf("auth URL %s", u)
	}
	code, state := authorise(t, u.String())
	if state != f.State {
		t.Fatalf("state %q came back, want %q", state, f.State)
	}
	id, err := p.Exchange(ctx, code, f)
	if err != nil {
		t.Fatal(err)
	}
	// The example puts the e-mail only in UserInfo: fetched for the same subject.
	if id.Subject != "sub-ann" || id.Email != "Ann@Example.org" || !id.EmailVerified || id.Issuer != issuer || id.MFA() {
		t.Errorf("identity %+v", id)
	}
	// A code works once.
	if _, err := p.Exchange(ctx, code, f); !errors.Is(err, oidc.ErrExchange) {
		t.Errorf("second exchange: %v, want ErrExchange", err)
	}

	// Another attempt's nonce: the ID token is refused.
	f = oidc.NewFlow()
	code, _ = authorise(t, p.AuthURL(f))
	other := f
	other.Nonce = oidc.NewFlow().Nonce
	if _, err := p.Exchange(ctx, code, other); !errors.Is(err, oidc.ErrNonce) {
		t.Errorf("wrong nonce: %v, want ErrNonce", err)
	}
	// Another attempt's PKCE verifier: the provider will not redeem the code.
	f = oidc.NewFlow()
	code, _ = authorise(t, p.AuthURL(f))
	other = f
	other.Verifier = oidc.NewFlow().Verifier
	if _, err := p.Exchange(ctx, code, other); !errors.Is(err, oidc.ErrExchange) {
		t.Errorf("wrong verifier: %v, want ErrExchange", err)
	}
	// A wrong client secret.
	bad, err := oidc.New(ctx, oidc.Config{Issuer: issuer, ClientID: "cv", ClientSecret: "wrong", RedirectURL: redirect})
	if err != nil {
		t.Fatal(err)
	}
	f = oidc.NewFlow()
	code, _ = authorise(t, bad.AuthURL(f))
	if _, err := bad.Exchange(ctx, code, f); !errors.Is(err, oidc.ErrExchange) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong secret: %v, want ErrExchange without the secret", err)
	}
}

func TestOIDCNewRefusesWrongIssuer(t *testing.T) {
	issuer := startOP(t)
	// The discovery document names the issuer exactly; a different spelling is refused.
	if _, err := oidc.New(context.Background(), oidc.Config{Issuer: issuer + "/", ClientID: "cv", RedirectURL: redirect}); err == nil {
		t.Error("issuer mismatch accepted")
	}
	for _, cfg := range []oidc.Config{{ClientID: "cv", RedirectURL: redirect}, {Issuer: issuer, RedirectURL: redirect}, {Issuer: issuer, ClientID: "cv"}} {
		if _, err := oidc.New(context.Background(), cfg); err == nil {
			t.Errorf("incomplete config %+v accepted", cfg)
		}
	}
}

func TestOIDCIdentityMFA(t *testing.T) {
	for _, tt := range []struct {
		amr  []string
		want bool
	}{
		{nil, false}, {[]string{"pwd"}, false}, {[]string{"pwd", "mfa"}, true}, {[]string{"otp"}, true},
		{[]string{"hwk"}, true}, {[]string{"swk"}, true}, {[]string{"FIDO"}, true}, {[]string{"sms"}, false}, {[]string{"rsa"}, false},
	} {
		if got := (&oidc.Identity{AMR: tt.amr}).MFA(); got != tt.want {
			t.Errorf("MFA(%v) = %v, want %v", tt.amr, got, tt.want)
		}
	}
}
