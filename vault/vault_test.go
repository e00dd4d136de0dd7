package vault_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/vault"
)

const (
	chunk   = 64 << 10
	overlay = 16 // Poly1305 tag per chunk
	epoch   = "2026-11"
	recID   = "0194f2a0-0000-7000-8000-000000000001"
)

func newVault(t testing.TB) (*vault.Vault, []byte, string) {
	t.Helper()
	kek := make([]byte, vault.KeySize)
	rand.Read(kek)
	dir := filepath.Join(t.TempDir(), "keyring")
	v, err := vault.New(kek, dir)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v, kek, dir
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func encrypt(t testing.TB, v *vault.Vault, plain []byte, id, epoch string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := v.Encrypt(&buf, id, epoch)
	if err != nil {
		t.Fatalf("Encrypt(%s, %s): %v", id, epoch, err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

func decrypt(v *vault.Vault, ct []byte, id, epoch string) (io.ReaderAt, int64, error) {
	return v.Decrypt(bytes.NewReader(ct), int64(len(ct)), id, epoch)
}

func readAll(t testing.TB, r io.ReaderAt, size int64) []byte {
	t.Helper()
	b := make([]byte, size)
	if n, err := r.ReadAt(b, 0); n != len(b) || (err != nil && err != io.EOF) {
		t.Fatalf("ReadAt(all %d) = %d, %v", size, n, err)
	}
	return b
}

func wantDecryptError(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, vault.ErrDecrypt) || callvault.ErrorCode(err) != callvault.EINTERNAL {
		t.Fatalf("%s: error %v (code %q), want ErrDecrypt with code internal", what, err, callvault.ErrorCode(err))
	}
}

// headerLen is the size of the age header plus the stream nonce.
func headerLen(ct []byte, plainSize int) int {
	chunks := max(1, (plainSize+chunk-1)/chunk)
	return len(ct) - plainSize - chunks*overlay
}

func TestRoundTrip(t *testing.T) {
	v, _, _ := newVault(t)
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 3<<20 + 7} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			plain := randBytes(size)
			ct := encrypt(t, v, plain, recID, epoch)
			if bytes.Contains(ct, plain) && size > 16 {
				t.Fatal("ciphertext contains the plaintext")
			}
			r, n, err := decrypt(v, ct, recID, epoch)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if n != int64(size) {
				t.Fatalf("Decrypt size = %d, want %d", n, size)
			}
			if got := readAll(t, r, n); !bytes.Equal(got, plain) {
				t.Fatal("round trip changed the plaintext")
			}
			if n, err := r.ReadAt(make([]byte, 1), int64(size)); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt at the end = %d, %v; want 0, io.EOF", n, err)
			}
			if n, err := r.ReadAt(make([]byte, 1), int64(size)+10); n != 0 || err != io.EOF {
				t.Fatalf("ReadAt past the end = %d, %v; want 0, io.EOF", n, err)
			}
		})
	}
}

func TestRandomReadAt(t *testing.T) {
	v, _, _ := newVault(t)
	plain := randBytes(5*chunk + 1234)
	ct := encrypt(t, v, plain, recID, epoch)
	r, size, err := decrypt(v, ct, recID, epoch)
	if err != nil {
		t.Fatal(err)
	}
	rnd := mrand.New(mrand.NewPCG(1, 2))
	for range 2000 {
		off := rnd.Int64N(size + 1)
		n := rnd.Int64N(min(size-off, 3*chunk) + 1)
		if rnd.IntN(4) == 0 { // favour reads around chunk boundaries
			off = max(0, min(size, int64(rnd.IntN(6))*chunk+int64(rnd.IntN(9))-4))
			n = min(size-off, int64(rnd.IntN(20)))
		}
		buf := make([]byte, n)
		got, err := r.ReadAt(buf, off)
		if got != int(n) || (err != nil && !(err == io.EOF && off+n == size)) {
			t.Fatalf("ReadAt(len %d, off %d) = %d, %v", n, off, got, err)
		}
		if !bytes.Equal(buf, plain[off:off+n]) {
			t.Fatalf("ReadAt(len %d, off %d) returned wrong bytes", n, off)
		}
	}
	// Reads straddling the end return what is there and io.EOF.
	buf := make([]byte, 100)
	if n, err := r.ReadAt(buf, size-10); n != 10 || err != io.EOF || !bytes.Equal(buf[:10], plain[size-10:]) {
		t.Fatalf("ReadAt straddling the end = %d, %v", n, err)
	}
}

func TestConcurrentReadAt(t *testing.T) {
	v, _, _ := newVault(t)
	plain := randBytes(8*chunk + 5)
	ct := encrypt(t, v, plain, recID, epoch)
	r, size, err := decrypt(v, ct, recID, epoch)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rnd := mrand.New(mrand.NewPCG(uint64(g), 0))
			for range 200 {
				off := rnd.Int64N(size)
				n := min(size-off, 10_000)
				buf := make([]byte, n)
				if _, err := r.ReadAt(buf, off); (err != nil && err != io.EOF) || !bytes.Equal(buf, plain[off:off+n]) {
					t.Errorf("concurrent ReadAt(off %d) = %v or wrong bytes", off, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMovedToAnotherRecordingFails(t *testing.T) {
	v, _, _ := newVault(t)
	ct := encrypt(t, v, []byte("a call about a pupil"), recID, epoch)
	_, _, err := decrypt(v, ct, "0194f2a0-0000-7000-8000-000000000002", epoch)
	wantDecryptError(t, "Decrypt under another id", err)
	if !strings.Contains(err.Error(), "moved") {
		t.Errorf("error %q does not say the ciphertext may have been moved", err)
	}
}

func TestAnotherEpochFails(t *testing.T) {
	v, _, dir := newVault(t)
	ct := encrypt(t, v, []byte("november"), recID, "2026-11")
	encrypt(t, v, []byte("december"), recID, "2026-12") // creates the 2026-12 key
	_, _, err := decrypt(v, ct, recID, "2026-12")
	wantDecryptError(t, "Decrypt under an existing other epoch", err)
	_, _, err = decrypt(v, ct, recID, "2027-01")
	wantDecryptError(t, "Decrypt under a never-used epoch", err)
	if _, err := os.Stat(filepath.Join(dir, "2027-01.key")); !os.IsNotExist(err) {
		t.Fatalf("Decrypt created a key for 2027-01: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	v, _, _ := newVault(t)
	for _, e := range []string{"", "2026-1", "2026-13", "2026-00", "26-11", "2026/11", "2026-11 ", "../2026-11", "1969-12", "2026-11-01"} {
		if _, err := v.Encrypt(io.Discard, recID, e); callvault.ErrorCode(err) != callvault.EINVALID {
			t.Errorf("Encrypt(epoch %q) = %v, want EINVALID", e, err)
		}
		if _, _, err := v.Decrypt(bytes.NewReader(nil), 0, recID, e); callvault.ErrorCode(err) != callvault.EINVALID {
			t.Errorf("Decrypt(epoch %q) = %v, want EINVALID", e, err)
		}
		if err := v.DestroyEpoch(e); callvault.ErrorCode(err) != callvault.EINVALID {
			t.Errorf("DestroyEpoch(%q) = %v, want EINVALID", e, err)
		}
	}
	for _, id := range []string{"", "a\x00b", strings.Repeat("x", 257)} {
		if _, err := v.Encrypt(io.Discard, id, epoch); callvault.ErrorCode(err) != callvault.EINVALID {
			t.Errorf("Encrypt(id %q) = %v, want EINVALID", id, err)
		}
	}
	if _, err := vault.New(make([]byte, 16), t.TempDir()); err == nil {
		t.Error("New with a 16-byte KEK succeeded")
	}
}

func TestFlippedPayloadByteFailsOnlyItsChunk(t *testing.T) {
	v, _, _ := newVault(t)
	const chunks = 4
	plain := randBytes(chunks*chunk - 100) // last chunk is short
	ct := encrypt(t, v, plain, recID, epoch)
	hdr := headerLen(ct, len(plain))
	encChunk := chunk + overlay

	for c := range chunks {
		start := hdr + c*encChunk
		end := min(start+encChunk, len(ct))
		for _, pos := range []int{start, start + 1, (start + end) / 2, end - overlay - 1, end - overlay, end - 1} {
			bad := bytes.Clone(ct)
			bad[pos] ^= 0x01
			r, _, err := decrypt(v, bad, recID, epoch)
			if c == chunks-1 {
				// age authenticates the final chunk when opening, to check
				// the length: a flip there fails Decrypt itself.
				wantDecryptError(t, fmt.Sprintf("Decrypt with byte %d of the final chunk flipped", pos-start), err)
				continue
			}
			if err != nil {
				t.Fatalf("Decrypt with byte %d of chunk %d flipped: %v", pos-start, c, err)
			}
			for other := range chunks {
				off := int64(other * chunk)
				n := min(chunk, len(plain)-other*chunk)
				buf := make([]byte, n)
				_, err := r.ReadAt(buf, off)
				if other == c {
					wantDecryptError(t, fmt.Sprintf("ReadAt of chunk %d with its byte %d flipped", c, pos-start), err)
				} else if (err != nil && err != io.EOF) || !bytes.Equal(buf, plain[off:off+int64(n)]) {
					t.Fatalf("chunk %d unreadable after a flip in chunk %d: %v", other, c, err)
				}
			}
		}
	}
}

func TestFlippedHeaderByteFails(t *testing.T) {
	v, _, _ := newVault(t)
	plain := randBytes(3 * chunk)
	ct := encrypt(t, v, plain, recID, epoch)
	hdr := headerLen(ct, len(plain))
	for pos := range hdr { // header and stream nonce
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(ct)
			bad[pos] ^= bit
			if _, _, err := decrypt(v, bad, recID, epoch); !errors.Is(err, vault.ErrDecrypt) {
				t.Fatalf("Decrypt with header byte %d (%q) xor %#x = %v, want ErrDecrypt", pos, ct[pos], bit, err)
			}
		}
	}
	// Truncated and extended ciphertexts fail too.
	for _, bad := range [][]byte{ct[:len(ct)-1], ct[:hdr], ct[:10], nil, append(bytes.Clone(ct), 0)} {
		if _, _, err := decrypt(v, bad, recID, epoch); !errors.Is(err, vault.ErrDecrypt) {
			t.Fatalf("Decrypt of %d of %d bytes = %v, want ErrDecrypt", len(bad), len(ct), err)
		}
	}
}

// An error of the blob store is returned as it is, not as ErrDecrypt.
func TestBlobStoreErrorsPassThrough(t *testing.T) {
	v, _, _ := newVault(t)
	plain := randBytes(3 * chunk)
	ct := encrypt(t, v, plain, recID, epoch)
	chunk1 := int64(headerLen(ct, len(plain)) + chunk + overlay)
	src := &failingReaderAt{r: bytes.NewReader(ct), from: chunk1, to: chunk1 + chunk + overlay}
	r, _, err := v.Decrypt(src, int64(len(ct)), recID, epoch)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadAt(make([]byte, 10), chunk+5)
	if callvault.ErrorCode(err) != callvault.EUNAVAILABLE || errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("ReadAt over a failing store = %v, want the store's EUNAVAILABLE", err)
	}
	if _, err := r.ReadAt(make([]byte, 10), 5); err != nil {
		t.Fatalf("ReadAt of a healthy chunk: %v", err)
	}
}

// failingReaderAt fails reads that start in [from, to).
type failingReaderAt struct {
	r        io.ReaderAt
	from, to int64
}

func (f *failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.from && off < f.to {
		return 0, callvault.Errorf(callvault.EUNAVAILABLE, "blob store down")
	}
	return f.r.ReadAt(p, off)
}

func TestKEKFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := filepath.Join(t.TempDir(), "secrets")
	path := filepath.Join(dir, "kek")
	key, created, err := vault.LoadOrCreateKEK(path)
	if err != nil || !created || len(key) != vault.KeySize {
		t.Fatalf("LoadOrCreateKEK = %d bytes, %v, %v; want a new 32-byte key", len(key), created, err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("mode of %s = %v, %v; want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	again, created, err := vault.LoadOrCreateKEK(path)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("second LoadOrCreateKEK = %v, %v; want the same key, not created", created, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("KEK folder holds %d files, want 1", len(entries))
	}

	os.Chmod(path, 0o644)
	if _, _, err := vault.LoadOrCreateKEK(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("LoadOrCreateKEK of a 0644 file = %v, want a refusal", err)
	}
	os.Chmod(path, 0o600)

	short := filepath.Join(dir, "short")
	os.WriteFile(short, make([]byte, 31), 0o600)
	if _, _, err := vault.LoadOrCreateKEK(short); err == nil || !strings.Contains(err.Error(), "31 bytes") {
		t.Fatalf("LoadOrCreateKEK of a 31-byte file = %v, want a refusal", err)
	}
}

func TestKEKCreationRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek")
	const n = 16
	keys := make([][]byte, n)
	createdCount := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, created, err := vault.LoadOrCreateKEK(path)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			keys[i] = k
			if created {
				createdCount++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if createdCount != 1 {
		t.Fatalf("%d callers created the KEK, want 1", createdCount)
	}
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("caller %d got a different KEK", i)
		}
	}
}

func TestEpochKeyFileIsWrapped(t *testing.T) {
	v, kek, dir := newVault(t)
	encrypt(t, v, []byte("x"), recID, epoch)
	key, err := v.EpochKey(epoch)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(dir, epoch+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(file, key) || bytes.Contains(file, key[:8]) || bytes.Contains(file, kek[:8]) {
		t.Fatal("epoch key file contains the raw epoch key or the KEK")
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(filepath.Join(dir, epoch+".key"))
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("epoch key file mode = %v, want 0600", fi.Mode().Perm())
		}
	}
	// A key file renamed to another month does not unwrap.
	os.Rename(filepath.Join(dir, epoch+".key"), filepath.Join(dir, "2026-10.key"))
	v2, _ := vault.New(kek, dir)
	if _, err := v2.EpochKey("2026-10"); !errors.Is(err, vault.ErrDecrypt) {
		t.Fatalf("renamed key file unwraps: %v", err)
	}
}

func TestWrongKEK(t *testing.T) {
	v, _, dir := newVault(t)
	ct := encrypt(t, v, []byte("secret"), recID, epoch)
	other, err := vault.New(randBytes(vault.KeySize), dir)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = decrypt(other, ct, recID, epoch)
	wantDecryptError(t, "Decrypt with the wrong KEK", err)
	if !strings.Contains(err.Error(), "wrong KEK") {
		t.Errorf("error %q does not mention the KEK", err)
	}
	if _, err := other.Encrypt(io.Discard, recID, epoch); err == nil {
		t.Fatal("Encrypt with the wrong KEK succeeded (it would create a second key)")
	}
}

// Two Vaults on one keyring, as two processes would be, racing to create the
// same epoch end up with one key.
func TestEpochCreationRace(t *testing.T) {
	v1, kek, dir := newVault(t)
	v2, err := vault.New(kek, dir)
	if err != nil {
		t.Fatal(err)
	}
	vaults := []*vault.Vault{v1, v2}
	const n = 16
	cts := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var buf bytes.Buffer
			w, err := vaults[i%2].Encrypt(&buf, fmt.Sprint("rec-", i), epoch)
			if err != nil {
				t.Error(err)
				return
			}
			fmt.Fprintf(w, "call %d", i)
			w.Close()
			cts[i] = buf.Bytes()
		})
	}
	wg.Wait()
	for i, ct := range cts {
		for _, v := range vaults {
			r, n, err := decrypt(v, ct, fmt.Sprint("rec-", i), epoch)
			if err != nil {
				t.Fatalf("recording %d from vault %d: %v", i, i%2, err)
			}
			if got := readAll(t, r, n); string(got) != fmt.Sprintf("call %d", i) {
				t.Fatalf("recording %d = %q", i, got)
			}
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != epoch+".key" {
		t.Fatalf("keyring holds %v, want one key file and no temp files", entries)
	}
}

// The same race across real processes: the test binary re-runs itself.
func TestEpochCreationRaceProcesses(t *testing.T) {
	if dir := os.Getenv("VAULT_TEST_CHILD_KEYRING"); dir != "" {
		t.Skip("child")
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	kekPath := filepath.Join(t.TempDir(), "kek")
	kek, _, err := vault.LoadOrCreateKEK(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	keyring := filepath.Join(t.TempDir(), "keyring")
	out := t.TempDir()
	const n = 6
	cmds := make([]*exec.Cmd, n)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChildEncrypt$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			"VAULT_TEST_CHILD_KEYRING="+keyring, "VAULT_TEST_CHILD_KEK="+kekPath,
			fmt.Sprintf("VAULT_TEST_CHILD_OUT=%s/%d", out, i), fmt.Sprintf("VAULT_TEST_CHILD_ID=rec-%d", i))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	v, err := vault.New(kek, keyring)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ct, err := os.ReadFile(fmt.Sprintf("%s/%d", out, i))
		if err != nil {
			t.Fatal(err)
		}
		r, size, err := decrypt(v, ct, fmt.Sprint("rec-", i), epoch)
		if err != nil {
			t.Fatalf("output of child %d: %v", i, err)
		}
		if got := readAll(t, r, size); string(got) != "rec-"+fmt.Sprint(i) {
			t.Fatalf("child %d plaintext = %q", i, got)
		}
	}
	entries, _ := os.ReadDir(keyring)
	if len(entries) != 1 || entries[0].Name() != epoch+".key" {
		t.Fatalf("keyring holds %v, want one key file and no temp files", entries)
	}
}

// TestHelperChildEncrypt is the child of TestEpochCreationRaceProcesses.
func TestHelperChildEncrypt(t *testing.T) {
	keyring := os.Getenv("VAULT_TEST_CHILD_KEYRING")
	if keyring == "" {
		t.Skip("only run as a child process")
	}
	kek, _, err := vault.LoadOrCreateKEK(os.Getenv("VAULT_TEST_CHILD_KEK"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(kek, keyring)
	if err != nil {
		t.Fatal(err)
	}
	id := os.Getenv("VAULT_TEST_CHILD_ID")
	ct := encrypt(t, v, []byte(id), id, epoch)
	if err := os.WriteFile(os.Getenv("VAULT_TEST_CHILD_OUT"), ct, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDestroyEpoch(t *testing.T) {
	v, kek, dir := newVault(t)
	nov := encrypt(t, v, []byte("november call"), recID, "2026-11")
	dec := encrypt(t, v, []byte("december call"), recID, "2026-12")
	other, _ := vault.New(kek, dir) // another process with the key cached
	if _, _, err := decrypt(other, nov, recID, "2026-11"); err != nil {
		t.Fatal(err)
	}

	if err := v.DestroyEpoch("2026-11"); err != nil {
		t.Fatalf("DestroyEpoch: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-11.key")); !os.IsNotExist(err) {
		t.Fatalf("key file still there: %v", err)
	}
	for name, vv := range map[string]*vault.Vault{"destroyer": v, "other process": other} {
		_, _, err := decrypt(vv, nov, recID, "2026-11")
		if !errors.Is(err, vault.ErrEpochDestroyed) || callvault.ErrorCode(err) != callvault.ECONFLICT ||
			!strings.Contains(callvault.ErrorMessage(err), "key epoch 2026-11 destroyed") {
			t.Fatalf("%s: Decrypt after DestroyEpoch = %v, want ECONFLICT key epoch destroyed", name, err)
		}
		_, err = vv.Encrypt(io.Discard, "new", "2026-11")
		if !errors.Is(err, vault.ErrEpochDestroyed) || callvault.ErrorCode(err) != callvault.ECONFLICT {
			t.Fatalf("%s: Encrypt after DestroyEpoch = %v, want ECONFLICT", name, err)
		}
		if _, _, err := decrypt(vv, dec, recID, "2026-12"); err != nil {
			t.Fatalf("%s: the next month no longer decrypts: %v", name, err)
		}
	}
	// A fresh process cannot resurrect the month either.
	fresh, _ := vault.New(kek, dir)
	if _, err := fresh.Encrypt(io.Discard, "new", "2026-11"); !errors.Is(err, vault.ErrEpochDestroyed) {
		t.Fatalf("fresh Vault: Encrypt after DestroyEpoch = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026-11.key")); !os.IsNotExist(err) {
		t.Fatalf("key file re-created: %v", err)
	}
	// Idempotent, and works for a month that never had a key.
	if err := v.DestroyEpoch("2026-11"); err != nil {
		t.Fatalf("second DestroyEpoch: %v", err)
	}
	if err := v.DestroyEpoch("2020-01"); err != nil {
		t.Fatalf("DestroyEpoch of an unused month: %v", err)
	}

	epochs, err := v.Epochs()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range epochs {
		got = append(got, e.Epoch+" "+e.State)
		if (e.State == vault.EpochActive) != (e.DestroyedAt.IsZero() && !e.CreatedAt.IsZero()) {
			t.Errorf("inconsistent %+v", e)
		}
	}
	if want := "2020-01 destroyed,2026-11 destroyed,2026-12 active"; strings.Join(got, ",") != want {
		t.Fatalf("Epochs = %q, want %q", strings.Join(got, ","), want)
	}
}

// A crash in DestroyEpoch after the tombstone but before the key file was
// removed leaves both; the epoch counts as destroyed.
func TestTombstoneWinsOverKeyFile(t *testing.T) {
	v, kek, dir := newVault(t)
	ct := encrypt(t, v, []byte("x"), recID, epoch)
	os.WriteFile(filepath.Join(dir, epoch+".destroyed"), nil, 0o600)
	fresh, _ := vault.New(kek, dir)
	if _, _, err := decrypt(fresh, ct, recID, epoch); !errors.Is(err, vault.ErrEpochDestroyed) {
		t.Fatalf("Decrypt with tombstone and key file = %v", err)
	}
	if es, _ := fresh.Epochs(); len(es) != 1 || es[0].State != vault.EpochDestroyed {
		t.Fatalf("Epochs = %+v", es)
	}
	if err := fresh.DestroyEpoch(epoch); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, epoch+".key")); !os.IsNotExist(err) {
		t.Fatalf("DestroyEpoch left the key file: %v", err)
	}
}
