package media

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/callvault/callvault"
)

const wavHeaderLen = 44

// renderChunk is how many frames Render mixes at a time: memory stays
// bounded however long the session.
const renderChunk = 8192

// Render writes the recording to w: a canonical 44-byte-header PCM16 stereo
// WAV at Rate, Frames() frames long (from Start to End), the left channel
// the external side's streams and the right the staff side's (streams on
// one side are mixed, a SideMixed stream goes to both), silence where
// nothing arrived and during pauses. It only reads the spool, so it can be
// repeated (say, after a failed ingest). A recording over the 4 GiB of a
// WAV (about 37 hours) is EINVALID.
func (sp *Spool) Render(w io.Writer) error {
	frames := sp.Frames()
	dataLen := 4 * frames
	if dataLen > math.MaxUint32-wavHeaderLen {
		return callvault.Errorf(callvault.EINVALID, "a recording of %v does not fit in a WAV file", sp.Duration())
	}
	var hdr [wavHeaderLen]byte
	le := binary.LittleEndian
	copy(hdr[0:], "RIFF")
	le.PutUint32(hdr[4:], uint32(wavHeaderLen-8+dataLen))
	copy(hdr[8:], "WAVEfmt ")
	le.PutUint32(hdr[16:], 16)
	le.PutUint16(hdr[20:], 1) // PCM
	le.PutUint16(hdr[22:], 2)
	le.PutUint32(hdr[24:], Rate)
	le.PutUint32(hdr[28:], 4*Rate)
	le.PutUint16(hdr[32:], 4)
	le.PutUint16(hdr[34:], 16)
	copy(hdr[36:], "data")
	le.PutUint32(hdr[40:], uint32(dataLen))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}

	type input struct {
		f           *os.File
		left, right bool
		buf         []byte
	}
	var ins []input
	defer func() {
		for _, in := range ins {
			in.f.Close()
		}
	}()
	for _, st := range sp.Streams {
		f, err := os.Open(filepath.Join(sp.Dir, st.File))
		if err != nil {
			return fmt.Errorf("media: %w", err)
		}
		ins = append(ins, input{f: f, left: st.Side != callvault.SideStaff, right: st.Side != callvault.SideExternal, buf: make([]byte, 2*renderChunk)})
	}
	var mixL, mixR [renderChunk]int32
	out := make([]byte, 4*renderChunk)
	for off := int64(0); off < frames; off += renderChunk {
		n := int(min(renderChunk, frames-off))
		clear(mixL[:n])
		clear(mixR[:n])
		for _, in := range ins {
			if err := readTrack(in.f, in.buf[:2*n], off); err != nil {
				return err
			}
			for i := range n {
				v := int32(int16(le.Uint16(in.buf[2*i:])))
				if in.left {
					mixL[i] += v
				}
				if in.right {
					mixR[i] += v
				}
			}
		}
		for i := range n {
			le.PutUint16(out[4*i:], uint16(clamp16(mixL[i])))
			le.PutUint16(out[4*i+2:], uint16(clamp16(mixR[i])))
		}
		for _, p := range sp.Paused { // silence, whatever arrived around the edges
			a := max(off, int64(p.From)/nsPerSample)
			b := min(off+int64(n), (int64(p.To)+nsPerSample-1)/nsPerSample)
			if a < b {
				clear(out[4*(a-off) : 4*(b-off)])
			}
		}
		if _, err := w.Write(out[:4*n]); err != nil {
			return err
		}
	}
	return nil
}

func clamp16(v int32) int16 {
	return int16(max(math.MinInt16, min(math.MaxInt16, v)))
}
