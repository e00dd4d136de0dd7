package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/callvault/callvault/durable"
)

// Exporter sends a checkpoint somewhere the database administrator cannot
// reach. Export returns only once the checkpoint has been handed over (as
// far as the transport can tell).
type Exporter interface {
	Export(ctx context.Context, c *Checkpoint) error
	String() string // where to, for logs and errors
}

// checkpointLine is c as one line of JSON, newline included.
func checkpointLine(c *Checkpoint) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// FileExporter appends checkpoints as JSON lines to a file (created with
// mode 0600), fsyncing each: an append-only log that ReadCheckpoints and
// Checkpoints read back. Put it on a file system the database administrator
// cannot write to (another host, a WORM mount).
type FileExporter struct {
	Path string

	mu sync.Mutex // serialises this process's appends
}

func (f *FileExporter) String() string { return "file " + f.Path }

// Export appends c. A line left incomplete by a crash during an earlier
// append is cut off first so that the file stays valid JSON lines.
func (f *FileExporter) Export(ctx context.Context, c *Checkpoint) error {
	line, err := checkpointLine(c)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	created, err := durable.CreateExclusive(f.Path, line)
	if err != nil {
		return fmt.Errorf("checkpoint file %s: %w", f.Path, err)
	} else if created {
		return nil
	}
	file, err := os.OpenFile(f.Path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("checkpoint file: %w", err)
	}
	err = appendLine(file, line)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("checkpoint file %s: %w", f.Path, err)
	}
	return nil
}

// appendLine writes line at the end of file after cutting off a torn last
// line, then fsyncs.
func appendLine(file *os.File, line []byte) error {
	fi, err := file.Stat()
	if err != nil {
		return err
	}
	if size := fi.Size(); size > 0 {
		// Checkpoint lines are a few hundred bytes: the last newline is
		// within the last 64 KiB unless the file is not a checkpoint log.
		n := min(size, 64<<10)
		tail := make([]byte, n)
		if _, err := file.ReadAt(tail, size-n); err != nil && err != io.EOF {
			return err
		}
		if tail[n-1] != '\n' {
			i := bytes.LastIndexByte(tail, '\n')
			if i < 0 && n < size {
				return errors.New("the last line is longer than 64 KiB: not a checkpoint log")
			}
			if err := file.Truncate(size - n + int64(i) + 1); err != nil {
				return err
			}
		}
	}
	if _, err := file.Write(line); err != nil {
		return err
	}
	return file.Sync()
}

// Checkpoints reads back every checkpoint in the file.
func (f *FileExporter) Checkpoints() ([]*Checkpoint, error) {
	file, err := os.Open(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer file.Close()
	cps, err := ReadCheckpoints(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return cps, nil
}

// mailTimeout bounds one mail export when the caller's context does not.
const mailTimeout = time.Minute

// MailExporter mails each checkpoint through an SMTP relay (plain SMTP, no
// authentication: an internal relay that forwards to a mailbox the database
// administrator cannot read or delete from). It does not use STARTTLS: a
// checkpoint is not secret and its signature protects its integrity, and a
// relay's certificate problem must not stop checkpoints.
type MailExporter struct {
	Addr  string   // host:port of the relay
	From  string   // envelope and header sender
	To    []string // recipients
	Hello string   // name sent in EHLO; default "localhost"
}

func (m *MailExporter) String() string {
	return "mail to " + strings.Join(m.To, ", ") + " via " + m.Addr
}

// Export sends one message with subject "callvault audit checkpoint <seq>"
// whose body holds the checkpoint's JSON and its key's fingerprint.
func (m *MailExporter) Export(ctx context.Context, c *Checkpoint) error {
	if len(m.To) == 0 {
		return errors.New("mail exporter: no recipients")
	}
	for _, a := range append([]string{m.From, m.Hello}, m.To...) {
		if strings.ContainsAny(a, "\r\n") {
			return fmt.Errorf("mail exporter: address %q contains a line break", a)
		}
	}
	msg, err := m.message(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, mailTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("mail exporter: %w", err)
	}
	// net/smtp takes no context: when ctx ends, the connection is closed.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	host, _, _ := net.SplitHostPort(m.Addr)
	client, err := smtp.NewClient(conn, host)
	if err == nil {
		err = m.send(client, msg)
		client.Close()
	} else {
		conn.Close()
	}
	if err != nil {
		if ctx.Err() != nil { // the cause is the cancellation, not the closed connection
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("mail exporter %s: %w", m.Addr, err)
	}
	return nil
}

func (m *MailExporter) send(client *smtp.Client, msg []byte) error {
	hello := m.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := client.Hello(hello); err != nil {
		return err
	}
	if err := client.Mail(m.From); err != nil {
		return err
	}
	for _, to := range m.To {
		if err := client.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := client.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return client.Quit()
}

func (m *MailExporter) message(c *Checkpoint) ([]byte, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", m.From)
	header("To", strings.Join(m.To, ", "))
	header("Subject", "callvault audit checkpoint "+strconv.FormatInt(c.Seq, 10))
	header("Date", c.Time.Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString("The callvault audit trail reached this point. Keep this message: it lets\r\n")
	b.WriteString("an auditor prove that the trail was not changed, cut back or restored\r\n")
	b.WriteString("from an old backup afterwards (callvault audit verify).\r\n\r\n")
	b.WriteString("Checkpoint:\r\n")
	b.Write(js)
	b.WriteString("\r\n\r\nPublic key fingerprint: " + c.KeyID + "\r\n")
	return b.Bytes(), nil
}
