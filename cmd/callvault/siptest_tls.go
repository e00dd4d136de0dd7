package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"
)

// sipTestTLS are the flags of sip test for a recorder's TLS listener.
type sipTestTLS struct {
	on                  bool
	ca, name, cert, key string
}

func (f *sipTestTLS) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "tls", false, "send over TLS: --sip is then serve's --sip-tls address")
	fs.StringVar(&f.ca, "tls-ca", "", "PEM certificates of the CAs that sign the recorder's certificate (default: the system's)")
	fs.StringVar(&f.name, "tls-name", "", "the name the recorder's certificate must bear (default: --sip's address)")
	fs.StringVar(&f.cert, "tls-cert", "", "this machine's PEM client certificate, when serve has --sip-tls-client-ca")
	fs.StringVar(&f.key, "tls-key", "", "the private key of --tls-cert")
}

// config is the TLS configuration the flags describe.
func (f *sipTestTLS) config(server netip.AddrPort) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.name}
	if conf.ServerName == "" {
		conf.ServerName = server.Addr().String()
	}
	if f.ca != "" {
		b, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", f.ca)
		}
	}
	if (f.cert == "") != (f.key == "") {
		return nil, fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if f.cert != "" {
		cert, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// probeTLS opens a TLS connection to the recorder before any SIP, so that
// a TLS problem is reported as what it is rather than as a SIP request
// that went unanswered: an untrusted or misnamed recorder certificate, a
// client certificate the recorder refused (with TLS 1.3 that alert comes
// after the handshake, so the probe reads briefly), or a connection closed
// at once (an address outside --sip-allow).
func probeTLS(server netip.AddrPort, conf *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", server.String(), conf)
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil // the recorder waits for SIP: the connection is good
		}
	}
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case err == nil:
		return fmt.Errorf("TLS to %s: the recorder sent data before any request: is that serve's --sip-tls address?", server)
	case errors.As(err, &unknown):
		return fmt.Errorf("TLS to %s: the recorder's certificate is signed by a CA this machine does not trust; give --tls-ca", server)
	case errors.As(err, &host):
		return fmt.Errorf("TLS to %s: the recorder's certificate is not for %s; give --tls-name with a name it bears (%v)", server, conf.ServerName, err)
	case strings.Contains(err.Error(), "certificate required"), strings.Contains(err.Error(), "bad certificate"),
		strings.Contains(err.Error(), "unknown certificate authority"), strings.Contains(err.Error(), "certificate expired"):
		return fmt.Errorf("TLS to %s: the recorder refused this machine's client certificate (%v); give --tls-cert and --tls-key, signed by a CA in serve's --sip-tls-client-ca", server, err)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), strings.Contains(err.Error(), "connection reset"):
		return fmt.Errorf("TLS to %s: the recorder closed the connection at once: add this address to serve's --sip-allow", server)
	}
	return fmt.Errorf("TLS to %s: %v: is serve running with --sip-tls on that address, and does a firewall let it through?", server, err)
}
