package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/durable"
)

// FormatVersion is the version of the manifest and the folder layout this
// package writes. Verify refuses other versions.
const FormatVersion = 1

// Names inside a backup folder. They match the data directory's, so that an
// operator who opens a backup recognises it.
const (
	ManifestName    = "manifest.json"
	DatabaseName    = "callvault.db"
	CheckpointsName = "audit-checkpoints.jsonl"
	KEKName         = "kek"
	KeysDir         = "keys"
	BlobsDir        = "blobs"
)

// Keyring file suffixes (vault): EPOCH.key is a wrapped epoch key,
// EPOCH.destroyed the tombstone of a crypto-shredded epoch, EPOCH.closing
// the marker of an epoch closed to new recordings ahead of destruction.
const (
	keySuffix       = ".key"
	tombstoneSuffix = ".destroyed"
	closingSuffix   = ".closing"
)

// maxManifest bounds the manifest read from backup media: a million blobs
// take about 200 MB of JSON.
const maxManifest = 1 << 30

// Manifest describes a complete backup. It is written last: a folder without
// one is an interrupted backup and is never restored.
type Manifest struct {
	Format        int       `json:"format"`
	CreatedAt     time.Time `json:"created_at"`
	SchemaVersion int       `json:"schema_version"` // of the database copy
	IncludeKeys   bool      `json:"include_keys"`

	// The audit chain's head in the database copy: what a restore brings
	// back. AuditPublicKey, when given, is the checkpoint key in the form
	// "callvault audit pubkey" prints.
	AuditSeq       int64  `json:"audit_seq"`
	AuditHead      string `json:"audit_head"`
	AuditPublicKey string `json:"audit_public_key,omitempty"`

	Recordings int `json:"recordings"` // rows in the database copy
	Blobs      int `json:"blobs"`      // ciphertext files copied
	// Vanished lists recordings whose blob was gone when it was copied:
	// purged by retention after the snapshot (or already missing).
	Vanished []string `json:"vanished,omitempty"`

	// Files lists every file of the backup but the manifest, by path.
	Files []File `json:"files"`
}

// File is one file of a backup.
type File struct {
	Path   string `json:"path"` // slash-separated, relative to the backup folder
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// kind of a file in a backup, from its path.
const (
	kindDatabase = iota + 1
	kindCheckpoints
	kindKEK
	kindKey
	kindTombstone
	kindClosing
	kindBlob
)

// classify says what a manifest path is, and for keyring files the epoch
// and for blobs the blob key. Anything else is refused: a restore copies
// only what it understands, and never outside the places it names.
func classify(p string) (kind int, name string, err error) {
	bad := func(why string) (int, string, error) {
		return 0, "", callvault.Errorf(callvault.EINVALID, "backup manifest lists %q: %s", p, why)
	}
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || path.Clean(p) != p {
		return bad("not a clean relative path")
	}
	for seg := range strings.SplitSeq(p, "/") {
		if strings.HasPrefix(seg, ".") {
			return bad("a path segment starts with a dot")
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return bad("a control character")
			}
		}
	}
	switch p {
	case DatabaseName:
		return kindDatabase, "", nil
	case CheckpointsName:
		return kindCheckpoints, "", nil
	case KEKName:
		return kindKEK, "", nil
	}
	if rest, ok := strings.CutPrefix(p, KeysDir+"/"); ok {
		if epoch, ok := strings.CutSuffix(rest, keySuffix); ok && validEpoch(epoch) {
			return kindKey, epoch, nil
		}
		if epoch, ok := strings.CutSuffix(rest, tombstoneSuffix); ok && validEpoch(epoch) {
			return kindTombstone, epoch, nil
		}
		if epoch, ok := strings.CutSuffix(rest, closingSuffix); ok && validEpoch(epoch) {
			return kindClosing, epoch, nil
		}
		return bad("not a keyring file (EPOCH.key, EPOCH.destroyed or EPOCH.closing)")
	}
	if key, ok := strings.CutPrefix(p, BlobsDir+"/"); ok {
		return kindBlob, key, nil
	}
	return bad("not a file callvault backs up")
}

// validEpoch accepts a key epoch name: "2026-11" or "hold-2026-11".
func validEpoch(epoch string) bool {
	month := strings.TrimPrefix(epoch, callvault.HoldEpochPrefix)
	t, err := time.Parse("2006-01", month)
	return err == nil && t.Format("2006-01") == month
}

// Verify reads dir's manifest and re-hashes every file it lists. It returns
// the manifest, or an error naming the first file that is missing, of the
// wrong size or with other contents (EINVALID). A folder without a manifest
// is an interrupted backup (ENOTFOUND). Files the manifest does not list are
// ignored, and never restored.
func Verify(dir string) (*Manifest, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if err := checkFile(dir, f); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func readManifest(dir string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, callvault.Errorf(callvault.ENOTFOUND,
			"%s has no %s: it is not a backup, or the backup was interrupted", dir, ManifestName)
	} else if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("backup: read manifest: %w", err)
	}
	if len(b) > maxManifest {
		return nil, callvault.Errorf(callvault.EINVALID, "backup manifest in %s is larger than %d bytes", dir, maxManifest)
	}
	return parseManifest(b)
}

// parseManifest decodes and checks a manifest: known format, every path
// something a backup holds, no path twice, keys only in a key backup, and
// exactly one database.
func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, callvault.Wrap(callvault.EINVALID, err, "backup manifest is not valid JSON")
	}
	if dec.More() {
		return nil, callvault.Errorf(callvault.EINVALID, "backup manifest has data after its end")
	}
	if m.Format != FormatVersion {
		return nil, callvault.Errorf(callvault.EINVALID,
			"backup format %d is not supported (this callvault reads format %d)", m.Format, FormatVersion)
	}
	seen := make(map[string]bool, len(m.Files))
	dbs := 0
	for _, f := range m.Files {
		kind, _, err := classify(f.Path)
		if err != nil {
			return nil, err
		}
		if seen[f.Path] {
			return nil, callvault.Errorf(callvault.EINVALID, "backup manifest lists %q twice", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || len(f.SHA256) != 64 || hex.EncodeToString(mustHex(f.SHA256)) != f.SHA256 {
			return nil, callvault.Errorf(callvault.EINVALID, "backup manifest entry %q has a bad size or SHA-256", f.Path)
		}
		switch kind {
		case kindDatabase:
			dbs++
		case kindKEK, kindKey, kindTombstone, kindClosing:
			if !m.IncludeKeys {
				return nil, callvault.Errorf(callvault.EINVALID,
					"backup manifest lists %q but says the backup has no keys", f.Path)
			}
		}
	}
	if dbs != 1 {
		return nil, callvault.Errorf(callvault.EINVALID, "backup manifest does not list %s", DatabaseName)
	}
	return &m, nil
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}

// checkFile re-hashes one file of a backup against its manifest entry.
func checkFile(dir string, f File) error {
	p := filepath.Join(dir, filepath.FromSlash(f.Path))
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return callvault.Errorf(callvault.EINVALID, "backup file %s is missing", f.Path)
	} else if err != nil {
		return fmt.Errorf("backup: %s: %w", f.Path, err)
	} else if !fi.Mode().IsRegular() {
		return callvault.Errorf(callvault.EINVALID, "backup file %s is not a regular file", f.Path)
	}
	r, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer r.Close()
	got, err := hashCopy(context.Background(), io.Discard, r)
	if err != nil {
		return fmt.Errorf("backup: read %s: %w", f.Path, err)
	}
	return matches(f, got)
}

// matches reports whether what was read is what the manifest says.
func matches(want, got File) error {
	if got.Size != want.Size {
		return callvault.Errorf(callvault.EINVALID,
			"backup file %s holds %d bytes, the manifest says %d: it was altered or damaged", want.Path, got.Size, want.Size)
	}
	if got.SHA256 != want.SHA256 {
		return callvault.Errorf(callvault.EINVALID,
			"backup file %s does not match its SHA-256 in the manifest: it was altered or damaged", want.Path)
	}
	return nil
}

// writeManifest writes the manifest atomically (temp, fsync, rename, fsync
// of the folder): its presence means the backup is complete.
func writeManifest(dir string, m *Manifest) error {
	slices.SortFunc(m.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, ManifestName), append(b, '\n')); err != nil {
		return fmt.Errorf("backup: manifest: %w", err)
	}
	return nil
}

// hashCopy copies r to w, stopping when ctx ends, and returns the size and
// SHA-256 of what was copied.
func hashCopy(ctx context.Context, w io.Writer, r io.Reader) (File, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), ctxReader{ctx, r})
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, err
}

// fileOf describes data as the file rel.
func fileOf(rel string, data []byte) File {
	sum := sha256.Sum256(data)
	return File{Path: rel, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// ctxReader ends a long copy when its context does.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
