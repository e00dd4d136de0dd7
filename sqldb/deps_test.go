package sqldb

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps sqldb an adapter: it may use the root package, the
// standard library, the SQLite driver and uuid, and no other adapter.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"github.com/callvault/callvault", "modernc.org/sqlite", "github.com/google/uuid"}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			ok := !strings.Contains(strings.Split(path, "/")[0], ".") // standard library
			for _, a := range allowed {
				ok = ok || path == a || strings.HasPrefix(path, "modernc.org/sqlite/")
			}
			if !ok {
				t.Errorf("%s imports %s; sqldb may only import %v and the standard library", name, path, allowed)
			}
		}
	}
}
