package audit

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CheckpointVersion is the version of the signed message below.
const CheckpointVersion = 1

// checkpointMagic opens the signed message of a version 1 checkpoint.
const checkpointMagic = "callvault-checkpoint-v1\n"

// checkpointTimeLayout is how a checkpoint's time is written in JSON: RFC
// 3339, UTC, exactly three fractional digits.
const checkpointTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Checkpoint is a signed statement that the trail's head was (Seq, Hash) at
// Time. Kept outside the database, it lets Verify detect a rebuilt chain, a
// cut-off tail or a restored backup.
//
// The signed message is frozen (version 1):
//
//	"callvault-checkpoint-v1\n" + Seq (decimal) + "\n" + Hash (64 lower-case
//	hex digits) + "\n" + Time (Unix milliseconds, decimal) + "\n"
//
// signed with Ed25519. KeyID is not signed: it only names the key (the first
// 8 bytes of SHA-256 of the public key, in hex) so that a checkpoint checked
// against the wrong key says so. In JSON:
//
//	{"version":1,"seq":42,"hash":"…","time":"2026-11-27T09:30:15.123Z","key_id":"…","signature":"base64"}
type Checkpoint struct {
	Version   int
	Seq       int64
	Hash      string
	Time      time.Time
	KeyID     string
	Signature []byte
}

// checkpointJSON is the wire form of a Checkpoint.
type checkpointJSON struct {
	Version   int    `json:"version"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	KeyID     string `json:"key_id"`
	Signature []byte `json:"signature"`
}

// Message returns the exact bytes that are signed (see Checkpoint).
func (c *Checkpoint) Message() []byte {
	return checkpointMessage(c.Seq, c.Hash, c.Time)
}

func checkpointMessage(seq int64, hash string, t time.Time) []byte {
	b := make([]byte, 0, len(checkpointMagic)+20+1+len(hash)+1+20+1)
	b = append(b, checkpointMagic...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, '\n')
	b = append(b, hash...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, t.UnixMilli(), 10)
	return append(b, '\n')
}

// MarshalJSON writes the wire form shown on Checkpoint.
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	return json.Marshal(checkpointJSON{
		Version:   c.Version,
		Seq:       c.Seq,
		Hash:      c.Hash,
		Time:      c.Time.UTC().Format(checkpointTimeLayout),
		KeyID:     c.KeyID,
		Signature: c.Signature,
	})
}

// UnmarshalJSON reads the wire form. The time must be RFC 3339 with at most
// millisecond precision (what is signed); it is converted to UTC.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var w checkpointJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return fmt.Errorf("checkpoint time: %w", err)
	}
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		return fmt.Errorf("checkpoint time %q is more precise than a millisecond", w.Time)
	}
	if t = t.UTC(); t.Year() < 0 || t.Year() > 9999 {
		return fmt.Errorf("checkpoint time %q is out of range", w.Time)
	}
	*c = Checkpoint{
		Version:   w.Version,
		Seq:       w.Seq,
		Hash:      w.Hash,
		Time:      t,
		KeyID:     w.KeyID,
		Signature: w.Signature,
	}
	return nil
}

// Verify checks c against pub and says what is wrong: an unknown version, a
// malformed field, a key other than pub, or a signature that does not match
// (a field was altered after signing, or the checkpoint was forged).
func (c *Checkpoint) Verify(pub ed25519.PublicKey) error {
	switch {
	case c.Version != CheckpointVersion:
		return fmt.Errorf("checkpoint at seq %d: version %d is not supported (want %d)", c.Seq, c.Version, CheckpointVersion)
	case len(pub) != ed25519.PublicKeySize:
		return fmt.Errorf("checkpoint at seq %d: the public key holds %d bytes, want %d", c.Seq, len(pub), ed25519.PublicKeySize)
	case c.Seq < 0:
		return fmt.Errorf("checkpoint: seq %d is negative", c.Seq)
	case !isHash(c.Hash):
		return fmt.Errorf("checkpoint at seq %d: hash %q is not 64 lower-case hex digits", c.Seq, c.Hash)
	}
	if want := KeyID(pub); c.KeyID != want {
		return fmt.Errorf("checkpoint at seq %d was signed by key %q, not by the given key %s", c.Seq, c.KeyID, want)
	}
	if len(c.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("checkpoint at seq %d: signature holds %d bytes, want %d", c.Seq, len(c.Signature), ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, c.Message(), c.Signature) {
		return fmt.Errorf("checkpoint at seq %d: the signature does not match its seq, hash and time: they were altered after signing, or it was forged", c.Seq)
	}
	return nil
}

// isHash reports whether s is 64 lower-case hex digits, the only spelling a
// hash has in the trail and in checkpoints.
func isHash(s string) bool {
	var h [sha256.Size]byte
	return decodeHash(&h, s)
}

// ReadCheckpoints reads checkpoints written as one JSON object, a JSON
// array, or JSON lines (as FileExporter writes them).
func ReadCheckpoints(r io.Reader) ([]*Checkpoint, error) {
	br := bufio.NewReader(r)
	first, err := firstNonSpace(br)
	if err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(br)
	if first == '[' {
		var cps []*Checkpoint
		if err := dec.Decode(&cps); err != nil {
			return nil, fmt.Errorf("checkpoints: %w", err)
		}
		if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
			return nil, errors.New("checkpoints: data after the array")
		}
		for i, c := range cps {
			if c == nil {
				return nil, fmt.Errorf("checkpoint %d: null", i+1)
			}
		}
		return cps, nil
	}
	var cps []*Checkpoint
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return cps, nil
		} else if err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", len(cps)+1, err)
		}
		if len(raw) == 0 || raw[0] != '{' {
			return nil, fmt.Errorf("checkpoint %d: not a JSON object", len(cps)+1)
		}
		c := new(Checkpoint)
		if err := json.Unmarshal(raw, c); err != nil {
			return nil, fmt.Errorf("checkpoint %d: %w", len(cps)+1, err)
		}
		cps = append(cps, c)
	}
}

// firstNonSpace peeks at the first byte that is not JSON white space.
func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		switch b {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return b, br.UnreadByte()
	}
}

// publicKeyPrefix opens the text form of a checkpoint public key.
const publicKeyPrefix = "callvault-audit-ed25519:"

// FormatPublicKey returns the text form of pub:
// "callvault-audit-ed25519:" followed by standard base64.
func FormatPublicKey(pub ed25519.PublicKey) string {
	return publicKeyPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads the form FormatPublicKey writes (surrounding space is
// ignored).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("audit public key: does not start with %q", publicKeyPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit public key: %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex. It is
// also the fingerprint mailed with each checkpoint.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
