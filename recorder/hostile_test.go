package recorder_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// The hostile-input tests run one recorder whose only recording client is
// 127.0.0.1 (where siprectest sends from). Everything else comes from
// strangerIP: a loopback address outside the allow-list, which the
// recorder treats exactly as a scanner on the network.
var (
	clientIP   = netip.MustParseAddr("127.0.0.1")
	strangerIP = netip.MustParseAddr("127.0.0.2")
)

// isolatedEnv marks a test process that isolated re-ran in a network
// namespace of its own.
const isolatedEnv = "CALLVAULT_TEST_NETNS"

// isolated reports whether the calling test runs in a network namespace
// whose only interface is loopback. If it does not, isolated re-runs the
// test in a new one (unshare(1), as an unprivileged user namespace where
// the kernel allows it) alongside the other isolated tests, reports the
// result as the test's own, and returns false: the caller returns at once.
//
// Hostile SIP names hosts the recorder may answer: a Via of 192.0.2.15
// (this machine's own network in some sandboxes) or host1.example.com.
// sipgo sends a response the way RFC 3261 18.2.2 says, so when a TCP
// connection is gone it dials the Via host, and a BYE goes to the Contact.
// In a namespace with only loopback nothing leaves the machine, whatever
// a message names.
func isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolatedEnv) == "1" {
		return true
	}
	_, errU := exec.LookPath("unshare")
	_, errI := exec.LookPath("ip")
	need(t, "unshare (util-linux) and ip (iproute2)", "apt-get install -y util-linux iproute2", errU == nil && errI == nil)
	if err := exec.Command("unshare", "--map-root-user", "--net", "true").Run(); err != nil {
		need(t, "a network namespace", fmt.Sprintf("unshare --map-root-user --net: %v", err), false)
	}
	// The test runs in a process and a namespace of its own, so it need
	// not wait for the others.
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	args := []string{"--map-root-user", "--net", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`,
		os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.count", "1", "-test.v"}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), isolatedEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if bytes.Contains(out.Bytes(), []byte("--- SKIP: "+t.Name()+" (")) && err == nil {
		t.Skipf("skipped in its network namespace:\n%s", out.String())
	}
	if err != nil || !bytes.Contains(out.Bytes(), []byte("--- PASS: "+t.Name()+" (")) {
		t.Fatalf("in its own network namespace (%v):\n%s", err, out.String())
	}
	if testing.Verbose() {
		t.Output().Write(out.Bytes())
	}
	return false
}

func allowOnly(prefixes ...string) func(*recorder.Recorder) {
	return func(r *recorder.Recorder) {
		r.Allow = nil
		for _, p := range prefixes {
			r.Allow = append(r.Allow, netip.MustParsePrefix(p))
		}
	}
}

// withTCP adds a TCP listener on the UDP listener's address, as
// cmd/callvault does.
func withTCP(r *recorder.Recorder) {
	r.Listen = append(r.Listen, recorder.Listener{Network: "tcp", Addr: r.Listen[0].Addr})
}

// hostile is a recorder on UDP and TCP that only 127.0.0.1 may use, and
// the recording client that checks it still records after an attack.
type hostile struct {
	*fixture
	client *siprectest.Client
}

// recordingClient makes the client that hostileFixture uses.
func recordingClient(t *testing.T) *siprectest.Client {
	t.Helper()
	c, err := siprectest.NewClient(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func hostileFixture(t *testing.T, c *siprectest.Client) *hostile {
	t.Helper()
	f := newFixture(t, withTCP, allowOnly("127.0.0.1/32"))
	c.Server = f.sip
	return &hostile{fixture: f, client: c}
}

// stillRecords checks that the recorder takes a normal recording session
// and stores it, and ends with no session in progress.
func (f *hostile) stillRecords(t *testing.T, callID string) {
	t.Helper()
	speech := make([]int16, 4000) // 0.5 s
	for i := range speech {
		speech[i] = int16(1000 * (i%40 - 20))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if res, err := f.client.Run(ctx, siprectest.Call{CallID: callID, CallerAudio: speech, CalleeAudio: speech,
		Caller: siprectest.Party{AOR: "sip:+447700900123@sbc.example"}, Callee: siprectest.Party{AOR: "sip:2001@pbx.example"}}); err != nil {
		t.Fatalf("a normal recording session after the attack: %v (answer %+v)", err, res)
	}
	rec := f.waitRecording(t, callID)
	if rec.Duration < 400*time.Millisecond {
		t.Errorf("the recording after the attack lasts %v, want the 0.5 s sent", rec.Duration)
	}
	waitFor(t, 5*time.Second, "no session in progress", func() bool { return f.rec.Sessions() == 0 })
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: not %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goroutineSlack is how many more goroutines than before an attack may
// remain after it: sipgo keeps idle client connections and transaction
// timers for a while. A leak per message (50 or 100 here) is far above it.
const goroutineSlack = 15

// noGoroutineLeak waits for the goroutine count to come back to within
// goroutineSlack of before, and dumps the goroutines if it does not.
func noGoroutineLeak(t *testing.T, before int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	n := runtime.NumGoroutine()
	for n > before+goroutineSlack && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > before+goroutineSlack {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Errorf("%d goroutines after the attack, %d before (slack %d):\n%s", n, before, goroutineSlack, b.String())
	}
}

// sipRequest builds a request to the recorder: method, Call-ID, extra
// header lines and a body, with a Via naming viaAddr (the sender's own
// address, or another one where a test steers the answer).
func sipRequest(method string, to netip.AddrPort, viaTransport, viaAddr, callID string, cseq int, extra []string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s sip:srs@%s SIP/2.0\r\n", method, to)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK-%s-%d;rport\r\n", viaTransport, viaAddr, strings.ReplaceAll(callID, "@", "-"), cseq)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <sip:sbc@%s>;tag=t-%s\r\nTo: <sip:srs@%s>\r\n", viaAddr, callID, to.Addr())
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\n", callID, cseq, method)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// siprecInvite is a well-formed SIPREC INVITE from a client at from
// whose RTP would come from ports; nothing is ever sent from them.
func siprecInvite(to netip.AddrPort, from netip.AddrPort, callID string, ports [2]int) []byte {
	body, boundary := siprectest.Body(siprectest.Call{CallID: callID,
		Caller: siprectest.Party{AOR: "sip:+447700900123@sbc.example"}, Callee: siprectest.Party{AOR: "sip:2001@pbx.example"}},
		from.Addr(), ports)
	return sipRequest("INVITE", to, "UDP", from.String(), callID, 1, []string{
		fmt.Sprintf("Contact: <sip:sbc@%s>;+sip.src", from),
		"Require: siprec",
		"Content-Type: multipart/mixed;boundary=" + boundary,
	}, body)
}

// dialFrom opens a TCP connection to the recorder from an address.
func dialFrom(t *testing.T, from netip.Addr, to netip.AddrPort) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 2 * time.Second}
	conn, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// A message too large for the recorder over TCP is refused: the
// connection is closed at once, whether the excess is a 70 KB body
// (refused on its Content-Length) or 70 KB of headers that never end.
// Nothing is buffered for it and no session opens.
func TestOversizedTCPMessage(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	before := runtime.NumGoroutine()
	body := bytes.Repeat([]byte("v=0\r\n"), 14000) // 70,000 bytes
	headers := []string{"Contact: <sip:sbc@127.0.0.1>;+sip.src", "Require: siprec", "Content-Type: application/sdp"}
	var endless bytes.Buffer
	endless.Write(sipRequest("INVITE", f.sip, "TCP", "127.0.0.1:5060", "endless@sbc.example", 1, headers, nil))
	endless.Truncate(endless.Len() - len("Content-Length: 0\r\n\r\n"))
	for i := 0; endless.Len() < 70000; i++ {
		fmt.Fprintf(&endless, "X-Padding-%d: %s\r\n", i, strings.Repeat("x", 60))
	}
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"70 KB body", sipRequest("INVITE", f.sip, "TCP", "127.0.0.1:5060", "big@sbc.example", 1, headers, body)},
		{"70 KB of headers", endless.Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := dialFrom(t, clientIP, f.sip)
			defer conn.Close()
			// The recorder may close before it has read everything: write
			// on the side, and ignore a reset.
			go conn.Write(tc.msg)
			start := time.Now()
			conn.SetDeadline(start.Add(3 * time.Second))
			var codes []int
			closed := readResponses(conn, func(c int) { codes = append(codes, c) }, func([]byte) {})
			if !closed {
				t.Fatalf("the connection is still open after %v: the recorder is buffering a %d-byte message", time.Since(start).Round(time.Millisecond), len(tc.msg))
			}
			for _, c := range codes {
				if c < 400 {
					t.Errorf("an oversized INVITE got %d", c)
				}
			}
			t.Logf("closed after %v; responses %v", time.Since(start).Round(time.Millisecond), codes)
		})
	}
	if c := f.rec.Counts(); c.Started != 0 || c.Active != 0 {
		t.Errorf("oversized INVITEs opened sessions: %+v", c)
	}
	f.stillRecords(t, "after-oversized@sbc.example")
	noGoroutineLeak(t, before, 5*time.Second)
}

// A TCP message whose Content-Length promises more than comes, from a
// client that then hangs up, leaves nothing behind: no answer, no
// session, no goroutine waiting for the rest.
func TestTruncatedTCPMessage(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	before := runtime.NumGoroutine()
	body, boundary := siprectest.Body(siprectest.Call{CallID: "short@sbc.example"}, clientIP, [2]int{40000, 40002})
	msg := sipRequest("INVITE", f.sip, "TCP", "127.0.0.1:5060", "short@sbc.example", 1, []string{
		"Contact: <sip:sbc@127.0.0.1>;+sip.src", "Require: siprec", "Content-Type: multipart/mixed;boundary=" + boundary,
	}, body)
	msg = bytes.Replace(msg, fmt.Appendf(nil, "Content-Length: %d", len(body)), fmt.Appendf(nil, "Content-Length: %d", len(body)+5000), 1)
	const clients = 20
	var conns []net.Conn
	for i := range clients {
		conn := dialFrom(t, clientIP, f.sip)
		defer conn.Close()
		if _, err := conn.Write(msg[:len(msg)-i]); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(300 * time.Millisecond)
	for _, conn := range conns {
		wg.Go(func() {
			conn.SetReadDeadline(deadline)
			if n, err := conn.Read(make([]byte, 1024)); err == nil {
				t.Errorf("an incomplete INVITE was answered (%d bytes)", n)
			}
			conn.Close()
		})
	}
	wg.Wait()
	if c := f.rec.Counts(); c.Started != 0 || c.Active != 0 {
		t.Errorf("truncated INVITEs opened sessions: %+v", c)
	}
	f.stillRecords(t, "after-truncated@sbc.example")
	noGoroutineLeak(t, before, 5*time.Second)
}

// garbage returns n datagrams of seeded random junk: raw bytes, and bytes
// behind a request or status line so that the parser goes further in.
func garbage(n int) [][]byte {
	rng := rand.New(rand.NewPCG(4475, 1))
	prefixes := []string{"", "", "INVITE sip:srs@127.0.0.1 SIP/2.0\r\n", "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060\r\n",
		"SIP/2.0 200 OK\r\n", "BYE sip:srs@127.0.0.1 SIP/2.0\r\nCall-ID: ", "ACK sip:srs@127.0.0.1 SIP/2.0\r\nContent-Length: 99999\r\n\r\n"}
	out := make([][]byte, n)
	for i := range out {
		b := []byte(prefixes[rng.IntN(len(prefixes))])
		size := 1 + rng.IntN(1400)
		for range size {
			if rng.IntN(4) == 0 {
				b = append(b, "\r\n:;,<>\"@ \t"[rng.IntN(11)])
			} else {
				b = append(b, byte(rng.UintN(256)))
			}
		}
		out[i] = b
	}
	return out
}

// 1,000 datagrams of random garbage from a recording client are dropped or
// refused; the recorder keeps recording and keeps no goroutine for them.
func TestGarbageDatagrams(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	before := runtime.NumGoroutine()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(clientIP, 5060)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i, d := range garbage(1000) {
		if _, err := conn.WriteToUDPAddrPort(d, f.sip); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if i%100 == 99 {
			time.Sleep(10 * time.Millisecond) // stay within the socket's buffer
		}
	}
	replies, junk := 0, 0
	buf := make([]byte, 65536)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		if _, ok := statusCode(buf[:n]); ok {
			replies++
		} else {
			junk++
			t.Errorf("a reply to garbage is no SIP response: %.80q", buf[:n])
		}
	}
	t.Logf("%d replies to 1,000 datagrams of garbage", replies)
	if c := f.rec.Counts(); c.Started != 0 || c.Active != 0 {
		t.Errorf("garbage opened sessions: %+v", c)
	}
	f.stillRecords(t, "after-garbage@sbc.example")
	noGoroutineLeak(t, before, 5*time.Second)
}
