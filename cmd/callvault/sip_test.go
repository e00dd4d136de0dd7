package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/recorder/siprectest"
)

// startServe runs `callvault serve` as a child process and waits until it
// serves.
func startServe(t *testing.T, data string, sipPort int, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	args := append([]string{"serve", "--data=" + data, "--http=127.0.0.1:0",
		fmt.Sprintf("--sip=127.0.0.1:%d", sipPort), fmt.Sprintf("--rtp-ports=%d-%d", 41000+sipPort%1000*2, 41200+sipPort%1000*2),
		"--retention-every=24h"}, extra...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CALLVAULT_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var (
		logMu sync.Mutex
		log   []string
	)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			log = append(log, sc.Text())
			logMu.Unlock()
			if strings.Contains(sc.Text(), "SIPREC recording server listening") {
				close(ready)
			}
		}
	}()
	t.Cleanup(func() { // a failed test shows what serve said
		if t.Failed() {
			logMu.Lock()
			t.Logf("serve's log:\n%s", strings.Join(log, "\n"))
			logMu.Unlock()
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, u, ok := strings.Cut(sc.Text(), "running at "); ok {
				urls <- strings.Fields(u)[0]
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve did not start")
	}
	return cmd, <-urls
}

// A server killed with SIGKILL in the middle of a recording session loses
// nothing that was flushed: at the next start the session becomes a
// recording, marked interrupted, holding the audio up to the kill.
func TestSIPRECSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills servers")
	}
	data := t.TempDir()
	c0, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c0.LocalAddr().(*net.UDPAddr).Port
	c0.Close()

	srv, url := startServe(t, data, port)
	client, err := siprectest.NewClient(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	caller, callee := audio.SpeechLike(5, 8000*6, 8000), audio.SpeechLike(6, 8000*6, 8000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := client.Run(ctx, siprectest.Call{CallID: "killed@sbc", Caller: siprectest.Party{AOR: "sip:+447700900123@pstn"},
			Callee: siprectest.Party{AOR: "sip:2001@pbx"}, CallerAudio: caller, CalleeAudio: callee})
		done <- err
	}()
	time.Sleep(3 * time.Second) // half the call
	if m := metrics(t, url); !strings.Contains(m, "callvault_sip_sessions_active 1") || !strings.Contains(m, "callvault_sip_sessions_total 1") ||
		!strings.Contains(m, `callvault_rtp_packets_total{kind="recorded"} `) || strings.Contains(m, `callvault_rtp_packets_total{kind="recorded"} 0`) {
		t.Errorf("/metrics during the call lacks the session:\n%s", m)
	}
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	killedAt := time.Now()
	cancel()
	<-done

	srv, _ = startServe(t, data, port)
	srv.Process.Signal(os.Interrupt)
	srv.Wait()

	dep := openTest(t, data)
	defer dep.Close()
	ctx = system(context.Background())
	src, err := dep.sources.FindSourceByName(ctx, "siprec")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := dep.recordings.FindRecordingBySourceRef(ctx, src.ID, "killed@sbc")
	if err != nil {
		t.Fatalf("the interrupted session left no recording: %v", err)
	}
	if !rec.Interrupted {
		t.Error("the recording is not marked interrupted")
	}
	// About 3 s were sent before the kill; a kill loses at most what came
	// since the last once-a-second sync.
	if rec.Duration < 1900*time.Millisecond || rec.Duration > 3500*time.Millisecond {
		t.Errorf("recording lasts %v; the session ran about 3 s until the kill (%v)", rec.Duration, killedAt.Format(time.StampMilli))
	}
	if rec.SourceKind != callvault.SourceSIPREC || len(rec.Participants) != 2 {
		t.Errorf("recording: %s with %+v", rec.SourceKind, rec.Participants)
	}
	if entries, _ := os.ReadDir(data + "/spool"); len(entries) != 0 {
		t.Errorf("%d spools left after recovery", len(entries))
	}
}

func metrics(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
