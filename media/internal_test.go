package media

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

var from = netip.MustParseAddrPort("192.0.2.7:40000")

// testSession is a session with one stream fed directly through handle (its
// socket is open but nobody sends to it). Its rtpmap has telephone-event at
// 101 and Opus at 111; opts change the stream's configuration.
func testSession(t testing.TB, cfg Config, opts ...func(*StreamConfig)) (*Session, *Stream) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.ID = "s"
	if cfg.Now == nil {
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		cfg.Now = func() time.Time { return start }
	}
	sc := StreamConfig{Label: "a", Side: callvault.SideExternal, Conn: conn, Remote: from,
		PayloadTypes: map[uint8]string{101: "telephone-event/8000", 111: "opus/48000/2"}}
	for _, o := range opts {
		o(&sc)
	}
	s, err := NewSession(cfg, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Finish() })
	return s, s.streams[0]
}

func rtpBytes(ssrc uint32, seq uint16, ts uint32, pt uint8, payload []byte) []byte {
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}, Payload: payload}).Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// feed hands st a packet that arrives at sample position arrival.
func feed(st *Stream, b []byte, arrival int64) {
	st.mu.Lock()
	st.handle(b, from, arrival*nsPerSample)
	st.mu.Unlock()
}

// tone is a µ-law payload of 160 samples of v, and what they decode to.
func tone(v int16) []byte { return bytes.Repeat([]byte{g711.EncodeUlawFrame(v)}, 160) }

func ulaw(v int16) int16 { return g711.DecodeUlawFrame(g711.EncodeUlawFrame(v)) }

// halt stops a session the way kill -9 would as far as the disk can tell:
// readers and syncer stop, nothing buffered is written, the header is not
// finished.
func halt(s *Session) {
	spoolSyncer.remove(s)
	for _, st := range s.streams {
		st.stop(false)
		st.track.f.Close()
		st.closeSocket()
	}
	s.progress.Close()
	s.finished = true // for the cleanup's Finish
}

// TestRecoverUpToLastFlush: audio written out before the crash is all
// there, sample for sample; what was still in the buffer is not, and the
// interrupted session lasts to the end of the audio on disk.
func TestRecoverUpToLastFlush(t *testing.T) {
	dir := t.TempDir()
	s, st := testSession(t, Config{Dir: dir, FlushEvery: 100 * time.Millisecond, SyncEvery: time.Hour})
	want := make([]int16, 0, 8000)
	for k := range 30 { // 600 ms: written in 100 ms chunks
		v := int16(8 * (k + 1))
		feed(st, rtpBytes(1, uint16(k), uint32(160*k), 0, tone(v)), int64(160*k))
		for range 160 {
			want = append(want, ulaw(v))
		}
	}
	for k := 30; k < 34; k++ { // 80 ms: still buffered at the crash
		feed(st, rtpBytes(1, uint16(k), uint32(160*k), 0, tone(1000)), int64(160*k))
	}
	halt(s)

	spools, err := Recover(dir)
	if err != nil || len(spools) != 1 {
		t.Fatalf("Recover = %v, %v; want one spool", spools, err)
	}
	sp := spools[0]
	if !sp.Interrupted || sp.ID != "s" || sp.Duration() != 600*time.Millisecond {
		t.Errorf("recovered %s: interrupted %v, duration %v; want s, true, 600ms", sp.ID, sp.Interrupted, sp.Duration())
	}
	var buf bytes.Buffer
	if err := sp.Render(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()[wavHeaderLen:]
	if len(data) != 4*len(want) {
		t.Fatalf("rendered %d frames, want %d", len(data)/4, len(want))
	}
	for i, v := range want {
		l, r := int16(binary.LittleEndian.Uint16(data[4*i:])), int16(binary.LittleEndian.Uint16(data[4*i+2:]))
		if l != v || r != 0 {
			t.Fatalf("frame %d = %d, %d; want %d, 0", i, l, r, v)
		}
	}
}

// TestReorderRing drives the reorder buffer through its corners: a hole
// that fills in time, one given up on, a forward jump larger than the ring,
// sequence wrap-around while holding, and a stream that goes quiet with a
// hole (played out by the syncer's flushStale).
func TestReorderRing(t *testing.T) {
	_, st := testSession(t, Config{Reorder: 60 * time.Millisecond})
	seq := func(k int) uint16 { return uint16(65530 + k) } // wraps at k = 6
	send := func(k int) { feed(st, rtpBytes(1, seq(k), uint32(160*k), 0, tone(8)), int64(160*k)) }
	check := func(step string, lost, late, reordered, dup uint64, head int64) {
		t.Helper()
		st.mu.Lock()
		defer st.mu.Unlock()
		c := st.c
		if c.lost != lost || c.late != late || c.reordered != reordered || c.duplicates != dup || st.track.head() != head {
			t.Errorf("after %s: lost %d late %d reordered %d dup %d head %d; want %d %d %d %d %d",
				step, c.lost, c.late, c.reordered, c.duplicates, st.track.head(), lost, late, reordered, dup, head)
		}
	}
	send(0)
	send(1)
	send(3) // 2 missing: held
	send(4)
	check("a hole", 0, 0, 0, 0, 320)
	send(2) // in time, across the wrap
	check("the hole filled", 0, 0, 1, 0, 800)
	send(4)
	check("a duplicate", 0, 0, 1, 1, 800)
	send(6) // 5 missing
	send(7)
	send(8) // 3 packets = 60 ms after the hole: given up
	check("a hole given up", 1, 0, 1, 1, 1440)
	send(5)
	check("too late", 1, 1, 1, 1, 1440)
	send(40) // 31 ahead: more than the ring
	check("a jump", 32, 1, 1, 1, 160*41)
	send(42) // 41 missing, and then nothing more arrives
	check("a hole at the end", 32, 1, 1, 1, 160*41)
	st.mu.Lock()
	st.flushStale(int64(time.Second))
	st.mu.Unlock()
	check("the syncer came by", 33, 1, 1, 1, 160*43)
}

// TestDTMFKeepsSequence: telephone-event packets take sequence numbers but
// no audio, and their frozen timestamps do not move the timeline.
func TestDTMFKeepsSequence(t *testing.T) {
	_, st := testSession(t, Config{})
	for k := range 20 {
		b := rtpBytes(1, uint16(k), uint32(160*k), 0, tone(8))
		if k >= 5 && k < 10 {
			b = rtpBytes(1, uint16(k), 160*5, 101, []byte{1, 0x0a, 0, byte(k)})
		}
		feed(st, b, int64(160*k))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.c.lost != 0 || st.c.codecs[codecEvent] != 5 || st.track.head() != 3200 || st.c.resyncs != 0 {
		t.Errorf("lost %d, %d events, head %d, resyncs %d; want 0, 5, 3200, 0", st.c.lost, st.c.codecs[codecEvent], st.track.head(), st.c.resyncs)
	}
	// The events' place is silence.
	st.track.flush()
	got := make([]byte, 2*160*5)
	if _, err := st.track.f.ReadAt(got, 2*160*5); err != nil || !bytes.Equal(got, make([]byte, len(got))) {
		t.Errorf("the DTMF stretch holds %x, %v; want silence", got[:16], err)
	}
}

// TestHandleAllocs: the hot path allocates nothing, in order or reordered.
func TestHandleAllocs(t *testing.T) {
	_, st := testSession(t, Config{})
	k := 0
	payload := tone(8)
	b := rtpBytes(1, 0, 0, 0, payload)
	next := func() {
		binary.BigEndian.PutUint16(b[2:], uint16(k))
		binary.BigEndian.PutUint32(b[4:], uint32(160*k))
		feed(st, b, int64(160*k))
		k++
	}
	if n := testing.AllocsPerRun(2000, next); n != 0 {
		t.Errorf("%v allocations per in-order packet, want 0", n)
	}
	swap := func() { // k+1 before k
		k++
		next()
		k -= 2
		next()
		k++
	}
	if n := testing.AllocsPerRun(1000, swap); n != 0 {
		t.Errorf("%v allocations per reordered pair, want 0", n)
	}
	if st.c.reordered < 1000 || st.c.lost != 0 {
		t.Errorf("reordered %d, lost %d; want >= 1000, 0", st.c.reordered, st.c.lost)
	}
}

// BenchmarkPacket is the per-packet cost of handling a packet once it is
// read: clock read, lock, RTP unmarshal, sequence and timeline
// bookkeeping, µ-law decode of 160 samples, buffering, and the amortised
// write of the spool file (here every 2 s of audio, when the buffer is
// half full; in a session the syncer writes it every second, and syncs).
// BenchmarkReceive adds the reading. cpu-ns/op is the thread's CPU time,
// steadier than ns/op on a busy machine.
func BenchmarkPacket(b *testing.B) {
	s, st := testSession(b, Config{Now: time.Now})
	pkt := rtpBytes(0x1234, 0, 0, 0, tone(1000))
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := threadCPU()
	k := 0
	for b.Loop() {
		binary.BigEndian.PutUint16(pkt[2:], uint16(k))
		binary.BigEndian.PutUint32(pkt[4:], uint32(160*k))
		_ = s.now() // what a reader pays for the arrival time
		st.mu.Lock()
		st.handle(pkt, from, int64(k)*20*int64(time.Millisecond))
		st.mu.Unlock()
		k++
	}
	if cpu := threadCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkDecodeG711 is the decoding part of BenchmarkPacket.
func BenchmarkDecodeG711(b *testing.B) {
	payload, dst := tone(1000), make([]byte, 320)
	b.SetBytes(160)
	for b.Loop() {
		decodeG711(dst, payload, &ulawPCM)
	}
}

// FuzzHandle feeds arbitrary datagrams, and RTP packets with arbitrary
// headers, at arbitrary times: nothing panics, the ring never overflows, and
// audio is only ever written between the session start and a little past
// the latest arrival (so no packet can make the spool file huge).
func FuzzHandle(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xff, 0xff}, uint16(20))
	f.Add(rtpBytes(1, 65535, 4294967200, 8, tone(8)), uint16(0))
	f.Add(rtpBytes(2, 7, 1<<31, 101, []byte{1, 2, 3, 4}), uint16(300))
	f.Add([]byte{0x80, 200, 0, 1, 0, 0, 0, 0}, uint16(1))
	f.Add([]byte{0xa0, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xff, 0xff, 0, 3}, uint16(5))
	f.Add(rtpBytes(3, 9, 0xFFFFFF00, 111, []byte{0x78, 0x01, 0x02, 0x03}), uint16(960)) // Opus, hybrid
	f.Add(rtpBytes(3, 9, 7, 111, []byte{0xfb, 0x83, 0x01}), uint16(2880))               // Opus, CELT, code 3
	f.Fuzz(func(t *testing.T, b []byte, step uint16) {
		s, st := testSession(t, Config{})
		var arrival, latest int64
		// The input is the first packet; variations of its header follow.
		for i := range 64 {
			p := bytes.Clone(b)
			if len(p) >= 12 && i > 0 {
				binary.BigEndian.PutUint16(p[2:], binary.BigEndian.Uint16(p[2:])+uint16(i*int(step%7)))
				binary.BigEndian.PutUint32(p[4:], binary.BigEndian.Uint32(p[4:])+uint32(i)*uint32(step))
				if i%9 == 0 {
					p[8] ^= byte(i) // another SSRC
				}
			}
			arrival += int64(step%400) - 40 // mostly forward, sometimes back
			latest = max(latest, arrival)
			feed(st, p, arrival)
			st.mu.Lock()
			head, held := st.track.head(), st.held
			st.mu.Unlock()
			if held >= ringSize {
				t.Fatalf("%d packets held, ring of %d", held, ringSize)
			}
			if head > latest+2*s.resync+maxPayload {
				t.Fatalf("audio written up to sample %d; the latest arrival was at %d", head, latest)
			}
		}
	})
}

// TestWriteErrorReported: when the spool cannot be written, the session says
// so while the call goes on, and Finish returns the error with the spool.
func TestWriteErrorReported(t *testing.T) {
	s, st := testSession(t, Config{FlushEvery: 20 * time.Millisecond})
	st.mu.Lock()
	st.track.f.Close() // as good as a full or vanished disk
	st.mu.Unlock()
	feed(st, rtpBytes(1, 1, 160, 0, tone(8)), 160)
	if err := s.Err(); err == nil {
		t.Fatal("Err() = nil after a failed write")
	}
	sp, err := s.Finish()
	if err == nil || sp == nil {
		t.Errorf("Finish = %v, %v; want the spool and an error", sp, err)
	}
}

// TestUnsupportedEncodings: an rtpmap with encodings that cannot be decoded
// does not fail the session; their packets are counted and are silence, and
// an rtpmap entry overrides a static payload type.
func TestUnsupportedEncodings(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(Config{Dir: t.TempDir(), ID: "u"}, StreamConfig{Label: "a", Side: callvault.SideStaff, Conn: conn, Remote: from,
		PayloadTypes: map[uint8]string{18: "G729/8000", 0: "PCMU/16000", 96: "iLBC/8000", 97: "PCMA/8000"}})
	if err != nil {
		t.Fatalf("NewSession with G.729 and iLBC offered: %v", err)
	}
	defer s.Finish()
	st := s.streams[0]
	for k, pt := range []uint8{18, 0, 96, 97, 8} {
		feed(st, rtpBytes(1, uint16(k), uint32(160*k), pt, tone(1000)), int64(160*k))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.c.unknownPT != 3 || st.c.codecs[codecPCMA] != 2 || st.c.lost != 0 {
		t.Errorf("%d unknown, %d PCMA, %d lost; want 3, 2, 0", st.c.unknownPT, st.c.codecs[codecPCMA], st.c.lost)
	}
	st.track.flush()
	got := make([]byte, 2*800)
	st.track.f.ReadAt(got, 0)
	if !bytes.Equal(got[:2*480], make([]byte, 2*480)) || bytes.Equal(got[2*480:], make([]byte, 2*320)) {
		t.Error("want silence for the three undecodable packets, then sound")
	}
}
