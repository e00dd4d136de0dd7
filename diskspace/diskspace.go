// Package diskspace watches the free space under callvault's data directory,
// blob store and database, so that a full disk is met by a warning and a
// clear refusal rather than by a half-written recording or a database that
// cannot commit. The policy:
//
//   - at or below Warn (say 10%), admins are alerted, and reminded daily;
//   - at or below Floor (say 2GB), new recordings are refused with
//     EUNAVAILABLE, so sources keep the call and retry later; playback,
//     search and the audit trail go on, and room is left for them;
//   - if free space cannot be measured, new recordings are refused too (fail
//     closed) and admins are alerted;
//   - nothing is ever deleted to make room: recordings leave only through
//     retention and purges, under their own rules, which a full disk does
//     not change.
//
// Admit is checked before a recording is stored, not while it streams, so
// the floor must leave room for the uploads already admitted (at most
// --max-upload each). State lives in memory: after a restart, a disk that is
// still low is alerted again.
package diskspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"strings"
	"sync"
	"time"

	"github.com/callvault/callvault"
)

// Level is how close to full the worst watched filesystem is.
type Level string

const (
	LevelOK       Level = "ok"       // above Warn
	LevelLow      Level = "low"      // at or below Warn: admins are alerted
	LevelCritical Level = "critical" // at or below Floor: new recordings are refused
	LevelUnknown  Level = "unknown"  // free space cannot be measured: refused too
)

// rank orders levels from best to worst. Not knowing ranks worst: it refuses
// recordings like critical, and may hide a disk that is full.
func (l Level) rank() int {
	switch l {
	case LevelOK:
		return 0
	case LevelLow:
		return 1
	case LevelCritical:
		return 2
	}
	return 3
}

// Status is the result of one check: the worst of the watched paths.
type Status struct {
	Level     Level     `json:"level"`
	Path      string    `json:"path"` // the worst path
	Free      uint64    `json:"free_bytes"`
	Total     uint64    `json:"total_bytes"`
	Warn      uint64    `json:"warn_bytes"`  // Monitor.Warn on this filesystem
	Floor     uint64    `json:"floor_bytes"` // Monitor.Floor on this filesystem
	CheckedAt time.Time `json:"checked_at"`
	Err       string    `json:"error,omitempty"` // why free space is unknown; for operators
}

// ReminderEvery is how often Alert is called again while the level is not OK.
const ReminderEvery = 24 * time.Hour

// admitMaxAge is how old a measurement Admit may rely on: a burst of
// uploads costs one statfs a second, and a disk filling up goes unnoticed
// for at most that long.
const admitMaxAge = time.Second

// Monitor checks free space on Paths. Set the fields, call Validate, then
// run Run in the background and Admit before storing each recording. Its
// methods are safe for concurrent use.
type Monitor struct {
	// Paths are the directories to watch: the data directory, the blob
	// folder, the database folder. Several on one filesystem are fine.
	Paths []string
	Warn  Threshold
	Floor Threshold
	// Statfs measures one path; nil means Usage.
	Statfs func(path string) (free, total uint64, err error)
	Now    func() time.Time // nil means time.Now
	Logger *slog.Logger     // nil means slog.Default()
	// Alert is called by Check on every change of level (recovery included)
	// and every ReminderEvery while the level is not OK, e.g. to e-mail the
	// admins. It may be slow; Admit never waits for it.
	Alert func(ctx context.Context, s Status)

	checking sync.Mutex // serialises Check, so alerts go out in order

	mu        sync.Mutex
	status    Status
	checked   bool      // status holds a measurement
	reported  Level     // the level last logged and alerted; "" before the first Check
	alertedAt time.Time // when Alert was last called
}

// Validate reports a configuration that cannot work: no paths, an unset
// threshold, or a Floor not below Warn. (A percentage and a size can only be
// compared on a disk; should the floor be the higher there, the level is
// critical as soon as free space reaches it.)
func (m *Monitor) Validate() error {
	if len(m.Paths) == 0 {
		return errors.New("disk space: no paths to watch")
	}
	for _, p := range m.Paths {
		if p == "" {
			return errors.New("disk space: an empty path to watch")
		}
	}
	switch {
	case m.Warn.IsZero():
		return errors.New("disk space: the warn threshold is not set")
	case m.Floor.IsZero():
		return errors.New("disk space: the floor is not set")
	case m.Warn.IsPercent() == m.Floor.IsPercent() && m.Floor.Bytes(1e12) >= m.Warn.Bytes(1e12): // same kind: one disk size compares them on all
		return fmt.Errorf("disk space: the floor (%s) must be below the warn threshold (%s)", m.Floor, m.Warn)
	}
	return nil
}

// Run checks every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.Check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check measures every path now, stores the worst as the current status,
// logs a change of level (Warn when low, Error when critical or unknown,
// Info on recovery) and calls Alert as described on Monitor.
func (m *Monitor) Check(ctx context.Context) Status {
	m.checking.Lock()
	defer m.checking.Unlock()
	s := m.measure()
	m.mu.Lock()
	m.store(s)
	first := m.reported == ""
	prev := m.reported
	if first {
		prev = LevelOK // nothing to report until something is wrong
	}
	changed := s.Level != prev
	remind := !changed && s.Level != LevelOK && s.CheckedAt.Sub(m.alertedAt) >= ReminderEvery
	m.reported = s.Level
	if changed || remind {
		m.alertedAt = s.CheckedAt
	}
	m.mu.Unlock()

	switch {
	case changed || remind:
		m.log(s)
		if m.Alert != nil {
			m.Alert(ctx, s)
		}
	case first:
		m.logger().Info("free disk space", m.attrs(s)...)
	}
	return s
}

// Status returns the last measurement, without measuring: cheap enough for
// every /metrics scrape and page view. Before any, its level is unknown.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.checked {
		return Status{Level: LevelUnknown, Err: "not checked yet"}
	}
	return m.status
}

// Admit is called before storing a new recording. It returns nil if there
// is room, and otherwise an EUNAVAILABLE *callvault.Error, telling the
// source to keep the call and retry: when free space is at or below Floor on
// any watched path, or cannot be measured. It measures again when the last
// measurement is over a second old; it neither logs nor alerts (Check does).
func (m *Monitor) Admit() error {
	now := m.now()
	m.mu.Lock()
	s, age := m.status, now.Sub(m.status.CheckedAt)
	fresh := m.checked && age >= 0 && age <= admitMaxAge
	m.mu.Unlock()
	if !fresh {
		s = m.measure()
		m.mu.Lock()
		m.store(s)
		m.mu.Unlock()
	}
	switch s.Level {
	case LevelOK, LevelLow:
		return nil
	case LevelCritical:
		floor := formatBytes(s.Floor)
		if m.Floor.IsPercent() {
			floor += " (" + m.Floor.String() + ")"
		}
		return callvault.Errorf(callvault.EUNAVAILABLE,
			"storage is nearly full (%s free on %s, floor %s): new recordings are refused until space is freed; nothing has been deleted",
			formatBytes(s.Free), s.Path, floor)
	}
	return callvault.Wrap(callvault.EUNAVAILABLE, errors.New(s.Err),
		fmt.Sprintf("free disk space cannot be determined on %s: new recordings are refused until it can; nothing has been deleted", s.Path))
}

// store keeps s unless a later measurement is already stored. m.mu is held.
func (m *Monitor) store(s Status) {
	if !m.checked || !s.CheckedAt.Before(m.status.CheckedAt) {
		m.status, m.checked = s, true
	}
}

// measure stats every path and returns the worst.
func (m *Monitor) measure() Status {
	now := m.now()
	if len(m.Paths) == 0 {
		return Status{Level: LevelUnknown, CheckedAt: now, Err: "no paths to watch"}
	}
	statfs := m.Statfs
	if statfs == nil {
		statfs = Usage
	}
	var worst Status
	for i, p := range m.Paths {
		s := Status{Path: p, CheckedAt: now}
		free, total, err := statfs(p)
		s.Warn, s.Floor = m.Warn.Bytes(total), m.Floor.Bytes(total)
		switch {
		case err != nil:
			s.Level, s.Err = LevelUnknown, err.Error()
		case free <= s.Floor:
			s.Level, s.Free, s.Total = LevelCritical, free, total
		case free <= s.Warn:
			s.Level, s.Free, s.Total = LevelLow, free, total
		default:
			s.Level, s.Free, s.Total = LevelOK, free, total
		}
		if i == 0 || worse(s, worst) {
			worst = s
		}
	}
	return worst
}

// worse reports whether a is worse than b: a worse level, or at the same
// level less room above its floor (free - floor, which may be negative).
func worse(a, b Status) bool {
	if ra, rb := a.Level.rank(), b.Level.rank(); ra != rb {
		return ra > rb
	}
	// a.Free - a.Floor < b.Free - b.Floor, in 65 bits so nothing overflows.
	xlo, xhi := bits.Add64(a.Free, b.Floor, 0)
	ylo, yhi := bits.Add64(b.Free, a.Floor, 0)
	return xhi < yhi || xhi == yhi && xlo < ylo
}

func (m *Monitor) log(s Status) {
	switch s.Level {
	case LevelOK:
		m.logger().Info("free disk space has recovered: new recordings are accepted again", m.attrs(s)...)
	case LevelLow:
		m.logger().Warn("free disk space is low: free some before it reaches the floor, where new recordings are refused", m.attrs(s)...)
	case LevelCritical:
		m.logger().Error("free disk space is at the floor: new recordings are refused until space is freed; nothing has been deleted", m.attrs(s)...)
	default:
		m.logger().Error("free disk space cannot be determined: new recordings are refused", m.attrs(s)...)
	}
}

func (m *Monitor) attrs(s Status) []any {
	a := []any{"path", s.Path}
	if s.Err != "" {
		return append(a, "err", s.Err)
	}
	return append(a, "free", formatBytes(s.Free), "total", formatBytes(s.Total),
		"warn", m.Warn.String(), "floor", m.Floor.String())
}

func (m *Monitor) now() time.Time {
	if m.Now == nil {
		return time.Now()
	}
	return m.Now()
}

func (m *Monitor) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.Default()
	}
	return m.Logger
}

// formatBytes writes n for people, in powers of 1000 with one decimal
// rounded down, so that a disk just under its floor never reads as at it.
func formatBytes(n uint64) string {
	if n < 1000 {
		return fmt.Sprintf("%d bytes", n)
	}
	unit, name := uint64(1000), "KB"
	for _, next := range strings.Fields("MB GB TB PB EB") {
		if n/unit < 1000 {
			break
		}
		unit, name = unit*1000, next
	}
	whole, tenth := n/unit, n%unit/(unit/10)
	if tenth == 0 {
		return fmt.Sprintf("%d %s", whole, name)
	}
	return fmt.Sprintf("%d.%d %s", whole, tenth, name)
}
