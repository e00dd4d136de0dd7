package media_test

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
)

// harness is one external stream on a fake clock, with lock-step sending
// and the expected left channel.
type harness struct {
	t      *testing.T
	c      *clock
	sess   *media.Session
	snd    *sender
	speech []int16
	want   timeline
}

func newHarness(t *testing.T, secs int, cfg media.Config) *harness {
	c := &clock{t: t0}
	conn := listen(t)
	snd := newSender(t, conn)
	sess := session(t, c, cfg, media.StreamConfig{Label: "a", Side: callvault.SideExternal, Conn: conn, Remote: addrOf(snd.conn)})
	snd.tgt = lockstep(sess, 0)
	return &harness{t: t, c: c, sess: sess, snd: snd, speech: audio.SpeechLike(5, secs*8000, 8000), want: make(timeline, secs*8000)}
}

// at sets the clock to arrival (in samples since the start).
func (h *harness) at(arrival int64) {
	h.c.Set(t0.Add(time.Duration(arrival) * time.Second / 8000))
}

// send sends, at arrival, a PCMU packet carrying the speech at content, and
// expects it to be heard at content unless heard is false.
func (h *harness) send(arrival int64, ssrc uint32, seq uint16, ts uint32, content int64, heard bool) {
	h.t.Helper()
	payload := encode(0, h.speech[content:content+160])
	h.at(arrival)
	h.snd.rtp(pkt(ssrc, seq, ts, 0, payload))
	if heard {
		h.want.put(content, decode(0, payload))
	}
}

func (h *harness) finish(at int64) (*media.Spool, media.StreamStats) {
	h.t.Helper()
	h.at(at)
	sp, err := h.sess.Finish()
	if err != nil {
		h.t.Fatalf("Finish: %v", err)
	}
	left, right := render(h.t, sp)
	compare(h.t, "left", left, h.want[:at])
	if slices.ContainsFunc(right, func(v int16) bool { return v != 0 }) {
		h.t.Error("the right channel has sound, but no staff stream was sent")
	}
	return sp, h.sess.Stats().Streams[0]
}

// TestTimelineFollowsTimestamps: packets arrive with up to 15 ms of jitter
// and a 200 ms silence-suppression gap (no packets, timestamps and wall
// clock both move on): positions come from the timestamps, exactly.
func TestTimelineFollowsTimestamps(t *testing.T) {
	h := newHarness(t, 4, media.Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	seq := uint16(0)
	for k := range 150 {
		pos := int64(800 + 160*k)
		if k >= 60 && k < 70 { // DTX
			continue
		}
		jitter := int64(0)
		if k > 0 {
			jitter = rng.Int64N(120) // up to 15 ms late, in order
		}
		h.send(pos+jitter, 0xabc, seq, uint32(7000+160*k), pos, true)
		seq++ // DTX skips timestamps, not sequence numbers
	}
	_, st := h.finish(4 * 8000)
	if st.Lost != 0 || st.Resyncs != 0 || st.Reordered != 0 {
		t.Errorf("lost %d, resyncs %d, reordered %d; want 0 (a DTX gap is not loss)", st.Lost, st.Resyncs, st.Reordered)
	}
	if st.Jitter < 2*time.Millisecond || st.Jitter > 8*time.Millisecond {
		t.Errorf("RFC 3550 jitter %v for arrivals 0-15 ms late, want about 5 ms", st.Jitter)
	}
}

// TestSSRCChangeAfterPause: the sender goes quiet for 2 s and comes back
// with a new SSRC, sequence and timestamps: the new audio goes where the
// wall clock puts it, with silence in between.
func TestSSRCChangeAfterPause(t *testing.T) {
	h := newHarness(t, 5, media.Config{})
	for k := range 50 {
		pos := int64(800 + 160*k)
		h.send(pos, 1, uint16(100+k), uint32(160*k), pos, true)
	}
	for k := range 50 {
		pos := int64(800 + 160*50 + 16000 + 160*k)
		h.send(pos, 2, uint16(60000+k), uint32(3e9)+uint32(160*k), pos, true)
	}
	_, st := h.finish(5 * 8000)
	if st.SSRCChanges != 1 || st.Resyncs != 0 || st.Lost != 0 {
		t.Errorf("%d SSRC changes, %d resyncs, %d lost; want 1, 0, 0", st.SSRCChanges, st.Resyncs, st.Lost)
	}
}

// TestFrozenTimestamps: during a 3 s hold the sender sends nothing and its
// timestamps stand still, then carry on from where they were. The wall clock
// wins: the audio after the hold is 3 s later than the timestamps say.
func TestFrozenTimestamps(t *testing.T) {
	h := newHarness(t, 6, media.Config{})
	for k := range 100 {
		pos := int64(800 + 160*k)
		if k >= 50 {
			pos += 3 * 8000
		}
		h.send(pos, 9, uint16(k), uint32(160*k), pos, true)
	}
	_, st := h.finish(6 * 8000)
	if st.Resyncs != 1 || st.Lost != 0 {
		t.Errorf("%d resyncs, %d lost; want 1, 0", st.Resyncs, st.Lost)
	}
}

// TestTimestampJump: the timestamps leap 10 s ahead while the packets keep
// coming every 20 ms: the audio stays continuous instead of leaving 10 s of
// silence (and a file hole) that never happened.
func TestTimestampJump(t *testing.T) {
	h := newHarness(t, 3, media.Config{})
	for k := range 100 {
		pos := int64(800 + 160*k)
		ts := uint32(160 * k)
		if k >= 40 {
			ts += 80000
		}
		h.send(pos, 9, uint16(k), ts, pos, true)
	}
	_, st := h.finish(3 * 8000)
	if st.Resyncs != 1 {
		t.Errorf("%d resyncs, want 1", st.Resyncs)
	}
}

// TestSequenceJump: a sender restarts its sequence numbers without changing
// SSRC. One stray packet is not believed (RFC 3550 probation); two in a
// row are.
func TestSequenceJump(t *testing.T) {
	h := newHarness(t, 3, media.Config{})
	for k := range 40 {
		pos := int64(800 + 160*k)
		h.send(pos, 9, uint16(k), uint32(160*k), pos, true)
	}
	h.send(800+160*40, 9, 30000, 1, 800+160*40, false) // stray
	for k := 40; k < 100; k++ {
		pos := int64(800 + 160*k)
		h.send(pos, 9, uint16(20000+k), uint32(160*k), pos, k > 40) // the first is on probation
	}
	_, st := h.finish(3 * 8000)
	if st.Late != 2 || st.Lost != 0 { // the stray and the first of the new run
		t.Errorf("late %d, lost %d; want 2, 0", st.Late, st.Lost)
	}
}

// TestPauseResume: pausing keeps the timeline going with silence, drops the
// audio that arrives meanwhile (card numbers must not reach the disk), and
// reports the interval, durably.
func TestPauseResume(t *testing.T) {
	h := newHarness(t, 4, media.Config{})
	for k := range 175 {
		pos := int64(160 * k)
		switch pos {
		case 8000:
			h.at(pos)
			if err := h.sess.Pause(); err != nil {
				t.Fatal(err)
			}
			if err := h.sess.Pause(); err != nil { // again: nothing happens
				t.Fatal(err)
			}
		case 16000:
			h.at(pos)
			if err := h.sess.Resume(); err != nil {
				t.Fatal(err)
			}
		case 24000:
			h.at(pos)
			if err := h.sess.Pause(); err != nil { // still paused at the end
				t.Fatal(err)
			}
		}
		paused := pos >= 8000 && pos < 16000 || pos >= 24000
		h.send(pos, 3, uint16(k), uint32(160*k), pos, !paused)
	}
	onDisk, err := media.OpenSpool(h.sess.Dir())
	if err != nil {
		t.Fatal(err)
	}
	sp, st := h.finish(4 * 8000)
	want := []media.Interval{{From: time.Second, To: 2 * time.Second}, {From: 3 * time.Second, To: 4 * time.Second}}
	if !slices.Equal(sp.Paused, want) {
		t.Errorf("Paused = %v, want %v", sp.Paused, want)
	}
	// Before Finish, the open pause runs to the spool's last sign of life.
	if len(onDisk.Paused) != 2 || onDisk.Paused[0] != want[0] || onDisk.Paused[1].From != want[1].From || !onDisk.Interrupted {
		t.Errorf("before Finish the spool says paused %v, interrupted %v; want %v (the last open), true", onDisk.Paused, onDisk.Interrupted, want)
	}
	// Render silences pauses anyway; the point is that the audio never
	// reached the spool.
	raw, err := os.ReadFile(filepath.Join(sp.Dir, sp.Streams[0].File))
	if err != nil {
		t.Fatal(err)
	}
	for _, iv := range want {
		a, b := 2*int(iv.From/(time.Second/8000)), min(len(raw), 2*int(iv.To/(time.Second/8000)))
		if i := slices.IndexFunc(raw[a:b], func(c byte) bool { return c != 0 }); i >= 0 {
			t.Errorf("the spool file holds sound at sample %d, in the pause %v", (a+i)/2, iv)
		}
	}
	if st.Paused != 75 || st.Lost != 0 {
		t.Errorf("%d packets paused, %d lost; want 75, 0", st.Paused, st.Lost)
	}
	if err := h.sess.Resume(); callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Errorf("Resume after Finish = %v, want ECONFLICT", err)
	}
}

// TestLatch: without a negotiated address (or with Latch) the stream
// accepts the first source that sends RTP, and only it.
func TestLatch(t *testing.T) {
	for _, withRemote := range []bool{false, true} {
		c := &clock{t: t0}
		conn := listen(t)
		first, second := newSender(t, conn), newSender(t, conn)
		sc := media.StreamConfig{Label: "a", Side: callvault.SideStaff, Conn: conn}
		if withRemote {
			sc.Remote, sc.Latch = netip.MustParseAddrPort("192.0.2.1:4000"), true // what the SDP says; NAT says otherwise
		}
		sess := session(t, c, media.Config{}, sc)
		first.tgt = lockstep(sess, 0)
		second.tgt = first.tgt
		first.raw([]byte("not RTP")) // does not latch
		second.rtp(pkt(1, 1, 160, 0, make([]byte, 160)))
		first.rtp(pkt(1, 2, 320, 0, make([]byte, 160)))
		second.rtp(pkt(1, 3, 480, 0, make([]byte, 160)))
		if _, err := sess.Finish(); err != nil {
			t.Fatal(err)
		}
		st := sess.Stats().Streams[0]
		if st.Packets != 2 || st.WrongSource != 1 || st.Malformed != 1 {
			t.Errorf("Remote set %v: %d packets, %d from the wrong source, %d malformed; want 2, 1, 1", withRemote, st.Packets, st.WrongSource, st.Malformed)
		}
	}
}

// TestLateStart: a stream whose first packet comes 10 minutes into the
// session leaves a hole in its file, not 10 minutes of written zeros, and
// renders as silence up to it.
func TestLateStart(t *testing.T) {
	h := newHarness(t, 1, media.Config{})
	h.speech = audio.SpeechLike(5, 8000, 8000)
	start := int64(10 * 60 * 8000)
	h.send(start, 1, 1, 1, 0, false)
	h.send(start+160, 1, 2, 161, 160, false)
	h.at(start + 8000)
	sp, err := h.sess.Finish()
	if err != nil {
		t.Fatal(err)
	}
	left, _ := render(t, sp)
	want := make([]int16, len(left))
	copy(want[start:], decode(0, encode(0, h.speech[:320])))
	compare(t, "left", left, want)
	if st := h.sess.Stats().Streams[0]; st.Audio != 10*time.Minute+40*time.Millisecond {
		t.Errorf("Audio = %v, want 10m0.04s", st.Audio)
	}
	used := diskUsage(t, sp)
	if used > 64<<10 {
		t.Errorf("the spool file of a stream with 40 ms of audio uses %d bytes on disk", used)
	}
}

// TestLateFirstPacket: the first packet arrives 30 ms late (the sender was
// descheduled), the rest on time, and the session ends as the last one
// arrives. The stream is placed by its first packet, so it runs 30 ms late
// throughout; the session lasts until its audio ends, and none of it is
// cut off.
func TestLateFirstPacket(t *testing.T) {
	h := newHarness(t, 2, media.Config{})
	const late = 240 // 30 ms
	want := make([]int16, 16000+late)
	for k := range 99 {
		pos := int64(160 * k)
		arrival := pos + 160 // sent as its 20 ms is over
		if k == 0 {
			arrival += late
		}
		h.send(arrival, 7, uint16(k), uint32(160*k), pos, false)
		copy(want[pos+160+late:], decode(0, encode(0, h.speech[pos:pos+160])))
	}
	h.at(99 * 160)
	sp, err := h.sess.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if d, end := sp.Duration(), time.Duration(len(want))*time.Second/8000; d != end {
		t.Errorf("the session lasts %v; want %v, until the last audio ends", d, end)
	}
	left, _ := render(t, sp)
	compare(t, "left", left, want[:len(left)])
	if st := h.sess.Stats().Streams[0]; st.Lost != 0 || st.Resyncs != 0 {
		t.Errorf("lost %d, resyncs %d; want 0, 0", st.Lost, st.Resyncs)
	}
}
