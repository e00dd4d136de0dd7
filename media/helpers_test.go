package media_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)

// listen opens a UDP socket on 127.0.0.1, as the SIP side would before
// answering.
func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// sender sends RTP to one stream from its own socket and, in lock-step
// mode, waits until the session has read each datagram, so that a fake clock
// set before the send is what the stream sees at arrival.
type sender struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
	tgt  *target
	sent uint64
}

// target is a stream that senders wait on: want is how many datagrams it
// must have read.
type target struct {
	sess   *media.Session
	stream int
	want   uint64
}

// lockstep returns the target for stream i of sess; senders given it wait
// after each send until the stream has read it.
func lockstep(sess *media.Session, i int) *target {
	return &target{sess: sess, stream: i, want: sess.Stats().Streams[i].Datagrams}
}

func newSender(t *testing.T, to *net.UDPConn) *sender {
	return &sender{t: t, conn: listen(t), to: to.LocalAddr().(*net.UDPAddr)}
}

func (s *sender) raw(b []byte) {
	s.t.Helper()
	if _, err := s.conn.WriteToUDP(b, s.to); err != nil {
		s.t.Fatal(err)
	}
	s.sent++
	if s.tgt == nil {
		return
	}
	s.tgt.want++
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.tgt.sess.Stats().Streams[s.tgt.stream].Datagrams
		if got >= s.tgt.want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("stream %d read %d datagrams in 10 s, want %d", s.tgt.stream, got, s.tgt.want)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

func (s *sender) rtp(p *rtp.Packet) {
	s.t.Helper()
	b, err := p.Marshal()
	if err != nil {
		s.t.Fatal(err)
	}
	s.raw(b)
}

func encode(pt uint8, pcm []int16) []byte {
	b := make([]byte, len(pcm))
	for i, v := range pcm {
		if pt == 8 {
			b[i] = g711.EncodeAlawFrame(v)
		} else {
			b[i] = g711.EncodeUlawFrame(v)
		}
	}
	return b
}

// decode is what decoding the sent bytes gives, independently of media.
func decode(pt uint8, payload []byte) []int16 {
	out := make([]int16, len(payload))
	for i, b := range payload {
		if pt == 8 {
			out[i] = g711.DecodeAlawFrame(b)
		} else {
			out[i] = g711.DecodeUlawFrame(b)
		}
	}
	return out
}

// render renders sp, checks the WAV with audio.Probe, and returns its
// channels.
func render(t *testing.T, sp *media.Spool) (left, right []int16) {
	t.Helper()
	var buf bytes.Buffer
	if err := sp.Render(&buf); err != nil {
		t.Fatalf("Render: %v", err)
	}
	b := buf.Bytes()
	if int64(len(b)) != sp.Size() {
		t.Fatalf("Render wrote %d bytes, Size says %d", len(b), sp.Size())
	}
	info, err := audio.Probe(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Probe(rendered WAV): %v", err)
	}
	want := audio.Info{Format: "wav", Codec: "pcm16", SampleRate: 8000, Channels: 2,
		Duration: time.Duration(sp.Frames()) * time.Second / 8000, DataOffset: 44, DataSize: 4 * sp.Frames()}
	if info != want {
		t.Fatalf("Probe(rendered WAV) = %+v, want %+v", info, want)
	}
	data := b[44:]
	left, right = make([]int16, len(data)/4), make([]int16, len(data)/4)
	for i := range left {
		left[i] = int16(binary.LittleEndian.Uint16(data[4*i:]))
		right[i] = int16(binary.LittleEndian.Uint16(data[4*i+2:]))
	}
	return left, right
}

// compare fails at the first sample where got differs from want, saying
// which 20 ms packet it falls in.
func compare(t *testing.T, name string, got, want []int16) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d samples, want %d", name, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: sample %d (%.3f s) is %d, want %d", name, i, float64(i)/8000, got[i], want[i])
			return
		}
	}
}

// timeline is the expected content of one channel.
type timeline []int16

func (tl timeline) put(pos int64, pcm []int16) { copy(tl[pos:], pcm) }

func pkt(ssrc uint32, seq uint16, ts uint32, pt uint8, payload []byte) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc}, Payload: payload}
}

// session starts a session in a temp folder with the clock and streams.
func session(t *testing.T, c *clock, cfg media.Config, streams ...media.StreamConfig) *media.Session {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.ID == "" {
		cfg.ID = "rec-1"
	}
	if c != nil {
		cfg.Now = c.Now
		cfg.Start = c.Now()
	}
	s, err := media.NewSession(cfg, streams...)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	return s
}
