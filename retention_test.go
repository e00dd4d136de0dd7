package callvault_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

func TestRetentionLimits(t *testing.T) {
	// Policy §5: "typically 12 months"; never "delete at once"; ten years at most.
	if callvault.DefaultRetentionMonths != 12 || callvault.MinRetentionMonths != 1 || callvault.MaxRetentionMonths != 120 {
		t.Errorf("limits %d (default), %d-%d; want 12, 1-120",
			callvault.DefaultRetentionMonths, callvault.MinRetentionMonths, callvault.MaxRetentionMonths)
	}
}

func TestRetentionRule_Validate(t *testing.T) {
	tests := []struct {
		r    callvault.RetentionRule
		code string
	}{
		{callvault.RetentionRule{Months: 12}, ""},
		{callvault.RetentionRule{Months: 1}, ""},
		{callvault.RetentionRule{Months: 120}, ""},
		{callvault.RetentionRule{Months: 0}, callvault.EINVALID},
		{callvault.RetentionRule{Months: -1}, callvault.EINVALID},
		{callvault.RetentionRule{Months: 121}, callvault.EINVALID},
		{callvault.RetentionRule{AcademyID: 3, Category: "safeguarding", Months: 24}, ""},
		{callvault.RetentionRule{AcademyID: -1, Months: 24}, callvault.EINVALID},
		{callvault.RetentionRule{Category: "Safeguarding", Months: 24}, callvault.EINVALID},
		{callvault.RetentionRule{Category: "-safe", Months: 24}, callvault.EINVALID},
		{callvault.RetentionRule{Category: "s", Months: 24}, callvault.EINVALID},
		{callvault.RetentionRule{Category: "safe guarding", Months: 24}, callvault.EINVALID},
	}
	for _, tt := range tests {
		err := tt.r.Validate()
		if got := callvault.ErrorCode(err); got != tt.code {
			t.Errorf("(%+v).Validate() = %v, want code %q", tt.r, err, tt.code)
		}
	}
}

func TestRetentionRule_String(t *testing.T) {
	tests := []struct {
		r    callvault.RetentionRule
		want string
	}{
		{callvault.RetentionRule{Months: 12}, "trust default: 12 months"},
		{callvault.RetentionRule{Months: 1}, "trust default: 1 month"},
		{callvault.RetentionRule{AcademyID: 3, Academy: "oak", Months: 24}, "academy oak: 24 months"},
		{callvault.RetentionRule{AcademyID: 3, Months: 24}, "academy #3: 24 months"},
		{callvault.RetentionRule{Category: "safeguarding", Months: 36}, "category safeguarding: 36 months"},
		{callvault.RetentionRule{AcademyID: 3, Academy: "oak", Category: "safeguarding", Months: 6},
			"academy oak, category safeguarding: 6 months"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("(%+v).String() = %q, want %q", tt.r, got, tt.want)
		}
		if tt.r.IsDefault() != (tt.r.AcademyID == 0 && tt.r.Category == "") {
			t.Errorf("(%+v).IsDefault() = %v", tt.r, tt.r.IsDefault())
		}
	}
}

func TestRetentionPolicy_RuleFor(t *testing.T) {
	policy := callvault.RetentionPolicy{
		{Months: 12},
		{AcademyID: 1, Months: 24},
		{AcademyID: 2, Months: 18},
		{Category: "safeguarding", Months: 36},
		{Category: "wellbeing", Months: 3},
		{AcademyID: 1, Category: "safeguarding", Months: 6},
		{AcademyID: 3, Category: "wellbeing", Months: 2},
	}
	tests := []struct {
		academy  int64
		category string
		want     int
	}{
		{1, "", 24},             // academy
		{1, "safeguarding", 6},  // academy + category beats both
		{2, "safeguarding", 36}, // category beats academy
		{1, "wellbeing", 3},     //
		{3, "wellbeing", 2},     // academy + category without an academy rule
		{3, "", 12},             // the default
		{3, "safeguarding", 36}, //
		{2, "sports", 18},       // a category without a rule
		{4, "sports", 12},       //
		{0, "", 12},             //
		{0, "safeguarding", 36}, //
	}
	for _, tt := range tests {
		if got := policy.RuleFor(tt.academy, tt.category); got.Months != tt.want {
			t.Errorf("RuleFor(%d, %q) = %+v, want %d months", tt.academy, tt.category, got, tt.want)
		}
	}
	// The order of the rules does not matter.
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := append(callvault.RetentionPolicy(nil), policy...)
		rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for _, tt := range tests {
			if got := shuffled.RuleFor(tt.academy, tt.category); got.Months != tt.want {
				t.Errorf("shuffled %v: RuleFor(%d, %q) = %d months, want %d", shuffled, tt.academy, tt.category, got.Months, tt.want)
			}
		}
	}
	// Without a default, DefaultRetentionMonths; with another default, that.
	if got := (callvault.RetentionPolicy{{AcademyID: 1, Months: 24}}).RuleFor(2, ""); got.Months != callvault.DefaultRetentionMonths || !got.IsDefault() {
		t.Errorf("RuleFor without a default = %+v, want the built-in default", got)
	}
	if got := (callvault.RetentionPolicy{{Months: 30}}).RuleFor(2, "x"); got.Months != 30 {
		t.Errorf("RuleFor with a 30-month default = %+v", got)
	}
	if got := (callvault.RetentionPolicy(nil)).RuleFor(0, ""); got.Months != callvault.DefaultRetentionMonths {
		t.Errorf("RuleFor of an empty policy = %+v", got)
	}
}

func TestRetainUntil(t *testing.T) {
	london := func(y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, callvault.London)
	}
	tests := []struct {
		name    string
		started time.Time
		months  int
		want    time.Time
	}{
		// 23:30 UTC on 31 March is 00:30 on 1 April in London: a month
		// later is 1 May in London, 30 April 23:30 UTC. Counting in UTC
		// would roll 31 April over to 1 May 23:30 UTC.
		{"31 March 23:30 UTC", time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC), 1, london(2026, 5, 1, 0, 30)},
		{"31 March 23:30 UTC, a year", time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC), 12, london(2027, 4, 1, 0, 30)},
		// 28 March 2026 was GMT, 28 March 2027 is BST: the same London
		// clock time is an hour earlier in UTC.
		{"across a moved clock change", time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), 12, london(2027, 3, 28, 12, 0)},
		{"winter", time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC), 12, london(2027, 1, 15, 8, 0)},
		{"end of a long month", time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC), 1, london(2026, 3, 3, 10, 0)},
		{"leap day", time.Date(2028, 2, 29, 10, 0, 0, 0, time.UTC), 12, london(2029, 3, 1, 10, 0)},
		{"ten years", time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), 120, london(2036, 6, 1, 10, 0)},
		{"sub-millisecond", time.Date(2026, 1, 15, 8, 0, 0, 1_999_999, time.UTC), 12, london(2027, 1, 15, 8, 0).Add(time.Millisecond)},
	}
	for _, tt := range tests {
		got := callvault.RetainUntil(tt.started, tt.months)
		if !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("%s: RetainUntil(%v, %d) = %v, want %v (UTC)", tt.name, tt.started, tt.months, got, tt.want.UTC())
		}
	}
	naive := time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC).AddDate(0, 1, 0)
	if callvault.RetainUntil(time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC), 1).Equal(naive) {
		t.Errorf("RetainUntil counts months in UTC, not London")
	}
}

func TestAssignCategory(t *testing.T) {
	rng := func(s string) callvault.Range {
		r, err := callvault.ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	safe := &callvault.Category{Slug: "safeguarding", Numbers: []callvault.Range{rng("+441632960500-+441632960509")}}
	well := &callvault.Category{Slug: "wellbeing", Numbers: []callvault.Range{rng("+441632961500")}, Extensions: []callvault.Range{rng("2900-2909")}}
	cats := []*callvault.Category{safe, well}
	p := func(number, ext string) callvault.Participant {
		return callvault.Participant{Number: number, Extension: ext, Side: callvault.SideStaff}
	}
	tests := []struct {
		name string
		ps   []callvault.Participant
		want string
	}{
		{"none", nil, ""},
		{"other numbers", []callvault.Participant{p("+447700900123", "2001"), p("+441632960510", "2910")}, ""},
		{"a number", []callvault.Participant{p("+447700900123", ""), p("+441632960505", "")}, "safeguarding"},
		{"an extension", []callvault.Participant{p("+447700900123", ""), p("", "2900")}, "wellbeing"},
		{"numbers before extensions", []callvault.Participant{p("", "2909"), p("+441632960509", "")}, "safeguarding"},
		{"the first participant's number", []callvault.Participant{p("+441632961500", ""), p("+441632960500", "")}, "wellbeing"},
		{"an extension is not a number", []callvault.Participant{p("2905", "")}, ""},
		{"a number is not an extension", []callvault.Participant{p("", "+441632960505")}, ""},
	}
	for _, tt := range tests {
		got := callvault.AssignCategory(cats, tt.ps)
		slug := ""
		if got != nil {
			slug = got.Slug
		}
		if slug != tt.want {
			t.Errorf("AssignCategory(%s) = %q, want %q", tt.name, slug, tt.want)
		}
	}
	if got := callvault.AssignCategory(nil, []callvault.Participant{p("+441632960505", "")}); got != nil {
		t.Errorf("AssignCategory without categories = %+v", got)
	}
}

func TestCanViewAndChangeRetention(t *testing.T) {
	user := func(role string, disabled bool) *callvault.Actor {
		return &callvault.Actor{User: &callvault.User{ID: 1, Role: role, Disabled: disabled}}
	}
	tests := []struct {
		name         string
		a            *callvault.Actor
		view, change bool
	}{
		{"nil", nil, false, false},
		{"system", callvault.SystemActor, true, true},
		{"source", &callvault.Actor{Source: &callvault.Source{ID: 1}}, false, false},
		{"admin", user(callvault.RoleAdmin, false), true, true},
		{"dpo", user(callvault.RoleDPO, false), true, true},
		{"ceo", user(callvault.RoleCEO, false), true, false},
		{"principal", user(callvault.RolePrincipal, false), true, false},
		{"listener", user(callvault.RoleListener, false), false, false},
		{"disabled admin", user(callvault.RoleAdmin, true), false, false},
		{"disabled dpo", user(callvault.RoleDPO, true), false, false},
		{"unknown role", user("janitor", false), false, false},
	}
	for _, tt := range tests {
		if got := callvault.CanViewRetention(tt.a); got != tt.view {
			t.Errorf("CanViewRetention(%s) = %v, want %v", tt.name, got, tt.view)
		}
		if got := callvault.CanChangeRetention(tt.a); got != tt.change {
			t.Errorf("CanChangeRetention(%s) = %v, want %v", tt.name, got, tt.change)
		}
	}
}
