package audio

import (
	"encoding/binary"
)

// MP3 parsing policy. Encoders write frames back to back, so Probe does too:
//
//   - At the start, after any ID3v2 tags, at most maxLeadingZeros zero bytes
//     (padding some taggers leave outside the tag) are skipped. Without an
//     ID3v2 tag the first frame must start at byte 0.
//   - Without an ID3v2 tag, a file is only taken for MP3 once minRun frames
//     have been seen in a row; until then a bad frame, or the end of the
//     file, means "not a WAV, Ogg Opus or MP3 file".
//   - Every frame must start exactly where the previous one
//     ended, with the same MPEG version, layer, sample rate and channel
//     count. There is no resynchronisation: a gap is damage (or two files
//     glued together), the duration would be a guess, and any skipped byte is
//     room for content that is not audio.
//   - At the end, ID3v1, APEv2 and footer-marked ID3v2 tags are set aside
//     first; what is left must be whole frames. A partial final frame means a
//     truncated upload.
//
// The duration counts the frames actually present. A Xing/Info or VBRI
// frame is not counted (it holds no audio) and, if it states a frame count,
// that count must agree with the frames present to within one.
const (
	maxLeadingZeros = 4096
	minRun          = 4
)

// mpegHeader is a decoded MPEG audio frame header.
type mpegHeader struct {
	version    int // 1 = MPEG-1, 2 = MPEG-2, 25 = MPEG-2.5
	layer      int // 1, 2 or 3
	sampleRate int
	channels   int
	protected  bool // a 16-bit CRC follows the header
	frameLen   int
	samples    int // per frame
}

// compatible reports whether h and o can be frames of the same stream.
func (h mpegHeader) compatible(o mpegHeader) bool {
	return h.version == o.version && h.layer == o.layer &&
		h.sampleRate == o.sampleRate && h.channels == o.channels
}

// Bitrates in kbit/s by [MPEG-1?][layer-1][index]; index 0 (free format) and
// 15 are invalid.
var mpegBitrates = [2][3][15]int{
	{ // MPEG-2 and 2.5
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
		{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
	},
	{ // MPEG-1
		{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
		{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
		{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	},
}

var mpegRates = [3]int{44100, 48000, 32000} // MPEG-1; halved for 2, quartered for 2.5

// parseMPEGHeader decodes a 4-byte frame header, rejecting reserved and
// free-format values.
func parseMPEGHeader(b []byte) (mpegHeader, bool) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return mpegHeader{}, false
	}
	var h mpegHeader
	switch (b[1] >> 3) & 3 {
	case 0:
		h.version = 25
	case 2:
		h.version = 2
	case 3:
		h.version = 1
	default:
		return mpegHeader{}, false
	}
	h.layer = 4 - int((b[1]>>1)&3)
	if h.layer == 4 {
		return mpegHeader{}, false
	}
	h.protected = b[1]&1 == 0
	bi, si := b[2]>>4, (b[2]>>2)&3
	if bi == 0 || bi == 15 || si == 3 || b[3]&3 == 2 { // b[3]&3 is the emphasis; 2 is reserved
		return mpegHeader{}, false
	}
	pad := int(b[2]>>1) & 1
	v1 := 0
	if h.version == 1 {
		v1 = 1
	}
	bitrate := mpegBitrates[v1][h.layer-1][bi] * 1000
	h.sampleRate = mpegRates[si]
	switch h.version {
	case 2:
		h.sampleRate /= 2
	case 25:
		h.sampleRate /= 4
	}
	h.channels = 2
	if b[3]>>6 == 3 {
		h.channels = 1
	}
	switch {
	case h.layer == 1:
		h.samples = 384
		h.frameLen = (12*bitrate/h.sampleRate + pad) * 4
	case h.layer == 2 || h.version == 1:
		h.samples = 1152
		h.frameLen = 144*bitrate/h.sampleRate + pad
	default: // Layer III of MPEG-2 and 2.5
		h.samples = 576
		h.frameLen = 72*bitrate/h.sampleRate + pad
	}
	return h, true
}

// probeMP3 implements the policy above.
func probeMP3(br *blockReader) (Info, error) {
	size := br.size
	start := int64(0)
	tagged := false
	for {
		b, err := br.slice(start, min(10, int(size-start)))
		if err != nil {
			return Info{}, err
		}
		if !hasPrefix(b, "ID3") {
			break
		}
		n, ok := id3v2Len(b)
		if !ok {
			return Info{}, invalidf("ID3 tag header is malformed")
		}
		if n > size-start {
			return Info{}, invalidf("ID3 tag claims %d bytes but the file has only %d (truncated?)", n, size-start)
		}
		start += n
		tagged = true
	}
	if tagged {
		var err error
		if start, err = skipZeros(br, start, min(size, start+maxLeadingZeros)); err != nil {
			return Info{}, err
		}
	}
	end, err := mp3AudioEnd(br, start)
	if err != nil {
		return Info{}, err
	}

	var (
		first  mpegHeader
		frames int64
		xing   int64 = -1 // frame count stated by a Xing/Info/VBRI frame
		info   bool       // the first frame is such a frame
	)
	for off := start; off < end; {
		sure := tagged || frames >= minRun
		b, err := br.slice(off, int(min(4, end-off)))
		if err != nil {
			return Info{}, err
		}
		h, ok := parseMPEGHeader(b)
		if ok && frames > 0 {
			ok = h.compatible(first)
		}
		switch {
		case !ok && !sure:
			return Info{}, notAudio()
		case !ok && len(b) < 4:
			return Info{}, invalidf("MP3 file is truncated (the last frame is incomplete)")
		case !ok:
			return Info{}, invalidf("MP3 stream is damaged at byte %d", off)
		case int64(h.frameLen) > end-off:
			if !sure {
				return Info{}, notAudio()
			}
			return Info{}, invalidf("MP3 file is truncated (the last frame is incomplete)")
		}
		if frames == 0 {
			first = h
			fb, err := br.slice(off, h.frameLen)
			if err != nil {
				return Info{}, err
			}
			xing, info = vbrFrameCount(h, fb)
		}
		frames++
		off += int64(h.frameLen)
	}
	if !tagged && frames < minRun {
		return Info{}, notAudio()
	}
	if frames > 0 && first.layer != 3 {
		return Info{}, unsupportedf("MPEG Layer %s audio is not supported (only MP3)", [...]string{"I", "II"}[first.layer-1])
	}
	if info {
		frames--
	}
	if frames <= 0 {
		if tagged {
			return Info{}, invalidf("MP3 file has no audio frames")
		}
		return Info{}, notAudio()
	}
	if xing > 0 && (xing > frames+1 || xing < frames-1) {
		return Info{}, invalidf("MP3 header says %d frames but %d are present (truncated?)", xing, frames)
	}
	return Info{
		Format:     FormatMP3,
		Codec:      CodecMP3,
		SampleRate: first.sampleRate,
		Channels:   first.channels,
		Duration:   durationOf(frames*int64(first.samples), first.sampleRate),
	}, nil
}

// id3v2Len returns the full length of the ID3v2 tag whose 10-byte header is
// b: header, syncsafe-sized body and optional footer.
func id3v2Len(b []byte) (int64, bool) {
	if len(b) < 10 || b[3] < 2 || b[3] > 4 || b[3] == 0xFF || b[4] == 0xFF {
		return 0, false
	}
	n, ok := syncsafe(b[6:10])
	if !ok {
		return 0, false
	}
	n += 10
	if b[5]&0x10 != 0 { // footer present (ID3v2.4)
		n += 10
	}
	return n, true
}

func syncsafe(b []byte) (int64, bool) {
	var n int64
	for _, c := range b[:4] {
		if c&0x80 != 0 {
			return 0, false
		}
		n = n<<7 | int64(c)
	}
	return n, true
}

// skipZeros returns the offset of the first non-zero byte in [off, limit),
// or limit.
func skipZeros(br *blockReader, off, limit int64) (int64, error) {
	for off < limit {
		b, err := br.slice(off, int(min(limit-off, 512)))
		if err != nil {
			return off, err
		}
		for i, c := range b {
			if c != 0 {
				return off + int64(i), nil
			}
		}
		off += int64(len(b))
	}
	return off, nil
}

// mp3AudioEnd returns where the frames end: before an ID3v1 tag in the last
// 128 bytes and any APEv2 or footer-marked ID3v2 tags before it.
func mp3AudioEnd(br *blockReader, start int64) (int64, error) {
	end := br.size
	if end-start >= 128 {
		b, err := br.slice(end-128, 3)
		if err != nil {
			return 0, err
		}
		if string(b) == "TAG" {
			end -= 128
		}
	}
	for range 2 { // an APE tag and an appended ID3v2 tag, in either order
		if end-start >= 32 {
			b, err := br.slice(end-32, 32)
			if err != nil {
				return 0, err
			}
			if string(b[:8]) == "APETAGEX" {
				le := binary.LittleEndian
				n := int64(le.Uint32(b[12:])) // items and footer
				if le.Uint32(b[20:])&(1<<31) != 0 {
					n += 32 // and a header
				}
				if n < 32 || n > end-start {
					return 0, invalidf("APE tag is malformed")
				}
				end -= n
				continue
			}
		}
		if end-start >= 20 {
			b, err := br.slice(end-10, 10)
			if err != nil {
				return 0, err
			}
			if hasPrefix(b, "3DI") {
				n, ok := id3v2Len(b)
				if !ok || n > end-start {
					return 0, invalidf("ID3 tag at the end of the file is malformed")
				}
				end -= n
				continue
			}
		}
		break
	}
	return end, nil
}

// vbrFrameCount looks for a Xing/Info or VBRI tag in the first frame fb and
// returns the number of frames it states (-1 if none) and whether fb is such
// a tag frame at all.
func vbrFrameCount(h mpegHeader, fb []byte) (int64, bool) {
	if h.layer != 3 {
		return -1, false
	}
	// The Xing tag follows the side information.
	side := 17
	switch {
	case h.version == 1 && h.channels == 2:
		side = 32
	case h.version != 1 && h.channels == 1:
		side = 9
	}
	off := 4 + side
	if h.protected {
		off += 2
	}
	be := binary.BigEndian
	if len(fb) >= off+8 && (string(fb[off:off+4]) == "Xing" || string(fb[off:off+4]) == "Info") {
		if be.Uint32(fb[off+4:])&1 != 0 && len(fb) >= off+12 {
			return int64(be.Uint32(fb[off+8:])), true
		}
		return -1, true
	}
	// A VBRI tag sits 32 bytes after the header.
	if len(fb) >= 36+18 && string(fb[36:40]) == "VBRI" {
		return int64(be.Uint32(fb[36+14:])), true
	}
	return -1, false
}
