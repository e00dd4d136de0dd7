package audio

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

const testSerial = 0x5ca1ab1e

// rawPage builds an Ogg page from its lacing values and body.
func rawPage(flags byte, granule int64, serial, seq uint32, lacing, body []byte) []byte {
	le := binary.LittleEndian
	p := []byte("OggS\x00")
	p = append(p, flags)
	p = le.AppendUint64(p, uint64(granule))
	p = le.AppendUint32(p, serial)
	p = le.AppendUint32(p, seq)
	p = le.AppendUint32(p, 0) // CRC, set below
	p = append(p, byte(len(lacing)))
	p = append(p, lacing...)
	p = append(p, body...)
	return fixCRC(p)
}

// oggPage builds a page holding whole packets.
func oggPage(flags byte, granule int64, seq uint32, packets ...[]byte) []byte {
	var lacing, body []byte
	for _, pk := range packets {
		n := len(pk)
		for ; n >= 255; n -= 255 {
			lacing = append(lacing, 255)
		}
		lacing = append(lacing, byte(n))
		body = append(body, pk...)
	}
	return rawPage(flags, granule, testSerial, seq, lacing, body)
}

// fixCRC recomputes the checksum of page p in place and returns it.
func fixCRC(p []byte) []byte {
	binary.LittleEndian.PutUint32(p[22:], 0)
	binary.LittleEndian.PutUint32(p[22:], oggCRC(0, p))
	return p
}

// splitPages cuts a well-formed Ogg file into its pages.
func splitPages(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var pages [][]byte
	for len(b) > 0 {
		n := 27 + int(b[26])
		for _, l := range b[27:n] {
			n += int(l)
		}
		pages = append(pages, bytes.Clone(b[:n]))
		b = b[n:]
	}
	return pages
}

func opusHeadPacket(version, channels byte, preSkip uint16, family byte, table ...byte) []byte {
	p := []byte("OpusHead")
	p = append(p, version, channels)
	p = binary.LittleEndian.AppendUint16(p, preSkip)
	p = binary.LittleEndian.AppendUint32(p, 8000) // input rate, informational
	p = append(p, 0, 0, family)
	return append(p, table...)
}

var opusTagsPacket = []byte("OpusTags\x08\x00\x00\x00callvault\x00\x00\x00\x00")

// opusPackets returns n 20 ms CELT packets (TOC 0xF8: config 31, one frame).
func opusPackets(n int) [][]byte {
	ps := make([][]byte, n)
	for i := range ps {
		ps[i] = []byte{0xF8, 0xFF, 0xFE}
	}
	return ps
}

func concat(pages ...[]byte) []byte { return bytes.Join(pages, nil) }

func TestOggCRC(t *testing.T) {
	// CRC-32/CKSUM has the same polynomial, initial value and bit order and
	// the check value 0x765E7680 after its final inversion, which Ogg omits.
	// (The fixtures made by opusenc check the rest.)
	if got, want := oggCRC(0, []byte("123456789")), uint32(0x765E7680^0xFFFFFFFF); got != want {
		t.Errorf("oggCRC(123456789) = %#x, want %#x", got, want)
	}
}

func TestProbeOgg(t *testing.T) {
	head := oggPage(oggBOS, 0, 0, opusHeadPacket(1, 1, 312, 0))
	tags := oggPage(0, 0, 1, opusTagsPacket)
	audio := oggPage(oggEOS, 50*960, 2, opusPackets(50)...)

	// A comment header of 70000 bytes spans two pages.
	bigTags := append(bytes.Clone(opusTagsPacket), make([]byte, 70000)...)
	lacing1 := bytes.Repeat([]byte{255}, 255)
	rest := len(bigTags) - 255*255
	lacing2 := append(bytes.Repeat([]byte{255}, rest/255), byte(rest%255))
	tags1 := rawPage(0, -1, testSerial, 1, lacing1, bigTags[:255*255])
	tags2 := rawPage(oggContinued, 0, testSerial, 2, lacing2, bigTags[255*255:])

	surround := opusHeadPacket(1, 6, 312, 1, 4, 2, 0, 4, 1, 2, 3, 5)
	tests := []struct {
		name string
		b    []byte
		want Info
	}{
		{"minimal", concat(head, tags, audio),
			Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 1, Duration: time.Second - 312*time.Second/48000}},
		{"end trimmed", concat(head, tags, oggPage(oggEOS, 48000, 2, opusPackets(51)...)),
			Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 1, Duration: time.Second - 312*time.Second/48000}},
		{"no EOS", concat(head, tags, oggPage(0, 50*960, 2, opusPackets(50)...)),
			Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 1, Duration: time.Second - 312*time.Second/48000}},
		{"tags across pages", concat(head, tags1, tags2, setSeq(audio, 3)),
			Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 1, Duration: time.Second - 312*time.Second/48000}},
		{"5.1", concat(oggPage(oggBOS, 0, 0, surround), tags, audio),
			Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 6, Duration: time.Second - 312*time.Second/48000}},
		{"pre-skip only", concat(head, tags, oggPage(oggEOS, 312, 2, opusPackets(1)...)),
			Info{Format: "ogg", Codec: "opus", SampleRate: 48000, Channels: 1}},
	}
	for _, tt := range tests {
		got, err := probeBytes(tt.b)
		if err != nil || got != tt.want {
			t.Errorf("Probe(%s) = %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

func setSeq(p []byte, seq uint32) []byte {
	p = bytes.Clone(p)
	binary.LittleEndian.PutUint32(p[18:], seq)
	return fixCRC(p)
}

func setGranule(p []byte, g int64) []byte {
	p = bytes.Clone(p)
	binary.LittleEndian.PutUint64(p[6:], uint64(g))
	return fixCRC(p)
}

func TestProbeOggErrors(t *testing.T) {
	head := oggPage(oggBOS, 0, 0, opusHeadPacket(1, 2, 312, 0))
	tags := oggPage(0, 0, 1, opusTagsPacket)
	audio := oggPage(0, 25*960, 2, opusPackets(25)...)
	last := oggPage(oggEOS, 50*960, 3, opusPackets(25)...)

	fixture := splitPages(t, load(t, "opus_48k_stereo.opus"))
	n := len(fixture)
	corrupt := bytes.Clone(fixture[2])
	corrupt[len(corrupt)/2] ^= 0x40
	otherStream := bytes.Clone(fixture[n-1])
	binary.LittleEndian.PutUint32(otherStream[14:], 1234)
	fixCRC(otherStream)
	badVersion := bytes.Clone(head)
	badVersion[4] = 1
	fixCRC(badVersion)
	spanning := rawPage(0, -1, testSerial, 2, []byte{255}, make([]byte, 255))

	tests := []struct {
		name string
		b    []byte
		code string
		msg  string
	}{
		{"page missing", concat(append(fixture[:2:2], fixture[3:]...)...), callvault.EINVALID, "out of sequence"},
		{"checksum", concat(append(append(fixture[:2:2], corrupt), fixture[3:]...)...), callvault.EINVALID, "checksum"},
		{"truncated", concat(fixture...)[:len(concat(fixture...))-10], callvault.EINVALID, "truncated"},
		{"header cut", concat(fixture...)[:20], callvault.EINVALID, "truncated"},
		{"second stream", concat(append(fixture[:n-1:n-1], otherStream)...), callvault.EUNSUPPORTED, "more than one stream"},
		{"granule lies", concat(append(fixture[:n-1:n-1], setGranule(fixture[n-1], 48000*3600))...), callvault.EINVALID, "claims 59m59.9935s of audio but holds only"},
		{"granule negative", concat(head, tags, audio, setGranule(last, -5)), callvault.EINVALID, "back in time"},
		{"granule goes back", concat(head, tags, setGranule(audio, 40*960), setGranule(last, 30*960)), callvault.EINVALID, "back in time"},
		{"before pre-skip", concat(head, tags, setGranule(audio, 100)), callvault.EINVALID, "pre-skip"},
		{"no audio", concat(head, tags), callvault.EINVALID, "no audio"},
		{"no tags", concat(head), callvault.EINVALID, "no comment header"},
		{"tags not OpusTags", concat(head, oggPage(0, 0, 1, []byte("OpusTagz")), audio), callvault.EINVALID, "no comment header"},
		{"tags share a page with audio", concat(head, oggPage(0, 960, 1, opusTagsPacket, []byte{0xF8})), callvault.EINVALID, "does not end its page"},
		{"head shares its page", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 2, 312, 0), opusTagsPacket), audio), callvault.EINVALID, "more than the header"},
		{"head granule", concat(setGranule(head, 7), tags, audio), callvault.EINVALID, "non-zero granule"},
		{"no BOS", concat(oggPage(0, 0, 0, opusHeadPacket(1, 2, 312, 0)), tags, audio), callvault.EINVALID, "beginning-of-stream"},
		{"BOS again", concat(head, tags, oggPage(oggBOS, 960, 2, opusPackets(1)...)), callvault.EINVALID, "restarts"},
		{"page after EOS", concat(head, tags, setGranule(oggPage(oggEOS, 0, 2, opusPackets(25)...), 25*960), last), callvault.EINVALID, "follows the end"},
		{"ends inside a packet", concat(head, tags, spanning), callvault.EINVALID, "inside a packet"},
		{"continuation without packet", concat(head, tags, rawPage(oggContinued, 960, testSerial, 2, []byte{1}, []byte{0xF8})), callvault.EINVALID, "packet framing"},
		{"lost continuation", concat(head, tags, spanning, oggPage(0, 960, 3, opusPackets(1)...)), callvault.EINVALID, "packet framing"},
		{"page version", concat(badVersion, tags, audio), callvault.EINVALID, "version 1"},
		{"garbage between pages", concat(head, tags, []byte("junk"), audio), callvault.EINVALID, "damaged"},
		{"bad Opus packet", concat(head, tags, oggPage(0, 960, 2, []byte{0xFB})), callvault.EINVALID, "Opus packet"},
		{"packet over 120 ms", concat(head, tags, oggPage(0, 960, 2, []byte{0xFB, 7})), callvault.EINVALID, "Opus packet"},
		{"head version 0", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(0, 2, 312, 0)), tags, audio), callvault.EINVALID, "version 0"},
		{"head too short", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 2, 312, 0)[:15]), tags, audio), callvault.EINVALID, "too short"},
		{"no channels", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 0, 312, 0)), tags, audio), callvault.EINVALID, "no channels"},
		{"3 channels in family 0", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 3, 312, 0)), tags, audio), callvault.EINVALID, "family 0"},
		{"family 1, short table", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 6, 312, 1, 4, 2, 0)), tags, audio), callvault.EINVALID, "too short"},
		{"family 1, missing stream", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 2, 312, 1, 1, 0, 0, 1)), tags, audio), callvault.EINVALID, "missing stream"},
		{"family 1, 9 channels", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 9, 312, 1)), tags, audio), callvault.EINVALID, "1 to 8"},
		{"family 1, bad counts", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 1, 312, 1, 1, 2, 0)), tags, audio), callvault.EINVALID, "streams"},
		{"head version 16", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(16, 2, 312, 0)), tags, audio), callvault.EUNSUPPORTED, "version 16"},
		{"family 255", concat(oggPage(oggBOS, 0, 0, opusHeadPacket(1, 2, 312, 255, 2, 0, 0, 1)), tags, audio), callvault.EUNSUPPORTED, "family 255"},
		{"Vorbis", concat(oggPage(oggBOS, 0, 0, []byte("\x01vorbis\x00\x00\x00\x00\x01\x40\x1f\x00\x00")), tags), callvault.EUNSUPPORTED, "Vorbis"},
		{"FLAC", concat(oggPage(oggBOS, 0, 0, []byte("\x7fFLAC\x01\x00\x00\x01fLaC")), tags), callvault.EUNSUPPORTED, "FLAC"},
		{"Speex", oggPage(oggBOS, 0, 0, []byte("Speex   1.2")), callvault.EUNSUPPORTED, "Speex"},
		{"Theora", oggPage(oggBOS, 0, 0, []byte("\x80theora\x03\x02\x01")), callvault.EUNSUPPORTED, "only Ogg Opus"},
		{"Vorbis spanning pages", rawPage(oggBOS, 0, testSerial, 0, []byte{255}, append([]byte("\x01vorbis"), make([]byte, 248)...)), callvault.EUNSUPPORTED, "Vorbis"},
		{"empty first page", rawPage(oggBOS, 0, testSerial, 0, nil, nil), callvault.EINVALID, "does not fit"},
	}
	for _, tt := range tests {
		_, err := probeBytes(tt.b)
		checkCode(t, "Probe("+tt.name+")", err, tt.code, tt.msg)
	}
}

func TestOpusPacketSamples(t *testing.T) {
	tests := []struct {
		p    []byte
		want int64
		ok   bool
	}{
		{[]byte{0 << 3}, 480, true},                // SILK 10 ms
		{[]byte{3 << 3}, 2880, true},               // SILK 60 ms
		{[]byte{3<<3 | 1}, 5760, true},             // two 60 ms frames
		{[]byte{13 << 3}, 960, true},               // hybrid 20 ms
		{[]byte{16 << 3}, 120, true},               // CELT 2.5 ms
		{[]byte{31<<3 | 2}, 1920, true},            // two 20 ms CELT frames
		{[]byte{31<<3 | 3, 6}, 5760, true},         // six 20 ms frames
		{[]byte{31<<3 | 3, 7}, 0, false},           // 140 ms
		{[]byte{31<<3 | 3, 0}, 0, false},           // no frames
		{[]byte{31<<3 | 3}, 0, false},              // count byte missing
		{[]byte{16<<3 | 3, 0x80 | 48}, 5760, true}, // 48 × 2.5 ms, VBR flag set
	}
	for _, tt := range tests {
		got, ok := opusPacketSamples(tt.p)
		if got != tt.want || ok != tt.ok {
			t.Errorf("opusPacketSamples(%x) = %d, %v; want %d, %v", tt.p, got, ok, tt.want, tt.ok)
		}
	}
}
