package audio_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func probe(b []byte) (audio.Info, error) {
	return audio.Probe(bytes.NewReader(b), int64(len(b)))
}

// checkErr fails unless err is a *callvault.Error with the code and a
// message containing msg.
func checkErr(t *testing.T, call string, err error, code, msg string) {
	t.Helper()
	var e *callvault.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: err = %v, want *callvault.Error %s", call, err, code)
	}
	if e.Code != code || !strings.Contains(e.Message, msg) {
		t.Fatalf("%s: err = %v, want %s containing %q", call, err, code, msg)
	}
}

func TestProbeFixtures(t *testing.T) {
	const (
		mpeg1Frame = 1152
		mpeg2Frame = 576
	)
	tests := []struct {
		file  string
		want  audio.Info
		frame time.Duration // tolerance on Duration
	}{
		{"ulaw_8k_mono.wav", audio.Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1,
			Duration: 1500 * time.Millisecond, DataOffset: 58, DataSize: 12000}, 0},
		{"alaw_8k_stereo.wav", audio.Info{Format: "wav", Codec: "alaw", SampleRate: 8000, Channels: 2,
			Duration: time.Second, DataOffset: 58, DataSize: 16000}, 0},
		{"pcm16_16k_mono.wav", audio.Info{Format: "wav", Codec: "pcm16", SampleRate: 16000, Channels: 1,
			Duration: time.Second, DataOffset: 44, DataSize: 32000}, 0},
		{"pcm16_8k_mono_ext.wav", audio.Info{Format: "wav", Codec: "pcm16", SampleRate: 8000, Channels: 1,
			Duration: 500 * time.Millisecond, DataOffset: 98, DataSize: 8000}, 0},
		{"opus_48k_mono.opus", audio.Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 1,
			Duration: 1500 * time.Millisecond}, 0},
		{"opus_48k_stereo.opus", audio.Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 2,
			Duration: time.Second}, 0},
		{"mp3_16k_mono_id3.mp3", audio.Info{Format: "mp3", Codec: "mp3", SampleRate: 16000, Channels: 1,
			Duration: 44 * mpeg2Frame * time.Second / 16000}, mpeg2Frame * time.Second / 16000},
		{"mp3_8k_mono.mp3", audio.Info{Format: "mp3", Codec: "mp3", SampleRate: 8000, Channels: 1,
			Duration: 23 * mpeg2Frame * time.Second / 8000}, mpeg2Frame * time.Second / 8000},
		{"mp3_24k_stereo.mp3", audio.Info{Format: "mp3", Codec: "mp3", SampleRate: 24000, Channels: 2,
			Duration: 44 * mpeg2Frame * time.Second / 24000}, mpeg2Frame * time.Second / 24000},
		{"mp3_32k_stereo.mp3", audio.Info{Format: "mp3", Codec: "mp3", SampleRate: 32000, Channels: 2,
			Duration: 29 * mpeg1Frame * time.Second / 32000}, mpeg1Frame * time.Second / 32000},
	}
	for _, tt := range tests {
		b := readFixture(t, tt.file)
		got, err := probe(b)
		if err != nil {
			t.Errorf("Probe(%s): %v", tt.file, err)
			continue
		}
		if d := got.Duration - tt.want.Duration; d < -tt.frame || d > tt.frame {
			t.Errorf("Probe(%s).Duration = %v, want %v ± %v", tt.file, got.Duration, tt.want.Duration, tt.frame)
		}
		got.Duration = tt.want.Duration
		if got != tt.want {
			t.Errorf("Probe(%s) = %+v, want %+v", tt.file, got, tt.want)
		}
	}
}

func TestProbeUnsupportedFixtures(t *testing.T) {
	for file, msg := range map[string]string{
		"float32_8k_mono.wav": "floating-point",
		"vorbis_8k_mono.ogg":  "Vorbis",
	} {
		_, err := probe(readFixture(t, file))
		checkErr(t, "Probe("+file+")", err, callvault.EUNSUPPORTED, msg)
	}
}

func TestProbeNotAudio(t *testing.T) {
	tests := map[string][]byte{
		"empty":     nil,
		"one byte":  {0xFF},
		"text":      []byte("Dear parents, the school will be closed on Friday.\n"),
		"html":      []byte("<!doctype html><title>x</title>"),
		"jpeg":      append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0}, make([]byte, 500)...),
		"png":       []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"),
		"zeros":     make([]byte, 4096),
		"avi":       []byte("RIFF\x10\x00\x00\x00AVI LIST\x04\x00\x00\x00hdrl"),
		"sync only": {0xFF, 0xFB, 0x90, 0x64, 1, 2, 3},
		"random":    pseudoRandom(10000),
	}
	for name, b := range tests {
		_, err := probe(b)
		checkErr(t, "Probe("+name+")", err, callvault.EINVALID, "not a WAV, Ogg Opus or MP3 file")
	}
}

// pseudoRandom returns n deterministic bytes that look like nothing.
func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x >> 7)
	}
	return b
}

// TestProbeTruncated cuts every fixture at a few places: each cut must be
// refused as invalid, never accepted and never an internal error.
func TestProbeTruncated(t *testing.T) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := probe(b); err != nil {
			continue // unsupported fixtures
		}
		// Not len(b)-1: a WAV missing only its final pad byte is accepted.
		for _, n := range []int{4, 20, 100, len(b) / 2, len(b) - 200, len(b) - 2} {
			_, err := probe(b[:n])
			if code := callvault.ErrorCode(err); code != callvault.EINVALID {
				t.Errorf("Probe(%s cut to %d bytes) = %v, want EINVALID", filepath.Base(f), n, err)
			}
		}
	}
}

func TestProbeReadError(t *testing.T) {
	b := readFixture(t, "ulaw_8k_mono.wav")
	boom := errors.New("decryption failed")
	_, err := audio.Probe(failingReader{boom}, int64(len(b)))
	if !errors.Is(err, boom) || callvault.ErrorCode(err) != callvault.EINTERNAL {
		t.Fatalf("Probe(failing reader) = %v, want the read error, EINTERNAL", err)
	}
}

type failingReader struct{ err error }

func (r failingReader) ReadAt([]byte, int64) (int, error) { return 0, r.err }
