package diskspace

import (
	"errors"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	free, total, err := Usage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if free == 0 || free > total {
		t.Errorf("Usage(%q) = %d free of %d, want 0 < free <= total", dir, free, total)
	}
	missing := filepath.Join(dir, "missing")
	if _, _, err := Usage(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Usage(%q) error = %v, want one that is fs.ErrNotExist", missing, err)
	}
}

// TestUsageMatchesDf checks Usage against df, which also counts only what
// an unprivileged user may use ("Avail", not the root-reserved blocks).
func TestUsageMatchesDf(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("df", "--output=avail,size", "-B1", dir).Output()
	if err != nil {
		t.Skipf("no GNU df: %v", err)
	}
	fields := strings.Fields(string(out)) // Avail Size avail size
	if len(fields) != 4 {
		t.Fatalf("df printed %q", out)
	}
	avail, err1 := strconv.ParseUint(fields[2], 10, 64)
	size, err2 := strconv.ParseUint(fields[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("df printed %q: %v", out, err)
	}
	free, total, err := Usage(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Other processes write meanwhile; the root reserve is usually far more.
	slack := total / 1000
	if total != size || free+slack < avail || free > avail+slack {
		t.Errorf("Usage(%q) = %d free of %d; df says %d of %d", dir, free, total, avail, size)
	}
}

func BenchmarkUsage(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if _, _, err := Usage(dir); err != nil {
			b.Fatal(err)
		}
	}
}
