package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `callvault sip test` against a running serve that asks for digest
// authentication: refused with a 401 and what to do without credentials;
// with them, a session whose stored recording holds both channels exactly.
func TestSIPTestCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	data, dir := t.TempDir(), t.TempDir()
	auth, pw := filepath.Join(dir, "sip-auth"), filepath.Join(dir, "pw")
	if err := os.WriteFile(auth, []byte("# the SBC\nsbc:correct horse battery\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte("correct horse battery\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c0, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c0.LocalAddr().(*net.UDPAddr).Port
	c0.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := l.Addr().String()
	l.Close()
	pki := writePKI(t, dir)
	srv, url := startServe(t, data, port, "--sip-auth="+auth, "--sip-tls="+tlsAddr, "--sip-tls-cert="+pki.serverCert,
		"--sip-tls-key="+pki.serverKey, "--sip-tls-client-ca="+pki.ca)
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	out, _, err := cli(t, "sip", "test", "--data="+data, "--sip="+addr, "--seconds=1", "--wait=5s")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--password-file") {
		t.Errorf("without credentials: %v\n%s; want a 401 saying to give --user and --password-file", err, out)
	}
	for _, args := range [][]string{{"--codec=PCMA"}, {"--codec=PCMU", "--srtp"}} {
		out, _, err = cli(t, append([]string{"sip", "test", "--data=" + data, "--sip=" + addr, "--seconds=2", "--user=sbc", "--password-file=" + pw}, args...)...)
		if err != nil || !strings.Contains(out, "OK: the recorder answered") || strings.Count(out, "100.00% of the samples sent are there") != 2 {
			t.Errorf("sip test %v: %v\n%s", args, err, out)
		}
	}
	// Over TLS with mutual authentication: each thing missing is named.
	creds := []string{"sip", "test", "--data=" + data, "--sip=" + tlsAddr, "--seconds=1", "--wait=5s", "--user=sbc", "--password-file=" + pw, "--tls"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give --tls-ca"},
		{[]string{"--tls-ca=" + pki.ca}, "refused this machine's client certificate"},
		{[]string{"--tls-ca=" + pki.ca, "--tls-name=recorder.example", "--tls-cert=" + pki.clientCert, "--tls-key=" + pki.clientKey}, "give --tls-name"},
		{[]string{"--tls-ca=" + pki.ca, "--tls-cert=" + pki.clientCert}, "--tls-cert and --tls-key go together"},
	} {
		out, _, err := cli(t, append(creds, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sip test --tls %v: %v\n%s; want an error saying %q", tc.args, err, out, tc.want)
		}
	}
	if _, _, err := cli(t, "sip", "test", "--data="+data, "--sip="+addr, "--tls-ca="+pki.ca); err == nil || !strings.Contains(err.Error(), "are for --tls") {
		t.Errorf("--tls-ca without --tls: %v", err)
	}
	out, _, err = cli(t, append(creds, "--seconds=2", "--srtp", "--tls-ca="+pki.ca, "--tls-cert="+pki.clientCert, "--tls-key="+pki.clientKey)...)
	if err != nil || strings.Count(out, "100.00% of the samples sent are there") != 2 || !strings.Contains(out, "RTP/SAVP") {
		t.Errorf("sip test over mutual TLS with SRTP: %v\n%s", err, out)
	}
	if m := metrics(t, url); !strings.Contains(m, `callvault_rtp_codec_packets_total{codec="PCMA"} `) || !strings.Contains(m, `callvault_rtp_codec_packets_total{codec="PCMU"} `) ||
		!strings.Contains(m, `callvault_sip_rejected_total{code="401"} `) || !strings.Contains(m, `callvault_sip_sessions_ended_total{why="bye"} 3`) {
		t.Errorf("/metrics lacks the codecs, the 401 or the 3 sessions ended by BYE:\n%s", m)
	}
}

// --sip-auth files: user:password lines, private, passwords of 12
// characters or more; anything else stops serve with the line to fix.
func TestReadSIPAuth(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	users, err := readSIPAuth(write("ok", "# SBCs\nsbc-a:correct horse battery\n\nsbc-b:staple:with:colons\n", 0o600))
	if err != nil || len(users) != 2 || users["sbc-a"] != "correct horse battery" || users["sbc-b"] != "staple:with:colons" {
		t.Errorf("readSIPAuth = %v, %v", users, err)
	}
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"public", "sbc:correct horse battery\n", 0o644, "chmod 600"},
		{"short", "sbc:short\n", 0o600, "shorter than 12"},
		{"no colon", "sbc correct horse battery\n", 0o600, "line 1: use user:password"},
		{"empty", "# nothing\n", 0o600, "no user:password line"},
	} {
		_, err := readSIPAuth(write(tc.name, tc.body, tc.mode))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error saying %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "battery") {
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
	}
}

func TestReadClientCAs(t *testing.T) {
	dir := t.TempDir()
	pki := writePKI(t, dir)
	if pool, err := readClientCAs(pki.ca); err != nil || pool == nil {
		t.Errorf("readClientCAs(a CA certificate) = %v, %v", pool, err)
	}
	bad := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(bad, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{bad: "no PEM certificate", filepath.Join(dir, "missing.pem"): "no such file"} {
		if _, err := readClientCAs(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("readClientCAs(%s) = %v; want an error saying %q", filepath.Base(path), err, want)
		}
	}
}

// pki is a test CA's files: its certificate, a server certificate for
// 127.0.0.1 and a client certificate, both signed by it, and their keys.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func writePKI(t *testing.T, dir string) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trust SBC CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name string, block *pem.Block) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, tmpl *x509.Certificate) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		k, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}), write(name+"-key.pem", &pem.Block{Type: "EC PRIVATE KEY", Bytes: k})
	}
	var p pki
	p.ca = write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	p.serverCert, p.serverKey = leaf("recorder", 2, &x509.Certificate{Subject: pkix.Name{CommonName: "recorder"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	p.clientCert, p.clientKey = leaf("sbc", 3, &x509.Certificate{Subject: pkix.Name{CommonName: "sbc.example"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return p
}
