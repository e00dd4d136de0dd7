package web

import (
	"encoding/json"
	"net/http"

	"github.com/callvault/callvault"
)

// statuses maps error codes to HTTP statuses: the one table.
var statuses = map[string]int{
	callvault.EINVALID:      http.StatusBadRequest,
	callvault.ENOTFOUND:     http.StatusNotFound,
	callvault.ECONFLICT:     http.StatusConflict,
	callvault.EUNAUTHORIZED: http.StatusUnauthorized,
	callvault.EFORBIDDEN:    http.StatusForbidden,
	callvault.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	callvault.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	callvault.EUNAVAILABLE:  http.StatusServiceUnavailable,
	callvault.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status for err.
func ErrorStatus(err error) int {
	if st, ok := statuses[callvault.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// apiError is the JSON error body: {"error": {"code": ..., "message": ...}}.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// logError logs what operators need; 5xx with the cause, 4xx briefly.
func (s *Server) logError(r *http.Request, err error) {
	st := ErrorStatus(err)
	if st >= 500 {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", st, "err", err)
	} else {
		s.Logger.Info("request refused", "method", r.Method, "path", r.URL.Path, "status", st, "code", callvault.ErrorCode(err))
	}
}

// jsonError writes err as JSON. Only the client-safe message leaves.
func (s *Server) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, err)
	var body apiError
	body.Error.Code = callvault.ErrorCode(err)
	body.Error.Message = callvault.ErrorMessage(err)
	st := ErrorStatus(err)
	if st == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="callvault"`)
	}
	writeJSON(w, st, body)
}

// pageError renders err as an HTML page.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	s.logError(r, err)
	st := ErrorStatus(err)
	s.render(w, r, st, "error", map[string]any{
		"Title":   http.StatusText(st),
		"Status":  st,
		"Message": callvault.ErrorMessage(err),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
