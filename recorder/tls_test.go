package recorder_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callvault-srs"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// tlsFixture is a fixture that also takes SIP over TLS with conf, on the
// port it returns.
func tlsFixture(t *testing.T, conf *tls.Config) (*fixture, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	f := newFixture(t, func(r *recorder.Recorder) {
		r.Listen = append(r.Listen, recorder.Listener{Network: "tls", Addr: fmt.Sprintf("127.0.0.1:%d", port), TLS: conf})
	})
	return f, port
}

// Signalling over TLS, with SRTP media, as a TLS deployment should run.
func TestRecordsOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	f, port := tlsFixture(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("the TLS listener does not answer: %v", err)
	} else {
		conn.Close()
	}
	c, err := siprectest.NewTLSClient(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := make([]byte, 30)
	rand.Read(key)
	caller, callee := audio.SpeechLike(7, 8000, 8000), audio.SpeechLike(8, 8000, 8000)
	if _, err := c.Run(context.Background(), siprectest.Call{CallID: "tls@sbc", SRTPKey: key,
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"},
		CallerAudio: caller, CalleeAudio: callee}); err != nil {
		t.Fatal(err)
	}
	left, _ := f.channels(t, f.waitRecording(t, "tls@sbc"))
	if _, ok := audio.Find(left, g711RoundTrip(caller, "PCMU")); ok < 0.99 {
		t.Fatal("the TLS session's recording does not hold the audio sent")
	}
}

// testCA makes a certificate authority and a function that issues client
// certificates signed by it.
func testCA(t *testing.T) (*x509.CertPool, func(cn string) tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "trust SBC CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	serial := int64(10)
	return pool, func(cn string) tls.Certificate {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		leaf := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		d, err := x509.CreateCertificate(rand.Reader, leaf, ca, &k.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{d}, PrivateKey: k}
	}
}

// Mutual TLS: with client CAs configured, a recording client without a
// certificate, or with one another CA signed, opens no session; one with a
// certificate the trust's CA signed records.
func TestTLSClientCertificates(t *testing.T) {
	cert, pool := selfSigned(t)
	cas, issue := testCA(t)
	_, otherIssue := testCA(t)
	f, port := tlsFixture(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: cas})
	// Refused in the handshake: with TLS 1.3 the client hears it at its
	// first read.
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		alert string
	}{
		{"no certificate", nil, "remote error: tls: certificate required"},
		{"another CA's", []tls.Certificate{otherIssue("sbc.example")}, "remote error: tls: unknown certificate authority"},
	} {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: tc.certs})
		if err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			conn.Write([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n"))
			_, err = conn.Read(make([]byte, 100))
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.alert) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.alert)
		}
	}
	c, err := siprectest.NewTLSClient(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{issue("sbc.example")}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pcm := audio.SpeechLike(9, 8000, 8000)
	if _, err := c.Run(context.Background(), siprectest.Call{CallID: "mtls@sbc", CallerAudio: pcm, CalleeAudio: pcm,
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}}); err != nil {
		t.Fatal(err)
	}
	if n := f.rec.Counts(); n.Started != 1 {
		t.Errorf("%d sessions started; want 1, the client with the trust's certificate", n.Started)
	}
	left, _ := f.channels(t, f.waitRecording(t, "mtls@sbc"))
	if _, ok := audio.Find(left, g711RoundTrip(pcm, "PCMU")); ok < 0.99 {
		t.Errorf("the mutual-TLS session's audio is not in its recording (%.1f%%)", 100*ok)
	}
}
