package recorder_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// flaky is a blob store that is down for its first fail writes.
type flaky struct {
	callvault.BlobStore
	fail atomic.Int32
}

func (f *flaky) Create(ctx context.Context, key string) (callvault.BlobWriter, error) {
	if f.fail.Add(-1) >= 0 {
		return nil, callvault.Errorf(callvault.EUNAVAILABLE, "blob store down")
	}
	return f.BlobStore.Create(ctx, key)
}

// A recording whose store is down when the call ends is kept in the spool
// and stored once the store is back, without a restart; the alert is
// raised once when storing fails and once when it works again.
func TestStoreRetriedWhileRunning(t *testing.T) {
	down := &flaky{}
	down.fail.Store(2)
	var mu sync.Mutex
	var alerts []recorder.StoreAlert
	f := newFixture(t, func(r *recorder.Recorder) {
		down.BlobStore, r.Archive.Blobs = r.Archive.Blobs, down
		r.Alert = func(a recorder.StoreAlert) { mu.Lock(); alerts = append(alerts, a); mu.Unlock() }
	})
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	speech := audio.SpeechLike(9, 8000, 8000)
	start := time.Now()
	if _, err := c.Run(context.Background(), siprectest.Call{CallID: "retry@sbc", CallerAudio: speech, CalleeAudio: speech,
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}}); err != nil {
		t.Fatal(err)
	}
	rec := f.waitRecording(t, "retry@sbc")
	if down.fail.Load() >= 0 {
		t.Error("the store never failed: the test proves nothing")
	}
	// Two failures: retried after 1 s and 2 s.
	if took := time.Since(start); took < 3*time.Second+time.Second {
		t.Errorf("stored after %v; with two failed attempts it cannot be before the retries (1 s + 2 s)", took)
	}
	if rec.Duration < time.Second {
		t.Errorf("duration %v", rec.Duration)
	}
	waitFor(t, 5*time.Second, "the recovery alert", func() bool { mu.Lock(); defer mu.Unlock(); return len(alerts) == 2 })
	mu.Lock()
	defer mu.Unlock()
	if !alerts[0].Failing || alerts[0].Pending != 1 || callvault.ErrorCode(alerts[0].Err) != callvault.EUNAVAILABLE || alerts[1].Failing || alerts[1].Pending != 0 {
		t.Errorf("alerts %+v; want one failing with 1 pending and the store's error, then one recovered with none pending", alerts)
	}
	if c := f.rec.Counts(); c.StoreFailures != 2 || c.Pending != 0 {
		t.Errorf("counts %+v; want 2 store failures, nothing pending", c)
	}
}
