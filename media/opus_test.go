package media_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
	"github.com/pion/opus/pkg/oggreader"
)

var updateOpus = flag.Bool("update-opus", false, "rewrite testdata/opus/*.opus with opusenc")

// opusCases are the encodings the recording is checked against libopus
// with: opusenc (libopus) settings that make each Opus mode, with the
// mode that must carry most of the packets. fixture names the file kept in
// testdata/opus for the tests and benchmarks that run without opus-tools.
var opusCases = []struct {
	name    string
	rate    int // of the speech given to opusenc
	args    []string
	mode    string // "SILK", "hybrid", "CELT"
	fixture string
	stereo  bool // two voices, left and right; the recording has their mean
}{
	{"SILK narrowband", 8000, []string{"--bitrate", "12", "--hard-cbr", "--framesize", "20", "--set-ctl-int", "4004=1101"}, "SILK", "silk-nb.opus", false},
	{"SILK wideband", 16000, []string{"--bitrate", "16", "--hard-cbr", "--framesize", "20"}, "SILK", "silk-wb.opus", false},
	{"SILK wideband 60 ms", 16000, []string{"--bitrate", "16", "--hard-cbr", "--framesize", "60"}, "SILK", "", false},
	{"hybrid", 48000, []string{"--bitrate", "32", "--hard-cbr", "--framesize", "20"}, "hybrid", "hybrid.opus", false},
	{"hybrid 10 ms VBR", 48000, []string{"--bitrate", "32", "--framesize", "10"}, "hybrid", "", false},
	{"CELT", 48000, []string{"--bitrate", "64", "--hard-cbr", "--framesize", "20"}, "CELT", "celt.opus", false},
	{"CELT 5 ms", 48000, []string{"--bitrate", "48", "--hard-cbr", "--framesize", "5"}, "CELT", "", false},
	{"CELT stereo", 48000, []string{"--bitrate", "96", "--hard-cbr", "--framesize", "20"}, "CELT", "", true},
	{"hybrid stereo", 48000, []string{"--bitrate", "40", "--hard-cbr", "--framesize", "20"}, "hybrid", "", true},
}

// needOpusTools skips the test when opus-tools is not installed, except in
// CI, which must install it.
func needOpusTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"opusenc", "opusdec"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found: CI must install the Debian package opus-tools", tool)
			}
			t.Skipf("%s not found: install opus-tools to compare with libopus", tool)
		}
	}
}

// opusEncode encodes speech (one or two channels at rate) with opusenc and
// its args, and returns the Ogg Opus file's path.
func opusEncode(t *testing.T, dir string, rate int, args []string, speech ...[]int16) string {
	t.Helper()
	wav, ogg := filepath.Join(dir, "in.wav"), filepath.Join(dir, "out.opus")
	var b bytes.Buffer
	if err := audio.WriteWAV(&b, audio.CodecPCM16, rate, speech...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wav, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"--quiet"}, args...), wav, ogg)
	if out, err := exec.Command("opusenc", args...).CombinedOutput(); err != nil {
		t.Fatalf("opusenc %v: %v\n%s", args, err, out)
	}
	return ogg
}

// opusdec8k decodes an Ogg Opus file with libopus at 8 kHz, without
// dithering: the reference the recording is compared with. Stereo is
// mixed down to the mean of the channels.
func opusdec8k(t *testing.T, ogg string) []int16 {
	t.Helper()
	out := filepath.Join(filepath.Dir(ogg), "ref.wav")
	if b, err := exec.Command("opusdec", "--quiet", "--no-dither", "--rate", "8000", ogg, out).CombinedOutput(); err != nil {
		t.Fatalf("opusdec: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("data"))
	if i < 0 || len(b) < 44 {
		t.Fatal("opusdec wrote no WAV data chunk")
	}
	chans := int(binary.LittleEndian.Uint16(b[22:]))
	b = b[i+8:]
	pcm := make([]int16, len(b)/2/chans)
	for k := range pcm {
		var sum int
		for c := range chans {
			sum += int(int16(binary.LittleEndian.Uint16(b[2*(chans*k+c):])))
		}
		pcm[k] = int16(sum / chans)
	}
	return pcm
}

// oggOpus returns the Opus packets of an Ogg Opus file (without the
// OpusHead and OpusTags headers) and its pre-skip in 48 kHz samples.
func oggOpus(t testing.TB, path string) (packets [][]byte, preSkip int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, head, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		p, _, err := r.ParseNextPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if bytes.HasPrefix(p, []byte("OpusHead")) || bytes.HasPrefix(p, []byte("OpusTags")) {
			continue
		}
		packets = append(packets, bytes.Clone(p))
	}
	return packets, int(head.PreSkip)
}

// opusDuration is a packet's duration in 48 kHz samples from its table of
// contents (RFC 6716 §3.1), worked out here independently of media.
func opusDuration(p []byte) int {
	cfg := int(p[0] >> 3)
	units := [32]int{ // frame sizes in 2.5 ms
		4, 8, 16, 24, 4, 8, 16, 24, 4, 8, 16, 24, // SILK NB, MB, WB
		4, 8, 4, 8, // hybrid SWB, FB
		1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, // CELT NB, WB, SWB, FB
	}[cfg]
	frames := [4]int{1, 2, 2, 0}[p[0]&3]
	if frames == 0 {
		frames = int(p[1] & 0x3f)
	}
	return frames * units * 120
}

func opusMode(p []byte) string {
	switch cfg := p[0] >> 3; {
	case cfg < 12:
		return "SILK"
	case cfg < 16:
		return "hybrid"
	}
	return "CELT"
}

// TestOpusMatchesLibopus encodes speech with libopus (opusenc) in each Opus
// mode, mono and stereo, with frames of 5 to 60 ms, sends the packets as RTP
// over UDP (sequence numbers and 48 kHz timestamps wrapping), and compares
// the recording with libopus's own decoding of the same file at 8 kHz
// (opusdec). Opus is lossy and the two
// decoders are not bit-exact, and neither are the two ways to 8 kHz
// (libopus's own against pion at 48 kHz and media's filter), so the check is
// a signal-to-noise ratio and a correlation; the recording must also sit
// exactly where the RTP timestamps put it: behind libopus's output by the
// pre-skip (which opusdec drops and RTP has not) plus the filter's delay.
func TestOpusMatchesLibopus(t *testing.T) {
	needOpusTools(t)
	for _, tc := range opusCases {
		t.Run(tc.name, func(t *testing.T) {
			const seconds = 6
			dir := t.TempDir()
			speech := [][]int16{audio.SpeechLike(11, seconds*tc.rate, tc.rate)}
			if tc.stereo {
				speech = append(speech, audio.SpeechLike(12, seconds*tc.rate, tc.rate))
			}
			ogg := opusEncode(t, dir, tc.rate, tc.args, speech...)
			if *updateOpus && tc.fixture != "" { // 2 s are enough there
				b, err := os.ReadFile(opusEncode(t, t.TempDir(), tc.rate, tc.args, speech[0][:2*tc.rate]))
				if err == nil {
					err = os.WriteFile(filepath.Join("testdata", "opus", tc.fixture), b, 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			packets, preSkip := oggOpus(t, ogg)
			modes, stereo := map[string]int{}, 0
			for _, p := range packets {
				modes[opusMode(p)]++
				stereo += int(p[0] >> 2 & 1)
			}
			if modes[tc.mode] < len(packets)*3/4 || tc.stereo != (stereo > len(packets)*3/4) {
				t.Fatalf("opusenc %v made %v packets by mode, %d in stereo; want at least 75%% %s, stereo %v", tc.args, modes, stereo, tc.mode, tc.stereo)
			}

			c := &clock{t: t0}
			conn := listen(t)
			snd := newSender(t, conn)
			sess := session(t, c, media.Config{}, media.StreamConfig{Label: "1", Side: callvault.SideExternal, Conn: conn,
				Remote: addrOf(snd.conn), PayloadTypes: map[uint8]string{111: "opus/48000/2", 101: "telephone-event/48000"}})
			snd.tgt = lockstep(sess, 0)
			seq, ts := uint16(65000), uint32(0xFFFFFFFF-48000) // both wrap within the first 1.5 s
			var at int                                         // 48 kHz samples since the start
			for _, p := range packets {
				c.Set(t0.Add(time.Duration(at) * time.Second / 48000))
				snd.rtp(pkt(0xABCD, seq, ts, 111, p))
				d := opusDuration(p)
				seq, ts, at = seq+1, ts+uint32(d), at+d
			}
			c.Set(t0.Add(time.Duration(at) * time.Second / 48000))
			sp, err := sess.Finish()
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			got, _ := render(t, sp)

			st := sess.Stats().Streams[0]
			if st.Packets != uint64(len(packets)) || st.Codecs["opus"] != st.Packets || st.Lost+st.Late+st.Undecodable+st.Resyncs != 0 {
				t.Errorf("stats %+v; want %d opus packets, none lost, late, undecodable or resynced", st, len(packets))
			}

			ref := opusdec8k(t, ogg)
			wantLag := preSkip/6 + 13 // media's filter delays by 13 samples at 8 kHz
			lag, snr, corr := align(got, ref, 100)
			t.Logf("%d packets %v: SNR %.1f dB, correlation %.5f against opusdec at 8 kHz, lag %d", len(packets), modes, snr, corr, lag)
			if lag < wantLag-1 || lag > wantLag+1 {
				t.Errorf("the recording is %d samples behind libopus's decoding, want %d (pre-skip %d at 48 kHz, filter 13)", lag, wantLag, preSkip)
			}
			if snr < 25 || corr < 0.998 {
				t.Errorf("SNR %.1f dB, correlation %.5f against libopus; want at least 25 dB and 0.998", snr, corr)
			}
		})
	}
}

// align finds the lag (0 to maxLag samples) by which got trails ref best
// and returns it with the SNR of got against ref at that lag and their
// correlation. The first 50 ms are left out: decoders start differently.
func align(got, ref []int16, maxLag int) (lag int, snr, corr float64) {
	snr = math.Inf(-1)
	for l := 0; l <= maxLag; l++ {
		var sig, noise, xy, xx, yy float64
		for i := 400; i < len(ref) && i+l < len(got); i++ {
			x, y := float64(ref[i]), float64(got[i+l])
			sig += x * x
			noise += (x - y) * (x - y)
			xy += x * y
			xx += x * x
			yy += y * y
		}
		if s := 10 * math.Log10(sig/noise); s > snr {
			lag, snr, corr = l, s, xy/math.Sqrt(xx*yy)
		}
	}
	return lag, snr, corr
}
