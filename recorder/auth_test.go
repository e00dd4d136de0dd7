package recorder_test

import (
	"context"
	"testing"

	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// With credentials configured, a recording client must answer the digest
// challenge: without credentials or with the wrong password it gets 401 and
// no session; with the right ones it records.
func TestDigestAuthentication(t *testing.T) {
	f := newFixture(t, func(r *recorder.Recorder) { r.Credentials = map[string]string{"sbc": "correct horse battery"} })
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pcm := audio.SpeechLike(3, 8000, 8000)
	call := func(id, user, password string) siprectest.Call {
		return siprectest.Call{CallID: id, Username: user, Password: password, CallerAudio: pcm, CalleeAudio: pcm,
			Caller: siprectest.Party{AOR: "sip:+447700900123@pstn.example"}, Callee: siprectest.Party{AOR: "sip:2001@pbx.example"}}
	}
	for _, tc := range []struct{ name, user, password string }{
		{"no credentials", "", ""},
		{"wrong password", "sbc", "correct horse"},
		{"unknown user", "pbx", "correct horse battery"},
	} {
		res, err := c.Run(context.Background(), call("refused-"+tc.user+"@sbc.example", tc.user, tc.password))
		if err == nil || res == nil || res.Status != 401 {
			t.Errorf("%s: got %+v, %v; want 401", tc.name, res, err)
		}
	}
	if n := f.rec.Counts(); n.Active != 0 || n.Started != 0 || n.Rejected[401] < 3 {
		t.Errorf("after refusals: %+v; want no session and at least three 401s", n)
	}
	res, err := c.Run(context.Background(), call("digest@sbc.example", "sbc", "correct horse battery"))
	if err != nil {
		t.Fatalf("with the right password: %+v, %v", res, err)
	}
	rec := f.waitRecording(t, "digest@sbc.example")
	left, _ := f.channels(t, rec)
	if _, ok := audio.Find(left, g711RoundTrip(pcm, "PCMU")); ok < 0.99 {
		t.Errorf("the authenticated session's audio is not in its recording (%.1f%%)", 100*ok)
	}
}
