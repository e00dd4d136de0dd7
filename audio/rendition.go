package audio

import (
	"encoding/binary"
	"errors"
	"io"
	"math"

	"github.com/callvault/callvault"
	"github.com/zaf/g711"
)

// Content types of renditions.
const (
	ContentTypeWAV = "audio/wav"
	ContentTypeOgg = "audio/ogg"
	ContentTypeMP3 = "audio/mpeg"
)

// wavHeaderLen is the length of the canonical PCM WAV header of a decoded
// G.711 rendition.
const wavHeaderLen = 44

// Rendition returns a browser-playable view of the stored file: PCM16 WAV,
// Ogg Opus and MP3 pass through unchanged (contentType audio/wav, audio/ogg,
// audio/mpeg); G.711 µ-law / A-law WAV is decoded on the fly into a PCM16 WAV
// with a fresh canonical 44-byte header, as an io.ReaderAt whose ReadAt(p,
// off) reads only the source bytes needed for [off, off+len(p)) (sample i of
// the output lives at 44+2*i and comes from source byte DataOffset+i). This
// is what makes HTTP Range requests and seeking cheap on a 1-hour recording.
//
// info must be what Probe returned for src. A format or codec without a
// rendition is EUNSUPPORTED; an info that cannot describe src (say, a data
// chunk past its end) is EINTERNAL, since it comes from our own records.
func Rendition(src io.ReaderAt, srcSize int64, info Info) (r io.ReaderAt, size int64, contentType string, err error) {
	switch {
	case info.Format == FormatWAV && info.Codec == CodecPCM16:
		return src, srcSize, ContentTypeWAV, nil
	case info.Format == FormatOgg && info.Codec == CodecOpus:
		return src, srcSize, ContentTypeOgg, nil
	case info.Format == FormatMP3 && info.Codec == CodecMP3:
		return src, srcSize, ContentTypeMP3, nil
	case info.Format == FormatWAV && (info.Codec == CodecULaw || info.Codec == CodecALaw):
		g, err := newG711Reader(src, srcSize, info)
		if err != nil {
			return nil, 0, "", err
		}
		return g, g.size(), ContentTypeWAV, nil
	}
	return nil, 0, "", unsupportedf("no playable rendition of %s audio in %s", info.Codec, info.Format)
}

// Decoding tables: the little-endian PCM16 bytes of each G.711 code.
var ulawPCM, alawPCM = func() (u, a [256][2]byte) {
	for i := range 256 {
		binary.LittleEndian.PutUint16(u[i][:], uint16(g711.DecodeUlawFrame(uint8(i))))
		binary.LittleEndian.PutUint16(a[i][:], uint16(g711.DecodeAlawFrame(uint8(i))))
	}
	return u, a
}()

// g711Reader is the PCM16 WAV rendition of a G.711 WAV. It keeps no state
// between calls, so concurrent ReadAt calls are safe if src allows them.
type g711Reader struct {
	src    io.ReaderAt
	off    int64 // of the source samples
	n      int64 // number of source samples (bytes), all channels
	table  *[256][2]byte
	header [wavHeaderLen]byte
}

func newG711Reader(src io.ReaderAt, srcSize int64, info Info) (*g711Reader, error) {
	if info.DataOffset < 0 || info.DataSize <= 0 || info.DataOffset > srcSize-info.DataSize ||
		info.Channels < 1 || info.Channels > 2 || info.DataSize%int64(info.Channels) != 0 ||
		info.SampleRate < minRate || info.SampleRate > maxRate {
		return nil, callvault.Errorf(callvault.EINTERNAL, "stored audio details do not match the file")
	}
	if 2*info.DataSize > math.MaxUint32-(wavHeaderLen-8) {
		return nil, unsupportedf("recording is too long to decode for playback")
	}
	g := &g711Reader{src: src, off: info.DataOffset, n: info.DataSize, table: &ulawPCM}
	if info.Codec == CodecALaw {
		g.table = &alawPCM
	}
	g.header = canonicalHeader(wavePCM, info.Channels, info.SampleRate, 16, uint32(2*info.DataSize))
	return g, nil
}

func (g *g711Reader) size() int64 { return wavHeaderLen + 2*g.n }

// ReadAt implements io.ReaderAt with a single ReadAt of the source, which is
// read into the front of p and decoded in place from the back: output byte j
// needs source byte (j+odd)/2 <= j, which is never overwritten before use.
func (g *g711Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("audio: negative offset")
	}
	size := g.size()
	if off >= size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > size-off {
		p = p[:size-off]
	}
	n := 0
	if off < wavHeaderLen {
		n = copy(p, g.header[off:])
	}
	if q := p[n:]; len(q) > 0 {
		r0 := off + int64(n) - wavHeaderLen // offset into the PCM data
		first := r0 / 2
		last := (r0 + int64(len(q)) - 1) / 2
		src := q[:last-first+1]
		if m, err := g.src.ReadAt(src, g.off+first); m < len(src) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		odd := int(r0 & 1)
		t := g.table
		for j := len(q) - 1; j >= 0; j-- {
			k := j + odd
			q[j] = t[src[k>>1]][k&1]
		}
	}
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// canonicalHeader returns the 44-byte header of a WAV with a 16-byte fmt
// chunk directly followed by a data chunk of dataLen bytes.
func canonicalHeader(tag uint16, channels, rate, bits int, dataLen uint32) (h [wavHeaderLen]byte) {
	le := binary.LittleEndian
	align := channels * bits / 8
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], wavHeaderLen-8+dataLen+dataLen&1)
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], tag)
	le.PutUint16(h[22:], uint16(channels))
	le.PutUint32(h[24:], uint32(rate))
	le.PutUint32(h[28:], uint32(rate*align))
	le.PutUint16(h[32:], uint16(align))
	le.PutUint16(h[34:], uint16(bits))
	copy(h[36:], "data")
	le.PutUint32(h[40:], dataLen)
	return h
}
