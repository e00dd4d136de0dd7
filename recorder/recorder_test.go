package recorder_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// testLogger is where the recorder under test logs; slog.Default() helps
// when a test fails.
var testLogger = cvtest.Quiet

type fixture struct {
	d   *cvtest.Deployment
	rec *recorder.Recorder
	sip netip.AddrPort
}

func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// freeSIPPort returns a port free for both UDP and TCP on 127.0.0.1, as the
// recorder listens on both (cmd/callvault does).
func freeSIPPort(t testing.TB) int {
	t.Helper()
	for range 20 {
		port := freeUDPPort(t)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// newFixture starts a recorder on a UDP port of 127.0.0.1. Options change
// the recorder before it starts (an allow-list, a TCP listener).
func newFixture(t testing.TB, opts ...func(*recorder.Recorder)) *fixture {
	t.Helper()
	d := cvtest.New(t)
	oak := &callvault.Academy{Slug: "oakfield", Name: "Oakfield Primary",
		Numbers:    []callvault.Range{{First: "+441632960000", Last: "+441632960099"}},
		Extensions: []callvault.Range{{First: "2000", Last: "2099"}}}
	if err := d.Academies.CreateAcademy(d.Sys, oak); err != nil {
		t.Fatal(err)
	}
	src := &callvault.Source{Name: "sbc", Kind: callvault.SourceSIPREC, TokenHash: "siprec-test"}
	if err := d.Sources.CreateSource(d.Sys, src); err != nil {
		t.Fatal(err)
	}
	port := freeSIPPort(t)
	r := &recorder.Recorder{Listen: []recorder.Listener{{Network: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}},
		SpoolDir: t.TempDir(), Archive: d.Archive, Source: src, Academies: d.Academies, Logger: testLogger,
		PortMin: 30000 + 2*(port%4000), PortMax: 30000 + 2*(port%4000) + 200, Inactivity: 2 * time.Second}
	for _, o := range opts {
		o(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); cancel() })
	return &fixture{d: d, rec: r, sip: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
}

// waitRecording waits for the recording of a Call-ID to be stored.
func (f *fixture) waitRecording(t testing.TB, callID string) *callvault.Recording {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rec, err := f.d.Recordings.FindRecordingBySourceRef(f.d.Sys, f.rec.Source.ID, callID); err == nil {
			return rec
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no recording for Call-ID %s", callID)
	return nil
}

// channels decrypts a stored recording and returns its two channels.
func (f *fixture) channels(t testing.TB, rec *callvault.Recording) (left, right []int16) {
	t.Helper()
	b, err := f.d.Blobs.Open(context.Background(), rec.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	plain, size, err := f.d.Vault.Decrypt(b, b.Size(), rec.ID, rec.KeyEpoch)
	if err != nil {
		t.Fatal(err)
	}
	wav, err := io.ReadAll(io.NewSectionReader(plain, 0, size))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Codec != "pcm16" || rec.Channels != 2 || rec.SampleRate != 8000 {
		t.Fatalf("recording is %s %d ch %d Hz, want pcm16 stereo 8 kHz", rec.Codec, rec.Channels, rec.SampleRate)
	}
	data := wav[rec.DataOffset : rec.DataOffset+rec.DataSize]
	for i := 0; i+4 <= len(data); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(data[i+2:])))
	}
	return left, right
}

// dialAndSend opens call from a client of its own, as Dial does, and sends
// the first audio, before. finishAndCheck ends it.
func (f *fixture) dialAndSend(t *testing.T, call siprectest.Call, before [2][]int16) *siprectest.Session {
	t.Helper()
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.Dial(context.Background(), call)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Send(context.Background(), legsPCMU(before)); err != nil {
		t.Fatal(err)
	}
	return s
}

// finishAndCheck sends the last audio of a session made by Dial, hangs up,
// and checks that each channel of the stored recording holds what was
// sent before (around whatever the test did in between) and after: at
// least 99% of the samples of each.
func (f *fixture) finishAndCheck(t *testing.T, s *siprectest.Session, callID, between string, before, after [2][]int16) *callvault.Recording {
	t.Helper()
	ctx := context.Background()
	if err := s.Send(ctx, legsPCMU(after)); err != nil {
		t.Fatal(err)
	}
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	rec := f.waitRecording(t, callID)
	left, right := f.channels(t, rec)
	for i, ch := range [][]int16{left, right} {
		_, okB := audio.Find(ch, before[i])
		_, okA := audio.Find(ch, after[i])
		if okB < 0.99 || okA < 0.99 {
			t.Errorf("channel %d: the audio before %s (%.1f%%) or after (%.1f%%) is not all there", i, between, 100*okB, 100*okA)
		}
	}
	return rec
}

// speechPCMU is a second of speech-like audio as it comes through PCMU.
func speechPCMU(seed int64) []int16 {
	return g711RoundTrip(audio.SpeechLike(seed, 8000, 8000), "PCMU")
}

// legsPCMU is the two legs' audio as 20 ms PCMU payloads, for Send.
func legsPCMU(pcm [2][]int16) [2][][]byte {
	return [2][][]byte{siprectest.EncodeG711("PCMU", pcm[0], 160), siprectest.EncodeG711("PCMU", pcm[1], 160)}
}

// g711RoundTrip is what the recorder can at best hear of pcm.
func g711RoundTrip(pcm []int16, codec string) []int16 {
	raw := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(s))
	}
	var dec []byte
	if codec == "PCMA" {
		dec = g711.DecodeAlaw(g711.EncodeAlaw(raw))
	} else {
		dec = g711.DecodeUlaw(g711.EncodeUlaw(raw))
	}
	out := make([]int16, len(pcm))
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(dec[2*i:]))
	}
	return out
}

// A recording session from a Go SIPREC client: two streams of G.711 audio
// become one stereo recording whose left channel is exactly the caller's
// audio and right the staff's, with the metadata's participants, the
// direction and the academy, as long as the session.
func TestRecordsASession(t *testing.T) {
	for _, codec := range []string{"PCMU", "PCMA"} {
		t.Run(codec, func(t *testing.T) {
			f := newFixture(t)
			caller, callee := audio.SpeechLike(1, 24000, 8000), audio.SpeechLike(2, 24000, 8000)
			c, err := siprectest.NewClient(f.sip)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			callID := "call-" + codec + "@sbc.example"
			start := time.Now()
			res, err := c.Run(context.Background(), siprectest.Call{CallID: callID, Codec: codec,
				Caller:      siprectest.Party{AOR: "sip:+447700900123@pstn.example", Name: "Parent"},
				Callee:      siprectest.Party{AOR: "sip:2001@pbx.example", Name: "Reception"},
				CallerAudio: caller, CalleeAudio: callee})
			session := time.Since(start)
			if err != nil {
				t.Fatalf("session: %v (status %v)", err, res)
			}
			for _, st := range res.Answer.Streams {
				if st.Direction != "recvonly" || st.Port == 0 {
					t.Errorf("answer stream %s: %s port %d, want recvonly on a port", st.Label, st.Direction, st.Port)
				}
			}
			rec := f.waitRecording(t, callID)
			if rec.Academy != "oakfield" || rec.Direction != callvault.DirectionInbound || rec.SourceKind != callvault.SourceSIPREC {
				t.Errorf("recording: academy %s, direction %s, source %s; want oakfield, inbound, siprec", rec.Academy, rec.Direction, rec.SourceKind)
			}
			var ext, staff callvault.Participant
			for _, p := range rec.Participants {
				if p.Side == callvault.SideExternal {
					ext = p
				} else {
					staff = p
				}
			}
			if ext.Number != "+447700900123" || staff.Extension != "2001" || staff.Name != "Reception" {
				t.Errorf("participants = %+v", rec.Participants)
			}
			if rec.Duration < 3*time.Second || rec.Duration > session+20*time.Millisecond {
				t.Errorf("duration %v; the audio lasts 3 s and the session %v", rec.Duration, session)
			}
			left, right := f.channels(t, rec)
			wantL, wantR := g711RoundTrip(caller, codec), g711RoundTrip(callee, codec)
			offL, okL := audio.Find(left, wantL)
			offR, okR := audio.Find(right, wantR)
			if okL < 0.99 || okR < 0.99 {
				t.Fatalf("the channels do not hold the audio sent (left at %d: %.2f%% of samples, right at %d: %.2f%%)", offL, 100*okL, offR, 100*okR)
			}
			// Both legs were sent at the same instants; each stream is
			// anchored by its first packet's arrival.
			if d := offL - offR; d < -40 || d > 40 {
				t.Errorf("channels not aligned: left starts at sample %d, right at %d (over 5 ms apart)", offL, offR)
			}
		})
	}
}

// Only configured recording clients may open sessions, and an INVITE that
// is not a recording session is refused.
func TestRefusesStrangersAndPlainCalls(t *testing.T) {
	f := newFixture(t, func(r *recorder.Recorder) { r.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} })
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(context.Background(), siprectest.Call{CallID: "stranger@x", CallerAudio: make([]int16, 800), CalleeAudio: make([]int16, 800),
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}})
	if err == nil || res == nil || res.Status != 403 {
		t.Fatalf("a client outside the allow-list got %v, %v; want 403", res, err)
	}
	if f.rec.Sessions() != 0 {
		t.Error("a refused INVITE left a session")
	}
}
