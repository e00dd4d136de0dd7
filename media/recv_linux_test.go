package media

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/callvault/callvault"
	"golang.org/x/sys/unix"
)

// TestMain runs the tests with the readers passing every millisecond
// instead of every 20: the tests that send in lock-step (each packet is
// read before the fake clock is set for the next) would otherwise wait for
// a pass per packet, minutes in all. TestKernelArrival and
// TestFinishReadsQueued hold packets in the socket for longer than a
// production pass instead.
func TestMain(m *testing.M) {
	pollEvery = time.Millisecond
	os.Exit(m.Run())
}

// unread takes st off its reader, as if the reader's next pass were far
// off: what is sent to it stays in the socket until st.poll or Finish.
func unread(t testing.TB, st *Stream) {
	t.Helper()
	if st.rd == nil || st.fd < 0 {
		t.Fatal("the stream is not on a reader")
	}
	st.rd.remove(st)
}

// queue takes st off its reader and returns a function that sends it
// packets from to to (exclusive) of a 20 ms tone, which wait in its
// socket until something reads it.
func queue(t *testing.T, st *Stream) func(from, to int) {
	t.Helper()
	unread(t, st)
	dst := addr(t, st)
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snd.Close() })
	return func(from, to int) {
		t.Helper()
		for k := from; k < to; k++ {
			if _, err := snd.WriteToUDPAddrPort(rtpBytes(1, uint16(k), uint32(160*k), 0, tone(8)), dst); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// addr is the address of the stream's socket.
func addr(t testing.TB, st *Stream) netip.AddrPort {
	t.Helper()
	sa, err := unix.Getsockname(st.fd)
	if err != nil {
		t.Fatal(err)
	}
	in, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		t.Fatalf("the stream's socket is bound to %#v", sa)
	}
	return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port))
}

// TestReceiveBuffer: a stream's socket has the receive buffer it asks
// for, as far as net.core.rmem_max allows (the kernel doubles what it
// grants, for its bookkeeping).
func TestReceiveBuffer(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no /proc/sys/net/core/rmem_max:", err)
	}
	rmax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	_, st := testSession(t, Config{})
	got, err := unix.GetsockoptInt(st.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * min(rcvBuf, rmax); got != want {
		t.Errorf("receive buffer %d bytes; want %d (rmem_max %d)", got, want, rmax)
	}
}

// TestKernelArrival: a packet that waited in the socket for 100 ms before
// being read is placed where it arrived, by the kernel's timestamp, not
// where the reader found it.
func TestKernelArrival(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(Config{Dir: t.TempDir(), ID: "k"}, StreamConfig{Label: "a", Side: callvault.SideExternal, Conn: conn, Latch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finish()
	st := s.streams[0]
	unread(t, st)
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	sentAt := time.Since(s.start)
	if _, err := snd.WriteToUDPAddrPort(rtpBytes(1, 0, 0, 0, tone(8)), addr(t, st)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	readAt := time.Since(s.start)
	b := newBatch()
	st.mu.Lock()
	st.poll(b)
	head, n := st.track.head(), st.c.packets
	st.mu.Unlock()
	if n != 1 {
		t.Fatalf("read %d packets, want 1", n)
	}
	// The first packet of a stream goes where it arrived.
	arrived := time.Duration(head-160) * time.Second / Rate
	if arrived < sentAt-time.Second/Rate || arrived > sentAt+50*time.Millisecond {
		t.Errorf("the packet sent %v into the session and read at %v was placed at %v", sentAt, readAt, arrived)
	}
}

// TestFinishReadsQueued: Finish records what the sockets hold that no
// reader's pass has collected yet, and closes the socket (its port can be
// bound again).
func TestFinishReadsQueued(t *testing.T) {
	s, st := testSession(t, Config{}, func(sc *StreamConfig) { sc.Remote = netip.AddrPort{} })
	to := addr(t, st)
	queue(t, st)(0, 20)
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Total; got.Packets != 20 || got.Lost != 0 {
		t.Errorf("Finish recorded %d packets (%d lost) of the 20 queued", got.Packets, got.Lost)
	}
	again, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatalf("the stream's port is still taken after Finish: %v", err)
	}
	again.Close()
}

// TestPauseTakesQueued: a pause and its end apply by when packets
// arrived, not by when a reader's pass comes by: what waits in the socket
// at Pause is recorded, what waits at Resume is not.
func TestPauseTakesQueued(t *testing.T) {
	s, st := testSession(t, Config{}, func(sc *StreamConfig) { sc.Remote = netip.AddrPort{} })
	send := queue(t, st)
	send(0, 5)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	send(5, 12)
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	send(12, 15)
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Total; got.Packets != 15 || got.Paused != 7 {
		t.Errorf("%d packets, %d of them paused; want 15, 7", got.Packets, got.Paused)
	}
}

// TestStaleHoleTakesQueued: before the syncer gives up on a missing
// packet of a stream that went quiet, it reads the socket: the packet may
// have arrived in time and be waiting for the reader's next pass.
func TestStaleHoleTakesQueued(t *testing.T) {
	_, st := testSession(t, Config{Reorder: 60 * time.Millisecond}, func(sc *StreamConfig) { sc.Remote = netip.AddrPort{} })
	unread(t, st)
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	for _, k := range []int{0, 1, 3} { // 2 is missing, 3 is held
		st.mu.Lock()
		st.handle(rtpBytes(1, uint16(k), uint32(160*k), 0, tone(8)), snd.LocalAddr().(*net.UDPAddr).AddrPort(), int64(k)*20*int64(time.Millisecond))
		st.mu.Unlock()
	}
	if _, err := snd.WriteToUDPAddrPort(rtpBytes(1, 2, 320, 0, tone(8)), addr(t, st)); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.held != 1 {
		t.Fatalf("%d packets held, want 1", st.held)
	}
	st.flushStale(int64(time.Second))
	if st.c.lost != 0 || st.held != 0 || st.track.head() != 4*160 {
		t.Errorf("after the syncer: lost %d, held %d, audio up to %d; want 0, 0, 640", st.c.lost, st.held, st.track.head())
	}
}

// TestGoroutineReceiver: a socket that is not a *net.UDPConn is read by a
// goroutine of its own, and recorded the same.
func TestGoroutineReceiver(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	type wrapped struct{ net.PacketConn }
	still := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	s, err := NewSession(Config{Dir: t.TempDir(), ID: "g", Now: still}, StreamConfig{Label: "a", Side: callvault.SideExternal, Conn: wrapped{conn}, Latch: true})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.streams[0]; st.rd != nil || st.exited == nil {
		t.Fatal("the stream is on a reader")
	}
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	for k := range 10 {
		if _, err := snd.WriteToUDPAddrPort(rtpBytes(1, uint16(k), uint32(160*k), 0, tone(8)), conn.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Total.Packets < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Total; got.Packets != 10 || got.Lost != 0 || got.Audio != 200*time.Millisecond {
		t.Errorf("%d packets, %d lost, audio to %v; want 10, 0, 200ms", got.Packets, got.Lost, got.Audio)
	}
	if _, _, err := conn.ReadFrom(make([]byte, 10)); err == nil {
		t.Error("the socket is open after Finish")
	}
}

// BenchmarkReceive is the cost per packet of a reader's pass over 1,000
// sockets (cold in the CPU's caches, as at full load) that hold 1, 2, 4 or
// 10 packets each: 20, 40, 80 or 200 ms passes with 20 ms packets.
// "recorder" is a reader's pass: recvmmsg, the kernel timestamp, and
// BenchmarkPacket's work. "sockets" reads the same sockets the same way
// and does nothing with what it reads: the kernel's share, which no
// handling can save, measured in the same run. An op is a pass;
// cpu-ns/packet counts the pass only, not the sending.
func BenchmarkReceive(b *testing.B) {
	const streams = 1000
	var scs []StreamConfig
	for i := range streams {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		scs = append(scs, StreamConfig{Label: fmt.Sprint(i), Side: callvault.SideExternal, Conn: conn, Latch: true})
	}
	s, err := NewSession(Config{Dir: b.TempDir(), ID: "bench"}, scs...)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Finish()
	spoolSyncer.remove(s) // it reads the sockets too
	var to []netip.AddrPort
	for _, st := range s.streams {
		unread(b, st)
		to = append(to, addr(b, st))
	}
	snd, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer snd.Close()
	pkt := rtpBytes(0x1234, 0, 0, 0, tone(1000))
	batch := newBatch()
	seq, handled := 0, 0
	pass := map[string]func(st *Stream) int{
		"recorder": func(st *Stream) int {
			st.mu.Lock()
			st.poll(batch)
			st.mu.Unlock()
			return 0
		},
		"sockets": func(st *Stream) int { return bare(b, st.fd, batch) },
	}
	for _, per := range []int{1, 2, 4, 10} {
		for _, name := range []string{"recorder", "sockets"} {
			b.Run(fmt.Sprintf("%s/%d-per-pass", name, per), func(b *testing.B) {
				runtime.LockOSThread() // for threadCPU
				defer runtime.UnlockOSThread()
				var cpu time.Duration
				sent, read := 0, 0
				for b.Loop() {
					for range per {
						binary.BigEndian.PutUint16(pkt[2:], uint16(seq))
						binary.BigEndian.PutUint32(pkt[4:], uint32(160*seq))
						seq++
						for _, a := range to {
							if _, err := snd.WriteToUDPAddrPort(pkt, a); err != nil {
								b.Fatal(err)
							}
						}
					}
					sent += per * streams
					t := threadCPU()
					for _, st := range s.streams {
						read += pass[name](st)
					}
					cpu += threadCPU() - t
				}
				if name == "recorder" {
					handled += sent
				} else if read != sent {
					b.Fatalf("%d packets read, %d sent", read, sent)
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(sent), "cpu-ns/packet")
			})
		}
	}
	if got := s.Stats().Total.Packets; got != uint64(handled) {
		b.Fatalf("the recorder read %d packets, %d were sent to it", got, handled)
	}
}

// bare reads what fd holds as a reader's pass does, and handles none of it.
func bare(tb testing.TB, fd int, b *batch) int {
	n := 0
	for {
		for i := range b.hdrs {
			b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			b.hdrs[i].Hdr.SetControllen(8 * ctrlLen)
		}
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), batchLen, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			return n
		default:
			tb.Fatal(errno)
		}
		n += int(r)
		if r < batchLen {
			return n
		}
	}
}
