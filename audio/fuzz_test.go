package audio

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/callvault/callvault"
	"github.com/zaf/g711"
)

// seeds returns the fixtures, a few mutations of each, and small crafted
// files reaching the paths the fixtures do not.
func seeds(t testing.TB) [][]byte {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		if strings.HasSuffix(f, ".md") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b, b[:len(b)/2], b[:min(len(b), 200)])
		for _, i := range []int{4, 5, 8, 22, 26, 40, len(b) / 3} {
			m := bytes.Clone(b)
			m[i] ^= 0xA5
			out = append(out, m)
		}
	}
	ulaw := fmtChunk(waveULaw, 1, 8000, 1, 8)
	out = append(out,
		riff(ulaw, chunk("data", []byte{1, 2, 3})),
		riff(chunk("data", []byte{1, 2, 3, 4}), fmtChunk(wavePCM, 2, 8000, 4, 16), chunk("LIST", []byte("INFO"))),
		riff(extensibleChunk(waveALaw, 2, 16000, 8, 8, guidTail), chunk("data", make([]byte, 10))),
		concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 2, 312, 0)), oggPage(0, 0, 1, opusTagsPacket), oggPage(oggEOS, 960, 2, opusPackets(1)...)),
		concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 6, 312, 1, 4, 2, 0, 4, 1, 2, 3, 5)), oggPage(0, 0, 1, opusTagsPacket), oggPage(0, 1920, 2, opusPackets(2)...)),
		concat(id3v2(4, 0x10, 5), frames(5, 0xFF, 0xE3, 0x28, 0xC4), apeTag(), id3v1),
		frames(4, 0xFF, 0xFD, 0x84, 0x00),
	)
	return out
}

// FuzzProbe checks that Probe never panics, reads small files in a single
// ReadAt, fails only with client-safe errors, and returns self-consistent
// Info.
func FuzzProbe(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &countingReader{r: bytes.NewReader(b)}
		size := int64(len(b))
		info, err := Probe(c, size)
		if size <= blockSize && c.calls > 1 {
			t.Errorf("Probe read a %d-byte file in %d calls", size, c.calls)
		}
		if err != nil {
			var e *callvault.Error
			if !errors.As(err, &e) || (e.Code != callvault.EINVALID && e.Code != callvault.EUNSUPPORTED) || e.Message == "" {
				t.Fatalf("Probe error %#v, want EINVALID or EUNSUPPORTED with a message", err)
			}
			if info != (Info{}) {
				t.Fatalf("Probe returned %+v with error %v", info, err)
			}
			return
		}
		checkInfo(t, info, size)
	})
}

func checkInfo(t *testing.T, info Info, size int64) {
	t.Helper()
	bad := func(why string) { t.Fatalf("Probe = %+v (file of %d bytes): %s", info, size, why) }
	if info.Duration < 0 {
		bad("negative duration")
	}
	switch info.Format {
	case FormatWAV:
		width := map[string]int64{CodecPCM16: 2, CodecULaw: 1, CodecALaw: 1}[info.Codec]
		align := width * int64(info.Channels)
		switch {
		case width == 0:
			bad("unknown WAV codec")
		case info.Channels < 1 || info.Channels > 2:
			bad("channels")
		case info.SampleRate < minRate || info.SampleRate > maxRate:
			bad("sample rate")
		case info.DataOffset < 20 || info.DataSize <= 0 || info.DataOffset+info.DataSize > size:
			bad("data outside the file")
		case info.DataSize%align != 0:
			bad("data not whole sample frames")
		case info.Duration != durationOf(info.DataSize/align, info.SampleRate):
			bad("duration does not match the data")
		}
	case FormatOgg:
		switch {
		case info.Codec != CodecOpus || info.SampleRate != opusRate:
			bad("Ogg codec or rate")
		case info.Channels < 1 || info.Channels > 8:
			bad("channels")
		case info.DataOffset != 0 || info.DataSize != 0:
			bad("data offset set for Ogg")
		}
	case FormatMP3:
		switch {
		case info.Codec != CodecMP3 || !slices.Contains([]int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}, info.SampleRate):
			bad("MP3 codec or rate")
		case info.Channels < 1 || info.Channels > 2:
			bad("channels")
		case info.Duration <= 0:
			bad("no duration")
		case info.DataOffset != 0 || info.DataSize != 0:
			bad("data offset set for MP3")
		}
	default:
		bad("unknown format")
	}
}

// FuzzRendition checks that any window of a G.711 rendition equals the same
// window of the whole, decoded by zaf/g711, under the io.ReaderAt contract.
func FuzzRendition(f *testing.F) {
	for _, name := range []string{"ulaw_8k_mono.wav", "alaw_8k_stereo.wav"} {
		b := load(f, name)
		f.Add(b, uint32(0), uint16(100))
		f.Add(b, uint32(43), uint16(3))
		f.Add(b, uint32(len(b)-1), uint16(4000))
	}
	f.Add(riff(fmtChunk(waveALaw, 1, 8000, 1, 8), chunk("data", []byte{1, 2, 3})), uint32(45), uint16(2))
	f.Add(riff(extensibleChunk(waveULaw, 2, 8000, 8, 8, guidTail), chunk("data", []byte{1, 2, 3, 4})), uint32(44), uint16(7))
	f.Fuzz(func(t *testing.T, b []byte, off uint32, n uint16) {
		size := int64(len(b))
		info, err := Probe(bytes.NewReader(b), size)
		if err != nil {
			return
		}
		r, rsize, ct, err := Rendition(bytes.NewReader(b), size, info)
		if err != nil {
			t.Fatalf("Rendition(%+v): %v", info, err)
		}
		if info.Codec != CodecULaw && info.Codec != CodecALaw {
			if r == nil || rsize != size || ct == "" {
				t.Fatalf("Rendition(%+v) = %v, %d, %q; want the source", info, r, rsize, ct)
			}
			return
		}
		full := make([]byte, rsize)
		if m, err := r.ReadAt(full, 0); m != len(full) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(all) = %d, %v", m, err)
		}
		decode := g711.DecodeUlaw
		if info.Codec == CodecALaw {
			decode = g711.DecodeAlaw
		}
		if !bytes.Equal(full[wavHeaderLen:], decode(b[info.DataOffset:info.DataOffset+info.DataSize])) {
			t.Fatal("rendition differs from zaf/g711's decoding")
		}
		o := int64(off) % (rsize + 8)
		p := make([]byte, n)
		m, err := r.ReadAt(p, o)
		want := int(max(0, min(o+int64(n), rsize)-o))
		if m != want || (m < len(p) && err == nil) || (m == len(p) && err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d bytes at %d of %d) = %d, %v", n, o, rsize, m, err)
		}
		if !bytes.Equal(p[:m], full[min(o, rsize):min(o, rsize)+int64(m)]) {
			t.Fatalf("ReadAt(%d bytes at %d) differs from the whole", n, o)
		}
	})
}
