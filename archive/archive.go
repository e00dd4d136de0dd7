// Package archive is the recording archive's use cases: it takes audio in
// (validate, hash, encrypt, store durably, then commit the row), gives audio
// back out (decrypt only the chunks asked for, render G.711 for browsers) and
// reconciles storage with the database after a crash.
//
// It depends only on the root package's interfaces and on the audio codec
// library; cmd/callvault gives it concrete stores.
package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
)

// DefaultMaxSize is the largest recording accepted unless configured.
const DefaultMaxSize = 512 << 20

// Observer is told about ingests, for metrics.
type Observer interface {
	Ingested(source string, bytes int64)
	IngestFailed(source, code string)
}

// EpochStates says whether a key epoch still takes new recordings.
type EpochStates interface {
	EpochOpen(epoch string) (bool, error)
}

// Archive stores and plays recordings.
type Archive struct {
	Recordings callvault.RecordingService
	Academies  callvault.AcademyService
	Blobs      callvault.BlobStore
	Vault      callvault.Vault
	Epochs     EpochStates // optional: lets late arrivals avoid destroyed epochs
	Now        callvault.Clock
	Logger     *slog.Logger
	Observer   Observer

	MaxSize int64 // bytes; DefaultMaxSize when 0

	// Space, when set, is asked before each recording is stored; an error
	// (storage nearly full) refuses the recording and nothing is written.
	Space interface{ Admit() error }
}

// IngestRequest is one recording arriving.
type IngestRequest struct {
	Source *callvault.Source
	Meta   Metadata
	Audio  io.Reader

	// Set by the SIPREC recorder, never by an upload: the session was cut
	// short by a crash; the stretches when recording was paused.
	Interrupted bool
	Pauses      []callvault.Pause
}

// Ingest stores one recording. It returns the recording and created=false
// when (source, source_ref) was already stored: retries are idempotent. Bad
// audio is EINVALID or EUNSUPPORTED, too much of it ETOOLARGE; in every error
// case nothing is left behind.
func (a *Archive) Ingest(ctx context.Context, req IngestRequest) (rec *callvault.Recording, created bool, err error) {
	src := req.Source
	if src == nil {
		return nil, false, callvault.Errorf(callvault.EUNAUTHORIZED, "no ingest source")
	}
	defer func() {
		if err != nil && a.Observer != nil {
			a.Observer.IngestFailed(src.Name, callvault.ErrorCode(err))
		}
	}()
	sys := callvault.NewContextWithActor(ctx, callvault.SystemActor)
	if err := req.Meta.Validate(); err != nil {
		return nil, false, err
	}
	if r, err := a.Recordings.FindRecordingBySourceRef(sys, src.ID, req.Meta.SourceRef); err == nil {
		noteIngest(ctx, r, false)
		return r, false, nil
	} else if callvault.ErrorCode(err) != callvault.ENOTFOUND {
		return nil, false, err
	}

	parts := req.Meta.participants()
	academy, err := a.academyFor(sys, req.Meta.Academy, parts)
	if err != nil {
		return nil, false, err
	}

	u, err := uuid.NewV7()
	if err != nil {
		return nil, false, callvault.Wrap(callvault.EINTERNAL, err, "could not make a recording id")
	}
	id := u.String()
	if a.Space != nil {
		if err := a.Space.Admit(); err != nil {
			return nil, false, err
		}
	}
	epoch, err := a.ingestEpoch(req.Meta.StartedAt)
	if err != nil {
		return nil, false, err
	}
	key := BlobKey(epoch, id)

	sum, size, info, w, err := a.write(sys, key, id, epoch, req.Audio)
	if err != nil {
		return nil, false, err
	}
	// From here the temp blob exists: abort it on every failure path.
	committed := false
	defer func() {
		if err == nil {
			return
		}
		if !committed {
			_ = w.Abort()
		} else if derr := a.Blobs.Delete(context.WithoutCancel(ctx), key); derr != nil {
			a.log().Error("ingest: could not remove blob after failed commit; the sweeper will", "key", key, "err", derr)
		}
	}()

	now := a.now()
	rec = &callvault.Recording{
		ID:           id,
		AcademyID:    academy.ID,
		Academy:      academy.Slug,
		SourceID:     src.ID,
		SourceKind:   src.Kind,
		SourceRef:    req.Meta.SourceRef,
		StartedAt:    req.Meta.StartedAt.UTC().Truncate(time.Millisecond),
		Duration:     info.Duration.Truncate(time.Millisecond),
		Direction:    req.Meta.Direction,
		Category:     req.Meta.Category,
		Interrupted:  req.Interrupted,
		Pauses:       req.Pauses,
		Participants: parts,
		Format:       info.Format,
		Codec:        info.Codec,
		SampleRate:   info.SampleRate,
		Channels:     info.Channels,
		DataOffset:   info.DataOffset,
		DataSize:     info.DataSize,
		Size:         size,
		SHA256:       sum,
		BlobKey:      key,
		KeyEpoch:     epoch,
		State:        callvault.StateStored,
		CreatedAt:    now.UTC().Truncate(time.Millisecond),
	}
	if req.Meta.EndedAt != nil {
		rec.EndedAt = req.Meta.EndedAt.UTC().Truncate(time.Millisecond)
	} else {
		rec.EndedAt = rec.StartedAt.Add(rec.Duration)
	}

	noteIngest(ctx, rec, true)
	// The blob is durable before the row exists: a crash in between leaves
	// an orphan blob for the sweeper, never a row without audio. The row and
	// its audit entry commit together.
	if err = w.Commit(); err != nil {
		return nil, false, callvault.Wrap(callvault.EUNAVAILABLE, err, "recording could not be stored")
	}
	committed = true
	if err = a.Recordings.CreateRecording(sys, rec); err != nil {
		if callvault.ErrorCode(err) == callvault.ECONFLICT {
			// A concurrent retry won the race; return its recording.
			if r, ferr := a.Recordings.FindRecordingBySourceRef(sys, src.ID, req.Meta.SourceRef); ferr == nil {
				noteIngest(ctx, r, false)
				if derr := a.Blobs.Delete(context.WithoutCancel(ctx), key); derr != nil {
					a.log().Error("ingest: could not remove duplicate blob", "key", key, "err", derr)
				}
				return r, false, nil
			}
		}
		return nil, false, err
	}
	if a.Observer != nil {
		a.Observer.Ingested(src.Name, size)
	}
	a.log().Info("recording stored", "id", id, "source", src.Name, "academy", academy.Slug, "bytes", size, "duration", rec.Duration)
	return rec, true, nil
}

// ingestEpoch is the key epoch for a recording that started at started: its
// month, unless retention has closed or destroyed that month's key (every
// recording of it was purged). Then a late arrival is encrypted under the
// current month, so that it is still stored, and is purged by its own
// retain-until.
func (a *Archive) ingestEpoch(started time.Time) (string, error) {
	epoch := callvault.KeyEpoch(started)
	if a.Epochs == nil {
		return epoch, nil
	}
	open, err := a.Epochs.EpochOpen(epoch)
	if err != nil {
		return "", callvault.Wrap(callvault.EUNAVAILABLE, err, "the keyring cannot be read")
	}
	if !open {
		now := callvault.KeyEpoch(a.now())
		a.log().Warn("ingest: the key epoch of the call's month is closed; encrypting under this month's", "epoch", epoch, "using", now)
		return now, nil
	}
	return epoch, nil
}

// noteIngest describes the ingest in the pending audit entry. No phone
// numbers: the recording id leads to them for those allowed to see them.
func noteIngest(ctx context.Context, r *callvault.Recording, created bool) {
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		e.TargetType, e.TargetID, e.AcademyID = "recording", r.ID, r.AcademyID
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["created"] = strconv.FormatBool(created)
		e.Details["sha256"] = r.SHA256
		e.Details["bytes"] = strconv.FormatInt(r.Size, 10)
		e.Details["source_ref"] = r.SourceRef
	})
}

// write streams audio through SHA-256 and encryption into a new blob, then
// validates it by reading the ciphertext back through the vault. The caller
// owns the returned writer (commit or abort) when err is nil.
func (a *Archive) write(ctx context.Context, key, id, epoch string, body io.Reader) (string, int64, audio.Info, callvault.BlobWriter, error) {
	var info audio.Info
	w, err := a.Blobs.Create(ctx, key)
	if err != nil {
		return "", 0, info, nil, callvault.Wrap(callvault.EUNAVAILABLE, err, "recording could not be stored")
	}
	sum, size, info, err := a.encryptAndProbe(w, id, epoch, body)
	if err != nil {
		_ = w.Abort()
		return "", 0, info, nil, err
	}
	return sum, size, info, w, nil
}

func (a *Archive) encryptAndProbe(w callvault.BlobWriter, id, epoch string, body io.Reader) (string, int64, audio.Info, error) {
	var info audio.Info
	enc, err := a.Vault.Encrypt(w, id, epoch)
	if err != nil {
		return "", 0, info, callvault.Wrap(callvault.EUNAVAILABLE, err, "recording could not be encrypted")
	}
	h := sha256.New()
	max := a.maxSize()
	size, err := io.Copy(enc, io.TeeReader(io.LimitReader(body, max+1), h))
	if err != nil {
		var ce *callvault.Error
		if errors.As(err, &ce) {
			return "", 0, info, err
		}
		return "", 0, info, callvault.Wrap(callvault.EINVALID, err, "audio upload was interrupted")
	}
	if size > max {
		return "", 0, info, callvault.Errorf(callvault.ETOOLARGE, "audio is larger than the limit of %d bytes", max)
	}
	if size == 0 {
		return "", 0, info, callvault.Errorf(callvault.EINVALID, "audio is empty")
	}
	if err = enc.Close(); err != nil {
		return "", 0, info, callvault.Wrap(callvault.EUNAVAILABLE, err, "recording could not be stored")
	}
	plain, psize, err := a.Vault.Decrypt(w, w.Size(), id, epoch)
	if err != nil {
		return "", 0, info, callvault.Wrap(callvault.EINTERNAL, err, "recording could not be verified after encryption")
	}
	if psize != size {
		return "", 0, info, callvault.Errorf(callvault.EINTERNAL, "encrypted size mismatch")
	}
	if info, err = audio.Probe(plain, psize); err != nil {
		return "", 0, info, err
	}
	return hex.EncodeToString(h.Sum(nil)), size, info, nil
}

func (a *Archive) academyFor(ctx context.Context, slug string, parts []callvault.Participant) (*callvault.Academy, error) {
	if slug != "" {
		ac, err := a.Academies.FindAcademyBySlug(ctx, slug)
		if callvault.ErrorCode(err) == callvault.ENOTFOUND {
			return nil, callvault.Errorf(callvault.EINVALID, "unknown academy %q", slug)
		}
		return ac, err
	}
	all, err := a.Academies.FindAcademies(ctx)
	if err != nil {
		return nil, err
	}
	if ac := callvault.AssignAcademy(all, parts); ac != nil {
		return ac, nil
	}
	for _, ac := range all {
		if ac.Slug == callvault.UnassignedSlug {
			return ac, nil
		}
	}
	return nil, callvault.Errorf(callvault.EINTERNAL, "the unassigned academy is missing")
}

// Audio is a recording's browser-playable rendition, open for random access.
type Audio struct {
	io.ReaderAt
	Size        int64
	ContentType string
	blob        callvault.Blob
}

// Close releases the underlying blob.
func (au *Audio) Close() error { return au.blob.Close() }

// OpenAudio opens the playable rendition of rec. The caller must have
// decided access with callvault.CanPlay first. Only the chunks read are
// decrypted.
func (a *Archive) OpenAudio(ctx context.Context, rec *callvault.Recording) (*Audio, error) {
	b, err := a.Blobs.Open(ctx, rec.BlobKey)
	if err != nil {
		if callvault.ErrorCode(err) == callvault.ENOTFOUND {
			return nil, callvault.Wrap(callvault.EUNAVAILABLE, err, "the audio of this recording is missing")
		}
		return nil, err
	}
	plain, size, err := a.Vault.Decrypt(b, b.Size(), rec.ID, rec.KeyEpoch)
	if err != nil {
		b.Close()
		return nil, callvault.Wrap(callvault.EINTERNAL, err, "the audio of this recording could not be decrypted")
	}
	info := audio.Info{Format: rec.Format, Codec: rec.Codec, SampleRate: rec.SampleRate, Channels: rec.Channels,
		Duration: rec.Duration, DataOffset: rec.DataOffset, DataSize: rec.DataSize}
	r, rsize, ctype, err := audio.Rendition(plain, size, info)
	if err != nil {
		b.Close()
		return nil, err
	}
	return &Audio{ReaderAt: r, Size: rsize, ContentType: ctype, blob: b}, nil
}

// BlobKey is where a recording's ciphertext lives: grouped by key epoch so
// that a month's blobs sit together.
func BlobKey(epoch, id string) string { return "recordings/" + epoch + "/" + id + ".age" }

func (a *Archive) maxSize() int64 {
	if a.MaxSize > 0 {
		return a.MaxSize
	}
	return DefaultMaxSize
}

func (a *Archive) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Archive) log() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

// Rewrap re-encrypts rec's audio under epoch (a hold epoch, so that its
// month's key can be destroyed while a hold keeps it) into a new blob,
// checks that the plaintext still has rec's SHA-256, and calls move with
// the new blob key to re-point the row. Only after move succeeds is the old
// blob deleted; if it fails the new blob is deleted. A crash in between
// leaves an orphan blob for the sweeper, never a row without audio.
func (a *Archive) Rewrap(ctx context.Context, rec *callvault.Recording, epoch string, move func(ctx context.Context, newKey string) error) error {
	b, err := a.Blobs.Open(ctx, rec.BlobKey)
	if err != nil {
		return err
	}
	defer b.Close()
	plain, size, err := a.Vault.Decrypt(b, b.Size(), rec.ID, rec.KeyEpoch)
	if err != nil {
		return err
	}
	newKey := BlobKey(epoch, rec.ID)
	w, err := a.Blobs.Create(ctx, newKey)
	if err != nil {
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "the re-encrypted recording could not be stored")
	}
	sum, n, _, err := a.encryptAndProbe(w, rec.ID, epoch, io.NewSectionReader(plain, 0, size))
	if err != nil {
		_ = w.Abort()
		return err
	}
	if sum != rec.SHA256 || n != rec.Size {
		_ = w.Abort()
		return callvault.Errorf(callvault.EINTERNAL, "recording %s does not match its SHA-256 (%s, %d bytes; stored %s, %d bytes)", rec.ID, sum, n, rec.SHA256, rec.Size)
	}
	if err := w.Commit(); err != nil {
		return callvault.Wrap(callvault.EUNAVAILABLE, err, "the re-encrypted recording could not be stored")
	}
	if err := move(ctx, newKey); err != nil {
		if derr := a.Blobs.Delete(context.WithoutCancel(ctx), newKey); derr != nil {
			a.log().Error("rewrap: could not remove the new blob; the sweeper will", "key", newKey, "err", derr)
		}
		return err
	}
	if err := a.Blobs.Delete(ctx, rec.BlobKey); err != nil {
		a.log().Error("rewrap: could not remove the old blob; the sweeper will", "key", rec.BlobKey, "err", err)
	}
	return nil
}
