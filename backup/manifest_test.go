package backup

import (
	"os"
	"path"
	"strings"
	"testing"
	"time"
)

// TestManifestV1 pins the format: backups written today must still restore
// after callvault changes.
func TestManifestV1(t *testing.T) {
	b, err := os.ReadFile("testdata/manifest-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseManifest(b)
	if err != nil {
		t.Fatalf("parseManifest(manifest-v1.json): %v", err)
	}
	if !m.CreatedAt.Equal(time.Date(2026, 5, 1, 1, 30, 0, 0, time.UTC)) || m.SchemaVersion != 6 || !m.IncludeKeys ||
		m.AuditSeq != 3 || m.Recordings != 3 || m.Blobs != 2 || len(m.Vanished) != 1 || len(m.Files) != 7 {
		t.Errorf("parseManifest(manifest-v1.json) = %+v", m)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		path string
		kind int
		name string
	}{
		{"callvault.db", kindDatabase, ""},
		{"audit-checkpoints.jsonl", kindCheckpoints, ""},
		{"kek", kindKEK, ""},
		{"keys/2026-11.key", kindKey, "2026-11"},
		{"keys/2026-11.destroyed", kindTombstone, "2026-11"},
		{"blobs/recordings/2026-11/0194.age", kindBlob, "recordings/2026-11/0194.age"},

		{"", 0, ""},
		{"/etc/passwd", 0, ""},
		{"../kek", 0, ""},
		{"blobs/../kek", 0, ""},
		{"blobs//x", 0, ""},
		{"blobs/.tmp/blob-1", 0, ""},
		{`blobs\x`, 0, ""},
		{"blobs/a\nb", 0, ""},
		{"audit-signing.key", 0, ""},
		{"manifest.json", 0, ""},
		{"keys/2026-13.key", 0, ""},
		{"keys/2026-11.key.tmp-1", 0, ""},
		{"keys/sub/2026-11.key", 0, ""},
		{"callvault.db-wal", 0, ""},
	} {
		kind, name, err := classify(tc.path)
		if kind != tc.kind || name != tc.name || (err == nil) != (tc.kind != 0) {
			t.Errorf("classify(%q) = %d, %q, %v; want %d, %q", tc.path, kind, name, err, tc.kind, tc.name)
		}
	}
}

func TestParseManifestRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/manifest-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"newer format", `"format": 1`, `"format": 2`},
		{"unknown field", `"recordings": 3`, `"recordings": 3, "extra": 1`},
		{"path traversal", `"path": "kek"`, `"path": "../kek"`},
		{"no database", `"path": "callvault.db"`, `"path": "blobs/x"`},
		{"duplicate", `"path": "kek"`, `"path": "callvault.db"`},
		{"keys in a data backup", `"include_keys": true`, `"include_keys": false`},
		{"bad hash", `"sha256": "54303f8f`, `"sha256": "54303F8F`},
		{"negative size", `"size": 32`, `"size": -32`},
		{"trailing data", "  ]\n}", "  ]\n}\n{}"},
	} {
		b := strings.Replace(string(good), tc.from, tc.to, 1)
		if b == string(good) {
			t.Fatalf("%s: %q not in the manifest", tc.name, tc.from)
		}
		if _, err := parseManifest([]byte(b)); err == nil {
			t.Errorf("parseManifest accepted a manifest with %s", tc.name)
		}
	}
}

// FuzzParseManifest: a manifest comes from backup media and may be hostile;
// whatever it accepts names only files inside the backup.
func FuzzParseManifest(f *testing.F) {
	if b, err := os.ReadFile("testdata/manifest-v1.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"format":1,"files":[{"path":"callvault.db","size":1,"sha256":"` + strings.Repeat("0", 64) + `"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			return
		}
		for _, file := range m.Files {
			if path.IsAbs(file.Path) || strings.HasPrefix(path.Clean(file.Path), "..") || strings.Contains(file.Path, `\`) {
				t.Errorf("accepted path %q outside the backup", file.Path)
			}
		}
	})
}
