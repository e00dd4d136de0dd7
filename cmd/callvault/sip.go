package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/recorder"
)

// sipFlags configure the SIPREC recording server of serve.
type sipFlags struct {
	addr       string
	tlsAddr    string
	tlsCert    string
	tlsKey     string
	tlsCA      string
	allow      string
	mediaIP    string
	rtpPorts   string
	inactivity time.Duration
	authFile   string
}

func (f *sipFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "sip", "127.0.0.1:5060", "address of the SIPREC recording server (UDP and TCP); \"off\" to disable")
	fs.StringVar(&f.tlsAddr, "sip-tls", "", "also take SIPREC over TLS on this address (e.g. 192.0.2.5:5061); needs --sip-tls-cert and --sip-tls-key. Use SRTP (RTP/SAVP) on TLS deployments")
	fs.StringVar(&f.tlsCert, "sip-tls-cert", "", "PEM certificate chain for --sip-tls")
	fs.StringVar(&f.tlsKey, "sip-tls-key", "", "PEM private key for --sip-tls (keep it mode 0600)")
	fs.StringVar(&f.tlsCA, "sip-tls-client-ca", "", "PEM certificates of the CAs whose client certificates --sip-tls requires (mutual TLS): a recording client must present one they signed")
	fs.StringVar(&f.allow, "sip-allow", "127.0.0.1/8,::1", "recording clients (SBC or phone system) allowed to open sessions: comma-separated addresses or prefixes")
	fs.StringVar(&f.mediaIP, "sip-media-ip", "", "address RTP is received on and announced in SDP answers (default: the --sip host)")
	fs.StringVar(&f.rtpPorts, "rtp-ports", "20000-39998", "UDP port range for RTP, one even port per stream")
	fs.DurationVar(&f.inactivity, "sip-inactivity", recorder.DefaultInactivity, "end a recording session that has received no RTP for this long (BYE lost)")
	fs.StringVar(&f.authFile, "sip-auth", "", "also require SIP digest authentication of recording clients: a file (mode 0600) of user:password lines")
}

// readSIPAuth reads a file of user:password lines (blank lines and lines
// starting with # are skipped). The passwords are never logged.
func readSIPAuth(path string) (map[string]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--sip-auth: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--sip-auth %s: readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--sip-auth: %w", err)
	}
	users := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, password, ok := strings.Cut(line, ":")
		if !ok || user == "" || password == "" || strings.ContainsAny(user, " \t\"") {
			return nil, fmt.Errorf("--sip-auth %s line %d: use user:password", path, i+1)
		}
		if len(password) < 12 {
			return nil, fmt.Errorf("--sip-auth %s line %d: the password of %s is shorter than 12 characters", path, i+1, user)
		}
		users[user] = password
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("--sip-auth %s: no user:password line", path)
	}
	return users, nil
}

// readClientCAs reads the PEM certificates of --sip-tls-client-ca. A file
// with no certificate in it is an error, not a pool that trusts nobody.
func readClientCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--sip-tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--sip-tls-client-ca %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// startRecorder starts the SIPREC server, after storing the recordings of
// sessions a crash interrupted. nil when --sip off.
func (f *sipFlags) startRecorder(ctx context.Context, e *env, dep *deployment, space interface{ Admit() error }, alert func(recorder.StoreAlert)) (*recorder.Recorder, error) {
	if f.addr == "off" {
		return nil, nil
	}
	ap, err := netip.ParseAddrPort(f.addr)
	if err != nil {
		return nil, fmt.Errorf("--sip %q: use host:port with an IP address", f.addr)
	}
	allow, err := recorder.ParseAllow(f.allow)
	if err != nil {
		return nil, fmt.Errorf("--sip-allow: %w", err)
	}
	media := ap.Addr()
	if f.mediaIP != "" {
		if media, err = netip.ParseAddr(f.mediaIP); err != nil {
			return nil, fmt.Errorf("--sip-media-ip %q: %w", f.mediaIP, err)
		}
	} else if media.IsUnspecified() {
		return nil, fmt.Errorf("--sip %s listens on every address: give --sip-media-ip, the address phones' RTP should reach", f.addr)
	}
	lo, hi, ok := strings.Cut(f.rtpPorts, "-")
	pmin, err1 := strconv.Atoi(strings.TrimSpace(lo))
	pmax, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("--rtp-ports %q: use FIRST-LAST, e.g. 20000-39998", f.rtpPorts)
	}
	src, err := dep.findOrCreateSource(ctx, "siprec", callvault.SourceSIPREC)
	if err != nil {
		return nil, err
	}
	listen := []recorder.Listener{{Network: "udp", Addr: f.addr}, {Network: "tcp", Addr: f.addr}}
	if f.tlsAddr != "" {
		if f.tlsCert == "" || f.tlsKey == "" {
			return nil, fmt.Errorf("--sip-tls needs --sip-tls-cert and --sip-tls-key")
		}
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--sip-tls-cert/--sip-tls-key: %w", err)
		}
		conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if f.tlsCA != "" {
			if conf.ClientCAs, err = readClientCAs(f.tlsCA); err != nil {
				return nil, err
			}
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
		listen = append(listen, recorder.Listener{Network: "tls", Addr: f.tlsAddr, TLS: conf})
	} else if f.tlsCA != "" {
		return nil, fmt.Errorf("--sip-tls-client-ca is for --sip-tls, which is not set")
	}
	var users map[string]string
	if f.authFile != "" {
		if users, err = readSIPAuth(f.authFile); err != nil {
			return nil, err
		}
	}
	r := &recorder.Recorder{
		Credentials: users,
		Listen:      listen,
		Allow:       allow,
		MediaIP:     media,
		PortMin:     pmin,
		PortMax:     pmax,
		SpoolDir:    filepath.Join(dep.dataDir, "spool"),
		Inactivity:  f.inactivity,
		Archive:     dep.archive,
		Source:      src,
		Academies:   dep.academies,
		Space:       space,
		Logger:      e.logger,
	}
	// Sessions a crash cut short become recordings, marked interrupted,
	// before new ones are taken. A spool that cannot be read or stored is
	// kept (and logged) for the next start; it does not stop this one.
	if n, err := r.Recover(ctx); err != nil {
		e.logger.Error("some interrupted recordings could not be recovered yet; their spools are kept", "err", err, "recovered", n)
	} else if n > 0 {
		e.logger.Warn("stored the recordings of sessions interrupted by a crash", "count", n)
	}
	if err := r.Start(ctx); err != nil {
		return nil, err
	}
	e.logger.Info("SIPREC recording server listening", "sip", f.addr, "media", media, "rtp_ports", f.rtpPorts, "allow", f.allow,
		"digest_users", len(users))
	return r, nil
}

// sipCollector exports the recorder's counters to /metrics.
type sipCollector struct {
	rec                         *recorder.Recorder
	active, started, rejections *prometheus.Desc
	ended                       *prometheus.Desc
	rtp, jitter, codecs         *prometheus.Desc
	pending, storeFailures      *prometheus.Desc
}

func newSIPCollector(rec *recorder.Recorder) *sipCollector {
	return &sipCollector{rec: rec,
		active:        prometheus.NewDesc("callvault_sip_sessions_active", "SIPREC recording sessions in progress.", nil, nil),
		started:       prometheus.NewDesc("callvault_sip_sessions_total", "SIPREC recording sessions answered since start.", nil, nil),
		ended:         prometheus.NewDesc("callvault_sip_sessions_ended_total", "SIPREC recording sessions ended, by why: bye, no_rtp (--sip-inactivity: an SBC that sends no BYE, or RTP that does not arrive), session_timer_expired and session_refresh_failed (RFC 4028), server_stopping.", []string{"why"}, nil),
		rejections:    prometheus.NewDesc("callvault_sip_rejected_total", "INVITEs refused, by SIP status (403 not a recording client, 422 session interval too small, 488 not SIPREC or no codec, 503 storage or capacity; 0 dropped unanswered).", []string{"code"}, nil),
		rtp:           prometheus.NewDesc("callvault_rtp_packets_total", "RTP datagrams of recording sessions, by what became of them: recorded (RTP from the right source), lost (filled with silence), late, duplicate, wrong_source, auth_failed (SRTP), undecodable, malformed.", []string{"kind"}, nil),
		jitter:        prometheus.NewDesc("callvault_rtp_jitter_seconds", "Largest RFC 3550 interarrival jitter of any stream in progress.", nil, nil),
		pending:       prometheus.NewDesc("callvault_sip_recordings_pending", "Recordings of ended sessions waiting in the spool to be stored (the database or storage is failing when this stays above 0).", nil, nil),
		storeFailures: prometheus.NewDesc("callvault_sip_store_failures_total", "Attempts to store a SIPREC recording that failed (each is retried; the audio stays in the spool).", nil, nil),
		codecs:        prometheus.NewDesc("callvault_rtp_codec_packets_total", "RTP packets of recording sessions by payload (PCMU, PCMA, G722, opus, telephone-event, CN, unknown).", []string{"codec"}, nil),
	}
}

func (c *sipCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.started
	ch <- c.rejections
	ch <- c.ended
	ch <- c.rtp
	ch <- c.jitter
	ch <- c.codecs
	ch <- c.pending
	ch <- c.storeFailures
}

func (c *sipCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.rec.Counts()
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(n.Active))
	ch <- prometheus.MustNewConstMetric(c.started, prometheus.CounterValue, float64(n.Started))
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n.Pending))
	ch <- prometheus.MustNewConstMetric(c.storeFailures, prometheus.CounterValue, float64(n.StoreFailures))
	for code, v := range n.Rejected {
		ch <- prometheus.MustNewConstMetric(c.rejections, prometheus.CounterValue, float64(v), strconv.Itoa(code))
	}
	for why, v := range n.Ended {
		ch <- prometheus.MustNewConstMetric(c.ended, prometheus.CounterValue, float64(v), why)
	}
	t := c.rec.Totals()
	for kind, v := range map[string]uint64{"recorded": t.Packets, "lost": t.Lost, "late": t.Late, "duplicate": t.Duplicates,
		"wrong_source": t.WrongSource, "auth_failed": t.AuthFailed, "undecodable": t.Undecodable, "malformed": t.Malformed} {
		ch <- prometheus.MustNewConstMetric(c.rtp, prometheus.CounterValue, float64(v), kind)
	}
	ch <- prometheus.MustNewConstMetric(c.jitter, prometheus.GaugeValue, t.Jitter.Seconds())
	for codec, v := range t.Codecs {
		ch <- prometheus.MustNewConstMetric(c.codecs, prometheus.CounterValue, float64(v), codec)
	}
}
