package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audit"
	"github.com/callvault/callvault/sqldb"
)

// TestHelperBurst is the child of TestKillDuringBurst: 16 writers record
// events as fast as they can and print each acknowledged sequence number.
func TestHelperBurst(t *testing.T) {
	path := os.Getenv("CALLVAULT_BURST_DB")
	if path == "" {
		t.Skip("helper process for TestKillDuringBurst")
	}
	db, err := sqldb.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	log := audit.NewLog(sqldb.NewAuditStore(db), audit.LogOptions{})
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e := &callvault.AuditEvent{ActorKind: callvault.ActorSystem, ActorName: "burst", Action: "test.burst",
					Outcome: callvault.OutcomeAllowed, Details: map[string]string{"writer": strconv.Itoa(w), "i": strconv.Itoa(i)}}
				if err := log.Record(context.Background(), e); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintln(out, e.Seq)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// Kill -9 in the middle of a burst of concurrent writes: after restart the
// chain verifies, and every event that was acknowledged is there.
func TestKillDuringBurst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "callvault.db")
	db, err := sqldb.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBurst$", "-test.count=1")
		cmd.Env = append(os.Environ(), "CALLVAULT_BURST_DB="+path)
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked int64
		sc := bufio.NewScanner(stdout)
		target := int64(300 * (round + 1))
		for sc.Scan() {
			n, _ := strconv.ParseInt(sc.Text(), 10, 64)
			acked = max(acked, n)
			if acked >= target {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		for sc.Scan() { // acknowledgements printed before the kill landed
			n, _ := strconv.ParseInt(sc.Text(), 10, 64)
			acked = max(acked, n)
		}
		cmd.Wait()
		if acked < target {
			t.Fatalf("round %d: the child acknowledged only %d events", round, acked)
		}

		db, err := sqldb.Open(context.Background(), "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		store := sqldb.NewAuditStore(db)
		sys := callvault.NewContextWithActor(context.Background(), callvault.SystemActor)
		rep, err := audit.Verify(sys, store, nil, nil)
		if err != nil || rep.Problem != nil {
			t.Fatalf("round %d: after kill -9 the chain does not verify: %v %v", round, err, rep.Problem)
		}
		if rep.Head.Seq < acked {
			t.Errorf("round %d: head is %d but %d was acknowledged: an acknowledged event was lost", round, rep.Head.Seq, acked)
		}
		// Writing continues from the head after the restart.
		log := audit.NewLog(store, audit.LogOptions{})
		e := &callvault.AuditEvent{ActorKind: callvault.ActorSystem, Action: "test.after", Outcome: callvault.OutcomeAllowed}
		if err := log.Record(context.Background(), e); err != nil || e.Seq != rep.Head.Seq+1 {
			t.Errorf("round %d: first event after restart: seq %d, %v; want %d", round, e.Seq, err, rep.Head.Seq+1)
		}
		log.Close()
		db.Close()
		t.Logf("round %d: %d acknowledged, head %d, verified", round, acked, rep.Head.Seq)
	}
}

// BenchmarkLogRecordSQLite is the append throughput the server gets: many
// concurrent writers through the group-commit Log into SQLite with
// synchronous=FULL; every Record returns only once its event is durable.
func BenchmarkLogRecordSQLite(b *testing.B) {
	db, err := sqldb.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "callvault.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	log := audit.NewLog(sqldb.NewAuditStore(db), audit.LogOptions{})
	defer log.Close()
	b.SetParallelism(32) // 64 writers on 2 cores: a busy server's requests
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := &callvault.AuditEvent{ActorKind: callvault.ActorUser, ActorID: "7", ActorName: "jsmith", ActorRole: callvault.RolePrincipal,
				Action: "recording.play", TargetType: "recording", TargetID: "01a21d26-d622-7959-af57-33baca453894", AcademyID: 2,
				Outcome: callvault.OutcomeAllowed, ClientAddr: "192.0.2.10", Details: map[string]string{"range": "bytes=0-65535", "status": "206"}}
			if err := log.Record(context.Background(), e); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}
