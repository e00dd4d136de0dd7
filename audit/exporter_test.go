package audit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestFileExporter(t *testing.T) {
	s := goldenSigner(t)
	path := filepath.Join(t.TempDir(), "checkpoints.jsonl")
	f := &FileExporter{Path: path}
	ctx := context.Background()

	if cps, err := f.Checkpoints(); err != nil || len(cps) != 0 {
		t.Errorf("Checkpoints() of a missing file = %v, %v; want none", cps, err)
	}
	want := []*Checkpoint{s.Sign(1, goldenHash, t0), s.Sign(5, goldenHash, t0.Add(time.Minute)), s.Sign(9, goldenHash, t0.Add(2*time.Minute))}
	for _, c := range want[:2] {
		if err := f.Export(ctx, c); err != nil {
			t.Fatalf("Export(seq %d) = %v", c.Seq, err)
		}
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("mode of %s = %v, %v; want 0600", path, fi.Mode().Perm(), err)
		}
	}
	// A crash in the middle of an append leaves a torn line; the next
	// append cuts it off.
	line, _ := checkpointLine(s.Sign(7, goldenHash, t0))
	af, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	af.Write(line[:50])
	af.Close()
	if _, err := f.Checkpoints(); err == nil {
		t.Fatal("Checkpoints() of a file with a torn line = nil error")
	}
	if err := f.Export(ctx, want[2]); err != nil {
		t.Fatalf("Export(after a torn line) = %v", err)
	}

	got, err := f.Checkpoints()
	if err != nil || !sameCheckpoints(got, want) {
		t.Fatalf("Checkpoints() = %+v, %v; want %+v", got, err, want)
	}
	data, _ := os.ReadFile(path)
	if lines := strings.Count(string(data), "\n"); lines != 3 || !bytes.HasSuffix(data, []byte("}\n")) {
		t.Errorf("%s holds %d lines, want 3 JSON lines:\n%s", path, lines, data)
	}
	for _, c := range got {
		if err := c.Verify(s.PublicKey()); err != nil {
			t.Errorf("checkpoint read back: Verify = %v", err)
		}
	}

	// Concurrent exports do not interleave.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := f.Export(ctx, s.Sign(int64(100+i), goldenHash, t0)); err != nil {
				t.Errorf("Export = %v", err)
			}
		})
	}
	wg.Wait()
	if got, err := f.Checkpoints(); err != nil || len(got) != 23 {
		t.Errorf("after 20 concurrent exports Checkpoints() = %d, %v; want 23", len(got), err)
	}

	bad := &FileExporter{Path: filepath.Join(t.TempDir(), "no", "such", "dir", "cp.jsonl")}
	if err := bad.Export(ctx, want[0]); err == nil {
		t.Errorf("Export(%s) = nil, want an error", bad)
	}
}

func TestSyslogExporter(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("no syslog")
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := goldenSigner(t)
	c := s.Sign(42, goldenHash, t0)
	x := &SyslogExporter{Network: "udp", Addr: conn.LocalAddr().String(), Tag: "cv-test"}
	if err := x.Export(context.Background(), c); err != nil {
		t.Fatalf("%s: Export = %v", x, err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	msg := string(buf[:n])
	// <priority>: facility auth (4) × 8 + severity notice (5) = 37.
	if !strings.HasPrefix(msg, "<37>") || !strings.Contains(msg, " cv-test[") {
		t.Errorf("syslog message %q: want priority <37> and tag cv-test", msg)
	}
	_, js, ok := strings.Cut(msg, "]: ")
	if !ok {
		t.Fatalf("syslog message %q has no text", msg)
	}
	got, err := ReadCheckpoints(strings.NewReader(js))
	if err != nil || !sameCheckpoints(got, []*Checkpoint{c}) || got[0].Verify(s.PublicKey()) != nil {
		t.Errorf("syslog message text %q = %+v, %v; want the checkpoint", js, got, err)
	}
	if strings.Count(msg, "\n") > 1 {
		t.Errorf("syslog message %q spans lines", msg)
	}

	down := &SyslogExporter{Network: "tcp", Addr: closedPort(t)}
	if err := down.Export(context.Background(), c); err == nil {
		t.Errorf("%s: Export = nil, want an error", down)
	}
}

// closedPort is a local address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// mailbox is an SMTP server (go-smtp) that keeps what it receives.
type mailbox struct {
	mu   sync.Mutex
	msgs []mail
	fail error // refuse DATA with this
}

type mail struct {
	from, hello string
	to          []string
	data        string
}

type mailSession struct {
	box *mailbox
	m   mail
}

func (b *mailbox) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &mailSession{box: b, m: mail{hello: c.Hostname()}}, nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.m.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.to = append(s.m.to, to)
	return nil
}
func (s *mailSession) Reset()        { s.m = mail{hello: s.m.hello} }
func (s *mailSession) Logout() error { return nil }

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	if s.box.fail != nil {
		return s.box.fail
	}
	s.m.data = string(b)
	s.box.msgs = append(s.box.msgs, s.m)
	return nil
}

func startMailbox(t *testing.T) (*mailbox, string) {
	box := &mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "relay.test"
	srv.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return box, l.Addr().String()
}

func TestMailExporter(t *testing.T) {
	box, addr := startMailbox(t)
	s := goldenSigner(t)
	c := s.Sign(1234, goldenHash, t0)
	x := &MailExporter{Addr: addr, From: "callvault@trust.example", To: []string{"dpo@trust.example", "auditor@external.example"}, Hello: "callvault.trust.example"}
	if err := x.Export(context.Background(), c); err != nil {
		t.Fatalf("%s: Export = %v", x, err)
	}
	box.mu.Lock()
	msgs := box.msgs
	box.mu.Unlock()
	if len(msgs) != 1 {
		t.Fatalf("mailbox holds %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.from != x.From || strings.Join(m.to, ",") != "dpo@trust.example,auditor@external.example" || m.hello != x.Hello {
		t.Errorf("envelope: HELO %q, MAIL FROM %q, RCPT TO %q; want %q, %q, %q", m.hello, m.from, m.to, x.Hello, x.From, x.To)
	}
	for _, want := range []string{
		"Subject: callvault audit checkpoint 1234\r\n",
		"From: callvault@trust.example\r\n",
		"To: dpo@trust.example, auditor@external.example\r\n",
		"Public key fingerprint: " + s.KeyID(),
	} {
		if !strings.Contains(m.data, want) {
			t.Errorf("message lacks %q:\n%s", want, m.data)
		}
	}
	var jsLine string
	for line := range strings.SplitSeq(m.data, "\r\n") {
		if strings.HasPrefix(line, "{") {
			jsLine = line
		}
	}
	got, err := ReadCheckpoints(strings.NewReader(jsLine))
	if err != nil || !sameCheckpoints(got, []*Checkpoint{c}) || got[0].Verify(s.PublicKey()) != nil {
		t.Errorf("checkpoint in the mail %q = %+v, %v; want it back, verifying", jsLine, got, err)
	}

	box.mu.Lock()
	box.fail = &smtp.SMTPError{Code: 452, Message: "mailbox full"}
	box.mu.Unlock()
	if err := x.Export(context.Background(), c); err == nil || !strings.Contains(err.Error(), "mailbox full") {
		t.Errorf("Export(to a relay that refuses) = %v, want the relay's error", err)
	}
	tests := []*MailExporter{
		{Addr: closedPort(t), From: "a@b", To: []string{"c@d"}},
		{Addr: addr, From: "a@b"},
		{Addr: addr, From: "a@b\r\nBcc: evil@example", To: []string{"c@d"}},
		{Addr: addr, From: "a@b", To: []string{"c@d\nX: y"}},
	}
	for _, x := range tests {
		if err := x.Export(context.Background(), c); err == nil {
			t.Errorf("%+v: Export = nil, want an error", x)
		}
	}
	// A cancelled context stops a send to a relay that does not answer.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	x = &MailExporter{Addr: silent.Addr().String(), From: "a@b", To: []string{"c@d"}}
	if err := x.Export(ctx, c); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("Export(to a silent relay, 100ms) = %v after %v; want the deadline error promptly", err, time.Since(start))
	}
}

// countingExporter records what it is given and fails when told to.
type countingExporter struct {
	mu   sync.Mutex
	got  []*Checkpoint
	fail error
}

func (c *countingExporter) String() string { return "counting" }

func (c *countingExporter) Export(_ context.Context, cp *Checkpoint) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, cp)
	return c.fail
}

func (c *countingExporter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func TestCheckpointer(t *testing.T) {
	e := newEnv(t)
	clk := &clock{t0.Add(time.Hour)}
	good, failing, file := &countingExporter{}, &countingExporter{fail: errors.New("relay down")}, &FileExporter{Path: filepath.Join(t.TempDir(), "cp.jsonl")}
	c := &Checkpointer{Store: e.store, Signer: e.signer, Exporters: []Exporter{failing, good, file}, Now: clk.now, Logger: quiet}
	ctx := context.Background()

	cp, err := c.Checkpoint(ctx)
	if err == nil || !strings.Contains(err.Error(), "relay down") || cp == nil {
		t.Fatalf("Checkpoint(with a failing exporter) = %v, %v; want the checkpoint and the export error", cp, err)
	}
	if good.count() != 1 || failing.count() != 1 {
		t.Errorf("a failing exporter stopped the others: good got %d, failing got %d", good.count(), failing.count())
	}
	if cp.Seq != 100 || cp.Hash != e.hashAt(100) || !cp.Time.Equal(clk.t) || cp.Verify(e.signer.PublicKey()) != nil {
		t.Errorf("Checkpoint() = %+v, want the head (100, %s) at %v, signed", cp, e.hashAt(100), clk.t)
	}
	fromFile, err := file.Checkpoints()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Verify(ctx, e.store, e.signer.PublicKey(), fromFile)
	if err != nil || r.Problem != nil || r.CheckpointsChecked != 1 {
		t.Errorf("Verify(with the exported checkpoint) = %+v, %v", r, err)
	}

	// tick skips a head that every exporter already has.
	failing.fail = nil
	c.tick(ctx, quiet) // after the failure: retried
	c.tick(ctx, quiet) // head unchanged: skipped
	if good.count() != 2 {
		t.Errorf("after a retry and an unchanged head, good got %d checkpoints, want 2", good.count())
	}
	e.more(1)
	c.tick(ctx, quiet)
	if good.count() != 3 || good.got[2].Seq != 101 {
		t.Errorf("after the head moved, good got %d checkpoints (last seq %d), want 3 ending at 101", good.count(), good.got[len(good.got)-1].Seq)
	}

	// Run checkpoints at once and stops with its context.
	runner := &countingExporter{}
	c = &Checkpointer{Store: e.store, Signer: e.signer, Exporters: []Exporter{runner}, Logger: quiet}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(rctx, time.Millisecond); close(done) }()
	waitFor(t, "the first checkpoint", func() bool { return runner.count() >= 1 })
	time.Sleep(20 * time.Millisecond) // many ticks, no new entries
	if n := runner.count(); n != 1 {
		t.Errorf("Run over an idle trail made %d checkpoints, want 1", n)
	}
	e.more(1)
	waitFor(t, "a checkpoint of the new head", func() bool { return runner.count() == 2 })
	cancel()
	<-done
}
