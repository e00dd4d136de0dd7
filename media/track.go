package media

import (
	"fmt"
	"os"
)

// track is one stream's spool file: PCM16 little-endian mono at Rate, sample
// i at byte 2*i, sample 0 at the session start. Decoded audio is put at its
// timeline position into a buffer that is written out (one pwrite) when the
// spool syncer comes by (every SyncEvery, one second by default: one write
// a second) or once it holds flushAt bytes, so there is no write syscall
// per packet. Short gaps (loss) become zeros in the buffer;
// long ones (hold, a stream that starts late) are left as holes in the file,
// which read back as zeros: silence either way.
type track struct {
	f       *os.File
	buf     []byte // pending samples; never grows past its capacity
	pos     int64  // timeline sample of buf[0]
	flushAt int    // bytes buffered before a write without the syncer
	started bool   // something was put
	dirty   bool   // written since the last fsync
	err     error  // first write error; later audio is dropped
}

// trackBuf is the capacity of a track's buffer: room for a second of audio
// between syncs (16,000 bytes) with a good margin for a late syncer, the
// largest packet and short gaps filled with zeros.
const trackBuf = 64 << 10

// newTrack returns the track of f. It writes on its own once it holds
// flushAt bytes (0: half its buffer, 2 s of audio, which the syncer
// normally comes by long before).
func newTrack(f *os.File, flushAt int) track {
	if flushAt <= 0 || flushAt > trackBuf/2 {
		flushAt = trackBuf / 2
	}
	return track{f: f, buf: make([]byte, 0, trackBuf), flushAt: max(flushAt, 2)}
}

// head is the timeline position just after the last sample put.
func (t *track) head() int64 { return t.pos + int64(len(t.buf)/2) }

// put places the PCM16 samples pcm at timeline position pos. Samples before
// the head (an overlap, or a position before the session start) are dropped:
// the file is only ever appended to.
func (t *track) put(pos int64, pcm []byte) {
	h := t.head()
	if pos < h {
		skip := (h - pos) * 2
		if skip >= int64(len(pcm)) {
			return
		}
		pcm, pos = pcm[skip:], h
	}
	t.started = true
	if gap := pos - h; gap > 0 {
		if int64(cap(t.buf)-len(t.buf)) >= 2*gap+int64(len(pcm)) {
			n := len(t.buf)
			t.buf = t.buf[:n+int(2*gap)]
			clear(t.buf[n:])
		} else {
			t.flush()
			t.pos = pos // a hole in the file
		}
	}
	if len(t.buf)+len(pcm) > cap(t.buf) {
		t.flush()
	}
	t.buf = append(t.buf, pcm...)
	if len(t.buf) >= t.flushAt {
		t.flush()
	}
}

// flush writes the buffer out. After a write error the audio is dropped (the
// error is kept for Finish and Session.Err): a spool that cannot be written
// must not make the process run out of memory.
func (t *track) flush() {
	if len(t.buf) == 0 {
		return
	}
	if t.err == nil {
		if _, err := t.f.WriteAt(t.buf, 2*t.pos); err != nil {
			t.err = fmt.Errorf("media: write %s: %w", t.f.Name(), err)
		}
		t.dirty = true
	}
	t.pos += int64(len(t.buf) / 2)
	t.buf = t.buf[:0]
}
