package audio

import (
	"encoding/binary"
	"errors"
)

// WAVE format tags (the wFormatTag of the fmt chunk).
const (
	wavePCM        = 0x0001
	waveFloat      = 0x0003
	waveALaw       = 0x0006
	waveULaw       = 0x0007
	waveExtensible = 0xFFFE
)

// guidTail is bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID that wraps a
// classic format tag; bytes 0..1 hold the tag itself.
const guidTail = "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xAA\x00\x38\x9B\x71"

// Accepted sample rates. Telephony uses 8 and 16 kHz; anything a browser
// plays up to 48 kHz is fine.
const (
	minRate = 8000
	maxRate = 48000
)

// wavFormat is what a fmt chunk says, after validation.
type wavFormat struct {
	codec      string
	channels   int
	rate       int
	blockAlign int
}

// probeWAV walks the RIFF chunks. It requires exactly one fmt and one data
// chunk, in any order, skips every other chunk (LIST, fact, cue, ...), and
// accepts chunks after the data. Odd-sized chunks are followed by a pad
// byte; a missing pad byte at the very end of the file is tolerated, since
// many writers omit it. A data chunk that is not a whole number of sample
// frames is rounded down to one.
func probeWAV(br *blockReader) (Info, error) {
	size := br.size
	hdr, err := br.slice(0, 12)
	if err != nil {
		return Info{}, shortAs(err, invalidf("WAV file is truncated (%d bytes)", size))
	}
	switch string(hdr[:4]) {
	case "RIFX":
		return Info{}, unsupportedf("big-endian WAV (RIFX) is not supported")
	case "RF64":
		return Info{}, unsupportedf("RF64 WAV is not supported")
	}
	if string(hdr[8:12]) != "WAVE" {
		return Info{}, notAudio()
	}
	riffSize := int64(binary.LittleEndian.Uint32(hdr[4:]))
	riffEnd := 8 + riffSize
	if riffSize < 4 || riffSize == 0xFFFFFFFF {
		return Info{}, invalidf("WAV header has no size (was the recording finished?)")
	}
	if riffEnd > size+1 {
		return Info{}, invalidf("WAV header claims %d bytes but the file has only %d (truncated?)", riffEnd, size)
	}
	end := min(riffEnd, size)

	var (
		format   *wavFormat
		dataOff  int64 = -1
		dataSize int64
	)
	for off := int64(12); off+8 <= end; {
		ch, err := br.slice(off, 8)
		if err != nil {
			return Info{}, err // cannot be short: off+8 <= size
		}
		id := string(ch[:4])
		n := int64(binary.LittleEndian.Uint32(ch[4:]))
		body := off + 8
		switch id {
		case "fmt ":
			if format != nil {
				return Info{}, invalidf("WAV has more than one fmt chunk")
			}
			if n > end-body {
				return Info{}, invalidf("WAV fmt chunk claims %d bytes but only %d follow", n, end-body)
			}
			b, err := br.slice(body, int(min(n, 40)))
			if err != nil {
				return Info{}, err
			}
			f, err := parseWAVFormat(b)
			if err != nil {
				return Info{}, err
			}
			format = &f
		case "data":
			if dataOff >= 0 {
				return Info{}, invalidf("WAV has more than one data chunk")
			}
			switch {
			case n == 0:
				return Info{}, invalidf("WAV data chunk is empty")
			case n == 0xFFFFFFFF:
				return Info{}, invalidf("WAV data chunk has no size (was the recording finished?)")
			case n > size-body:
				return Info{}, invalidf("WAV data chunk claims %d bytes but only %d follow (truncated?)", n, size-body)
			case n > end-body:
				return Info{}, invalidf("WAV data chunk runs past the end of the RIFF chunk")
			}
			dataOff, dataSize = body, n
		default:
			if n > end-body {
				return Info{}, invalidf("WAV %q chunk claims %d bytes but only %d follow (truncated?)", id, n, end-body)
			}
		}
		off = body + n + n&1
	}
	if format == nil {
		return Info{}, invalidf("WAV has no fmt chunk")
	}
	if dataOff < 0 {
		return Info{}, invalidf("WAV has no data chunk")
	}
	frames := dataSize / int64(format.blockAlign)
	if frames == 0 {
		return Info{}, invalidf("WAV data chunk is shorter than one sample")
	}
	return Info{
		Format:     FormatWAV,
		Codec:      format.codec,
		SampleRate: format.rate,
		Channels:   format.channels,
		Duration:   durationOf(frames, format.rate),
		DataOffset: dataOff,
		DataSize:   frames * int64(format.blockAlign),
	}, nil
}

// parseWAVFormat validates a fmt chunk payload (at most its first 40 bytes).
// The byte rate is ignored: durations come from the data size.
func parseWAVFormat(b []byte) (wavFormat, error) {
	if len(b) < 16 {
		return wavFormat{}, invalidf("WAV fmt chunk is too short (%d bytes)", len(b))
	}
	le := binary.LittleEndian
	tag := le.Uint16(b[0:])
	channels := int(le.Uint16(b[2:]))
	rate := int(le.Uint32(b[4:]))
	blockAlign := int(le.Uint16(b[12:]))
	bits := int(le.Uint16(b[14:]))

	if tag == waveExtensible {
		if len(b) < 40 || le.Uint16(b[16:]) < 22 {
			return wavFormat{}, invalidf("WAV extensible fmt chunk is too short")
		}
		valid := int(le.Uint16(b[18:]))
		guid := b[24:40]
		if string(guid[2:]) != guidTail {
			return wavFormat{}, unsupportedf("WAV extensible sub-format is not supported")
		}
		tag = le.Uint16(guid)
		if tag == waveExtensible {
			return wavFormat{}, invalidf("WAV extensible sub-format is itself extensible")
		}
		// 0 means "same as the container", which some writers put there.
		if valid > bits {
			return wavFormat{}, invalidf("WAV claims %d valid bits in %d-bit samples", valid, bits)
		}
	}

	var codec string
	switch tag {
	case wavePCM:
		if bits != 16 {
			return wavFormat{}, unsupportedf("%d-bit PCM WAV is not supported (only 16-bit)", bits)
		}
		codec = CodecPCM16
	case waveULaw, waveALaw:
		codec = CodecULaw
		if tag == waveALaw {
			codec = CodecALaw
		}
		if bits != 8 {
			return wavFormat{}, invalidf("G.711 WAV must have 8 bits per sample, not %d", bits)
		}
	case waveFloat:
		return wavFormat{}, unsupportedf("WAV with floating-point samples is not supported")
	default:
		return wavFormat{}, unsupportedf("WAV codec 0x%04X is not supported (only PCM, µ-law and A-law)", tag)
	}

	switch {
	case channels == 0:
		return wavFormat{}, invalidf("WAV has no channels")
	case channels > 2:
		return wavFormat{}, unsupportedf("WAV with %d channels is not supported (only mono or stereo)", channels)
	case rate == 0:
		return wavFormat{}, invalidf("WAV has a sample rate of 0")
	case rate < minRate || rate > maxRate:
		return wavFormat{}, unsupportedf("WAV sample rate %d Hz is not supported (%d to %d Hz)", rate, minRate, maxRate)
	case blockAlign != channels*bits/8:
		return wavFormat{}, invalidf("WAV block align %d does not match %d channel(s) of %d bits", blockAlign, channels, bits)
	}
	return wavFormat{codec: codec, channels: channels, rate: rate, blockAlign: blockAlign}, nil
}

// shortAs returns short if err reports that the file ended early, and err
// (an I/O failure of the underlying reader) otherwise.
func shortAs(err, short error) error {
	if errors.Is(err, errShort) {
		return short
	}
	return err
}
