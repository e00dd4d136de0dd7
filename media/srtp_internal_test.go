package media

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/callvault/callvault"
)

// sealer encrypts RTP as the client would, with the key the stream has
// (and its MKI).
func sealer(t testing.TB, k SRTPKey) func(plain []byte) []byte {
	t.Helper()
	return sealWith(t, sealContext(t, k))
}

// sealerAt is sealer for a sender whose rollover counter for ssrc is roc.
func sealerAt(t testing.TB, k SRTPKey, ssrc, roc uint32) func(plain []byte) []byte {
	t.Helper()
	ctx := sealContext(t, k)
	ctx.SetROC(ssrc, roc)
	return sealWith(t, ctx)
}

func sealContext(t testing.TB, k SRTPKey) *srtp.Context {
	t.Helper()
	s := srtpSuites[strings.ToUpper(k.Suite)]
	ctx, err := srtp.CreateContext(k.Key[:s.keyLen], k.Key[s.keyLen:], s.profile, srtp.MasterKeyIndicator(k.MKI))
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func sealWith(t testing.TB, ctx *srtp.Context) func(plain []byte) []byte {
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

// TestRekey: a new key offered mid-call (a re-INVITE) is used from then
// on, whether the sender carries its rollover counter over to the new key
// or starts it again; packets of the old key still in flight are
// recorded until the new key is seen, and refused after.
func TestRekey(t *testing.T) {
	const ssrc = 0x4242
	for _, c := range []struct {
		name    string
		suite   string
		mki     []byte
		carried bool // the sender keeps its rollover counter
	}{
		{"counter carried over", "AES_CM_128_HMAC_SHA1_80", nil, true},
		{"counter restarted", "AES_CM_128_HMAC_SHA1_80", nil, false},
		{"new suite and MKI", "AEAD_AES_256_GCM", []byte{0, 2}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			old, _ := NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
			next, _ := NewSRTPKey(c.suite)
			next.MKI = c.mki
			s, st := testSession(t, Config{}, func(sc *StreamConfig) { sc.SRTP = &old })
			sealOld := sealerAt(t, old, ssrc, 0)
			k := 0
			send := func(seal func([]byte) []byte) {
				feed(st, seal(rtpBytes(ssrc, uint16(65530+k), uint32(160*k), 0, tone(8))), int64(160*k))
				k++
			}
			for range 10 { // across the sequence number's wrap: the counter is 1
				send(sealOld)
			}
			if err := s.Rekey(st.label, next); err != nil {
				t.Fatal(err)
			}
			send(sealOld) // sent before the switch, arriving after the re-INVITE
			roc := uint32(0)
			if c.carried {
				roc = 1
			}
			sealNext := sealerAt(t, next, ssrc, roc)
			for range 10 {
				send(sealNext)
			}
			late := sealOld(rtpBytes(ssrc, uint16(65530+k), uint32(160*k), 0, tone(8)))
			feed(st, late, int64(160*k))
			k++
			send(sealNext)
			if st.c.packets != 22 || st.c.authFailed != 1 {
				t.Errorf("%d packets, %d failing authentication; want 22, 1 (the old key after the new one)", st.c.packets, st.c.authFailed)
			}
			if len(st.srtp.ctxs) != 1 || !st.srtp.ctxs[0].key.equal(next) {
				t.Errorf("%d keys kept after the new one was seen; want only the new one", len(st.srtp.ctxs))
			}
		})
	}
}

// TestRekeyTwiceBeforeUse: two new keys offered before a packet of the
// first (hold, then resume, each with a key): the newest is used, late
// packets of the first key still pass, and a packet of the key that was
// never used does not displace the newest.
func TestRekeyTwiceBeforeUse(t *testing.T) {
	const ssrc = 0x77
	first, _ := NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	skipped, _ := NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	newest, _ := NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	s, st := testSession(t, Config{}, func(sc *StreamConfig) { sc.SRTP = &first })
	k := 0
	send := func(seal func([]byte) []byte) {
		feed(st, seal(rtpBytes(ssrc, uint16(k), uint32(160*k), 0, tone(8))), int64(160*k))
		k++
	}
	sealFirst, sealSkipped, sealNewest := sealer(t, first), sealer(t, skipped), sealer(t, newest)
	for range 5 {
		send(sealFirst)
	}
	for _, key := range []SRTPKey{skipped, newest} {
		if err := s.Rekey(st.label, key); err != nil {
			t.Fatal(err)
		}
	}
	send(sealFirst)   // in flight from before: taken
	send(sealSkipped) // the key offered and replaced before use: taken, but it is not the new key
	for range 5 {
		send(sealNewest)
	}
	send(sealFirst) // after the newest is seen: refused
	if st.c.packets != 12 || st.c.authFailed != 1 {
		t.Errorf("%d packets, %d failing authentication; want 12, 1", st.c.packets, st.c.authFailed)
	}
	if len(st.srtp.ctxs) != 1 || !st.srtp.ctxs[0].key.equal(newest) {
		t.Errorf("%d keys kept, the first %v; want only the newest", len(st.srtp.ctxs), st.srtp.ctxs[0].key.equal(newest))
	}
}

// TestRekeyRefusals: the same key again changes nothing; an unusable key or
// an unknown stream is an error, and the stream goes on with its key.
func TestRekeyRefusals(t *testing.T) {
	key, _ := NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	s, st := testSession(t, Config{}, func(sc *StreamConfig) { sc.SRTP = &key })
	r := st.srtp
	if err := s.Rekey(st.label, SRTPKey{Suite: key.Suite, Key: bytes.Clone(key.Key)}); err != nil || st.srtp != r {
		t.Errorf("the same key again: %v, receiver replaced %v; want nil, false", err, st.srtp != r)
	}
	for _, bad := range []SRTPKey{{Suite: "AES_CM_128_HMAC_SHA1_80", Key: make([]byte, 29)}, {Suite: "F8_128_HMAC_SHA1_80", Key: make([]byte, 30)}} {
		if err := s.Rekey(st.label, bad); err == nil || st.srtp != r {
			t.Errorf("%s key of %d bytes: %v, receiver replaced %v; want an error and the old key", bad.Suite, len(bad.Key), err, st.srtp != r)
		}
	}
	if err := s.Rekey("no such label", key); callvault.ErrorCode(err) != callvault.EINVALID {
		t.Errorf("unknown label: %v; want EINVALID", err)
	}
	seal := sealer(t, key)
	for k := range 3 {
		feed(st, seal(rtpBytes(1, uint16(k), uint32(160*k), 0, tone(8))), int64(160*k))
	}
	if st.c.packets != 3 || st.c.authFailed != 0 {
		t.Errorf("%d packets, %d failing authentication after the refusals; want 3, 0", st.c.packets, st.c.authFailed)
	}
	if _, err := s.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := s.Rekey(st.label, key); err == nil {
		t.Error("a finished session was rekeyed")
	}
}

// FuzzRekeyedSRTP: a stream between two keys (the old one, and the new
// one twice: counter restarted and carried over) takes exactly the
// authentic packets. An arbitrary datagram never passes, nor does a
// packet of the new key with any bit changed; the packet unchanged does.
func FuzzRekeyedSRTP(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0x42, 0x42, 0xff, 0xff}, uint16(0))
	f.Add(rtpBytes(0x4242, 3, 480, 0, tone(8)), uint16(13))
	f.Add([]byte{0x80, 0, 0, 1}, uint16(200))
	f.Fuzz(func(t *testing.T, raw []byte, flip uint16) {
		old, _ := NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
		next, _ := NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
		s, st := testSession(t, Config{}, func(sc *StreamConfig) { sc.SRTP = &old })
		sealOld := sealer(t, old)
		for k := range 8 { // across the wrap: the counter is 1
			feed(st, sealOld(rtpBytes(0x4242, uint16(65532+k), uint32(160*k), 0, tone(8))), int64(160*k))
		}
		if err := s.Rekey(st.label, next); err != nil {
			t.Fatal(err)
		}
		before := st.c.packets
		feed(st, raw, 160*8)
		if st.c.packets != before {
			t.Fatalf("an arbitrary datagram of %d bytes was taken as authentic", len(raw))
		}
		p := sealerAt(t, next, 0x4242, 1)(rtpBytes(0x4242, 4, 160*9, 0, tone(8)))
		if flip != 0 {
			bit := int(flip) % (8 * len(p))
			p[bit/8] ^= 1 << (bit % 8)
		}
		feed(st, p, 160*9)
		want := uint64(0)
		if flip == 0 {
			want = 1
		}
		if got := st.c.packets - before; got != want {
			t.Fatalf("flip %d: %d packets taken; want %d", flip, got, want)
		}
	})
}
