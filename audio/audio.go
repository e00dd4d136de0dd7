// Package audio understands the recordings callvault stores: it validates
// WAV (PCM16, G.711 µ-law and A-law), Ogg Opus and MP3 files from the bytes
// themselves, and serves a browser-playable rendition of each, decoding G.711
// on the fly so that range requests on long calls stay cheap. It also
// synthesises speech-like audio for demo data, tests and benchmarks.
//
// Nothing here trusts what a header claims: sizes are checked against the
// file, durations are computed from the audio, and no allocation depends on a
// number read from the file.
package audio

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/callvault/callvault"
)

// Info describes audio as found in the file itself (never trusted from metadata).
type Info struct {
	Format     string        // "wav", "ogg", "mp3"
	Codec      string        // "pcm16", "ulaw", "alaw", "opus", "mp3"
	SampleRate int           // for Opus always 48000, the rate it decodes at
	Channels   int           // 1 or 2 (Ogg Opus may carry up to 8)
	Duration   time.Duration // computed from the audio itself
	DataOffset int64         // WAV: offset of the sample data ("data" chunk payload); 0 otherwise
	DataSize   int64         // WAV: length of the sample data; 0 otherwise
}

// Formats and codecs as they appear in Info.
const (
	FormatWAV = "wav"
	FormatOgg = "ogg"
	FormatMP3 = "mp3"

	CodecPCM16 = "pcm16"
	CodecULaw  = "ulaw"
	CodecALaw  = "alaw"
	CodecOpus  = "opus"
	CodecMP3   = "mp3"
)

// blockSize is how much Probe asks of the underlying reader at a time. In
// production every ReadAt decrypts, so few large reads beat many small ones.
// It also bounds everything Probe allocates, whatever the file claims.
const blockSize = 64 << 10

// Probe validates the container and returns its Info. r is random access over
// the whole file of size bytes; Probe reads it in blocks of 64 KiB.
//
// A file that is malformed, truncated or not audio at all yields an
// EINVALID *callvault.Error whose message is safe to show to the client; a
// recognised container holding a codec callvault does not play (WAV IEEE
// float, Ogg Vorbis, MPEG Layer II, ...) yields EUNSUPPORTED. Errors from r
// itself are returned wrapped, not as *callvault.Error, since they are the
// server's problem rather than the client's.
func Probe(r io.ReaderAt, size int64) (Info, error) {
	if size < 0 {
		return Info{}, fmt.Errorf("audio: negative size %d", size)
	}
	br := newBlockReader(r, size)
	head, err := br.slice(0, int(min(size, 12)))
	if err != nil {
		return Info{}, err
	}
	switch {
	case hasPrefix(head, "RIFF"), hasPrefix(head, "RIFX"), hasPrefix(head, "RF64"):
		return probeWAV(br)
	case hasPrefix(head, "OggS"):
		return probeOgg(br)
	case hasPrefix(head, "ID3"), len(head) >= 2 && head[0] == 0xFF && head[1]&0xE0 == 0xE0:
		return probeMP3(br)
	}
	return Info{}, notAudio()
}

// notAudio is the error for files that are none of the formats.
func notAudio() error {
	return callvault.Errorf(callvault.EINVALID, "not a WAV, Ogg Opus or MP3 file")
}

func invalidf(format string, args ...any) error {
	return callvault.Errorf(callvault.EINVALID, format, args...)
}

func unsupportedf(format string, args ...any) error {
	return callvault.Errorf(callvault.EUNSUPPORTED, format, args...)
}

func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// durationOf returns the duration of frames sample frames at rate, without
// overflowing for any frame count a 4 GiB file can hold.
func durationOf(frames int64, rate int) time.Duration {
	if rate <= 0 || frames <= 0 {
		return 0
	}
	sec := frames / int64(rate)
	rem := frames % int64(rate)
	if sec >= math.MaxInt64/int64(time.Second) {
		return math.MaxInt64 // only reachable in an error message about a lying header
	}
	return time.Duration(sec)*time.Second + time.Duration(rem)*time.Second/time.Duration(rate)
}

// errShort reports that fewer bytes remain in the file than a slice needs.
// Parsers turn it into a format-specific "truncated" message.
var errShort = errors.New("audio: short file")

// blockReader serves small slices of a file from a single reused buffer,
// refilled in blocks of blockSize, so that walking chunks, pages or frames
// costs one ReadAt per 64 KiB rather than one per header.
type blockReader struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // file offset of buf[0]
	n    int   // valid bytes in buf
}

func newBlockReader(r io.ReaderAt, size int64) *blockReader {
	return &blockReader{r: r, size: size, buf: make([]byte, min(size, blockSize))}
}

// slice returns the n bytes at off, valid until the next call. n must not
// exceed blockSize. It returns errShort if the file ends before off+n.
func (b *blockReader) slice(off int64, n int) ([]byte, error) {
	if n < 0 || n > blockSize || off < 0 {
		return nil, errShort
	}
	if off > b.size || int64(n) > b.size-off {
		return nil, errShort
	}
	if off >= b.off && off+int64(n) <= b.off+int64(b.n) {
		i := int(off - b.off)
		return b.buf[i : i+n : i+n], nil
	}
	m := int(min(int64(len(b.buf)), b.size-off))
	got, err := b.r.ReadAt(b.buf[:m], off)
	if got < m {
		b.n = 0
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("audio: read %d bytes at offset %d: %w", m, off, err)
	}
	b.off, b.n = off, m
	return b.buf[:n:n], nil
}
