package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"
	"strconv"

	"github.com/callvault/callvault"
)

// chainHasher computes callvault.ChainHash without allocating: it reuses one
// SHA-256 state, one encoding buffer and one key slice, and works on raw
// hash bytes instead of hex. Its output is byte-identical to ChainHash
// (TestChainHasherMatchesChainHash checks it over many random events); the
// encoding itself stays defined by callvault.CanonicalV1.
type chainHasher struct {
	h    hash.Hash
	buf  []byte
	keys []string
	sum  [sha256.Size]byte
}

func newChainHasher() *chainHasher {
	return &chainHasher{h: sha256.New(), buf: make([]byte, 0, 512)}
}

// chain returns SHA-256(prev || CanonicalV1(e)). The result is valid until
// the next call.
func (c *chainHasher) chain(prev *[sha256.Size]byte, e *callvault.AuditEvent) *[sha256.Size]byte {
	c.buf = c.appendCanonicalV1(c.buf[:0], e)
	c.h.Reset()
	c.h.Write(prev[:])
	c.h.Write(c.buf)
	c.h.Sum(c.sum[:0])
	return &c.sum
}

// appendCanonicalV1 appends exactly the bytes of e.CanonicalV1() to b.
func (c *chainHasher) appendCanonicalV1(b []byte, e *callvault.AuditEvent) []byte {
	b = appendField(b, callvault.AuditEncodingV1)
	b = appendInt(b, e.Seq)
	b = appendInt(b, e.Time.UnixMilli())
	b = appendField(b, e.ActorKind)
	b = appendField(b, e.ActorID)
	b = appendField(b, e.ActorName)
	b = appendField(b, e.ActorRole)
	b = appendField(b, e.Action)
	b = appendField(b, e.TargetType)
	b = appendField(b, e.TargetID)
	b = appendInt(b, e.AcademyID)
	b = appendField(b, e.Outcome)
	b = appendField(b, e.ClientAddr)
	b = appendField(b, e.Reason)
	b = appendInt(b, int64(len(e.Details)))
	if len(e.Details) == 0 { // most entries: skip starting a map iteration
		return b
	}
	c.keys = c.keys[:0]
	for k := range e.Details {
		c.keys = append(c.keys, k)
	}
	slices.Sort(c.keys)
	for _, k := range c.keys {
		b = appendField(b, k)
		b = appendField(b, e.Details[k])
	}
	clear(c.keys) // do not keep the event's strings alive
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendInt appends v in decimal as a field: its length (at most 20, one
// uvarint byte) and then its digits.
func appendInt(b []byte, v int64) []byte {
	n := len(b)
	b = strconv.AppendInt(append(b, 0), v, 10)
	b[n] = byte(len(b) - n - 1)
	return b
}

// decodeHash decodes s, which must be 64 lower-case hex digits (the only
// way hashes are written), into h. It does not allocate.
func decodeHash(h *[sha256.Size]byte, s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := range h {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		h[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
