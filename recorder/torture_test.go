package recorder_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type tortureMessage struct {
	name string
	data []byte
}

// tortureMessages reads the RFC 4475 messages and checks them against
// SHA256SUMS, so that an editor or a git setting that rewrites line ends
// cannot quietly make them less tortuous.
func tortureMessages(t *testing.T) []tortureMessage {
	t.Helper()
	dir := filepath.Join("testdata", "torture")
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []tortureMessage
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		want, file, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS: bad line %q", line)
		}
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != want {
			t.Fatalf("%s is not the RFC's message (SHA-256 %x, want %s)", file, got, want)
		}
		msgs = append(msgs, tortureMessage{name: strings.TrimSuffix(file, ".dat"), data: data})
	}
	// RFC 4475 section 3 has 49 messages; its archive also holds test.dat.
	if len(msgs) != 50 {
		t.Fatalf("%d torture messages, want the archive's 50", len(msgs))
	}
	return msgs
}

// replies is what came back for each message sent: the status codes in
// order, by message name.
type replies struct {
	mu    sync.Mutex
	codes map[string][]int
	junk  []string // datagrams or stream bytes that are not SIP responses
}

func newReplies() *replies {
	return &replies{codes: map[string][]int{}}
}

func (r *replies) add(name string, code int) {
	r.mu.Lock()
	r.codes[name] = append(r.codes[name], code)
	r.mu.Unlock()
}

func (r *replies) addJunk(name string, b []byte) {
	r.mu.Lock()
	r.junk = append(r.junk, fmt.Sprintf("%s: %.60q", name, b))
	r.mu.Unlock()
}

// count returns how many messages got a reply with code (0: any code).
// A retransmitted response counts once.
func (r *replies) count(code int) int {
	n := 0
	for _, cs := range r.codes {
		for _, c := range cs {
			if code == 0 || c == code {
				n++
				break
			}
		}
	}
	return n
}

func (r *replies) String() string {
	var names []string
	for n := range r.codes {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s:%v ", n, r.codes[n])
	}
	return b.String()
}

// statusCode reads the status code of a SIP response ("SIP/2.0 NNN ...").
// The version is not checked here: a client that sends another version
// gets a SIP/2.0 505.
func statusCode(b []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("SIP/"))
	_, rest, sp := bytes.Cut(rest, []byte(" "))
	if !ok || !sp || len(rest) < 3 {
		return 0, false
	}
	code, err := strconv.Atoi(string(rest[:3]))
	return code, err == nil && code >= 100 && code <= 699
}

// callID returns the Call-ID of a SIP message (long or compact form).
func callID(msg []byte) string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n")[1:] {
		name, value, ok := strings.Cut(line, ":")
		if n := strings.ToLower(strings.TrimSpace(name)); ok && (n == "call-id" || n == "i") {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

// sendUDP sends each message from its own socket on from and collects
// what comes back within wait. The recorder answers UDP to the source
// address but the port of the top Via (RFC 3261 18.2.2), 5060 when the Via
// names none, so replies are also collected there and on the one other
// port the messages name (quotbal's 5050), and told apart by Call-ID.
func sendUDP(t *testing.T, from netip.Addr, to netip.AddrPort, msgs []tortureMessage, wait time.Duration) *replies {
	t.Helper()
	out := newReplies()
	byCallID := map[string]string{}
	for _, m := range msgs {
		if id := callID(m.data); id != "" {
			byCallID[id] = m.name
		}
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(wait)
	collect := func(conn *net.UDPConn, name string) {
		wg.Go(func() {
			defer conn.Close()
			buf := make([]byte, 65536)
			conn.SetReadDeadline(deadline)
			for {
				n, err := conn.Read(buf)
				if err != nil {
					return
				}
				who := name
				if id := callID(buf[:n]); byCallID[id] != "" {
					who = byCallID[id]
				}
				if code, ok := statusCode(buf[:n]); ok {
					out.add(who, code)
				} else {
					out.addJunk(who, buf[:n])
				}
			}
		})
	}
	for _, port := range []uint16{5060, 5050} {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, port)))
		if err != nil {
			t.Fatal(err)
		}
		collect(conn, fmt.Sprintf("(to port %d)", port))
	}
	for _, m := range msgs {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteToUDPAddrPort(m.data, to); err != nil {
			conn.Close()
			t.Fatalf("%s: %v", m.name, err)
		}
		collect(conn, m.name)
	}
	wg.Wait()
	return out
}

// sendTCP sends each message on its own connection from from, reads what
// comes back within wait, then closes the connection.
func sendTCP(t *testing.T, from netip.Addr, to netip.AddrPort, msgs []tortureMessage, wait time.Duration) *replies {
	t.Helper()
	out := newReplies()
	var wg sync.WaitGroup
	deadline := time.Now().Add(wait)
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: wait}
	for _, m := range msgs {
		conn, err := d.Dial("tcp", to.String())
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		wg.Go(func() {
			defer conn.Close()
			conn.SetDeadline(deadline)
			if _, err := conn.Write(m.data); err != nil {
				return // closed by the recorder already
			}
			readResponses(conn, func(code int) { out.add(m.name, code) }, func(b []byte) { out.addJunk(m.name, b) })
		})
	}
	wg.Wait()
	return out
}

// readResponses reads SIP responses from a stream until it ends or its
// deadline passes, and reports whether the peer closed it.
func readResponses(conn net.Conn, code func(int), junk func([]byte)) (closed bool) {
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
		c, ok := statusCode(line)
		if !ok {
			junk(line)
			continue
		}
		code(c)
		// Skip the headers and the body.
		length := 0
		for {
			h, err := br.ReadBytes('\n')
			if err != nil {
				var ne net.Error
				return !(errors.As(err, &ne) && ne.Timeout())
			}
			hs := strings.TrimSpace(string(h))
			if hs == "" {
				break
			}
			name, value, _ := strings.Cut(hs, ":")
			if n := strings.ToLower(strings.TrimSpace(name)); n == "content-length" || n == "l" {
				length, _ = strconv.Atoi(strings.TrimSpace(value))
			}
		}
		if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
			return true
		}
	}
}

// The RFC 4475 torture messages, over UDP and over TCP, from a recording
// client and from a stranger, neither crash nor wedge the recorder (a
// panic in any of its goroutines would end the test's process): it
// answers with SIP responses or not at all, opens no session, gives the
// stranger no more than its few 403s besides sipgo's own refusals, keeps
// no goroutine per message, and records a normal session afterwards.
//
// Each case has a recorder of its own: the messages are sent byte for
// byte, so their branches are the same each time, and a second sending
// within 32 s would only be a retransmission to the first one's
// transactions.
func TestTortureMessages(t *testing.T) {
	if !isolated(t) {
		return
	}
	msgs := tortureMessages(t)
	client := recordingClient(t)
	for _, tc := range []struct {
		name string
		from netip.Addr
		send func(*testing.T, netip.Addr, netip.AddrPort, []tortureMessage, time.Duration) *replies
	}{
		{"client/udp", clientIP, sendUDP},
		{"client/tcp", clientIP, sendTCP},
		{"stranger/udp", strangerIP, sendUDP},
		{"stranger/tcp", strangerIP, sendTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := hostileFixture(t, client)
			before := runtime.NumGoroutine()
			got := tc.send(t, tc.from, f.sip, msgs, time.Second)
			t.Logf("replies: %v", got)
			if len(got.junk) > 0 {
				t.Errorf("replies that are not SIP responses: %q", got.junk)
			}
			if tc.name == "stranger/tcp" {
				// A stranger's TCP connections are closed on accept.
				if n := got.count(0); n != 0 {
					t.Errorf("a stranger's TCP messages got %d replies, want none: %v", n, got)
				}
				if f.rec.Counts().Rejected[0] == 0 {
					t.Error("the stranger's connections were not counted as refused")
				}
			} else if got.count(0) == 0 {
				t.Error("no reply at all: the messages did not reach the recorder")
			}
			for name, codes := range got.codes {
				invite := strings.HasPrefix(msgByName(msgs, name), "INVITE ")
				for _, c := range codes {
					if invite && c >= 200 && c < 300 {
						t.Errorf("%s: an INVITE that is no SIPREC offer got %d", name, c)
					}
				}
			}
			if tc.from == clientIP {
				// RFC 3261 §8.2.2 and §16.3 refusals (RFC 4475 §3.3.6,
				// 3.3.7, 3.3.15).
				for name, want := range map[string]int{"badvers": 505, "bext01": 420, "unkscm": 416} {
					if codes := got.codes[name]; len(codes) == 0 || codes[0] != want {
						t.Errorf("%s got %v, want %d", name, codes, want)
					}
				}
			}
			if tc.name == "stranger/udp" {
				// Only 403s reach a stranger (sipgo never sees its
				// datagrams), and they are rate-limited.
				for name, codes := range got.codes {
					for _, c := range codes {
						if c != 403 {
							t.Errorf("%s from a stranger got %d", name, c)
						}
					}
				}
				if n := got.count(403); n == 0 || n > 5 {
					t.Errorf("%d messages of a stranger got a 403, want 1 to 5 (a few a minute, then silence)", n)
				}
				if f.rec.Counts().Rejected[0] == 0 {
					t.Error("no request from the stranger was dropped once its 403s were used up")
				}
			}
			if c := f.rec.Counts(); c.Started != 0 || c.Active != 0 {
				t.Errorf("torture messages opened sessions: %+v", c)
			}
			f.stillRecords(t, "after-torture@sbc.example")
			noGoroutineLeak(t, before, 5*time.Second)
		})
	}
}

// msgByName returns the start of the named message.
func msgByName(msgs []tortureMessage, name string) string {
	for _, m := range msgs {
		if m.name == name {
			return string(m.data[:min(len(m.data), 40)])
		}
	}
	return ""
}
