package recorder_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"github.com/callvault/callvault/recorder/siprectest"
	"github.com/callvault/callvault/siprec"
)

// flood sends n SIPREC INVITEs from one socket of a recording client and
// never acknowledges an answer; like any UAC it retransmits an INVITE that
// has no final response yet (every 500 ms, for up to 10 s). It returns the
// final status of each INVITE by Call-ID.
func flood(t *testing.T, to netip.AddrPort, n int) map[string]int {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(clientIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadBuffer(4 << 20) // 200 OKs come back retransmitted
	from := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	invites := make([][]byte, n)
	for i := range invites {
		// RTP would come from 127.0.0.1:41000 and up; none ever does.
		invites[i] = siprecInvite(to, from, fmt.Sprintf("flood-%d@sbc.example", i), [2]int{41000 + 4*i, 41002 + 4*i})
	}
	var mu sync.Mutex
	final := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			m, err := conn.Read(buf)
			if err != nil {
				return
			}
			code, ok := statusCode(buf[:m])
			if !ok || code < 200 || !bytes.Contains(buf[:m], []byte(" INVITE\r\n")) {
				continue // a 100 Trying, or the recorder's BYE
			}
			mu.Lock()
			final[callID(buf[:m])] = code
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sent := 0
		for i, inv := range invites {
			mu.Lock()
			_, answered := final[fmt.Sprintf("flood-%d@sbc.example", i)]
			mu.Unlock()
			if answered {
				continue
			}
			if _, err := conn.WriteToUDPAddrPort(inv, to); err != nil {
				t.Fatal(err)
			}
			if sent++; sent%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if sent == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	conn.Close() // stops the reader
	<-done
	mu.Lock()
	defer mu.Unlock()
	return final
}

// A recording client that floods the recorder with 500 SIPREC INVITEs and
// never acknowledges an answer gets a final answer to each: 200 while RTP
// ports last, then 500. The recorder keeps answering SIP meanwhile.
func TestInviteFloodIsAnswered(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	final := flood(t, f.sip, 500)
	byCode := map[int]int{}
	for _, c := range final {
		byCode[c]++
	}
	t.Logf("final answers by status: %v; counts %+v", byCode, f.rec.Counts())
	if len(final) != 500 {
		t.Errorf("%d of 500 INVITEs got a final answer", len(final))
	}
	// The fixture's 101 RTP ports make 50 two-stream sessions.
	if byCode[200] == 0 || byCode[200] > 50 || byCode[200]+byCode[500]+byCode[503] != len(final) {
		t.Errorf("answers %v: want up to 50 200s (two RTP ports each), the rest 500 or 503", byCode)
	}
	// Still answering: an OPTIONS from the client gets its 200.
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(clientIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	from := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if _, err := conn.WriteToUDPAddrPort(sipRequest("OPTIONS", f.sip, "UDP", from.String(), "ping@sbc.example", 1, nil, nil), f.sip); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if code, _ := statusCode(buf[:max(n, 0)]); err != nil || code != 200 {
		t.Errorf("an OPTIONS during the flood got %q, %v; want 200", buf[:max(n, 0)], err)
	}
}

// After a flood of INVITEs that are never acknowledged, the sessions end
// within the inactivity timeout (no RTP ever came), the recorder records
// again, and nothing is left running.
func TestInviteFloodSessionsEnd(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	before := runtime.NumGoroutine()
	start := time.Now()
	final := flood(t, f.sip, 500)
	if len(final) != 500 {
		t.Errorf("%d of 500 INVITEs got a final answer", len(final))
	}
	// Inactivity is 2 s, checked every second; storing an empty session
	// takes a moment.
	deadline := start.Add(2*time.Second + time.Second + 5*time.Second + 3*time.Second)
	for f.rec.Sessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := f.rec.Sessions(); n > 0 {
		t.Fatalf("%d sessions of the flood still in progress %v after it began (inactivity timeout 2 s)", n, time.Since(start).Round(time.Second))
	}
	f.stillRecords(t, "after-flood@sbc.example")
	noGoroutineLeak(t, before, 35*time.Second)
}

// When a recording client dies with sessions in progress (no BYE, no more
// RTP), every session ends within the inactivity timeout and is stored.
func TestDeadClientSessionsEnd(t *testing.T) {
	if !isolated(t) {
		return
	}
	c := recordingClient(t) // the client that dies
	f := hostileFixture(t, recordingClient(t))
	c.Server = f.sip
	speech := make([]int16, 1600) // 0.2 s
	for i := range speech {
		speech[i] = int16(1000 * (i%40 - 20))
	}
	const n = 8
	for i := range n {
		if _, err := c.Run(t.Context(), siprectest.Call{CallID: fmt.Sprintf("dead-%d@sbc.example", i), NoBye: true, CallerAudio: speech, CalleeAudio: speech,
			Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close() // the client dies: the recorder's BYEs go nowhere
	start := time.Now()
	for f.rec.Sessions() > 0 && time.Since(start) < 15*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	if left := f.rec.Sessions(); left > 0 {
		t.Fatalf("%d of %d sessions of a dead client still in progress %v after it died (inactivity timeout 2 s)", left, n, time.Since(start).Round(time.Second))
	}
	t.Logf("all %d sessions ended %v after the client died", n, time.Since(start).Round(100*time.Millisecond))
	for i := range n {
		f.waitRecording(t, fmt.Sprintf("dead-%d@sbc.example", i))
	}
}

// A session whose 200 OK is never acknowledged (the ACK is lost, or goes
// to a Contact the client cannot reach) but whose RTP flows is recorded
// like any other. sipgo's timers are shortened (T1 50 ms: the INVITE
// transaction gives up on the ACK after 3.2 s instead of 32 s); the test
// has its process to itself.
func TestUnacknowledgedSessionIsKept(t *testing.T) {
	if !isolated(t) {
		return
	}
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	t.Cleanup(func() { sip.SetTimers(500*time.Millisecond, 4*time.Second, 5*time.Second) })
	f := hostileFixture(t, recordingClient(t))
	sig, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(clientIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	media, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(clientIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer media.Close()
	from := sig.LocalAddr().(*net.UDPAddr).AddrPort()
	port := media.LocalAddr().(*net.UDPAddr).Port
	if _, err := sig.WriteToUDPAddrPort(siprecInvite(f.sip, from, "noack@sbc.example", [2]int{port, port}), f.sip); err != nil {
		t.Fatal(err)
	}
	var answer *siprec.Offer
	buf := make([]byte, 65536)
	for answer == nil {
		sig.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := sig.Read(buf)
		if err != nil {
			t.Fatalf("no 200 OK: %v", err)
		}
		if code, _ := statusCode(buf[:n]); code == 200 {
			_, body, _ := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
			if answer, err = siprec.ParseOffer(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	// No ACK, ever; the BYE the recorder sends at the end is answered.
	go answerBye(sig)
	// The caller's stream: 5 s of RTP, past the 3.2 s of 200 OK
	// retransmissions.
	dst := netip.AddrPortFrom(clientIP, uint16(answer.Streams[0].Port))
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 0x4475}, Payload: bytes.Repeat([]byte{0x55}, 160)}
	start := time.Now()
	for k := 0; time.Since(start) < 5*time.Second; k++ {
		b, err := pkt.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		media.WriteToUDPAddrPort(b, dst)
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		time.Sleep(time.Until(start.Add(time.Duration(k+1) * 20 * time.Millisecond)))
	}
	rec := f.waitRecording(t, "noack@sbc.example")
	if rec.Duration < 4800*time.Millisecond {
		t.Errorf("the recording lasts %v, want the 5 s of RTP sent", rec.Duration)
	}
}

// answerBye answers each BYE that arrives on conn with a 200 OK, and
// ignores everything else.
func answerBye(conn *net.UDPConn) {
	buf := make([]byte, 65536)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		head, _, _ := bytes.Cut(buf[:n], []byte("\r\n\r\n"))
		lines := strings.Split(string(head), "\r\n")
		if !strings.HasPrefix(lines[0], "BYE ") {
			continue
		}
		res := "SIP/2.0 200 OK\r\n"
		for _, l := range lines[1:] {
			name, _, _ := strings.Cut(l, ":")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "via", "from", "to", "call-id", "cseq":
				res += l + "\r\n"
			}
		}
		conn.WriteToUDPAddrPort([]byte(res+"Content-Length: 0\r\n\r\n"), from)
	}
}
