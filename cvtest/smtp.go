package cvtest

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// Mailbox is a real SMTP server (go-smtp) on 127.0.0.1 that keeps every
// message it receives, for tests of notification mail.
type Mailbox struct {
	Addr string

	mu   sync.Mutex
	msgs []Mail
}

// Mail is one received message.
type Mail struct {
	From string
	To   []string
	Data string // headers and body as sent
}

// NewMailbox starts a mailbox that stops when the test ends.
func NewMailbox(t testing.TB) *Mailbox {
	t.Helper()
	box := &Mailbox{}
	srv := smtp.NewServer(box)
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	box.Addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return box
}

// Messages returns what has arrived so far.
func (b *Mailbox) Messages() []Mail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Mail(nil), b.msgs...)
}

// NewSession implements smtp.Backend.
func (b *Mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{box: b}, nil }

type mailSession struct {
	box *Mailbox
	m   Mail
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.m.From = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.m.To = append(s.m.To, to)
	return nil
}
func (s *mailSession) Reset()        { s.m = Mail{} }
func (s *mailSession) Logout() error { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.m.Data = string(b)
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, s.m)
	s.box.mu.Unlock()
	return nil
}
