package web

import (
	"net/http"
	"time"
)

// pageDeadline bounds how long any response but an audio stream or an
// upload may take to write.
const pageDeadline = time.Minute

// Route is one entry of the route table: a pattern, the audit action its
// requests are recorded under ("" only for routes that neither read nor
// change recordings, accounts or settings — Why says so), and its handler.
type Route struct {
	Pattern string
	Action  string
	Why     string // for unaudited routes: why no entry is needed
	stream  bool   // long audio or upload: no write deadline
	handler http.Handler
}

// Routes is every route callvault serves. Nothing is registered elsewhere.
func (s *Server) Routes() []Route {
	page := func(h http.HandlerFunc) http.Handler { return s.requireUser(h) }
	pwStage := func(h http.HandlerFunc) http.Handler { return s.requireStage(stagePassword, h) }
	mfaStage := func(h http.HandlerFunc) http.Handler { return s.requireStage(stageMFA, h) }
	rs := []Route{
		// Operations and public assets: no personal data.
		{Pattern: "GET /healthz", Why: "liveness probe", handler: http.HandlerFunc(s.healthz)},
		{Pattern: "GET /readyz", Why: "readiness probe", handler: http.HandlerFunc(s.readyz)},
		{Pattern: "GET /metrics", Why: "aggregate counters only", handler: s.Metrics.handler()},
		{Pattern: "GET /static/{hash}/{name}", Why: "stylesheets", handler: http.HandlerFunc(s.static)},
		{Pattern: "GET /api/v1/openapi.json", Why: "API description", handler: http.HandlerFunc(s.openapi)},
		{Pattern: "GET /login", Why: "the empty sign-in form", handler: http.HandlerFunc(s.loginPage)},
		{Pattern: "GET /password", Why: "the empty password form", handler: pwStage(s.passwordPage)},
		{Pattern: "GET /mfa", Why: "the empty code form", handler: mfaStage(s.mfaPage)},
		{Pattern: "GET /mfa/enrol", Why: "shows a new secret that is not stored until confirmed", handler: mfaStage(s.mfaEnrolPage)},
		{Pattern: "GET /{$}", Why: "redirect to /recordings", handler: page(s.home)},
		{Pattern: "/", Why: "not found", handler: http.HandlerFunc(s.notFound)},

		// Accounts.
		{Pattern: "POST /login", Action: "auth.login", handler: http.HandlerFunc(s.login)},
		{Pattern: "POST /logout", Action: "auth.logout", handler: http.HandlerFunc(s.logout)},
		{Pattern: "POST /password", Action: "user.password_change", handler: pwStage(s.changePassword)},
		{Pattern: "POST /mfa", Action: "auth.mfa", handler: mfaStage(s.mfa)},
		{Pattern: "POST /mfa/enrol", Action: "auth.mfa_enrol", handler: mfaStage(s.mfaEnrol)},
		// Passkeys: sign in with one (MFA stage), list and add them (signed in).
		{Pattern: "POST /mfa/passkey/begin", Action: "auth.passkey_begin", handler: mfaStage(s.passkeyLoginBegin)},
		{Pattern: "POST /mfa/passkey/finish", Action: "auth.passkey", handler: mfaStage(s.passkeyLoginFinish)},
		{Pattern: "GET /mfa/passkeys", Why: "the user's own passkey list and the form to add one (adding is audited)", handler: page(s.passkeysPage)},
		{Pattern: "POST /mfa/passkeys/begin", Action: "auth.passkey_register_begin", handler: page(s.passkeyRegisterBegin)},
		{Pattern: "POST /mfa/passkeys/finish", Action: "auth.passkey_register", handler: page(s.passkeyRegisterFinish)},
		// End Passkeys

		// Recordings.
		{Pattern: "GET /recordings", Action: "recording.search", handler: page(s.recordingsPage)},
		{Pattern: "GET /recordings/{id}", Action: "recording.view", handler: page(s.recordingPage)},
		{Pattern: "POST /api/v1/recordings", Action: "recording.ingest", stream: true, handler: s.requireSource(s.ingest)},
		{Pattern: "GET /api/v1/recordings", Action: "recording.search", handler: page(s.apiSearch)},
		{Pattern: "GET /api/v1/recordings/{id}", Action: "recording.view", handler: page(s.apiRecording)},
		{Pattern: "GET /api/v1/recordings/{id}/audio", Action: "recording.play", stream: true, handler: page(s.apiAudio)},

		// Listening: requests, decisions, grants (policy §2, §5, §6).
		{Pattern: "GET /requests/new", Action: "request.form", handler: page(s.requestNewPage)},
		{Pattern: "POST /requests", Action: "request.create", handler: page(s.createRequest)},
		{Pattern: "GET /requests", Action: "request.list", handler: page(s.requestsPage)},
		{Pattern: "GET /requests/{id}", Action: "request.view", handler: page(s.requestPage)},
		{Pattern: "POST /requests/{id}/decision", Action: "request.decide", handler: page(s.decideRequest)},
		{Pattern: "GET /grants", Action: "grant.list", handler: page(s.grantsPage)},
		{Pattern: "POST /grants/{id}/revoke", Action: "grant.revoke", handler: page(s.revokeGrant)},
		{Pattern: "POST /grants/{id}/ratify", Action: "grant.ratify", handler: page(s.ratifyGrant)},
		{Pattern: "GET /shared", Action: "grant.shared", handler: page(s.sharedPage)},
		{Pattern: "GET /recordings/{id}/break-glass", Action: "grant.break_glass_form", handler: page(s.breakGlassPage)},
		{Pattern: "POST /recordings/{id}/break-glass", Action: "grant.break_glass", handler: page(s.breakGlass)},
		{Pattern: "POST /api/v1/listen-requests", Action: "request.create", handler: page(s.apiCreateRequest)},
		{Pattern: "POST /api/v1/listen-requests/{id}/approve", Action: "request.decide", handler: page(s.apiDecide(true))},
		{Pattern: "POST /api/v1/listen-requests/{id}/decline", Action: "request.decide", handler: page(s.apiDecide(false))},
		{Pattern: "GET /api/v1/grants", Action: "grant.list", handler: page(s.apiGrants)},
		{Pattern: "POST /api/v1/grants/{id}/revoke", Action: "grant.revoke", handler: page(s.revokeGrant)},

		// Retention (policy §5): rules, their preview, categories, what is
		// due. Previews and views read; changes are written with their
		// audit entry in the transaction that recomputes the recordings.
		{Pattern: "GET /retention", Action: "retention.view", handler: page(s.retentionPage)},
		{Pattern: "POST /retention/preview", Action: "retention.preview", handler: page(s.previewRetention)},
		{Pattern: "POST /retention", Action: "retention.set", handler: page(s.setRetention)},
		{Pattern: "POST /retention/remove", Action: "retention.remove", handler: page(s.removeRetention)},
		{Pattern: "POST /retention/categories", Action: "category.create", handler: page(s.createCategory)},
		{Pattern: "GET /retention/upcoming", Action: "retention.upcoming", handler: page(s.upcomingPage)},
		{Pattern: "GET /api/v1/retention", Action: "retention.view", handler: page(s.apiRetention)},
		{Pattern: "GET /api/v1/retention/upcoming", Action: "retention.upcoming", handler: page(s.apiUpcoming)},

		// Legal holds: suspend deletion of recordings until released.
		{Pattern: "GET /holds", Action: "hold.list", handler: page(s.holdsPage)},
		{Pattern: "GET /holds/new", Action: "hold.form", handler: page(s.holdNewPage)},
		{Pattern: "POST /holds", Action: "hold.create", handler: page(s.createHold)},
		{Pattern: "GET /holds/{id}", Action: "hold.view", handler: page(s.holdPage)},
		{Pattern: "POST /holds/{id}/release", Action: "hold.release", handler: page(s.releaseHold)},
		{Pattern: "POST /holds/{id}/recordings", Action: "hold.add", handler: page(s.addToHold)},
		{Pattern: "GET /api/v1/holds", Action: "hold.list", handler: page(s.apiHolds)},
		{Pattern: "POST /api/v1/holds", Action: "hold.create", handler: page(s.apiCreateHold)},
		{Pattern: "GET /api/v1/holds/{id}", Action: "hold.view", handler: page(s.apiHold)},
		{Pattern: "POST /api/v1/holds/{id}/release", Action: "hold.release", handler: page(s.apiReleaseHold)},

		// Settings.
		{Pattern: "GET /academies", Action: "academy.list", handler: page(s.academiesPage)},
		{Pattern: "POST /academies", Action: "academy.create", handler: page(s.createAcademy)},
		{Pattern: "GET /academies/{slug}/edit", Action: "academy.view", handler: page(s.academyEditPage)},
		{Pattern: "POST /academies/{slug}", Action: "academy.update", handler: page(s.updateAcademy)},

		// The audit trail itself: reading it is recorded too.
		{Pattern: "GET /audit", Action: "audit.search", handler: page(s.auditPage)},
		{Pattern: "GET /api/v1/audit", Action: "audit.search", handler: page(s.apiAudit)},
	}
	// OpenID Connect: GET /auth/oidc/start and the audited (auth.login)
	// GET /auth/oidc/callback, only when a provider is configured (oidc.go).
	rs = append(rs, s.oidcRoutes()...)
	// End OpenID Connect
	return rs
}

// routes builds the handler from the route table.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.Routes() {
		h := rt.handler
		if rt.Action != "" {
			h = s.audited(rt.Action, h)
		}
		if !rt.stream {
			h = withDeadline(h)
		}
		mux.Handle(rt.Pattern, s.Metrics.instrument(rt.Pattern, h))
	}
	// Outermost first: headers, cross-origin protection (CSRF), session.
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(s.withSession(mux)))
}

// withDeadline gives a response a bounded write time; audio routes do
// without, so a long recording is never cut off.
func withDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(pageDeadline))
		h.ServeHTTP(w, r)
	})
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.ServeHTTP(w, r)
	})
}
