package audio

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func probeBytes(b []byte) (Info, error) {
	return Probe(bytes.NewReader(b), int64(len(b)))
}

// chunk returns a RIFF chunk with its pad byte.
func chunk(id string, body []byte) []byte {
	b := binary.LittleEndian.AppendUint32([]byte(id), uint32(len(body)))
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return chunk("RIFF", body)
}

// fmtChunk returns a 16-byte fmt chunk.
func fmtChunk(tag uint16, channels, rate, align, bits int) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, tag)
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*align))
	b = le.AppendUint16(b, uint16(align))
	b = le.AppendUint16(b, uint16(bits))
	return chunk("fmt ", b)
}

// extensibleChunk returns a 40-byte WAVE_FORMAT_EXTENSIBLE fmt chunk.
func extensibleChunk(sub uint16, channels, rate, bits, valid int, tail string) []byte {
	le := binary.LittleEndian
	align := channels * bits / 8
	b := fmtChunk(waveExtensible, channels, rate, align, bits)[8:]
	b = le.AppendUint16(b, 22)
	b = le.AppendUint16(b, uint16(valid))
	b = le.AppendUint32(b, 4)
	b = le.AppendUint16(b, sub)
	b = append(b, tail...)
	return chunk("fmt ", b)
}

func setU32(b []byte, off int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[off:], v)
	return b
}

func TestProbeWAV(t *testing.T) {
	ulawFmt := fmtChunk(waveULaw, 1, 8000, 1, 8)
	samples := make([]byte, 8000) // one second of µ-law
	odd := make([]byte, 8001)
	list := chunk("LIST", []byte("INFOISFT\x03\x00\x00\x00ab\x00"))
	tests := []struct {
		name string
		b    []byte
		want Info
	}{
		{"minimal", riff(ulawFmt, chunk("data", samples)),
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second, DataOffset: 44, DataSize: 8000}},
		{"data before fmt", riff(chunk("data", samples), ulawFmt),
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second, DataOffset: 20, DataSize: 8000}},
		{"odd chunk before data", riff(ulawFmt, chunk("junk", []byte{1, 2, 3}), list, chunk("data", samples)),
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second, DataOffset: 80, DataSize: 8000}},
		{"chunks after data", riff(ulawFmt, chunk("data", samples), list, chunk("cue ", make([]byte, 28))),
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second, DataOffset: 44, DataSize: 8000}},
		{"odd data, padded", riff(ulawFmt, chunk("data", odd)),
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second + time.Second/8000, DataOffset: 44, DataSize: 8001}},
		{"odd data, pad byte missing", riff(ulawFmt, chunk("data", odd))[:8+4+24+8+8001],
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second + time.Second/8000, DataOffset: 44, DataSize: 8001}},
		{"partial last frame", riff(fmtChunk(wavePCM, 2, 8000, 4, 16), chunk("data", make([]byte, 32002))),
			Info{Format: "wav", Codec: "pcm16", SampleRate: 8000, Channels: 2, Duration: time.Second, DataOffset: 44, DataSize: 32000}},
		{"trailing bytes after RIFF", append(riff(ulawFmt, chunk("data", samples)), "garbage"...),
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second, DataOffset: 44, DataSize: 8000}},
		{"fmt chunk of 18 bytes", riff(chunk("fmt ", append(fmtChunk(waveALaw, 2, 16000, 2, 8)[8:], 0, 0)), chunk("data", samples)),
			Info{Format: "wav", Codec: "alaw", SampleRate: 16000, Channels: 2, Duration: 250 * time.Millisecond, DataOffset: 46, DataSize: 8000}},
		{"extensible µ-law", riff(extensibleChunk(waveULaw, 1, 8000, 8, 8, guidTail), chunk("data", samples)),
			Info{Format: "wav", Codec: "ulaw", SampleRate: 8000, Channels: 1, Duration: time.Second, DataOffset: 68, DataSize: 8000}},
		{"extensible, valid bits 0", riff(extensibleChunk(wavePCM, 1, 8000, 16, 0, guidTail), chunk("data", samples)),
			Info{Format: "wav", Codec: "pcm16", SampleRate: 8000, Channels: 1, Duration: 500 * time.Millisecond, DataOffset: 68, DataSize: 8000}},
		{"48 kHz stereo", riff(fmtChunk(wavePCM, 2, 48000, 4, 16), chunk("data", make([]byte, 4*4800))),
			Info{Format: "wav", Codec: "pcm16", SampleRate: 48000, Channels: 2, Duration: 100 * time.Millisecond, DataOffset: 44, DataSize: 4 * 4800}},
	}
	for _, tt := range tests {
		got, err := probeBytes(tt.b)
		if err != nil || got != tt.want {
			t.Errorf("Probe(%s) = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestProbeWAVErrors(t *testing.T) {
	ulawFmt := fmtChunk(waveULaw, 1, 8000, 1, 8)
	samples := make([]byte, 4000)
	good := riff(ulawFmt, chunk("data", samples))
	dataSize := 8 + 4 + 24 + 4 // offset of the data chunk's size
	fixture := load(t, "ulaw_8k_mono.wav")
	tests := []struct {
		name string
		b    []byte
		code string
		msg  string
	}{
		{"RIFF size beyond file", setU32(good, 4, 100000), callvault.EINVALID, "claims 100008 bytes but the file has only 4044"},
		{"RIFF size placeholder", setU32(good, 4, 0xFFFFFFFF), callvault.EINVALID, "no size"},
		{"RIFF size zero", setU32(good, 4, 0), callvault.EINVALID, "no size"},
		{"data size lies", setU32(good, dataSize, 960000), callvault.EINVALID, "WAV data chunk claims 960000 bytes but only 4000 follow"},
		{"data size zero", setU32(good, dataSize, 0), callvault.EINVALID, "empty"},
		{"data size placeholder", setU32(good, dataSize, 0xFFFFFFFF), callvault.EINVALID, "no size"},
		{"data past RIFF", setU32(good, 4, uint32(len(good)-8-100)), callvault.EINVALID, "past the end of the RIFF"},
		{"truncated fixture", fixture[:4000], callvault.EINVALID, "truncated"},
		{"truncated fixture, RIFF size fixed", setU32(fixture[:4000], 4, 4000-8), callvault.EINVALID, "WAV data chunk claims 12000 bytes but only 3942 follow"},
		{"header only", good[:12], callvault.EINVALID, "truncated"},
		{"no fmt", riff(chunk("data", samples)), callvault.EINVALID, "no fmt chunk"},
		{"no data", riff(ulawFmt, chunk("LIST", []byte("INFO"))), callvault.EINVALID, "no data chunk"},
		{"two data chunks", riff(ulawFmt, chunk("data", samples), chunk("data", samples)), callvault.EINVALID, "more than one data"},
		{"two fmt chunks", riff(ulawFmt, ulawFmt, chunk("data", samples)), callvault.EINVALID, "more than one fmt"},
		{"short fmt", riff(chunk("fmt ", make([]byte, 14)), chunk("data", samples)), callvault.EINVALID, "too short"},
		{"chunk after data lies", riff(ulawFmt, chunk("data", samples), setU32(chunk("LIST", []byte("INFO")), 4, 5000)), callvault.EINVALID, `"LIST" chunk claims 5000 bytes`},
		{"odd chunk without pad", riff(ulawFmt, chunk("junk", []byte{1, 2, 3})[:11], chunk("data", samples)), callvault.EINVALID, "no data chunk"},
		{"half a sample", riff(fmtChunk(wavePCM, 2, 8000, 4, 16), chunk("data", []byte{1, 2, 3})), callvault.EINVALID, "shorter than one sample"},
		{"block align", riff(fmtChunk(wavePCM, 2, 8000, 2, 16), chunk("data", samples)), callvault.EINVALID, "block align 2 does not match 2 channel(s) of 16 bits"},
		{"no channels", riff(fmtChunk(wavePCM, 0, 8000, 0, 16), chunk("data", samples)), callvault.EINVALID, "no channels"},
		{"rate 0", riff(fmtChunk(wavePCM, 1, 0, 2, 16), chunk("data", samples)), callvault.EINVALID, "sample rate of 0"},
		{"16-bit µ-law", riff(fmtChunk(waveULaw, 1, 8000, 2, 16), chunk("data", samples)), callvault.EINVALID, "8 bits"},
		{"valid bits > bits", riff(extensibleChunk(wavePCM, 1, 8000, 16, 24, guidTail), chunk("data", samples)), callvault.EINVALID, "valid bits"},
		{"short extensible", riff(fmtChunk(waveExtensible, 1, 8000, 2, 16), chunk("data", samples)), callvault.EINVALID, "too short"},
		{"float", riff(fmtChunk(waveFloat, 1, 8000, 4, 32), chunk("data", samples)), callvault.EUNSUPPORTED, "floating-point"},
		{"extensible float", riff(extensibleChunk(waveFloat, 1, 8000, 32, 32, guidTail), chunk("data", samples)), callvault.EUNSUPPORTED, "floating-point"},
		{"extensible, other GUID", riff(extensibleChunk(wavePCM, 1, 8000, 16, 16, strings.Repeat("x", 14)), chunk("data", samples)), callvault.EUNSUPPORTED, "sub-format"},
		{"8-bit PCM", riff(fmtChunk(wavePCM, 1, 8000, 1, 8), chunk("data", samples)), callvault.EUNSUPPORTED, "8-bit PCM"},
		{"24-bit PCM", riff(fmtChunk(wavePCM, 1, 8000, 3, 24), chunk("data", samples)), callvault.EUNSUPPORTED, "24-bit PCM"},
		{"IMA ADPCM", riff(fmtChunk(0x11, 1, 8000, 256, 4), chunk("data", samples)), callvault.EUNSUPPORTED, "0x0011"},
		{"GSM", riff(fmtChunk(0x31, 1, 8000, 65, 0), chunk("data", samples)), callvault.EUNSUPPORTED, "0x0031"},
		{"3 channels", riff(fmtChunk(wavePCM, 3, 8000, 6, 16), chunk("data", samples)), callvault.EUNSUPPORTED, "3 channels"},
		{"4 kHz", riff(fmtChunk(wavePCM, 1, 4000, 2, 16), chunk("data", samples)), callvault.EUNSUPPORTED, "4000 Hz"},
		{"96 kHz", riff(fmtChunk(wavePCM, 1, 96000, 2, 16), chunk("data", samples)), callvault.EUNSUPPORTED, "96000 Hz"},
		{"RIFX", append([]byte("RIFX"), good[4:]...), callvault.EUNSUPPORTED, "RIFX"},
		{"RF64", append([]byte("RF64"), good[4:]...), callvault.EUNSUPPORTED, "RF64"},
	}
	for _, tt := range tests {
		_, err := probeBytes(tt.b)
		checkCode(t, "Probe("+tt.name+")", err, tt.code, tt.msg)
	}
}

// checkCode fails unless err is a *callvault.Error with the code and a
// message containing msg.
func checkCode(t *testing.T, call string, err error, code, msg string) {
	t.Helper()
	e, ok := err.(*callvault.Error)
	if !ok || e.Code != code || !strings.Contains(e.Message, msg) {
		t.Errorf("%s: err = %v, want %s containing %q", call, err, code, msg)
	}
}

// countingReader counts ReadAt calls and the bytes they ask for.
type countingReader struct {
	r            *bytes.Reader
	calls, bytes int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.calls++
	c.bytes += len(p)
	return c.r.ReadAt(p, off)
}

func TestProbeReadsInBlocks(t *testing.T) {
	// 1 MiB of µ-law with a LIST chunk after the data: Probe should skip the
	// samples and read only the blocks holding headers.
	b := riff(fmtChunk(waveULaw, 1, 8000, 1, 8), chunk("data", make([]byte, 1<<20)), chunk("LIST", []byte("INFO")))
	c := &countingReader{r: bytes.NewReader(b)}
	if _, err := Probe(c, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if c.calls > 2 {
		t.Errorf("Probe made %d ReadAt calls for %d bytes, want at most 2", c.calls, c.bytes)
	}
}
