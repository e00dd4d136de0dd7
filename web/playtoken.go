package web

import (
	"encoding/base64"
	"html/template"
	"net/url"
	"sync"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/secret"
)

// A play token lets one signed-in session stream one recording for a short
// while: the audio URL is useless to anyone else, in another browser, after
// sign-out, or once the grant ends (which is checked again on every range
// request, so expiry is exact).
type playToken struct {
	session     string // hash of the session token it is bound to
	userID      int64
	recordingID string
	grantID     int64
	expires     time.Time
}

// playTokenLife bounds a token: long enough to listen to a long call and
// seek around in it, short enough that a leaked URL soon dies.
const playTokenLife = 2 * time.Hour

type playTokens struct {
	mu sync.Mutex
	m  map[string]playToken // by token hash
}

// mint makes a token for the session to stream rec under g.
func (p *playTokens) mint(sessionHash string, userID int64, rec *callvault.Recording, g *callvault.Grant, now time.Time) string {
	tok := secret.Token("cvp_")
	exp := now.Add(playTokenLife)
	if g.Until.Before(exp) {
		exp = g.Until
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]playToken{}
	}
	for k, t := range p.m { // drop expired tokens; there are few
		if !now.Before(t.expires) {
			delete(p.m, k)
		}
	}
	p.m[secret.HashToken(tok)] = playToken{session: sessionHash, userID: userID, recordingID: rec.ID, grantID: g.ID, expires: exp}
	return tok
}

// check returns the token's grant id when tok is valid for this session,
// user and recording now.
func (p *playTokens) check(tok, sessionHash string, userID int64, recordingID string, now time.Time) (int64, bool) {
	if tok == "" || sessionHash == "" {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.m[secret.HashToken(tok)]
	if !ok || t.session != sessionHash || t.userID != userID || t.recordingID != recordingID || !now.Before(t.expires) {
		return 0, false
	}
	return t.grantID, true
}

// audioURL is where the session's player fetches the recording.
func audioURL(recordingID, tok string) string {
	return "/api/v1/recordings/" + url.PathEscape(recordingID) + "/audio?token=" + url.QueryEscape(tok)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// qrURL marks a data: URL that we generated ourselves as safe for an img src.
func qrURL(s string) template.URL { return template.URL(s) }

func urlQueryEscape(s string) string { return url.QueryEscape(s) }
