package media

import (
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
type srtpReceiver struct {
	ctx    *srtp.Context
	tagLen int        // bytes after the payload: MKI and HMAC tag, or GCM tag and MKI
	hdr    rtp.Header // scratch for pion
	buf    [4096]byte // the decrypted packet; as large as a datagram read
}

// newSRTPReceiver checks the key of the stream labelled label and sets up
// its decryption.
func newSRTPReceiver(label string, k SRTPKey) (*srtpReceiver, error) {
	s, ok := srtpSuites[strings.ToUpper(k.Suite)]
	if !ok {
		return nil, callvault.Errorf(callvault.EUNSUPPORTED, "stream %q: SRTP crypto-suite %q is not supported", label, k.Suite)
	}
	if len(k.Key) != s.keyLen+s.saltLen {
		return nil, callvault.Errorf(callvault.EINVALID, "stream %q: a %s key has %d bytes, not %d", label, k.Suite, len(k.Key), s.keyLen+s.saltLen)
	}
	if len(k.MKI) > 128 { // RFC 4568 §6.1
		return nil, callvault.Errorf(callvault.EINVALID, "stream %q: an SRTP MKI of %d bytes", label, len(k.MKI))
	}
	ctx, err := srtp.CreateContext(k.Key[:s.keyLen], k.Key[s.keyLen:], s.profile,
		srtp.SRTPReplayProtection(srtpReplayWindow), srtp.MasterKeyIndicator(k.MKI))
	if err != nil {
		return nil, callvault.Wrap(callvault.EINVALID, err, fmt.Sprintf("stream %q: SRTP key", label))
	}
	tag, _ := s.profile.AuthTagRTPLen()
	aead, _ := s.profile.AEADAuthTagLen()
	return &srtpReceiver{ctx: ctx, tagLen: len(k.MKI) + tag + aead}, nil
}

// unprotect turns an SRTP packet into the RTP packet it protects, or counts
// why it cannot: too short or not RTP (malformed), a cryptex header
// (RFC 9335, never negotiated: malformed), failed authentication (wrong
// key, another MKI, tampered, forged), or refused by the replay window (a
// repeat, or older than the window: counted with the duplicates).
func (st *Stream) unprotect(b []byte) ([]byte, bool) {
	r := st.srtp
	n, ok := rtpHeaderLen(b)
	if !ok || len(b) < n+r.tagLen || cryptex(b) {
		st.c.malformed++
		return nil, false
	}
	plain, err := r.ctx.DecryptRTP(r.buf[:], b, &r.hdr)
	switch {
	case err == nil:
		return plain, true
	case errors.Is(err, srtp.ErrFailedToVerifyAuthTag), errors.Is(err, srtp.ErrMKINotFound):
		st.c.authFailed++
	default:
		// With the length and header checked above, the only error left is
		// the replay window's (which pion/srtp does not export).
		st.c.duplicates++
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
