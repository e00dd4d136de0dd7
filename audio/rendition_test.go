package audio_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/zaf/g711"
)

// soxPCM is the SHA-256 of `sox f.wav -e signed -b 16 -t raw out.raw`: an
// independent decoder's output for the G.711 fixtures.
var soxPCM = map[string]string{
	"ulaw_8k_mono.wav":   "8de417f838965810e9c307047207c493863fc6cce4aaf9b179c954047a30217f",
	"alaw_8k_stereo.wav": "84cbc185be5d57068f4fce2c20058c89db17fba87f3e001a20a624e865781a30",
}

// rendition probes b and returns its rendition in full.
func rendition(t *testing.T, b []byte) (audio.Info, io.ReaderAt, []byte, string) {
	t.Helper()
	info, err := probe(b)
	if err != nil {
		t.Fatal(err)
	}
	r, size, ct, err := audio.Rendition(bytes.NewReader(b), int64(len(b)), info)
	if err != nil {
		t.Fatalf("Rendition(%+v): %v", info, err)
	}
	full := make([]byte, size)
	if n, err := r.ReadAt(full, 0); n != len(full) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(all %d bytes) = %d, %v", size, n, err)
	}
	return info, r, full, ct
}

func TestRenditionG711(t *testing.T) {
	for file, decode := range map[string]func([]byte) []byte{
		"ulaw_8k_mono.wav":   g711.DecodeUlaw,
		"alaw_8k_stereo.wav": g711.DecodeAlaw,
	} {
		b := readFixture(t, file)
		info, _, full, ct := rendition(t, b)
		if ct != "audio/wav" {
			t.Errorf("%s: content type %q, want audio/wav", file, ct)
		}
		pcm := full[44:]
		src := b[info.DataOffset : info.DataOffset+info.DataSize]
		if !bytes.Equal(pcm, decode(src)) {
			t.Errorf("%s: rendition differs from zaf/g711's decoding", file)
		}
		if sum := sha256.Sum256(pcm); hex.EncodeToString(sum[:]) != soxPCM[file] {
			t.Errorf("%s: rendition differs from sox's decoding", file)
		}

		// The rendition is itself a canonical PCM16 WAV of the same audio.
		got, err := probe(full)
		want := audio.Info{Format: "wav", Codec: "pcm16", SampleRate: info.SampleRate, Channels: info.Channels,
			Duration: info.Duration, DataOffset: 44, DataSize: 2 * info.DataSize}
		if err != nil || got != want {
			t.Errorf("%s: Probe(rendition) = %+v, %v; want %+v", file, got, err, want)
		}
		if got, want := binary.LittleEndian.Uint32(full[4:]), uint32(len(full)-8); got != want {
			t.Errorf("%s: rendition RIFF size %d, want %d", file, got, want)
		}
	}
}

// recordingReader records the source ranges read.
type recordingReader struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads [][2]int64
}

func (r *recordingReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads = append(r.reads, [2]int64{off, off + int64(len(p))})
	r.mu.Unlock()
	return r.r.ReadAt(p, off)
}

func TestRenditionReadAt(t *testing.T) {
	b := readFixture(t, "alaw_8k_stereo.wav")
	info, _, full, _ := rendition(t, b)
	src := &recordingReader{r: bytes.NewReader(b)}
	r, size, _, err := audio.Rendition(src, int64(len(b)), info)
	if err != nil {
		t.Fatal(err)
	}

	type span struct{ off, n int64 }
	spans := []span{
		{0, 0}, {0, 1}, {0, 44}, {0, 45}, {43, 2}, {43, 3}, {44, 1}, {45, 1}, {45, 2}, {45, 3},
		{40, 100}, {1001, 1}, {1001, 2}, {1001, 4096}, {size - 2, 2}, {size - 1, 1},
		{size - 1, 10}, {size - 3, 64 << 10}, {size, 1}, {size + 100, 5}, {0, size}, {0, size + 1},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		off := rng.Int64N(size + 10)
		spans = append(spans, span{off, rng.Int64N(5000)})
	}
	for _, s := range spans {
		p := bytes.Repeat([]byte{0xEE}, int(s.n))
		src.reads = nil
		n, err := r.ReadAt(p, s.off)

		end := min(s.off+s.n, size)
		wantN := int(max(0, end-s.off))
		var wantErr error
		if wantN < int(s.n) || s.off >= size {
			wantErr = io.EOF
		}
		if n != wantN || err != wantErr {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", s.n, s.off, n, err, wantN, wantErr)
		}
		if wantN > 0 && !bytes.Equal(p[:n], full[s.off:end]) {
			t.Fatalf("ReadAt(%d bytes at %d) differs from the full rendition", s.n, s.off)
		}

		// Only the source bytes behind [off, end) are read, in one call.
		var want [][2]int64
		if dataStart := max(s.off, 44); end > dataStart {
			first, last := (dataStart-44)/2, (end-44-1)/2
			want = [][2]int64{{info.DataOffset + first, info.DataOffset + last + 1}}
		}
		if !equalReads(src.reads, want) {
			t.Fatalf("ReadAt(%d bytes at %d) read source %v, want %v", s.n, s.off, src.reads, want)
		}
	}
	if n, err := r.ReadAt(make([]byte, 1), -1); n != 0 || err == nil {
		t.Errorf("ReadAt at -1 = %d, %v; want an error", n, err)
	}
}

func equalReads(a, b [][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRenditionConcurrent(t *testing.T) {
	b := readFixture(t, "ulaw_8k_mono.wav")
	_, r, full, _ := rendition(t, b)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 0))
			p := make([]byte, 777)
			for range 200 {
				off := rng.Int64N(int64(len(full) - len(p)))
				if _, err := r.ReadAt(p, off); err != nil || !bytes.Equal(p, full[off:off+int64(len(p))]) {
					t.Errorf("concurrent ReadAt at %d: %v or wrong bytes", off, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRenditionPassThrough(t *testing.T) {
	for file, ct := range map[string]string{
		"pcm16_16k_mono.wav":    "audio/wav",
		"pcm16_8k_mono_ext.wav": "audio/wav",
		"opus_48k_stereo.opus":  "audio/ogg",
		"mp3_16k_mono_id3.mp3":  "audio/mpeg",
	} {
		b := readFixture(t, file)
		info, err := probe(b)
		if err != nil {
			t.Fatal(err)
		}
		src := bytes.NewReader(b)
		r, size, gotCT, err := audio.Rendition(src, int64(len(b)), info)
		if err != nil || r != io.ReaderAt(src) || size != int64(len(b)) || gotCT != ct {
			t.Errorf("Rendition(%s) = %v, %d, %q, %v; want the source, %d, %q", file, r, size, gotCT, err, len(b), ct)
		}
	}
}

func TestRenditionErrors(t *testing.T) {
	b := readFixture(t, "ulaw_8k_mono.wav")
	good, err := probe(b)
	if err != nil {
		t.Fatal(err)
	}
	change := func(f func(*audio.Info)) audio.Info {
		i := good
		f(&i)
		return i
	}
	tests := []struct {
		name string
		info audio.Info
		code string
	}{
		{"unknown codec", change(func(i *audio.Info) { i.Codec = "gsm" }), callvault.EUNSUPPORTED},
		{"opus in WAV", change(func(i *audio.Info) { i.Codec = "opus" }), callvault.EUNSUPPORTED},
		{"empty", audio.Info{}, callvault.EUNSUPPORTED},
		{"data past the end", change(func(i *audio.Info) { i.DataSize++ }), callvault.EINTERNAL},
		{"negative offset", change(func(i *audio.Info) { i.DataOffset = -1 }), callvault.EINTERNAL},
		{"no data", change(func(i *audio.Info) { i.DataSize = 0 }), callvault.EINTERNAL},
		{"no channels", change(func(i *audio.Info) { i.Channels = 0 }), callvault.EINTERNAL},
		{"no rate", change(func(i *audio.Info) { i.SampleRate = 0 }), callvault.EINTERNAL},
	}
	for _, tt := range tests {
		_, _, _, err := audio.Rendition(bytes.NewReader(b), int64(len(b)), tt.info)
		if code := callvault.ErrorCode(err); code != tt.code {
			t.Errorf("Rendition(%s) = %v, want %s", tt.name, err, tt.code)
		}
	}
}

func TestRenditionSourceErrors(t *testing.T) {
	b := readFixture(t, "ulaw_8k_mono.wav")
	info, err := probe(b)
	if err != nil {
		t.Fatal(err)
	}
	// The stored file turns out shorter than recorded.
	r, size, _, err := audio.Rendition(bytes.NewReader(b[:1000]), int64(len(b)), info)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(make([]byte, 100), size-100); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadAt past the real end of the source: %v, want io.ErrUnexpectedEOF", err)
	}
	boom := errors.New("decryption failed")
	r, _, _, err = audio.Rendition(failingReader{boom}, int64(len(b)), info)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.ReadAt(make([]byte, 100), 0); n != 44 || !errors.Is(err, boom) {
		t.Errorf("ReadAt with a failing source = %d, %v; want 44 (the header), %v", n, err, boom)
	}
}
