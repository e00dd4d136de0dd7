package callvault_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

var holdNow = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func validHold() callvault.Hold {
	return callvault.Hold{Reason: callvault.HoldSubjectAccess, Title: "SAR from a parent", ReviewAt: holdNow.Add(callvault.DefaultHoldReview)}
}

func TestHold_Validate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(h *callvault.Hold)
		code   string
	}{
		{"valid", func(h *callvault.Hold) {}, ""},
		{"every reason", func(h *callvault.Hold) { h.Reason = callvault.HoldOther }, ""},
		{"no reason", func(h *callvault.Hold) { h.Reason = "" }, callvault.EINVALID},
		{"unknown reason", func(h *callvault.Hold) { h.Reason = "curiosity" }, callvault.EINVALID},
		{"empty title", func(h *callvault.Hold) { h.Title = "" }, callvault.EINVALID},
		{"blank title", func(h *callvault.Hold) { h.Title = " \t\n" }, callvault.EINVALID},
		{"longest title", func(h *callvault.Hold) { h.Title = strings.Repeat("x", callvault.MaxHoldTitle) }, ""},
		{"title too long", func(h *callvault.Hold) { h.Title = strings.Repeat("x", callvault.MaxHoldTitle+1) }, callvault.EINVALID},
		{"longest reference", func(h *callvault.Hold) { h.Reference = strings.Repeat("x", callvault.MaxHoldReference) }, ""},
		{"reference too long", func(h *callvault.Hold) { h.Reference = strings.Repeat("x", callvault.MaxHoldReference+1) }, callvault.EINVALID},
		{"no review date", func(h *callvault.Hold) { h.ReviewAt = time.Time{} }, callvault.EINVALID},
		{"review date now", func(h *callvault.Hold) { h.ReviewAt = holdNow }, callvault.EINVALID},
		{"review date past", func(h *callvault.Hold) { h.ReviewAt = holdNow.Add(-24 * time.Hour) }, callvault.EINVALID},
		{"review date soon", func(h *callvault.Hold) { h.ReviewAt = holdNow.Add(time.Millisecond) }, ""},
		{"review date in two years", func(h *callvault.Hold) { h.ReviewAt = holdNow.Add(callvault.MaxHoldReview) }, ""},
		{"review date beyond two years", func(h *callvault.Hold) { h.ReviewAt = holdNow.Add(callvault.MaxHoldReview + time.Second) }, callvault.EINVALID},
		{"negative academy", func(h *callvault.Hold) { h.AcademyID = -2 }, callvault.EINVALID},
		{"saved search", func(h *callvault.Hold) { h.Filter = &callvault.HoldFilter{Number: "718387"} }, ""},
		{"empty saved search", func(h *callvault.Hold) { h.Filter = &callvault.HoldFilter{} }, callvault.EINVALID},
	}
	for _, tt := range tests {
		h := validHold()
		tt.modify(&h)
		if got := callvault.ErrorCode(h.Validate(holdNow)); got != tt.code {
			t.Errorf("Validate(%s) code %q, want %q", tt.name, got, tt.code)
		}
	}
	h := validHold()
	h.Title, h.Reference = "  SAR 17 \n", " ref "
	if err := h.Validate(holdNow); err != nil || h.Title != "SAR 17" || h.Reference != "ref" {
		t.Errorf("Validate trims to %q, %q (%v); want %q, %q", h.Title, h.Reference, err, "SAR 17", "ref")
	}
	if 2*365*24*time.Hour != callvault.MaxHoldReview {
		t.Errorf("MaxHoldReview = %v, want two years", callvault.MaxHoldReview)
	}
}

func TestHold_activeAndReviewDue(t *testing.T) {
	h := validHold()
	if !h.Active() || h.ReviewDue(holdNow) || !h.ReviewDue(h.ReviewAt) || !h.ReviewDue(h.ReviewAt.Add(time.Hour)) {
		t.Errorf("active hold: Active %v, ReviewDue before/at/after %v/%v/%v", h.Active(), h.ReviewDue(holdNow),
			h.ReviewDue(h.ReviewAt), h.ReviewDue(h.ReviewAt.Add(time.Hour)))
	}
	h.ReleasedAt = holdNow
	if h.Active() || h.ReviewDue(h.ReviewAt.Add(time.Hour)) {
		t.Errorf("released hold: Active %v, ReviewDue %v; want neither", h.Active(), h.ReviewDue(h.ReviewAt.Add(time.Hour)))
	}
}

func TestHoldReasons(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range callvault.HoldReasons {
		if !callvault.ValidHoldReason(r.Value) || callvault.HoldReasonLabel(r.Value) != r.Label || r.Label == "" || seen[r.Value] {
			t.Errorf("reason %+v: valid %v, label %q", r, callvault.ValidHoldReason(r.Value), callvault.HoldReasonLabel(r.Value))
		}
		seen[r.Value] = true
	}
	if len(seen) != 7 || callvault.ValidHoldReason("") || callvault.ValidHoldReason("Complaint") || callvault.HoldReasonLabel("x") != "x" {
		t.Errorf("%d reasons; ValidHoldReason(\"\") %v", len(seen), callvault.ValidHoldReason(""))
	}
}

func TestHoldFilter_Validate(t *testing.T) {
	at := holdNow
	tests := []struct {
		f    callvault.HoldFilter
		code string
	}{
		{callvault.HoldFilter{Number: "+441632718387"}, ""},
		{callvault.HoldFilter{Number: "01632 718387"}, ""},
		{callvault.HoldFilter{Extension: "2001"}, ""},
		{callvault.HoldFilter{Extension: "2001", Direction: callvault.DirectionInternal, From: at, To: at.Add(time.Nanosecond)}, ""},
		{callvault.HoldFilter{Number: "718387", From: at}, ""},
		{callvault.HoldFilter{Number: "718387", To: at}, ""},
		{callvault.HoldFilter{}, callvault.EINVALID},
		{callvault.HoldFilter{Direction: callvault.DirectionInbound, AcademyID: 2}, callvault.EINVALID},
		{callvault.HoldFilter{Number: "000"}, callvault.EINVALID},
		{callvault.HoldFilter{Number: "+"}, callvault.EINVALID},
		{callvault.HoldFilter{Number: "abc"}, callvault.EINVALID},
		{callvault.HoldFilter{Extension: "2001", Direction: "sideways"}, callvault.EINVALID},
		{callvault.HoldFilter{Extension: "2001", From: at, To: at}, callvault.EINVALID},
		{callvault.HoldFilter{Extension: "2001", From: at, To: at.Add(-time.Hour)}, callvault.EINVALID},
	}
	for _, tt := range tests {
		if got := callvault.ErrorCode(tt.f.Validate()); got != tt.code {
			t.Errorf("(%+v).Validate() code %q, want %q", tt.f, got, tt.code)
		}
	}
}

func TestParseNumberQuery(t *testing.T) {
	tests := []struct {
		in     string
		number string
		suffix bool
		code   string
	}{
		{"", "", false, ""},
		{"   ", "", false, ""},
		{"+44 1632 718387", "+441632718387", false, ""},
		{"+44 (0)1632 718387", "+4401632718387", false, ""},
		{"01632 718387", "1632718387", true, ""},
		{"0044 1632 718387", "441632718387", true, ""},
		{"718-387", "718387", true, ""},
		{"7", "7", true, ""},
		{"0", "", false, callvault.EINVALID},
		{"+", "", false, callvault.EINVALID},
		{"anonymous", "", false, callvault.EINVALID},
	}
	for _, tt := range tests {
		number, suffix, err := callvault.ParseNumberQuery(tt.in)
		if number != tt.number || suffix != tt.suffix || callvault.ErrorCode(err) != tt.code {
			t.Errorf("ParseNumberQuery(%q) = %q, %v, %v; want %q, %v, code %q", tt.in, number, suffix, err, tt.number, tt.suffix, tt.code)
		}
	}
}

func TestHoldFilter_Matches(t *testing.T) {
	start := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	rec := func(academy int64, direction string, at time.Time, ps ...callvault.Participant) *callvault.Recording {
		return &callvault.Recording{AcademyID: academy, Direction: direction, StartedAt: at, Participants: ps}
	}
	ext := func(number, extension string) callvault.Participant {
		return callvault.Participant{Number: number, Side: callvault.SideExternal, Extension: extension}
	}
	r := rec(1, callvault.DirectionInbound, start, ext("+441632718387", ""), ext("+441632960001", "2001"))
	tests := []struct {
		name string
		f    callvault.HoldFilter
		r    *callvault.Recording
		want bool
	}{
		{"trailing digits", callvault.HoldFilter{Number: "718387"}, r, true},
		{"trailing digits of the staff side", callvault.HoldFilter{Number: "960001"}, r, true},
		{"not trailing", callvault.HoldFilter{Number: "1632718"}, r, false},
		{"national form", callvault.HoldFilter{Number: "01632 718387"}, r, true},
		{"international form", callvault.HoldFilter{Number: "0044 1632 718387"}, r, true},
		{"full number", callvault.HoldFilter{Number: "+44 1632 718387"}, r, true},
		{"full number, shorter", callvault.HoldFilter{Number: "+441632718"}, r, false},
		{"full number, other", callvault.HoldFilter{Number: "+441632718388"}, r, false},
		{"full number as a suffix", callvault.HoldFilter{Number: "+1632718387"}, r, false},
		{"extension", callvault.HoldFilter{Extension: "2001"}, r, true},
		{"other extension", callvault.HoldFilter{Extension: "200"}, r, false},
		{"number and extension on different participants", callvault.HoldFilter{Number: "718387", Extension: "2001"}, r, true},
		{"number, not the extension", callvault.HoldFilter{Number: "718387", Extension: "2002"}, r, false},
		{"extension, not the number", callvault.HoldFilter{Number: "718388", Extension: "2001"}, r, false},
		{"academy", callvault.HoldFilter{Number: "718387", AcademyID: 1}, r, true},
		{"other academy", callvault.HoldFilter{Number: "718387", AcademyID: 2}, r, false},
		{"direction", callvault.HoldFilter{Number: "718387", Direction: callvault.DirectionInbound}, r, true},
		{"other direction", callvault.HoldFilter{Number: "718387", Direction: callvault.DirectionOutbound}, r, false},
		{"from, at the start", callvault.HoldFilter{Number: "718387", From: start}, r, true},
		{"from, after", callvault.HoldFilter{Number: "718387", From: start.Add(time.Nanosecond)}, r, false},
		{"to, at the start", callvault.HoldFilter{Number: "718387", To: start}, r, false},
		{"to, after", callvault.HoldFilter{Number: "718387", To: start.Add(time.Nanosecond)}, r, true},
		// Stored times are whole milliseconds: a bound inside a millisecond
		// counts from the next one, as in search.
		{"sub-ms start, from inside its ms", callvault.HoldFilter{Number: "718387", From: start.Add(500 * time.Microsecond)},
			rec(1, "", start.Add(900*time.Microsecond), ext("+441632718387", "")), false},
		{"sub-ms start, to inside its ms", callvault.HoldFilter{Number: "718387", To: start.Add(500 * time.Microsecond)},
			rec(1, "", start.Add(100*time.Microsecond), ext("+441632718387", "")), true},
		{"no participants", callvault.HoldFilter{Number: "718387"}, rec(1, "", start), false},
		{"anonymous caller", callvault.HoldFilter{Number: "718387"}, rec(1, "", start, ext("anonymous", "")), false},
		{"number not as E.164", callvault.HoldFilter{Number: "01632 718387"}, rec(1, "", start, ext("01632 718387", "")), true},
		{"bad number", callvault.HoldFilter{Number: "000"}, r, false},
	}
	for _, tt := range tests {
		if got := tt.f.Matches(tt.r); got != tt.want {
			t.Errorf("%s: (%+v).Matches = %v, want %v", tt.name, tt.f, got, tt.want)
		}
	}
	// RecordingFilter carries every field over.
	f := callvault.HoldFilter{Number: "718387", Extension: "2001", AcademyID: 4, Direction: callvault.DirectionOutbound, From: start, To: start.Add(time.Hour)}
	want := callvault.RecordingFilter{Number: "718387", Extension: "2001", AcademyID: 4, Direction: callvault.DirectionOutbound, From: start, To: start.Add(time.Hour)}
	if got := f.RecordingFilter(); got != want {
		t.Errorf("RecordingFilter() = %+v, want %+v", got, want)
	}
}

func TestHoldDecisions(t *testing.T) {
	user := func(id int64, role string, academies ...int64) *callvault.Actor {
		return &callvault.Actor{User: &callvault.User{ID: id, Login: role, Role: role, AcademyIDs: academies}}
	}
	disabled := user(9, callvault.RoleDPO)
	disabled.User.Disabled = true
	actors := map[string]*callvault.Actor{
		"nil":        nil,
		"system":     callvault.SystemActor,
		"source":     {Source: &callvault.Source{ID: 1}},
		"admin":      user(1, callvault.RoleAdmin),
		"dpo":        user(2, callvault.RoleDPO),
		"ceo":        user(3, callvault.RoleCEO),
		"p1":         user(4, callvault.RolePrincipal, 1),
		"p12":        user(5, callvault.RolePrincipal, 1, 2),
		"pnone":      user(6, callvault.RolePrincipal),
		"listener":   user(7, callvault.RoleListener, 1),
		"disabled":   disabled,
		"p1disabled": {User: &callvault.User{ID: 8, Role: callvault.RolePrincipal, AcademyIDs: []int64{1}, Disabled: true}},
	}

	creates := []struct {
		actor     string
		academy   int64
		academies []int64
		want      bool
	}{
		{"system", 0, []int64{1, 2, 3}, true},
		{"dpo", 0, []int64{1, 2, 3}, true},
		{"ceo", 0, []int64{3}, true},
		{"ceo", 2, nil, true},
		{"p1", 1, []int64{1}, true},
		{"p1", 1, nil, true},
		{"p1", 0, []int64{1}, false}, // trust-wide
		{"p1", 2, []int64{2}, false}, // not theirs
		{"p1", 1, []int64{1, 2}, false},
		{"p12", 2, []int64{2}, true},
		{"p12", 1, []int64{2}, false}, // recordings of another academy than the hold's
		{"pnone", 1, []int64{1}, false},
		{"admin", 0, nil, false},
		{"admin", 1, []int64{1}, false},
		{"listener", 1, []int64{1}, false},
		{"disabled", 0, nil, false},
		{"p1disabled", 1, []int64{1}, false},
		{"source", 1, nil, false},
		{"nil", 1, nil, false},
	}
	for _, tt := range creates {
		if got := callvault.CanCreateHold(actors[tt.actor], tt.academy, tt.academies); got != tt.want {
			t.Errorf("CanCreateHold(%s, %d, %v) = %v, want %v", tt.actor, tt.academy, tt.academies, got, tt.want)
		}
	}

	hold := func(academy, owner int64) *callvault.Hold { return &callvault.Hold{AcademyID: academy, OwnerID: owner} }
	releases := []struct {
		actor string
		h     *callvault.Hold
		want  bool
	}{
		{"system", hold(0, 2), true},
		{"dpo", hold(1, 4), true},
		{"ceo", hold(0, 2), true},
		{"p1", hold(1, 2), true},  // a principal of its academy
		{"p1", hold(2, 2), false}, //
		{"p1", hold(0, 2), false}, // trust-wide, not theirs
		{"p1", hold(0, 4), true},  // their own
		{"p1", hold(2, 4), true},  //
		{"p12", hold(2, 2), true},
		{"pnone", hold(0, 6), true},
		{"pnone", hold(1, 2), false},
		{"admin", hold(0, 1), false}, // even their own: admins do not decide what is kept
		{"listener", hold(1, 7), false},
		{"disabled", hold(0, 9), false},
		{"p1disabled", hold(1, 8), false},
		{"nil", hold(0, 2), false},
		{"dpo", nil, false},
	}
	for _, tt := range releases {
		if got := callvault.CanReleaseHold(actors[tt.actor], tt.h); got != tt.want {
			t.Errorf("CanReleaseHold(%s, %+v) = %v, want %v", tt.actor, tt.h, got, tt.want)
		}
	}

	views := map[string]string{ // actor → what CanViewHolds and HoldScope say
		"nil": "none", "system": "all", "source": "none", "admin": "all", "dpo": "all", "ceo": "all",
		"p1": "academies [1], owned by 4", "p12": "academies [1 2], owned by 5", "pnone": "academies [], owned by 6",
		"listener": "none", "disabled": "none", "p1disabled": "none",
	}
	for name, a := range actors {
		s := callvault.HoldScope(a)
		var got string
		switch {
		case s.None:
			got = "none"
		case s.All:
			got = "all"
		default:
			got = fmt.Sprintf("academies %v, owned by %d", s.AcademyIDs, s.GrantedTo)
			if len(s.AcademyIDs) == 0 {
				got = fmt.Sprintf("academies [], owned by %d", s.GrantedTo)
			}
		}
		if got != views[name] {
			t.Errorf("HoldScope(%s) = %s, want %s", name, got, views[name])
		}
		if callvault.CanViewHolds(a) != (views[name] != "none") {
			t.Errorf("CanViewHolds(%s) = %v, want %v", name, callvault.CanViewHolds(a), views[name] != "none")
		}
	}
	// The scope is a copy: changing it does not change the user.
	p := actors["p12"]
	callvault.HoldScope(p).AcademyIDs[0] = 99
	if p.User.AcademyIDs[0] != 1 {
		t.Errorf("HoldScope shares the user's academy list")
	}
}
