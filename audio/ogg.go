package audio

import (
	"encoding/binary"
)

// Ogg page header flags.
const (
	oggContinued = 0x01
	oggBOS       = 0x02
	oggEOS       = 0x04
)

const (
	oggHeaderLen = 27
	oggMaxPage   = oggHeaderLen + 255 + 255*255 // fits in one blockSize
	opusRate     = 48000                        // Opus granule positions count 48 kHz samples
	maxHeadBytes = 21 + 255                     // OpusHead with the largest channel mapping table
)

// oggCRCTable is the table of Ogg's CRC-32: polynomial 0x04C11DB7, not
// reflected, initial value 0, no final XOR (unlike hash/crc32).
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04C11DB7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func oggCRC(crc uint32, b []byte) uint32 {
	for _, c := range b {
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^c]
	}
	return crc
}

// opusHead is what Probe needs from the OpusHead packet.
type opusHead struct {
	channels int
	preSkip  int64
}

// probeOgg walks every page of a single-stream Ogg Opus file: capture
// pattern, version, CRC, consecutive sequence numbers, and packet framing
// across pages. The first page must hold exactly the OpusHead packet, the
// next packet must be OpusTags and must end its page; the duration is the
// last granule position minus the pre-skip. A missing end-of-stream flag is
// accepted (the duration still comes from the last page), but a page cut
// short or a packet left open at the end of the file is not.
func probeOgg(br *blockReader) (Info, error) {
	var (
		head      opusHead
		serial    uint32
		prevSeq   uint32
		packets   int    // packets completed so far
		inPacket  bool   // the last page ended inside a packet
		pkt       []byte // start of the packet being assembled, while packets < 2
		granule   int64  = -1
		samples   int64  // audio samples (at 48 kHz) in the packets, from their TOC bytes
		eos       bool
		pageCount int
	)
	for off := int64(0); off < br.size; pageCount++ {
		h, err := br.slice(off, oggHeaderLen)
		if err != nil {
			return Info{}, shortAs(err, invalidf("Ogg file is truncated (page %d is incomplete)", pageCount))
		}
		if string(h[:4]) != "OggS" {
			return Info{}, invalidf("Ogg page %d at byte %d is damaged", pageCount, off)
		}
		if h[4] != 0 {
			return Info{}, invalidf("Ogg page %d has unknown version %d", pageCount, h[4])
		}
		le := binary.LittleEndian
		flags := h[5]
		pos := int64(le.Uint64(h[6:]))
		ser := le.Uint32(h[14:])
		seq := le.Uint32(h[18:])
		sum := le.Uint32(h[22:])
		nseg := int(h[26])

		page, err := br.slice(off, oggHeaderLen+nseg)
		if err != nil {
			return Info{}, shortAs(err, invalidf("Ogg file is truncated (page %d is incomplete)", pageCount))
		}
		bodyLen := 0
		for _, l := range page[oggHeaderLen:] {
			bodyLen += int(l)
		}
		pageLen := oggHeaderLen + nseg + bodyLen
		page, err = br.slice(off, pageLen)
		if err != nil {
			return Info{}, shortAs(err, invalidf("Ogg file is truncated (page %d is incomplete)", pageCount))
		}
		crc := oggCRC(0, page[:22])
		crc = oggCRC(crc, []byte{0, 0, 0, 0})
		crc = oggCRC(crc, page[26:])
		if crc != sum {
			return Info{}, invalidf("Ogg page %d at byte %d is damaged (checksum mismatch)", pageCount, off)
		}

		if pageCount == 0 {
			if flags&oggBOS == 0 || flags&oggContinued != 0 {
				return Info{}, invalidf("Ogg file does not start with a beginning-of-stream page")
			}
			serial = ser
		} else {
			switch {
			case ser != serial:
				return Info{}, unsupportedf("Ogg files with more than one stream are not supported")
			case flags&oggBOS != 0:
				return Info{}, invalidf("Ogg page %d restarts the stream", pageCount)
			case eos:
				return Info{}, invalidf("Ogg page %d follows the end of the stream", pageCount)
			case seq != prevSeq+1:
				return Info{}, invalidf("Ogg page %d is out of sequence (%d after %d): pages are missing", pageCount, seq, prevSeq)
			}
		}
		if continued := flags&oggContinued != 0; continued != inPacket {
			return Info{}, invalidf("Ogg page %d at byte %d breaks packet framing", pageCount, off)
		}
		prevSeq = seq
		eos = flags&oggEOS != 0

		segs := page[oggHeaderLen : oggHeaderLen+nseg]
		body := page[oggHeaderLen+nseg:]
		for i, l := range segs {
			seg := body[:l]
			body = body[l:]
			if packets < 2 && len(pkt) < maxHeadBytes {
				pkt = append(pkt, seg[:min(len(seg), maxHeadBytes-len(pkt))]...)
			}
			if packets >= 2 && !inPacket && l > 0 {
				// The first segment of a packet holds its TOC byte (and the
				// frame count byte, if any): enough to know its length.
				n, ok := opusPacketSamples(seg)
				if !ok {
					return Info{}, invalidf("Opus packet on Ogg page %d is damaged", pageCount)
				}
				samples += n
			}
			inPacket = l == 255
			if inPacket {
				continue
			}
			switch packets {
			case 0:
				if head, err = parseOpusHead(pkt); err != nil {
					return Info{}, err
				}
				if i != nseg-1 {
					return Info{}, invalidf("Ogg Opus header page holds more than the header")
				}
			case 1:
				if !hasPrefix(pkt, "OpusTags") {
					return Info{}, invalidf("Ogg Opus file has no comment header")
				}
				if i != nseg-1 {
					return Info{}, invalidf("Ogg Opus comment header does not end its page")
				}
			}
			packets++
			pkt = pkt[:0]
		}
		if pageCount == 0 {
			if packets == 0 {
				// The OpusHead packet is tiny; a first page ending inside a
				// packet is either not Opus or broken. Name the codec if we can.
				if len(pkt) >= 8 {
					if err := oggCodecError(pkt); err != nil {
						return Info{}, err
					}
				}
				return Info{}, invalidf("Ogg Opus header does not fit its page")
			}
			if pos != 0 {
				return Info{}, invalidf("Ogg Opus header page has a non-zero granule position")
			}
		}
		if packets > 2 && pos != -1 {
			if pos < granule {
				return Info{}, invalidf("Ogg page %d goes back in time", pageCount)
			}
			granule = pos
		}
		off += int64(pageLen)
	}
	switch {
	case inPacket:
		return Info{}, invalidf("Ogg file ends inside a packet (truncated?)")
	case packets < 2:
		return Info{}, invalidf("Ogg Opus file has no comment header")
	case granule < 0:
		return Info{}, invalidf("Ogg Opus file has no audio")
	case granule < head.preSkip:
		return Info{}, invalidf("Ogg Opus file ends before its pre-skip")
	case granule > samples:
		// Granule positions count every decoded sample, pre-skip included.
		// The last page may trim the end, but never claim more than the
		// packets hold.
		return Info{}, invalidf("Ogg Opus file claims %s of audio but holds only %s",
			durationOf(granule-head.preSkip, opusRate), durationOf(samples-head.preSkip, opusRate))
	}
	return Info{
		Format:     FormatOgg,
		Codec:      CodecOpus,
		SampleRate: opusRate,
		Channels:   head.channels,
		Duration:   durationOf(granule-head.preSkip, opusRate),
	}, nil
}

// oggCodecError names the codec of a first packet that is not Opus.
func oggCodecError(p []byte) error {
	switch {
	case hasPrefix(p, "OpusHead"):
		return nil
	case hasPrefix(p, "\x01vorbis"):
		return unsupportedf("Ogg Vorbis is not supported (only Ogg Opus)")
	case hasPrefix(p, "\x7fFLAC"):
		return unsupportedf("Ogg FLAC is not supported (only Ogg Opus)")
	case hasPrefix(p, "Speex   "):
		return unsupportedf("Ogg Speex is not supported (only Ogg Opus)")
	}
	return unsupportedf("this Ogg codec is not supported (only Ogg Opus)")
}

// opusPacketSamples returns the number of 48 kHz samples in an Opus packet
// from its first bytes (RFC 6716 section 3.1).
func opusPacketSamples(p []byte) (int64, bool) {
	toc := p[0]
	config := toc >> 3
	var frame int64
	switch {
	case config < 12: // SILK-only: 10, 20, 40, 60 ms
		frame = [4]int64{480, 960, 1920, 2880}[config%4]
	case config < 16: // hybrid: 10, 20 ms
		frame = [2]int64{480, 960}[config%2]
	default: // CELT-only: 2.5, 5, 10, 20 ms
		frame = [4]int64{120, 240, 480, 960}[config%4]
	}
	var frames int64
	switch toc & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, false
		}
		frames = int64(p[1] & 0x3F)
		if frames == 0 {
			return 0, false
		}
	}
	if n := frames * frame; n <= 5760 { // a packet holds at most 120 ms
		return n, true
	}
	return 0, false
}

// parseOpusHead validates the identification header (RFC 7845 section 5.1).
func parseOpusHead(p []byte) (opusHead, error) {
	if err := oggCodecError(p); err != nil {
		return opusHead{}, err
	}
	if len(p) < 19 {
		return opusHead{}, invalidf("Opus header is too short")
	}
	version := p[8]
	channels := int(p[9])
	preSkip := int64(binary.LittleEndian.Uint16(p[10:]))
	family := p[18]
	switch {
	case version == 0:
		return opusHead{}, invalidf("Opus header has version 0")
	case version > 15: // the upper nibble is the major version; only 0 is defined
		return opusHead{}, unsupportedf("Opus header version %d is not supported", version)
	case channels == 0:
		return opusHead{}, invalidf("Opus header has no channels")
	}
	switch family {
	case 0:
		if channels > 2 {
			return opusHead{}, invalidf("Opus mapping family 0 allows 1 or 2 channels, not %d", channels)
		}
	case 1:
		if channels > 8 {
			return opusHead{}, invalidf("Opus mapping family 1 allows 1 to 8 channels, not %d", channels)
		}
		if len(p) < 21+channels {
			return opusHead{}, invalidf("Opus channel mapping table is too short")
		}
		streams, coupled := int(p[19]), int(p[20])
		if streams == 0 || coupled > streams || streams+coupled > 255 {
			return opusHead{}, invalidf("Opus channel mapping has %d streams of which %d coupled", streams, coupled)
		}
		for _, m := range p[21 : 21+channels] {
			if m != 255 && int(m) >= streams+coupled {
				return opusHead{}, invalidf("Opus channel mapping refers to a missing stream")
			}
		}
	default:
		return opusHead{}, unsupportedf("Opus channel mapping family %d is not supported", family)
	}
	return opusHead{channels: channels, preSkip: preSkip}, nil
}
