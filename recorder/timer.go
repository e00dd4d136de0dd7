package recorder

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Session timers (RFC 4028). A client that supports them may ask, in the
// INVITE and in each re-INVITE or UPDATE, for the session to be refreshed
// every so often and to end if it is not: a recording session whose client
// has died then ends even while stray RTP still comes.
//
// The recorder accepts any interval of 90 s or more, leaves the refreshing
// to the client unless it asks otherwise, and ends a session the client
// stops refreshing, slightly before it expires (§10). A client that asks
// the recorder to refresh gets bodiless UPDATEs, if it allows UPDATE; if
// not, the recorder declines the timer (no Session-Expires in the answer,
// which RFC 4028 allows) rather than send re-INVITEs of its own. A request
// that carries Session-Expires without the client supporting timers (a
// proxy put it there) is answered without one too.

// MinSessionExpires is the shortest session interval the recorder accepts,
// the RFC 4028 floor; a shorter one gets 422 with this as Min-SE.
const MinSessionExpires = 90 * time.Second

// sessionTimer is what a request and its answer agreed.
type sessionTimer struct {
	interval time.Duration // 0: no session timer
	// byUs: the recorder refreshes (the client asked for refresher=uas);
	// otherwise the client does and the recorder watches.
	byUs bool
}

// errTimerTooSmall is a session interval under MinSessionExpires from a
// client that supports timers: 422.
var errTimerTooSmall = errors.New("session interval too small")

// negotiateTimer reads a request's Session-Expires, Supported and Require
// and decides the session timer. A Session-Expires that does not parse is
// an error to answer with 400; one too small with a client that supports
// timers is errTimerTooSmall.
func negotiateTimer(req *sip.Request) (sessionTimer, error) {
	h := req.GetHeader("Session-Expires")
	if h == nil {
		h = req.GetHeader("x") // the compact form
	}
	if h == nil {
		return sessionTimer{}, nil
	}
	interval, refresher, err := parseSessionExpires(h.Value())
	if err != nil {
		return sessionTimer{}, err
	}
	if !listed(req, "timer", "Supported", "k", "Require") {
		return sessionTimer{}, nil // a proxy's wish; the client cannot refresh
	}
	if interval < MinSessionExpires {
		return sessionTimer{}, errTimerTooSmall
	}
	if refresher == "uas" {
		if !listed(req, string(sip.UPDATE), "Allow") {
			return sessionTimer{}, nil // declined: no re-INVITEs of our own
		}
		return sessionTimer{interval: interval, byUs: true}, nil
	}
	return sessionTimer{interval: interval}, nil
}

// parseSessionExpires parses a Session-Expires value: delta-seconds and
// parameters, of which refresher is "uac" or "uas" (RFC 4028 §4).
func parseSessionExpires(v string) (time.Duration, string, error) {
	delta, params, _ := strings.Cut(v, ";")
	n, err := strconv.ParseUint(strings.TrimSpace(delta), 10, 32)
	if err != nil {
		return 0, "", fmt.Errorf("Session-Expires %q: want delta-seconds", v)
	}
	refresher := ""
	for _, p := range strings.Split(params, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(name, "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(value))
			if refresher != "uac" && refresher != "uas" {
				return 0, "", fmt.Errorf("Session-Expires %q: refresher is uac or uas", v)
			}
		}
	}
	return time.Duration(n) * time.Second, refresher, nil
}

// headers are what a 2xx says of the timer: Supported: timer, and
// Session-Expires and Require: timer when there is one. The refresher is
// named from the point of view of the request being answered: the client
// (uac) or the recorder (uas).
func (t sessionTimer) headers() []sip.Header {
	hs := []sip.Header{sip.NewHeader("Supported", "timer")}
	if t.interval == 0 {
		return hs
	}
	refresher := "uac"
	if t.byUs {
		refresher = "uas"
	}
	return append(hs, sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=%s", int(t.interval/time.Second), refresher)),
		sip.NewHeader("Require", "timer"))
}

// refuseTimer answers a request whose Session-Expires negotiateTimer
// refused: 422 with Min-SE for an interval too small, 400 for one that
// does not parse.
func (r *Recorder) refuseTimer(tx sip.ServerTransaction, req *sip.Request, err error) {
	if errors.Is(err, errTimerTooSmall) {
		r.respond(tx, req, 422, "Session Interval Too Small", fmt.Sprintf("a session interval of %v or more, please", MinSessionExpires),
			sip.NewHeader("Min-SE", strconv.Itoa(int(MinSessionExpires/time.Second))))
		return
	}
	r.respond(tx, req, 400, "Bad Request", err.Error())
}

// refreshed notes that the session was refreshed at now with timer t.
// The caller holds r.mu.
func (s *session) refreshed(t sessionTimer, now time.Time) {
	s.timer, s.refreshedAt = t, now
}

// timerDue says what the session timer asks of a session at now: expire
// (the client stopped refreshing: end it, §10 says a little before the
// interval is over) or refresh (the recorder refreshes, at half the
// interval). The caller holds r.mu.
func (s *session) timerDue(now time.Time) (expire, refresh bool) {
	t := s.timer
	if t.interval == 0 {
		return false, false
	}
	since := now.Sub(s.refreshedAt)
	if t.byUs {
		return false, since >= t.interval/2 && !s.refreshing
	}
	return since >= t.interval-min(32*time.Second, t.interval/3), false
}

// refreshSession sends the UPDATE that refreshes a session the recorder
// is the refresher of. A 2xx restarts the interval; a 408, a 481 or no
// answer at all means the client has lost the session, which then ends
// (§10); anything else leaves it to the next try, half an interval on.
func (r *Recorder) refreshSession(parent context.Context, s *session) {
	r.mu.Lock()
	t := s.timer
	r.mu.Unlock()
	req := sip.NewRequest(sip.UPDATE, s.remote())
	req.AppendHeader(sip.NewHeader("Session-Expires", fmt.Sprintf("%d;refresher=uac", int(t.interval/time.Second))))
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	// The interval runs from the refresh, not from its answer.
	sent := r.now()
	ctx, cancel := context.WithTimeout(parent, 32*time.Second) // Timer F
	res, err := s.dialog.Do(ctx, req)
	cancel()
	lost := parent.Err() == nil && (err != nil || res.StatusCode == 408 || res.StatusCode == 481)
	r.mu.Lock()
	s.refreshing = false
	if !lost {
		s.refreshedAt = sent // refreshed, or the next try is half an interval on
		r.mu.Unlock()
		if err == nil && !res.IsSuccess() {
			r.log().Warn("sip: the client refused a session refresh; recording goes on", "call_id", s.callID, "status", res.StatusCode)
		}
		return
	}
	ending := s.ending
	s.ending = true
	r.mu.Unlock()
	if ending {
		return // a BYE came meanwhile
	}
	answer := "none"
	if err == nil {
		answer = strconv.Itoa(res.StatusCode)
	}
	r.log().Warn("recording session ended: the client did not take a session refresh", "call_id", s.callID, "answer", answer)
	r.hangUp(parent, s, "session refresh failed")
}

// remote is where in-dialog requests to the client go: its Contact.
func (s *session) remote() sip.Uri {
	if c := s.dialog.InviteRequest.Contact(); c != nil {
		return *c.Address.Clone()
	}
	return s.dialog.InviteRequest.From().Address
}
