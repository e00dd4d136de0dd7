//go:build linux

package recorder_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/media"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// The load test: how many simultaneous recording sessions this machine
// takes. It runs the real recorder on a real deployment (SQLite, blob
// folder, key file) in this process, and the load generator
// (siprectest.Load: SIPREC INVITEs through sipgo, two RTP streams of G.711
// speech per session) as a child process, the test binary run again as
// TestLoadClient. The generator being another process is what lets the
// CPU figures be the recorder's own: getrusage(RUSAGE_SELF) here is the
// recorder (and this idle test), /proc/<child>/stat the generator.
//
//	CALLVAULT_LOAD_SESSIONS=2000 CALLVAULT_LOAD_SECONDS=20 go test ./recorder -run '^TestLoad$' -v -timeout 30m
//
// Also CALLVAULT_LOAD_RATE (sessions started and ended per second, default
// 50), CALLVAULT_LOAD_SENDERS (RTP sending goroutines, default 2),
// CALLVAULT_LOAD_PROFILE=file (a CPU profile of the steady state only;
// go test -cpuprofile covers the whole run, ramps and ingest included),
// CALLVAULT_LOAD_MAX_CPU_US (the aim per RTP packet, default 2) and
// CALLVAULT_LOAD_SPOOL (a folder on another file system for the spool, say
// /dev/shm, to see what the spool's fsyncs cost; default the test's
// temporary folder).
//
// Figures, over the steady state (every session up, all streaming):
//   - CPU per packet: this process's user+system CPU / RTP packets the
//     recorder received. On loopback the kernel's receive path (IP, UDP,
//     queueing on the socket) runs in the sender's system call, so it is
//     charged to the generator; the recorder pays for its readers'
//     recvmmsg calls (taking the datagrams off the sockets), its own work
//     and the spool's writes. The spool's syncfs does its write-back
//     mostly in the kernel's flusher threads, charged to no process: see
//     the machine's busy share. On a real network card the softirq work
//     lands on whoever the interrupt finds.
//   - loss: the recorder's own Lost counter (sequence numbers it filled
//     with silence) over Packets, summed over every session just before
//     they hang up (Recorder.Totals); and "drop", the packets the generator
//     sent that the recorder never received (dropped in the kernel, most
//     often a full socket receive buffer). The per-session counts the
//     recorder logs once each recording is stored are shown alongside.
//   - memory per session: Go heap and stacks in use (after a GC), and RSS,
//     above the idle recorder's, divided by the sessions. Kernel socket
//     buffers and page cache are not in either.
func TestLoad(t *testing.T) {
	n := envInt(t, "CALLVAULT_LOAD_SESSIONS", 0)
	if n == 0 {
		t.Skip("set CALLVAULT_LOAD_SESSIONS (and CALLVAULT_LOAD_SECONDS) to run the load test")
	}
	cfg := loadConfig{Sessions: n, Hold: envInt(t, "CALLVAULT_LOAD_SECONDS", 20), Rate: envInt(t, "CALLVAULT_LOAD_RATE", 50),
		Senders: envInt(t, "CALLVAULT_LOAD_SENDERS", 2)}
	maxCPU := float64(envInt(t, "CALLVAULT_LOAD_MAX_CPU_US", 2))
	// Per session: two RTP sockets, two spool files, a progress file; and
	// the recordings being stored at the end.
	raiseNoFile(t, uint64(5*n+1000))

	logs := &loadLog{warnings: map[string]int{}}
	f := newLoadFixture(t, n, slog.New(logs))
	cfg.Server = f.sip.String()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	idle := readMem()
	before := sample(f.rec, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestLoadClient$", "-test.timeout=0")
	b, _ := json.Marshal(cfg)
	cmd.Env = append(os.Environ(), "CALLVAULT_LOAD_CLIENT="+string(b))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid

	var (
		held, stopped siprectest.LoadProgress
		w0, w1        window
		busy          memSample
		sessionsHeld  int
		res           siprectest.LoadResult
		other         []string
		profile       *os.File
	)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		kind, payload, _ := strings.Cut(strings.TrimPrefix(sc.Text(), "siprecload "), " ")
		switch kind {
		case "held":
			w0 = sample(f.rec, pid)
			json.Unmarshal([]byte(payload), &held)
			if path := os.Getenv("CALLVAULT_LOAD_PROFILE"); path != "" {
				if profile, err = os.Create(path); err != nil {
					t.Fatal(err)
				}
				if err := pprof.StartCPUProfile(profile); err != nil { // go test -cpuprofile has it
					t.Logf("no steady-state profile: %v", err)
					profile.Close()
					profile = nil
				}
			}
			t.Logf("steady state: %d sessions up, %d refused", held.Answered, held.Refused)
		case "stopped":
			w1 = sample(f.rec, pid)
			if profile != nil {
				pprof.StopCPUProfile()
				profile.Close()
			}
			json.Unmarshal([]byte(payload), &stopped)
			sessionsHeld = f.rec.Sessions()
			runtime.GC()
			busy = readMem()
			fmt.Fprintln(stdin, "go")
		case "result":
			if err := json.Unmarshal([]byte(payload), &res); err != nil {
				t.Fatalf("generator result: %v", err)
			}
		default:
			other = append(other, sc.Text())
		}
	}
	if err := cmd.Wait(); err != nil || res.Sessions == 0 {
		t.Fatalf("load generator: %v\n%s\n%s", err, strings.Join(other, "\n"), stderr.String())
	}
	genCPU := childCPU(cmd.ProcessState)

	// Every answered session must become a stored recording.
	hungUp := time.Now()
	for f.rec.Sessions() > 0 && time.Since(hungUp) < 10*time.Minute {
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(hungUp)
	stored := 0
	for _, id := range res.CallIDs {
		if _, err := f.d.Recordings.FindRecordingBySourceRef(f.d.Sys, f.rec.Source.ID, id); err == nil {
			stored++
		}
	}
	after := sample(f.rec, 0)

	// The steady state.
	received := w1.totals.Packets - w0.totals.Packets
	sec := w1.at.Sub(w0.at).Seconds()
	cpuPer := float64(w1.cpu-w0.cpu) / float64(max(received, 1)) / 1e3
	genPer := float64(w1.child-w0.child) / float64(max(stopped.Packets-held.Packets, 1)) / 1e3
	machine := w1.machine.sub(w0.machine)
	sent, got := stopped.Packets, w1.totals.Packets
	dropped := float64(int64(sent)-int64(got)) / float64(max(sent, 1)) * 100
	logs.mu.Lock()
	ended, storedPackets, storedLost := logs.ended, logs.packets, logs.lost
	warnings := logs.warnings
	logs.mu.Unlock()
	// Loss: the recorder's own count (sequence numbers it filled with
	// silence) over every session, read before they hung up.
	lostPct := float64(w1.totals.Lost) / float64(max(w1.totals.Packets+w1.totals.Lost, 1)) * 100
	heapPer := float64(busy.goMem-idle.goMem) / float64(max(sessionsHeld, 1)) / 1e6
	rssPer := float64(busy.rss-idle.rss) / float64(max(sessionsHeld, 1)) / 1e6

	t.Logf("sessions %d at %d/s, hold %v; machine: %d CPUs, load %s → %s, %.0f%% busy in the steady state (%.0f%% steal)",
		n, cfg.Rate, res.Held.Round(time.Second), runtime.NumCPU(), before.load, after.load, machine.busyPct(), machine.stealPct())
	t.Logf("%8s %8s %10s %8s %8s %9s %9s %9s %9s %8s", "sessions", "answered", "recordings", "loss %", "drop %", "CPU µs/pk", "Go MB/ses", "RSS/sess", "RSS MB", "gen µs/pk")
	t.Logf("%8d %8d %10d %8.4f %8.4f %9.2f %9.3f %9.3f %9.0f %8.2f", n, res.Answered, stored, lostPct, dropped, cpuPer, heapPer, rssPer,
		float64(busy.rss)/1e6, genPer)
	t.Logf("steady state %.1f s: %d packets received (%.0f/s); recorder CPU %.2f cores, generator %.2f cores; generator lag up to %v",
		sec, received, float64(received)/sec, float64(w1.cpu-w0.cpu)/1e9/sec, float64(w1.child-w0.child)/1e9/sec, res.MaxLag.Round(time.Millisecond))
	t.Logf("RTP: %d sent before the stop, %d received (%d resyncs, %d late, jitter up to %v); kernel UDP receive-buffer drops %d, in errors %d",
		sent, got, w1.totals.Resyncs, w1.totals.Late, w1.totals.Jitter, w1.udp.rcvbufErrors-w0.udp.rcvbufErrors, w1.udp.inErrors-w0.udp.inErrors)
	t.Logf("stored (from the recorder's log): %d sessions ended with %d packets, %d lost; last recording stored %v after the last BYE; ramp %v, hang-up %v; generator CPU %.1f s in all",
		ended, storedPackets, storedLost, drain.Round(100*time.Millisecond), res.Ramp.Round(100*time.Millisecond), res.Hangup.Round(100*time.Millisecond), genCPU.Seconds())
	t.Logf("memory: Go heap %.0f → %.0f MB, stacks %.0f → %.0f MB, RSS %.0f → %.0f MB; %d goroutines",
		float64(idle.heap)/1e6, float64(busy.heap)/1e6, float64(idle.stack)/1e6, float64(busy.stack)/1e6, float64(idle.rss)/1e6, float64(busy.rss)/1e6, busy.goroutines)
	for msg, k := range warnings {
		t.Logf("recorder warned %d×: %s", k, msg)
	}

	if res.Answered != n {
		t.Errorf("%d of %d sessions answered; refused by status %v: %v", res.Answered, n, res.Refused, res.Errors)
	}
	if stored != res.Answered {
		t.Errorf("%d sessions answered, %d recordings stored: lost sessions", res.Answered, stored)
	}
	if res.HangupFailed > 0 {
		t.Errorf("%d BYEs failed: %v", res.HangupFailed, res.Errors)
	}
	if lostPct >= 0.1 || dropped >= 0.1 {
		t.Errorf("packet loss %.4f%% in the stored audio, %.4f%% dropped before the recorder: want under 0.1%%", lostPct, dropped)
	}
	if cpuPer > maxCPU {
		t.Errorf("%.2f µs of CPU per RTP packet: the aim is %v", cpuPer, maxCPU)
	}
}

// TestLoadClient is TestLoad's load generator, run as its child process:
// it reports on stdout and waits on stdin before hanging up.
func TestLoadClient(t *testing.T) {
	env := os.Getenv("CALLVAULT_LOAD_CLIENT")
	if env == "" {
		t.Skip("TestLoad's load generator, run by TestLoad")
	}
	var cfg loadConfig
	if err := json.Unmarshal([]byte(env), &cfg); err != nil {
		t.Fatal(err)
	}
	server, err := netip.ParseAddrPort(cfg.Server)
	if err != nil {
		t.Fatal(err)
	}
	c, err := siprectest.NewClient(server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	report := func(kind string, v any) {
		b, _ := json.Marshal(v)
		fmt.Printf("siprecload %s %s\n", kind, b)
	}
	in := bufio.NewReader(os.Stdin)
	l := &siprectest.Load{Client: c, Sessions: cfg.Sessions, Rate: float64(cfg.Rate), Hold: time.Duration(cfg.Hold) * time.Second,
		Senders:     cfg.Senders,
		CallerAudio: audio.SpeechLike(1, 10*media.Rate, media.Rate), CalleeAudio: audio.SpeechLike(2, 10*media.Rate, media.Rate),
		Held: func(p siprectest.LoadProgress) { report("held", p) },
		Stopped: func(p siprectest.LoadProgress) {
			report("stopped", p)
			in.ReadString('\n')
		}}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	report("result", res)
}

type loadConfig struct {
	Server                        string
	Sessions, Hold, Rate, Senders int
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		t.Fatalf("%s=%q: want a whole number", name, s)
	}
	return v
}

func newLoadFixture(t *testing.T, n int, logger *slog.Logger) *fixture {
	t.Helper()
	d := cvtest.New(t)
	oak := &callvault.Academy{Slug: "oakfield", Name: "Oakfield Primary",
		Numbers:    []callvault.Range{{First: "+441632960000", Last: "+441632960099"}},
		Extensions: []callvault.Range{{First: "2000", Last: "2099"}}}
	if err := d.Academies.CreateAcademy(d.Sys, oak); err != nil {
		t.Fatal(err)
	}
	src := &callvault.Source{Name: "sbc", Kind: callvault.SourceSIPREC, TokenHash: "siprec-load"}
	if err := d.Sources.CreateSource(d.Sys, src); err != nil {
		t.Fatal(err)
	}
	if 2*n > (recorder.DefaultPortMax-recorder.DefaultPortMin)/2+1 {
		t.Fatalf("%d sessions need %d RTP ports: more than the default range has", n, 2*n)
	}
	spool := t.TempDir()
	if dir := os.Getenv("CALLVAULT_LOAD_SPOOL"); dir != "" {
		var err error
		if spool, err = os.MkdirTemp(dir, "callvault-load-spool-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(spool) })
	}
	port := freeUDPPort(t)
	r := &recorder.Recorder{Listen: []recorder.Listener{{Network: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}},
		SpoolDir: spool, Archive: d.Archive, Source: src, Academies: d.Academies, Logger: logger,
		PortMin: recorder.DefaultPortMin, PortMax: recorder.DefaultPortMax, MaxSessions: n + 10,
		// The sessions are silent while they hang up, one by one.
		Inactivity: 30 * time.Minute}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); cancel() })
	return &fixture{d: d, rec: r, sip: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))}
}

func raiseNoFile(t *testing.T, need uint64) {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= need {
		return
	}
	l.Cur = min(need, l.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur < need {
		t.Fatalf("%d sessions need %d open files; the limit is %d (hard %d): raise it (ulimit -n)", (need-1000)/5, need, l.Cur, l.Max)
	}
}

// loadLog is the recorder's logger in the load test: it sums the packet
// counts each session logs when its recording is stored, and counts the
// warnings and errors by message.
type loadLog struct {
	mu            sync.Mutex
	ended         int
	packets, lost uint64
	warnings      map[string]int
}

func (l *loadLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }

func (l *loadLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		l.mu.Lock()
		l.warnings[r.Level.String()+" "+r.Message]++
		l.mu.Unlock()
		return nil
	}
	if r.Message != "recording session ended" {
		return nil
	}
	var packets, lost uint64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "packets":
			packets = a.Value.Uint64()
		case "lost":
			lost = a.Value.Uint64()
		}
		return true
	})
	l.mu.Lock()
	l.ended++
	l.packets += packets
	l.lost += lost
	l.mu.Unlock()
	return nil
}

func (l *loadLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *loadLog) WithGroup(string) slog.Handler      { return l }

// window is what is measured at each end of the steady state.
type window struct {
	at      time.Time
	cpu     int64 // this process, ns
	child   int64 // the generator, ns
	totals  media.StreamStats
	machine cpuTimes
	udp     udpCounters
	load    string
}

func sample(r *recorder.Recorder, child int) window {
	w := window{at: time.Now(), totals: r.Totals(), machine: readCPUTimes(), udp: readUDP()}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	w.cpu = ru.Utime.Nano() + ru.Stime.Nano()
	if child > 0 {
		w.child = procCPU(child)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		w.load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return w
}

// procCPU is a process's user+system CPU from /proc (10 ms resolution).
func procCPU(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: utime and
	// stime are the 12th and 13th, in clock ticks (USER_HZ, 100).
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return (u + s) * int64(10*time.Millisecond)
}

func childCPU(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

type memSample struct {
	heap, stack, goMem, rss uint64
	goroutines              int
}

func readMem() memSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memSample{heap: ms.HeapInuse, stack: ms.StackInuse, goMem: ms.HeapInuse + ms.StackInuse, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.rss = kb << 10
			}
		}
	}
	return m
}

// cpuTimes is the machine's first /proc/stat line, in clock ticks.
type cpuTimes struct{ total, idle, steal uint64 }

func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var c cpuTimes
	for i, s := range f[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		c.total += v
		switch i {
		case 3, 4: // idle, iowait
			c.idle += v
		case 7:
			c.steal = v
		}
	}
	return c
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{total: c.total - o.total, idle: c.idle - o.idle, steal: c.steal - o.steal}
}
func (c cpuTimes) busyPct() float64 {
	return 100 * float64(c.total-c.idle) / float64(max(c.total, 1))
}
func (c cpuTimes) stealPct() float64 { return 100 * float64(c.steal) / float64(max(c.total, 1)) }

// udpCounters are the kernel's UDP counters (/proc/net/snmp).
type udpCounters struct{ inErrors, rcvbufErrors uint64 }

func readUDP() udpCounters {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return udpCounters{}
	}
	var names []string
	var c udpCounters
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "Udp: ")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		for i, v := range strings.Fields(rest) {
			n, _ := strconv.ParseUint(v, 10, 64)
			switch names[i] {
			case "InErrors":
				c.inErrors = n
			case "RcvbufErrors":
				c.rcvbufErrors = n
			}
		}
		break
	}
	return c
}
