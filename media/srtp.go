package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/callvault/callvault"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SRTPKey is SDES key material (RFC 4568 a=crypto) for one direction of an
// SRTP stream.
type SRTPKey struct {
	// Suite is the crypto-suite as named in SDP, in any case:
	// AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32,
	// AES_256_CM_HMAC_SHA1_80, AES_256_CM_HMAC_SHA1_32 (RFC 6188),
	// AEAD_AES_128_GCM or AEAD_AES_256_GCM (RFC 7714).
	Suite string
	// Key is the master key followed by the master salt, as in the
	// attribute's inline: parameter (30, 46, 28 or 44 bytes).
	Key []byte
	// MKI is the master key identifier the sender puts in every packet,
	// from the inline: parameter's "|value:length" as length bytes, big
	// endian ("|1:4" is 00 00 00 01); nil when the attribute has none.
	MKI []byte
}

// Check reports whether a stream can decrypt with k: a suite it supports
// (EUNSUPPORTED if not), a key of the suite's length and an MKI of at
// most 128 bytes (EINVALID if not).
func (k SRTPKey) Check() error {
	s, ok := srtpSuites[strings.ToUpper(k.Suite)]
	if !ok {
		return callvault.Errorf(callvault.EUNSUPPORTED, "SRTP crypto-suite %q is not supported", k.Suite)
	}
	if len(k.Key) != s.keyLen+s.saltLen {
		return callvault.Errorf(callvault.EINVALID, "a %s key has %d bytes, not %d", k.Suite, len(k.Key), s.keyLen+s.saltLen)
	}
	if len(k.MKI) > 128 { // RFC 4568 §6.1
		return callvault.Errorf(callvault.EINVALID, "an SRTP MKI of %d bytes", len(k.MKI))
	}
	return nil
}

func (k SRTPKey) equal(o SRTPKey) bool {
	return strings.EqualFold(k.Suite, o.Suite) && bytes.Equal(k.Key, o.Key) && bytes.Equal(k.MKI, o.MKI)
}

// srtpSuite is what a crypto-suite maps to in pion/srtp.
type srtpSuite struct {
	profile         srtp.ProtectionProfile
	keyLen, saltLen int
}

// srtpSuites are the SDES suites pion/srtp implements. F8_128_HMAC_SHA1_80
// and the AES-192 suites it does not.
var srtpSuites = map[string]srtpSuite{
	"AES_CM_128_HMAC_SHA1_80": {srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	"AES_CM_128_HMAC_SHA1_32": {srtp.ProtectionProfileAes128CmHmacSha1_32, 16, 14},
	"AES_256_CM_HMAC_SHA1_80": {srtp.ProtectionProfileAes256CmHmacSha1_80, 32, 14},
	"AES_256_CM_HMAC_SHA1_32": {srtp.ProtectionProfileAes256CmHmacSha1_32, 32, 14},
	"AEAD_AES_128_GCM":        {srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
	"AEAD_AES_256_GCM":        {srtp.ProtectionProfileAeadAes256Gcm, 32, 12},
}

// SupportedSuite reports whether a stream can decrypt SRTP of the SDES
// crypto-suite (case does not matter), so that the SIP side picks an
// offered a=crypto it can use.
func SupportedSuite(suite string) bool {
	_, ok := srtpSuites[strings.ToUpper(suite)]
	return ok
}

// NewSRTPKey returns a fresh random key (from crypto/rand) of the right
// length for suite, for the recorder's own a=crypto in the answer: RFC 4568
// has each side announce the key it sends with, and a recorder that never
// sends must still answer with one. An unknown suite is EUNSUPPORTED.
func NewSRTPKey(suite string) (SRTPKey, error) {
	s, ok := srtpSuites[strings.ToUpper(suite)]
	if !ok {
		return SRTPKey{}, callvault.Errorf(callvault.EUNSUPPORTED, "SRTP crypto-suite %q is not supported", suite)
	}
	key := make([]byte, s.keyLen+s.saltLen)
	rand.Read(key) // never fails (it crashes the program instead)
	return SRTPKey{Suite: suite, Key: key}, nil
}

// srtpReplayWindow is how far behind the newest packet an SRTP packet may
// arrive (RFC 3711 §3.3.2): more than the reorder logic's own limit
// (maxMisorder), so that reordering is still judged there.
const srtpReplayWindow = 256

// srtpReceiver authenticates and decrypts one stream's SRTP with the
// sender's key. pion/srtp guesses the rollover counter per SSRC and keeps a
// replay window per SSRC, both advanced only by authentic packets: a forged
// packet cannot move them, change the SSRC, or latch the stream.
//
// After a new key is offered (Session.Rekey) the receiver holds more than
// one context: the new key, once more with the rollover counter carried
// over if it had moved (RFC 4568 leaves open whether a sender starts the
// new key's counter again, and implementations differ), and the keys
// before, for packets sent before the switch and still in flight. The
// first context that authenticates a packet of the new key becomes the
// only one.
type srtpReceiver struct {
	ctxs []srtpCtx  // ctxs[0] is tried first
	hdr  rtp.Header // scratch for pion
	buf  [4096]byte // the decrypted packet; as large as a datagram read
}

type srtpCtx struct {
	key    SRTPKey
	ctx    *srtp.Context
	tagLen int  // bytes after the payload: MKI and HMAC tag, or GCM tag and MKI
	next   bool // a new key, not yet seen in use
}

// newSRTPContext checks the key of the stream labelled label and sets up
// its decryption.
func newSRTPContext(label string, k SRTPKey) (srtpCtx, error) {
	if err := k.Check(); err != nil {
		return srtpCtx{}, callvault.Errorf(callvault.ErrorCode(err), "stream %q: %s", label, callvault.ErrorMessage(err))
	}
	s := srtpSuites[strings.ToUpper(k.Suite)]
	ctx, err := srtp.CreateContext(k.Key[:s.keyLen], k.Key[s.keyLen:], s.profile,
		srtp.SRTPReplayProtection(srtpReplayWindow), srtp.MasterKeyIndicator(k.MKI))
	if err != nil {
		return srtpCtx{}, callvault.Wrap(callvault.EINVALID, err, fmt.Sprintf("stream %q: SRTP key", label))
	}
	tag, _ := s.profile.AuthTagRTPLen()
	aead, _ := s.profile.AEADAuthTagLen()
	return srtpCtx{key: k, ctx: ctx, tagLen: len(k.MKI) + tag + aead}, nil
}

// newSRTPReceiver returns the receiver of a stream's first key.
func newSRTPReceiver(label string, k SRTPKey) (*srtpReceiver, error) {
	c, err := newSRTPContext(label, k)
	if err != nil {
		return nil, err
	}
	return &srtpReceiver{ctxs: []srtpCtx{c}}, nil
}

// rekey returns the receiver after the sender offered key k: k first (with
// a rollover counter of 0 for the stream's current SSRC, and then, if that
// is not 0, with the old one), the keys before last. If k is the key in use
// already, the receiver is the same. The caller holds st.mu.
func (st *Stream) rekey(k SRTPKey) (*srtpReceiver, error) {
	old := st.srtp
	if old != nil && old.ctxs[0].key.equal(k) {
		return old, nil
	}
	fresh, err := newSRTPContext(st.label, k)
	if err != nil {
		return nil, err
	}
	fresh.next = true
	r := &srtpReceiver{ctxs: []srtpCtx{fresh}}
	if old == nil {
		return r, nil // a stream that was plain RTP: only the new key
	}
	for _, c := range old.ctxs {
		roc, ok := c.ctx.ROC(st.ssrc)
		if !ok || !st.haveSSRC {
			continue // a key not seen in use yet has no counter
		}
		if roc != 0 {
			carried, err := newSRTPContext(st.label, k)
			if err != nil {
				return nil, err
			}
			carried.ctx.SetROC(st.ssrc, roc)
			carried.next = true
			r.ctxs = append(r.ctxs, carried)
		}
		break
	}
	// The keys before stay, for packets in flight, as old keys: a key
	// offered earlier and never seen in use (two new keys in a row) must
	// not displace the newest when a packet of it comes.
	for _, c := range old.ctxs[:min(len(old.ctxs), maxOldKeys)] {
		c.next = false
		r.ctxs = append(r.ctxs, c)
	}
	return r, nil
}

// maxOldKeys bounds the keys kept for packets in flight when new keys
// come faster than packets.
const maxOldKeys = 4

// unprotect turns an SRTP packet into the RTP packet it protects, or counts
// why it cannot: too short or not RTP (malformed), a cryptex header
// (RFC 9335, never negotiated: malformed), failed authentication (wrong
// key, another MKI, tampered, forged), or refused by the replay window (a
// repeat, or older than the window: counted with the duplicates).
func (st *Stream) unprotect(b []byte) ([]byte, bool) {
	r := st.srtp
	n, ok := rtpHeaderLen(b)
	if !ok || cryptex(b) {
		st.c.malformed++
		return nil, false
	}
	short := true
	for i := range r.ctxs {
		c := &r.ctxs[i]
		if len(b) < n+c.tagLen {
			continue
		}
		short = false
		plain, err := c.ctx.DecryptRTP(r.buf[:], b, &r.hdr)
		switch {
		case err == nil:
			if c.next {
				r.ctxs = append(r.ctxs[:0], *c) // the new key is in use: the others go
			}
			return plain, true
		case errors.Is(err, srtp.ErrFailedToVerifyAuthTag), errors.Is(err, srtp.ErrMKINotFound):
			continue // another key may be the one
		default:
			// With the length and header checked above, the only error left
			// is the replay window's (which pion/srtp does not export).
			st.c.duplicates++
			return nil, false
		}
	}
	if short {
		st.c.malformed++
	} else {
		st.c.authFailed++
	}
	return nil, false
}

// rtpHeaderLen is the length of the RTP header at the start of b, with its
// CSRCs and extension (RFC 3550 §5.1, §5.3.1).
func rtpHeaderLen(b []byte) (int, bool) {
	if len(b) < 12 {
		return 0, false
	}
	n := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return 0, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(b[n+2:]))
	}
	return n, n <= len(b)
}

// cryptex reports whether the packet says its header extension and CSRCs
// are encrypted (RFC 9335: extension profile 0xC0DE or 0xC2DE).
func cryptex(b []byte) bool {
	if b[0]&0x10 == 0 {
		return false
	}
	p := binary.BigEndian.Uint16(b[12+4*int(b[0]&0x0f):])
	return p == 0xC0DE || p == 0xC2DE
}
