package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

func TestPersonalAPITokens(t *testing.T) {
	h := newHarness(t)
	id := h.storeOne("r", "ulaw", time.Second)
	mk := func(login string, scopes ...string) (string, *callvault.APIToken) {
		tok := secret.Token("cvt_")
		at := &callvault.APIToken{UserID: h.userID[login], Name: "script", TokenHash: secret.HashToken(tok), Scopes: scopes, ExpiresAt: time.Now().Add(time.Hour)}
		if err := h.d.Tokens.CreateToken(h.d.Sys, at); err != nil {
			t.Fatal(err)
		}
		return tok, at
	}
	read, readTok := mk("dpo", callvault.ScopeRead)
	write, _ := mk("dpo", callvault.ScopeWrite)
	h.grant("listener", time.Hour, id)
	lis, _ := mk("listener", callvault.ScopeRead)
	call := func(tok, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, h.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	newReq := `{"recording_ids":["` + id + `"],"purpose":"training","justification":"training need for new staff","listeners":["listener2"],"minutes":30}`
	tests := []struct {
		name, tok, method, path, body string
		status                        int
		contains                      string
	}{
		{"read token searches", read, "GET", "/api/v1/recordings", "", 200, id},
		{"read token reads the trail", read, "GET", "/api/v1/audit?limit=1", "", 200, "events"},
		{"read token cannot write", read, "POST", "/api/v1/listen-requests", newReq, 403, "may only read"},
		{"write token may request", write, "POST", "/api/v1/listen-requests", newReq, 201, "pending"},
		{"no audio URL for a token", lis, "GET", "/api/v1/recordings/" + id, "", 200, `"id"`},
		{"no audio with a token", lis, "GET", "/api/v1/recordings/" + id + "/audio", "", 403, "not valid for your session"},
		{"pages ignore tokens", read, "GET", "/recordings", "", 303, ""},
		{"unknown token", "cvt_nonsense", "GET", "/api/v1/recordings", "", 401, "not valid"},
	}
	for _, tt := range tests {
		st, body := call(tt.tok, tt.method, tt.path, tt.body)
		if st != tt.status || !strings.Contains(body, tt.contains) {
			t.Errorf("%s: %d %.200s; want %d containing %q", tt.name, st, body, tt.status, tt.contains)
		}
		if tt.name == "no audio URL for a token" && strings.Contains(body, "audio_url") {
			t.Errorf("a token got an audio URL: %s", body)
		}
	}
	var e *callvault.AuditEvent
	for _, ev := range h.newest(10) {
		if ev.Action == "recording.play" && e == nil {
			e = ev
		}
	}
	if e == nil || e.ActorName != "listener" || e.Outcome != callvault.OutcomeDenied || e.Details["api_token"] == "" {
		t.Errorf("a token request is recorded as %+v; want the user and the token id", e)
	}
	if err := h.d.Tokens.RevokeToken(h.d.Sys, readTok.ID); err != nil {
		t.Fatal(err)
	}
	if st, _ := call(read, "GET", "/api/v1/recordings", ""); st != 401 {
		t.Errorf("revoked token: %d, want 401", st)
	}
}
