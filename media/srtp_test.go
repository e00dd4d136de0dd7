package media_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// srtpProfiles are the pion/srtp profiles of the SDES suites, for the
// sending side of the tests.
var srtpProfiles = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AES_256_CM_HMAC_SHA1_80": srtp.ProtectionProfileAes256CmHmacSha1_80,
	"AES_256_CM_HMAC_SHA1_32": srtp.ProtectionProfileAes256CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
	"AEAD_AES_256_GCM":        srtp.ProtectionProfileAeadAes256Gcm,
}

// encrypter is the sending side of an SRTP stream: a client with its key.
type encrypter struct {
	t   *testing.T
	ctx *srtp.Context
}

func newEncrypter(t *testing.T, k media.SRTPKey) *encrypter {
	t.Helper()
	p := srtpProfiles[k.Suite]
	keyLen, _ := p.KeyLen()
	ctx, err := srtp.CreateContext(k.Key[:keyLen], k.Key[keyLen:], p, srtp.MasterKeyIndicator(k.MKI))
	if err != nil {
		t.Fatal(err)
	}
	return &encrypter{t: t, ctx: ctx}
}

func (e *encrypter) seal(p *rtp.Packet) []byte {
	e.t.Helper()
	plain, err := p.Marshal()
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := e.ctx.EncryptRTP(nil, plain, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// TestSRTPRecordsSameAsRTP sends one conversation side twice, at the same
// times, to two streams of a session: in the clear to the external side and
// as SRTP to the staff side, for each suite. The two channels of the
// recording must be equal sample for sample, through a sequence number wrap
// (the rollover counter), an SSRC change, and what an attacker on the path
// can do without the key: a tampered copy of a packet sent ahead of it, a
// forged packet with a new SSRC, a replay of an old packet. Those are
// dropped and counted; the replay is also sent in the clear, where the
// reorder logic drops it as a duplicate. With an MKI, the forged packet
// comes under the right key but another MKI.
func TestSRTPRecordsSameAsRTP(t *testing.T) {
	type tc struct {
		suite string
		mki   []byte
	}
	var cases []tc
	for suite := range srtpProfiles {
		cases = append(cases, tc{suite, nil})
	}
	cases = append(cases, tc{"AES_CM_128_HMAC_SHA1_80", []byte{0, 0, 0, 1}}, tc{"AEAD_AES_128_GCM", []byte{7}})
	for _, tc := range cases {
		name := tc.suite
		if tc.mki != nil {
			name += " with MKI"
		}
		t.Run(name, func(t *testing.T) {
			const packets = 300
			speech := audio.SpeechLike(5, 7*8000, 8000)
			key, err := media.NewSRTPKey(tc.suite)
			if err != nil {
				t.Fatal(err)
			}
			key.MKI = tc.mki
			attacker, _ := media.NewSRTPKey(tc.suite)
			if tc.mki != nil {
				attacker.Key, attacker.MKI = key.Key, []byte{9, 9, 9, 9}[:len(tc.mki)]
			}
			c := &clock{t: t0}
			connP, connS := listen(t), listen(t)
			plain, secure := newSender(t, connP), newSender(t, connS)
			sess := session(t, c, media.Config{},
				media.StreamConfig{Label: "plain", Side: callvault.SideExternal, Conn: connP, Remote: addrOf(plain.conn),
					PayloadTypes: map[uint8]string{0: "PCMU/8000"}},
				media.StreamConfig{Label: "srtp", Side: callvault.SideStaff, Conn: connS, Remote: addrOf(secure.conn),
					PayloadTypes: map[uint8]string{0: "PCMU/8000"}, SRTP: &key})
			plain.tgt, secure.tgt = lockstep(sess, 0), lockstep(sess, 1)
			enc, forger := newEncrypter(t, key), newEncrypter(t, attacker)

			var sent []*rtp.Packet
			for k := range packets {
				pos := 160 * (k + 1)
				ssrc, seq, ts := uint32(0x5151), uint16(65400+k), uint32(160*k) // seq wraps at k = 136
				if k >= 200 {
					ssrc, seq, ts = 0x6262, uint16(k), uint32(90000+160*k)
				}
				p := pkt(ssrc, seq, ts, 0, encode(0, speech[pos:pos+160]))
				sent = append(sent, p)
				c.Set(t0.Add(time.Duration(pos) * time.Second / 8000))
				switch k {
				case 50: // tampered: one payload bit flipped
					b := enc.seal(p)
					b[20] ^= 0x01
					secure.raw(b)
				case 80: // forged, with a new SSRC: must not switch the stream over
					secure.raw(forger.seal(pkt(0x7777, 1, 1, 0, encode(0, speech[:160]))))
				case 120: // a replay of packet 100
					plain.rtp(sent[100])
					secure.raw(enc.seal(sent[100]))
				}
				plain.rtp(p)
				secure.raw(enc.seal(p))
			}
			c.Set(t0.Add(time.Duration(160*(packets+1)) * time.Second / 8000))
			sp, err := sess.Finish()
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			left, right := render(t, sp)
			if bytes.Equal(int16Bytes(left), make([]byte, 2*len(left))) {
				t.Fatal("the clear stream recorded silence")
			}
			compare(t, "SRTP channel against the clear one", right, left)

			st := sess.Stats().Streams
			if st[1].AuthFailed != 2 || st[1].Duplicates != 1 || st[1].SSRCChanges != 1 || st[1].Lost != 0 || st[1].Packets != packets {
				t.Errorf("SRTP stream: %+v; want 2 failing authentication, 1 replay, 1 SSRC change, none lost, %d packets", st[1], packets)
			}
			if st[0].Duplicates != 1 || st[0].AuthFailed != 0 {
				t.Errorf("clear stream: %+v; want 1 duplicate", st[0])
			}
		})
	}
}

func int16Bytes(v []int16) []byte {
	b := make([]byte, 2*len(v))
	for i, s := range v {
		b[2*i], b[2*i+1] = byte(s), byte(s>>8)
	}
	return b
}

// TestSRTPWrongKey: SRTP under another key than the one negotiated (or a
// client that encrypts with the recorder's answer key by mistake) records
// nothing: every packet fails authentication, none is taken for audio.
func TestSRTPWrongKey(t *testing.T) {
	key, _ := media.NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	other, _ := media.NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	c := &clock{t: t0}
	conn := listen(t)
	snd := newSender(t, conn)
	sess := session(t, c, media.Config{}, media.StreamConfig{Label: "1", Side: callvault.SideStaff, Conn: conn,
		Remote: addrOf(snd.conn), PayloadTypes: map[uint8]string{0: "PCMU/8000"}, SRTP: &key})
	snd.tgt = lockstep(sess, 0)
	enc := newEncrypter(t, other)
	for k := range 50 {
		c.Set(t0.Add(time.Duration(k) * 20 * time.Millisecond))
		snd.raw(enc.seal(pkt(1, uint16(k), uint32(160*k), 0, bytes.Repeat([]byte{0x0F}, 160))))
	}
	c.Set(t0.Add(time.Second))
	sp, err := sess.Finish()
	if err != nil {
		t.Fatal(err)
	}
	_, right := render(t, sp)
	compare(t, "recording under the wrong key", right, make([]int16, 8000))
	if st := sess.Stats().Streams[0]; st.AuthFailed != 50 || st.Packets != 0 || st.Datagrams != 50 {
		t.Errorf("stats %+v; want 50 datagrams, all failing authentication, no packets", st)
	}
}

// TestSRTPLatchesOnlyAuthentic: a stream that latches onto the first sender
// (NAT) does not latch onto someone who sends first without the key.
func TestSRTPLatchesOnlyAuthentic(t *testing.T) {
	key, _ := media.NewSRTPKey("AEAD_AES_128_GCM")
	stolen, _ := media.NewSRTPKey("AEAD_AES_128_GCM")
	c := &clock{t: t0}
	conn := listen(t)
	client, stranger := newSender(t, conn), newSender(t, conn)
	sess := session(t, c, media.Config{}, media.StreamConfig{Label: "1", Side: callvault.SideStaff, Conn: conn,
		Latch: true, PayloadTypes: map[uint8]string{0: "PCMU/8000"}, SRTP: &key})
	client.tgt = lockstep(sess, 0)
	stranger.tgt = client.tgt
	enc, forger := newEncrypter(t, key), newEncrypter(t, stolen)
	stranger.raw(forger.seal(pkt(9, 1, 160, 0, bytes.Repeat([]byte{0x0F}, 160))))
	for k := range 10 {
		client.raw(enc.seal(pkt(1, uint16(k), uint32(160*k), 0, bytes.Repeat([]byte{0xFE}, 160))))
	}
	stranger.raw(forger.seal(pkt(9, 2, 320, 0, bytes.Repeat([]byte{0x0F}, 160))))
	if st := sess.Stats().Streams[0]; st.AuthFailed != 1 || st.WrongSource != 1 || st.Packets != 10 {
		t.Errorf("stats %+v; want the stranger's first packet failing authentication, its second from the wrong source, 10 packets", st)
	}
}

// TestSRTPKeyErrors: an SRTP suite the stream cannot decrypt is
// EUNSUPPORTED, a key (or MKI) of the wrong length EINVALID, from
// NewSession and AddStream alike; the keys NewSRTPKey makes fit their
// suite.
func TestSRTPKeyErrors(t *testing.T) {
	lengths := map[string]int{
		"AES_CM_128_HMAC_SHA1_80": 30, "aes_cm_128_hmac_sha1_32": 30, "AES_256_CM_HMAC_SHA1_80": 46,
		"AES_256_CM_HMAC_SHA1_32": 46, "AEAD_AES_128_GCM": 28, "AEAD_AES_256_GCM": 44,
	}
	for suite, n := range lengths {
		a, err := media.NewSRTPKey(suite)
		if err != nil || len(a.Key) != n || a.Suite != suite || !media.SupportedSuite(suite) {
			t.Errorf("NewSRTPKey(%q) = %d bytes, %v; want %d", suite, len(a.Key), err, n)
		}
		if b, _ := media.NewSRTPKey(suite); bytes.Equal(a.Key, b.Key) {
			t.Errorf("NewSRTPKey(%q) made the same key twice", suite)
		}
	}
	for _, suite := range []string{"F8_128_HMAC_SHA1_80", "AES_192_CM_HMAC_SHA1_80", "NULL", ""} {
		if _, err := media.NewSRTPKey(suite); callvault.ErrorCode(err) != callvault.EUNSUPPORTED || media.SupportedSuite(suite) {
			t.Errorf("NewSRTPKey(%q) = %v, want EUNSUPPORTED", suite, err)
		}
	}

	sc := func(label string, k media.SRTPKey) media.StreamConfig {
		return media.StreamConfig{Label: label, Side: callvault.SideStaff, Conn: listen(t), Remote: addrOf(listen(t)), SRTP: &k}
	}
	good, _ := media.NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	for _, tc := range []struct {
		key  media.SRTPKey
		code string
	}{
		{media.SRTPKey{Suite: "F8_128_HMAC_SHA1_80", Key: make([]byte, 30)}, callvault.EUNSUPPORTED},
		{media.SRTPKey{Suite: "AES_CM_128_HMAC_SHA1_80", Key: make([]byte, 29)}, callvault.EINVALID},
		{media.SRTPKey{Suite: "AEAD_AES_128_GCM", Key: make([]byte, 30)}, callvault.EINVALID},
		{media.SRTPKey{Suite: "AEAD_AES_128_GCM", Key: make([]byte, 28), MKI: make([]byte, 129)}, callvault.EINVALID},
	} {
		if _, err := media.NewSession(media.Config{Dir: t.TempDir(), ID: "x"}, sc("a", tc.key)); callvault.ErrorCode(err) != tc.code {
			t.Errorf("NewSession with a %d-byte %s key: %v, want %s", len(tc.key.Key), tc.key.Suite, err, tc.code)
		}
		s, err := media.NewSession(media.Config{Dir: t.TempDir(), ID: "y"}, sc("a", good))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddStream(sc("b", tc.key)); callvault.ErrorCode(err) != tc.code {
			t.Errorf("AddStream with a %d-byte %s key: %v, want %s", len(tc.key.Key), tc.key.Suite, err, tc.code)
		}
		s.Finish()
	}
}
