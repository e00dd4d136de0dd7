package audio

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func TestParseMPEGHeader(t *testing.T) {
	tests := []struct {
		h    []byte
		want mpegHeader
	}{
		{[]byte{0xFF, 0xFB, 0x90, 0x64}, mpegHeader{version: 1, layer: 3, sampleRate: 44100, channels: 2, frameLen: 417, samples: 1152}},
		{[]byte{0xFF, 0xFB, 0x92, 0x64}, mpegHeader{version: 1, layer: 3, sampleRate: 44100, channels: 2, frameLen: 418, samples: 1152}},
		{[]byte{0xFF, 0xFA, 0x58, 0xC4}, mpegHeader{version: 1, layer: 3, sampleRate: 32000, channels: 1, frameLen: 288, samples: 1152, protected: true}},
		{[]byte{0xFF, 0xF3, 0x48, 0xC4}, mpegHeader{version: 2, layer: 3, sampleRate: 16000, channels: 1, frameLen: 144, samples: 576}},
		{[]byte{0xFF, 0xE3, 0x28, 0xC4}, mpegHeader{version: 25, layer: 3, sampleRate: 8000, channels: 1, frameLen: 144, samples: 576}},
		{[]byte{0xFF, 0xFD, 0x84, 0x00}, mpegHeader{version: 1, layer: 2, sampleRate: 48000, channels: 2, frameLen: 384, samples: 1152}},
		{[]byte{0xFF, 0xFF, 0x90, 0x00}, mpegHeader{version: 1, layer: 1, sampleRate: 44100, channels: 2, frameLen: 312, samples: 384}},
		{[]byte{0xFF, 0xF5, 0x80, 0x00}, mpegHeader{version: 2, layer: 2, sampleRate: 22050, channels: 2, frameLen: 417, samples: 1152}},
	}
	for _, tt := range tests {
		got, ok := parseMPEGHeader(tt.h)
		if !ok || got != tt.want {
			t.Errorf("parseMPEGHeader(%x) = %+v, %v; want %+v", tt.h, got, ok, tt.want)
		}
	}
	for _, bad := range [][]byte{
		{0xFF, 0xFB, 0x00, 0x64}, // free format
		{0xFF, 0xFB, 0xF0, 0x64}, // bitrate index 15
		{0xFF, 0xFB, 0x9C, 0x64}, // sample rate index 3
		{0xFF, 0xFB, 0x90, 0x66}, // emphasis 2
		{0xFF, 0xEB, 0x90, 0x64}, // version 01 (reserved)
		{0xFF, 0xF9, 0x90, 0x64}, // layer 00 (reserved)
		{0xFF, 0xDB, 0x90, 0x64}, // not a sync
		{0xFF, 0xFB, 0x90},       // short
	} {
		if h, ok := parseMPEGHeader(bad); ok {
			t.Errorf("parseMPEGHeader(%x) = %+v, want not ok", bad, h)
		}
	}
}

// frames returns n zero-filled frames with the given header.
func frames(n int, hdr ...byte) []byte {
	h, ok := parseMPEGHeader(hdr)
	if !ok {
		panic("bad header")
	}
	f := make([]byte, h.frameLen)
	copy(f, hdr)
	return bytes.Repeat(f, n)
}

// id3v2 returns an ID3v2 tag with a body of n bytes.
func id3v2(major, flags byte, n int) []byte {
	b := []byte{'I', 'D', '3', major, 0, flags, byte(n >> 21 & 0x7F), byte(n >> 14 & 0x7F), byte(n >> 7 & 0x7F), byte(n & 0x7F)}
	b = append(b, make([]byte, n)...)
	if flags&0x10 != 0 {
		b = append(b, '3', 'D', 'I', major, 0, flags, b[6], b[7], b[8], b[9])
	}
	return b
}

// apeTag returns an APEv2 tag with header and footer and no items.
func apeTag() []byte {
	part := func(flags uint32) []byte {
		le := binary.LittleEndian
		b := le.AppendUint32([]byte("APETAGEX"), 2000)
		b = le.AppendUint32(b, 32) // items + footer
		b = le.AppendUint32(b, 0)  // item count
		b = le.AppendUint32(b, flags)
		return append(b, make([]byte, 8)...)
	}
	return append(part(1<<31|1<<29), part(1<<31)...)
}

var id3v1 = append([]byte("TAG"), make([]byte, 125)...)

func TestProbeMP3(t *testing.T) {
	f44 := frames(10, 0xFF, 0xFB, 0x90, 0x64) // MPEG-1, 44.1 kHz, stereo
	d44 := 10 * 1152 * time.Second / 44100
	mono := frames(10, 0xFF, 0xF3, 0x48, 0xC4) // MPEG-2, 16 kHz, mono
	fixture := load(t, "mp3_32k_stereo.mp3")

	// A VBRI frame in front of 10 frames.
	vbri := frames(1, 0xFF, 0xFB, 0x90, 0x64)
	copy(vbri[36:], "VBRI\x00\x01")
	binary.BigEndian.PutUint32(vbri[36+14:], 10)

	tests := []struct {
		name string
		b    []byte
		want Info
	}{
		{"bare frames", f44, Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"four frames only", f44[:4*417], Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: 4 * 1152 * time.Second / 44100}},
		{"one frame after ID3", concat(id3v2(3, 0, 10), f44[:417]), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: 1152 * time.Second / 44100}},
		{"mono", mono, Info{Format: "mp3", Codec: "mp3", SampleRate: 16000, Channels: 1, Duration: 10 * 576 * time.Second / 16000}},
		{"ID3v2.3", concat(id3v2(3, 0, 1000), f44), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"ID3v2.4 with footer", concat(id3v2(4, 0x10, 1000), f44), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"two ID3v2 tags", concat(id3v2(3, 0, 10), id3v2(4, 0, 20), f44), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"padding after ID3", concat(id3v2(3, 0, 10), make([]byte, 4000), f44), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"ID3v1", concat(f44, id3v1), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"APE and ID3v1", concat(id3v2(3, 0, 10), f44, apeTag(), id3v1), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"appended ID3v2", concat(f44, id3v2(4, 0x10, 50)), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"VBRI", concat(vbri, f44), Info{Format: "mp3", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: d44}},
		{"Info frame, one frame short", fixture[:len(fixture)-288], Info{Format: "mp3", Codec: "mp3", SampleRate: 32000, Channels: 2, Duration: 28 * 1152 * time.Second / 32000}},
	}
	for _, tt := range tests {
		got, err := probeBytes(tt.b)
		if err != nil || got != tt.want {
			t.Errorf("Probe(%s) = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestProbeMP3Errors(t *testing.T) {
	f44 := frames(10, 0xFF, 0xFB, 0x90, 0x64)
	other := frames(1, 0xFF, 0xFB, 0x94, 0x64) // 48 kHz
	fixture := load(t, "mp3_32k_stereo.mp3")
	lies := bytes.Clone(fixture)
	binary.BigEndian.PutUint32(lies[4+32+8:], 40) // the Info frame's frame count
	apeLies := apeTag()
	binary.LittleEndian.PutUint32(apeLies[32+12:], 1<<20)

	tests := []struct {
		name string
		b    []byte
		code string
		msg  string
	}{
		{"garbage in the middle", concat(f44[:5*417], []byte{0}, f44[5*417:]), callvault.EINVALID, "damaged at byte 2085"},
		{"sample rate changes", concat(f44[:5*417], other, f44[5*417:]), callvault.EINVALID, "damaged at byte 2085"},
		{"last frame cut", f44[:len(f44)-100], callvault.EINVALID, "truncated"},
		{"last header cut", concat(f44, []byte{0xFF, 0xFB}), callvault.EINVALID, "truncated"},
		{"trailing garbage", concat(f44, []byte("hello, world")), callvault.EINVALID, "damaged"},
		{"Info frame count lies", lies, callvault.EINVALID, "header says 40 frames but 29 are present"},
		{"Info frame, frames missing", fixture[:len(fixture)-3*288], callvault.EINVALID, "header says 29 frames but 26"},
		{"ID3 size not syncsafe", concat([]byte("ID3\x03\x00\x00\x00\x00\x80\x00"), f44), callvault.EINVALID, "ID3 tag header is malformed"},
		{"ID3 version", concat([]byte("ID3\x09\x00\x00\x00\x00\x00\x00"), f44), callvault.EINVALID, "ID3 tag header is malformed"},
		{"ID3 claims too much", concat(id3v2(3, 0, 1000)[:500]), callvault.EINVALID, "ID3 tag claims 1010 bytes but the file has only 500"},
		{"ID3 only", id3v2(3, 0, 1000), callvault.EINVALID, "no audio frames"},
		{"ID3 then text", concat(id3v2(3, 0, 10), []byte("not audio at all, sorry")), callvault.EINVALID, "damaged at byte 20"},
		{"too much padding", concat(id3v2(3, 0, 10), make([]byte, 5000), f44), callvault.EINVALID, "damaged at byte 4116"},
		{"junk before frames", concat([]byte{0xFF, 0xFB, 0x90, 0x64, 0}, f44), callvault.EINVALID, "not a WAV, Ogg Opus or MP3 file"},
		{"APE tag too big", concat(f44, apeLies), callvault.EINVALID, "APE tag"},
		{"appended ID3 too big", concat(f44[:417], []byte("3DI\x04\x00\x10\x00\x00\x7f\x00")), callvault.EINVALID, "ID3 tag at the end"},
		{"Layer II", frames(10, 0xFF, 0xFD, 0x84, 0x00), callvault.EUNSUPPORTED, "Layer II"},
		{"Layer I after ID3", concat(id3v2(3, 0, 10), frames(2, 0xFF, 0xFF, 0x90, 0x00)), callvault.EUNSUPPORTED, "Layer I "},
		{"three frames only", f44[:3*417], callvault.EINVALID, "not a WAV, Ogg Opus or MP3 file"},
		{"three Layer II frames", frames(3, 0xFF, 0xFD, 0x84, 0x00), callvault.EINVALID, "not a WAV, Ogg Opus or MP3 file"},
	}
	for _, tt := range tests {
		_, err := probeBytes(tt.b)
		checkCode(t, "Probe("+tt.name+")", err, tt.code, tt.msg)
	}
}
