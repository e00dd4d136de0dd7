package sqldb

import (
	"context"
	"reflect"
	"testing"

	"github.com/callvault/callvault"
)

func rng(s string) callvault.Range {
	r, err := callvault.ParseRange(s)
	if err != nil {
		panic(err)
	}
	return r
}

// createAcademies adds north (DDIs +441632960000-099, extensions 2000-2099)
// and south (+441632961000-099, 3000-3099).
func createAcademies(t testing.TB, db *DB) (north, south *callvault.Academy) {
	t.Helper()
	s := NewAcademyService(db)
	north = &callvault.Academy{Slug: "north", Name: "North Academy",
		Numbers: []callvault.Range{rng("+441632960000-+441632960099")}, Extensions: []callvault.Range{rng("2000-2099")}}
	south = &callvault.Academy{Slug: "south", Name: "South Academy",
		Numbers: []callvault.Range{rng("+441632961000-+441632961099")}, Extensions: []callvault.Range{rng("3000-3099")}}
	for _, a := range []*callvault.Academy{north, south} {
		if err := s.CreateAcademy(sysCtx(), a); err != nil {
			t.Fatalf("CreateAcademy(%q): %v", a.Slug, err)
		}
	}
	return north, south
}

func unassignedID(t testing.TB, db *DB) int64 {
	t.Helper()
	a, err := NewAcademyService(db).FindAcademyBySlug(sysCtx(), callvault.UnassignedSlug)
	if err != nil {
		t.Fatalf("FindAcademyBySlug(unassigned): %v", err)
	}
	return a.ID
}

func TestAcademy_createAndFind(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewAcademyService(db)
	north, south := createAcademies(t, db)
	if north.ID == 0 || !north.CreatedAt.Equal(t0) {
		t.Errorf("CreateAcademy set ID %d, CreatedAt %v; want an id and %v", north.ID, north.CreatedAt, t0)
	}

	got, err := s.FindAcademyBySlug(sysCtx(), "north")
	if err != nil {
		t.Fatalf("FindAcademyBySlug(north): %v", err)
	}
	if !reflect.DeepEqual(got, north) {
		t.Errorf("FindAcademyBySlug(north) = %+v, want %+v", got, north)
	}

	all, err := s.FindAcademies(sysCtx())
	if err != nil {
		t.Fatalf("FindAcademies: %v", err)
	}
	var slugs []string
	for _, a := range all {
		slugs = append(slugs, a.Slug)
	}
	if want := []string{"north", "south", "unassigned"}; !reflect.DeepEqual(slugs, want) {
		t.Errorf("FindAcademies slugs = %v, want %v (by name)", slugs, want)
	}
	if !reflect.DeepEqual(all[1], south) {
		t.Errorf("FindAcademies()[1] = %+v, want %+v", all[1], south)
	}
	// The loaded academies drive AssignAcademy.
	p := []callvault.Participant{{Number: "+447700900123", Side: callvault.SideExternal}, {Extension: "3042", Side: callvault.SideStaff}}
	if a := callvault.AssignAcademy(all, p); a == nil || a.Slug != "south" {
		t.Errorf("AssignAcademy(FindAcademies(), ext 3042) = %v, want south", a)
	}

	_, err = s.FindAcademyBySlug(sysCtx(), "nowhere")
	wantCode(t, `FindAcademyBySlug("nowhere")`, err, callvault.ENOTFOUND)
}

func TestAcademy_createErrors(t *testing.T) {
	db, _ := openTestDB(t)
	createAcademies(t, db)
	s := NewAcademyService(db)
	tests := []struct {
		name string
		a    callvault.Academy
		code string
	}{
		{"duplicate slug", callvault.Academy{Slug: "north", Name: "Another"}, callvault.ECONFLICT},
		{"unassigned slug", callvault.Academy{Slug: "unassigned", Name: "X"}, callvault.ECONFLICT},
		{"upper-case slug", callvault.Academy{Slug: "North2", Name: "X"}, callvault.EINVALID},
		{"short slug", callvault.Academy{Slug: "n", Name: "X"}, callvault.EINVALID},
		{"slug with space", callvault.Academy{Slug: "north two", Name: "X"}, callvault.EINVALID},
		{"empty name", callvault.Academy{Slug: "east", Name: "  "}, callvault.EINVALID},
		{"number overlaps north", callvault.Academy{Slug: "east", Name: "East",
			Numbers: []callvault.Range{rng("+441632960050-+441632960150")}}, callvault.EINVALID},
		{"extension overlaps south", callvault.Academy{Slug: "east", Name: "East",
			Extensions: []callvault.Range{rng("3099")}}, callvault.EINVALID},
		{"own ranges overlap", callvault.Academy{Slug: "east", Name: "East",
			Extensions: []callvault.Range{rng("4000-4010"), rng("4005-4020")}}, callvault.EINVALID},
		{"national number", callvault.Academy{Slug: "east", Name: "East",
			Numbers: []callvault.Range{rng("01632962000-01632962099")}}, callvault.EINVALID},
		{"uneven range", callvault.Academy{Slug: "east", Name: "East",
			Extensions: []callvault.Range{{First: "400", Last: "4000"}}}, callvault.EINVALID},
		{"reversed range", callvault.Academy{Slug: "east", Name: "East",
			Extensions: []callvault.Range{{First: "4999", Last: "4000"}}}, callvault.EINVALID},
		{"ok: same digits, other length", callvault.Academy{Slug: "east", Name: "East",
			Extensions: []callvault.Range{rng("20000-20999")}}, ""},
	}
	for _, tt := range tests {
		a := tt.a
		err := s.CreateAcademy(sysCtx(), &a)
		wantCode(t, "CreateAcademy("+tt.name+")", err, tt.code)
	}
}

func TestAcademy_update(t *testing.T) {
	db, _ := openTestDB(t)
	north, south := createAcademies(t, db)
	s := NewAcademyService(db)

	upd := &callvault.Academy{ID: north.ID, Slug: "ignored", Name: "North Academy Trust School",
		Numbers: []callvault.Range{rng("+441632962000-+441632962009"), rng("+441632960000")}}
	if err := s.UpdateAcademy(sysCtx(), upd); err != nil {
		t.Fatalf("UpdateAcademy(north): %v", err)
	}
	got, err := s.FindAcademyBySlug(sysCtx(), "north")
	if err != nil {
		t.Fatal(err)
	}
	want := &callvault.Academy{ID: north.ID, Slug: "north", Name: "North Academy Trust School", CreatedAt: north.CreatedAt,
		Numbers:    []callvault.Range{rng("+441632960000"), rng("+441632962000-+441632962009")},
		Extensions: []callvault.Range{}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after UpdateAcademy, FindAcademyBySlug(north) = %+v, want %+v", got, want)
	}

	// By slug when there is no id; south keeps its own ranges when updated.
	upd = &callvault.Academy{Slug: "south", Name: "South", Numbers: south.Numbers, Extensions: south.Extensions}
	if err := s.UpdateAcademy(sysCtx(), upd); err != nil || upd.ID != south.ID {
		t.Errorf("UpdateAcademy(slug south) = %v, id %d; want nil, %d", err, upd.ID, south.ID)
	}

	tests := []struct {
		name string
		a    callvault.Academy
		code string
	}{
		{"missing id", callvault.Academy{ID: 12345, Name: "X"}, callvault.ENOTFOUND},
		{"missing slug", callvault.Academy{Slug: "nowhere", Name: "X"}, callvault.ENOTFOUND},
		{"overlap", callvault.Academy{ID: north.ID, Name: "N", Extensions: []callvault.Range{rng("3050")}}, callvault.EINVALID},
		{"unassigned ranges", callvault.Academy{Slug: "unassigned", Name: "U", Extensions: []callvault.Range{rng("9000")}}, callvault.EINVALID},
		{"unassigned rename", callvault.Academy{Slug: "unassigned", Name: "Not yet assigned"}, ""},
	}
	for _, tt := range tests {
		a := tt.a
		wantCode(t, "UpdateAcademy("+tt.name+")", s.UpdateAcademy(sysCtx(), &a), tt.code)
	}
}

func TestAcademy_scope(t *testing.T) {
	db, _ := openTestDB(t)
	north, _ := createAcademies(t, db)
	s := NewAcademyService(db)
	tests := []struct {
		name      string
		ctx       context.Context
		wantSlugs []string
	}{
		{"system", sysCtx(), []string{"north", "south", "unassigned"}},
		{"admin", userCtx(callvault.RoleAdmin), []string{"north", "south", "unassigned"}},
		{"ceo", userCtx(callvault.RoleCEO), []string{"north", "south", "unassigned"}},
		{"principal of north", userCtx(callvault.RolePrincipal, north.ID), []string{"north"}},
		{"principal without academies", userCtx(callvault.RolePrincipal), nil},
		{"listener", userCtx(callvault.RoleListener, north.ID), nil},
		{"nil actor", context.Background(), nil},
	}
	for _, tt := range tests {
		as, err := s.FindAcademies(tt.ctx)
		if err != nil {
			t.Errorf("FindAcademies(%s): %v", tt.name, err)
			continue
		}
		var slugs []string
		for _, a := range as {
			slugs = append(slugs, a.Slug)
		}
		if !reflect.DeepEqual(slugs, tt.wantSlugs) {
			t.Errorf("FindAcademies(%s) = %v, want %v", tt.name, slugs, tt.wantSlugs)
		}
		for _, slug := range []string{"north", "south", "unassigned"} {
			_, err := s.FindAcademyBySlug(tt.ctx, slug)
			want := callvault.ENOTFOUND
			for _, w := range tt.wantSlugs {
				if w == slug {
					want = ""
				}
			}
			wantCode(t, "FindAcademyBySlug("+tt.name+", "+slug+")", err, want)
		}
	}
}
