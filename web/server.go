// Package web is callvault's HTTP face: the server-rendered UI, the JSON API
// under /api/v1, the ingest endpoint and the operational endpoints. Every
// route is listed in routes.go; each page has its own file; access decisions
// are delegated to the root package and the stores.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/diskspace"
	"github.com/callvault/callvault/oidc"
	"github.com/callvault/callvault/throttle"
)

// Server serves the UI and API.
type Server struct {
	Archive    *archive.Archive
	Recordings callvault.RecordingService
	Academies  callvault.AcademyService
	Users      callvault.UserService
	Sources    callvault.SourceService
	Grants     callvault.GrantService
	Tokens     callvault.TokenService // personal API tokens
	Holds      callvault.HoldService
	Retention  callvault.RetentionService
	// Space reports free disk space for the status page and /metrics
	// (diskspace.Monitor); nil when not monitored.
	Space    interface{ Status() diskspace.Status }
	MFA      callvault.MFAService
	Secrets  Sealer // seals TOTP secrets
	Mailer   Mailer // break-glass alerts; nil when no relay is configured
	Throttle *throttle.Limiter
	Auditor  callvault.Auditor    // writes the trail (group commit)
	Audit    callvault.AuditStore // reads it
	Pingers  []callvault.Pinger
	Metrics  *Metrics
	Logger   *slog.Logger
	Now      callvault.Clock

	// SecureCookies marks session cookies Secure. Leave it on everywhere
	// but plain-HTTP development on loopback.
	SecureCookies bool

	// OpenID Connect
	// OIDC, when set, offers sign-in with the trust's identity provider
	// for accounts whose e-mail address it verifies; OIDCName is what the
	// sign-in page calls it ("Google Workspace").
	OIDC     *oidc.Provider
	OIDCName string
	// OIDCTrustEmail accepts the provider's e-mail claim without
	// email_verified (Microsoft Entra, single-tenant issuer only).
	OIDCTrustEmail bool
	oidcPending    oidcAttempts
	// End OpenID Connect

	// Passkeys (WebAuthn) as a second factor. Passkeys defaults to MFA
	// when that keeps passkeys too; PublicURL is the address people use,
	// whose host is the relying-party ID ("" means http://localhost).
	Passkeys  callvault.PasskeyService
	PublicURL string
	passkeys  passkeyState
	// End Passkeys

	views   *views
	handler http.Handler
	plays   playTokens
}

// Init prepares templates and routes. It fails if a template is broken, so
// a bad build never starts serving.
func (s *Server) Init() error {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Throttle == nil {
		s.Throttle = throttle.New(10, 5*time.Minute)
	}
	if s.Metrics == nil {
		s.Metrics = NewMetrics()
	}
	if s.Space != nil {
		s.Metrics.watchSpace(s.Space)
	}
	v, err := loadViews()
	if err != nil {
		return err
	}
	s.views = v
	// OpenID Connect
	if err := s.initOIDC(); err != nil {
		return err
	}
	// End OpenID Connect
	s.handler = s.routes()
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Serve serves on ln until ctx is cancelled, then shuts down gracefully,
// letting requests in flight (including audio streams) finish for up to
// grace.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: it would cut long audio streams. Handlers other
		// than audio set their own write deadline (see withDeadline).
		ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context {
			return context.WithoutCancel(ctx)
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
