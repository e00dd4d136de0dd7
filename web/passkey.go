package web

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/callvault/callvault"
)

// Passkeys (WebAuthn) are an alternative second factor. A fully signed-in
// user registers them on /mfa/passkeys; on /mfa, "Use a passkey" asks the
// browser for an assertion instead of a code. Each ceremony is two JSON
// requests, begin and finish; between them the challenge is kept here, in
// memory, for the session that began it, for at most passkeyCeremonyTTL,
// and is used at most once.

const (
	passkeyCeremonyTTL = 5 * time.Minute
	passkeyBodyLimit   = 64 << 10
	passkeyNameMax     = 60
)

// passkeyState is the Server's passkey machinery: the relying party,
// built on first use from PublicURL, and the ceremonies in progress.
type passkeyState struct {
	once sync.Once
	rp   *webauthn.WebAuthn
	err  error

	mu         sync.Mutex
	ceremonies map[string]passkeyCeremony // kind + ":" + session token hash
}

type passkeyCeremony struct {
	userID  int64
	name    string // registration: the name the user chose
	data    webauthn.SessionData
	expires time.Time
}

// NewRelyingParty configures WebAuthn for the address people use,
// publicURL (default http://localhost). Its host is the relying-party ID,
// which must be a domain name; a loopback IP address is taken as
// "localhost", which browsers treat as a secure context.
func NewRelyingParty(publicURL string) (*webauthn.WebAuthn, error) {
	if publicURL == "" {
		publicURL = "http://localhost"
	}
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("public URL %q: want http(s)://host[:port]", publicURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("public URL %q: passkeys need a domain name, not an IP address", publicURL)
		}
		host = "localhost"
	}
	origin := u.Scheme + "://" + host
	if p := u.Port(); p != "" {
		origin += ":" + p
	}
	return webauthn.New(&webauthn.Config{
		RPID:          host,
		RPDisplayName: "callvault",
		RPOrigins:     []string{origin},
	})
}

// relyingParty returns the configured relying party and the passkey store,
// or EUNAVAILABLE when passkeys cannot work on this server.
func (s *Server) relyingParty() (*webauthn.WebAuthn, callvault.PasskeyService, error) {
	st := &s.passkeys
	st.once.Do(func() { st.rp, st.err = NewRelyingParty(s.PublicURL) })
	store := s.Passkeys
	if store == nil {
		store, _ = s.MFA.(callvault.PasskeyService)
	}
	switch {
	case st.err != nil:
		return nil, nil, callvault.Wrap(callvault.EUNAVAILABLE, st.err, "passkeys are not available on this server; use a code")
	case store == nil:
		return nil, nil, callvault.Errorf(callvault.EUNAVAILABLE, "passkeys are not available on this server; use a code")
	}
	return st.rp, store, nil
}

func (s *Server) putCeremony(kind, sessionHash string, c passkeyCeremony) {
	st := &s.passkeys
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.Now()
	if st.ceremonies == nil {
		st.ceremonies = map[string]passkeyCeremony{}
	}
	for k, old := range st.ceremonies {
		if !now.Before(old.expires) {
			delete(st.ceremonies, k)
		}
	}
	c.expires = now.Add(passkeyCeremonyTTL)
	st.ceremonies[kind+":"+sessionHash] = c
}

// takeCeremony removes and returns the session's ceremony of kind: a
// challenge is answered once only.
func (s *Server) takeCeremony(kind, sessionHash string) (passkeyCeremony, bool) {
	st := &s.passkeys
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.ceremonies[kind+":"+sessionHash]
	delete(st.ceremonies, kind+":"+sessionHash)
	if !ok || sessionHash == "" || !s.Now().Before(c.expires) {
		return passkeyCeremony{}, false
	}
	return c, true
}

// passkeyUser adapts a user and their passkeys to webauthn.User.
type passkeyUser struct {
	u     *callvault.User
	creds []webauthn.Credential
}

// WebAuthnID is the user handle: the account number, nothing personal.
func (p passkeyUser) WebAuthnID() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(p.u.ID))
}
func (p passkeyUser) WebAuthnName() string { return p.u.Login }
func (p passkeyUser) WebAuthnDisplayName() string {
	if p.u.Name != "" {
		return p.u.Name
	}
	return p.u.Login
}
func (p passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

func credentialOf(p *callvault.Passkey) webauthn.Credential {
	tr := make([]protocol.AuthenticatorTransport, len(p.Transports))
	for i, t := range p.Transports {
		tr[i] = protocol.AuthenticatorTransport(t)
	}
	return webauthn.Credential{
		ID: p.CredentialID, PublicKey: p.PublicKey, Transport: tr,
		Flags:         webauthn.NewCredentialFlags(protocol.AuthenticatorFlags(p.Flags)),
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
	}
}

func (s *Server) passkeyUserOf(r *http.Request, store callvault.PasskeyService, u *callvault.User) (passkeyUser, []*callvault.Passkey, error) {
	ps, err := store.FindPasskeys(r.Context(), u.ID)
	if err != nil {
		return passkeyUser{}, nil, err
	}
	pu := passkeyUser{u: u}
	for _, p := range ps {
		pu.creds = append(pu.creds, credentialOf(p))
	}
	return pu, ps, nil
}

// passkeyRefused answers a JSON request with status and a message for the
// person, and records the refusal in the request's audit entry.
func (s *Server) passkeyRefused(w http.ResponseWriter, r *http.Request, status int, outcome, msg string) {
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) { e.Outcome, e.Reason = outcome, msg })
	var body apiError
	body.Error.Code, body.Error.Message = "passkey", msg
	s.Logger.Info("passkey refused", "path", r.URL.Path, "status", status, "reason", msg)
	writeJSON(w, status, body)
}

// passkeyAnswer reads the browser's answer and takes this session's pending
// ceremony of kind; on failure it has already answered the request.
func (s *Server) passkeyAnswer(w http.ResponseWriter, r *http.Request, kind, unreadable string) ([]byte, passkeyCeremony, bool) {
	a := actor(r.Context())
	body, err := readPasskeyBody(w, r)
	if err != nil {
		s.passkeyRefused(w, r, http.StatusBadRequest, callvault.OutcomeFailed, unreadable)
		return nil, passkeyCeremony{}, false
	}
	c, ok := s.takeCeremony(kind, a.Session.TokenHash)
	if !ok || c.userID != a.User.ID {
		s.passkeyRefused(w, r, http.StatusBadRequest, callvault.OutcomeFailed, "This passkey request has expired or was already used. Try again.")
		return nil, passkeyCeremony{}, false
	}
	return body, c, true
}

func readPasskeyBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, passkeyBodyLimit))
}

// passkeyLoginBegin starts signing in with a passkey: the options for
// navigator.credentials.get, limited to the user's own passkeys.
func (s *Server) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	u := actor(r.Context()).User
	rp, store, err := s.relyingParty()
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if ok, until := s.Throttle.Allowed(mfaThrottleKey(u.ID)); !ok {
		s.passkeyRefused(w, r, http.StatusTooManyRequests, callvault.OutcomeDenied, "Too many failed attempts. Try again after "+until.In(callvault.London).Format("15:04")+".")
		return
	}
	pu, _, err := s.passkeyUserOf(r, store, u)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if len(pu.creds) == 0 {
		s.passkeyRefused(w, r, http.StatusBadRequest, callvault.OutcomeFailed, "You have no passkey yet. Use a code from your authenticator app.")
		return
	}
	opts, data, err := rp.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		s.jsonError(w, r, callvault.Wrap(callvault.EINTERNAL, err, "the passkey request could not be prepared"))
		return
	}
	s.putCeremony("login", sessionHash(r), passkeyCeremony{userID: u.ID, data: *data})
	writeJSON(w, http.StatusOK, opts)
}

// passkeyLoginFinish checks the browser's assertion against the challenge
// this session was given and the user's own passkey, moves the passkey's
// signature counter forward (refusing a clone), and completes sign-in.
func (s *Server) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	a := actor(r.Context())
	u := a.User
	rp, store, err := s.relyingParty()
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	key := mfaThrottleKey(u.ID)
	if ok, until := s.Throttle.Allowed(key); !ok {
		s.passkeyRefused(w, r, http.StatusTooManyRequests, callvault.OutcomeDenied, "Too many failed attempts. Try again after "+until.In(callvault.London).Format("15:04")+".")
		return
	}
	body, c, ok := s.passkeyAnswer(w, r, "login", "The passkey answer could not be read.")
	if !ok {
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		s.passkeyRefused(w, r, http.StatusBadRequest, callvault.OutcomeFailed, "The passkey answer is not valid.")
		return
	}
	deny := func(msg string) {
		s.Throttle.Fail(key)
		s.passkeyRefused(w, r, http.StatusUnauthorized, callvault.OutcomeDenied, msg)
	}
	pu, ps, err := s.passkeyUserOf(r, store, u)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	var pk *callvault.Passkey
	for _, p := range ps {
		if bytes.Equal(p.CredentialID, parsed.RawID) {
			pk = p
		}
	}
	if pk == nil {
		deny("That passkey is not registered to your account.")
		return
	}
	if _, err := rp.ValidateLogin(pu, c.data, parsed); err != nil {
		s.Logger.Info("passkey assertion rejected", "user", u.ID, "err", err)
		deny("The passkey could not be verified.")
		return
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "user", strconv.FormatInt(u.ID, 10)
		e.Details = map[string]string{"method": "passkey", "passkey": strconv.FormatInt(pk.ID, 10)}
	})
	counter := parsed.Response.AuthenticatorData.Counter
	if err := store.UpdatePasskeyUse(r.Context(), pk.ID, counter, s.Now()); err != nil {
		if callvault.ErrorCode(err) == callvault.ECONFLICT {
			s.Logger.Warn("passkey signature counter went back: possible cloned authenticator", "user", u.ID, "passkey", pk.ID, "counter", counter, "stored", pk.SignCount)
			deny("This passkey cannot be trusted (its counter went back). Use a code and tell Technical Support.")
			return
		}
		s.jsonError(w, r, err)
		return
	}
	if err := s.MFA.MarkSessionMFA(r.Context(), a.Session.TokenHash); err != nil {
		s.jsonError(w, r, err)
		return
	}
	s.Throttle.Reset(key)
	writeJSON(w, http.StatusOK, map[string]string{"next": safeNext(r.URL.Query().Get("next"))})
}

// passkeysPage lists the user's passkeys and offers to add one.
func (s *Server) passkeysPage(w http.ResponseWriter, r *http.Request) {
	u := actor(r.Context()).User
	_, store, err := s.relyingParty()
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	ps, err := store.FindPasskeys(r.Context(), u.ID)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "passkeys", map[string]any{"Title": "Passkeys", "Passkeys": ps,
		"Added": r.URL.Query().Get("added") == "1"})
}

// passkeyRegisterBegin starts registering a passkey for the signed-in user:
// the options for navigator.credentials.create. Form field "name" names it.
func (s *Server) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	u := actor(r.Context()).User
	rp, store, err := s.relyingParty()
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	pu, ps, err := s.passkeyUserOf(r, store, u)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	name := strings.Join(strings.Fields(r.PostFormValue("name")), " ")
	if name == "" {
		name = "Passkey " + strconv.Itoa(len(ps)+1)
	}
	if len([]rune(name)) > passkeyNameMax {
		s.passkeyRefused(w, r, http.StatusBadRequest, callvault.OutcomeFailed, fmt.Sprintf("Give the passkey a name of at most %d characters.", passkeyNameMax))
		return
	}
	exclude := make([]protocol.CredentialDescriptor, len(pu.creds))
	for i := range pu.creds {
		exclude[i] = pu.creds[i].Descriptor()
	}
	opts, data, err := rp.BeginRegistration(pu,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationPreferred}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithExclusions(exclude))
	if err != nil {
		s.jsonError(w, r, callvault.Wrap(callvault.EINTERNAL, err, "the passkey request could not be prepared"))
		return
	}
	s.putCeremony("register", sessionHash(r), passkeyCeremony{userID: u.ID, name: name, data: *data})
	writeJSON(w, http.StatusOK, opts)
}

// passkeyRegisterFinish checks the new credential against the challenge
// this session was given and stores it.
func (s *Server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request) {
	a := actor(r.Context())
	u := a.User
	rp, store, err := s.relyingParty()
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	body, c, ok := s.passkeyAnswer(w, r, "register", "The passkey could not be read.")
	if !ok {
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		s.passkeyRefused(w, r, http.StatusBadRequest, callvault.OutcomeFailed, "The new passkey is not valid.")
		return
	}
	pu, _, err := s.passkeyUserOf(r, store, u)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	cred, err := rp.CreateCredential(pu, c.data, parsed)
	if err != nil {
		s.Logger.Info("passkey registration rejected", "user", u.ID, "err", err)
		s.passkeyRefused(w, r, http.StatusBadRequest, callvault.OutcomeFailed, "The new passkey could not be verified.")
		return
	}
	p := &callvault.Passkey{UserID: u.ID, CredentialID: cred.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		AAGUID: cred.Authenticator.AAGUID, Flags: byte(cred.Flags.ProtocolValue()), Name: c.name}
	for _, t := range cred.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID = "user", strconv.FormatInt(u.ID, 10)
	})
	if err := store.AddPasskey(r.Context(), p); err != nil {
		if callvault.ErrorCode(err) == callvault.ECONFLICT {
			s.passkeyRefused(w, r, http.StatusConflict, callvault.OutcomeFailed, "This passkey is already registered.")
			return
		}
		s.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"next": "/mfa/passkeys?added=1"})
}
