package media

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callvault/callvault/audio"
	"github.com/pion/rtp"
)

// StreamConfig describes one negotiated RTP stream (one m= line of the SDP
// answer).
type StreamConfig struct {
	// Label names the stream within the session (the SDP a=label that the
	// SIPREC metadata refers to). Unique within a session.
	Label string
	// Side is the channel the stream goes to: callvault.SideExternal (left),
	// callvault.SideStaff (right) or SideMixed (both).
	Side string
	// Conn is the socket the RTP arrives on, opened by the caller before the
	// SDP answer went out so no early packet is lost. The session owns it
	// from a successful NewSession or AddStream on and closes it at Finish.
	// On Linux a *net.UDPConn is closed at once and its socket read through
	// a duplicate of its descriptor, away from the Go runtime (see
	// recv_linux.go); use the socket only through the session from then on.
	// Other sockets are read by a goroutine each, which costs more.
	Conn net.PacketConn
	// Remote is the address the RTP is expected from (the offer's c= and
	// m= port). Packets from anywhere else are dropped and counted. Port 0
	// accepts any port of that address: many clients (and sipp) do not send
	// RTP from the port their SDP names.
	Remote netip.AddrPort
	// Latch, or a zero Remote, makes the stream accept only the source of
	// the first RTP packet instead (senders behind NAT). Whoever sends first
	// is recorded, so prefer Remote where the network allows.
	Latch bool
	// PayloadTypes is the rtpmap of the answer: payload type → encoding
	// ("PCMU/8000", "PCMA/8000", "telephone-event/8000", "G722/8000",
	// "opus/48000/2", "telephone-event/48000"). The static types 0 (PCMU),
	// 8 (PCMA), 9 (G722) and 13 (CN) are always understood; an entry for
	// them overrides. Packets of an encoding that Supported rejects are
	// counted (UnknownPT) and recorded as silence, so answer only with
	// supported encodings.
	PayloadTypes map[uint8]string
	// SRTP, for an RTP/SAVP stream, is the sender's SDES key: the offer's
	// a=crypto that the answer accepted (not the recorder's own key, which
	// nothing is ever sent with). Packets that fail authentication with it
	// are dropped and counted (AuthFailed). nil for plain RTP. The key is
	// never written to the spool. A suite SupportedSuite rejects is
	// EUNSUPPORTED, a key of the wrong length EINVALID.
	SRTP *SRTPKey
}

// Reorder and sequence limits.
const (
	ringSize    = 16   // packets held while waiting for a missing one (a power of 2)
	maxPayload  = 2048 // bytes; 256 ms of G.711
	maxDropout  = 3000 // a forward sequence jump up to this is loss (60 s at 20 ms)
	maxMisorder = 100  // a backward jump up to this is a late packet or a duplicate
	nsPerSample = int64(time.Second) / Rate
)

// pkt is one RTP packet on its way through the reorder buffer.
type pkt struct {
	seq     uint16
	pt      uint8
	ts      uint32
	c       codec
	paused  bool
	arrival int64 // ns since the session start
	payload []byte
}

// slot holds a copy of a packet that arrived ahead of a missing one.
type slot struct {
	used    bool
	p       pkt
	payload [maxPayload]byte
}

// Stream receives one RTP stream of a session, from NewSession or
// AddStream until Finish.
type Stream struct {
	sess   *Session
	label  string
	side   string
	index  int
	conn   net.PacketConn
	udp    *net.UDPConn
	remote netip.AddrPort
	latch  bool
	codecs [128]codec
	// clock48 marks the payload types with a 48 kHz RTP clock (Opus, and
	// telephone-event alongside it), whose timestamps are rescaled.
	clock48 [128]bool

	// Receiving: on a reader (rd, reading the socket's duplicate fd), or
	// on a goroutine of the stream's own (rd nil; run reads conn).
	rd       *reader
	fd       int         // -1 if none
	stopping atomic.Bool // set under mu when on a reader
	exited   chan struct{}
	readErr  error // why the reader stopped early, if it did
	readErrs int   // consecutive read errors

	mu      sync.Mutex // everything below; held per packet by the reader and briefly by the syncer
	rtp     rtp.Packet
	c       counters
	track   track
	pcm     [2 * maxPayload]byte // decoded samples of one packet
	g722    *audio.G722Decoder
	opus    *opusDecoder
	srtp    *srtpReceiver // nil for plain RTP
	latched bool

	// Current SSRC.
	ssrc       uint32
	haveSSRC   bool
	prevSSRC   uint32
	havePrev   bool
	switchedAt int64 // arrival of the first packet of the current SSRC

	// 48 kHz timestamps of the current SSRC, rescaled (see rescale).
	have48 bool
	last48 uint32 // the last 48 kHz timestamp
	rem48  int64  // its remainder in sixths of an 8 kHz sample
	ts8    uint32 // and what it became

	// Sequence tracking and the reorder ring.
	seqStarted bool
	nextSeq    uint16 // the next sequence number to play out
	recv       uint64 // bit i: nextSeq-1-i was played (not lost)
	highSeq    uint16 // highest sequence number received
	highTS     uint32 // its timestamp
	badSeq     int32  // RFC 3550 probation after a big jump; -1 if none
	held       int
	holdSince  int64 // arrival of the oldest held packet
	ring       [ringSize]slot
	expectTS   uint32 // where the next packet's audio should start
	haveExpect bool

	// Timeline: RTP timestamp → sample position.
	anchored  bool
	anchorTS  uint32
	anchorPos int64
	lag       int64 // wall-clock position minus timeline position when last anchored

	// RFC 3550 interarrival jitter, scaled by 16, in 1/8000 s.
	jitter      int64
	lastTransit uint32
	haveTransit bool
}

func (st *Stream) accept(from netip.AddrPort) bool {
	if st.latch && !st.latched {
		return true // latched once the packet parses as RTP
	}
	if st.remote.Port() == 0 {
		return from.Addr().Unmap() == st.remote.Addr()
	}
	return netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) == st.remote
}

// start starts receiving, on a reader if the socket can be taken from the
// Go runtime, else on a goroutine of the stream's own.
func (st *Stream) start() {
	if !st.attach() {
		st.exited = make(chan struct{})
		go st.run()
	}
}

// stop stops receiving; after it the socket can be closed. If final,
// what the socket holds is read first.
func (st *Stream) stop(final bool) {
	if st.rd != nil {
		st.detach(final)
		return
	}
	st.stopping.Store(true)
	st.conn.SetReadDeadline(time.Unix(1, 0)) // wakes the goroutine
	<-st.exited
}

// closeSocket closes the stream's socket.
func (st *Stream) closeSocket() {
	if st.rd != nil {
		st.closeFD()
		return
	}
	st.conn.Close()
}

// run reads the socket until Finish, where there is no reader. The kernel
// wakes it for each datagram; Finish wakes it with a read deadline in the
// past.
func (st *Stream) run() {
	defer close(st.exited)
	buf := make([]byte, 4096)
	var consecutive int
	for {
		var (
			n    int
			from netip.AddrPort
			err  error
		)
		if st.udp != nil {
			n, from, err = st.udp.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = st.conn.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				from = ua.AddrPort()
			}
		}
		if st.stopping.Load() {
			return
		}
		if err != nil {
			// ICMP errors (ECONNREFUSED on a connected socket) and the like
			// are transient; a closed socket or a storm of errors is not.
			consecutive++
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) || consecutive > 100 {
				st.mu.Lock()
				st.readErr = err
				st.mu.Unlock()
				return
			}
			continue
		}
		consecutive = 0
		arrival := int64(st.sess.now().Sub(st.sess.start))
		st.mu.Lock()
		st.handle(buf[:n], from, arrival)
		st.mu.Unlock()
	}
}

// handle processes one datagram that arrived at arrival (ns since the
// session start). It is the hot path: no allocation, no syscall except the
// occasional buffered write.
func (st *Stream) handle(b []byte, from netip.AddrPort, arrival int64) {
	st.c.datagrams++
	if !st.accept(from) {
		st.c.wrongSource++
		return
	}
	if len(b) >= 2 && b[1] >= 192 && b[1] <= 223 { // RFC 5761: RTCP packet types 192-223
		st.c.rtcp++
		return
	}
	if len(b) < 12 || b[0]>>6 != 2 {
		st.c.malformed++
		return
	}
	if st.srtp != nil {
		var ok bool
		if b, ok = st.unprotect(b); !ok {
			return
		}
	}
	if err := st.rtp.Unmarshal(b); err != nil || len(st.rtp.Payload) > maxPayload {
		st.c.malformed++
		return
	}
	if st.latch && !st.latched {
		st.remote = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		st.latched = true
	}
	h := &st.rtp.Header
	c := st.codecs[h.PayloadType&0x7f]
	st.c.packets++
	st.c.bytes += uint64(len(st.rtp.Payload))
	st.c.codecs[c]++
	if c == codecUnknown {
		st.c.unknownPT++
	}
	if !st.haveSSRC || h.SSRC != st.ssrc {
		// A straggler of the previous SSRC right after a switch is late,
		// not a switch back.
		if st.havePrev && h.SSRC == st.prevSSRC && arrival-st.switchedAt < 2*st.sess.reorder {
			st.c.late++
			return
		}
		st.newSSRC(h.SSRC, arrival)
	}
	ts := h.Timestamp
	if st.clock48[h.PayloadType&0x7f] {
		ts = st.rescale(ts)
	}
	p := pkt{seq: h.SequenceNumber, pt: h.PayloadType, ts: ts, c: c, arrival: arrival, payload: st.rtp.Payload}
	if c.positioned() && c != codecUnknown {
		st.measureJitter(p)
	}
	if c.audio() && st.sess.paused.Load() {
		p.paused = true
		st.c.paused++
	}
	st.sequence(p)
}

// newSSRC starts tracking a new synchronisation source: what is held of the
// old one plays out, sequence and timestamp tracking restart, and the first
// packet is placed by the wall clock (keeping the old source's lag, so a
// switch without a pause continues seamlessly).
func (st *Stream) newSSRC(ssrc uint32, arrival int64) {
	if st.haveSSRC {
		st.drain()
		st.c.ssrcChanges++
		st.prevSSRC, st.havePrev = st.ssrc, true
	}
	st.ssrc, st.haveSSRC, st.switchedAt = ssrc, true, arrival
	st.seqStarted, st.anchored, st.haveExpect, st.haveTransit, st.have48 = false, false, false, false, false
	st.jitter = 0
	if st.g722 != nil {
		st.g722.Reset()
	}
	if st.opus != nil {
		st.opus.reset()
	}
}

// rescale maps a 48 kHz RTP timestamp (Opus, RFC 7587) to 8 kHz units, so
// that the timeline, the jitter and the reorder window see one clock. It
// steps from the previous timestamp of the SSRC rather than dividing, so
// the wrap of the 32-bit timestamp (every 24.9 hours at 48 kHz, not a
// multiple of 6) does not jump, and keeps the remainder, so steps that are
// not whole 8 kHz samples add up exactly.
func (st *Stream) rescale(ts uint32) uint32 {
	if !st.have48 {
		st.have48, st.last48 = true, ts
		st.ts8, st.rem48 = ts/opusDecimation, int64(ts%opusDecimation)
		return st.ts8
	}
	d := st.rem48 + int64(int32(ts-st.last48))
	q, r := d/opusDecimation, d%opusDecimation
	if r < 0 {
		q, r = q-1, r+opusDecimation
	}
	st.last48, st.rem48 = ts, r
	st.ts8 += uint32(q)
	return st.ts8
}

// measureJitter is RFC 3550 A.8, in 8 kHz units.
func (st *Stream) measureJitter(p pkt) {
	transit := uint32(p.arrival/nsPerSample) - p.ts
	if st.haveTransit {
		d := int64(int32(transit - st.lastTransit))
		if d < 0 {
			d = -d
		}
		st.jitter += d - (st.jitter+8)>>4
	}
	st.lastTransit, st.haveTransit = transit, true
}

// sequence puts p in order: it plays out at once if it is the next one,
// waits in the ring if it is ahead of a missing packet, and is dropped as a
// duplicate or late if its place has passed.
func (st *Stream) sequence(p pkt) {
	if !st.seqStarted {
		st.startSeq(p.seq)
	}
	ud := p.seq - st.nextSeq
	switch {
	case ud < maxDropout:
	case ud > 65535-maxMisorder:
		back := 65536 - int(ud)
		if back <= 64 && st.recv>>(back-1)&1 == 1 {
			st.c.duplicates++
		} else {
			st.c.late++
		}
		return
	default:
		// A big jump: a restarted sender, or garbage. RFC 3550 A.1: believe
		// it when the next packet follows on.
		if int32(p.seq) != st.badSeq {
			st.badSeq = int32(p.seq + 1)
			st.c.late++
			return
		}
		st.drain()
		st.startSeq(p.seq)
		st.anchored = false
		ud = 0
	}
	st.badSeq = -1
	if ud >= ringSize { // beyond the ring: play out what is held, then give up on the rest of the gap
		st.drain()
		if ud = p.seq - st.nextSeq; ud >= ringSize {
			st.skip(int(ud))
			ud = 0
		}
	}
	if ud == 0 && st.held == 0 { // in order: the usual case
		st.highSeq, st.highTS = p.seq, p.ts
		st.emit(p)
		st.advance(true)
		return
	}
	sl := &st.ring[p.seq%ringSize]
	if sl.used {
		st.c.duplicates++
		return
	}
	if int16(p.seq-st.highSeq) < 0 {
		st.c.reordered++
	} else {
		st.highSeq, st.highTS = p.seq, p.ts
	}
	sl.used = true
	sl.p = p
	sl.p.payload = sl.payload[:copy(sl.payload[:], p.payload)]
	if st.held == 0 {
		st.holdSince = p.arrival
	}
	st.held++
	st.release(false)
}

func (st *Stream) startSeq(seq uint16) {
	st.seqStarted = true
	st.nextSeq = seq
	st.highSeq = seq - 1
	st.recv = 0
	st.badSeq = -1
}

// release plays out held packets that are next in line. A missing packet is
// given up on (silence) once the packets after it cover the reorder window,
// or at once if force is set.
func (st *Stream) release(force bool) {
	for st.held > 0 {
		sl := &st.ring[st.nextSeq%ringSize]
		if sl.used {
			sl.used = false
			st.held--
			st.emit(sl.p)
			st.advance(true)
			continue
		}
		if !force && !st.pastWindow() {
			break
		}
		st.c.lost++
		st.advance(false)
	}
	if st.held > 0 { // the oldest packet still waiting
		st.holdSince = 1<<63 - 1
		for i := range st.ring {
			if st.ring[i].used {
				st.holdSince = min(st.holdSince, st.ring[i].p.arrival)
			}
		}
	}
}

// pastWindow reports whether the packets held after the hole at nextSeq
// reach the reorder window beyond where the hole starts.
func (st *Stream) pastWindow() bool {
	if !st.haveExpect {
		return st.held >= ringSize/2
	}
	return int64(int32(st.highTS-st.expectTS)) >= st.sess.reorderTS || st.held >= ringSize-1
}

// drain plays out everything held, giving up on the holes.
func (st *Stream) drain() { st.release(true) }

// skip gives up on n sequence numbers at once (a jump of the sequence).
func (st *Stream) skip(n int) {
	st.c.lost += uint64(n)
	st.nextSeq += uint16(n)
	if n >= 64 {
		st.recv = 0
	} else {
		st.recv <<= n
	}
}

func (st *Stream) advance(played bool) {
	st.nextSeq++
	st.recv <<= 1
	if played {
		st.recv |= 1
	}
}

// emit places a packet on the timeline and, if it is audio to record,
// decodes it into the track.
//
// The position comes from the RTP timestamp, relative to the previous
// packet of the same SSRC. The wall clock only anchors: the first packet of
// a source goes where its arrival says (less the lag the stream had, so an
// SSRC change without a pause is seamless), and when the timestamps and the
// wall clock disagree by more than Resync (timestamps that stood still
// during hold, or jumped), the timeline is re-anchored to the wall clock.
func (st *Stream) emit(p pkt) {
	if !p.c.positioned() {
		return // telephone-event: not audio, and its timestamp is the event's start
	}
	n := p.c.samples(p.payload)
	arrPos := p.arrival / nsPerSample
	var pos int64
	if st.anchored {
		pos = st.anchorPos + int64(int32(p.ts-st.anchorTS))
		if dev := arrPos - pos - st.lag; dev > st.sess.resync || dev < -st.sess.resync {
			pos = st.placeByClock(arrPos, n)
			st.c.resyncs++
		}
	} else {
		pos = st.placeByClock(arrPos, n)
		st.anchored = true
	}
	if pos > arrPos+2*st.sess.resync {
		// Re-anchoring at the head (never overwriting audio) let the
		// timeline creep ahead of the wall clock: a sender clock fast for
		// hours, or a sender playing games. Back to the wall clock; the
		// overlap is dropped.
		pos, st.lag = arrPos, 0
		st.c.resyncs++
	}
	st.anchorTS, st.anchorPos = p.ts, pos
	st.expectTS, st.haveExpect = p.ts+uint32(n), true
	if n == 0 && p.c == codecOpus {
		st.c.undecodable++ // no valid table of contents
	}
	if n == 0 || p.paused && p.c != codecG722 && p.c != codecOpus {
		return
	}
	var pcm []byte
	switch p.c {
	case codecPCMU:
		pcm = decodeG711(st.pcm[:], p.payload, &ulawPCM)
	case codecPCMA:
		pcm = decodeG711(st.pcm[:], p.payload, &alawPCM)
	case codecG722:
		if st.g722 == nil {
			st.g722 = audio.NewG722Decoder(Rate)
		}
		pcm = st.g722.DecodeLE(st.pcm[:0], p.payload)
	case codecOpus:
		if st.opus == nil {
			st.opus = newOpusDecoder()
		}
		var ok bool
		if pcm, ok = st.opus.decode(st.pcm[:], p.payload); !ok {
			st.c.undecodable++
			return
		}
	}
	if p.paused {
		return // decoded only to keep the decoder's state in step
	}
	st.track.put(pos, pcm)
}

// placeByClock anchors the timeline: the position the wall clock gives,
// moved to the head of the track if that is within half a packet (jitter,
// not a gap) or if it would overlap audio already written.
func (st *Stream) placeByClock(arrPos int64, n int) int64 {
	pos := arrPos - st.lag
	if st.track.started {
		head := st.track.head()
		if d := pos - head; d < 0 || d <= int64(n/2) {
			pos = head
		}
	}
	st.lag = arrPos - pos
	return pos
}

// flushStale reads what waits in the socket, plays out held packets that
// have waited longer than the reorder window (the stream went quiet with a
// hole in it) and writes the buffer out. The syncer calls it before each
// sync, so that the sync holds all that arrived before it, whatever the
// readers' pace, and the tail of a stream reaches the disk without a timer
// per stream. A missing packet that arrived in time but waited in the
// socket is so taken before the hole is given up.
func (st *Stream) flushStale(now int64) {
	st.collect()
	if st.held > 0 && now-st.holdSince >= st.sess.reorder {
		st.drain()
	}
	st.track.flush()
}

// Label is the stream's label.
func (st *Stream) Label() string { return st.label }

// Stats returns the stream's counters.
func (st *Stream) Stats() StreamStats {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stats()
}

// stats returns the stream's counters. The caller holds st.mu.
func (st *Stream) stats() StreamStats {
	audio := time.Duration(st.track.head() * nsPerSample)
	return st.c.export(st.label, st.side, time.Duration((st.jitter>>4)*nsPerSample), audio)
}
