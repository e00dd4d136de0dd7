// Package media is the media side of the SIPREC recording server: it
// receives the RTP of one recording session's streams (SRTP with SDES keys
// too), decodes each packet by its payload type (G.711 µ-law and A-law,
// G.722, Opus, skipping DTMF events), puts it back in order and on the
// session's wall-clock timeline, and spools the decoded audio to disk as it
// arrives, so that a crash loses at most about the last second.
// When the session ends, the spool becomes one stereo PCM16 WAV (left the
// external party, right the staff side) exactly as long as the session,
// which the caller streams into the encrypted ingest path and then deletes.
// Spools of sessions that never finished (kill -9, power loss) are found by
// Recover and rendered the same way, marked interrupted.
//
// Receiving. On Linux no goroutine waits on a stream's socket: a few
// reader goroutines (one per CPU, shared by every session) each take turns
// over their share of the sockets every 200 ms and read what each holds,
// several datagrams a recvmmsg(2) call, without waiting; the sockets are
// taken away from the Go runtime's poller so that datagrams wake nothing.
// A packet's arrival time is the kernel's receive timestamp
// (SO_TIMESTAMPNS), not when a reader got to it, so the pacing does not
// move audio on the timeline or add to the jitter measured. The sockets'
// receive buffers hold what arrives in between (the kernel default, some
// 200 KiB, is seconds of a stream). Pause, Resume, Finish and the
// syncer (before each write-out, and before giving up on a missing
// packet) first read what is waiting in the sockets, so they apply by
// when packets arrived and a sync holds all that arrived before it. Elsewhere, or for a
// Conn that is not a *net.UDPConn, each stream has a goroutine that the
// kernel wakes for every datagram, which costs several times as much CPU.
// See recv_linux.go.
//
// Timeline. Every stream's audio is placed at 8 kHz sample positions
// counted from the session start. Within one SSRC the RTP timestamp decides
// the position, so jitter does not move audio and lost packets leave
// silence of exactly their length. The wall clock anchors: the first packet
// of a stream (and of each new SSRC) goes where its arrival says, and when
// timestamps and wall clock disagree by more than Config.Resync (a sender
// that stopped its clock during hold, or jumped it), the timeline follows
// the wall clock. A sender whose clock runs fast by a few tens of ppm cannot
// be pulled back without dropping audio; its excess is cut at the end of the
// session (about 0.2 s an hour at 50 ppm).
//
// SRTP. A stream given the sender's SDES key (StreamConfig.SRTP;
// AES-CM/HMAC-SHA1 and AES-GCM suites, through pion/srtp) authenticates and
// decrypts every packet before anything else looks at it: a packet that
// fails is dropped and counted (StreamStats.AuthFailed) and cannot latch the
// stream, switch its SSRC or move its timeline; a replayed one is refused.
// The rollover counter is tracked per SSRC. Keys are never written to the
// spool.
//
// Opus. Opus (RTP clock 48 kHz, RFC 7587) is decoded by pion/opus at
// 48 kHz, all three modes (SILK, hybrid, CELT), stereo mixed to mono, and
// brought down to 8 kHz by a low-pass FIR (flat to 3.4 kHz, 60 dB down from
// 4.6 kHz) and decimation; its timestamps are rescaled to the 8 kHz
// timeline. The recording lags the sender's audio by the encoder's
// look-ahead (6.5 ms for libopus) plus the filter's 1.6 ms. Opus costs far
// more CPU than G.711 (tens of microseconds a packet against one, and it is
// decoded during pauses too, to keep the decoder's state), there is no loss
// concealment (a lost packet is silence, as for every codec here), and a
// packet the decoder refuses is silence, counted (StreamStats.Undecodable).
//
// Spool. A folder per session under Config.Dir holds session.json (the
// header: id, start, streams with label, side and rtpmap, pauses, caller
// metadata, and the end once finished; always replaced atomically), one
// raw PCM16 little-endian 8 kHz mono file per stream with sample i at byte
// 2i (holes read as silence), and a progress file with the last time the
// session was known alive. One goroutine for the whole process, the spool
// syncer, comes by every Config.SyncEvery (1 s): it writes out what each
// stream has buffered since (one write a stream; Config.FlushEvery makes
// streams write more often), records the time in the progress file, and
// then makes everything durable at once, with one syncfs(2) per file
// system on Linux (an fsync of each file written elsewhere). Sessions with
// the same SyncEvery are synced together: 2,000 sessions cost one syncfs a
// second rather than 6,000 fsyncs. A kill -9 or a power loss loses at most
// about the last SyncEvery of audio: Recover yields everything up to the
// last sync (and whatever was written since, if the kernel survived). The
// spool is the only place the plaintext audio is written; Spool.Remove
// deletes it.
package media

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callvault/callvault"
)

// Rate is the sample rate of the spool and of the rendered WAV. G.711 is
// 8 kHz; G.722 is decoded to its lower sub-band (0–4 kHz at 8 kHz) and
// Opus filtered down to the same band, which keeps one rate for all of a
// session's streams and the same telephone band as the rest of callvault's
// recordings.
const Rate = 8000

// SideMixed is the side of a stream that carries both parties already mixed
// (some recording clients send one mixed stream): it goes to both channels.
const SideMixed = "mixed"

// Config configures a session. Dir and ID are required.
type Config struct {
	Dir string // spool folder; the session's files go in Dir/ID
	// ID names the session's spool folder: 1–128 characters of A–Z, a–z,
	// 0–9, '.', '_', '-', not starting with '.'. Use the recording id.
	ID string
	// Start is the session's time zero (default: Now()). Audio that arrives
	// before it is dropped.
	Start time.Time
	// Now is the session's clock (default time.Now). With the default, a
	// packet's arrival is the kernel's receive timestamp; with another
	// clock (tests), it is that clock's reading when the packet is read,
	// up to a reader's pass later.
	Now func() time.Time
	// SyncEvery is how often the session's buffered audio is written out
	// and made durable (default 1 s): what a kill -9 or a power loss can
	// lose. Sessions with the same SyncEvery are synced together.
	SyncEvery time.Duration
	// FlushEvery, if set (at most SyncEvery), makes each stream also write
	// out its audio whenever it has buffered that much, so that a kill -9
	// loses less (a power loss still up to SyncEvery). By default a stream
	// is written only when the session is synced: one write a SyncEvery.
	FlushEvery time.Duration
	// Reorder is how long, in RTP time, a missing packet is waited for
	// before its place becomes silence (default 60 ms; at most 15 packets).
	Reorder time.Duration
	// Resync is how far RTP timestamps may drift from the wall clock before
	// the timeline is re-anchored to the wall clock (default 500 ms). It
	// must exceed the worst network jitter.
	Resync time.Duration
	// Meta is kept in the spool header for the caller (say, the SIPREC
	// metadata and Call-ID), to build the recording after a crash.
	Meta []byte
}

// Interval is a stretch of the session, as offsets from its start.
type Interval struct {
	From time.Duration `json:"from"`
	To   time.Duration `json:"to"`
}

// Session is one recording session: its streams, its spool and its pauses.
// Its methods are safe for concurrent use.
type Session struct {
	id, root, dir string
	start         time.Time
	now           func() time.Time
	realClock     bool // now is time.Now: arrivals are the kernel's timestamps
	syncEvery     time.Duration
	flushAt       int   // bytes; 0: only the syncer writes
	reorder       int64 // ns
	reorderTS     int64 // samples
	resync        int64 // samples
	paused        atomic.Bool

	mu       sync.Mutex
	hdr      header
	streams  []*Stream
	progress *os.File
	finished bool
	err      error

	// The spool syncer's (see syncer.go).
	fs       *fileSystem // synced as a whole; nil: fsync each file
	nextSync time.Time   // guarded by the syncer's mutex
	syncMu   sync.Mutex  // held while the syncer writes the session's files
	detached bool        // the syncer no longer writes them; guarded by syncMu
}

var errFinished = callvault.Errorf(callvault.ECONFLICT, "the recording session has finished")

// NewSession creates the session's spool, writes its header durably and
// starts receiving on the given streams (more can be added with AddStream).
// Invalid configuration is EINVALID, an ID whose spool exists ECONFLICT.
// On error the streams' sockets are left to the caller.
func NewSession(cfg Config, streams ...StreamConfig) (*Session, error) {
	if cfg.Dir == "" {
		return nil, callvault.Errorf(callvault.EINVALID, "no spool folder")
	}
	if !validID(cfg.ID) {
		return nil, callvault.Errorf(callvault.EINVALID, "session id %q cannot name a spool folder", cfg.ID)
	}
	realClock := cfg.Now == nil
	if realClock {
		cfg.Now = time.Now
	}
	if cfg.Start.IsZero() {
		cfg.Start = cfg.Now()
	}
	cfg.SyncEvery = orDefault(cfg.SyncEvery, time.Second)
	cfg.FlushEvery = min(max(cfg.FlushEvery, 0), cfg.SyncEvery)
	cfg.Reorder = orDefault(cfg.Reorder, 60*time.Millisecond)
	cfg.Resync = orDefault(cfg.Resync, 500*time.Millisecond)
	s := &Session{
		id: cfg.ID, root: cfg.Dir, dir: filepath.Join(cfg.Dir, cfg.ID),
		start: cfg.Start, now: cfg.Now, realClock: realClock, syncEvery: cfg.SyncEvery,
		reorder:   int64(cfg.Reorder),
		reorderTS: int64(cfg.Reorder) / nsPerSample,
		resync:    int64(cfg.Resync) / nsPerSample,
		hdr: header{Version: spoolVersion, ID: cfg.ID, Start: cfg.Start.Round(0), Rate: Rate, Format: spoolFormat,
			Meta: cfg.Meta, Streams: []headerStream{}},
	}
	if cfg.FlushEvery > 0 {
		s.flushAt = max(2, 2*int(cfg.FlushEvery/time.Duration(nsPerSample)))
	}
	if err := os.MkdirAll(s.root, 0o700); err != nil {
		return nil, fmt.Errorf("media: spool folder: %w", err)
	}
	fs, err := fileSystemOf(s.root)
	if err != nil {
		return nil, err
	}
	s.fs = fs
	if err := os.Mkdir(s.dir, 0o700); errors.Is(err, os.ErrExist) {
		return nil, callvault.Errorf(callvault.ECONFLICT, "a spool for session %s exists", cfg.ID)
	} else if err != nil {
		return nil, fmt.Errorf("media: spool folder: %w", err)
	}
	if err := s.create(streams); err != nil {
		for _, st := range s.streams {
			st.track.f.Close()
		}
		if s.progress != nil {
			s.progress.Close()
		}
		os.RemoveAll(s.dir)
		return nil, err
	}
	for _, st := range s.streams {
		st.start()
	}
	spoolSyncer.add(s)
	return s, nil
}

func (s *Session) create(streams []StreamConfig) error {
	for _, sc := range streams {
		if err := s.prepare(sc); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(s.dir, progressFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	s.progress = f
	if err := s.writeHeader(); err != nil {
		return err
	}
	return syncDir(s.root)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func validID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return false
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// prepare checks a stream's configuration, creates its spool file and adds
// it to the session and the header (not yet written). The caller holds s.mu
// or owns s alone.
func (s *Session) prepare(sc StreamConfig) error {
	switch {
	case sc.Label == "":
		return callvault.Errorf(callvault.EINVALID, "a stream has no label")
	case sc.Side != callvault.SideExternal && sc.Side != callvault.SideStaff && sc.Side != SideMixed:
		return callvault.Errorf(callvault.EINVALID, "stream %q has side %q, want %s, %s or %s", sc.Label, sc.Side, callvault.SideExternal, callvault.SideStaff, SideMixed)
	case sc.Conn == nil:
		return callvault.Errorf(callvault.EINVALID, "stream %q has no socket", sc.Label)
	}
	for _, hs := range s.hdr.Streams {
		if hs.Label == sc.Label {
			return callvault.Errorf(callvault.EINVALID, "two streams are labelled %q", sc.Label)
		}
	}
	pm, err := payloadTable(sc.PayloadTypes)
	if err != nil {
		return err
	}
	var sr *srtpReceiver
	if sc.SRTP != nil {
		if sr, err = newSRTPReceiver(sc.Label, *sc.SRTP); err != nil {
			return err
		}
	}
	index := len(s.hdr.Streams)
	name := fmt.Sprintf("stream-%d.pcm", index)
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	st := &Stream{
		sess: s, label: sc.Label, side: sc.Side, index: index, conn: sc.Conn,
		remote: unmap(sc.Remote), latch: sc.Latch || !sc.Remote.IsValid(), codecs: pm.codecs, clock48: pm.clock48, srtp: sr,
		fd: -1, track: newTrack(f, s.flushAt), badSeq: -1,
	}
	st.udp, _ = sc.Conn.(*net.UDPConn)
	hs := headerStream{Label: sc.Label, Side: sc.Side, File: name, PayloadTypes: sc.PayloadTypes}
	if sc.Remote.IsValid() {
		hs.Remote = sc.Remote.String()
	}
	s.hdr.Streams = append(s.hdr.Streams, hs)
	s.streams = append(s.streams, st)
	return nil
}

// AddStream adds a stream to a running session (a re-INVITE that adds an m=
// line). Errors as for NewSession; ECONFLICT after Finish.
func (s *Session) AddStream(sc StreamConfig) (*Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return nil, errFinished
	}
	if err := s.prepare(sc); err != nil {
		return nil, err
	}
	st := s.streams[len(s.streams)-1]
	if err := s.writeHeader(); err != nil {
		s.streams = s.streams[:len(s.streams)-1]
		s.hdr.Streams = s.hdr.Streams[:len(s.hdr.Streams)-1]
		st.track.f.Close()
		os.Remove(st.track.f.Name())
		return nil, err
	}
	st.start()
	return st, nil
}

// Start is the session's time zero.
func (s *Session) Start() time.Time { return s.start }

// Dir is the session's spool folder.
func (s *Session) Dir() string { return s.dir }

// since is t as an offset into the session, never negative.
func (s *Session) since(t time.Time) time.Duration { return max(0, t.Sub(s.start)) }

// Pause stops recording until Resume: packets keep being received and
// counted, their audio is not written, and the timeline goes on with
// silence. The pause is in the header (durably) before Pause returns, so it
// survives a crash. Pausing a paused session does nothing.
func (s *Session) Pause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return errFinished
	}
	if s.paused.Load() {
		return nil
	}
	s.collect()          // what arrived before the pause is recorded
	s.paused.Store(true) // before the header write: nothing slips through meanwhile
	at := s.since(s.now())
	s.hdr.PausedSince = &at
	return s.writeHeader()
}

// Resume ends a pause. Resuming a session that is not paused does nothing.
func (s *Session) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return errFinished
	}
	if !s.paused.Load() {
		return nil
	}
	s.hdr.Paused = append(s.hdr.Paused, Interval{From: *s.hdr.PausedSince, To: s.since(s.now())})
	s.hdr.PausedSince = nil
	err := s.writeHeader()
	s.collect() // what arrived during the pause is not
	s.paused.Store(false)
	return err
}

// collect handles what the streams' sockets hold now, rather than at their
// reader's next pass: at a pause and at its end, packets must be taken
// for audio or not by when they arrived. The caller holds s.mu.
func (s *Session) collect() {
	for _, st := range s.streams {
		st.mu.Lock()
		st.collect()
		st.mu.Unlock()
	}
}

// Rekey has the stream labelled label decrypt with the sender's new SDES
// key k from now on, as a re-INVITE or UPDATE that offers another key asks
// (RFC 4568 §7.1.4); a stream that was plain RTP becomes SRTP. What the
// socket holds already is handled first, with the old key; packets of the
// old key still in flight are accepted until the first packet of the new
// one. A key the stream has already is not a change. An unknown label or
// an unusable key is an error, and the stream keeps its key.
func (s *Session) Rekey(label string, k SRTPKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return errFinished
	}
	for _, st := range s.streams {
		if st.label != label {
			continue
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		st.collect()
		r, err := st.rekey(k)
		if err != nil {
			return err
		}
		st.srtp = r
		return nil
	}
	return callvault.Errorf(callvault.EINVALID, "no stream %q to rekey", label)
}

// SetMeta replaces the caller's metadata in the header (durably).
func (s *Session) SetMeta(meta []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return errFinished
	}
	s.hdr.Meta = meta
	return s.writeHeader()
}

// Err returns the first error that cost audio so far (a spool write or
// fsync that failed, a socket that stopped working), or nil. Finish returns
// it too; checking earlier lets the caller alert while the call goes on.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errLocked()
}

func (s *Session) errLocked() error {
	if s.err != nil {
		return s.err
	}
	for _, st := range s.streams {
		st.mu.Lock()
		err := st.track.err
		if err == nil && st.readErr != nil {
			err = fmt.Errorf("media: stream %q stopped receiving: %w", st.label, st.readErr)
		}
		st.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// Stats returns the counters of every stream and their sums.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	streams := s.streams
	s.mu.Unlock()
	var out Stats
	for _, st := range streams {
		st.mu.Lock()
		ss := st.stats()
		st.mu.Unlock()
		out.Streams = append(out.Streams, ss)
		out.Total.Add(ss)
	}
	return out
}

// Finish ends the session now: it stops the streams, closes their sockets,
// plays out what the reorder buffers hold, fsyncs the spool and records the
// end in the header. The returned Spool renders the recording; the session
// lasts from Start to now. If audio could not be written, Finish returns the
// Spool with what reached the disk, and the error. Stats stay readable.
func (s *Session) Finish() (*Spool, error) {
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return nil, errFinished
	}
	s.finished = true
	end := s.now()
	streams := s.streams
	s.mu.Unlock()

	spoolSyncer.remove(s)
	for _, st := range streams {
		st.stop(true)
	}
	var errs []error
	for _, st := range streams {
		st.mu.Lock()
		st.drain()
		st.track.flush()
		if err := st.track.f.Sync(); err != nil && st.track.err == nil {
			st.track.err = fmt.Errorf("media: fsync %s: %w", st.track.f.Name(), err)
		}
		st.track.f.Close()
		st.mu.Unlock()
		st.closeSocket()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.errLocked(); err != nil {
		errs = append(errs, err)
	}
	d := s.since(end)
	// A stream is placed by its first packet's arrival, so one whose first
	// packet came late runs late throughout, and its last audio, which
	// arrived before the end, lies after it. The session lasts until that
	// audio ends, so that nothing received is cut off; the timeline keeps
	// such a shift within 2 Resync.
	for _, st := range streams {
		if st.track.started {
			d = max(d, min(time.Duration(st.track.head()*nsPerSample), s.since(end)+time.Duration(2*s.resync*nsPerSample)))
		}
	}
	if s.hdr.PausedSince != nil {
		s.hdr.Paused = append(s.hdr.Paused, Interval{From: *s.hdr.PausedSince, To: d})
		s.hdr.PausedSince = nil
	}
	e := s.start.Add(d).Round(0)
	s.hdr.End = &e
	if err := s.writeHeader(); err != nil {
		errs = append(errs, err)
	}
	s.progress.Close()
	return s.hdr.spool(s.dir, d), errors.Join(errs...)
}
