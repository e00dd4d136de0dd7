package sqldb

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/google/uuid"
)

// grantFixture is a trust of two academies with one user of each kind and
// recordings in north, south and unassigned.
type grantFixture struct {
	db           *DB
	clock        *clock
	gs           *GrantService
	rs           *RecordingService
	north, south *callvault.Academy
	users        map[string]*callvault.User
	n1, n2, s1   string // recording ids: two in north, one in south
	u1           string // unassigned
}

// The users of the fixture: login, role, academies ("n", "s").
var grantUsers = []struct{ login, role, academies string }{
	{"admin", callvault.RoleAdmin, ""},
	{"dpo", callvault.RoleDPO, ""},
	{"ceo", callvault.RoleCEO, ""},
	{"ceo2", callvault.RoleCEO, ""},
	{"pnorth", callvault.RolePrincipal, "n"},
	{"psouth", callvault.RolePrincipal, "s"},
	{"pboth", callvault.RolePrincipal, "ns"},
	{"pnone", callvault.RolePrincipal, ""},
	{"lis1", callvault.RoleListener, ""},
	{"lis2", callvault.RoleListener, ""},
	{"gone", callvault.RoleListener, ""}, // disabled
}

func newGrantFixture(t testing.TB) *grantFixture {
	t.Helper()
	db, c := openTestDB(t)
	f := &grantFixture{db: db, clock: c, gs: NewGrantService(db), rs: NewRecordingService(db), users: map[string]*callvault.User{}}
	f.north, f.south = createAcademies(t, db)
	us := NewUserService(db)
	for _, gu := range grantUsers {
		u := &callvault.User{Login: gu.login, Name: gu.login, Role: gu.role}
		if strings.Contains(gu.academies, "n") {
			u.AcademyIDs = append(u.AcademyIDs, f.north.ID)
		}
		if strings.Contains(gu.academies, "s") {
			u.AcademyIDs = append(u.AcademyIDs, f.south.ID)
		}
		if err := us.CreateUser(sysCtx(), u); err != nil {
			t.Fatalf("CreateUser(%s): %v", gu.login, err)
		}
		f.users[gu.login] = u
	}
	if err := us.DisableUser(sysCtx(), f.users["gone"].ID); err != nil {
		t.Fatal(err)
	}
	f.users["gone"].Disabled = true
	var recs []*callvault.Recording
	for i, a := range []int64{f.north.ID, f.north.ID, f.south.ID, unassignedID(t, db)} {
		recs = append(recs, newRecording(a, 0, fmt.Sprint("ref-", i), t0.Add(-time.Duration(i+1)*time.Hour), "+447700900123", "2001"))
	}
	insertRecordings(t, db, recs...)
	f.n1, f.n2, f.s1, f.u1 = recs[0].ID, recs[1].ID, recs[2].ID, recs[3].ID
	return f
}

// as returns a context acting as the fixture's user login ("" for none).
func (f *grantFixture) as(login string) context.Context {
	if login == "" {
		return context.Background()
	}
	u := f.users[login]
	if u == nil {
		panic("no user " + login)
	}
	return callvault.NewContextWithActor(context.Background(), &callvault.Actor{User: u})
}

func (f *grantFixture) ids(logins ...string) []int64 {
	var ids []int64
	for _, l := range logins {
		ids = append(ids, f.users[l].ID)
	}
	return ids
}

func (f *grantFixture) validRequest(recordings []string, listeners ...string) *callvault.ListenRequest {
	return &callvault.ListenRequest{
		RecordingIDs:  slices.Clone(recordings),
		Purpose:       callvault.PurposeComplaint,
		Justification: "A parent complained about this call.",
		ListenerIDs:   f.ids(listeners...),
		Duration:      24 * time.Hour,
	}
}

// request creates a valid request by login, failing the test otherwise.
func (f *grantFixture) request(t testing.TB, by string, recordings []string, listeners ...string) *callvault.ListenRequest {
	t.Helper()
	r := f.validRequest(recordings, listeners...)
	if err := f.gs.CreateListenRequest(f.as(by), r); err != nil {
		t.Fatalf("CreateListenRequest(by %s, %v, listeners %v): %v", by, recordings, listeners, err)
	}
	return r
}

// approve decides r as login, failing the test otherwise.
func (f *grantFixture) approve(t testing.TB, by string, r *callvault.ListenRequest) []*callvault.Grant {
	t.Helper()
	_, gs, err := f.gs.DecideListenRequest(f.as(by), r.ID, true, "Approved for the complaint.")
	if err != nil {
		t.Fatalf("DecideListenRequest(%d, approve, as %s): %v", r.ID, by, err)
	}
	return gs
}

func requestIDs(rs []*callvault.ListenRequest) []int64 {
	ids := []int64{}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

func grantIDs(gs []*callvault.Grant) []int64 {
	ids := []int64{}
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return ids
}

func TestListenRequest_create(t *testing.T) {
	f := newGrantFixture(t)
	long := strings.Repeat("é", 2000) // characters, not bytes
	many := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = uuid.Must(uuid.NewV7()).String()
		}
		return ids
	}
	unknown := uuid.Must(uuid.NewV7()).String()
	tests := []struct {
		name   string
		by     string
		modify func(r *callvault.ListenRequest)
		code   string
		msg    string // substring of the message
	}{
		{"valid", "pnorth", func(r *callvault.ListenRequest) {}, "", ""},
		{"admin, two academies", "admin", func(r *callvault.ListenRequest) { r.RecordingIDs = []string{f.s1, f.n1, f.u1} }, "", ""},
		{"dpo", "dpo", func(r *callvault.ListenRequest) {}, "", ""},
		{"ceo", "ceo", func(r *callvault.ListenRequest) {}, "", ""},
		{"requester listens", "pnorth", func(r *callvault.ListenRequest) { r.ListenerIDs = f.ids("pnorth", "lis1") }, "", ""},
		{"listener may not ask", "lis1", func(r *callvault.ListenRequest) {}, callvault.EFORBIDDEN, ""},
		{"disabled may not ask", "gone", func(r *callvault.ListenRequest) {}, callvault.EFORBIDDEN, ""},
		{"nobody may not ask", "", func(r *callvault.ListenRequest) {}, callvault.EFORBIDDEN, ""},
		{"unknown purpose", "pnorth", func(r *callvault.ListenRequest) { r.Purpose = "curiosity" }, callvault.EINVALID, "purpose"},
		{"other without text", "pnorth", func(r *callvault.ListenRequest) { r.Purpose = callvault.PurposeOther }, callvault.EINVALID, "purpose"},
		{"other with text", "pnorth", func(r *callvault.ListenRequest) {
			r.Purpose, r.PurposeText = callvault.PurposeOther, "Insurance claim"
		}, "", ""},
		{"justification 9", "pnorth", func(r *callvault.ListenRequest) { r.Justification = "123456789" }, callvault.EINVALID, "justification"},
		{"justification 10 after trim", "pnorth", func(r *callvault.ListenRequest) { r.Justification = "  1234567890  " }, "", ""},
		{"justification blank", "pnorth", func(r *callvault.ListenRequest) { r.Justification = "      " }, callvault.EINVALID, "justification"},
		{"justification 2000", "pnorth", func(r *callvault.ListenRequest) { r.Justification = long }, "", ""},
		{"justification 2001", "pnorth", func(r *callvault.ListenRequest) { r.Justification = long + "x" }, callvault.EINVALID, "justification"},
		{"duration default", "pnorth", func(r *callvault.ListenRequest) { r.Duration = 0 }, "", ""},
		{"duration minimum", "pnorth", func(r *callvault.ListenRequest) { r.Duration = time.Minute }, "", ""},
		{"duration under a minute", "pnorth", func(r *callvault.ListenRequest) { r.Duration = time.Minute - time.Millisecond }, callvault.EINVALID, ""},
		{"duration 7 days", "pnorth", func(r *callvault.ListenRequest) { r.Duration = 7 * 24 * time.Hour }, "", ""},
		{"duration over 7 days", "pnorth", func(r *callvault.ListenRequest) { r.Duration = 7*24*time.Hour + time.Second }, callvault.EINVALID, ""},
		{"negative duration", "pnorth", func(r *callvault.ListenRequest) { r.Duration = -time.Hour }, callvault.EINVALID, ""},
		{"no recordings", "pnorth", func(r *callvault.ListenRequest) { r.RecordingIDs = nil }, callvault.EINVALID, ""},
		{"101 recordings", "admin", func(r *callvault.ListenRequest) { r.RecordingIDs = many(101) }, callvault.EINVALID, "at most 100"},
		{"recording twice", "pnorth", func(r *callvault.ListenRequest) { r.RecordingIDs = []string{f.n1, f.n2, f.n1} }, callvault.EINVALID, "twice"},
		{"unknown recording", "admin", func(r *callvault.ListenRequest) { r.RecordingIDs = []string{f.n1, unknown} }, callvault.EINVALID, "recording " + unknown + " not found"},
		{"recording of another academy", "pnorth", func(r *callvault.ListenRequest) { r.RecordingIDs = []string{f.n1, f.s1} }, callvault.EINVALID, "recording " + f.s1 + " not found"},
		{"principal of none", "pnone", func(r *callvault.ListenRequest) {}, callvault.EINVALID, "not found"},
		{"no listeners", "pnorth", func(r *callvault.ListenRequest) { r.ListenerIDs = nil }, callvault.EINVALID, "listener"},
		{"21 listeners", "pnorth", func(r *callvault.ListenRequest) {
			r.ListenerIDs = nil
			for i := range 21 {
				r.ListenerIDs = append(r.ListenerIDs, int64(i+1))
			}
		}, callvault.EINVALID, "at most 20"},
		{"listener twice", "pnorth", func(r *callvault.ListenRequest) { r.ListenerIDs = f.ids("lis1", "lis2", "lis1") }, callvault.EINVALID, "twice"},
		{"unknown listener", "pnorth", func(r *callvault.ListenRequest) { r.ListenerIDs = []int64{f.users["lis1"].ID, 9999} }, callvault.EINVALID, "user 9999 not found"},
		{"disabled listener", "pnorth", func(r *callvault.ListenRequest) { r.ListenerIDs = f.ids("gone") }, callvault.EINVALID, "gone is disabled"},
	}
	created := 0
	for _, tt := range tests {
		r := f.validRequest([]string{f.n1}, "lis1")
		tt.modify(r)
		call := fmt.Sprintf("CreateListenRequest(%s: by %q)", tt.name, tt.by)
		err := f.gs.CreateListenRequest(f.as(tt.by), r)
		wantCode(t, call, err, tt.code)
		if tt.msg != "" && !strings.Contains(callvault.ErrorMessage(err), tt.msg) {
			t.Errorf("%s: message %q, want it to contain %q", call, callvault.ErrorMessage(err), tt.msg)
		}
		if err != nil {
			continue
		}
		created++
		if r.ID == 0 || r.RequesterID != f.users[tt.by].ID || r.Requester != tt.by || r.State != callvault.RequestPending ||
			!r.CreatedAt.Equal(t0) || r.Duration < time.Minute || len(r.AcademyIDs) == 0 {
			t.Errorf("%s set %+v", call, r)
		}
		got, err := f.gs.FindListenRequestByID(sysCtx(), r.ID)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("%s; FindListenRequestByID(%d) =\n%+v, %v\nwant\n%+v", call, r.ID, got, err, r)
		}
	}
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM listen_requests`); n != created {
		t.Errorf("%d requests stored, want %d (failed creates leave nothing)", n, created)
	}

	// What the store fills in.
	r := f.validRequest([]string{f.u1, f.s1, f.n2, f.n1}, "lis2", "lis1")
	r.Duration = 0
	r.Justification = "  Safeguarding concern raised by the DSL.  "
	if err := f.gs.CreateListenRequest(f.as("admin"), r); err != nil {
		t.Fatal(err)
	}
	wantRecs := slices.Sorted(slices.Values([]string{f.u1, f.s1, f.n2, f.n1}))
	wantAcademies := slices.Sorted(slices.Values([]int64{unassignedID(t, f.db), f.north.ID, f.south.ID}))
	if !slices.Equal(r.RecordingIDs, wantRecs) || !slices.Equal(r.AcademyIDs, wantAcademies) ||
		!slices.Equal(r.ListenerIDs, f.ids("lis1", "lis2")) || !slices.Equal(r.Listeners, []string{"lis1", "lis2"}) ||
		r.Duration != callvault.MaxGrantDuration || r.Justification != "Safeguarding concern raised by the DSL." {
		t.Errorf("CreateListenRequest(admin, 4 recordings in 3 academies) set %+v", r)
	}
}

// TestListenRequest_scope checks who sees which request, and that
// AwaitingDecision is exactly callvault.CanDecide.
func TestListenRequest_scope(t *testing.T) {
	f := newGrantFixture(t)
	a := f.request(t, "pnorth", []string{f.n1}, "lis1")            // north, by its principal
	b := f.request(t, "admin", []string{f.s1}, "lis2")             // south
	c := f.request(t, "admin", []string{f.n1, f.s1}, "pnorth")     // mixed; pnorth listens
	d := f.request(t, "ceo", []string{f.u1}, "lis1")               // unassigned, by the CEO
	e := f.request(t, "psouth", []string{f.s1}, "psouth", "pnone") // south, by its principal
	all := []*callvault.ListenRequest{a, b, c, d, e}
	byName := map[*callvault.ListenRequest]string{a: "a", b: "b", c: "c", d: "d", e: "e"}
	source := callvault.NewContextWithActor(context.Background(), &callvault.Actor{Source: &callvault.Source{ID: 1}})

	tests := []struct {
		name string
		ctx  context.Context
		sees string // request names, in any order
		mine string
	}{
		{"system", sysCtx(), "abcde", ""},
		{"admin", f.as("admin"), "abcde", "bc"},
		{"dpo", f.as("dpo"), "abcde", ""},
		{"ceo", f.as("ceo"), "abcde", "d"},
		{"pnorth", f.as("pnorth"), "ac", "a"},
		{"psouth", f.as("psouth"), "be", "e"},
		{"pboth", f.as("pboth"), "abce", ""},
		{"pnone", f.as("pnone"), "e", ""},
		{"lis1", f.as("lis1"), "ad", ""},
		{"lis2", f.as("lis2"), "b", ""},
		{"disabled", f.as("gone"), "", ""},
		{"source", source, "", ""},
		{"nobody", context.Background(), "", ""},
	}
	names := func(rs []*callvault.ListenRequest) string {
		var s []string
		for _, r := range rs {
			for _, x := range all {
				if x.ID == r.ID {
					s = append(s, byName[x])
				}
			}
		}
		slices.Sort(s)
		return strings.Join(s, "")
	}
	for _, tt := range tests {
		got, err := f.gs.FindListenRequests(tt.ctx, callvault.RequestFilter{})
		if err != nil || names(got) != tt.sees {
			t.Errorf("FindListenRequests(%s, {}) = %q, %v; want %q", tt.name, names(got), err, tt.sees)
		}
		// Newest first.
		if ids := requestIDs(got); !slices.IsSortedFunc(ids, func(x, y int64) int { return int(y - x) }) {
			t.Errorf("FindListenRequests(%s) ids %v, want newest first", tt.name, ids)
		}
		for _, r := range all {
			want := callvault.ENOTFOUND
			if strings.Contains(tt.sees, byName[r]) {
				want = ""
			}
			_, err := f.gs.FindListenRequestByID(tt.ctx, r.ID)
			wantCode(t, fmt.Sprintf("FindListenRequestByID(%s, %s)", tt.name, byName[r]), err, want)
		}
		got, err = f.gs.FindListenRequests(tt.ctx, callvault.RequestFilter{Mine: true})
		if err != nil || names(got) != tt.mine {
			t.Errorf("FindListenRequests(%s, Mine) = %q, %v; want %q", tt.name, names(got), err, tt.mine)
		}

		// AwaitingDecision is CanDecide, computed in SQL.
		var want []string
		if a := callvault.ActorFromContext(tt.ctx); a != nil {
			for _, r := range all {
				full, _ := f.gs.FindListenRequestByID(sysCtx(), r.ID)
				if callvault.CanDecide(a, full) {
					want = append(want, byName[r])
				}
			}
		}
		slices.Sort(want)
		got, err = f.gs.FindListenRequests(tt.ctx, callvault.RequestFilter{AwaitingDecision: true})
		if err != nil || names(got) != strings.Join(want, "") {
			t.Errorf("FindListenRequests(%s, AwaitingDecision) = %q, %v; want %q (CanDecide)", tt.name, names(got), err, strings.Join(want, ""))
		}
	}
	// The CEO decides everything but their own; pboth all but unassigned.
	for _, tt := range []struct {
		login, want string
	}{{"ceo", "abce"}, {"ceo2", "abcde"}, {"pboth", "abce"}, {"pnorth", ""}, {"psouth", "b"}, {"admin", ""}, {"lis1", ""}} {
		got, _ := f.gs.FindListenRequests(f.as(tt.login), callvault.RequestFilter{AwaitingDecision: true})
		if names(got) != tt.want {
			t.Errorf("FindListenRequests(%s, AwaitingDecision) = %q, want %q", tt.login, names(got), tt.want)
		}
	}

	// Decided requests leave the queue; State filters.
	f.approve(t, "ceo", b)
	for _, tt := range []struct {
		f    callvault.RequestFilter
		want string
	}{
		{callvault.RequestFilter{State: callvault.RequestPending}, "acde"},
		{callvault.RequestFilter{State: callvault.RequestApproved}, "b"},
		{callvault.RequestFilter{State: callvault.RequestDeclined}, ""},
		{callvault.RequestFilter{AwaitingDecision: true}, "ace"},
		{callvault.RequestFilter{AwaitingDecision: true, State: callvault.RequestApproved}, ""},
		{callvault.RequestFilter{Mine: true, State: callvault.RequestPending}, "d"},
		{callvault.RequestFilter{Mine: true, State: callvault.RequestApproved}, ""},
	} {
		got, err := f.gs.FindListenRequests(f.as("ceo"), tt.f)
		if err != nil || names(got) != tt.want {
			t.Errorf("FindListenRequests(ceo, %+v) = %q, %v; want %q", tt.f, names(got), err, tt.want)
		}
	}
	_, err := f.gs.FindListenRequests(f.as("ceo"), callvault.RequestFilter{State: "maybe"})
	wantCode(t, `FindListenRequests(State "maybe")`, err, callvault.EINVALID)
}

func TestDecideListenRequest(t *testing.T) {
	f := newGrantFixture(t)
	north, mixed := []string{f.n1, f.n2}, []string{f.n1, f.s1}
	tests := []struct {
		name       string
		by         string // the requester
		recordings []string
		listeners  []string
		decider    string
		approve    bool
		note       string
		code       string
	}{
		{"self-approval", "pnorth", north, []string{"lis1"}, "pnorth", true, "ok by me", callvault.EFORBIDDEN},
		{"self-decline", "pnorth", north, []string{"lis1"}, "pnorth", false, "changed my mind", callvault.EFORBIDDEN},
		{"CEO self-approval", "ceo", north, []string{"lis1"}, "ceo", true, "ok by me", callvault.EFORBIDDEN},
		{"principal of the academy", "admin", north, []string{"lis1"}, "pnorth", true, "Approved.", ""},
		{"principal declines", "admin", north, []string{"lis1"}, "pnorth", false, "Not needed.", ""},
		{"principal of another academy", "admin", north, []string{"lis1"}, "psouth", true, "Approved.", callvault.ENOTFOUND},
		{"principal of one of two academies", "admin", mixed, []string{"lis1"}, "pnorth", true, "Approved.", callvault.ENOTFOUND},
		{"principal of one of two, named listener", "admin", mixed, []string{"pnorth"}, "pnorth", true, "Approved.", callvault.EFORBIDDEN},
		{"principal of another academy, principal's request", "pnorth", []string{f.n1}, []string{"lis1"}, "psouth", true, "Approved.", callvault.ENOTFOUND},
		{"principal of both academies", "admin", mixed, []string{"lis1"}, "pboth", true, "Approved.", ""},
		{"principal of none", "admin", north, []string{"pnone"}, "pnone", true, "Approved.", callvault.EFORBIDDEN},
		{"CEO", "pnorth", north, []string{"lis1", "lis2"}, "ceo", true, "Approved by the CEO.", ""},
		{"CEO, mixed", "admin", mixed, []string{"lis2"}, "ceo", true, "Approved by the CEO.", ""},
		{"CEO, unassigned", "admin", []string{f.u1}, []string{"lis1"}, "ceo", true, "Approved.", ""},
		{"admin", "pnorth", north, []string{"lis1"}, "admin", true, "Approved.", callvault.EFORBIDDEN},
		{"dpo", "pnorth", north, []string{"lis1"}, "dpo", true, "Approved.", callvault.EFORBIDDEN},
		{"named listener", "pnorth", north, []string{"lis1"}, "lis1", true, "Approved.", callvault.EFORBIDDEN},
		{"other listener", "pnorth", north, []string{"lis1"}, "lis2", true, "Approved.", callvault.ENOTFOUND},
		{"disabled user", "pnorth", north, []string{"lis1"}, "gone", true, "Approved.", callvault.ENOTFOUND},
		{"nobody", "pnorth", north, []string{"lis1"}, "", true, "Approved.", callvault.ENOTFOUND},
		{"note too short", "pnorth", north, []string{"lis1"}, "ceo", true, "ok", callvault.EINVALID},
		{"note blank", "pnorth", north, []string{"lis1"}, "ceo", false, "   ", callvault.EINVALID},
		{"note too long", "pnorth", north, []string{"lis1"}, "ceo", false, strings.Repeat("x", 2001), callvault.EINVALID},
	}
	for i, tt := range tests {
		f.clock.Add(time.Duration(i)*time.Minute + 700*time.Millisecond)
		r := f.request(t, tt.by, tt.recordings, tt.listeners...)
		call := fmt.Sprintf("DecideListenRequest(%s: request %d by %s, approve=%v, as %q)", tt.name, r.ID, tt.by, tt.approve, tt.decider)
		before := countRows(t, f.db, `SELECT COUNT(*) FROM grants`)
		got, grants, err := f.gs.DecideListenRequest(f.as(tt.decider), r.ID, tt.approve, tt.note)
		wantCode(t, call, err, tt.code)
		after := countRows(t, f.db, `SELECT COUNT(*) FROM grants`)
		stored, _ := f.gs.FindListenRequestByID(sysCtx(), r.ID)
		if err != nil {
			if stored.State != callvault.RequestPending || after != before {
				t.Errorf("%s failed but left state %s and %d new grants", call, stored.State, after-before)
			}
			continue
		}
		now := f.clock.Now()
		wantState := map[bool]string{true: callvault.RequestApproved, false: callvault.RequestDeclined}[tt.approve]
		if got.State != wantState || got.DeciderID != f.users[tt.decider].ID || got.Decider != tt.decider ||
			!got.DecidedAt.Equal(now.Truncate(time.Millisecond)) || got.DecisionNote != strings.TrimSpace(tt.note) {
			t.Errorf("%s = %+v", call, got)
		}
		if !reflect.DeepEqual(stored, got) {
			t.Errorf("%s returned\n%+v\nbut stored\n%+v", call, got, stored)
		}
		if !tt.approve {
			if len(grants) != 0 || after != before {
				t.Errorf("%s: decline created %d grants (%d stored)", call, len(grants), after-before)
			}
			continue
		}
		if len(grants) != len(tt.listeners) || after-before != len(tt.listeners) {
			t.Fatalf("%s: %d grants (%d stored), want one per listener (%d)", call, len(grants), after-before, len(tt.listeners))
		}
		from := now.Truncate(time.Second)
		for j, g := range grants {
			want := &callvault.Grant{ID: g.ID, RequestID: r.ID, ListenerID: f.users[tt.listeners[j]].ID, Listener: tt.listeners[j],
				RecordingIDs: r.RecordingIDs, AcademyIDs: r.AcademyIDs, From: from, Until: from.Add(r.Duration),
				GrantedBy: f.users[tt.decider].ID}
			if !reflect.DeepEqual(g, want) {
				t.Errorf("%s: grant %d =\n%+v\nwant\n%+v", call, j, g, want)
			}
			stored, err := f.gs.FindGrantByID(sysCtx(), g.ID)
			if err != nil || !reflect.DeepEqual(stored, g) {
				t.Errorf("%s: FindGrantByID(%d) =\n%+v, %v\nwant\n%+v", call, g.ID, stored, err, g)
			}
		}
	}

	// A decision is final.
	r := f.request(t, "pnorth", north, "lis1")
	f.approve(t, "ceo", r)
	for _, tt := range []struct {
		by      string
		approve bool
	}{{"ceo", true}, {"ceo", false}, {"ceo2", false}, {"pboth", true}} {
		_, _, err := f.gs.DecideListenRequest(f.as(tt.by), r.ID, tt.approve, "Second thoughts.")
		wantCode(t, fmt.Sprintf("DecideListenRequest(%d, approve=%v, as %s) after approval", r.ID, tt.approve, tt.by), err, callvault.ECONFLICT)
	}
	r = f.request(t, "pnorth", north, "lis1")
	if _, _, err := f.gs.DecideListenRequest(f.as("ceo"), r.ID, false, "No."); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.gs.DecideListenRequest(f.as("ceo2"), r.ID, true, "Yes after all.")
	wantCode(t, fmt.Sprintf("DecideListenRequest(%d, approve, as ceo2) after decline", r.ID), err, callvault.ECONFLICT)
	if n := countRows(t, f.db, `SELECT COUNT(*) FROM grants WHERE request_id = ?`, r.ID); n != 0 {
		t.Errorf("declined request %d has %d grants", r.ID, n)
	}
	_, _, err = f.gs.DecideListenRequest(f.as("ceo"), 99999, true, "Approved.")
	wantCode(t, "DecideListenRequest(99999, approve, as ceo)", err, callvault.ENOTFOUND)

	// A listener disabled since the request: approval fails whole.
	r = f.request(t, "pnorth", north, "lis1", "lis2")
	if err := NewUserService(f.db).DisableUser(sysCtx(), f.users["lis2"].ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.gs.DecideListenRequest(f.as("ceo"), r.ID, true, "Approved.")
	wantCode(t, "DecideListenRequest(approve, a listener disabled since)", err, callvault.EINVALID)
	if got, _ := f.gs.FindListenRequestByID(sysCtx(), r.ID); got.State != callvault.RequestPending {
		t.Errorf("request %d is %s after a failed approval, want pending", r.ID, got.State)
	}
}

// TestGrant_expiry: a grant runs from the decision (to the second) for
// exactly its duration, and expires by itself.
func TestGrant_expiry(t *testing.T) {
	f := newGrantFixture(t)
	r := f.validRequest([]string{f.n1, f.s1}, "lis1")
	r.Duration = 90 * time.Minute
	if err := f.gs.CreateListenRequest(f.as("admin"), r); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(10*time.Minute + 999*time.Millisecond)
	g := f.approve(t, "ceo", r)[0]
	from := t0.Add(10 * time.Minute)
	if !g.From.Equal(from) || !g.Until.Equal(from.Add(90*time.Minute)) {
		t.Fatalf("grant runs %v to %v, want %v to %v", g.From, g.Until, from, from.Add(90*time.Minute))
	}
	lis := f.users["lis1"].ID
	for _, tt := range []struct {
		at   time.Time
		code string
	}{
		{from.Add(-time.Millisecond), callvault.ENOTFOUND},
		{from, ""},
		{from.Add(time.Hour), ""},
		{g.Until.Add(-time.Millisecond), ""},
		{g.Until.Add(-time.Nanosecond), ""},
		{g.Until, callvault.ENOTFOUND},
		{g.Until.Add(time.Second), callvault.ENOTFOUND},
	} {
		for _, rec := range []string{f.n1, f.s1} {
			got, err := f.gs.ActiveGrant(context.Background(), lis, rec, tt.at)
			call := fmt.Sprintf("ActiveGrant(lis1, %s, %v)", rec, tt.at)
			wantCode(t, call, err, tt.code)
			if err == nil && !reflect.DeepEqual(got, g) {
				t.Errorf("%s =\n%+v\nwant\n%+v", call, got, g)
			}
			if err == nil != g.Active(tt.at) {
				t.Errorf("%s: found=%v but Grant.Active=%v", call, err == nil, g.Active(tt.at))
			}
		}
		active, err := f.gs.FindGrants(f.as("admin"), callvault.GrantFilter{ActiveAt: tt.at})
		if want := map[bool]int{true: 1, false: 0}[tt.code == ""]; err != nil || len(active) != want {
			t.Errorf("FindGrants(ActiveAt %v) = %d grants, %v; want %d", tt.at, len(active), err, want)
		}
	}
	// Not for anyone else, nor another recording.
	for _, tt := range []struct {
		user int64
		rec  string
	}{{f.users["lis2"].ID, f.n1}, {f.users["ceo"].ID, f.n1}, {lis, f.n2}, {lis, "nope"}, {0, f.n1}} {
		_, err := f.gs.ActiveGrant(context.Background(), tt.user, tt.rec, from.Add(time.Minute))
		wantCode(t, fmt.Sprintf("ActiveGrant(%d, %s)", tt.user, tt.rec), err, callvault.ENOTFOUND)
	}
	// Revoked: gone at once.
	f.clock.Add(time.Minute)
	if _, err := f.gs.RevokeGrant(f.as("admin"), g.ID, "Complaint withdrawn."); err != nil {
		t.Fatal(err)
	}
	_, err := f.gs.ActiveGrant(context.Background(), lis, f.n1, from.Add(2*time.Minute))
	wantCode(t, "ActiveGrant after revocation", err, callvault.ENOTFOUND)
}

func TestRevokeGrant(t *testing.T) {
	f := newGrantFixture(t)
	tests := []struct {
		name       string
		recordings []string
		decider    string
		revoker    string
		reason     string
		code       string
	}{
		{"admin", []string{f.n1}, "ceo", "admin", "Complaint withdrawn.", ""},
		{"the decider", []string{f.n1}, "pnorth", "pnorth", "Granted in error.", ""},
		{"the decider, CEO", []string{f.s1}, "ceo", "ceo", "Granted in error.", ""},
		{"another CEO", []string{f.s1}, "ceo", "ceo2", "No longer needed.", ""},
		{"principal of the academy", []string{f.n1}, "ceo", "pnorth", "No longer needed.", ""},
		{"principal of both", []string{f.n1, f.s1}, "ceo", "pboth", "No longer needed.", ""},
		{"principal of one of two", []string{f.n1, f.s1}, "ceo", "pnorth", "No longer needed.", callvault.ENOTFOUND},
		{"principal of another academy", []string{f.n1}, "ceo", "psouth", "No longer needed.", callvault.ENOTFOUND},
		{"the listener", []string{f.n1}, "ceo", "lis1", "I am done.", callvault.EFORBIDDEN},
		{"another listener", []string{f.n1}, "ceo", "lis2", "Not mine.", callvault.ENOTFOUND},
		{"dpo", []string{f.n1}, "ceo", "dpo", "Not proportionate.", callvault.EFORBIDDEN},
		{"nobody", []string{f.n1}, "ceo", "", "No longer needed.", callvault.ENOTFOUND},
		{"no reason", []string{f.n1}, "ceo", "admin", "  ", callvault.EINVALID},
	}
	for _, tt := range tests {
		r := f.request(t, "admin", tt.recordings, "lis1")
		g := f.approve(t, tt.decider, r)[0]
		f.clock.Add(time.Minute + 1500*time.Microsecond)
		call := fmt.Sprintf("RevokeGrant(%s: grant %d by %s, as %q)", tt.name, g.ID, tt.decider, tt.revoker)
		got, err := f.gs.RevokeGrant(f.as(tt.revoker), g.ID, tt.reason)
		wantCode(t, call, err, tt.code)
		stored, _ := f.gs.FindGrantByID(sysCtx(), g.ID)
		if err != nil {
			if !stored.RevokedAt.IsZero() {
				t.Errorf("%s failed but the grant is revoked", call)
			}
			continue
		}
		now := f.clock.Now().Truncate(time.Millisecond)
		if !got.RevokedAt.Equal(now) || got.RevokedBy != f.users[tt.revoker].ID || !reflect.DeepEqual(stored, got) {
			t.Errorf("%s =\n%+v\nstored\n%+v\nwant revoked at %v by %d", call, got, stored, now, f.users[tt.revoker].ID)
		}
		if n := countRows(t, f.db, `SELECT COUNT(*) FROM grants WHERE id = ? AND revoke_reason = ?`, g.ID, strings.TrimSpace(tt.reason)); n != 1 {
			t.Errorf("%s: reason not stored", call)
		}
		// Once.
		_, err = f.gs.RevokeGrant(f.as(tt.revoker), g.ID, "Again.")
		wantCode(t, call+" twice", err, callvault.ECONFLICT)
	}

	// Expired: nothing to revoke.
	r := f.request(t, "admin", []string{f.n1}, "lis1")
	r2 := f.request(t, "admin", []string{f.n1}, "lis2")
	g := f.approve(t, "ceo", r)[0]
	g2 := f.approve(t, "ceo", r2)[0]
	f.clock.Add(g.Until.Add(-time.Millisecond).Sub(f.clock.Now()))
	if _, err := f.gs.RevokeGrant(f.as("admin"), g2.ID, "Just in time."); err != nil {
		t.Errorf("RevokeGrant(%d) a millisecond before expiry: %v", g2.ID, err)
	}
	f.clock.Add(time.Millisecond)
	_, err := f.gs.RevokeGrant(f.as("admin"), g.ID, "Too late.")
	wantCode(t, "RevokeGrant(expired)", err, callvault.ECONFLICT)
	_, err = f.gs.RevokeGrant(f.as("admin"), 99999, "No such grant.")
	wantCode(t, "RevokeGrant(99999)", err, callvault.ENOTFOUND)
}

func TestBreakGlass(t *testing.T) {
	f := newGrantFixture(t)
	f.clock.Add(1234 * time.Millisecond)
	reason := "Police request, child at risk."
	tests := []struct {
		name       string
		by         string
		recordings []string
		reason     string
		code       string
	}{
		{"admin", "admin", []string{f.n1}, reason, ""},
		{"dpo, every academy", "dpo", []string{f.u1, f.s1, f.n1}, reason, ""},
		{"ceo", "ceo", []string{f.n1}, reason, callvault.EFORBIDDEN},
		{"principal", "pnorth", []string{f.n1}, reason, callvault.EFORBIDDEN},
		{"listener", "lis1", []string{f.n1}, reason, callvault.EFORBIDDEN},
		{"nobody", "", []string{f.n1}, reason, callvault.EFORBIDDEN},
		{"short reason", "admin", []string{f.n1}, "urgent!", callvault.EINVALID},
		{"long reason", "admin", []string{f.n1}, strings.Repeat("x", 2001), callvault.EINVALID},
		{"no recordings", "admin", nil, reason, callvault.EINVALID},
		{"recording twice", "admin", []string{f.n1, f.n1}, reason, callvault.EINVALID},
		{"unknown recording", "admin", []string{f.n1, "nope"}, reason, callvault.EINVALID},
	}
	for _, tt := range tests {
		call := fmt.Sprintf("BreakGlass(%s: as %q, %v)", tt.name, tt.by, tt.recordings)
		before := countRows(t, f.db, `SELECT COUNT(*) FROM grants`)
		g, err := f.gs.BreakGlass(f.as(tt.by), tt.recordings, tt.reason)
		wantCode(t, call, err, tt.code)
		if err != nil {
			if n := countRows(t, f.db, `SELECT COUNT(*) FROM grants`); n != before {
				t.Errorf("%s failed but stored a grant", call)
			}
			continue
		}
		from := t0.Add(time.Second)
		u := f.users[tt.by]
		if g.ID == 0 || !g.BreakGlass || g.ListenerID != u.ID || g.GrantedBy != u.ID || g.RequestID != 0 ||
			!g.From.Equal(from) || !g.Until.Equal(from.Add(callvault.BreakGlassPeriod)) || g.Reason != reason ||
			!slices.Equal(g.RecordingIDs, slices.Sorted(slices.Values(tt.recordings))) {
			t.Errorf("%s = %+v", call, g)
		}
		stored, err := f.gs.FindGrantByID(f.as(tt.by), g.ID)
		if err != nil || !reflect.DeepEqual(stored, g) {
			t.Errorf("%s; FindGrantByID(%d) =\n%+v, %v\nwant\n%+v", call, g.ID, stored, err, g)
		}
		if got, err := f.gs.ActiveGrant(context.Background(), u.ID, tt.recordings[0], from.Add(callvault.BreakGlassPeriod-time.Millisecond)); err != nil || got.ID != g.ID {
			t.Errorf("%s: ActiveGrant just before the end = %v, %v", call, got, err)
		}
	}
}

func TestRatifyBreakGlass(t *testing.T) {
	f := newGrantFixture(t)
	open := func(by string, recordings ...string) *callvault.Grant {
		g, err := f.gs.BreakGlass(f.as(by), recordings, "Police request, child at risk.")
		if err != nil {
			t.Fatalf("BreakGlass(%s): %v", by, err)
		}
		return g
	}
	normal := f.approve(t, "ceo", f.request(t, "admin", []string{f.n1}, "lis1"))[0]
	tests := []struct {
		name  string
		grant *callvault.Grant
		by    string
		note  string
		code  string
	}{
		{"CEO", open("admin", f.n1, f.s1), "ceo", "Justified.", ""},
		{"CEO, dpo's", open("dpo", f.u1), "ceo", "Justified.", ""},
		{"principal of the academy", open("admin", f.n1), "pnorth", "Justified.", ""},
		{"principal of one of two", open("admin", f.n1, f.s1), "pnorth", "Justified.", callvault.ENOTFOUND},
		{"principal of another academy", open("admin", f.n1), "psouth", "Justified.", callvault.ENOTFOUND},
		{"the opener", open("admin", f.n1), "admin", "I was right.", callvault.EFORBIDDEN},
		{"the opener, dpo", open("dpo", f.n1), "dpo", "I was right.", callvault.EFORBIDDEN},
		{"another admin-like", open("dpo", f.n1), "admin", "Fine by me.", callvault.EFORBIDDEN},
		{"listener", open("admin", f.n1), "lis1", "Fine by me.", callvault.ENOTFOUND},
		{"not break-glass", normal, "ceo", "Justified.", callvault.ECONFLICT},
		{"no note", open("admin", f.n1), "ceo", "", callvault.EINVALID},
	}
	for _, tt := range tests {
		call := fmt.Sprintf("RatifyBreakGlass(%s: grant %d, as %q)", tt.name, tt.grant.ID, tt.by)
		f.clock.Add(time.Hour)
		got, err := f.gs.RatifyBreakGlass(f.as(tt.by), tt.grant.ID, tt.note)
		wantCode(t, call, err, tt.code)
		stored, _ := f.gs.FindGrantByID(sysCtx(), tt.grant.ID)
		if err != nil {
			if !stored.RatifiedAt.IsZero() {
				t.Errorf("%s failed but the grant is ratified", call)
			}
			continue
		}
		if got.RatifiedBy != f.users[tt.by].ID || !got.RatifiedAt.Equal(f.clock.Now()) || !reflect.DeepEqual(stored, got) {
			t.Errorf("%s =\n%+v\nstored\n%+v", call, got, stored)
		}
		if got.Unratified(f.clock.Now().Add(callvault.RatifyWithin)) {
			t.Errorf("%s: still Unratified", call)
		}
		_, err = f.gs.RatifyBreakGlass(f.as("ceo2"), tt.grant.ID, "Again.")
		wantCode(t, call+" twice", err, callvault.ECONFLICT)
	}
	// The break-glass filter: the ones awaiting review.
	bg, err := f.gs.FindGrants(f.as("ceo"), callvault.GrantFilter{BreakGlass: true})
	if err != nil || len(bg) != len(tests)-1 {
		t.Errorf("FindGrants(BreakGlass) = %d grants, %v; want %d", len(bg), err, len(tests)-1)
	}
	for _, g := range bg {
		if !g.BreakGlass {
			t.Errorf("FindGrants(BreakGlass) returned grant %d, not break-glass", g.ID)
		}
	}
}

// TestFindGrants_scope: who sees which grant; a listener asking for someone
// else's grant by id gets ENOTFOUND (no IDOR).
func TestFindGrants_scope(t *testing.T) {
	f := newGrantFixture(t)
	a := f.approve(t, "pnorth", f.request(t, "admin", []string{f.n1}, "lis1"))[0]            // north, granted by pnorth
	b := f.approve(t, "ceo", f.request(t, "admin", []string{f.s1}, "lis2"))[0]               // south
	c := f.approve(t, "ceo", f.request(t, "admin", []string{f.n1, f.s1}, "pnorth"))[0]       // mixed, held by pnorth
	d := f.approve(t, "ceo", f.request(t, "admin", []string{f.u1}, "lis1"))[0]               // unassigned
	e, err := f.gs.BreakGlass(f.as("dpo"), []string{f.s1}, "Police request, child at risk.") // south, dpo's
	if err != nil {
		t.Fatal(err)
	}
	all := []*callvault.Grant{a, b, c, d, e}
	byName := map[int64]string{a.ID: "a", b.ID: "b", c.ID: "c", d.ID: "d", e.ID: "e"}
	names := func(gs []*callvault.Grant) string {
		var s []string
		for _, g := range gs {
			s = append(s, byName[g.ID])
		}
		slices.Sort(s)
		return strings.Join(s, "")
	}
	tests := []struct {
		name string
		ctx  context.Context
		sees string
	}{
		{"system", sysCtx(), "abcde"},
		{"admin", f.as("admin"), "abcde"},
		{"dpo", f.as("dpo"), "abcde"},
		{"ceo", f.as("ceo"), "abcde"},
		{"pnorth", f.as("pnorth"), "ac"}, // granted a, holds c
		{"psouth", f.as("psouth"), "be"},
		{"pboth", f.as("pboth"), "abce"},
		{"pnone", f.as("pnone"), ""},
		{"lis1", f.as("lis1"), "ad"},
		{"lis2", f.as("lis2"), "b"},
		{"disabled", f.as("gone"), ""},
		{"nobody", context.Background(), ""},
	}
	for _, tt := range tests {
		got, err := f.gs.FindGrants(tt.ctx, callvault.GrantFilter{})
		if err != nil || names(got) != tt.sees {
			t.Errorf("FindGrants(%s, {}) = %q, %v; want %q", tt.name, names(got), err, tt.sees)
		}
		if ids := grantIDs(got); !slices.IsSortedFunc(ids, func(x, y int64) int { return int(y - x) }) {
			t.Errorf("FindGrants(%s) ids %v, want newest first", tt.name, ids)
		}
		for _, g := range all {
			want := callvault.ENOTFOUND
			if strings.Contains(tt.sees, byName[g.ID]) {
				want = ""
			}
			_, err := f.gs.FindGrantByID(tt.ctx, g.ID)
			wantCode(t, fmt.Sprintf("FindGrantByID(%s, %s)", tt.name, byName[g.ID]), err, want)
		}
	}
	// Filters, as the CEO.
	lis1 := f.users["lis1"].ID
	for _, tt := range []struct {
		f    callvault.GrantFilter
		want string
	}{
		{callvault.GrantFilter{ListenerID: lis1}, "ad"},
		{callvault.GrantFilter{RecordingID: f.s1}, "bce"},
		{callvault.GrantFilter{RecordingID: f.n2}, ""},
		{callvault.GrantFilter{BreakGlass: true}, "e"},
		{callvault.GrantFilter{ActiveAt: t0}, "abcde"},
		{callvault.GrantFilter{ActiveAt: t0.Add(-time.Millisecond)}, ""},
		{callvault.GrantFilter{ActiveAt: t0.Add(24*time.Hour - time.Millisecond)}, "abcde"},
		{callvault.GrantFilter{ActiveAt: t0.Add(24 * time.Hour)}, ""},
		{callvault.GrantFilter{ActiveAt: t0.Add(24*time.Hour - time.Millisecond), RecordingID: f.s1, ListenerID: f.users["dpo"].ID}, "e"},
	} {
		got, err := f.gs.FindGrants(f.as("ceo"), tt.f)
		if err != nil || names(got) != tt.want {
			t.Errorf("FindGrants(ceo, %+v) = %q, %v; want %q", tt.f, names(got), err, tt.want)
		}
	}
	// A listener filtering for someone else's grants sees none of them.
	got, err := f.gs.FindGrants(f.as("lis2"), callvault.GrantFilter{ListenerID: lis1})
	if err != nil || len(got) != 0 {
		t.Errorf("FindGrants(lis2, ListenerID lis1) = %q, %v; want none", names(got), err)
	}
}

// TestGrant_audit: mutations describe themselves in the pending entry,
// which commits with them; a refusal by scope is recorded as denied.
func TestGrant_audit(t *testing.T) {
	f := newGrantFixture(t)
	audit := NewAuditStore(f.db)
	pending := func(login, action string) (context.Context, *callvault.PendingAudit) {
		e := callvault.AuditEvent{Action: action}
		e.SetActor(callvault.ActorFromContext(f.as(login)))
		p := callvault.NewPendingAudit(e)
		return callvault.WithPendingAudit(f.as(login), p), p
	}
	ctx, p := pending("admin", "listen_request.create")
	r := f.validRequest([]string{f.s1, f.n1}, "lis1", "lis2")
	if err := f.gs.CreateListenRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	done, e := p.Done()
	want := map[string]string{"purpose": callvault.PurposeComplaint, "recordings": "2", "listeners": "lis1,lis2", "duration": "24h0m0s"}
	if !done || e.TargetType != "listen_request" || e.TargetID != fmt.Sprint(r.ID) || e.AcademyID != r.AcademyIDs[0] ||
		!reflect.DeepEqual(e.Details, want) || e.Outcome != callvault.OutcomeAllowed {
		t.Errorf("CreateListenRequest audit entry: done=%v %+v", done, e)
	}

	ctx, p = pending("psouth", "listen_request.decide")
	_, _, err := f.gs.DecideListenRequest(ctx, r.ID, true, "Approved.")
	wantCode(t, "DecideListenRequest(as psouth)", err, callvault.ENOTFOUND)
	p.Commit(func(*callvault.AuditEvent) error { return nil }) // what the web layer does
	if _, e := p.Done(); e.Outcome != callvault.OutcomeDenied || e.TargetID != fmt.Sprint(r.ID) {
		t.Errorf("DecideListenRequest(as psouth) audit entry %+v, want denied, target %d", e, r.ID)
	}

	ctx, p = pending("ceo", "listen_request.decide")
	_, gs, err := f.gs.DecideListenRequest(ctx, r.ID, true, "Approved for the complaint.")
	if err != nil {
		t.Fatal(err)
	}
	done, e = p.Done()
	want = map[string]string{"decision": "approve", "listeners": "lis1,lis2", "until": gs[0].Until.Format(time.RFC3339),
		"grants": fmt.Sprintf("%d,%d", gs[0].ID, gs[1].ID)}
	if !done || e.Action != "listen_request.decide" || e.TargetType != "listen_request" || e.TargetID != fmt.Sprint(r.ID) ||
		e.AcademyID != r.AcademyIDs[0] || !reflect.DeepEqual(e.Details, want) || e.Reason != "Approved for the complaint." {
		t.Errorf("DecideListenRequest audit entry: done=%v %+v", done, e)
	}

	ctx, p = pending("ceo", "grant.revoke")
	if _, err := f.gs.RevokeGrant(ctx, gs[0].ID, "Complaint withdrawn."); err != nil {
		t.Fatal(err)
	}
	if done, e := p.Done(); !done || e.TargetType != "grant" || e.TargetID != fmt.Sprint(gs[0].ID) || e.Reason != "Complaint withdrawn." {
		t.Errorf("RevokeGrant audit entry: done=%v %+v", done, e)
	}
	ctx, p = pending("dpo", "grant.break_glass")
	bg, err := f.gs.BreakGlass(ctx, []string{f.s1}, "Police request, child at risk.")
	if err != nil {
		t.Fatal(err)
	}
	if done, e := p.Done(); !done || e.TargetType != "grant" || e.TargetID != fmt.Sprint(bg.ID) || e.AcademyID != f.south.ID ||
		e.Details["break_glass"] != "true" {
		t.Errorf("BreakGlass audit entry: done=%v %+v", done, e)
	}
	ctx, p = pending("psouth", "grant.ratify")
	if _, err := f.gs.RatifyBreakGlass(ctx, bg.ID, "Justified."); err != nil {
		t.Fatal(err)
	}
	if done, e := p.Done(); !done || e.TargetID != fmt.Sprint(bg.ID) || e.Details["ratified"] != "true" {
		t.Errorf("RatifyBreakGlass audit entry: done=%v %+v", done, e)
	}

	// Stored with the changes, in order.
	var got []string
	for _, e := range walkAll(t, audit) {
		got = append(got, e.Action+" "+e.TargetType+" "+e.TargetID)
	}
	wantTrail := []string{
		fmt.Sprintf("listen_request.create listen_request %d", r.ID),
		fmt.Sprintf("listen_request.decide listen_request %d", r.ID),
		fmt.Sprintf("grant.revoke grant %d", gs[0].ID),
		fmt.Sprintf("grant.break_glass grant %d", bg.ID),
		fmt.Sprintf("grant.ratify grant %d", bg.ID),
	}
	if !slices.Equal(got, wantTrail) {
		t.Errorf("audit trail %q, want %q", got, wantTrail)
	}

	// An entry that cannot be written undoes the change.
	r2 := f.request(t, "admin", []string{f.n1}, "lis1")
	bad := callvault.NewPendingAudit(callvault.AuditEvent{}) // no action: invalid
	_, _, err = f.gs.DecideListenRequest(callvault.WithPendingAudit(f.as("ceo"), bad), r2.ID, true, "Approved.")
	if err == nil {
		t.Errorf("DecideListenRequest with an unwritable audit entry succeeded")
	}
	if got, _ := f.gs.FindListenRequestByID(sysCtx(), r2.ID); got.State != callvault.RequestPending ||
		countRows(t, f.db, `SELECT COUNT(*) FROM grants WHERE request_id = ?`, r2.ID) != 0 {
		t.Errorf("request %d is %s after its audit entry failed, want pending without grants", r2.ID, got.State)
	}
}

// TestActiveGrantPlan checks that the hot path reads grant_recordings by its
// primary key (recording, listener), grants by id, and the grant's
// recordings by index, with and without planner statistics.
func TestActiveGrantPlan(t *testing.T) {
	f := newGrantFixture(t)
	for i := range 60 {
		r := f.request(t, "admin", []string{[]string{f.n1, f.n2, f.s1}[i%3]}, []string{"lis1", "lis2", "pnorth"}[i%3])
		f.approve(t, "ceo", r)
	}
	for _, stats := range []string{"no statistics", "analyzed"} {
		if stats == "analyzed" {
			if _, err := f.db.writer.Exec("ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		plan := explain(t, f.db, activeGrantSQL, activeGrantArgs(f.users["lis1"].ID, f.n1, t0)...)
		t.Logf("ActiveGrant, %s:\n%s\n%s", stats, activeGrantSQL, plan)
		for _, want := range []string{
			"SEARCH gr USING PRIMARY KEY (recording_id=? AND listener_id=?)",
			"SEARCH a USING INTEGER PRIMARY KEY (rowid=?)",
			"SEARCH g USING INTEGER PRIMARY KEY (rowid=?)",
			"SEARCH x USING COVERING INDEX grant_recordings_grant (grant_id=?)",
			"SEARCH r USING INDEX sqlite_autoindex_recordings_1 (id=?)",
		} {
			if !strings.Contains(plan, want) {
				t.Errorf("ActiveGrant, %s: plan lacks %q:\n%s", stats, want, plan)
			}
		}
		noFullScan(t, "ActiveGrant, "+stats, plan, "f") // f: the one grant found
	}
}

// noFullScan fails on a SCAN of a table without an index; subqueries
// (by alias) are allowed.
func noFullScan(t testing.TB, name, plan string, subqueries ...string) {
	t.Helper()
	for _, line := range strings.Split(plan, "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, "SCAN ") && !strings.Contains(l, "USING") &&
			!slices.Contains(subqueries, strings.TrimPrefix(l, "SCAN ")) {
			t.Errorf("%s: full scan %q in plan:\n%s", name, l, plan)
		}
	}
}

// TestGrantListPlans checks that the lists people open most read an index
// that narrows them to what they ask for: the decision queue (pending
// requests), a listener's own requests and grants, who may listen now,
// break-glass grants to ratify, the grants of a recording.
func TestGrantListPlans(t *testing.T) {
	f := newGrantFixture(t)
	for i := range 120 { // a grant a day, for a day: four months of history
		f.clock.Add(24 * time.Hour)
		r := f.request(t, []string{"admin", "pnorth", "dpo"}[i%3], [][]string{{f.n1}, {f.n1, f.n2}, {f.s1}}[i%3],
			[]string{"lis1", "lis2", "pboth"}[i%3])
		if i%4 != 0 {
			f.approve(t, "ceo", r)
		}
	}
	actor := func(login string) *callvault.Actor { return callvault.ActorFromContext(f.as(login)) }
	const (
		pending   = "SEARCH q USING INDEX listen_requests_state (state=?)"
		listenerQ = "SEARCH l USING COVERING INDEX listen_request_listeners_user (user_id=?)"
	)
	requests := []struct {
		name  string
		login string
		f     callvault.RequestFilter
		want  []string
	}{
		{"queue, CEO", "ceo", callvault.RequestFilter{AwaitingDecision: true}, []string{pending}},
		{"queue, principal", "pnorth", callvault.RequestFilter{AwaitingDecision: true}, []string{pending}},
		{"pending, admin", "admin", callvault.RequestFilter{State: callvault.RequestPending}, []string{pending}},
		{"mine, admin", "admin", callvault.RequestFilter{Mine: true}, []string{"SEARCH q USING INDEX listen_requests_requester (requester_id=?)"}},
		{"listener's", "lis1", callvault.RequestFilter{}, []string{listenerQ, "SEARCH q USING INTEGER PRIMARY KEY (rowid=?)"}},
	}
	grants := []struct {
		name  string
		login string
		f     callvault.GrantFilter
		want  []string
	}{
		{"active now, admin", "admin", callvault.GrantFilter{ActiveAt: f.clock.Now()}, []string{"SEARCH g USING INDEX grants_until (until_ms>? AND until_ms<?)"}},
		{"listener's", "lis1", callvault.GrantFilter{}, []string{"SEARCH g USING INDEX grants_listener (listener_id=?)"}},
		{"listener's active", "lis1", callvault.GrantFilter{ActiveAt: f.clock.Now()}, []string{"SEARCH g USING INDEX grants_listener (listener_id=? AND until_ms>? AND until_ms<?)"}},
		{"a user's, CEO", "ceo", callvault.GrantFilter{ListenerID: f.users["lis2"].ID}, []string{"SEARCH g USING INDEX grants_listener (listener_id=?)"}},
		{"break-glass, CEO", "ceo", callvault.GrantFilter{BreakGlass: true}, []string{"grants_break_glass"}},
		{"of a recording, DPO", "dpo", callvault.GrantFilter{RecordingID: f.n1}, []string{"SEARCH x USING PRIMARY KEY (recording_id=?)"}},
	}
	for _, stats := range []string{"no statistics", "analyzed"} {
		if stats == "analyzed" {
			if _, err := f.db.writer.Exec("ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		check := func(name, q string, args []any, want []string) {
			t.Helper()
			plan := explain(t, f.db, q, args...)
			t.Logf("%s, %s:\n%s", name, stats, plan)
			for _, w := range want {
				if !strings.Contains(plan, w) {
					t.Errorf("%s, %s: plan lacks %q:\n%s", name, stats, w, plan)
				}
			}
		}
		for _, tt := range requests {
			w, none, err := requestFilter(actor(tt.login), tt.f)
			if err != nil || none {
				t.Fatalf("requestFilter(%s, %+v) = none %v, %v", tt.login, tt.f, none, err)
			}
			check("FindListenRequests "+tt.name, requestsSQL(w), w.args, tt.want)
		}
		for _, tt := range grants {
			w, none := grantFilter(actor(tt.login), tt.f)
			if none {
				t.Fatalf("grantFilter(%s, %+v) = none", tt.login, tt.f)
			}
			check("FindGrants "+tt.name, grantsSQL(w), w.args, tt.want)
		}
	}
}
