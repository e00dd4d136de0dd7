package web

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"github.com/callvault/callvault"
)

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": callvault.Version})
}

// readyz checks every dependency; a failing one makes callvault unready so a
// load balancer stops sending it work.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	for _, p := range s.Pingers {
		if err := p.Ping(ctx); err != nil {
			s.Logger.Error("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	h, ok := s.views.static[name]
	if !ok {
		s.notFound(w, r)
		return
	}
	b, err := assets.ReadFile("static/" + name)
	if err != nil {
		s.notFound(w, r)
		return
	}
	if r.PathValue("hash") == h {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, bytesReader(b))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.pageOrJSONError(w, r, callvault.Errorf(callvault.ENOTFOUND, "there is nothing at this address"))
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/recordings", http.StatusSeeOther)
}

//go:embed openapi.json
var openapiJSON []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiJSON)
}
