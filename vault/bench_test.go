package vault_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	mrand "math/rand/v2"
	"testing"
)

// benchSize is a 10-minute G.711 stereo call (8 kB/s per channel).
const benchSize = 10 * 60 * 16_000

// BenchmarkEncrypt measures encryption throughput; compare it with
// BenchmarkSHA256, which ingest computes over the same bytes anyway.
func BenchmarkEncrypt(b *testing.B) {
	v, _, _ := newVault(b)
	plain := randBytes(benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		w, err := v.Encrypt(io.Discard, recID, epoch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSHA256(b *testing.B) {
	plain := randBytes(benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		sha256.Sum256(plain)
	}
}

// BenchmarkDecryptReadAtRandom is seeking playback: 64 KiB reads at random
// offsets of a 64 MiB ciphertext held in memory.
func BenchmarkDecryptReadAtRandom(b *testing.B) {
	v, _, _ := newVault(b)
	const size = 64 << 20
	ct := encrypt(b, v, randBytes(size), recID, epoch)
	r, n, err := decrypt(v, ct, recID, epoch)
	if err != nil {
		b.Fatal(err)
	}
	rnd := mrand.New(mrand.NewPCG(1, 1))
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		off := rnd.Int64N(n - int64(len(buf)))
		if _, err := r.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptOpen is the cost of Decrypt itself (header, file key and
// final-chunk check) before the first read, with the epoch key cached.
func BenchmarkDecryptOpen(b *testing.B) {
	v, _, _ := newVault(b)
	ct := encrypt(b, v, randBytes(benchSize), recID, epoch)
	src := bytes.NewReader(ct)
	for b.Loop() {
		if _, _, err := v.Decrypt(src, int64(len(ct)), recID, epoch); err != nil {
			b.Fatal(err)
		}
	}
}
