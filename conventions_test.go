package callvault_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/callvault/callvault"

// allowed lists, for each package, the callvault packages it may import
// (besides the root package, which everyone may use). Adapters do not import
// each other; only cmd/callvault wires them, and tests may use anything.
var allowed = map[string][]string{
	"archive":             {"audio", "phone"},
	"audit":               {"durable"},
	"audio":               nil,
	"blob":                {"durable"},
	"durable":             nil,
	"blob/blobtest":       nil,
	"phone":               nil,
	"secret":              nil,
	"sqldb":               nil,
	"vault":               {"durable"},
	"web":                 {"archive", "diskspace", "phone", "secret", "throttle", "totp", "oidc"}, // oidc: OpenID Connect
	"throttle":            nil,
	"totp":                nil,
	"mail":                nil,
	"oidc":                nil, // OpenID Connect
	"notify":              nil,
	"diskspace":           nil,
	"retention":           nil,
	"backup":              {"blob", "durable", "sqldb"}, // works on a deployment's files: database copy, blob copy
	"siprec":              nil,
	"media":               {"audio", "durable"},
	"recorder":            {"archive", "media", "phone", "siprec", "throttle"},
	"recorder/siprectest": {"siprec"},
	"cmd/callvault":       {"*"},
	"cvtest":              {"*"},
	"e2e":                 {"*"},
	".":                   nil,
}

func TestConventions(t *testing.T) {
	pkgs := map[string][]string{} // dir → non-test files
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			pkgs[filepath.Dir(path)] = append(pkgs[filepath.Dir(path)], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir, files := range pkgs {
		allow, known := allowed[filepath.ToSlash(dir)]
		if !known {
			t.Errorf("package %s is not in the dependency guard's table (conventions_test.go): add it with what it may import", dir)
		}
		docs := 0
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ParseComments|parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil {
				docs++
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				rel, ok := strings.CutPrefix(p, module+"/")
				if !ok || slices.Contains(allow, "*") {
					continue
				}
				if !slices.Contains(allow, rel) {
					t.Errorf("%s imports %s: adapters must not import each other (wire them in cmd/callvault)", f, p)
				}
			}
			if lines := strings.Count(string(src), "\n"); lines > 1000 {
				t.Errorf("%s has %d lines: split it", f, lines)
			}
		}
		if docs != 1 {
			t.Errorf("package %s has %d package doc comments, want exactly 1", dir, docs)
		}
	}
}
