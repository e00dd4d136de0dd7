package recorder

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// signed is an INVITE to the recorder with an Authorization answering
// chal for uri.
func signed(t *testing.T, chal *digest.Challenge, user, password, uri string) *sip.Request {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri("sip:srs@127.0.0.1:5060", &u); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, u)
	cred, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: uri, Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	return req
}

func TestDigestNonces(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	a := newDigestAuth("", map[string]string{"sbc": "s3cret"}, func() time.Time { return now })
	hs := a.challenges(false)
	if len(hs) != 2 || !strings.Contains(hs[0].Value(), "SHA-256") || !strings.Contains(hs[1].Value(), "MD5") ||
		!strings.Contains(hs[0].Value(), `realm="callvault"`) {
		t.Fatalf("challenges %v; want SHA-256 then MD5 in realm callvault", hs)
	}
	const uri = "sip:srs@127.0.0.1:5060"
	for i, h := range hs {
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := a.check(signed(t, chal, "sbc", "s3cret", uri)); !ok {
			t.Errorf("challenge %d: the right answer is refused", i)
		}
		if ok, _ := a.check(signed(t, chal, "sbc", "S3cret", uri)); ok {
			t.Errorf("challenge %d: a wrong password is accepted", i)
		}
		if ok, _ := a.check(signed(t, chal, "sbc", "s3cret", "sip:srs@192.0.2.9:5060")); ok {
			t.Errorf("challenge %d: an answer for another Request-URI is accepted", i)
		}
		forged := *chal
		forged.Nonce = a.nonce(now)[:10] + "AAAAAAAAAAAAAAAAAAAAAA"
		if ok, stale := a.check(signed(t, &forged, "sbc", "s3cret", uri)); ok || stale {
			t.Errorf("challenge %d: a nonce the recorder did not make is accepted (stale %v)", i, stale)
		}
		other := newDigestAuth("", map[string]string{"sbc": "s3cret"}, func() time.Time { return now })
		if ok, _ := other.check(signed(t, chal, "sbc", "s3cret", uri)); ok {
			t.Errorf("challenge %d: another process's (a restart's) nonce is accepted", i)
		}
	}
	chal, _ := digest.ParseChallenge(hs[0].Value())
	req := signed(t, chal, "sbc", "s3cret", uri)
	now = now.Add(nonceLifetime + time.Second)
	if ok, stale := a.check(req); ok || !stale {
		t.Errorf("an expired nonce: ok %v, stale %v; want refused as stale", ok, stale)
	}
	if !strings.Contains(a.challenges(true)[0].Value(), "stale=true") {
		t.Errorf("the challenge after a stale nonce does not say stale=true")
	}
}
