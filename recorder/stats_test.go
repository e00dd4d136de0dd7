package recorder_test

import (
	"context"
	"testing"
	"time"

	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/recorder/siprectest"
)

// The media counters keep the sessions that ended: they only grow.
func TestTotalsKeepEndedSessions(t *testing.T) {
	f := newFixture(t)
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	speech := audio.SpeechLike(1, 8000, 8000) // 1 s: 50 packets a stream
	if _, err := c.Run(context.Background(), siprectest.Call{CallID: "totals@sbc", CallerAudio: speech, CalleeAudio: speech,
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}}); err != nil {
		t.Fatal(err)
	}
	f.waitRecording(t, "totals@sbc")
	for deadline := time.Now().Add(3 * time.Second); f.rec.Sessions() != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := f.rec.Totals(); f.rec.Sessions() != 0 || got.Packets < 95 || got.Packets > 100 {
		t.Errorf("after the session ended: %d sessions, %d packets counted; want 0 and the 100 sent (a few may be lost)", f.rec.Sessions(), got.Packets)
	}
}
