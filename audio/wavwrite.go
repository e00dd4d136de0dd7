package audio

import (
	"encoding/binary"
	"io"
	"math"

	"github.com/zaf/g711"
)

// WriteWAV writes a canonical WAV of the given codec ("pcm16", "ulaw", "alaw")
// with channels = len(chans) (interleaved; all channels equal length) to w.
//
// PCM16 gets the classic 44-byte header. G.711 gets what the WAV
// specification asks of non-PCM formats and what sox writes: an 18-byte fmt
// chunk and a fact chunk, so its samples start at byte 58. Arguments that
// cannot make a WAV Probe accepts (more than two channels, unequal lengths,
// over 4 GiB) are EINVALID.
func WriteWAV(w io.Writer, codec string, rate int, chans ...[]int16) error {
	var (
		tag   uint16
		width int // bytes per sample
	)
	switch codec {
	case CodecPCM16:
		tag, width = wavePCM, 2
	case CodecULaw:
		tag, width = waveULaw, 1
	case CodecALaw:
		tag, width = waveALaw, 1
	default:
		return invalidf("cannot write WAV with codec %q", codec)
	}
	if len(chans) < 1 || len(chans) > 2 {
		return invalidf("cannot write WAV with %d channels", len(chans))
	}
	if rate <= 0 || rate > math.MaxInt32/4 {
		return invalidf("cannot write WAV at %d Hz", rate)
	}
	frames := len(chans[0])
	for _, c := range chans[1:] {
		if len(c) != frames {
			return invalidf("WAV channels differ in length")
		}
	}
	dataLen := int64(frames) * int64(len(chans)) * int64(width)
	if dataLen > math.MaxUint32-100 {
		return invalidf("WAV would exceed 4 GiB")
	}

	le := binary.LittleEndian
	var hdr []byte
	if tag == wavePCM {
		h := canonicalHeader(tag, len(chans), rate, 16, uint32(dataLen))
		hdr = h[:]
	} else {
		hdr = make([]byte, 58)
		copy(hdr[0:], "RIFF")
		le.PutUint32(hdr[4:], uint32(58-8+dataLen+dataLen&1))
		copy(hdr[8:], "WAVEfmt ")
		le.PutUint32(hdr[16:], 18)
		le.PutUint16(hdr[20:], tag)
		le.PutUint16(hdr[22:], uint16(len(chans)))
		le.PutUint32(hdr[24:], uint32(rate))
		le.PutUint32(hdr[28:], uint32(rate*len(chans)))
		le.PutUint16(hdr[32:], uint16(len(chans)))
		le.PutUint16(hdr[34:], 8)
		le.PutUint16(hdr[36:], 0) // cbSize
		copy(hdr[38:], "fact")
		le.PutUint32(hdr[42:], 4)
		le.PutUint32(hdr[46:], uint32(frames))
		copy(hdr[50:], "data")
		le.PutUint32(hdr[54:], uint32(dataLen))
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}

	buf := make([]byte, 0, 32<<10)
	for i := range frames {
		for _, c := range chans {
			s := c[i]
			switch tag {
			case wavePCM:
				buf = le.AppendUint16(buf, uint16(s))
			case waveULaw:
				buf = append(buf, g711.EncodeUlawFrame(s))
			case waveALaw:
				buf = append(buf, g711.EncodeAlawFrame(s))
			}
		}
		if len(buf) >= cap(buf)-4 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if dataLen&1 != 0 {
		buf = append(buf, 0) // pad byte
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}
