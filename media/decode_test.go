package media_test

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
)

// TestDecodeIsWhatASessionRecords: Decode gives, sample for sample, what a
// session records from the same payloads sent in order, for every codec.
func TestDecodeIsWhatASessionRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := func(n, size int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = make([]byte, size)
			for j := range out[i] {
				out[i][j] = byte(rng.Uint32())
			}
		}
		return out
	}
	opus, _ := oggOpus(t, filepath.Join("testdata", "opus", "hybrid.opus"))
	cases := []struct {
		encoding string
		pt       uint8
		payloads [][]byte
		step     uint32 // RTP timestamp per packet
	}{
		{"PCMU/8000", 0, random(25, 160), 160},
		{"PCMA/8000", 8, random(25, 160), 160},
		{"G722/8000", 9, random(25, 160), 160},
		{"opus/48000/2", 111, opus, 960},
	}
	for _, tc := range cases {
		t.Run(tc.encoding, func(t *testing.T) {
			got, err := media.Decode(tc.encoding, tc.payloads)
			if err != nil {
				t.Fatal(err)
			}
			c := &clock{t: t0}
			conn := listen(t)
			snd := newSender(t, conn)
			sess := session(t, c, media.Config{}, media.StreamConfig{Label: "1", Side: callvault.SideExternal, Conn: conn,
				Remote: addrOf(snd.conn), PayloadTypes: map[uint8]string{tc.pt: tc.encoding}})
			snd.tgt = lockstep(sess, 0)
			for k, p := range tc.payloads {
				c.Set(t0.Add(time.Duration(k) * 20 * time.Millisecond))
				snd.rtp(pkt(9, uint16(k), tc.step*uint32(k), tc.pt, p))
			}
			c.Set(t0.Add(time.Duration(len(tc.payloads)) * 20 * time.Millisecond))
			sp, err := sess.Finish()
			if err != nil {
				t.Fatal(err)
			}
			left, _ := render(t, sp)
			if len(got) != 160*len(tc.payloads) {
				t.Fatalf("Decode gave %d samples for %d payloads of 20 ms, want %d", len(got), len(tc.payloads), 160*len(tc.payloads))
			}
			if !slices.Equal(left[:len(got)], got) {
				t.Errorf("Decode differs from what the session recorded")
			}
			if slices.Max(got) == 0 && slices.Min(got) == 0 {
				t.Errorf("Decode gave silence")
			}
		})
	}
	// G.722 through Decode is the audio package's decoder at 8 kHz.
	g := random(3, 160)
	want := audio.NewG722Decoder(media.Rate).Decode(nil, slices.Concat(g...))
	if got, _ := media.Decode("g722", g); !slices.Equal(got, want) {
		t.Errorf("G.722 Decode differs from audio.G722Decoder")
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		encoding string
		payloads [][]byte
		code     string
	}{
		{"G729/8000", [][]byte{make([]byte, 20)}, callvault.EUNSUPPORTED},
		{"telephone-event/8000", [][]byte{make([]byte, 4)}, callvault.EUNSUPPORTED},
		{"PCMU/16000", [][]byte{make([]byte, 160)}, callvault.EUNSUPPORTED},
		{"PCMU/8000", [][]byte{make([]byte, 4096)}, callvault.EINVALID},
		{"opus/48000/2", [][]byte{{}}, callvault.EINVALID},
	} {
		if _, err := media.Decode(tc.encoding, tc.payloads); callvault.ErrorCode(err) != tc.code {
			t.Errorf("Decode(%s, %d bytes) = %v, want %s", tc.encoding, len(tc.payloads[0]), err, tc.code)
		}
	}
}
