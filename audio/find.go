package audio

import (
	"bytes"
	"encoding/binary"
)

// Find locates want inside got, for checking that a recording holds the
// audio that was sent: it finds want's loudest 20 ms at 8 kHz (160
// samples), which must be there exactly, and returns where want starts in
// got and the share of want's samples that are identical there. A packet
// lost on the way costs 160 samples of the share, and so does each 160 of
// want that runs past the end of got (a recording cut short). It returns
// -1 and 0 when want is not there (or is shorter than 160 samples).
func Find(got, want []int16) (offset int, share float64) {
	const frame = 160
	if len(want) < frame {
		return -1, 0
	}
	loudest, best := 0, int64(-1)
	for b := 0; b+frame <= len(want); b += frame {
		var e int64
		for _, v := range want[b : b+frame] {
			e += int64(v) * int64(v)
		}
		if e > best {
			loudest, best = b, e
		}
	}
	key := pcmBytes(want[loudest : loudest+frame])
	g := pcmBytes(got)
	for i := 0; i+len(key) <= len(g); i += 2 {
		if !bytes.Equal(g[i:i+len(key)], key) {
			continue
		}
		off := i/2 - loudest
		if off < 0 {
			continue
		}
		same := 0
		for j, v := range want[:min(len(want), len(got)-off)] {
			if got[off+j] == v {
				same++
			}
		}
		return off, float64(same) / float64(len(want))
	}
	return -1, 0
}

func pcmBytes(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}
