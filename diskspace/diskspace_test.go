package diskspace

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

const GB = 1e9

// fakeDisks is a Statfs whose filesystems the test fills and empties.
type fakeDisks struct {
	mu    sync.Mutex
	disks map[string]fakeDisk
	calls int
}

type fakeDisk struct {
	free, total uint64
	err         error
}

func (f *fakeDisks) set(path string, d fakeDisk) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disks == nil {
		f.disks = map[string]fakeDisk{}
	}
	f.disks[path] = d
}

func (f *fakeDisks) statfs(path string) (free, total uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	d, ok := f.disks[path]
	if !ok {
		return 0, 0, errors.New("statfs " + path + ": no such file or directory")
	}
	return d.free, d.total, d.err
}

func (f *fakeDisks) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// testMonitor watches /data on a fake 100 GB disk: warn at 10 GB, floor at
// 2 GB. It records alerts and logs, and its clock moves only when told.
type testMonitor struct {
	*Monitor
	disks  *fakeDisks
	now    time.Time
	alerts []Status
	logs   bytes.Buffer
}

func newTestMonitor(t *testing.T, warn, floor string, paths ...string) *testMonitor {
	t.Helper()
	if len(paths) == 0 {
		paths = []string{"/data"}
	}
	tm := &testMonitor{disks: &fakeDisks{}, now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	tm.Monitor = &Monitor{
		Paths:  paths,
		Warn:   mustParse(t, warn),
		Floor:  mustParse(t, floor),
		Statfs: tm.disks.statfs,
		Now:    func() time.Time { return tm.now },
		Logger: slog.New(slog.NewTextHandler(&tm.logs, nil)),
		Alert:  func(_ context.Context, s Status) { tm.alerts = append(tm.alerts, s) },
	}
	if err := tm.Validate(); err != nil {
		t.Fatal(err)
	}
	return tm
}

// check runs Check with free bytes left on /data and returns the new log lines.
func (tm *testMonitor) check(t *testing.T, free uint64) (Status, string) {
	t.Helper()
	tm.disks.set("/data", fakeDisk{free: free, total: 100 * GB})
	tm.logs.Reset()
	s := tm.Check(context.Background())
	if got := tm.Status(); got != s {
		t.Errorf("Status() = %+v after Check returned %+v", got, s)
	}
	return s, tm.logs.String()
}

func levels(ss []Status) []Level {
	var l []Level
	for _, s := range ss {
		l = append(l, s.Level)
	}
	return l
}

func TestTransitions(t *testing.T) {
	tm := newTestMonitor(t, "10GB", "2GB")
	for i, step := range []struct {
		after  time.Duration
		free   uint64
		level  Level
		alerts []Level // all alerts so far
		log    string  // in the log lines written by this check; "" for none
	}{
		{0, 50 * GB, LevelOK, nil, "level=INFO msg=\"free disk space\""},
		{time.Minute, 20 * GB, LevelOK, nil, ""},
		{time.Minute, 10 * GB, LevelLow, []Level{LevelLow}, "level=WARN"}, // at Warn is low
		{time.Hour, 8 * GB, LevelLow, []Level{LevelLow}, ""},
		{time.Hour, 2*GB + 1, LevelLow, []Level{LevelLow}, ""},
		{time.Minute, 2 * GB, LevelCritical, []Level{LevelLow, LevelCritical}, "level=ERROR"}, // at Floor is critical
		{23 * time.Hour, 1 * GB, LevelCritical, []Level{LevelLow, LevelCritical}, ""},
		{time.Hour, 1 * GB, LevelCritical, []Level{LevelLow, LevelCritical, LevelCritical}, "level=ERROR"}, // 24 h: reminder
		{time.Hour, 1 * GB, LevelCritical, []Level{LevelLow, LevelCritical, LevelCritical}, ""},
		{time.Minute, 5 * GB, LevelLow, []Level{LevelLow, LevelCritical, LevelCritical, LevelLow}, "level=WARN"},
		{time.Minute, 60 * GB, LevelOK, []Level{LevelLow, LevelCritical, LevelCritical, LevelLow, LevelOK}, "level=INFO msg=\"free disk space has recovered"},
		{48 * time.Hour, 60 * GB, LevelOK, []Level{LevelLow, LevelCritical, LevelCritical, LevelLow, LevelOK}, ""}, // no reminders when OK
	} {
		tm.now = tm.now.Add(step.after)
		s, logs := tm.check(t, step.free)
		if s.Level != step.level || s.Free != step.free || s.Path != "/data" || !s.CheckedAt.Equal(tm.now) {
			t.Errorf("step %d: Check with %d bytes free = %+v, want level %s at %v", i, step.free, s, step.level, tm.now)
		}
		if got := levels(tm.alerts); !slices.Equal(got, step.alerts) {
			t.Errorf("step %d (%d bytes free): alerts %v, want %v", i, step.free, got, step.alerts)
		}
		if step.log == "" && logs != "" || !strings.Contains(logs, step.log) {
			t.Errorf("step %d (%d bytes free): logged %q, want %q", i, step.free, logs, step.log)
		}
	}
	last := tm.alerts[len(tm.alerts)-1]
	if last.Free != 60*GB || last.Warn != 10*GB || last.Floor != 2*GB || last.Total != 100*GB {
		t.Errorf("recovery alert %+v, want 60 GB free of 100 GB, warn 10 GB, floor 2 GB", last)
	}
}

func TestFirstCheckAlertsWhenNotOK(t *testing.T) {
	tm := newTestMonitor(t, "10GB", "2GB")
	if _, logs := tm.check(t, 1*GB); !strings.Contains(logs, "level=ERROR") {
		t.Errorf("first check on a full disk logged %q, want an error", logs)
	}
	if got := levels(tm.alerts); !slices.Equal(got, []Level{LevelCritical}) {
		t.Errorf("alerts %v after a first check on a full disk, want [critical]", got)
	}
}

func TestAdmit(t *testing.T) {
	for _, tt := range []struct {
		free uint64
		want string // in the refusal; "" to admit
	}{
		{50 * GB, ""},
		{5 * GB, ""}, // low, but above the floor
		{2*GB + 1, ""},
		{2 * GB, "storage is nearly full (2 GB free on /data, floor 2 GB): new recordings are refused until space is freed; nothing has been deleted"},
		{1999999999, "(1.9 GB free on /data, floor 2 GB)"}, // rounded down: never looks like enough
		{1.25 * GB, "(1.2 GB free on /data, floor 2 GB)"},
		{0, "(0 bytes free on /data, floor 2 GB)"},
	} {
		tm := newTestMonitor(t, "10GB", "2GB")
		tm.disks.set("/data", fakeDisk{free: tt.free, total: 100 * GB})
		err := tm.Admit()
		if tt.want == "" {
			if err != nil {
				t.Errorf("Admit with %d bytes free = %v, want nil", tt.free, err)
			}
			continue
		}
		var e *callvault.Error
		if !errors.As(err, &e) || e.Code != callvault.EUNAVAILABLE || !strings.Contains(e.Message, tt.want) {
			t.Errorf("Admit with %d bytes free = %#v, want an %s *callvault.Error containing %q", tt.free, err, callvault.EUNAVAILABLE, tt.want)
		}
	}
}

func TestAdmitFailsClosed(t *testing.T) {
	tm := newTestMonitor(t, "10GB", "2GB")
	tm.disks.set("/data", fakeDisk{err: errors.New("statfs /data: input/output error")})
	err := tm.Admit()
	if callvault.ErrorCode(err) != callvault.EUNAVAILABLE ||
		callvault.ErrorMessage(err) != "free disk space cannot be determined on /data: new recordings are refused until it can; nothing has been deleted" {
		t.Fatalf("Admit when statfs fails = %v, want EUNAVAILABLE saying free space cannot be determined", err)
	}
	if !strings.Contains(err.Error(), "input/output error") {
		t.Errorf("Admit error %q lost the cause (for operators)", err)
	}
	if s := tm.Status(); s.Level != LevelUnknown || s.Path != "/data" || !strings.Contains(s.Err, "input/output error") {
		t.Errorf("Status() after a failed statfs = %+v, want unknown on /data with the cause", s)
	}
	if len(tm.alerts) != 0 {
		t.Errorf("Admit alerted (%v): alerts are Check's job, ingest must not wait for mail", levels(tm.alerts))
	}
	tm.logs.Reset()
	tm.Check(context.Background())
	if got := levels(tm.alerts); !slices.Equal(got, []Level{LevelUnknown}) || !strings.Contains(tm.logs.String(), "level=ERROR") {
		t.Errorf("Check after a failed statfs: alerts %v, logs %q; want [unknown] and an error", got, tm.logs.String())
	}

	// No paths at all: nothing can be measured, so nothing is admitted.
	empty := &Monitor{Warn: mustParse(t, "10%"), Floor: mustParse(t, "5%")}
	if err := empty.Admit(); callvault.ErrorCode(err) != callvault.EUNAVAILABLE {
		t.Errorf("Admit with no paths = %v, want EUNAVAILABLE", err)
	}
}

func TestAdmitMeasuresAtMostOncePerSecond(t *testing.T) {
	tm := newTestMonitor(t, "10GB", "2GB")
	tm.disks.set("/data", fakeDisk{free: 50 * GB, total: 100 * GB})
	for range 100 {
		if err := tm.Admit(); err != nil {
			t.Fatal(err)
		}
	}
	if n := tm.disks.count(); n != 1 {
		t.Fatalf("100 Admits in the same instant ran statfs %d times, want 1", n)
	}
	tm.disks.set("/data", fakeDisk{free: 1 * GB, total: 100 * GB}) // the disk fills
	tm.now = tm.now.Add(time.Second)
	if err := tm.Admit(); err != nil || tm.disks.count() != 1 {
		t.Fatalf("Admit a second later = %v after %d statfs, want the cached nil after 1", err, tm.disks.count())
	}
	tm.now = tm.now.Add(time.Millisecond)
	if err := tm.Admit(); callvault.ErrorCode(err) != callvault.EUNAVAILABLE || tm.disks.count() != 2 {
		t.Fatalf("Admit over a second later = %v after %d statfs, want a refusal after measuring again", err, tm.disks.count())
	}
	if s := tm.Status(); s.Level != LevelCritical {
		t.Errorf("Status() after Admit measured a full disk = %+v, want critical", s)
	}
	tm.now = tm.now.Add(-time.Hour) // the clock stepped back: do not trust the cache
	tm.disks.set("/data", fakeDisk{free: 50 * GB, total: 100 * GB})
	if err := tm.Admit(); err != nil || tm.disks.count() != 3 {
		t.Errorf("Admit after the clock went back = %v after %d statfs, want nil after measuring again", err, tm.disks.count())
	}
}

func TestPercentages(t *testing.T) {
	tm := newTestMonitor(t, "10%", "2.5%") // of a 100 GB disk: 10 GB and 2.5 GB
	for _, tt := range []struct {
		free  uint64
		level Level
		admit bool
	}{
		{10*GB + 1, LevelOK, true},
		{10 * GB, LevelLow, true},
		{2.5*GB + 1, LevelLow, true},
		{2.5 * GB, LevelCritical, false},
	} {
		s, _ := tm.check(t, tt.free)
		if s.Level != tt.level || s.Warn != 10*GB || s.Floor != 2.5*GB {
			t.Errorf("%d bytes free of 100 GB: %+v, want %s with warn 10 GB and floor 2.5 GB", tt.free, s, tt.level)
		}
		if err := tm.Admit(); (err == nil) != tt.admit {
			t.Errorf("%d bytes free of 100 GB: Admit() = %v, want admitted %v", tt.free, err, tt.admit)
		} else if err != nil && !strings.Contains(err.Error(), "floor 2.5 GB (2.5%)") {
			t.Errorf("refusal %q does not name the floor as 2.5 GB (2.5%%)", err)
		}
	}
}

func TestWorstPath(t *testing.T) {
	// A percentage warns on each disk by its own size; the floor is a size.
	tm := newTestMonitor(t, "10%", "2GB", "/data", "/data/blobs", "/db")
	small := func(free uint64) fakeDisk { return fakeDisk{free: free, total: 100 * GB} }  // warn at 10 GB
	large := func(free uint64) fakeDisk { return fakeDisk{free: free, total: 1000 * GB} } // warn at 100 GB
	for i, tt := range []struct {
		data, db fakeDisk // /data/blobs is on the same filesystem as /data
		path     string
		level    Level
	}{
		{small(60 * GB), large(500 * GB), "/data", LevelOK}, // all OK: the least room, the first of equals
		{small(60 * GB), large(50 * GB), "/db", LevelLow},
		{small(9 * GB), large(50 * GB), "/data", LevelLow}, // both low: the least room above the floor
		{small(9 * GB), large(1 * GB), "/db", LevelCritical},
		{small(1 * GB), large(0.5 * GB), "/db", LevelCritical}, // both critical: the least room
		{small(1 * GB), large(1.5 * GB), "/data", LevelCritical},
		{fakeDisk{err: errors.New("permission denied")}, large(0), "/data", LevelUnknown}, // not knowing is worst
	} {
		tm.disks.set("/data", tt.data)
		tm.disks.set("/data/blobs", tt.data)
		tm.disks.set("/db", tt.db)
		tm.now = tm.now.Add(time.Minute)
		if s := tm.Check(context.Background()); s.Path != tt.path || s.Level != tt.level {
			t.Errorf("step %d: Check() = %s on %s (%+v), want %s on %s", i, s.Level, s.Path, s, tt.level, tt.path)
		}
	}
	if err := tm.Admit(); !strings.Contains(callvault.ErrorMessage(err), "cannot be determined on /data:") {
		t.Errorf("Admit() = %v, want a refusal naming /data", err)
	}
	if got := levels(tm.alerts); !slices.Equal(got, []Level{LevelLow, LevelCritical, LevelUnknown}) {
		t.Errorf("alerts %v, want [low critical unknown]", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		paths       []string
		warn, floor string
		want        string // "" for valid
	}{
		{[]string{"/data"}, "10%", "5%", ""},
		{[]string{"/data"}, "10GB", "2GB", ""},
		{[]string{"/data"}, "1%", "2GB", ""}, // different kinds: compared on the disk
		{[]string{"/data"}, "10GB", "50%", ""},
		{[]string{"/data"}, "5%", "5%", "must be below"},
		{[]string{"/data"}, "5%", "10%", "the floor (10%) must be below the warn threshold (5%)"},
		{[]string{"/data"}, "2GB", "2000MB", "must be below"},
		{[]string{"/data"}, "1GiB", "1GB", ""},
		{[]string{"/data"}, "1GB", "1GiB", "must be below"},
		{nil, "10%", "5%", "no paths"},
		{[]string{"/data", ""}, "10%", "5%", "empty path"},
		{[]string{"/data"}, "", "5%", "warn threshold is not set"},
		{[]string{"/data"}, "10%", "", "floor is not set"},
	} {
		m := &Monitor{Paths: tt.paths}
		if tt.warn != "" {
			m.Warn = mustParse(t, tt.warn)
		}
		if tt.floor != "" {
			m.Floor = mustParse(t, tt.floor)
		}
		err := m.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(paths %q, warn %q, floor %q) = %v, want %q", tt.paths, tt.warn, tt.floor, err, tt.want)
		}
	}
}

func TestStatusBeforeCheck(t *testing.T) {
	var m Monitor
	if s := m.Status(); s.Level != LevelUnknown || s.Err == "" {
		t.Errorf("Status() before any check = %+v, want unknown with a reason", s)
	}
}

func TestStatusKeepsTheLatest(t *testing.T) {
	var m Monitor
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	m.store(Status{Level: LevelCritical, CheckedAt: t0.Add(time.Second)})
	m.store(Status{Level: LevelOK, CheckedAt: t0}) // a slower, older measurement finishing last
	if s := m.Status(); s.Level != LevelCritical {
		t.Errorf("Status() = %+v, want the later, critical measurement", s)
	}
}

func TestRealFilesystem(t *testing.T) {
	dir := t.TempDir()
	m := &Monitor{Paths: []string{dir, dir}, Warn: mustParse(t, "2B"), Floor: mustParse(t, "1B"), Logger: slog.New(slog.DiscardHandler)}
	if err := m.Admit(); err != nil {
		t.Fatalf("Admit on %s with a 1-byte floor = %v", dir, err)
	}
	s := m.Status()
	if s.Level != LevelOK || s.Path != dir || s.Free == 0 || s.Free > s.Total || time.Since(s.CheckedAt) > time.Minute {
		t.Errorf("Status() on %s = %+v, want ok with 0 < free <= total, just now", dir, s)
	}
	// A floor of the whole disk is always reached.
	full := &Monitor{Paths: []string{dir}, Warn: mustParse(t, "100%"), Floor: mustParse(t, "100%"), Logger: slog.New(slog.DiscardHandler)}
	if err := full.Admit(); callvault.ErrorCode(err) != callvault.EUNAVAILABLE || !strings.Contains(err.Error(), "free on "+dir) {
		t.Errorf("Admit on %s with a floor of 100%% = %v, want EUNAVAILABLE naming the path", dir, err)
	}
}

func TestRun(t *testing.T) {
	disks := &fakeDisks{}
	disks.set("/data", fakeDisk{free: 1 * GB, total: 100 * GB})
	alerted := make(chan Status, 1)
	m := &Monitor{Paths: []string{"/data"}, Warn: mustParse(t, "10%"), Floor: mustParse(t, "5%"),
		Statfs: disks.statfs, Logger: slog.New(slog.DiscardHandler),
		Alert: func(_ context.Context, s Status) { alerted <- s }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		m.Run(ctx, time.Millisecond)
		close(done)
	}()
	select {
	case s := <-alerted:
		if s.Level != LevelCritical {
			t.Errorf("Run alerted %+v, want critical", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not check within 10 s")
	}
	for disks.count() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if len(alerted) != 0 {
		t.Errorf("Run alerted again without a change: %+v", <-alerted)
	}
}

// TestConcurrent is for the race detector: ingest admits while Run checks
// and /metrics reads.
func TestConcurrent(t *testing.T) {
	disks := &fakeDisks{}
	disks.set("/data", fakeDisk{free: 50 * GB, total: 100 * GB})
	var alerts sync.Map
	m := &Monitor{Paths: []string{"/data"}, Warn: mustParse(t, "10%"), Floor: mustParse(t, "5%"),
		Statfs: disks.statfs, Logger: slog.New(slog.DiscardHandler),
		Alert: func(_ context.Context, s Status) { alerts.Store(s.Level, true) }}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				switch (i + j) % 3 {
				case 0:
					if err := m.Admit(); err != nil {
						t.Errorf("Admit() = %v with half the disk free", err)
						return
					}
				case 1:
					m.Check(context.Background())
				default:
					if l := m.Status().Level; l != LevelOK && l != LevelUnknown {
						t.Errorf("Status().Level = %s with half the disk free", l)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	alerts.Range(func(k, _ any) bool {
		t.Errorf("alerted %v with half the disk free", k)
		return true
	})
}

func BenchmarkAdmit(b *testing.B) {
	m := &Monitor{Paths: []string{b.TempDir()}, Warn: mustParse(b, "2B"), Floor: mustParse(b, "1B")}
	for b.Loop() {
		if err := m.Admit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAdmitParallel(b *testing.B) {
	m := &Monitor{Paths: []string{b.TempDir()}, Warn: mustParse(b, "2B"), Floor: mustParse(b, "1B")}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := m.Admit(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
