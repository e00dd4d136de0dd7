package sqldb

import (
	"reflect"
	"testing"

	"github.com/callvault/callvault"
)

func TestSource(t *testing.T) {
	db, _ := openTestDB(t)
	s := NewSourceService(db)
	ctx := sysCtx()

	pbx := &callvault.Source{Name: "pbx-main", Kind: callvault.SourceImport, TokenHash: "hash-pbx"}
	sbc := &callvault.Source{Name: "sbc", Kind: callvault.SourceSIPREC, TokenHash: "hash-sbc"}
	old := &callvault.Source{Name: "old-script", Kind: callvault.SourceAPI, TokenHash: "hash-old", Disabled: true}
	for _, src := range []*callvault.Source{pbx, sbc, old} {
		if err := s.CreateSource(ctx, src); err != nil {
			t.Fatalf("CreateSource(%q): %v", src.Name, err)
		}
		if src.ID == 0 || !src.CreatedAt.Equal(t0) {
			t.Errorf("CreateSource(%q) set ID %d, CreatedAt %v", src.Name, src.ID, src.CreatedAt)
		}
	}

	errs := []struct {
		name string
		src  callvault.Source
		code string
	}{
		{"duplicate name", callvault.Source{Name: "pbx-main", Kind: callvault.SourceAPI, TokenHash: "h2"}, callvault.ECONFLICT},
		{"duplicate token", callvault.Source{Name: "other", Kind: callvault.SourceAPI, TokenHash: "hash-pbx"}, callvault.ECONFLICT},
		{"empty name", callvault.Source{Name: " ", Kind: callvault.SourceAPI, TokenHash: "h3"}, callvault.EINVALID},
		{"bad kind", callvault.Source{Name: "x", Kind: "fax", TokenHash: "h4"}, callvault.EINVALID},
		{"no token", callvault.Source{Name: "y", Kind: callvault.SourceAPI}, callvault.EINVALID},
	}
	for _, tt := range errs {
		src := tt.src
		wantCode(t, "CreateSource("+tt.name+")", s.CreateSource(ctx, &src), tt.code)
	}

	got, err := s.FindSourceByName(ctx, "sbc")
	if err != nil || !reflect.DeepEqual(got, sbc) {
		t.Errorf("FindSourceByName(sbc) = %+v, %v; want %+v", got, err, sbc)
	}
	_, err = s.FindSourceByName(ctx, "nope")
	wantCode(t, `FindSourceByName("nope")`, err, callvault.ENOTFOUND)

	got, err = s.FindSourceByTokenHash(ctx, "hash-pbx")
	if err != nil || !reflect.DeepEqual(got, pbx) {
		t.Errorf("FindSourceByTokenHash(hash-pbx) = %+v, %v; want %+v", got, err, pbx)
	}
	for _, h := range []string{"hash-old", "unknown", ""} {
		_, err := s.FindSourceByTokenHash(ctx, h)
		wantCode(t, "FindSourceByTokenHash("+h+")", err, callvault.EUNAUTHORIZED)
	}

	all, err := s.FindSources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []*callvault.Source{old, pbx, sbc}; !reflect.DeepEqual(all, want) {
		t.Errorf("FindSources() = %v, want %v (by name)", all, want)
	}
}
