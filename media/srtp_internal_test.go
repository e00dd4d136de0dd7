package media

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
)

// sealer encrypts RTP as the client would, with the key the stream has.
func sealer(t testing.TB, k SRTPKey) func(plain []byte) []byte {
	t.Helper()
	s := srtpSuites[strings.ToUpper(k.Suite)]
	ctx, err := srtp.CreateContext(k.Key[:s.keyLen], k.Key[s.keyLen:], s.profile)
	if err != nil {
		t.Fatal(err)
	}
	return func(plain []byte) []byte {
		b, err := ctx.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestHandleAllocsSRTP: decrypting on the hot path allocates nothing.
func TestHandleAllocsSRTP(t *testing.T) {
	for suite := range srtpSuites {
		key, _ := NewSRTPKey(suite)
		_, st := testSession(t, Config{}, func(sc *StreamConfig) { sc.SRTP = &key })
		seal := sealer(t, key)
		const n = 2000
		pkts := make([][]byte, n+1)
		for k := range pkts {
			pkts[k] = seal(rtpBytes(1, uint16(65000+k), uint32(160*k), 0, tone(8)))
		}
		k := 0
		if a := testing.AllocsPerRun(n, func() { feed(st, pkts[k], int64(160*k)); k++ }); a != 0 {
			t.Errorf("%s: %v allocations per packet, want 0", suite, a)
		}
		if st.c.packets != n+1 || st.c.authFailed != 0 || st.c.lost != 0 {
			t.Errorf("%s: %d packets, %d failing authentication, %d lost; want %d, 0, 0", suite, st.c.packets, st.c.authFailed, st.c.lost, n+1)
		}
	}
}

// BenchmarkPacketSRTP is BenchmarkPacket with SRTP: the same µ-law packet,
// authenticated and decrypted first. The client's encryption is done in
// batches outside the timer (and outside cpu-ns/op).
func BenchmarkPacketSRTP(b *testing.B) {
	for _, suite := range []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"} {
		b.Run(suite, func(b *testing.B) {
			key, _ := NewSRTPKey(suite)
			s, st := testSession(b, Config{Now: time.Now}, func(sc *StreamConfig) { sc.SRTP = &key })
			seal := sealer(b, key)
			plain := rtpBytes(0x1234, 0, 0, 0, tone(1000))
			const batch = 4096
			pkts := make([][]byte, batch)
			encrypt := func(from int) {
				for i := range pkts {
					k := from + i
					binary.BigEndian.PutUint16(plain[2:], uint16(k))
					binary.BigEndian.PutUint32(plain[4:], uint32(160*k))
					pkts[i] = seal(plain)
				}
			}
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu, c0 time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%batch == 0 {
					if i > 0 {
						cpu += threadCPU() - c0
					}
					b.StopTimer()
					encrypt(i)
					b.StartTimer()
					c0 = threadCPU()
				}
				_ = s.now()
				st.mu.Lock()
				st.handle(pkts[i%batch], from, int64(i)*20*int64(time.Millisecond))
				st.mu.Unlock()
			}
			cpu += threadCPU() - c0
			b.StopTimer()
			if st.c.authFailed != 0 || st.c.duplicates != 0 {
				b.Fatalf("%d failing authentication, %d refused as replays", st.c.authFailed, st.c.duplicates)
			}
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
