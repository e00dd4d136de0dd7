package durable

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestCreateExclusive(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "key")
	var wg sync.WaitGroup
	created := make(chan []byte, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := []byte{byte(i)}
			ok, err := CreateExclusive(p, data)
			if err != nil {
				t.Error(err)
			}
			if ok {
				created <- data
			}
		}()
	}
	wg.Wait()
	close(created)
	var winners [][]byte
	for d := range created {
		winners = append(winners, d)
	}
	got, err := os.ReadFile(p)
	if err != nil || len(winners) != 1 || string(got) != string(winners[0]) {
		t.Fatalf("8 racing creators: %d winners, file %v (%v); want exactly one, whose data is in the file", len(winners), got, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d entries left in the directory, want only the file (no temp files)", len(entries))
	}
}

func TestWriteFileReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "checkpoint")
	for _, s := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != s {
			t.Errorf("after WriteFile(%q) the file holds %q", s, got)
		}
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "x"), nil); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}
