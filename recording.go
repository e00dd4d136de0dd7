package callvault

import (
	"context"
	"io"
	"time"
)

// Source kinds: how a recording reached callvault.
const (
	SourceSIPREC = "siprec"
	SourceAPI    = "api"
	SourceImport = "import"
)

// Directions of a call, seen from the trust.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
	DirectionInternal = "internal"
)

// Participant sides. In stereo audio the left channel is the external party
// and the right channel the staff side.
const (
	SideExternal = "external"
	SideStaff    = "staff"
)

// Recording states.
const (
	StateStored  = "stored"  // blob durable, row committed
	StateMissing = "missing" // the sweeper found the row but not its blob
)

// Recording is one recorded call. Audio is stored encrypted in the blob store
// under BlobKey; the plaintext is never written to disk.
type Recording struct {
	ID         string        `json:"id"` // UUIDv7, time-ordered
	AcademyID  int64         `json:"academy_id"`
	Academy    string        `json:"academy"` // slug, filled on reads
	SourceID   int64         `json:"source_id"`
	SourceKind string        `json:"source"`     // siprec, api, import
	SourceRef  string        `json:"source_ref"` // Call-ID, PBX uniqueid, file name
	StartedAt  time.Time     `json:"started_at"`
	EndedAt    time.Time     `json:"ended_at"`
	Duration   time.Duration `json:"-"`
	Direction  string        `json:"direction"`
	Category   string        `json:"category,omitempty"` // slug of its Category, "" for none

	Participants []Participant `json:"participants"`

	// Audio as stored: container, codec and layout, from the audio itself.
	Format     string `json:"format"` // wav, ogg, mp3
	Codec      string `json:"codec"`  // pcm16, ulaw, alaw, opus, mp3
	SampleRate int    `json:"sample_rate"`
	Channels   int    `json:"channels"`
	DataOffset int64  `json:"-"`      // offset of the sample data (WAV)
	DataSize   int64  `json:"-"`      // length of the sample data (WAV)
	Size       int64  `json:"size"`   // bytes of the original file
	SHA256     string `json:"sha256"` // hex SHA-256 of the original file

	BlobKey  string `json:"-"`
	KeyEpoch string `json:"-"` // e.g. "2026-11": month of StartedAt in London

	// Interrupted: the session was cut short (the recorder crashed) and
	// holds the audio up to the last flush. Pauses are the stretches when
	// recording was paused (hold, payment details); they are silent.
	Interrupted bool    `json:"interrupted,omitempty"`
	Pauses      []Pause `json:"pauses,omitempty"`

	RetainUntil time.Time `json:"retain_until"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
}

// Pause is a stretch of a recording, from and to offsets from its start,
// when recording was paused.
type Pause struct {
	From time.Duration `json:"from"`
	To   time.Duration `json:"to"`
}

// Participant is one party to a call.
type Participant struct {
	Number    string `json:"number,omitempty"` // E.164 when it could be parsed, else as given
	Extension string `json:"extension,omitempty"`
	Name      string `json:"name,omitempty"`
	Side      string `json:"side"`
}

// DurationSeconds is the duration for JSON and templates.
func (r *Recording) DurationSeconds() float64 { return r.Duration.Seconds() }

// RecordingFilter selects recordings. Zero fields do not filter.
type RecordingFilter struct {
	From, To    time.Time // started_at in [From, To)
	Number      string    // any participant; full number or trailing digits
	Extension   string
	AcademyID   int64
	Direction   string
	MinDuration time.Duration
	MaxDuration time.Duration
	SourceKind  string
	After       string // keyset cursor: return recordings older than this id
	Limit       int    // default 50, max 200
}

// CountCap bounds the total returned by FindRecordings so that counting never
// dominates a search; a total equal to CountCap means "at least".
const CountCap = 10000

// RecordingService stores recording metadata. Reads are scoped to the actor
// in the context: the academy scope is applied inside the query.
type RecordingService interface {
	// CreateRecording inserts r and its participants. Returns ECONFLICT if
	// (SourceID, SourceRef) already exists.
	CreateRecording(ctx context.Context, r *Recording) error

	// FindRecordingByID returns ENOTFOUND if the recording does not exist or
	// is outside the actor's scope.
	FindRecordingByID(ctx context.Context, id string) (*Recording, error)

	// FindRecordingBySourceRef finds a recording by its source reference,
	// for idempotent ingest. Returns ENOTFOUND.
	FindRecordingBySourceRef(ctx context.Context, sourceID int64, ref string) (*Recording, error)

	// FindRecordings searches newest first. It returns at most f.Limit
	// recordings, the total matching (capped at CountCap) and the cursor for
	// the next page ("" when there is none). EFORBIDDEN if the actor may not
	// search.
	FindRecordings(ctx context.Context, f RecordingFilter) ([]*Recording, int, string, error)

	// RecordingBlobKeys calls fn for every recording's blob key (sweeper).
	RecordingBlobKeys(ctx context.Context, fn func(id, key string) error) error

	// SetRecordingState changes a recording's state.
	SetRecordingState(ctx context.Context, id, state string) error
}

// BlobStore keeps opaque (already encrypted) blobs. Keys are slash-separated
// relative paths made by callvault, never by clients.
type BlobStore interface {
	// Create starts a new blob. Nothing is visible at key until Commit, which
	// makes the blob durable (fsync) and atomically visible.
	Create(ctx context.Context, key string) (BlobWriter, error)
	// Open returns ENOTFOUND if key does not exist.
	Open(ctx context.Context, key string) (Blob, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Walk calls fn for every committed blob and every abandoned temporary
	// blob (temp=true), with its modification time.
	Walk(ctx context.Context, fn func(key string, modTime time.Time, temp bool) error) error
}

// BlobWriter is a blob being written. ReadAt reads back what has been written
// so far, so the ingest path can validate before committing.
type BlobWriter interface {
	io.Writer
	io.ReaderAt
	Size() int64
	Commit() error
	Abort() error
}

// Blob is a committed blob open for random access.
type Blob interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Vault encrypts audio before it touches storage. Each recording has a fresh
// file key wrapped under its key epoch; the recording id is bound into the
// ciphertext so a blob moved to another id fails to decrypt.
type Vault interface {
	// Encrypt returns a writer that encrypts to dst. Close flushes the last
	// chunk; the ciphertext is incomplete until then.
	Encrypt(dst io.Writer, id, epoch string) (io.WriteCloser, error)
	// Decrypt returns random-access plaintext for ciphertext src of size
	// bytes. Reads fail if any chunk was altered.
	Decrypt(src io.ReaderAt, size int64, id, epoch string) (io.ReaderAt, int64, error)
}

// KeyEpoch returns the key epoch of a recording that started at t: its
// calendar month in Europe/London.
func KeyEpoch(t time.Time) string { return t.In(London).Format("2006-01") }

// HoldEpochPrefix names the epochs that held recordings are re-wrapped
// under when their own month's key is destroyed: "hold-2026-11" holds what
// was re-wrapped in November 2026.
const HoldEpochPrefix = "hold-"

// HoldEpoch returns the hold epoch for re-wrapping at t.
func HoldEpoch(t time.Time) string { return HoldEpochPrefix + KeyEpoch(t) }

// States of a key epoch.
const (
	KeyEpochActive    = "active"
	KeyEpochClosing   = "closing" // takes no new recordings; destroyed once nothing can still need it
	KeyEpochDestroyed = "destroyed"
)

// KeyEpochInfo describes one key epoch of the keyring.
type KeyEpochInfo struct {
	Epoch       string    `json:"epoch"` // "2026-11" or "hold-2026-11"
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at,omitzero"`   // when the key was made; zero once destroyed
	ClosedAt    time.Time `json:"closed_at,omitzero"`    // zero unless closing
	DestroyedAt time.Time `json:"destroyed_at,omitzero"` // zero unless destroyed
}
