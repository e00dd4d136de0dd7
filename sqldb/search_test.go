package sqldb

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/google/uuid"
)

// searchFixture stores eight recordings whose external numbers share and
// nearly share the trailing digits 71838750.
func searchFixture(t *testing.T) (*DB, map[string]int64) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	un := unassignedID(t, db)
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	specs := []struct {
		ref       string
		academy   int64
		number    string
		ext       string
		direction string
		dur       time.Duration
		kind      string
		at        time.Duration
	}{
		{"a", north.ID, "+441671838750", "2001", callvault.DirectionInbound, 60 * time.Second, callvault.SourceImport, 0},
		{"b", south.ID, "+447771838750", "3001", callvault.DirectionOutbound, 300 * time.Second, callvault.SourceSIPREC, day},
		{"c", north.ID, "71838750", "2002", callvault.DirectionInternal, 10 * time.Second, callvault.SourceAPI, 2 * day},
		{"d", north.ID, "+441671838751", "2001", callvault.DirectionInbound, 120 * time.Second, callvault.SourceImport, 3 * day},
		{"e", un, "+441632718387", "", callvault.DirectionInbound, 45 * time.Second, callvault.SourceImport, 4 * day},
		{"f", south.ID, "+447700900999", "3002", callvault.DirectionOutbound, 600 * time.Second, callvault.SourceSIPREC, 5 * day},
		{"g", north.ID, "+441671838750", "2003", callvault.DirectionOutbound, 5 * time.Second, callvault.SourceImport, 40 * day},
		{"h", north.ID, "anonymous", "2001", callvault.DirectionInbound, 20 * time.Second, callvault.SourceImport, 6 * day},
	}
	var rs []*callvault.Recording
	for _, sp := range specs {
		r := newRecording(sp.academy, 0, sp.ref, base.Add(sp.at), sp.number, sp.ext)
		r.Direction, r.Duration, r.SourceKind = sp.direction, sp.dur, sp.kind
		rs = append(rs, r)
	}
	insertRecordings(t, db, rs...)
	return db, map[string]int64{"north": north.ID, "south": south.ID}
}

func refs(rs []*callvault.Recording) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.SourceRef)
	}
	return strings.Join(s, ",")
}

func TestFindRecordings_filters(t *testing.T) {
	db, ids := searchFixture(t)
	s := NewRecordingService(db)
	base := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		f    callvault.RecordingFilter
		want string
	}{
		{callvault.RecordingFilter{}, "g,h,f,e,d,c,b,a"},
		// Trailing digits: any number ending so, E.164 or not.
		{callvault.RecordingFilter{Number: "71838750"}, "g,c,b,a"},
		{callvault.RecordingFilter{Number: "7183 8750"}, "g,c,b,a"},
		{callvault.RecordingFilter{Number: "71838750", From: base, To: base.Add(30 * day)}, "c,b,a"},
		{callvault.RecordingFilter{Number: "838751"}, "d"},
		{callvault.RecordingFilter{Number: "718387"}, "e"},
		{callvault.RecordingFilter{Number: "999"}, "f"},                  // all nines: no upper bound
		{callvault.RecordingFilter{Number: "960001"}, "g,h,f,e,d,c,b,a"}, // the staff DDI
		// Full numbers, however typed.
		{callvault.RecordingFilter{Number: "+441671838750"}, "g,a"},
		{callvault.RecordingFilter{Number: "+44 (0)1671 838-750"}, ""}, // the (0) makes it another number
		{callvault.RecordingFilter{Number: "+44 1671 838750"}, "g,a"},
		{callvault.RecordingFilter{Number: "01671 838750"}, "g,a"},   // national: trunk 0 dropped
		{callvault.RecordingFilter{Number: "00441671838750"}, "g,a"}, // international prefix dropped
		{callvault.RecordingFilter{Number: "+441632718387"}, "e"},
		{callvault.RecordingFilter{Number: "+71838750"}, "c"}, // stored without '+'
		{callvault.RecordingFilter{Number: "+1838750"}, ""},   // a suffix is not a full number
		{callvault.RecordingFilter{Number: "+4471838750"}, ""},
		{callvault.RecordingFilter{Number: "71838750", From: base.Add(30 * day)}, "g"},
		// Extensions are exact.
		{callvault.RecordingFilter{Extension: "2001"}, "h,d,a"},
		{callvault.RecordingFilter{Extension: "200"}, ""},
		{callvault.RecordingFilter{Extension: "2001", To: base.Add(3 * day)}, "a"},
		{callvault.RecordingFilter{Number: "71838750", Extension: "2002"}, "c"},
		{callvault.RecordingFilter{Number: "71838750", Extension: "3002"}, ""},
		// Recording fields.
		{callvault.RecordingFilter{AcademyID: ids["north"]}, "g,h,d,c,a"},
		{callvault.RecordingFilter{AcademyID: ids["south"], Number: "71838750"}, "b"},
		{callvault.RecordingFilter{Direction: callvault.DirectionOutbound}, "g,f,b"},
		{callvault.RecordingFilter{MinDuration: 100 * time.Second}, "f,d,b"},
		{callvault.RecordingFilter{MaxDuration: 20 * time.Second}, "g,h,c"},
		{callvault.RecordingFilter{MinDuration: 10 * time.Second, MaxDuration: 60 * time.Second}, "h,e,c,a"},
		{callvault.RecordingFilter{SourceKind: callvault.SourceSIPREC}, "f,b"},
		{callvault.RecordingFilter{From: base.Add(3 * day)}, "g,h,f,e,d"},
		{callvault.RecordingFilter{To: base.Add(3 * day)}, "c,b,a"},
		{callvault.RecordingFilter{From: base.Add(day), To: base.Add(2*day + 1)}, "c,b"},
		{callvault.RecordingFilter{Direction: callvault.DirectionInbound, Extension: "2001", MinDuration: time.Minute}, "d,a"},
	}
	for _, tt := range tests {
		rs, total, next, err := s.FindRecordings(sysCtx(), tt.f)
		if err != nil {
			t.Errorf("FindRecordings(%+v): %v", tt.f, err)
			continue
		}
		if got := refs(rs); got != tt.want || total != len(rs) || next != "" {
			t.Errorf("FindRecordings(%+v) = %q (total %d, next %q), want %q", tt.f, got, total, next, tt.want)
		}
	}

	// Principals search within their academies only.
	rs, _, _, err := s.FindRecordings(userCtx(callvault.RolePrincipal, ids["north"]), callvault.RecordingFilter{Number: "71838750"})
	if got := refs(rs); err != nil || got != "g,c,a" {
		t.Errorf("FindRecordings(principal of north, 71838750) = %q, %v; want g,c,a", got, err)
	}

	// Participants come with the page, in order.
	rs, _, _, _ = s.FindRecordings(sysCtx(), callvault.RecordingFilter{Number: "+447771838750"})
	if len(rs) != 1 || len(rs[0].Participants) != 2 || rs[0].Participants[0].Number != "+447771838750" ||
		rs[0].Participants[1].Extension != "3001" || rs[0].Academy != "south" {
		t.Errorf("FindRecordings(+447771838750) = %+v", rs)
	}
}

func TestFindRecordings_invalid(t *testing.T) {
	db, _ := searchFixture(t)
	s := NewRecordingService(db)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []callvault.RecordingFilter{
		{Direction: "sideways"},
		{SourceKind: "fax"},
		{Number: "abc"},
		{Number: "+"},
		{Number: "000"},
		{After: "!!!"},
		{After: enc("no-dot")},
		{After: enc("x." + uuid.NewString())},
		{After: enc("1700000000000.not-a-uuid")},
		{After: base64.StdEncoding.EncodeToString([]byte("1700000000000." + uuid.NewString() + "?"))},
	}
	for _, f := range tests {
		_, _, _, err := s.FindRecordings(sysCtx(), f)
		wantCode(t, fmt.Sprintf("FindRecordings(%+v)", f), err, callvault.EINVALID)
	}
}

// TestFindRecordings_pagination walks every page of random searches over
// random recordings (with many equal start times) and compares each walk
// with a model of the filter: no duplicates, no gaps, newest first.
func TestFindRecordings_pagination(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	un := unassignedID(t, db)
	s := NewRecordingService(db)
	rnd := rand.New(rand.NewPCG(1, 2))

	numbers := []string{"+441671838750", "+447771838750", "71838750", "+441671838751", "+447700900999",
		"+441632718387", "+442079460071", "+447911123456", "01632 960123", "441671838750", ""}
	exts := []string{"2001", "2002", "3001", ""}
	academies := []int64{north.ID, south.ID, un}
	directions := []string{callvault.DirectionInbound, callvault.DirectionOutbound, callvault.DirectionInternal, ""}
	kinds := []string{callvault.SourceSIPREC, callvault.SourceAPI, callvault.SourceImport}
	base := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	pick := func(xs []string) string { return xs[rnd.IntN(len(xs))] }

	var all []*callvault.Recording
	for i := range 400 {
		// 60 distinct start times: lots of ties broken by id.
		r := newRecording(academies[rnd.IntN(3)], 0, fmt.Sprint(i), base.Add(time.Duration(rnd.IntN(60))*time.Hour), pick(numbers), pick(exts))
		r.Participants[1].Number = pick(numbers)
		r.Direction, r.SourceKind = pick(directions), pick(kinds)
		r.Duration = time.Duration(rnd.IntN(600)) * time.Second
		all = append(all, r)
	}
	insertRecordings(t, db, all...)
	slices.SortFunc(all, func(a, b *callvault.Recording) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})

	queries := []string{"", "", "71838750", "8750", "+441671838750", "01632 960123", "+01632960123", "999", "50", "1"}
	scopes := []struct {
		ctx   context.Context
		scope callvault.Scope
	}{
		{sysCtx(), callvault.Scope{All: true}},
		{userCtx(callvault.RolePrincipal, north.ID), callvault.Scope{AcademyIDs: []int64{north.ID}}},
		{userCtx(callvault.RolePrincipal, north.ID, south.ID), callvault.Scope{AcademyIDs: []int64{north.ID, south.ID}}},
	}
	for i := range 150 {
		f := callvault.RecordingFilter{Number: pick(queries), Limit: 1 + rnd.IntN(30)}
		if rnd.IntN(4) == 0 {
			f.Extension = pick(exts)
		}
		if rnd.IntN(2) == 0 {
			f.From = base.Add(time.Duration(rnd.IntN(40)) * time.Hour)
		}
		if rnd.IntN(2) == 0 {
			f.To = base.Add(time.Duration(20+rnd.IntN(40)) * time.Hour)
		}
		if rnd.IntN(4) == 0 {
			f.AcademyID = academies[rnd.IntN(3)]
		}
		if rnd.IntN(4) == 0 {
			f.Direction = pick(directions)
		}
		if rnd.IntN(4) == 0 {
			f.MinDuration = time.Duration(rnd.IntN(300)) * time.Second
		}
		if rnd.IntN(4) == 0 {
			f.MaxDuration = time.Duration(300+rnd.IntN(300)) * time.Second
		}
		if rnd.IntN(4) == 0 {
			f.SourceKind = pick(kinds)
		}
		sc := scopes[i%len(scopes)]

		var want []string
		for _, r := range all {
			if modelMatch(r, f, sc.scope) {
				want = append(want, r.ID)
			}
		}
		var got []string
		f.After = ""
		for page := 0; ; page++ {
			rs, total, next, err := s.FindRecordings(sc.ctx, f)
			if err != nil {
				t.Fatalf("FindRecordings(%+v) page %d: %v", f, page, err)
			}
			if total != len(want) {
				t.Errorf("FindRecordings(%+v) page %d: total %d, want %d", f, page, total, len(want))
			}
			if len(rs) > f.Limit || (next != "" && len(rs) != f.Limit) {
				t.Fatalf("FindRecordings(%+v) page %d: %d rows, next %q", f, page, len(rs), next)
			}
			for _, r := range rs {
				got = append(got, r.ID)
			}
			if next == "" {
				break
			}
			f.After = next
		}
		f.After = ""
		if !slices.Equal(got, want) {
			t.Errorf("FindRecordings(%+v) walked %d recordings, want %d in order\n got %v\nwant %v", f, len(got), len(want), got, want)
		}
	}
}

// modelMatch is the filter semantics written plainly, for comparison.
func modelMatch(r *callvault.Recording, f callvault.RecordingFilter, scope callvault.Scope) bool {
	if !scope.InScope(r.AcademyID) ||
		(!f.From.IsZero() && r.StartedAt.Before(f.From)) ||
		(!f.To.IsZero() && !r.StartedAt.Before(f.To)) ||
		(f.AcademyID != 0 && r.AcademyID != f.AcademyID) ||
		(f.Direction != "" && r.Direction != f.Direction) ||
		(f.MinDuration > 0 && r.Duration < f.MinDuration) ||
		(f.MaxDuration > 0 && r.Duration > f.MaxDuration) ||
		(f.SourceKind != "" && r.SourceKind != f.SourceKind) {
		return false
	}
	digits := func(s string) string {
		var b strings.Builder
		for _, c := range s {
			if c >= '0' && c <= '9' {
				b.WriteRune(c)
			}
		}
		return b.String()
	}
	if q := strings.TrimSpace(f.Number); q != "" {
		ok := false
		for _, p := range r.Participants {
			if strings.HasPrefix(q, "+") {
				ok = ok || digits(p.Number) == digits(q)
			} else {
				ok = ok || strings.HasSuffix(digits(p.Number), strings.TrimLeft(digits(q), "0"))
			}
		}
		if !ok {
			return false
		}
	}
	if f.Extension != "" {
		ok := false
		for _, p := range r.Participants {
			ok = ok || p.Extension == f.Extension
		}
		if !ok {
			return false
		}
	}
	return true
}

func TestFindRecordings_limits(t *testing.T) {
	db, _ := openTestDB(t)
	north, _ := createAcademies(t, db)
	s := NewRecordingService(db)
	var rs []*callvault.Recording
	for i := range callvault.CountCap + 5 {
		rs = append(rs, newRecording(north.ID, 0, fmt.Sprint(i), t0.Add(-time.Duration(i)*time.Minute), "+447700900123", "2001"))
	}
	insertRecordings(t, db, rs...)
	tests := []struct {
		limit, want int
	}{
		{0, 50}, {-1, 50}, {1, 1}, {200, 200}, {201, 200}, {100000, 200},
	}
	for _, tt := range tests {
		got, total, next, err := s.FindRecordings(sysCtx(), callvault.RecordingFilter{Limit: tt.limit})
		if err != nil || len(got) != tt.want || total != callvault.CountCap || next == "" {
			t.Errorf("FindRecordings(Limit: %d) = %d rows (total %d, next %q), %v; want %d rows, total %d",
				tt.limit, len(got), total, next, err, tt.want, callvault.CountCap)
		}
	}
	// Counts below the cap are exact.
	_, total, _, err := s.FindRecordings(sysCtx(), callvault.RecordingFilter{From: t0.Add(-99 * time.Minute), Number: "900123"})
	if err != nil || total != 100 {
		t.Errorf("FindRecordings(last 100 minutes) total = %d, %v; want 100", total, err)
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in, number string
		suffix     bool
		code       string
	}{
		{"", "", false, ""},
		{"  ", "", false, ""},
		{"71838750", "71838750", true, ""},
		{"+44 1632 718387", "+441632718387", false, ""},
		{"+44 (0)1632 718387", "+4401632718387", false, ""},
		{"01632 718387", "1632718387", true, ""},
		{"0044-1632-718387", "441632718387", true, ""},
		{"tel:+441632718387", "441632718387", true, ""}, // '+' not leading
		{"ext. 2001", "2001", true, ""},
		{"abc", "", false, callvault.EINVALID},
		{"+", "", false, callvault.EINVALID},
		{"0", "", false, callvault.EINVALID},
	}
	for _, tt := range tests {
		number, suffix, err := callvault.ParseNumberQuery(tt.in)
		if callvault.ErrorCode(err) != tt.code || number != tt.number || suffix != tt.suffix {
			t.Errorf("ParseNumberQuery(%q) = %q, %v, %v; want %q, %v, code %q", tt.in, number, suffix, err, tt.number, tt.suffix, tt.code)
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"05783817", "05783818", true},
		{"0578389", "057839", true},
		{"1999", "2", true},
		{"0", "1", true},
		{"999", "", false},
	}
	for _, tt := range tests {
		got, ok := prefixEnd(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("prefixEnd(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReverseDigits(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+441632718387", "783817236144"},
		{"01632 718-387", "78381723610"},
		{"anonymous", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := reverseDigits(tt.in); got != tt.want {
			t.Errorf("reverseDigits(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCursor(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)
	id := uuid.NewString()
	c, err := decodeCursor(encodeCursor(at, id))
	if err != nil || c.startedAt != at.UnixMilli() || c.id != id {
		t.Errorf("decodeCursor(encodeCursor(%v, %s)) = %+v, %v", at, id, c, err)
	}
}
