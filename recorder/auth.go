package recorder

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest authentication (RFC 3261 §22, RFC 8760) of recording clients, on
// top of the address allow-list: when Recorder.Credentials is set, an
// INVITE that opens a session must carry an Authorization the recorder
// challenged for. Requests inside a session (ACK, BYE, re-INVITE, UPDATE)
// belong to a dialog that was authenticated when it opened.
//
// Nonces are stateless: the time they were made and an HMAC of it under a
// key drawn at start, so any nonce this process made in the last
// nonceLifetime is good and nothing is stored per challenge. A nonce from
// before a restart fails and the client is challenged again.

// DefaultRealm is the digest realm when Recorder.Realm is empty.
const DefaultRealm = "callvault"

// nonceLifetime is how long a challenge's nonce may be answered.
const nonceLifetime = 5 * time.Minute

// digestAlgorithms are offered in order of preference; MD5 last, for the
// SBCs that know nothing else.
var digestAlgorithms = []string{"SHA-256", "MD5"}

type digestAuth struct {
	realm string
	users map[string]string
	key   [32]byte
	now   func() time.Time
}

func newDigestAuth(realm string, users map[string]string, now func() time.Time) *digestAuth {
	a := &digestAuth{realm: realm, users: users, now: now}
	if a.realm == "" {
		a.realm = DefaultRealm
	}
	rand.Read(a.key[:]) // never fails (crypto/rand panics instead)
	return a
}

func (a *digestAuth) nonce(t time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.Unix()))
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// fresh reports whether the nonce is one of ours, and whether it is still
// in its lifetime.
func (a *digestAuth) fresh(nonce string) (ours, inTime bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	made := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	if !hmac.Equal([]byte(a.nonce(made)), []byte(nonce)) {
		return false, false
	}
	age := a.now().Sub(made)
	return true, age >= -time.Minute && age <= nonceLifetime
}

// challenges are the WWW-Authenticate headers of a 401; stale says the
// client's nonce had expired (it may retry without asking its user).
func (a *digestAuth) challenges(stale bool) []sip.Header {
	nonce := a.nonce(a.now())
	var hs []sip.Header
	for _, alg := range digestAlgorithms {
		c := digest.Challenge{Realm: a.realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		hs = append(hs, sip.NewHeader("WWW-Authenticate", c.String()))
	}
	return hs
}

// check verifies a request's Authorization. It returns whether the
// request is authenticated, and whether a failure was only a stale nonce.
func (a *digestAuth) check(req *sip.Request) (ok, stale bool) {
	for _, h := range req.GetHeaders("Authorization") {
		creds, err := digest.ParseCredentials(h.Value())
		if err != nil || creds.Realm != a.realm || creds.Userhash || !strings.EqualFold(creds.QOP, "auth") {
			continue
		}
		password, known := a.users[creds.Username]
		alg := ""
		for _, x := range digestAlgorithms {
			if strings.EqualFold(creds.Algorithm, x) || creds.Algorithm == "" && x == "MD5" {
				alg = x
			}
		}
		if alg == "" {
			continue
		}
		ours, inTime := a.fresh(creds.Nonce)
		if !ours {
			continue
		}
		chal := digest.Challenge{Realm: a.realm, Nonce: creds.Nonce, Algorithm: alg, QOP: []string{"auth"}}
		want, err := digest.Digest(&chal, digest.Options{Method: string(req.Method), URI: creds.URI,
			Username: creds.Username, Password: password, Cnonce: creds.Cnonce, Count: creds.Nc})
		if err != nil {
			continue
		}
		// Unknown users are checked against an empty password, so that
		// timing does not tell which user names exist.
		match := subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(creds.Response))) == 1
		if match && known && (creds.URI == req.Recipient.String() || sameURI(creds.URI, req.Recipient)) {
			if inTime {
				return true, false
			}
			stale = true
		}
	}
	return false, stale
}

// sameURI compares the digest uri with the Request-URI loosely: clients
// differ in whether they keep parameters.
func sameURI(s string, u sip.Uri) bool {
	var v sip.Uri
	if err := sip.ParseUri(s, &v); err != nil {
		return false
	}
	return strings.EqualFold(v.Host, u.Host) && v.User == u.User && v.Port == u.Port
}
