package recorder_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// skewedClock is the real clock moved on by hand: session timers of 90 s
// and more pass in a moment.
type skewedClock struct {
	mu   sync.Mutex
	skew time.Duration
}

func (c *skewedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skew)
}

func (c *skewedClock) advance(d time.Duration) {
	c.mu.Lock()
	c.skew += d
	c.mu.Unlock()
}

// timerFixture is a recorder on a skewed clock, with no inactivity timeout
// to speak of, and a client that hears what the recorder sends it.
func timerFixture(t *testing.T) (*fixture, *skewedClock, *siprectest.Client) {
	t.Helper()
	clock := &skewedClock{}
	f := newFixture(t, func(r *recorder.Recorder) { r.Now, r.Inactivity = clock.now, time.Hour })
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f, clock, c
}

func timerCall(id string, hs ...string) siprectest.Call {
	call := siprectest.Call{CallID: id, Caller: siprectest.Party{AOR: "sip:+447700900123@pstn"}, Callee: siprectest.Party{AOR: "sip:2001@pbx"},
		CallerAudio: make([]int16, 800), CalleeAudio: make([]int16, 800)}
	for i := 0; i+1 < len(hs); i += 2 {
		call.Headers = append(call.Headers, sip.NewHeader(hs[i], hs[i+1]))
	}
	return call
}

func header(m interface{ GetHeader(string) sip.Header }, name string) string {
	if m == nil {
		return ""
	}
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// received waits up to 5 s for the recorder to have sent the client n
// requests of the session and returns them.
func received(t *testing.T, c *siprectest.Client, callID string, n int) []*sip.Request {
	t.Helper()
	var got []*sip.Request
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = c.Received(callID); len(got) >= n {
			break
		}
	}
	return got
}

func methods(reqs []*sip.Request) string {
	var m []string
	for _, r := range reqs {
		m = append(m, string(r.Method))
	}
	return strings.Join(m, " ")
}

// The client refreshes (RFC 4028, refresher=uac, the usual way): each
// refresh restarts the interval, and a session it stops refreshing ends a
// little before it expires, with a BYE, and is stored.
func TestSessionTimerClientRefreshes(t *testing.T) {
	f, clock, c := timerFixture(t)
	ctx := context.Background()
	call := timerCall("timer-uac@sbc", "Supported", "timer", "Session-Expires", "90")
	s, err := c.Dial(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if se, req := header(s.Response(), "Session-Expires"), header(s.Response(), "Require"); se != "90;refresher=uac" || req != "timer" {
		t.Fatalf("200 OK: Session-Expires %q, Require %q; want 90;refresher=uac and timer", se, req)
	}
	if err := s.Send(ctx, [2][][]byte{siprectest.EncodeG711("PCMU", call.CallerAudio, 160), siprectest.EncodeG711("PCMU", call.CalleeAudio, 160)}); err != nil {
		t.Fatal(err)
	}

	clock.advance(50 * time.Second)
	// A refresh asking for too short an interval is refused and changes
	// nothing; the session goes on under the timer it had.
	res, err := s.RefreshByUpdate(ctx, sip.NewHeader("Session-Expires", "30"), sip.NewHeader("Supported", "timer"))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 422 || header(res, "Min-SE") != "90" || f.rec.Counts().Active != 1 {
		t.Fatalf("refresh with 30 s: %d, Min-SE %q, %d sessions; want 422, 90, 1", res.StatusCode, header(res, "Min-SE"), f.rec.Counts().Active)
	}
	res, err = s.RefreshByUpdate(ctx, sip.NewHeader("Session-Expires", "120;refresher=uac"), sip.NewHeader("Supported", "timer"))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || header(res, "Session-Expires") != "120;refresher=uac" {
		t.Fatalf("refresh by UPDATE: %d, Session-Expires %q; want 200 and 120;refresher=uac", res.StatusCode, header(res, "Session-Expires"))
	}
	// 80 s after the refresh the session is still on: it ends at 120-32.
	clock.advance(80 * time.Second)
	time.Sleep(1500 * time.Millisecond) // the watch runs every second
	if got := c.Received(call.CallID); len(got) != 0 || f.rec.Counts().Active != 1 {
		t.Fatalf("80 s after a 120 s refresh: the recorder sent %q and has %d sessions; want nothing yet, and 1", methods(got), f.rec.Counts().Active)
	}
	clock.advance(10 * time.Second)
	if got := received(t, c, call.CallID, 1); methods(got) != "BYE" {
		t.Fatalf("90 s after a 120 s refresh the recorder sent %q; want a BYE", methods(got))
	}
	if rec := f.waitRecording(t, call.CallID); rec.Duration < 140*time.Second {
		t.Errorf("the stored session lasts %v; want the 140 s it ran", rec.Duration)
	}
	if n := f.rec.Counts().Ended; n["session_timer_expired"] != 1 || len(n) != 1 {
		t.Errorf("sessions ended, by why: %v; want one session_timer_expired", n)
	}
}

// The client asks the recorder to refresh (refresher=uas) and allows
// UPDATE: the recorder sends one at half the interval; when the client
// says it no longer knows the session (481), the session ends.
func TestSessionTimerRecorderRefreshes(t *testing.T) {
	f, clock, c := timerFixture(t)
	ctx := context.Background()
	call := timerCall("timer-uas@sbc", "Supported", "timer", "Session-Expires", "100;refresher=uas", "Allow", "INVITE, ACK, BYE, CANCEL, UPDATE")
	s, err := c.Dial(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if se := header(s.Response(), "Session-Expires"); se != "100;refresher=uas" {
		t.Fatalf("200 OK: Session-Expires %q; want 100;refresher=uas", se)
	}
	clock.advance(51 * time.Second)
	got := received(t, c, call.CallID, 1)
	if methods(got) != "UPDATE" || header(got[0], "Session-Expires") != "100;refresher=uac" || len(got[0].Body()) != 0 {
		t.Fatalf("half way the recorder sent %q; want a bodiless UPDATE with Session-Expires 100;refresher=uac (itself)", methods(got))
	}
	// Answered 200: the next is due half an interval after it.
	c.AnswerUpdates(481)
	clock.advance(30 * time.Second)
	time.Sleep(1500 * time.Millisecond)
	if got := c.Received(call.CallID); len(got) != 1 {
		t.Fatalf("30 s after a refresh the recorder sent %q; want nothing new", methods(got))
	}
	clock.advance(21 * time.Second)
	if got := received(t, c, call.CallID, 3); methods(got) != "UPDATE UPDATE BYE" {
		t.Fatalf("after a refresh answered 481 the recorder sent %q; want UPDATE UPDATE BYE", methods(got))
	}
	f.waitRecording(t, call.CallID)
	if n := f.rec.Counts().Ended; n["session_refresh_failed"] != 1 || len(n) != 1 {
		t.Errorf("sessions ended, by why: %v; want one session_refresh_failed", n)
	}
}

// What each Session-Expires gets: an interval under 90 s from a client
// that supports timers is refused with 422 and Min-SE; one a proxy added
// for a client that does not, or one asking the recorder to refresh
// without allowing UPDATE, is declined (no Session-Expires in the 200);
// one that does not parse is 400; Require: timer alone is fine.
func TestSessionTimerNegotiation(t *testing.T) {
	f, _, c := timerFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
		se      string // the response's Session-Expires
		minSE   string
	}{
		{"too small", []string{"Supported", "timer", "Session-Expires", "60"}, 422, "", "90"},
		{"too small, compact Supported", []string{"k", "timer", "Session-Expires", "89;refresher=uac"}, 422, "", "90"},
		{"a proxy's", []string{"Session-Expires", "60"}, 200, "", ""},
		{"uas without UPDATE", []string{"Supported", "timer", "Session-Expires", "1800;refresher=uas", "Allow", "INVITE, ACK, BYE"}, 200, "", ""},
		{"no refresher", []string{"Supported", "timer", "Session-Expires", "1800"}, 200, "1800;refresher=uac", ""},
		{"compact form", []string{"Supported", "timer", "x", "300"}, 200, "300;refresher=uac", ""},
		{"required", []string{"Require", "timer", "Session-Expires", "1800;refresher=uac"}, 200, "1800;refresher=uac", ""},
		{"Require: timer alone", []string{"Require", "timer"}, 200, "", ""},
		{"not a number", []string{"Supported", "timer", "Session-Expires", "soon"}, 400, "", ""},
		{"odd refresher", []string{"Supported", "timer", "Session-Expires", "1800;refresher=proxy"}, 400, "", ""},
	} {
		call := timerCall("timer-"+strings.ReplaceAll(tc.name, " ", "-")+"@sbc", tc.headers...)
		s, _ := c.Dial(ctx, call)
		if s == nil {
			t.Errorf("%s: no response", tc.name)
			continue
		}
		res := s.Response()
		if res == nil || res.StatusCode != tc.status || header(res, "Session-Expires") != tc.se || header(res, "Min-SE") != tc.minSE {
			t.Errorf("%s: got %v; want %d with Session-Expires %q and Min-SE %q", tc.name, res, tc.status, tc.se, tc.minSE)
		}
		if res != nil && res.StatusCode == 200 {
			s.Bye(ctx)
		}
		s.Close()
	}
	if n := f.rec.Counts().Rejected[422]; n != 2 {
		t.Errorf("%d INVITEs counted as refused with 422; want 2", n)
	}
}
