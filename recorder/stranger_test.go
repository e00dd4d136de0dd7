package recorder_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// A stranger gets the rate limiter's few 403s and then nothing, whatever
// method it sends: the recorder's promise that a scanner learns nothing.
// (sipgo itself would answer 405, 400 or 200; the gate keeps strangers
// from it.)
func TestStrangerGetsNoAnswer(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(strangerIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	from := conn.LocalAddr().(*net.UDPAddr).AddrPort().String()
	sent := 0
	for _, method := range []string{"REGISTER", "MESSAGE", "SUBSCRIBE", "CANCEL", "INFO", "XYZZY"} {
		for i := range 10 {
			msg := sipRequest(method, f.sip, "UDP", from, fmt.Sprintf("%s-%d@stranger", method, i), 1, nil, nil)
			if _, err := conn.WriteToUDPAddrPort(msg, f.sip); err != nil {
				t.Fatal(err)
			}
			sent++
		}
	}
	for i := range 10 { // RFC 2543 style, no From tag: sipgo cannot make a transaction of it
		msg := fmt.Sprintf("INVITE sip:srs@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=notag-%d;rport\r\nFrom: <sip:x@%s>\r\nTo: <sip:srs@%s>\r\nCall-ID: notag-%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
			f.sip, from, i, from, f.sip, i)
		if _, err := conn.WriteToUDPAddrPort([]byte(msg), f.sip); err != nil {
			t.Fatal(err)
		}
		sent++
	}
	byCode := map[int]int{}
	answered := 0
	buf := make([]byte, 65536)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		code, _ := statusCode(buf[:n])
		byCode[code]++
		answered++
	}
	if answered > 5 || byCode[403] != answered {
		t.Errorf("a stranger's %d requests got %d answers (with retransmissions) %v, want at most 5, all 403", sent, answered, byCode)
	}
}

// A stranger cannot send the recorder elsewhere: when its TCP connection
// is gone before the answer, the recorder must not connect to the host
// and port that the request's Via names (sipgo does, per RFC 3261 18.2.2)
// on a stranger's behalf.
func TestStrangerCannotSteerTheRecorder(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	target, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	reached := make(chan string, 10)
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			reached <- line
			c.Close()
		}
	}()
	for i, method := range []string{"REGISTER", "OPTIONS", "MESSAGE"} {
		conn := dialFrom(t, strangerIP, f.sip)
		msg := sipRequest(method, f.sip, "TCP", target.Addr().String(), fmt.Sprintf("steer-%d@stranger", i), 1, nil, nil)
		// A blank line between messages is allowed; "Z" is not a start
		// line, so sipgo closes the connection right after the request.
		conn.Write(append(msg, "\r\nZ\r\n\r\n"...))
		conn.Close()
	}
	select {
	case line := <-reached:
		t.Fatalf("the recorder connected to %s, named by a stranger's Via, and sent %q", target.Addr(), line)
	case <-time.After(2 * time.Second):
	}
}

// A stranger's TCP connections are closed, not kept open with a
// goroutine and a 32 KB buffer each for as long as the stranger likes.
func TestStrangerTCPConnectionsAreClosed(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	before := runtime.NumGoroutine()
	var conns []net.Conn
	for i := range 50 {
		conn := dialFrom(t, strangerIP, f.sip)
		defer conn.Close()
		if i%2 == 1 {
			fmt.Fprintf(conn, "OPTIONS sip:srs@%s SIP/2.0\r\nVia: SIP/2.0/TCP %s", f.sip, conn.LocalAddr())
		}
		conns = append(conns, conn)
	}
	t.Logf("%d goroutines with 50 idle connections of a stranger, %d before", runtime.NumGoroutine(), before)
	deadline := time.Now().Add(10 * time.Second)
	open := 0
	for _, c := range conns {
		c.SetReadDeadline(deadline)
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				open++
			}
		}
	}
	if open > 0 {
		t.Errorf("%d of a stranger's 50 idle TCP connections still open after 10 s", open)
	}
}

// The recorder does not keep something for every address that ever sent
// it a datagram.
func TestSourceAddressesAreNotKept(t *testing.T) {
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	send := func(n int) {
		for range n {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(strangerIP, 0)))
			if err != nil {
				t.Fatal(err)
			}
			c.WriteToUDPAddrPort([]byte("x"), f.sip)
			c.Close()
		}
		time.Sleep(500 * time.Millisecond)
	}
	send(1000) // warm up
	before := heap()
	send(20000)
	grown := int64(heap()) - int64(before)
	t.Logf("heap grew %d KB after one datagram from each of 20,000 source ports", grown/1024)
	if grown > 1<<20 {
		t.Errorf("the heap grew %d KB for 20,000 one-byte datagrams from new source ports: something is kept per address", grown/1024)
	}
}
