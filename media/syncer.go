package media

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// The spool syncer is one goroutine for the whole process. Every SyncEvery
// it writes out the audio each session's streams have buffered (one write
// per stream), records in each session's progress file that the session is
// alive, and then makes all of it durable at once: on Linux with one
// syncfs(2) per file system that holds spools, elsewhere with an fsync of
// each file written.
//
// One syncfs a second costs a single journal commit and device flush for
// every session together, where an fsync of each file costs one for each
// file (with 2,000 sessions, 6,000 commits a second; they were most of the
// recorder's CPU). syncfs also writes out whatever else on that file system
// is dirty at the time; callvault's own files there are fsynced by their
// writers anyway.
//
// Sessions' sync times are aligned to a grid (multiples of their SyncEvery
// from the syncer's start), so sessions with the same SyncEvery are synced
// together: one syncfs covers them all.
type syncer struct {
	mu       sync.Mutex
	sessions map[*Session]struct{} // nil until the first session
	epoch    time.Time             // the grid's origin
	kick     chan struct{}         // a session was added: recompute the next wake-up
	due      []*Session            // the run's scratch
}

var spoolSyncer = &syncer{kick: make(chan struct{}, 1)}

// add starts syncing s every s.syncEvery.
func (y *syncer) add(s *Session) {
	y.mu.Lock()
	if y.sessions == nil {
		y.sessions = map[*Session]struct{}{}
		y.epoch = time.Now()
		go y.run()
	}
	s.nextSync = y.after(time.Now(), s.syncEvery)
	y.sessions[s] = struct{}{}
	y.mu.Unlock()
	select {
	case y.kick <- struct{}{}:
	default:
	}
}

// remove stops syncing s. When it returns the syncer does not touch s's
// files any more, and is not in the middle of writing them.
func (y *syncer) remove(s *Session) {
	y.mu.Lock()
	delete(y.sessions, s)
	y.mu.Unlock()
	s.syncMu.Lock()
	s.detached = true
	s.syncMu.Unlock()
}

// after is the first point of the grid of period every after now.
func (y *syncer) after(now time.Time, every time.Duration) time.Time {
	return y.epoch.Add((now.Sub(y.epoch)/every + 1) * every)
}

func (y *syncer) run() {
	timer := time.NewTimer(time.Hour)
	for {
		now := time.Now()
		next := now.Add(time.Hour)
		y.mu.Lock()
		for s := range y.sessions {
			if !now.Before(s.nextSync) {
				y.due = append(y.due, s)
				s.nextSync = y.after(now, s.syncEvery)
			}
			if s.nextSync.Before(next) {
				next = s.nextSync
			}
		}
		due := y.due
		y.mu.Unlock()
		if len(due) > 0 {
			syncSessions(due)
			clear(due)
			y.due = due[:0]
		}
		timer.Reset(time.Until(next))
		select {
		case <-timer.C:
		case <-y.kick:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// syncSessions writes out the sessions' buffered audio and progress, then
// makes it durable.
func syncSessions(due []*Session) {
	var fss []*fileSystem
	for _, s := range due {
		if s.writeOut() && s.fs != nil && !containsFS(fss, s.fs) {
			fss = append(fss, s.fs)
		}
	}
	for _, fs := range fss {
		if err := fs.sync(); err != nil {
			err = fmt.Errorf("media: syncfs %s: %w", fs.name, err)
			for _, s := range due {
				if s.fs == fs {
					s.fail(err)
				}
			}
		}
	}
}

func containsFS(fss []*fileSystem, fs *fileSystem) bool {
	for _, f := range fss {
		if f == fs {
			return true
		}
	}
	return false
}

// writeOut reads the session's sockets, then writes what its streams have
// buffered (and the tail of a stream that went quiet with a hole in its
// reorder buffer; see Stream.flushStale) and the progress file. Where the
// file system cannot be synced as a whole (s.fs is nil), it fsyncs the
// files it wrote too. It reports whether the session is
// still being synced.
func (s *Session) writeOut() bool {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.detached {
		return false
	}
	s.mu.Lock()
	streams := s.streams
	s.mu.Unlock()
	now := s.since(s.now())
	var errs []error
	for _, st := range streams {
		st.mu.Lock()
		st.flushStale(int64(now))
		dirty, f := st.track.dirty, st.track.f
		st.track.dirty = false
		st.mu.Unlock()
		if dirty && s.fs == nil {
			if err := f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("media: fsync %s: %w", f.Name(), err))
			}
		}
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(now))
	if _, err := s.progress.WriteAt(b[:], 0); err != nil {
		errs = append(errs, fmt.Errorf("media: %w", err))
	} else if s.fs == nil {
		if err := s.progress.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("media: fsync progress: %w", err))
		}
	}
	if len(errs) > 0 {
		s.fail(errs[0])
	}
	return true
}

// fail records err as the session's error unless it has one.
func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}
