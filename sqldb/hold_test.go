package sqldb

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

// validHold returns a hold that passes Validate at t0, of academy (0:
// trust-wide).
func validHold(academy int64) *callvault.Hold {
	return &callvault.Hold{Reason: callvault.HoldSubjectAccess, Title: "SAR from a parent", Reference: "SAR-17",
		AcademyID: academy, ReviewAt: t0.Add(callvault.DefaultHoldReview)}
}

// mustHold creates h as login, failing the test otherwise.
func (f *grantFixture) mustHold(t testing.TB, login string, h *callvault.Hold, ids ...string) *callvault.Hold {
	t.Helper()
	if err := NewHoldService(f.db).CreateHold(f.as(login), h, ids); err != nil {
		t.Fatalf("CreateHold(as %s, %+v, %v): %v", login, h, ids, err)
	}
	return h
}

// heldIDs returns every recording of hold id, walked in pages as the system.
func heldIDs(t testing.TB, db *DB, id int64) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		page, err := NewHoldService(db).HeldRecordingIDs(sysCtx(), id, after, 1000)
		if err != nil {
			t.Fatalf("HeldRecordingIDs(%d): %v", id, err)
		}
		ids = append(ids, page...)
		if len(page) < 1000 {
			return ids
		}
		after = page[len(page)-1]
	}
}

func holdIDs(hs []*callvault.Hold) []int64 {
	ids := []int64{}
	for _, h := range hs {
		ids = append(ids, h.ID)
	}
	return ids
}

func TestHold_create(t *testing.T) {
	f := newGrantFixture(t)
	s := NewHoldService(f.db)
	h := validHold(0)
	h.Title, h.Reference = "  SAR from a parent ", " SAR-17 "
	if err := s.CreateHold(f.as("dpo"), h, []string{f.n1, f.s1, f.n1}); err != nil {
		t.Fatal(err)
	}
	if h.ID == 0 || h.OwnerID != f.users["dpo"].ID || h.Owner != "dpo" || !h.CreatedAt.Equal(t0) || h.Recordings != 2 ||
		h.Title != "SAR from a parent" || h.Reference != "SAR-17" || !h.Active() {
		t.Errorf("CreateHold set %+v; want an id, owner dpo, created at t0, 2 recordings, trimmed text", h)
	}
	got, err := s.FindHoldByID(f.as("ceo"), h.ID)
	if err != nil || !reflect.DeepEqual(got, h) {
		t.Errorf("FindHoldByID(%d) = %+v, %v\nwant %+v", h.ID, got, err, h)
	}
	if ids := heldIDs(t, f.db, h.ID); !sameSet(ids, []string{f.n1, f.s1}) {
		t.Errorf("hold %d holds %v, want n1 and s1", h.ID, ids)
	}

	// Owned by someone else, named by the creator.
	h2 := validHold(f.north.ID)
	h2.OwnerID = f.users["pnorth"].ID
	f.mustHold(t, "ceo", h2, f.n1)
	if got, _ := s.FindHoldByID(f.as("pnorth"), h2.ID); got == nil || got.Owner != "pnorth" || got.Academy != "north" {
		t.Errorf("FindHoldByID(%d) as its owner = %+v, want owner pnorth in north", h2.ID, got)
	}
	// The system names an owner.
	h3 := validHold(0)
	h3.OwnerID = f.users["dpo"].ID
	if err := s.CreateHold(sysCtx(), h3, []string{f.u1}); err != nil || h3.Owner != "dpo" {
		t.Errorf("CreateHold(system, owner dpo) = %v, owner %q", err, h3.Owner)
	}

	n := countRows(t, f.db, `SELECT COUNT(*) FROM holds`)
	hr := countRows(t, f.db, `SELECT COUNT(*) FROM hold_recordings`)
	// A review date exactly two years ahead is allowed, a millisecond more is not.
	long := validHold(0)
	long.ReviewAt = t0.Add(callvault.MaxHoldReview)
	tests := []struct {
		name  string
		login string
		h     func() *callvault.Hold
		ids   []string
		code  string
	}{
		{"no reason", "dpo", func() *callvault.Hold { h := validHold(0); h.Reason = ""; return h }, []string{f.n1}, callvault.EINVALID},
		{"unknown reason", "dpo", func() *callvault.Hold { h := validHold(0); h.Reason = "curiosity"; return h }, []string{f.n1}, callvault.EINVALID},
		{"empty title", "dpo", func() *callvault.Hold { h := validHold(0); h.Title = " \t"; return h }, []string{f.n1}, callvault.EINVALID},
		{"long title", "dpo", func() *callvault.Hold { h := validHold(0); h.Title = strings.Repeat("x", 201); return h }, []string{f.n1}, callvault.EINVALID},
		{"long reference", "dpo", func() *callvault.Hold { h := validHold(0); h.Reference = strings.Repeat("x", 101); return h }, []string{f.n1}, callvault.EINVALID},
		{"no review date", "dpo", func() *callvault.Hold { h := validHold(0); h.ReviewAt = time.Time{}; return h }, []string{f.n1}, callvault.EINVALID},
		{"review date now", "dpo", func() *callvault.Hold { h := validHold(0); h.ReviewAt = t0; return h }, []string{f.n1}, callvault.EINVALID},
		{"review date past", "dpo", func() *callvault.Hold { h := validHold(0); h.ReviewAt = t0.Add(-time.Hour); return h }, []string{f.n1}, callvault.EINVALID},
		{"review date beyond two years", "dpo", func() *callvault.Hold {
			h := validHold(0)
			h.ReviewAt = t0.Add(callvault.MaxHoldReview + time.Millisecond)
			return h
		}, []string{f.n1}, callvault.EINVALID},
		{"negative academy", "dpo", func() *callvault.Hold { h := validHold(0); h.AcademyID = -1; return h }, []string{f.n1}, callvault.EINVALID},
		{"unknown academy", "dpo", func() *callvault.Hold { return validHold(999) }, []string{f.n1}, callvault.EINVALID},
		{"nothing held", "dpo", func() *callvault.Hold { return validHold(0) }, nil, callvault.EINVALID},
		{"unknown recording", "dpo", func() *callvault.Hold { return validHold(0) }, []string{f.n1, "0190a0b0-0000-7000-8000-000000000000"}, callvault.EINVALID},
		{"recording outside the hold's academy", "dpo", func() *callvault.Hold { return validHold(f.north.ID) }, []string{f.s1}, callvault.EINVALID},
		{"empty saved search", "dpo", func() *callvault.Hold {
			h := validHold(0)
			h.Filter = &callvault.HoldFilter{Direction: callvault.DirectionInbound}
			return h
		}, nil, callvault.EINVALID},
		{"saved search without digits", "dpo", func() *callvault.Hold { h := validHold(0); h.Filter = &callvault.HoldFilter{Number: "+-"}; return h }, nil, callvault.EINVALID},
		{"saved search, bad direction", "dpo", func() *callvault.Hold {
			h := validHold(0)
			h.Filter = &callvault.HoldFilter{Extension: "2001", Direction: "up"}
			return h
		}, nil, callvault.EINVALID},
		{"saved search ends before it starts", "dpo", func() *callvault.Hold {
			h := validHold(0)
			h.Filter = &callvault.HoldFilter{Extension: "2001", From: t0, To: t0}
			return h
		}, nil, callvault.EINVALID},
		{"saved search outside the hold's academy", "dpo", func() *callvault.Hold {
			h := validHold(f.north.ID)
			h.Filter = &callvault.HoldFilter{Extension: "2001", AcademyID: f.south.ID}
			return h
		}, nil, callvault.EINVALID},
		{"disabled owner", "dpo", func() *callvault.Hold { h := validHold(0); h.OwnerID = f.users["gone"].ID; return h }, []string{f.n1}, callvault.EINVALID},
		{"unknown owner", "dpo", func() *callvault.Hold { h := validHold(0); h.OwnerID = 12345; return h }, []string{f.n1}, callvault.EINVALID},
		{"system without owner", "", nil, []string{f.n1}, callvault.EINVALID},
		{"two years exactly", "dpo", func() *callvault.Hold { h := *long; return &h }, []string{f.n1}, ""},
	}
	created := 0
	for _, tt := range tests {
		ctx, h := sysCtx(), validHold(0)
		if tt.login != "" {
			ctx, h = f.as(tt.login), tt.h()
		}
		err := s.CreateHold(ctx, h, tt.ids)
		wantCode(t, "CreateHold("+tt.name+")", err, tt.code)
		if err == nil {
			created++
			hr += len(tt.ids)
		}
	}
	if got := countRows(t, f.db, `SELECT COUNT(*) FROM holds`); got != n+created {
		t.Errorf("%d holds after refused creations, want %d", got, n+created)
	}
	if got := countRows(t, f.db, `SELECT COUNT(*) FROM hold_recordings`); got != hr {
		t.Errorf("%d held recordings after refused creations, want %d", got, hr)
	}
}

func TestHold_createPermissions(t *testing.T) {
	f := newGrantFixture(t)
	s := NewHoldService(f.db)
	N, S := f.north.ID, f.south.ID
	tests := []struct {
		login   string
		academy int64
		ids     []string
		filter  bool
		code    string
	}{
		{"dpo", 0, []string{f.n1, f.s1, f.u1}, false, ""},
		{"dpo", S, []string{f.s1}, false, ""},
		{"dpo", 0, nil, true, ""},
		{"ceo", 0, []string{f.n1, f.u1}, false, ""},
		{"ceo", N, nil, true, ""},
		{"pnorth", N, []string{f.n1, f.n2}, false, ""},
		{"pnorth", N, nil, true, ""},
		{"pnorth", 0, []string{f.n1}, false, callvault.EFORBIDDEN},     // a principal's hold is their academy's
		{"pnorth", 0, nil, true, callvault.EFORBIDDEN},                 // also for a saved search
		{"pnorth", S, []string{f.s1}, false, callvault.EFORBIDDEN},     // not their academy
		{"pnorth", S, nil, true, callvault.EFORBIDDEN},                 //
		{"pnorth", N, []string{f.s1}, false, callvault.EINVALID},       // the recordings must be in it
		{"pnorth", N, []string{f.n1, f.u1}, false, callvault.EINVALID}, //
		{"pboth", S, []string{f.s1}, false, ""},
		{"pnone", N, []string{f.n1}, false, callvault.EFORBIDDEN},
		{"admin", 0, []string{f.n1}, false, callvault.EFORBIDDEN},
		{"admin", N, nil, true, callvault.EFORBIDDEN},
		{"lis1", 0, []string{f.n1}, false, callvault.EFORBIDDEN},
		{"gone", 0, []string{f.n1}, false, callvault.EFORBIDDEN},
		{"", 0, []string{f.n1}, false, callvault.EFORBIDDEN},
	}
	for _, tt := range tests {
		n := countRows(t, f.db, `SELECT COUNT(*) FROM holds`)
		h := validHold(tt.academy)
		if tt.filter {
			h.Filter = &callvault.HoldFilter{Number: "900123"}
		}
		err := s.CreateHold(f.as(tt.login), h, tt.ids)
		call := fmt.Sprintf("CreateHold(as %q, academy %d, %d recordings, saved search %v)", tt.login, tt.academy, len(tt.ids), tt.filter)
		wantCode(t, call, err, tt.code)
		want := n
		if tt.code == "" {
			want++
			if h.OwnerID != f.users[tt.login].ID {
				t.Errorf("%s: owner %d, want the actor %d", call, h.OwnerID, f.users[tt.login].ID)
			}
		}
		if got := countRows(t, f.db, `SELECT COUNT(*) FROM holds`); got != want {
			t.Errorf("%s: %d holds, want %d", call, got, want)
		}
	}
	// A principal's saved search stays in their academy, whatever it says.
	h := validHold(N)
	h.Filter = &callvault.HoldFilter{Number: "+447700900123"}
	f.mustHold(t, "pnorth", h)
	if ids := heldIDs(t, f.db, h.ID); h.Filter.AcademyID != N || !sameSet(ids, []string{f.n1, f.n2}) {
		t.Errorf("pnorth's saved search (academy %d) holds %v, want only north's n1, n2", h.Filter.AcademyID, ids)
	}
}

// holdRec returns a recording of academy at started with one external
// number and one staff extension, in direction.
func holdRec(academy int64, ref string, started time.Time, number, ext, direction string) *callvault.Recording {
	r := newRecording(academy, 0, ref, started, number, ext)
	r.Direction = direction
	return r
}

func TestHold_savedSearch(t *testing.T) {
	f := newGrantFixture(t)
	s, rs := NewHoldService(f.db), NewRecordingService(f.db)
	N, S := f.north.ID, f.south.ID
	day := 24 * time.Hour
	in, out := callvault.DirectionInbound, callvault.DirectionOutbound
	refs := map[string]string{} // id → ref
	store := func(rec *callvault.Recording) {
		t.Helper()
		if err := rs.CreateRecording(sysCtx(), rec); err != nil {
			t.Fatal(err)
		}
		refs[rec.ID] = rec.SourceRef
	}
	for _, r := range []*callvault.Recording{
		holdRec(N, "a", t0.Add(-10*day), "+447700900111", "2001", in),
		holdRec(N, "b", t0.Add(-5*day), "+447700900222", "2002", out),
		holdRec(S, "c", t0.Add(-2*day), "+447700900111", "3001", in),
		holdRec(S, "d", t0.Add(-3*day), "+441632961050", "3002", in),
	} {
		store(r)
	}
	type holdCase struct {
		name    string
		academy int64
		filter  callvault.HoldFilter
		now     string // refs held at creation
		later   string // refs held after the later recordings arrive
	}
	cases := []holdCase{
		{"trailing digits", 0, callvault.HoldFilter{Number: "900111"}, "a,c", "a,c,e,g"},
		{"full number, inbound, from a week ago", 0, callvault.HoldFilter{Number: "+44 7700 900111", Direction: in, From: t0.Add(-7 * day)},
			"c", "c,e"},
		{"extension", 0, callvault.HoldFilter{Extension: "2002"}, "b", "b,h"},
		{"national form", 0, callvault.HoldFilter{Number: "07700 900222"}, "b", "b,h"},
		{"south only", S, callvault.HoldFilter{Number: "900111"}, "c", "c,g"},
		// Every recording has the staff number; the window ends just before c.
		{"window", 0, callvault.HoldFilter{Number: "+441632960001", From: t0.Add(-6 * day), To: t0.Add(-2 * day)}, "b,d", "b,d,g"},
		{"full number of another length", 0, callvault.HoldFilter{Number: "+4477009001"}, "", ""},
		{"released", 0, callvault.HoldFilter{Number: "900111"}, "a,c", "a,c"},
	}
	holds := map[string]*callvault.Hold{}
	for _, c := range cases {
		h := validHold(c.academy)
		fl := c.filter
		h.Filter = &fl
		f.mustHold(t, "dpo", h)
		holds[c.name] = h
		if got := refsOf(heldIDs(t, f.db, h.ID), refs); got != c.now || h.Recordings != len(heldIDs(t, f.db, h.ID)) {
			t.Errorf("hold %q holds %q (Recordings %d) at creation, want %q", c.name, got, h.Recordings, c.now)
		}
	}
	if _, err := s.ReleaseHold(f.as("dpo"), holds["released"].ID, "Withdrawn."); err != nil {
		t.Fatal(err)
	}

	// Later recordings: the ingest's audit entry names the holds.
	audit := callvault.NewPendingAudit(callvault.AuditEvent{Action: "recording.ingest", ActorKind: callvault.ActorSystem})
	e := holdRec(N, "e", t0.Add(-1*day), "+447700900111", "2009", in)
	if err := rs.CreateRecording(callvault.WithPendingAudit(sysCtx(), audit), e); err != nil {
		t.Fatal(err)
	}
	refs[e.ID] = "e"
	wantHolds := []string{strconv.FormatInt(holds["trailing digits"].ID, 10), strconv.FormatInt(holds["full number, inbound, from a week ago"].ID, 10)}
	if done, ev := audit.Done(); !done || !sameSet(strings.Split(ev.Details["holds"], ","), wantHolds) {
		t.Errorf("ingest audit entry done=%v details %v, want holds %v", done, ev.Details, wantHolds)
	}
	for _, r := range []*callvault.Recording{
		holdRec(N, "f", t0.Add(-1*day), "+447700900333", "2009", in),  // no hold's number or extension
		holdRec(S, "g", t0.Add(-4*day), "+447700900111", "3009", out), // outbound: not the inbound one
		holdRec(N, "h", t0.Add(-8*day), "+447700900222", "2002", in),  // before the window
	} {
		store(r)
	}
	for _, c := range cases {
		if got := refsOf(heldIDs(t, f.db, holds[c.name].ID), refs); got != c.later {
			t.Errorf("hold %q holds %q after later recordings, want %q", c.name, got, c.later)
		}
	}
	hs, err := s.FindHolds(f.as("dpo"), callvault.HoldListFilter{RecordingID: e.ID})
	if err != nil || !sameInt64s(holdIDs(hs), []int64{holds["trailing digits"].ID, holds["full number, inbound, from a week ago"].ID}) {
		t.Errorf("FindHolds(recording e) = %v, %v; want the two holds that caught it", holdIDs(hs), err)
	}
}

func sameInt64s(a, b []int64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// refsOf returns the refs of ids, sorted and joined.
func refsOf(ids []string, refs map[string]string) string {
	var out []string
	for _, id := range ids {
		out = append(out, refs[id])
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// TestHold_matchesAgreesWithSQL: a saved search holds, at creation (SQL)
// and at ingest (HoldFilter.Matches), exactly what searching for it finds.
func TestHold_matchesAgreesWithSQL(t *testing.T) {
	f := newGrantFixture(t)
	s, rs := NewHoldService(f.db), NewRecordingService(f.db)
	rnd := rand.New(rand.NewPCG(7, 11))
	numbers := []string{"+447700900111", "+447700900211", "+447700911111", "+441632960011", "+441632961011",
		"+442079460011", "01174960011", "anonymous", ""}
	exts := []string{"2001", "2011", "3001", "20011", ""}
	dirs := []string{callvault.DirectionInbound, callvault.DirectionOutbound, callvault.DirectionInternal, ""}
	academies := []int64{f.north.ID, f.south.ID, unassignedID(t, f.db)}
	base := t0.Add(-30 * 24 * time.Hour)
	span := 30 * 24 * time.Hour
	randTime := func() time.Time {
		return base.Add(time.Duration(rnd.Int64N(int64(span))))
	}
	randRec := func(i int) *callvault.Recording {
		r := newRecording(academies[rnd.IntN(len(academies))], 0, fmt.Sprint("p-", i), randTime(), "", "")
		r.Direction = dirs[rnd.IntN(len(dirs))]
		r.Participants = nil
		for range 1 + rnd.IntN(3) {
			side := callvault.SideExternal
			if rnd.IntN(2) == 0 {
				side = callvault.SideStaff
			}
			r.Participants = append(r.Participants, callvault.Participant{
				Number: numbers[rnd.IntN(len(numbers))], Extension: exts[rnd.IntN(len(exts))], Side: side})
		}
		return r
	}
	digits := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r < '0' || r > '9' {
				return -1
			}
			return r
		}, s)
	}
	randFilter := func() callvault.HoldFilter {
		var fl callvault.HoldFilter
		for fl.Number == "" && fl.Extension == "" {
			if rnd.IntN(4) > 0 {
				d := digits(numbers[rnd.IntN(7)])
				switch rnd.IntN(5) {
				case 0:
					fl.Number = "+" + d // full
				case 1:
					fl.Number = "+" + d[:len(d)-1] // a full number nobody has
				case 2:
					fl.Number = "0" + d[len(d)-6:] // national-style trailing digits
				default:
					if n := strings.TrimLeft(d[len(d)-1-rnd.IntN(len(d)-1):], "0"); n != "" {
						fl.Number = " " + n
					}
				}
			}
			if rnd.IntN(3) == 0 {
				fl.Extension = exts[rnd.IntN(len(exts)-1)]
			}
		}
		if rnd.IntN(3) == 0 {
			fl.Direction = dirs[rnd.IntN(3)]
		}
		if rnd.IntN(3) == 0 {
			fl.AcademyID = academies[rnd.IntN(len(academies))]
		}
		if rnd.IntN(2) == 0 {
			fl.From = randTime()
		}
		if rnd.IntN(2) == 0 {
			fl.To = randTime()
			if !fl.From.IsZero() && !fl.From.Before(fl.To) {
				fl.From, fl.To = fl.To, fl.From.Add(time.Nanosecond)
			}
		}
		return fl
	}
	// search returns what searching for fl finds.
	search := func(fl *callvault.HoldFilter) []string {
		rf := fl.RecordingFilter()
		rf.Limit = 200
		var ids []string
		for {
			page, _, next, err := rs.FindRecordings(sysCtx(), rf)
			if err != nil {
				t.Fatalf("FindRecordings(%+v): %v", rf, err)
			}
			for _, r := range page {
				ids = append(ids, r.ID)
			}
			if next == "" {
				return ids
			}
			rf.After = next
		}
	}
	all := func() []*callvault.Recording {
		var out []*callvault.Recording
		rows, err := f.db.reader.Query(`SELECT id FROM recordings ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			r, err := rs.FindRecordingByID(sysCtx(), id)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	check := func(phase string, hs []*callvault.Hold) {
		t.Helper()
		recs := all()
		matched := 0
		for _, h := range hs {
			var want []string
			for _, r := range recs {
				if h.Filter.Matches(r) {
					want = append(want, r.ID)
				}
			}
			got := heldIDs(t, f.db, h.ID)
			found := search(h.Filter)
			if !sameSet(got, want) || !sameSet(found, want) {
				t.Errorf("%s: filter %+v: hold has %d, Matches %d, search %d recordings", phase, *h.Filter, len(got), len(want), len(found))
			}
			if len(want) > 0 {
				matched++
			}
		}
		// The filters must not all be trivially empty.
		if matched < len(hs)/3 {
			t.Errorf("%s: only %d of %d filters match anything", phase, matched, len(hs))
		}
	}

	var recs []*callvault.Recording
	for i := range 150 {
		recs = append(recs, randRec(i))
	}
	insertRecordings(t, f.db, recs...)
	var hs []*callvault.Hold
	for range 60 {
		h := validHold(0)
		fl := randFilter()
		h.Filter = &fl
		if err := s.CreateHold(f.as("dpo"), h, nil); err != nil {
			t.Fatalf("CreateHold(filter %+v): %v", fl, err)
		}
		hs = append(hs, h)
	}
	check("at creation", hs)
	// Later recordings go through ingest, where Matches decides.
	for i := range 100 {
		if err := rs.CreateRecording(sysCtx(), randRec(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	check("after ingest", hs)
}

func TestHold_release(t *testing.T) {
	f := newGrantFixture(t)
	s := NewHoldService(f.db)
	h1 := f.mustHold(t, "dpo", validHold(f.north.ID), f.n1)
	h2 := validHold(0)
	h2.OwnerID = f.users["pnone"].ID
	f.mustHold(t, "dpo", h2, f.n1, f.s1)
	h3 := f.mustHold(t, "pnorth", validHold(f.north.ID), f.n2)
	h4 := f.mustHold(t, "dpo", validHold(f.south.ID), f.s1)

	for _, note := range []string{"", "  \n", strings.Repeat("x", 1001)} {
		_, err := s.ReleaseHold(f.as("dpo"), h1.ID, note)
		wantCode(t, fmt.Sprintf("ReleaseHold(note of %d bytes)", len(note)), err, callvault.EINVALID)
	}
	refused := []struct {
		login string
		hold  *callvault.Hold
		code  string
	}{
		{"admin", h1, callvault.EFORBIDDEN}, // sees holds, may not release them
		{"admin", h3, callvault.EFORBIDDEN},
		{"lis1", h1, callvault.ENOTFOUND},   // sees none
		{"gone", h1, callvault.ENOTFOUND},   // disabled
		{"", h1, callvault.ENOTFOUND},       // nobody
		{"psouth", h1, callvault.ENOTFOUND}, // not theirs, not their academy
		{"psouth", h3, callvault.ENOTFOUND},
		{"pnone", h1, callvault.ENOTFOUND},
		{"pnorth", h2, callvault.ENOTFOUND}, // trust-wide, owned by pnone
		{"pboth", h2, callvault.ENOTFOUND},
		{"pnorth", h4, callvault.ENOTFOUND},
	}
	for _, tt := range refused {
		_, err := s.ReleaseHold(f.as(tt.login), tt.hold.ID, "Done.")
		wantCode(t, fmt.Sprintf("ReleaseHold(as %q, hold %d)", tt.login, tt.hold.ID), err, tt.code)
	}
	if got, _ := s.FindHolds(sysCtx(), callvault.HoldListFilter{Active: true}); len(got) != 4 {
		t.Fatalf("%d active holds after refused releases, want 4", len(got))
	}

	pending := func(login string) (context.Context, *callvault.PendingAudit) {
		e := callvault.AuditEvent{Action: "hold.release"}
		e.SetActor(callvault.ActorFromContext(f.as(login)))
		p := callvault.NewPendingAudit(e)
		return callvault.WithPendingAudit(f.as(login), p), p
	}
	allowed := []struct {
		login string
		hold  *callvault.Hold
		still string // recordings of the hold another active hold keeps
	}{
		{"pnorth", h1, "1"}, // a principal of its academy; n1 stays held by h2
		{"pnone", h2, "1"},  // its owner; s1 stays held by h4
		{"ceo", h3, "0"},
		{"pboth", h4, "0"},
	}
	for _, tt := range allowed {
		f.clock.Add(time.Minute)
		ctx, p := pending(tt.login)
		got, err := s.ReleaseHold(ctx, tt.hold.ID, "  Request answered.\n")
		if err != nil {
			t.Errorf("ReleaseHold(as %s, hold %d): %v", tt.login, tt.hold.ID, err)
			continue
		}
		if got.Active() || !got.ReleasedAt.Equal(f.clock.Now()) || got.ReleasedBy != tt.login || got.ReleaseNote != "Request answered." {
			t.Errorf("ReleaseHold(as %s) = %+v", tt.login, got)
		}
		if stored, _ := s.FindHoldByID(sysCtx(), tt.hold.ID); !reflect.DeepEqual(stored, got) {
			t.Errorf("FindHoldByID after release = %+v, want %+v", stored, got)
		}
		if done, e := p.Done(); !done || e.TargetType != "hold" || e.TargetID != strconv.FormatInt(tt.hold.ID, 10) ||
			e.Details["still_held_by_other_holds"] != tt.still || e.Details["recordings"] != strconv.Itoa(got.Recordings) {
			t.Errorf("ReleaseHold(as %s) audit entry done=%v %+v, want still held %s", tt.login, done, e, tt.still)
		}
		_, err = s.ReleaseHold(f.as("dpo"), tt.hold.ID, "Again.")
		wantCode(t, "ReleaseHold(released)", err, callvault.ECONFLICT)
		err = s.AddToHold(f.as("dpo"), tt.hold.ID, []string{f.n2})
		wantCode(t, "AddToHold(released)", err, callvault.ECONFLICT)
	}
	if got := countRows(t, f.db, `SELECT COUNT(*) FROM holds WHERE released_at IS NULL`); got != 0 {
		t.Errorf("%d holds still active", got)
	}
	if got := countRows(t, f.db, `SELECT COUNT(*) FROM holds WHERE release_note = 'Again.'`); got != 0 {
		t.Errorf("a second release overwrote the note of %d holds", got)
	}
}

func TestHold_find(t *testing.T) {
	f := newGrantFixture(t)
	s := NewHoldService(f.db)
	a := f.mustHold(t, "dpo", validHold(f.north.ID), f.n1)
	b := f.mustHold(t, "dpo", validHold(f.south.ID), f.s1)
	c := validHold(0)
	c.OwnerID = f.users["pnone"].ID
	f.mustHold(t, "dpo", c, f.u1, f.n2)
	d := f.mustHold(t, "pnorth", validHold(f.north.ID), f.n2)
	if _, err := s.ReleaseHold(f.as("pnorth"), d.ID, "Closed."); err != nil {
		t.Fatal(err)
	}
	e := f.mustHold(t, "ceo", validHold(0), f.s1, f.n1)

	every := []int64{e.ID, c.ID, b.ID, a.ID, d.ID} // active first, newest first
	tests := []struct {
		login string
		f     callvault.HoldListFilter
		want  []int64
	}{
		{"dpo", callvault.HoldListFilter{}, every},
		{"ceo", callvault.HoldListFilter{}, every},
		{"admin", callvault.HoldListFilter{}, every},
		{"pnorth", callvault.HoldListFilter{}, []int64{a.ID, d.ID}},
		{"psouth", callvault.HoldListFilter{}, []int64{b.ID}},
		{"pboth", callvault.HoldListFilter{}, []int64{b.ID, a.ID, d.ID}},
		{"pnone", callvault.HoldListFilter{}, []int64{c.ID}},
		{"dpo", callvault.HoldListFilter{Active: true}, []int64{e.ID, c.ID, b.ID, a.ID}},
		{"pnorth", callvault.HoldListFilter{Active: true}, []int64{a.ID}},
		{"dpo", callvault.HoldListFilter{RecordingID: f.n1}, []int64{e.ID, a.ID}},
		{"dpo", callvault.HoldListFilter{RecordingID: f.n2}, []int64{c.ID, d.ID}},
		{"dpo", callvault.HoldListFilter{RecordingID: f.n2, Active: true}, []int64{c.ID}},
		{"pnorth", callvault.HoldListFilter{RecordingID: f.n2}, []int64{d.ID}},
		{"pnone", callvault.HoldListFilter{RecordingID: f.s1}, []int64{}},
	}
	for _, tt := range tests {
		got, err := s.FindHolds(f.as(tt.login), tt.f)
		if err != nil || !slices.Equal(holdIDs(got), tt.want) {
			t.Errorf("FindHolds(as %s, %+v) = %v, %v; want %v", tt.login, tt.f, holdIDs(got), err, tt.want)
		}
		if tt.f != (callvault.HoldListFilter{}) {
			continue
		}
		for _, id := range every { // by id, the same scope
			code := callvault.ENOTFOUND
			if slices.Contains(tt.want, id) {
				code = ""
			}
			_, err := s.FindHoldByID(f.as(tt.login), id)
			wantCode(t, fmt.Sprintf("FindHoldByID(as %s, %d)", tt.login, id), err, code)
		}
	}
	for _, login := range []string{"lis1", "gone", ""} {
		_, err := s.FindHolds(f.as(login), callvault.HoldListFilter{})
		wantCode(t, fmt.Sprintf("FindHolds(as %q)", login), err, callvault.EFORBIDDEN)
		_, err = s.FindHoldByID(f.as(login), a.ID)
		wantCode(t, fmt.Sprintf("FindHoldByID(as %q)", login), err, callvault.ENOTFOUND)
	}
	got, err := s.FindHoldByID(f.as("dpo"), c.ID)
	if err != nil || got.Recordings != 2 || got.Owner != "pnone" || got.Academy != "" || got.OwnerID != f.users["pnone"].ID {
		t.Errorf("FindHoldByID(%d) = %+v, %v", c.ID, got, err)
	}
}

func TestHold_heldRecordingIDs(t *testing.T) {
	f := newGrantFixture(t)
	s := NewHoldService(f.db)
	var recs []*callvault.Recording
	var all, north []string
	for i := range 30 {
		a := f.north.ID
		if i%6 == 0 {
			a = f.south.ID
		}
		r := newRecording(a, 0, fmt.Sprint("held-", i), t0.Add(-time.Duration(i)*time.Minute), "+447700900123", "2001")
		recs = append(recs, r)
		all = append(all, r.ID)
		if a == f.north.ID {
			north = append(north, r.ID)
		}
	}
	insertRecordings(t, f.db, recs...)
	h := validHold(0)
	h.OwnerID = f.users["pnorth"].ID
	f.mustHold(t, "dpo", h, all...)
	slices.Sort(all)
	slices.Sort(north)

	walk := func(login string, limit int) ([]string, int, error) {
		var got []string
		after, pages := "", 0
		for {
			page, err := s.HeldRecordingIDs(f.as(login), h.ID, after, limit)
			if err != nil {
				return got, pages, err
			}
			pages++
			got = append(got, page...)
			if len(page) == 0 || len(page) < limit {
				return got, pages, nil
			}
			after = page[len(page)-1]
		}
	}
	tests := []struct {
		login     string
		limit     int
		want      []string
		wantPages int
	}{
		{"dpo", 10, all, 4}, // the last page is empty
		{"dpo", 7, all, 5},
		{"dpo", 1000, all, 1},
		{"ceo", 0, all, 1}, // no limit: the default, 1000
		{"pnorth", 7, north, 4},
		{"pnorth", -5, north, 1},
	}
	for _, tt := range tests {
		got, pages, err := walk(tt.login, tt.limit)
		if err != nil || !slices.Equal(got, tt.want) || (tt.limit > 0 && pages != tt.wantPages) {
			t.Errorf("HeldRecordingIDs(as %s, limit %d) = %d ids in %d pages, %v; want %d in order in %d pages",
				tt.login, tt.limit, len(got), pages, err, len(tt.want), tt.wantPages)
		}
	}
	for _, login := range []string{"psouth", "lis1", ""} {
		_, err := s.HeldRecordingIDs(f.as(login), h.ID, "", 10)
		wantCode(t, fmt.Sprintf("HeldRecordingIDs(as %q)", login), err, callvault.ENOTFOUND)
	}
	_, err := s.HeldRecordingIDs(f.as("dpo"), h.ID+1, "", 10)
	wantCode(t, "HeldRecordingIDs(unknown hold)", err, callvault.ENOTFOUND)
}

func TestHold_addToHold(t *testing.T) {
	f := newGrantFixture(t)
	s := NewHoldService(f.db)
	hn := f.mustHold(t, "pnorth", validHold(f.north.ID), f.n1)
	ht := f.mustHold(t, "dpo", validHold(0), f.s1)
	tests := []struct {
		login string
		hold  *callvault.Hold
		ids   []string
		code  string
	}{
		{"pnorth", hn, nil, callvault.EINVALID},
		{"pnorth", hn, []string{f.s1}, callvault.EINVALID},
		{"pnorth", hn, []string{"0190a0b0-0000-7000-8000-000000000000"}, callvault.EINVALID},
		{"admin", hn, []string{f.n2}, callvault.EFORBIDDEN},
		{"lis1", hn, []string{f.n2}, callvault.ENOTFOUND},
		{"psouth", hn, []string{f.n2}, callvault.ENOTFOUND},
		{"pnorth", ht, []string{f.n2}, callvault.ENOTFOUND}, // not theirs
		{"pnorth", hn, []string{f.n2, f.n1}, ""},
		{"dpo", ht, []string{f.u1, f.n1}, ""},
		{"ceo", hn, []string{f.n2}, ""},
	}
	for _, tt := range tests {
		err := s.AddToHold(f.as(tt.login), tt.hold.ID, tt.ids)
		wantCode(t, fmt.Sprintf("AddToHold(as %q, %d, %d recordings)", tt.login, tt.hold.ID, len(tt.ids)), err, tt.code)
	}
	if got := heldIDs(t, f.db, hn.ID); !sameSet(got, []string{f.n1, f.n2}) {
		t.Errorf("north hold holds %v, want n1, n2", got)
	}
	if got := heldIDs(t, f.db, ht.ID); !sameSet(got, []string{f.s1, f.u1, f.n1}) {
		t.Errorf("trust-wide hold holds %v, want s1, u1, n1", got)
	}
	e := callvault.AuditEvent{Action: "hold.add"}
	e.SetActor(callvault.ActorFromContext(f.as("dpo")))
	p := callvault.NewPendingAudit(e)
	if err := s.AddToHold(callvault.WithPendingAudit(f.as("dpo"), p), ht.ID, []string{f.n2}); err != nil {
		t.Fatal(err)
	}
	if done, ev := p.Done(); !done || ev.TargetID != strconv.FormatInt(ht.ID, 10) || ev.Details["added"] != "1" {
		t.Errorf("AddToHold audit entry done=%v %+v", done, ev)
	}
}
