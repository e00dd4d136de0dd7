package recorder_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// floor is a storage monitor that refuses once full is set.
type floor struct{ full atomic.Bool }

func (f *floor) Admit() error {
	if f.full.Load() {
		return callvault.Errorf(callvault.EUNAVAILABLE, "storage is nearly full")
	}
	return nil
}

// invite sends one INVITE with body and headers and returns the final
// response.
func invite(t *testing.T, f *fixture, body []byte, headers ...sip.Header) *sip.Response {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "srs", Host: "127.0.0.1", Port: int(f.sip.Port())})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{User: "x", Host: "127.0.0.1"}})
	for _, h := range headers {
		req.AppendHeader(h)
	}
	req.SetBody(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// An ordinary call is refused clearly (488 with a Warning); a SIPREC offer
// with no codec the recorder decodes gets 488; a malformed body 400; and
// at the storage floor new sessions get 503 with Retry-After. Nothing is
// left behind.
func TestRejections(t *testing.T) {
	space := &floor{}
	f := newFixture(t, func(r *recorder.Recorder) { r.Space = space })
	g729 := []byte("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\na=sendonly\r\na=label:1\r\n")
	plain := []byte("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
	sdp := sip.NewHeader("Content-Type", "application/sdp")
	siprec := sip.NewHeader("Require", "siprec")

	if res := invite(t, f, plain, sdp); res.StatusCode != 488 || res.GetHeader("Warning") == nil {
		t.Errorf("a plain INVITE got %d (Warning %v), want 488 with a Warning", res.StatusCode, res.GetHeader("Warning"))
	}
	if res := invite(t, f, g729, sdp, siprec); res.StatusCode != 488 {
		t.Errorf("a G.729-only offer got %d, want 488", res.StatusCode)
	}
	if res := invite(t, f, []byte("garbage"), sip.NewHeader("Content-Type", "multipart/mixed;boundary=x"), siprec); res.StatusCode != 400 {
		t.Errorf("a malformed body got %d, want 400", res.StatusCode)
	}

	space.full.Store(true)
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(context.Background(), siprectest.Call{CallID: "full@sbc", CallerAudio: make([]int16, 800), CalleeAudio: make([]int16, 800),
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}})
	if err == nil || res == nil || res.Status != 503 {
		t.Fatalf("a session at the storage floor got %v, %v; want 503", res, err)
	}
	counts := f.rec.Counts()
	if counts.Active != 0 || counts.Started != 0 || counts.Rejected[488] != 2 || counts.Rejected[400] != 1 || counts.Rejected[503] != 1 {
		t.Errorf("counts = %+v", counts)
	}
}

// A session whose BYE never comes ends after the inactivity timeout and is
// stored like any other.
func TestInactivityEndsSession(t *testing.T) {
	f := newFixture(t) // Inactivity: 2 s
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	speech := make([]int16, 8000)
	for i := range speech {
		speech[i] = int16(1000 * (i%40 - 20))
	}
	if _, err := c.Run(context.Background(), siprectest.Call{CallID: "nobye@sbc", NoBye: true, CallerAudio: speech, CalleeAudio: speech,
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}}); err != nil {
		t.Fatal(err)
	}
	if f.rec.Sessions() != 1 {
		t.Fatalf("%d sessions in progress after the audio, want 1 (no BYE yet)", f.rec.Sessions())
	}
	rec := f.waitRecording(t, "nobye@sbc")
	if rec.Duration < time.Second || rec.Duration > 5500*time.Millisecond {
		t.Errorf("duration %v: 1 s of audio, then at most the 2 s timeout, a 1 s tick and the readers' 50 ms", rec.Duration)
	}
	for deadline := time.Now().Add(3 * time.Second); f.rec.Sessions() != 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // the recording is stored just before the session is dropped
	}
	if f.rec.Sessions() != 0 {
		t.Error("the timed-out session is still in progress")
	}
}

// A flood from an address that is not a recording client gets a few 403s,
// then silence: no answer, no work, no log line per request.
func TestStrangerFloodIsDropped(t *testing.T) {
	f := newFixture(t, func(r *recorder.Recorder) { r.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} })
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := net.UDPAddrFromAddrPort(f.sip)
	local := conn.LocalAddr().String()
	for i := range 50 {
		msg := fmt.Sprintf("OPTIONS sip:srs@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-flood-%d\r\nFrom: <sip:scan@%s>;tag=%d\r\nTo: <sip:srs@%s>\r\nCall-ID: flood-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			f.sip, local, i, local, i, f.sip, i)
		if _, err := conn.WriteTo([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
	}
	replies := 0
	buf := make([]byte, 4096)
	for {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		if strings.HasPrefix(string(buf[:n]), "SIP/2.0 403") {
			replies++
		}
	}
	if replies != 5 {
		t.Errorf("%d of 50 requests from a stranger were answered, want 5", replies)
	}
	if c := f.rec.Counts(); c.Rejected[0] != 45 {
		t.Errorf("dropped %d, want 45", c.Rejected[0])
	}
}
