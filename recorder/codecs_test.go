package recorder_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/media"
	"github.com/callvault/callvault/recorder/siprectest"
)

// G.722 and Opus sessions from the Go client: each channel holds, sample
// for sample, the decoding of the payloads sent on its stream (media.Decode
// is the reference: how the codecs themselves compare with spandsp and
// libopus is tested in audio and media), and the recording is as long as
// the session.
func TestRecordsG722AndOpus(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 7))
	g722 := func(n int) [][]byte { // 20 ms payloads of G.722 (no encoder here: any bytes decode)
		out := make([][]byte, n)
		for i := range out {
			out[i] = make([]byte, 160)
			for j := range out[i] {
				out[i][j] = byte(rng.Uint32())
			}
		}
		return out
	}
	opus := filepath.Join("..", "media", "testdata", "opus")
	for _, tc := range []struct {
		codec, encoding string
		legs            [2][][]byte
	}{
		{"G722", "G722/8000", [2][][]byte{g722(100), g722(100)}},
		{"OPUS", "opus/48000/2", [2][][]byte{cvtest.OggOpusPackets(t, filepath.Join(opus, "hybrid.opus")), cvtest.OggOpusPackets(t, filepath.Join(opus, "silk-wb.opus"))}},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			f := newFixture(t)
			c, err := siprectest.NewClient(f.sip)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			callID := "call-" + tc.codec + "@sbc.example"
			start := time.Now()
			res, err := c.Run(context.Background(), siprectest.Call{CallID: callID, Codec: tc.codec, Payloads: tc.legs,
				Caller: siprectest.Party{AOR: "sip:+447700900123@pstn.example"}, Callee: siprectest.Party{AOR: "sip:2001@pbx.example"}})
			session := time.Since(start)
			if err != nil {
				t.Fatalf("session: %v (%v)", err, res)
			}
			for _, st := range res.Answer.Streams {
				if len(st.Codecs) == 0 || st.Codecs[0].Name != tc.codec {
					t.Errorf("answer stream %s offers %v, want %s first", st.Label, st.Codecs, tc.codec)
				}
			}
			rec := f.waitRecording(t, callID)
			left, right := f.channels(t, rec)
			for i, got := range [][]int16{left, right} {
				want, err := media.Decode(tc.encoding, tc.legs[i])
				if err != nil {
					t.Fatal(err)
				}
				if off, ok := audio.Find(got, want); ok < 0.99 {
					t.Errorf("channel %d does not hold the %s audio sent (at %d: %.2f%% of samples)", i, tc.codec, off, 100*ok)
				}
			}
			sent := time.Duration(len(tc.legs[0])) * 20 * time.Millisecond
			if rec.Duration < sent || rec.Duration > session+20*time.Millisecond {
				t.Errorf("duration %v; %v of audio was sent in a session of %v", rec.Duration, sent, session)
			}
			if rec.Participants[0].Number != "+447700900123" || rec.Direction != callvault.DirectionInbound {
				t.Errorf("participants %+v, direction %s", rec.Participants, rec.Direction)
			}
			f.audit(t, callID, "codec", tc.codec)
		})
	}
}

// audit checks that the ingest audit entry of callID's recording has
// details[key] containing want.
func (f *fixture) audit(t *testing.T, callID, key, want string) {
	t.Helper()
	rec := f.waitRecording(t, callID)
	got, found := "", false
	for range 100 {
		err := f.d.Audit.WalkAudit(f.d.Sys, 0, func(e *callvault.AuditEvent) error {
			if e.Action == "recording.ingest" && e.TargetID == rec.ID {
				got, found = e.Details[key], true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if found {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !found || !strings.Contains(got, want) {
		t.Errorf("ingest audit entry of %s: %s = %q (found %v), want it to contain %q", callID, key, got, found, want)
	}
}
