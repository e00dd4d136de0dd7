package media

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/durable"
)

// Spool file names and format.
const (
	headerFile   = "session.json"
	progressFile = "progress" // 8 bytes: ns since start of the last sync, little-endian
	spoolVersion = 1
	spoolFormat  = "s16le" // PCM16 little-endian mono at Rate
)

// header is session.json. It is replaced atomically (temp file, fsync,
// rename, fsync of the folder) whenever it changes: at the start, when a
// stream is added, at each pause and resume, and at the end.
type header struct {
	Version     int            `json:"version"`
	ID          string         `json:"id"`
	Start       time.Time      `json:"start"`
	Rate        int            `json:"rate"`
	Format      string         `json:"format"`
	Streams     []headerStream `json:"streams"`
	Paused      []Interval     `json:"paused,omitempty"`
	PausedSince *time.Duration `json:"paused_since,omitempty"` // an open pause
	Meta        []byte         `json:"meta,omitempty"`
	End         *time.Time     `json:"end,omitempty"` // set by Finish
}

type headerStream struct {
	Label        string           `json:"label"`
	Side         string           `json:"side"`
	File         string           `json:"file"`
	Remote       string           `json:"remote,omitempty"`
	PayloadTypes map[uint8]string `json:"payload_types,omitempty"`
}

func (s *Session) writeHeader() error {
	b, err := json.MarshalIndent(&s.hdr, "", "\t")
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(s.dir, headerFile), b); err != nil {
		return fmt.Errorf("media: spool header: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.IsValid() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Spool is a session's audio on disk, finished or recovered after a crash.
type Spool struct {
	Dir   string
	ID    string
	Start time.Time
	// End is when Finish was called or, for an interrupted session, the
	// last sign of life: the later of the last sync and the end of the
	// audio that reached the disk.
	End     time.Time
	Streams []SpoolStream
	// Paused lists the pauses, as offsets from Start, for marking on the
	// recording. A pause still open at a crash runs to End.
	Paused []Interval
	Meta   []byte
	// Interrupted is set when the session never finished: the process died
	// (or the machine lost power) first.
	Interrupted bool
}

// SpoolStream is a stream as recorded in the spool.
type SpoolStream struct {
	Label        string
	Side         string
	File         string // name within Dir
	PayloadTypes map[uint8]string
}

func (h *header) spool(dir string, d time.Duration) *Spool {
	sp := &Spool{Dir: dir, ID: h.ID, Start: h.Start, End: h.Start.Add(d), Paused: slices.Clone(h.Paused),
		Meta: h.Meta, Interrupted: h.End == nil}
	if h.PausedSince != nil {
		sp.Paused = append(sp.Paused, Interval{From: *h.PausedSince, To: d})
	}
	for _, hs := range h.Streams {
		sp.Streams = append(sp.Streams, SpoolStream{Label: hs.Label, Side: hs.Side, File: hs.File, PayloadTypes: hs.PayloadTypes})
	}
	return sp
}

// Duration is the length of the session and of its recording.
func (sp *Spool) Duration() time.Duration { return sp.End.Sub(sp.Start) }

// Frames is the number of stereo sample frames Render writes.
func (sp *Spool) Frames() int64 { return max(0, int64(sp.Duration())/nsPerSample) }

// Size is the number of bytes Render writes.
func (sp *Spool) Size() int64 { return wavHeaderLen + 4*sp.Frames() }

// Remove deletes the spool, once the recording is safely ingested.
func (sp *Spool) Remove() error {
	if err := os.RemoveAll(sp.Dir); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	return syncDir(filepath.Dir(sp.Dir))
}

// OpenSpool reads the spool in dir (a session's folder). A spool whose
// header is missing or malformed is EINVALID.
func OpenSpool(dir string) (*Spool, error) {
	b, err := os.ReadFile(filepath.Join(dir, headerFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, callvault.Wrap(callvault.EINVALID, err, "not a media spool: no "+headerFile)
		}
		return nil, fmt.Errorf("media: %w", err)
	}
	var h header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, callvault.Wrap(callvault.EINVALID, err, "malformed spool header")
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	if h.End != nil {
		return h.spool(dir, max(0, h.End.Sub(h.Start))), nil
	}
	// Interrupted: the session lasted at least until its last sync and
	// until the end of the audio that reached the disk.
	var d time.Duration
	if p, err := os.ReadFile(filepath.Join(dir, progressFile)); err == nil && len(p) == 8 {
		d = time.Duration(binary.LittleEndian.Uint64(p))
	}
	for _, hs := range h.Streams {
		fi, err := os.Stat(filepath.Join(dir, hs.File))
		if err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		d = max(d, time.Duration(fi.Size()/2*nsPerSample))
	}
	return h.spool(dir, d), nil
}

func (h *header) check() error {
	bad := func(format string, args ...any) error {
		return callvault.Errorf(callvault.EINVALID, "spool header: "+format, args...)
	}
	switch {
	case h.Version != spoolVersion:
		return bad("version %d, want %d", h.Version, spoolVersion)
	case h.Rate != Rate || h.Format != spoolFormat:
		return bad("%s at %d Hz, want %s at %d Hz", h.Format, h.Rate, spoolFormat, Rate)
	case !validID(h.ID):
		return bad("id %q", h.ID)
	}
	for _, hs := range h.Streams {
		if hs.File == "" || hs.File != filepath.Base(hs.File) || strings.HasPrefix(hs.File, ".") || hs.File == headerFile || hs.File == progressFile {
			return bad("stream file %q", hs.File)
		}
		if hs.Side != callvault.SideExternal && hs.Side != callvault.SideStaff && hs.Side != SideMixed {
			return bad("stream side %q", hs.Side)
		}
	}
	return nil
}

// Recover returns the spools under root (the Config.Dir of the sessions),
// oldest first: those of sessions that never finished, marked Interrupted,
// and those finished but not yet removed (the process died before the
// ingest completed). Call it at start-up, before any session is created. A
// folder that is not a readable spool is reported in the error (all such
// problems joined) and the others are still returned.
func Recover(root string) ([]*Spool, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	var out []*Spool
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sp, err := OpenSpool(filepath.Join(root, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("spool %s: %w", e.Name(), err))
			continue
		}
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b *Spool) int { return a.Start.Compare(b.Start) })
	return out, errors.Join(errs...)
}

// readTrack fills p with the samples of a spool file from sample off on;
// past the end of the file (or in a hole) it is silence.
func readTrack(f *os.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, 2*off)
	if err != nil && err != io.EOF {
		return fmt.Errorf("media: %w", err)
	}
	clear(p[n&^1:]) // a torn final sample (power loss mid-write) is dropped too
	return nil
}
