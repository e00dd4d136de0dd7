package web_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/web"
)

// softAuthenticator is a software passkey (ES256, "none" attestation) for
// the server's default relying party, http://localhost.
type softAuthenticator struct {
	key    *ecdsa.PrivateKey
	credID []byte
	count  uint32
	origin string
}

func newSoftAuthenticator(t testing.TB) *softAuthenticator {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &softAuthenticator{key: k, credID: id, origin: "http://localhost"}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (a *softAuthenticator) coseKey(t testing.TB) []byte {
	t.Helper()
	pub, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	k, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, XCoord: pub[1:33], YCoord: pub[33:],
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (a *softAuthenticator) authData(t testing.TB, attested bool) []byte {
	t.Helper()
	rp := sha256.Sum256([]byte("localhost"))
	flags := byte(protocol.FlagUserPresent | protocol.FlagUserVerified)
	if attested {
		flags |= byte(protocol.FlagAttestedCredentialData)
	}
	d := append(rp[:], flags)
	d = binary.BigEndian.AppendUint32(d, a.count)
	if attested {
		d = append(d, make([]byte, 16)...) // AAGUID
		d = binary.BigEndian.AppendUint16(d, uint16(len(a.credID)))
		d = append(d, a.credID...)
		d = append(d, a.coseKey(t)...)
	}
	return d
}

func (a *softAuthenticator) clientData(typ string, challenge []byte) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": b64u(challenge), "origin": a.origin, "crossOrigin": false})
	return b
}

// create answers registration options as navigator.credentials.create would.
func (a *softAuthenticator) create(t testing.TB, optionsJSON []byte) string {
	t.Helper()
	var opts protocol.CredentialCreation
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		t.Fatalf("registration options %s: %v", optionsJSON, err)
	}
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(t, true)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64u(a.credID), "rawId": b64u(a.credID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64u(a.clientData("webauthn.create", opts.Response.Challenge)),
			"attestationObject": b64u(att),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// get answers login options as navigator.credentials.get would, moving the
// counter on.
func (a *softAuthenticator) get(t testing.TB, optionsJSON []byte) string {
	t.Helper()
	var opts protocol.CredentialAssertion
	if err := json.Unmarshal(optionsJSON, &opts); err != nil {
		t.Fatalf("login options %s: %v", optionsJSON, err)
	}
	return a.sign(t, opts.Response.Challenge)
}

func (a *softAuthenticator) sign(t testing.TB, challenge []byte) string {
	t.Helper()
	a.count++
	ad := a.authData(t, false)
	cd := a.clientData("webauthn.get", challenge)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64u(a.credID), "rawId": b64u(a.credID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64u(cd), "authenticatorData": b64u(ad), "signature": b64u(sig),
		},
		"clientExtensionResults": map[string]any{},
	})
	return string(b)
}

// post sends a form or JSON body and returns the status and body.
func (h *harness) post(c *http.Client, path, ctype, body string) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const formType, jsonType = "application/x-www-form-urlencoded", "application/json"

// registerPasskey adds a passkey through the pages, as the browser would.
func (h *harness) registerPasskey(c *http.Client, a *softAuthenticator, name string) (int, []byte) {
	h.t.Helper()
	st, opts := h.post(c, "/mfa/passkeys/begin", formType, url.Values{"name": {name}}.Encode())
	if st != 200 {
		h.t.Fatalf("register begin: %d %s", st, opts)
	}
	return h.post(c, "/mfa/passkeys/finish", jsonType, a.create(h.t, opts))
}

// passkeyLogin answers the second step with a passkey.
func (h *harness) passkeyLogin(c *http.Client, a *softAuthenticator) (int, []byte) {
	h.t.Helper()
	st, opts := h.post(c, "/mfa/passkey/begin", formType, "")
	if st != 200 {
		h.t.Fatalf("login begin: %d %s", st, opts)
	}
	return h.post(c, "/mfa/passkey/finish?next=%2Fgrants", jsonType, a.get(h.t, opts))
}

// Soft passkeys registered for the route-table test, per harness and login.
var (
	softMu   sync.Mutex
	softKeys = map[*harness]map[string]*softAuthenticator{}
)

// softPasskey gives login a registered software passkey (once per harness).
func (h *harness) softPasskey(login string) *softAuthenticator {
	h.t.Helper()
	softMu.Lock()
	defer softMu.Unlock()
	if softKeys[h] == nil {
		softKeys[h] = map[string]*softAuthenticator{}
		h.t.Cleanup(func() { softMu.Lock(); delete(softKeys, h); softMu.Unlock() })
	}
	if a := softKeys[h][login]; a != nil {
		return a
	}
	a := newSoftAuthenticator(h.t)
	if st, b := h.registerPasskey(h.client(login), a, "Route test"); st != 200 {
		h.t.Fatalf("registering a passkey for %s: %d %s", login, st, b)
	}
	softKeys[h][login] = a
	return a
}

// passkeyRoute prepares the finish requests of the route-table test: the
// begin request first, on the same client, then the authenticator's answer.
func (h *harness) passkeyRoute(c *http.Client, rq request) request {
	h.t.Helper()
	login := strings.TrimPrefix(rq.as, "half:")
	switch rq.path {
	case "passkey:login":
		_, opts := h.post(c, "/mfa/passkey/begin", formType, "")
		rq.path, rq.json = "/mfa/passkey/finish", h.softPasskey(login).get(h.t, opts)
	case "passkey:register":
		_, opts := h.post(c, "/mfa/passkeys/begin", formType, "name=Second")
		rq.path, rq.json = "/mfa/passkeys/finish", newSoftAuthenticator(h.t).create(h.t, opts)
	}
	return rq
}

func (h *harness) lastAudit(action string) *callvault.AuditEvent {
	h.t.Helper()
	for _, e := range h.newest(10) {
		if e.Action == action {
			return e
		}
	}
	h.t.Fatalf("no %s audit entry", action)
	return nil
}

func TestPasskeyRegisterAndSignIn(t *testing.T) {
	h := newHarness(t)
	a := newSoftAuthenticator(t)
	full := h.client("listener")
	if st, b := h.registerPasskey(full, a, "  Work   laptop "); st != 200 || !contains(string(b), "/mfa/passkeys?added=1") {
		t.Fatalf("register: %d %s", st, b)
	}
	if e := h.lastAudit("auth.passkey_register"); e.Outcome != callvault.OutcomeAllowed || e.ActorName != "listener" || e.TargetID == "" {
		t.Errorf("registration audited as %+v", e)
	}
	resp, err := full.Get(h.ts.URL + "/mfa/passkeys")
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || !contains(body, "Work laptop") || !contains(body, "Not yet") {
		t.Errorf("passkeys page: %d\n%s", resp.StatusCode, body)
	}

	// Password, then the passkey instead of a code.
	half := h.halfClient("listener")
	st, b := h.passkeyLogin(half, a)
	if st != 200 {
		t.Fatalf("passkey sign-in: %d %s", st, b)
	}
	var out struct{ Next string }
	if json.Unmarshal(b, &out); out.Next != "/grants" {
		t.Errorf("next = %q, want /grants", out.Next)
	}
	if resp, _ := half.Get(h.ts.URL + "/grants"); resp.StatusCode != 200 {
		t.Errorf("after the passkey, /grants = %d, want 200", resp.StatusCode)
	}
	if e := h.lastAudit("auth.passkey"); e.Outcome != callvault.OutcomeAllowed || e.ActorName != "listener" || e.Details["method"] != "passkey" {
		t.Errorf("passkey sign-in audited as %+v", e)
	}
	ps, err := h.d.Users.FindPasskeys(h.d.Sys, h.userID["listener"])
	if err != nil || len(ps) != 1 || ps[0].SignCount != a.count || ps[0].LastUsedAt.IsZero() || ps[0].Name != "Work laptop" {
		t.Errorf("stored passkey after use: %+v, %v", ps, err)
	}
	// The same credential cannot be registered twice (to anyone).
	if st, b := h.registerPasskey(h.client("listener2"), a, "copy"); st != 409 {
		t.Errorf("registering another user's credential: %d %s, want 409", st, b)
	}
}

func TestPasskeyRefusals(t *testing.T) {
	h := newHarness(t)
	mine, theirs := newSoftAuthenticator(t), newSoftAuthenticator(t)
	if st, b := h.registerPasskey(h.client("listener"), mine, "mine"); st != 200 {
		t.Fatalf("register: %d %s", st, b)
	}
	if st, b := h.registerPasskey(h.client("listener2"), theirs, "theirs"); st != 200 {
		t.Fatalf("register: %d %s", st, b)
	}
	redirect := func(c *http.Client, method, path, wantPrefix string) {
		t.Helper()
		req, _ := http.NewRequest(method, h.ts.URL+path, strings.NewReader(""))
		req.Header.Set("Content-Type", formType)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.HasPrefix(loc, wantPrefix) {
			t.Errorf("%s %s: %d to %q, want 303 to %s", method, path, resp.StatusCode, loc, wantPrefix)
		}
	}
	// No session: sign in first.
	anon := h.client("")
	for _, p := range []string{"/mfa/passkey/begin", "/mfa/passkey/finish", "/mfa/passkeys/begin", "/mfa/passkeys/finish"} {
		redirect(anon, "POST", p, "/login")
	}
	redirect(anon, "GET", "/mfa/passkeys", "/login")
	// Password only: a passkey cannot be added before the second factor.
	half := h.halfClient("listener")
	redirect(half, "POST", "/mfa/passkeys/begin", "/mfa")
	redirect(half, "POST", "/mfa/passkeys/finish", "/mfa")
	redirect(half, "GET", "/mfa/passkeys", "/mfa")
	// One-time password not yet replaced: not even the passkey sign-in.
	redirect(h.halfClient("newbie"), "POST", "/mfa/passkey/begin", "/password")

	stillHalf := func(c *http.Client) {
		t.Helper()
		if resp, _ := c.Get(h.ts.URL + "/grants"); resp.StatusCode != 303 {
			t.Errorf("a refused passkey let the session through: /grants = %d", resp.StatusCode)
		}
	}

	// Finish without begin: no challenge to answer.
	if st, b := h.post(half, "/mfa/passkey/finish", jsonType, mine.sign(t, []byte("a challenge never issued 1234567"))); st != 400 {
		t.Errorf("finish without begin: %d %s, want 400", st, b)
	}
	if e := h.lastAudit("auth.passkey"); e.Outcome != callvault.OutcomeFailed || e.Reason == "" {
		t.Errorf("refusal audited as %+v", e)
	}
	// An answer to another challenge than the one issued.
	h.post(half, "/mfa/passkey/begin", formType, "")
	if st, b := h.post(half, "/mfa/passkey/finish", jsonType, mine.sign(t, []byte("some other challenge 0123456789ab"))); st != 401 {
		t.Errorf("answer to the wrong challenge: %d %s, want 401", st, b)
	}
	stillHalf(half)
	// Another user's passkey, answering this session's challenge.
	_, opts := h.post(half, "/mfa/passkey/begin", formType, "")
	if st, b := h.post(half, "/mfa/passkey/finish", jsonType, theirs.get(t, opts)); st != 401 || !contains(string(b), "not registered to your account") {
		t.Errorf("another user's passkey: %d %s, want 401", st, b)
	}
	if e := h.lastAudit("auth.passkey"); e.Outcome != callvault.OutcomeDenied || e.ActorName != "listener" {
		t.Errorf("another user's passkey audited as %+v", e)
	}
	stillHalf(half)
	// A challenge of another session (the same user's) is not this one's.
	other := h.halfClient("listener")
	_, opts = h.post(other, "/mfa/passkey/begin", formType, "")
	if st, b := h.post(half, "/mfa/passkey/finish", jsonType, mine.get(t, opts)); st != 400 {
		t.Errorf("another session's challenge: %d %s, want 400", st, b)
	}
	stillHalf(half)
	// An expired challenge.
	_, opts = h.post(half, "/mfa/passkey/begin", formType, "")
	h.srv.Now = func() time.Time { return time.Now().Add(6 * time.Minute) }
	st, b := h.post(half, "/mfa/passkey/finish", jsonType, mine.get(t, opts))
	h.srv.Now = time.Now
	if st != 400 {
		t.Errorf("expired challenge: %d %s, want 400", st, b)
	}
	// A signature counter that goes back: a cloned authenticator.
	clone := *mine
	clone.count = 0
	mine.count += 10
	_, opts = h.post(half, "/mfa/passkey/begin", formType, "")
	if st, b := h.post(half, "/mfa/passkey/finish", jsonType, mine.get(t, opts)); st != 200 {
		t.Fatalf("genuine passkey: %d %s", st, b)
	}
	// The same answer again: its challenge was used up.
	body := mine.get(t, opts)
	if st, b := h.post(half, "/mfa/passkey/finish", jsonType, body); st != 400 {
		t.Errorf("replayed challenge: %d %s, want 400", st, b)
	}
	half2 := h.halfClient("listener")
	_, opts = h.post(half2, "/mfa/passkey/begin", formType, "")
	if st, b := h.post(half2, "/mfa/passkey/finish", jsonType, clone.get(t, opts)); st != 401 || !contains(string(b), "counter") {
		t.Errorf("cloned authenticator: %d %s, want 401", st, b)
	}
	stillHalf(half2)
	// Registration: a malformed credential, and a replayed registration.
	full := h.client("listener")
	h.post(full, "/mfa/passkeys/begin", formType, "name=x")
	if st, b := h.post(full, "/mfa/passkeys/finish", jsonType, `{"id":"x"}`); st != 400 {
		t.Errorf("malformed credential: %d %s, want 400", st, b)
	}
	_, opts = h.post(full, "/mfa/passkeys/begin", formType, "name=y")
	reg := newSoftAuthenticator(t).create(t, opts)
	if st, b := h.post(full, "/mfa/passkeys/finish", jsonType, reg); st != 200 {
		t.Errorf("registration: %d %s", st, b)
	}
	if st, b := h.post(full, "/mfa/passkeys/finish", jsonType, reg); st != 400 {
		t.Errorf("replayed registration: %d %s, want 400", st, b)
	}
	if st, b := h.post(full, "/mfa/passkeys/begin", formType, "name="+strings.Repeat("n", 61)); st != 400 {
		t.Errorf("a 61-character name: %d %s, want 400", st, b)
	}
	// A user without a passkey is told to use a code.
	if st, b := h.post(h.halfClient("ceo"), "/mfa/passkey/begin", formType, ""); st != 400 || !bytes.Contains(b, []byte("no passkey")) {
		t.Errorf("begin without a passkey: %d %s, want 400", st, b)
	}
}

func TestPasskeyRelyingParty(t *testing.T) {
	tests := []struct{ url, rpID, origin string }{
		{"", "localhost", "http://localhost"},
		{"http://localhost:8080", "localhost", "http://localhost:8080"},
		{"http://127.0.0.1:8080", "localhost", "http://localhost:8080"},
		{"https://callvault.example.org", "callvault.example.org", "https://callvault.example.org"},
		{"https://192.0.2.1", "", ""}, // an IP address cannot be a relying-party ID
		{"ftp://x", "", ""},
	}
	for _, tt := range tests {
		rp, err := web.NewRelyingParty(tt.url)
		if tt.rpID == "" {
			if err == nil {
				t.Errorf("NewRelyingParty(%q) accepted", tt.url)
			}
			continue
		}
		if err != nil || rp.Config.RPID != tt.rpID || len(rp.Config.RPOrigins) != 1 || rp.Config.RPOrigins[0] != tt.origin {
			t.Errorf("NewRelyingParty(%q) = %+v, %v; want %s at %s", tt.url, rp, err, tt.rpID, tt.origin)
		}
	}
}
