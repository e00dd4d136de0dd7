package siprectest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// Load opens many recording sessions on one recorder at once, the way an
// SBC carrying that many calls would, to measure what the recorder takes.
//
// Sessions start at Rate per second; each streams its two legs of G.711
// from the moment it is answered. Once every session has been answered or
// refused, all stream together for Hold (the steady state), then the RTP
// stops and the sessions hang up at Rate per second.
//
// The RTP of all sessions is sent by a few goroutines (Senders), each with
// one socket, on one shared 20 ms clock, in batches (sendmmsg on Linux), so
// that the generator costs little next to the recorder it measures. The
// offers say so: both m= lines of a session name its sender's port. (A real
// SBC sends each stream from its own port; the recorder checks only the
// address, and receives each stream on its own socket either way.)
type Load struct {
	Client   *Client
	Sessions int
	Rate     float64       // sessions started, and ended, per second; default 50
	Hold     time.Duration // how long all sessions stream together
	Codec    string        // "PCMU" (default) or "PCMA"
	// CallerAudio and CalleeAudio are 8 kHz speech for the two legs,
	// encoded once and looped; each session starts at another place in
	// them. At least one 20 ms packet each.
	CallerAudio, CalleeAudio []int16
	Senders                  int // RTP sending goroutines and sockets; default 2
	// Call describes session i (its Call-ID and parties); the audio, codec
	// and ptime of what it returns are not used. Default: DefaultLoadCall.
	Call func(i int) Call
	// Held is called when every session has been answered or refused: the
	// steady state begins.
	Held func(LoadProgress)
	// Stopped is called when the hold is over and the RTP has stopped (and
	// had 250 ms to arrive), before any session hangs up. The hang-ups wait
	// for it to return.
	Stopped func(LoadProgress)
}

// LoadProgress is where a load stands.
type LoadProgress struct {
	Answered, Refused int
	Packets           uint64 // RTP packets sent so far
}

// LoadResult is what a load did.
type LoadResult struct {
	Sessions, Answered int
	// Refused counts the sessions that were not answered by final status;
	// 0 is no answer at all (timeout, transport error).
	Refused map[int]int
	Errors  []string // the first few distinct reasons sessions failed
	CallIDs []string // of the sessions answered

	Packets    uint64 // RTP packets sent
	SendErrors uint64 // packets the kernel would not send
	// MaxLag is how far behind its clock the sender fell at worst (when the
	// last packet of a tick left, against when the tick was due): a loaded
	// generator shows here, not as loss.
	MaxLag time.Duration

	Hungup, HangupFailed int
	Ramp, Held, Hangup   time.Duration // how long each phase took
}

// DefaultLoadCall is session i of a load: a parent on a mobile number
// (+447700900000 up) calling extension 2000-2099.
func DefaultLoadCall(run string) func(i int) Call {
	return func(i int) Call {
		return Call{CallID: fmt.Sprintf("load-%s-%d@siprectest", run, i),
			Caller: Party{AOR: fmt.Sprintf("sip:+447700%06d@pstn.example", 900000+i%100000), Name: "Parent"},
			Callee: Party{AOR: fmt.Sprintf("sip:20%02d@pbx.example", i%100), Name: "Reception"}}
	}
}

const (
	loadPtime   = 20 * time.Millisecond
	frameLen    = 160 // G.711 bytes (and samples) per 20 ms
	packetLen   = 12 + frameLen
	sendBatch   = 64 // packets per sendmmsg
	maxLoadErrs = 10
)

// Run runs the load and returns what it did. It fails only if the load
// cannot start; sessions that fail are counted in the result.
func (l *Load) Run(ctx context.Context) (*LoadResult, error) {
	if l.Client == nil || l.Sessions <= 0 {
		return nil, errors.New("siprectest: a load needs a client and sessions")
	}
	rate := l.Rate
	if rate <= 0 {
		rate = 50
	}
	call := l.Call
	if call == nil {
		call = DefaultLoadCall(fmt.Sprint(time.Now().UnixNano()))
	}
	pt := Call{Codec: l.Codec}.withDefaults().payloadType()
	legs := [2][]byte{encode(l.CallerAudio, pt), encode(l.CalleeAudio, pt)}
	if len(legs[0]) == 0 || len(legs[1]) == 0 {
		return nil, errors.New("siprectest: a load needs at least 20 ms of audio for each leg")
	}

	clock := time.Now()
	nsend := l.Senders
	if nsend <= 0 {
		nsend = 2
	}
	senders := make([]*sender, nsend)
	for i := range senders {
		s, err := newSender(l.Client.IP, clock)
		if err != nil {
			return nil, err
		}
		defer s.conn.Close()
		senders[i] = s
	}
	// One clock for all: every tick, each sender sends the packets of its
	// streams that have come due.
	ticks := make([]chan struct{}, len(senders))
	var swg sync.WaitGroup
	for i, s := range senders {
		ticks[i] = make(chan struct{}, 1)
		swg.Add(1)
		go func() { defer swg.Done(); s.run(ticks[i]) }()
	}
	stopClock := make(chan struct{})
	clockDone := make(chan struct{})
	go func() {
		defer close(clockDone)
		defer func() {
			for _, c := range ticks {
				close(c)
			}
		}()
		t := time.NewTicker(loadPtime)
		defer t.Stop()
		for {
			select {
			case <-stopClock:
				return
			case <-t.C:
			}
			for _, c := range ticks {
				select {
				case c <- struct{}{}:
				default: // still busy with the last tick; it catches up
				}
			}
		}
	}()
	stopRTP := func() {
		close(stopClock)
		<-clockDone
		swg.Wait()
	}

	res := &LoadResult{Sessions: l.Sessions, Refused: map[int]int{}}
	var (
		mu       sync.Mutex
		sessions = make([]*Session, l.Sessions)
		errSeen  = map[string]bool{}
		owg      sync.WaitGroup
	)
	progress := func() LoadProgress {
		mu.Lock()
		defer mu.Unlock()
		p := LoadProgress{Answered: res.Answered}
		for _, n := range res.Refused {
			p.Refused += n
		}
		for _, s := range senders {
			p.Packets += s.packets.Load()
		}
		return p
	}
	open := func(i int) {
		defer owg.Done()
		c := call(i)
		c.Codec = l.Codec
		snd := senders[i%len(senders)]
		octx, cancel := context.WithTimeout(ctx, 32*time.Second) // SIP Timer B
		defer cancel()
		s, err := l.Client.Open(octx, c, [2]int{snd.port, snd.port})
		if err == nil {
			offset := i * 7919 // frames: a different place in the audio for every session
			snd.add(&rtpStream{to: s.Dest[0], payload: legs[0], frame: offset, hdr: rtpHeader(pt, uint32(2*i))})
			snd.add(&rtpStream{to: s.Dest[1], payload: legs[1], frame: offset + 3, hdr: rtpHeader(pt, uint32(2*i+1))})
		}
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			sessions[i] = s
			res.Answered++
			res.CallIDs = append(res.CallIDs, c.CallID)
			return
		}
		status := 0
		if s != nil {
			status = s.Status
			s.Close()
		}
		res.Refused[status]++
		if msg := fmt.Sprintf("%d: %v", status, err); !errSeen[msg] && len(res.Errors) < maxLoadErrs {
			errSeen[msg] = true
			res.Errors = append(res.Errors, msg)
		}
	}

	start := time.Now()
	for i := range l.Sessions {
		if !sleepUntil(ctx, start.Add(time.Duration(float64(i)/rate*float64(time.Second)))) {
			break
		}
		owg.Add(1)
		go open(i)
	}
	owg.Wait()
	res.Ramp = time.Since(start)
	if l.Held != nil {
		l.Held(progress())
	}
	held := time.Now()
	sleepUntil(ctx, held.Add(l.Hold))
	res.Held = time.Since(held)
	stopRTP()
	time.Sleep(250 * time.Millisecond)
	if l.Stopped != nil {
		l.Stopped(progress())
	}

	hangup := time.Now()
	var hwg sync.WaitGroup
	k := 0
	for _, s := range sessions {
		if s == nil {
			continue
		}
		sleepUntil(context.Background(), hangup.Add(time.Duration(float64(k)/rate*float64(time.Second))))
		k++
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			defer s.Close()
			bctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
			defer cancel()
			err := s.Bye(bctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.HangupFailed++
				if msg := fmt.Sprintf("BYE: %v", err); !errSeen[msg] && len(res.Errors) < maxLoadErrs {
					errSeen[msg] = true
					res.Errors = append(res.Errors, msg)
				}
				return
			}
			res.Hungup++
		}()
	}
	hwg.Wait()
	res.Hangup = time.Since(hangup)
	for _, s := range senders {
		res.Packets += s.packets.Load()
		res.SendErrors += s.errors.Load()
		res.MaxLag = max(res.MaxLag, time.Duration(s.maxLag.Load()))
	}
	return res, nil
}

// sleepUntil waits for t or ctx, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// encode turns PCM into whole 20 ms frames of G.711.
func encode(pcm []int16, pt uint8) []byte {
	n := len(pcm) / frameLen * frameLen
	raw := make([]byte, 2*n)
	for i, s := range pcm[:n] {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(s))
	}
	if pt == 8 {
		return g711.EncodeAlaw(raw)
	}
	return g711.EncodeUlaw(raw)
}

func rtpHeader(pt uint8, n uint32) rtp.Header {
	// Distinct SSRCs, and sequence numbers and timestamps that start
	// anywhere, as RFC 3550 asks.
	return rtp.Header{Version: 2, PayloadType: pt, Marker: true, SSRC: 0x5e000000 + n,
		SequenceNumber: uint16(n * 40503), Timestamp: n * 2654435761}
}

// rtpStream is one leg of one session, as its sender sees it.
type rtpStream struct {
	to      netip.AddrPort
	hdr     rtp.Header
	payload []byte // the leg's audio, looped
	frame   int    // next frame of payload to send
	next    int64  // clock tick its next packet is due at
}

// sender sends the RTP of its streams from one socket.
type sender struct {
	conn  *net.UDPConn
	port  int
	clock time.Time
	w     *batchWriter

	mu      sync.Mutex
	streams []*rtpStream
	joined  []*rtpStream // answered since the last tick

	packets, errors atomic.Uint64
	maxLag          atomic.Int64
}

func newSender(ip netip.Addr, clock time.Time) (*sender, error) {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, err
	}
	// A tick of a thousand streams is 170 KB: room for a few.
	conn.SetWriteBuffer(4 << 20)
	w, err := newBatchWriter(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &sender{conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port, clock: clock, w: w}, nil
}

// add starts a stream at the next tick.
func (s *sender) add(st *rtpStream) {
	s.mu.Lock()
	s.joined = append(s.joined, st)
	s.mu.Unlock()
}

func (s *sender) tick() int64 { return int64(time.Since(s.clock) / loadPtime) }

// run sends, at every tick, each stream's packets that have come due: one
// normally, more after a tick was missed, so the streams keep time even
// when the generator is late.
func (s *sender) run(ticks <-chan struct{}) {
	for range ticks {
		due := s.tick()
		s.mu.Lock()
		for _, st := range s.joined {
			st.next = due
		}
		s.streams = append(s.streams, s.joined...)
		s.joined = s.joined[:0]
		streams := s.streams
		s.mu.Unlock()
		for _, st := range streams {
			for ; st.next <= due; st.next++ {
				b := s.w.next(st.to)
				if _, err := st.hdr.MarshalTo(b[:12]); err != nil {
					panic(err) // a 12-byte header always fits
				}
				n := len(st.payload) / frameLen
				copy(b[12:], st.payload[st.frame%n*frameLen:][:frameLen])
				st.frame++
				st.hdr.Marker = false
				st.hdr.SequenceNumber++
				st.hdr.Timestamp += frameLen
				if s.w.full() {
					s.flush()
				}
			}
		}
		s.flush()
		lag := time.Since(s.clock.Add(time.Duration(due) * loadPtime))
		if int64(lag) > s.maxLag.Load() {
			s.maxLag.Store(int64(lag))
		}
	}
}

func (s *sender) flush() {
	sent, failed := s.w.flush()
	s.packets.Add(uint64(sent))
	s.errors.Add(uint64(failed))
}
