package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/callvault/callvault"
)

//go:embed templates static
var assets embed.FS

// pages maps each view to the templates it is built from. Every view gets
// the layout; loadViews fails at start-up if any is missing or broken.
var pages = map[string][]string{
	"login":        {"login.html"},
	"password":     {"password.html"},
	"recordings":   {"recordings.html", "recording_rows.html"},
	"recording":    {"recording.html", "audit_rows.html"},
	"audit":        {"audit.html", "audit_rows.html"},
	"academies":    {"academies.html", "ranges.html"},
	"academy_edit": {"academy_edit.html", "ranges.html"},
	"error":        {"error.html"},
	"mfa":          {"mfa.html"},
	"mfa_enrol":    {"mfa_enrol.html"},
	"mfa_codes":    {"mfa_codes.html"},
	"request_new":  {"request_new.html"},
	"requests":     {"requests.html", "grant_rows.html"},
	"request":      {"request.html", "grant_rows.html"},
	"grants":       {"grants.html", "grant_rows.html"},
	"shared":       {"shared.html"},
	"break_glass":  {"break_glass.html"},
	// Passkeys
	"passkeys": {"passkeys.html"},
	// Retention and legal holds
	"retention":          {"retention.html", "form_errors.html"},
	"retention_preview":  {"retention_preview.html"},
	"retention_upcoming": {"retention_upcoming.html"},
	"holds":              {"holds.html"},
	"hold_new":           {"hold_new.html", "form_errors.html"},
	"hold":               {"hold.html", "form_errors.html"},
}

type views struct {
	t      map[string]*template.Template
	static map[string]string // file name → content hash, for cache-busting URLs
}

func loadViews() (*views, error) {
	v := &views{t: map[string]*template.Template{}, static: map[string]string{}}
	err := fs.WalkDir(assets, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		v.static[strings.TrimPrefix(path, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"static": func(name string) (string, error) {
			h, ok := v.static[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return "/static/" + h + "/" + name, nil
		},
		"when":      formatTime,
		"isotime":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"duration":  formatDuration,
		"bytes":     formatBytes,
		"title":     func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
		"canManage": callvault.CanManage,
		"canAudit":  callvault.CanReadAudit,
		"list":      func(s ...string) []string { return s },
		"until":     untilText,
		"purpose":   purposeLabel,
		// Retention and legal holds
		"day":              formatDay,
		"isodate":          func(t time.Time) string { return t.In(callvault.London).Format(time.DateOnly) },
		"holdReason":       callvault.HoldReasonLabel,
		"canViewHolds":     callvault.CanViewHolds,
		"canViewRetention": callvault.CanViewRetention,
		"fieldErr":         func(e *formErrors, field string) fieldError { return fieldError{field, e.For(field)} },
		"recordingFor": func(recs []*callvault.Recording, id string) heldRecording {
			for _, r := range recs {
				if r.ID == id {
					return heldRecording{id, r}
				}
			}
			return heldRecording{ID: id}
		},
	}
	for name, files := range pages {
		paths := []string{"templates/layout.html"}
		for _, f := range files {
			paths = append(paths, "templates/"+f)
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, paths...)
		if err != nil {
			return nil, fmt.Errorf("view %s: %w", name, err)
		}
		if t.Lookup("content") == nil {
			return nil, fmt.Errorf("view %s defines no content block", name)
		}
		v.t[name] = t
	}
	return v, nil
}

// render executes a view into a buffer first, so a template error never
// sends half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, view string, data map[string]any) {
	t, ok := s.views.t[view]
	if !ok {
		s.Logger.Error("no such view", "view", view)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["Actor"] = callvault.ActorFromContext(r.Context())
	data["Path"] = r.URL.Path
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		s.Logger.Error("template failed", "view", view, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(callvault.London).Format("Mon 2 Jan 2006, 15:04:05")
}

// formatDay is a London calendar day, for dates that are days (deletion
// and review dates).
func formatDay(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(callvault.London).Format("Mon 2 Jan 2006")
}

func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, sec := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
