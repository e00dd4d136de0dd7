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

// Signalling over TLS, with SRTP media, as a TLS deployment should run.
func TestRecordsOverTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	f := newFixture(t, func(r *recorder.Recorder) {
		r.Listen = append(r.Listen, recorder.Listener{Network: "tls", Addr: fmt.Sprintf("127.0.0.1:%d", port),
			TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	})
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
