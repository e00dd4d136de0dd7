package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callvault/callvault"
)

const benchEntries = 1_000_000

// benchTrail is a million realistic entries, built once per test binary.
var benchTrail struct {
	once  sync.Once
	store *memStore
	hash  map[int64]string // every 10,000th seq → hash, for checkpoints
}

func benchStore(b *testing.B) *memStore {
	benchTrail.once.Do(func() {
		store := newMemStore()
		hashes := map[int64]string{}
		r := rand.New(rand.NewPCG(1, 2))
		for n := 0; n < benchEntries; {
			batch := make([]*callvault.AuditEvent, min(1+r.IntN(64), benchEntries-n))
			for i := range batch {
				batch[i] = randomEvent(r, n+i)
			}
			if err := store.AppendAudit(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			for _, e := range batch {
				if e.Seq%10_000 == 0 {
					hashes[e.Seq] = e.Hash
				}
			}
			n += len(batch)
		}
		benchTrail.store, benchTrail.hash = store, hashes
	})
	return benchTrail.store
}

// BenchmarkVerify checks a million-entry trail and 100 checkpoints.
func BenchmarkVerify(b *testing.B) {
	store := benchStore(b)
	signer, _, err := LoadOrCreateSigner(filepath.Join(b.TempDir(), "k"))
	if err != nil {
		b.Fatal(err)
	}
	var cps []*Checkpoint
	for seq, h := range benchTrail.hash {
		cps = append(cps, signer.Sign(seq, h, t0))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	loops := 0
	for b.Loop() {
		r, err := Verify(ctx, store, signer.PublicKey(), cps)
		if err != nil || r.Problem != nil || r.Entries != benchEntries || r.CheckpointsChecked != len(cps) {
			b.Fatalf("Verify = %+v, %v", r, err)
		}
		loops++
	}
	b.ReportMetric(float64(loops)*benchEntries/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkSHA256SameBytes is the floor for BenchmarkVerify: SHA-256 over
// exactly the bytes Verify hashes (previous hash and canonical encoding of
// each entry), prepared in advance, and nothing else.
func BenchmarkSHA256SameBytes(b *testing.B) {
	store := benchStore(b)
	var (
		buf  []byte
		offs = []int{0}
	)
	store.WalkAudit(context.Background(), 0, func(e *callvault.AuditEvent) error {
		p, _ := hex.DecodeString(e.PrevHash)
		buf = append(append(buf, p...), e.CanonicalV1()...)
		offs = append(offs, len(buf))
		return nil
	})
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	loops := 0
	var sink [sha256.Size]byte
	for b.Loop() {
		for i := 1; i < len(offs); i++ {
			sink = sha256.Sum256(buf[offs[i-1]:offs[i]])
		}
		loops++
	}
	_ = sink
	b.ReportMetric(float64(loops)*float64(len(offs)-1)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkChainHash compares callvault.ChainHash with the fast path
// Verify uses, on the same event.
func BenchmarkChainHash(b *testing.B) {
	e := randomEvent(rand.New(rand.NewPCG(1, 1)), 1)
	e.Details = map[string]string{"range": "bytes=0-65535", "format": "wav"}
	e.Reason = "complaint ref C-113 — parent call"
	b.Run("callvault.ChainHash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			callvault.ChainHash(callvault.GenesisHash, e)
		}
	})
	b.Run("chainHasher", func(b *testing.B) {
		b.ReportAllocs()
		h := newChainHasher()
		var prev [sha256.Size]byte
		for b.Loop() {
			h.chain(&prev, e)
		}
	})
}

// BenchmarkLogRecordParallel records events from many goroutines (16 per
// CPU, like concurrent requests) through one Log into the in-memory store:
// as is (the Log's own overhead), and with each AppendAudit taking 200µs
// like an fsync (what group commit is for: one event per call would cap
// the trail at 5,000 events/s).
func BenchmarkLogRecordParallel(b *testing.B) {
	for _, bc := range []struct {
		name  string
		delay time.Duration
	}{{"memory", 0}, {"fsync=200µs", 200 * time.Microsecond}} {
		b.Run(bc.name, func(b *testing.B) {
			store := newMemStore()
			store.delay = bc.delay
			l := NewLog(store, LogOptions{Logger: quiet})
			defer l.Close()
			var seed atomic.Uint64
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(seed.Add(1), 3))
				template := randomEvent(r, 0)
				for pb.Next() {
					e := *template
					if err := l.Record(context.Background(), &e); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			appends, appended, _ := store.stats()
			b.ReportMetric(float64(appended)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(appended)/float64(max(appends, 1)), "events/append")
		})
	}
}
