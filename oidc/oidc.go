// Package oidc signs people in with the trust's identity provider (Google
// Workspace, Microsoft Entra or any OpenID Connect provider) using the
// authorisation code flow with PKCE, a nonce and a state. It only proves who
// the provider says the person is: mapping that to a callvault account, and
// refusing anyone without one, is the web package's job.
package oidc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config describes the relying party: the provider's issuer, this
// deployment's client registration and its redirect URI.
type Config struct {
	Issuer       string // e.g. https://accounts.google.com or https://login.microsoftonline.com/{tenant}/v2.0
	ClientID     string
	ClientSecret string
	RedirectURL  string // this server's callback, e.g. https://callvault.example.org/auth/oidc/callback
	// HTTPClient talks to the provider; nil uses a client with a 15 s timeout.
	HTTPClient *http.Client
}

// Provider is a discovered OpenID provider and this server's registration
// with it. It is safe for concurrent use.
type Provider struct {
	issuer   string
	client   *http.Client
	provider *gooidc.Provider
	verifier *gooidc.IDTokenVerifier
	oauth    oauth2.Config
}

// New discovers the provider (its /.well-known/openid-configuration, which
// must name exactly cfg.Issuer) and prepares to verify its ID tokens.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("oidc: no issuer")
	case cfg.ClientID == "":
		return nil, errors.New("oidc: no client ID")
	case cfg.RedirectURL == "":
		return nil, errors.New("oidc: no redirect URL")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	// The key set is fetched later with the context given here, so it must
	// outlive the caller's.
	pctx := gooidc.ClientContext(context.WithoutCancel(ctx), hc)
	p, err := gooidc.NewProvider(pctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovering %s: %w", cfg.Issuer, err)
	}
	return &Provider{
		issuer:   cfg.Issuer,
		client:   hc,
		provider: p,
		// Checks the signature against the provider's published keys, the
		// issuer, the audience (our client ID) and the expiry.
		verifier: p.Verifier(&gooidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Endpoint:     p.Endpoint(),
			Scopes:       []string{gooidc.ScopeOpenID, "email", "profile"},
		},
	}, nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// Flow is one sign-in attempt's secrets: the state that ties the callback
// to the browser that started it, the nonce that ties the ID token to this
// attempt and the PKCE verifier that ties the code to this server. Keep it
// server-side (or sealed) until the callback.
type Flow struct {
	State    string
	Nonce    string
	Verifier string
}

// NewFlow returns fresh random values for one attempt.
func NewFlow() Flow {
	return Flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// AuthURL is where to send the browser: the provider's authorisation
// endpoint with the state, the nonce, the S256 PKCE challenge and
// response_mode=query, so the callback is a plain GET.
func (p *Provider) AuthURL(f Flow) string {
	return p.oauth.AuthCodeURL(f.State,
		gooidc.Nonce(f.Nonce),
		oauth2.S256ChallengeOption(f.Verifier),
		oauth2.SetAuthURLParam("response_mode", "query"),
	)
}

// Identity is what a verified ID token says about the person.
type Identity struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	AMR           []string // authentication methods references, as the provider reported them
}

// MFA reports whether the provider says it used more than one factor, or a
// factor that counts as two (a hardware or software key, FIDO).
func (id *Identity) MFA() bool {
	for _, m := range id.AMR {
		switch strings.ToLower(m) {
		case "mfa", "otp", "hwk", "swk", "fido":
			return true
		}
	}
	return false
}

// Errors the callback tells apart for the audit trail.
var (
	ErrExchange = errors.New("oidc: the code could not be exchanged")
	ErrToken    = errors.New("oidc: the ID token is not valid")
	ErrNonce    = errors.New("oidc: the ID token's nonce does not match")
)

// Exchange redeems the code (with f's PKCE verifier), verifies the ID token
// (signature, issuer, audience, expiry) and its nonce against f, and returns
// the identity. If the ID token carries no e-mail address, the provider's
// UserInfo endpoint supplies it, for the same subject only.
func (p *Provider) Exchange(ctx context.Context, code string, f Flow) (*Identity, error) {
	ctx = gooidc.ClientContext(ctx, p.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExchange, err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, fmt.Errorf("%w: the token response has no id_token", ErrToken)
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrToken, err)
	}
	if f.Nonce == "" || idt.Nonce != f.Nonce {
		return nil, ErrNonce
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrToken, err)
	}
	id := &Identity{Issuer: idt.Issuer, Subject: idt.Subject, Email: c.Email, EmailVerified: bool(c.EmailVerified),
		Name: c.Name, AMR: slices.Clone(c.AMR)}
	if id.Email == "" && p.provider.UserInfoEndpoint() != "" {
		ui, err := p.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("oidc: reading UserInfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return nil, fmt.Errorf("%w: UserInfo is about another subject", ErrToken)
		}
		id.Email, id.EmailVerified = ui.Email, ui.EmailVerified
		if id.Name == "" {
			var uc claims
			if ui.Claims(&uc) == nil {
				id.Name = uc.Name
			}
		}
	}
	return id, nil
}

type claims struct {
	Email         string   `json:"email"`
	EmailVerified flexBool `json:"email_verified"`
	Name          string   `json:"name"`
	AMR           []string `json:"amr"`
}

// flexBool accepts true and "true": some providers send the string.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch t := v.(type) {
	case bool:
		*b = flexBool(t)
	case string:
		*b = flexBool(strings.EqualFold(t, "true"))
	default:
		*b = false
	}
	return nil
}
