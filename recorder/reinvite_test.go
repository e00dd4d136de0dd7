package recorder_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/recorder/siprectest"
	"github.com/callvault/callvault/siprec"
)

// Hold and resume by re-INVITE, and metadata updates by re-INVITE and by
// UPDATE, in one session: the audio sent while paused is not recorded, the
// pause is silence on both channels at its place in the timeline and is
// marked on the recording, the audio before and after is there sample for
// sample, and the participants are everyone who took part.
func TestHoldResumeAndMetadataUpdates(t *testing.T) {
	f := newFixture(t)
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before, paused, after := [2][]int16{speechPCMU(1), speechPCMU(2)}, [2][]int16{speechPCMU(3), speechPCMU(4)}, [2][]int16{speechPCMU(5), speechPCMU(6)}
	call := siprectest.Call{CallID: "hold@sbc.example",
		Caller: siprectest.Party{AOR: "sip:+447700900123@pstn.example", Name: "Parent"},
		Callee: siprectest.Party{AOR: "sip:2001@pbx.example", Name: "Reception"}}
	ctx := context.Background()
	start := time.Now()
	s, err := c.Dial(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	step := func(what string, status int, err error) {
		t.Helper()
		if err != nil || status != 200 {
			t.Fatalf("%s: status %d, %v; want 200", what, status, err)
		}
	}
	if err := s.Send(ctx, legsPCMU(before)); err != nil {
		t.Fatal(err)
	}
	hold := call
	hold.Paused = true
	status, err := s.Reinvite(ctx, hold)
	step("re-INVITE to hold", status, err)
	if err := s.Send(ctx, legsPCMU(paused)); err != nil {
		t.Fatal(err)
	}
	// Resumed, and transferred: the re-INVITE names the new callee.
	resume := call
	resume.Callee = siprectest.Party{AOR: "sip:2002@pbx.example", Name: "Head of Year"}
	status, err = s.Reinvite(ctx, resume)
	step("re-INVITE to resume", status, err)
	if err := s.Send(ctx, legsPCMU(after)); err != nil {
		t.Fatal(err)
	}
	// Then a metadata-only UPDATE: the principal joins.
	update := call
	update.Callee = siprectest.Party{AOR: "sip:2003@pbx.example", Name: "Principal"}
	status, err = s.Update(ctx, update)
	step("UPDATE with metadata", status, err)
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	session := time.Since(start)

	rec := f.waitRecording(t, call.CallID)
	if rec.Duration < 3*time.Second || rec.Duration > session+20*time.Millisecond {
		t.Errorf("duration %v; 3 s of audio was sent in a session of %v", rec.Duration, session)
	}
	if len(rec.Pauses) != 1 {
		t.Fatalf("pauses %+v, want one", rec.Pauses)
	}
	p := rec.Pauses[0]
	// The pause starts when the hold re-INVITE arrived, after the first
	// second of audio, and lasts the second of audio sent while held
	// (plus a re-INVITE's round trip each side).
	if p.From < 950*time.Millisecond || p.From > 1300*time.Millisecond || p.To-p.From < time.Second || p.To-p.From > 1400*time.Millisecond {
		t.Errorf("pause %v to %v; want it from about 1 s, lasting about 1 s", p.From, p.To)
	}
	left, right := f.channels(t, rec)
	for i, ch := range [][]int16{left, right} {
		offB, okB := audio.Find(ch, before[i])
		offA, okA := audio.Find(ch, after[i])
		if okB < 0.99 || okA < 0.99 {
			t.Errorf("channel %d: the audio before the hold (at %d: %.1f%%) or after it (at %d: %.1f%%) is not all there", i, offB, 100*okB, offA, 100*okA)
		}
		if _, ok := audio.Find(ch, paused[i]); ok > 0 {
			t.Errorf("channel %d: audio sent while on hold was recorded", i)
		}
		from, to := int(p.From/(time.Second/8000)), int(p.To/(time.Second/8000))
		if to > len(ch) || slices.ContainsFunc(ch[from:to], func(v int16) bool { return v != 0 }) {
			t.Errorf("channel %d is not silent during the pause (samples %d to %d of %d)", i, from, to, len(ch))
		}
		if offA < to-40 {
			t.Errorf("channel %d: the audio after the resume starts at sample %d, over 5 ms inside the pause (to %d)", i, offA, to)
		}
	}
	var exts []string
	for _, p := range rec.Participants {
		if p.Side == callvault.SideStaff {
			exts = append(exts, p.Extension)
		}
	}
	slices.Sort(exts)
	if !slices.Equal(exts, []string{"2001", "2002", "2003"}) || rec.Direction != callvault.DirectionInbound {
		t.Errorf("staff extensions %v, direction %s; want 2001, 2002 and 2003 (everyone who took part), inbound", exts, rec.Direction)
	}
}

// Session-timer refreshes (RFC 4028) go through without touching the
// recording: a re-INVITE without a body gets a 2xx offering the session as
// it is (the same ports, receive-only), and an UPDATE without a body a 200.
func TestSessionRefresh(t *testing.T) {
	f := newFixture(t)
	first, second := [2][]int16{speechPCMU(21), speechPCMU(22)}, [2][]int16{speechPCMU(23), speechPCMU(24)}
	call := siprectest.Call{CallID: "refresh@sbc.example",
		Caller: siprectest.Party{AOR: "sip:+447700900123@pstn.example"}, Callee: siprectest.Party{AOR: "sip:2001@pbx.example"}}
	ctx := context.Background()
	s := f.dialAndSend(t, call, first)
	status, body, err := s.Refresh(ctx)
	if err != nil || status != 200 {
		t.Fatalf("re-INVITE without a body: status %d, %v; want 200", status, err)
	}
	offer, err := siprec.ParseOffer(body)
	if err != nil {
		t.Fatalf("the 200 to a re-INVITE without a body carries no SDP offer: %v\n%s", err, body)
	}
	for i, st := range offer.Streams {
		if st.Port != int(s.Dest[i].Port()) || st.Direction != siprec.RecvOnly {
			t.Errorf("offered stream %d: port %d %s; want the session's port %d, recvonly", i, st.Port, st.Direction, s.Dest[i].Port())
		}
	}
	if res, err := s.RefreshByUpdate(ctx); err != nil {
		t.Errorf("UPDATE without a body: %v", err)
	} else if res.StatusCode != 200 {
		t.Errorf("UPDATE without a body: status %d; want 200", res.StatusCode)
	}
	rec := f.finishAndCheck(t, s, call.CallID, "the refreshes", first, second)
	if len(rec.Pauses) != 0 {
		t.Errorf("pauses %+v; a refresh is not a pause", rec.Pauses)
	}
}
