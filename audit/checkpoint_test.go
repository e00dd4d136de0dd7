package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const goldenHash = "ceafd1e6409a8899a28acc448c500db09afd6444cbf65667dcb341ae5ce95793"

// goldenSigner loads the signer whose seed is the bytes 0, 1, ..., 31.
func goldenSigner(t *testing.T) *Signer {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	path := filepath.Join(t.TempDir(), "checkpoint.key")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	s, created, err := LoadOrCreateSigner(path)
	if err != nil || created {
		t.Fatalf("LoadOrCreateSigner(existing seed) = %v, %v; want loaded", created, err)
	}
	return s
}

// The signed message and its signature are frozen: if this test fails,
// every checkpoint kept outside the database stops verifying. Do not update
// the golden values; add a new version. The signature, key id and public
// key were checked independently with Python's cryptography package.
func TestCheckpointGolden(t *testing.T) {
	s := goldenSigner(t)
	c := s.Sign(42, goldenHash, time.Date(2026, 11, 27, 9, 30, 15, 123_456_789, time.UTC))

	const (
		wantMsg = "callvault-checkpoint-v1\n42\n" + goldenHash + "\n1795771815123\n"
		wantSig = "10266bb5c568d7d7ede5ede4e071213ee1e4147bcf0b8c861a4f527dc386f7945c823bdb0d43a851bdf801de7a98c8bfa67a1de18c7fe176ff5a2f5eee775a0e"
		wantKey = "callvault-audit-ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
		wantID  = "56475aa75463474c"
		wantJS  = `{"version":1,"seq":42,"hash":"` + goldenHash + `","time":"2026-11-27T09:30:15.123Z","key_id":"56475aa75463474c","signature":"ECZrtcVo19ft5e3k4HEhPuHkFHvPC4yGGk9SfcOG95RcgjvbDUOoUb34Ad56mMi/pnod4Yx/4Xb/Wi9e7ndaDg=="}`
	)
	if got := string(c.Message()); got != wantMsg {
		t.Errorf("Message() = %q, want %q", got, wantMsg)
	}
	if got := hex.EncodeToString(c.Signature); got != wantSig {
		t.Errorf("Sign(42, …) signature = %s, want %s", got, wantSig)
	}
	if got := FormatPublicKey(s.PublicKey()); got != wantKey {
		t.Errorf("FormatPublicKey() = %s, want %s", got, wantKey)
	}
	if c.KeyID != wantID || s.KeyID() != wantID || KeyID(s.PublicKey()) != wantID {
		t.Errorf("key id = %s / %s, want %s", c.KeyID, s.KeyID(), wantID)
	}
	js, err := json.Marshal(c)
	if err != nil || string(js) != wantJS {
		t.Errorf("json.Marshal(checkpoint) = %s, %v\nwant %s", js, err, wantJS)
	}
	if js, _ := json.Marshal(*c); string(js) != wantJS {
		t.Errorf("json.Marshal(checkpoint value) = %s, want %s", js, wantJS)
	}
	if err := c.Verify(s.PublicKey()); err != nil {
		t.Errorf("Verify(golden) = %v", err)
	}
	pub, err := ParsePublicKey(" " + wantKey + "\n")
	if err != nil || !pub.Equal(s.PublicKey()) {
		t.Errorf("ParsePublicKey(%q) = %x, %v; want %x", wantKey, pub, err, s.PublicKey())
	}
}

func TestCheckpointVerifyTampered(t *testing.T) {
	s := goldenSigner(t)
	other, _, err := LoadOrCreateSigner(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	sign := func() *Checkpoint { return s.Sign(1000, goldenHash, t0) }
	tests := []struct {
		name   string
		change func(c *Checkpoint)
		pub    ed25519.PublicKey
		want   string // in the error; "" for none
	}{
		{"untouched", func(c *Checkpoint) {}, s.PublicKey(), ""},
		{"seq", func(c *Checkpoint) { c.Seq++ }, s.PublicKey(), "does not match"},
		{"seq lowered", func(c *Checkpoint) { c.Seq = 10 }, s.PublicKey(), "does not match"},
		{"hash", func(c *Checkpoint) { c.Hash = strings.Repeat("ab", 32) }, s.PublicKey(), "does not match"},
		{"hash upper case", func(c *Checkpoint) { c.Hash = strings.ToUpper(c.Hash) }, s.PublicKey(), "not 64 lower-case hex"},
		{"hash short", func(c *Checkpoint) { c.Hash = c.Hash[:62] }, s.PublicKey(), "not 64 lower-case hex"},
		{"time", func(c *Checkpoint) { c.Time = c.Time.Add(time.Millisecond) }, s.PublicKey(), "does not match"},
		{"time sub-millisecond", func(c *Checkpoint) { c.Time = c.Time.Add(time.Microsecond) }, s.PublicKey(), ""},
		{"version", func(c *Checkpoint) { c.Version = 2 }, s.PublicKey(), "version 2 is not supported"},
		{"key id", func(c *Checkpoint) { c.KeyID = other.KeyID() }, s.PublicKey(), "signed by key"},
		{"signature bit", func(c *Checkpoint) { c.Signature[5] ^= 1 }, s.PublicKey(), "does not match"},
		{"signature short", func(c *Checkpoint) { c.Signature = c.Signature[:63] }, s.PublicKey(), "signature holds 63 bytes"},
		{"no signature", func(c *Checkpoint) { c.Signature = nil }, s.PublicKey(), "signature holds 0 bytes"},
		{"negative seq", func(c *Checkpoint) { c.Seq = -1 }, s.PublicKey(), "negative"},
		{"wrong key", func(c *Checkpoint) {}, other.PublicKey(), "signed by key " + `"` + s.KeyID() + `"`},
		{"no key", func(c *Checkpoint) {}, nil, "public key holds 0 bytes"},
		{"forged by other key", func(c *Checkpoint) { *c = *other.Sign(c.Seq, c.Hash, c.Time) }, s.PublicKey(), "signed by key"},
		{"forged with our key id", func(c *Checkpoint) {
			f := other.Sign(c.Seq, c.Hash, c.Time)
			f.KeyID = s.KeyID()
			*c = *f
		}, s.PublicKey(), "does not match"},
	}
	for _, tt := range tests {
		c := sign()
		tt.change(c)
		err := c.Verify(tt.pub)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Verify(%+v) = %v, want nil", tt.name, c, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Verify(%+v) = %v, want an error containing %q", tt.name, c, err, tt.want)
		}
	}
}

func TestCheckpointJSON(t *testing.T) {
	s := goldenSigner(t)
	a := s.Sign(7, goldenHash, t0)
	b := s.Sign(9, strings.Repeat("0f", 32), t0.Add(time.Hour))
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	indented, _ := json.MarshalIndent(a, "", "  ")
	tests := []struct {
		in   string
		want []*Checkpoint
		err  string
	}{
		{"", nil, ""},
		{" \n", nil, ""},
		{string(ja), []*Checkpoint{a}, ""},
		{string(indented) + "\n", []*Checkpoint{a}, ""},
		{string(ja) + "\n" + string(jb) + "\n", []*Checkpoint{a, b}, ""},
		{string(ja) + "\r\n\r\n" + string(jb), []*Checkpoint{a, b}, ""},
		{"[" + string(ja) + "," + string(jb) + "]", []*Checkpoint{a, b}, ""},
		{string(ja) + "\n" + string(jb)[:40], nil, "checkpoint 2"},
		{"[" + string(ja) + "] x", nil, "after the array"},
		{"[null]", nil, "null"},
		{"null", nil, "not a JSON object"},
		{"42", nil, "not a JSON object"},
		{strings.Replace(string(ja), ".", ".000001", 1), nil, "more precise than a millisecond"},
		{strings.Replace(string(ja), "Z", "", 1), nil, "checkpoint time"},
		{strings.Replace(string(ja), `"seq":7`, `"seq":"7"`, 1), nil, "checkpoint 1"},
		{strings.Replace(string(ja), `"signature":"`, `"signature":"!`, 1), nil, "checkpoint 1"},
	}
	for _, tt := range tests {
		got, err := ReadCheckpoints(strings.NewReader(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ReadCheckpoints(%q) = %v, want an error containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !sameCheckpoints(got, tt.want) {
			t.Errorf("ReadCheckpoints(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		for _, c := range got {
			if err := c.Verify(s.PublicKey()); err != nil {
				t.Errorf("ReadCheckpoints(%q): Verify = %v", tt.in, err)
			}
		}
	}
	// Another zone is converted to UTC and still verifies.
	js := strings.Replace(string(ja), "09:30:15.123Z", "10:30:15.123+01:00", 1)
	got, err := ReadCheckpoints(strings.NewReader(js))
	if err != nil || len(got) != 1 || got[0].Time.Location() != time.UTC || got[0].Verify(s.PublicKey()) != nil {
		t.Errorf("ReadCheckpoints(%s) = %+v, %v; want the checkpoint in UTC", js, got, err)
	}
}

func sameCheckpoints(a, b []*Checkpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Version != y.Version || x.Seq != y.Seq || x.Hash != y.Hash || !x.Time.Equal(y.Time) ||
			x.KeyID != y.KeyID || !bytes.Equal(x.Signature, y.Signature) {
			return false
		}
	}
	return true
}

func TestParsePublicKey(t *testing.T) {
	tests := []struct {
		in, err string
	}{
		{"callvault-audit-ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", ""},
		{"A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "does not start with"},
		{"callvault-audit-ed25519:", "0 bytes"},
		{"callvault-audit-ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJV", "30 bytes"},
		{"callvault-audit-ed25519:A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "illegal base64"},
		{"callvault-audit-x25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=", "does not start with"},
	}
	for _, tt := range tests {
		pub, err := ParsePublicKey(tt.in)
		switch {
		case tt.err == "" && (err != nil || FormatPublicKey(pub) != tt.in):
			t.Errorf("ParsePublicKey(%q) = %x, %v; want it back", tt.in, pub, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParsePublicKey(%q) = %x, %v; want an error containing %q", tt.in, pub, err, tt.err)
		}
	}
}

func TestLoadOrCreateSigner(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "checkpoint.key")
	s, created, err := LoadOrCreateSigner(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateSigner(%s) = %v, %v; want created", path, created, err)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("mode of %s = %v, %v; want %v", p, fi.Mode().Perm(), err, want)
			}
		}
	}
	again, created, err := LoadOrCreateSigner(path)
	if err != nil || created || !again.PublicKey().Equal(s.PublicKey()) {
		t.Errorf("LoadOrCreateSigner(%s) again = %v, %v, same key %v; want the same key loaded", path, created, err, err == nil && again.PublicKey().Equal(s.PublicKey()))
	}
	if err := s.Sign(1, goldenHash, t0).Verify(again.PublicKey()); err != nil {
		t.Errorf("a checkpoint signed before a restart does not verify after it: %v", err)
	}

	bad := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"short", bad("short", make([]byte, 31), 0o600), "holds 31 bytes"},
		{"long", bad("long", make([]byte, 64), 0o600), "holds 64 bytes"},
		{"empty", bad("empty", nil, 0o600), "holds 0 bytes"},
		{"directory", t.TempDir(), "not a regular file"},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests,
			struct{ name, path, want string }{"group readable", bad("group", make([]byte, 32), 0o640), "group or others"},
			struct{ name, path, want string }{"world readable", bad("world", make([]byte, 32), 0o604), "group or others"},
		)
	}
	for _, tt := range tests {
		s, _, err := LoadOrCreateSigner(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) || s != nil {
			t.Errorf("%s: LoadOrCreateSigner(%s) = %v, %v; want an error containing %q", tt.name, tt.path, s, err, tt.want)
		}
	}
}

// Of several processes starting at once, exactly one creates the key and
// all use it.
func TestLoadOrCreateSignerRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "race", "checkpoint.key")
	const n = 16
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created int
		keys    = map[string]bool{}
	)
	for range n {
		wg.Go(func() {
			s, c, err := LoadOrCreateSigner(path)
			if err != nil {
				t.Errorf("LoadOrCreateSigner(%s) = %v", path, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if c {
				created++
			}
			keys[FormatPublicKey(s.PublicKey())] = true
		})
	}
	wg.Wait()
	if created != 1 || len(keys) != 1 {
		t.Errorf("%d racing LoadOrCreateSigner calls: %d created a key, %d distinct keys; want 1 and 1", n, created, len(keys))
	}
}
