package media_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
)

// TestHelperCrashChild is the child of TestKillRecovery: a session on the
// real clock whose socket's port it prints, then it waits to be killed.
func TestHelperCrashChild(t *testing.T) {
	dir := os.Getenv("CALLVAULT_MEDIA_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestKillRecovery")
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = media.NewSession(media.Config{Dir: dir, ID: "crash", FlushEvery: 40 * time.Millisecond, SyncEvery: 100 * time.Millisecond,
		Meta: []byte(`{"call_id":"abc@pbx"}`)},
		media.StreamConfig{Label: "1", Side: callvault.SideExternal, Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(conn.LocalAddr().(*net.UDPAddr).Port)
	select {}
}

// TestKillRecovery: a recording process is killed with SIGKILL a few hundred
// milliseconds after the last packet. Recover finds the session, marked
// interrupted, with its metadata, and renders every sample that was sent,
// in place and contiguous; the session lasts past the audio (the syncer
// recorded that it was still alive).
func TestKillRecovery(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CALLVAULT_MEDIA_CRASH_DIR="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatal("the child printed no port")
	}
	port, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil {
		t.Fatalf("child said %q", sc.Text())
	}
	snd := &sender{t: t, conn: listen(t), to: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}

	// One second of µ-law in which no sample is zero, at the real pace.
	var sent []int16
	tick := time.NewTicker(20 * time.Millisecond)
	for k := range 50 {
		payload := noise(uint64(k))
		snd.rtp(pkt(77, uint16(k), uint32(160*k), 0, payload))
		sent = append(sent, decode(0, payload)...)
		<-tick.C
	}
	tick.Stop()
	time.Sleep(400 * time.Millisecond) // > FlushEvery + SyncEvery
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	spools, err := media.Recover(dir)
	if err != nil || len(spools) != 1 {
		t.Fatalf("Recover = %d spools, %v; want 1", len(spools), err)
	}
	sp := spools[0]
	if !sp.Interrupted || sp.ID != "crash" || string(sp.Meta) != `{"call_id":"abc@pbx"}` {
		t.Errorf("recovered %q, interrupted %v, meta %q", sp.ID, sp.Interrupted, sp.Meta)
	}
	left, right := render(t, sp)
	first := slices.IndexFunc(left, func(v int16) bool { return v != 0 })
	if first < 0 || first > 8000 {
		t.Fatalf("the first sound is at sample %d; want within the first second", first)
	}
	if len(left) < first+len(sent) {
		t.Fatalf("the recording has %d samples; the audio alone needs %d", len(left), first+len(sent))
	}
	compare(t, "left", left[first:first+len(sent)], sent)
	if slices.ContainsFunc(left[first+len(sent):], func(v int16) bool { return v != 0 }) || slices.ContainsFunc(right, func(v int16) bool { return v != 0 }) {
		t.Error("sound outside the audio that was sent")
	}
	if tail := time.Duration(len(left)-first-len(sent)) * time.Second / 8000; tail < 150*time.Millisecond {
		t.Errorf("the recording ends %v after the audio; the child lived 400 ms longer and synced every 100 ms", tail)
	}
	if err := sp.Remove(); err != nil {
		t.Fatal(err)
	}
	if spools, err := media.Recover(dir); len(spools) != 0 || err != nil {
		t.Errorf("after Remove, Recover = %d spools, %v", len(spools), err)
	}
}

// TestRecover: a finished spool that was not removed (the process died
// during the ingest) comes back, not interrupted, with its real end; a
// folder that is not a spool is reported without hiding the others.
func TestRecover(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	sess := session(t, c, media.Config{Dir: dir, ID: "done"},
		media.StreamConfig{Label: "1", Side: callvault.SideStaff, Conn: listen(t), Latch: true})
	c.Set(t0.Add(90 * time.Second))
	if _, err := sess.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "junk"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "junk", "session.json"), []byte(`{"version": 1, "id": "../x"}`), 0o600)
	os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o600)
	spools, err := media.Recover(dir)
	if len(spools) != 1 || spools[0].ID != "done" || spools[0].Interrupted || spools[0].Duration() != 90*time.Second || !spools[0].Start.Equal(t0) {
		t.Errorf("Recover = %+v", spools)
	}
	if err == nil || !strings.Contains(err.Error(), "junk") {
		t.Errorf("Recover error %v, want one about the junk folder", err)
	}
	if spools[0].Streams[0].Label != "1" || spools[0].Streams[0].Side != callvault.SideStaff {
		t.Errorf("streams %+v", spools[0].Streams)
	}

	// The header is JSON a person can read.
	b, err := os.ReadFile(filepath.Join(dir, "done", "session.json"))
	var h map[string]any
	if err != nil || json.Unmarshal(b, &h) != nil || h["rate"] != float64(8000) || h["format"] != "s16le" || h["end"] == nil {
		t.Errorf("session.json: %s (%v)", b, err)
	}
}

// TestSides: streams on one side are mixed (with saturation), a mixed
// stream goes to both channels, and a stream's files never mix into the
// wrong channel.
func TestSides(t *testing.T) {
	c := &clock{t: t0}
	var conns []*net.UDPConn
	var cfgs []media.StreamConfig
	for i, side := range []string{callvault.SideExternal, callvault.SideExternal, callvault.SideStaff, media.SideMixed} {
		conns = append(conns, listen(t))
		cfgs = append(cfgs, media.StreamConfig{Label: strconv.Itoa(i), Side: side, Conn: conns[i], Latch: true})
	}
	sess := session(t, c, media.Config{}, cfgs...)
	// One µ-law level per stream; 0x80 is the loudest (+32124).
	codes := []byte{0x80, 0x80, 0x9F, 0xDF}
	for i, conn := range conns {
		snd := newSender(t, conn)
		snd.tgt = lockstep(sess, i)
		payload := make([]byte, 160)
		for j := range payload {
			payload[j] = codes[i]
		}
		snd.rtp(pkt(uint32(i), 1, 1, 0, payload))
	}
	c.Set(t0.Add(20 * time.Millisecond))
	sp, err := sess.Finish()
	if err != nil {
		t.Fatal(err)
	}
	left, right := render(t, sp)
	v := func(code byte) int32 { return int32(decode(0, []byte{code})[0]) }
	wantL := int16(min(32767, v(0x80)+v(0x80)+v(0xDF)))
	wantR := int16(v(0x9F) + v(0xDF))
	if len(left) != 160 || left[0] != wantL || right[0] != wantR || left[159] != wantL || right[159] != wantR {
		t.Errorf("%d frames, first %d/%d, last %d/%d; want 160 frames of %d/%d", len(left), left[0], right[0], left[159], right[159], wantL, wantR)
	}
}

// TestG722Stream: G.722 (static payload type 9) is decoded per stream with
// the decoder's state carried from packet to packet, to its lower sub-band.
func TestG722Stream(t *testing.T) {
	c := &clock{t: t0}
	conn := listen(t)
	snd := newSender(t, conn)
	sess := session(t, c, media.Config{}, media.StreamConfig{Label: "w", Side: callvault.SideExternal, Conn: conn, Remote: addrOf(snd.conn),
		PayloadTypes: map[uint8]string{9: "G722/8000"}})
	snd.tgt = lockstep(sess, 0)
	rng := rand.New(rand.NewPCG(3, 3))
	dec := audio.NewG722Decoder(8000)
	want := make(timeline, 8000)
	for k := range 40 {
		payload := make([]byte, 160)
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		c.Set(t0.Add(time.Duration(k) * 20 * time.Millisecond))
		snd.rtp(pkt(5, uint16(k), uint32(160*k), 9, payload))
		want.put(int64(160*k), dec.Decode(nil, payload))
	}
	c.Set(t0.Add(time.Second))
	sp, err := sess.Finish()
	if err != nil {
		t.Fatal(err)
	}
	left, _ := render(t, sp)
	compare(t, "G.722", left, want)
	if st := sess.Stats().Streams[0]; st.Codecs["G722"] != 40 {
		t.Errorf("codecs %v, want 40 G722", st.Codecs)
	}
}

// TestRealClock: two streams paced by a real ticker for 1.5 s, on the real
// clock. The recording is exactly as long as the session, each stream's
// audio is there in one contiguous piece, and the two are aligned to within
// a packet.
func TestRealClock(t *testing.T) {
	connA, connB := listen(t), listen(t)
	a, b := newSender(t, connA), newSender(t, connB)
	sess, err := media.NewSession(media.Config{Dir: t.TempDir(), ID: "real"},
		media.StreamConfig{Label: "a", Side: callvault.SideExternal, Conn: connA, Remote: addrOf(a.conn)},
		media.StreamConfig{Label: "b", Side: callvault.SideStaff, Conn: connB, Remote: addrOf(b.conn)})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	var sentL, sentR []int16
	tick := time.NewTicker(20 * time.Millisecond)
	for k := range 75 {
		pl, pr := noise(uint64(k)), noise(uint64(1000+k))
		a.rtp(pkt(1, uint16(k), uint32(160*k), 0, pl))
		b.rtp(pkt(2, uint16(k), uint32(160*k), 8, pr))
		sentL, sentR = append(sentL, decode(0, pl)...), append(sentR, decode(8, pr)...)
		<-tick.C
	}
	tick.Stop()
	time.Sleep(100 * time.Millisecond)
	before := time.Now()
	sp, err := sess.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if d := before.Sub(sess.Start()); sp.Duration() < d || sp.Duration() > d+time.Second {
		t.Errorf("recording of %v for a session that ran %v until Finish", sp.Duration(), d)
	}
	if sp.Frames() != int64(sp.Duration()/(time.Second/8000)) {
		t.Errorf("%d frames for %v", sp.Frames(), sp.Duration())
	}
	left, right := render(t, sp)
	offL, offR := find(left, sentL), find(right, sentR)
	if offL < 0 || offR < 0 {
		t.Fatalf("the sent audio is not in the recording in one piece: left at %d, right at %d", offL, offR)
	}
	if d := offL - offR; d > 160 || d < -160 {
		t.Errorf("left starts at sample %d, right at %d: more than 20 ms apart", offL, offR)
	}
	if st := sess.Stats().Total; st.Lost != 0 || st.Resyncs != 0 {
		t.Errorf("on loopback: %d lost, %d resyncs", st.Lost, st.Resyncs)
	}
}

// noise is a G.711 payload of 160 random codes none of which decodes to 0
// in either law (µ-law 0x7F and 0xFF do), so audio can be found exactly.
func noise(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 99))
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = byte(rng.IntN(127)) | byte(rng.IntN(2))<<7
	}
	return payload
}

// find returns where want occurs in got, or -1.
func find(got, want []int16) int {
	for i := 0; i+len(want) <= len(got); i++ {
		if slices.Equal(got[i:i+len(want)], want) {
			return i
		}
	}
	return -1
}

// TestConfigErrors: what NewSession, AddStream and the session's methods
// refuse, with which code.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ok := func() media.StreamConfig {
		return media.StreamConfig{Label: "a", Side: callvault.SideExternal, Conn: listen(t), Latch: true}
	}
	with := func(f func(*media.StreamConfig)) media.StreamConfig { sc := ok(); f(&sc); return sc }
	tests := []struct {
		name    string
		cfg     media.Config
		streams []media.StreamConfig
		code    string
	}{
		{"no dir", media.Config{ID: "x"}, nil, callvault.EINVALID},
		{"no id", media.Config{Dir: dir}, nil, callvault.EINVALID},
		{"id with a slash", media.Config{Dir: dir, ID: "a/b"}, nil, callvault.EINVALID},
		{"id ..", media.Config{Dir: dir, ID: ".."}, nil, callvault.EINVALID},
		{"no label", media.Config{Dir: dir, ID: "x1"}, []media.StreamConfig{with(func(s *media.StreamConfig) { s.Label = "" })}, callvault.EINVALID},
		{"bad side", media.Config{Dir: dir, ID: "x2"}, []media.StreamConfig{with(func(s *media.StreamConfig) { s.Side = "left" })}, callvault.EINVALID},
		{"no socket", media.Config{Dir: dir, ID: "x3"}, []media.StreamConfig{with(func(s *media.StreamConfig) { s.Conn = nil })}, callvault.EINVALID},
		{"two labels alike", media.Config{Dir: dir, ID: "x4"}, []media.StreamConfig{ok(), ok()}, callvault.EINVALID},
		{"payload type 200", media.Config{Dir: dir, ID: "x7"}, []media.StreamConfig{with(func(s *media.StreamConfig) {
			s.PayloadTypes = map[uint8]string{200: "PCMU/8000"}
		})}, callvault.EINVALID},
	}
	for _, tt := range tests {
		s, err := media.NewSession(tt.cfg, tt.streams...)
		if callvault.ErrorCode(err) != tt.code || s != nil {
			t.Errorf("NewSession(%s) = %v, %v; want %s", tt.name, s, err, tt.code)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("failed sessions left %d folders behind", len(entries))
	}

	s, err := media.NewSession(media.Config{Dir: dir, ID: "x"}, ok())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := media.NewSession(media.Config{Dir: dir, ID: "x"}, ok()); callvault.ErrorCode(err) != callvault.ECONFLICT {
		t.Errorf("a second session x: %v, want ECONFLICT", err)
	}
	if _, err := s.AddStream(ok()); callvault.ErrorCode(err) != callvault.EINVALID {
		t.Errorf("AddStream with a label in use: %v, want EINVALID", err)
	}
	if _, err := s.AddStream(with(func(sc *media.StreamConfig) { sc.Label = "b" })); err != nil {
		t.Errorf("AddStream: %v", err)
	}
	if sp, err := s.Finish(); err != nil || len(sp.Streams) != 2 {
		t.Errorf("Finish = %v, %v; want two streams", sp, err)
	}
	for name, f := range map[string]func() error{
		"Pause":     s.Pause,
		"SetMeta":   func() error { return s.SetMeta(nil) },
		"Finish":    func() error { _, err := s.Finish(); return err },
		"AddStream": func() error { _, err := s.AddStream(with(func(sc *media.StreamConfig) { sc.Label = "c" })); return err },
	} {
		if err := f(); callvault.ErrorCode(err) != callvault.ECONFLICT {
			t.Errorf("%s after Finish: %v, want ECONFLICT", name, err)
		}
	}
}

func TestSupported(t *testing.T) {
	for enc, want := range map[string]bool{
		"PCMU": true, "pcma/8000": true, "G722/8000": true, "G722/8000/1": true, "telephone-event/8000": true, "CN/8000": true,
		"opus/48000/2": true, "OPUS/48000": true, "opus": true, "opus/48000/1": true, "telephone-event/48000": true,
		"opus/16000": false, "opus/48000/6": false, "PCMA/48000": false, "telephone-event/16000": false,
		"PCMU/16000": false, "G722/8000/2": false, "L16/8000": false, "": false,
	} {
		if got := media.Supported(enc); got != want {
			t.Errorf("Supported(%q) = %v, want %v", enc, got, want)
		}
	}
}
