package web

import (
	"net/http"
	"time"
)

// pageDeadline bounds how long any response but an audio stream may take to
// write.
const pageDeadline = time.Minute

// routes is every route callvault serves. Nothing is registered elsewhere.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, s.Metrics.instrument(pattern, h))
	}
	page := func(pattern string, h http.HandlerFunc) { handle(pattern, withDeadline(s.requireUser(h))) }

	// Operations: no session needed.
	handle("GET /healthz", withDeadline(http.HandlerFunc(s.healthz)))
	handle("GET /readyz", withDeadline(http.HandlerFunc(s.readyz)))
	handle("GET /metrics", withDeadline(s.Metrics.handler()))
	handle("GET /static/{hash}/{name}", withDeadline(http.HandlerFunc(s.static)))

	// Sign-in.
	handle("GET /login", withDeadline(http.HandlerFunc(s.loginPage)))
	handle("POST /login", withDeadline(http.HandlerFunc(s.login)))
	handle("POST /logout", withDeadline(http.HandlerFunc(s.logout)))
	page("GET /password", s.passwordPage)
	page("POST /password", s.changePassword)

	// Pages.
	page("GET /{$}", s.home)
	page("GET /recordings", s.recordingsPage)
	page("GET /recordings/{id}", s.recordingPage)
	page("GET /academies", s.academiesPage)
	page("POST /academies", s.createAcademy)
	page("GET /academies/{slug}/edit", s.academyEditPage)
	page("POST /academies/{slug}", s.updateAcademy)

	// JSON API.
	handle("GET /api/v1/openapi.json", withDeadline(http.HandlerFunc(s.openapi)))
	handle("POST /api/v1/recordings", s.requireSource(s.ingest)) // long uploads: no write deadline
	page("GET /api/v1/recordings", s.apiSearch)
	page("GET /api/v1/recordings/{id}", s.apiRecording)
	handle("GET /api/v1/recordings/{id}/audio", s.requireUser(s.apiAudio)) // long streams: no write deadline

	// Everything unmatched gets a proper 404 in the right format.
	handle("/", withDeadline(http.HandlerFunc(s.notFound)))

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
