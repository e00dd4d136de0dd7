package vault

import (
	"crypto/rand"
	"fmt"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

const (
	stanzaType    = "callvault-epoch"
	stanzaVersion = "1"
	fileKeySize   = 16 // age's file key
	stanzaBodyLen = chacha20poly1305.NonceSizeX + fileKeySize + chacha20poly1305.Overhead
)

// stanzaAD binds a wrapped file key to its epoch and recording. The epoch
// has a fixed length and no NUL, so the encoding is unambiguous.
func stanzaAD(epoch, id string) []byte {
	return []byte("callvault/v1\x00" + epoch + "\x00" + id)
}

// recipient wraps age's file key under an epoch key for one recording.
type recipient struct {
	epoch, id string
	key       []byte
}

func (r *recipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	aead, err := chacha20poly1305.NewX(r.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, stanzaBodyLen)
	rand.Read(nonce)
	body := aead.Seal(nonce, nonce, fileKey, stanzaAD(r.epoch, r.id))
	return []*age.Stanza{{Type: stanzaType, Args: []string{r.epoch, stanzaVersion}, Body: body}}, nil
}

// identity unwraps the file key of the recording it was made for. The
// recording id comes from the caller, never from the ciphertext.
type identity struct {
	epoch, id string
	key       []byte
}

func newIdentity(epoch, id string, key []byte) *identity {
	return &identity{epoch: epoch, id: id, key: key}
}

func (i *identity) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	// callvault writes exactly one stanza; anything else was not made here.
	if len(stanzas) != 1 {
		return nil, fmt.Errorf("header has %d recipient stanzas, want 1", len(stanzas))
	}
	s := stanzas[0]
	switch {
	case s.Type != stanzaType:
		return nil, fmt.Errorf("%w: stanza type %q, want %q", age.ErrIncorrectIdentity, s.Type, stanzaType)
	case len(s.Args) != 2 || s.Args[1] != stanzaVersion:
		return nil, fmt.Errorf("unsupported %s stanza arguments %q", stanzaType, s.Args)
	case s.Args[0] != i.epoch:
		return nil, fmt.Errorf("%w: ciphertext is for key epoch %q, not %q", age.ErrIncorrectIdentity, s.Args[0], i.epoch)
	case len(s.Body) != stanzaBodyLen:
		return nil, fmt.Errorf("%s stanza body is %d bytes, want %d", stanzaType, len(s.Body), stanzaBodyLen)
	}
	aead, err := chacha20poly1305.NewX(i.key)
	if err != nil {
		return nil, err
	}
	nonce, sealed := s.Body[:chacha20poly1305.NonceSizeX], s.Body[chacha20poly1305.NonceSizeX:]
	fileKey, err := aead.Open(nil, nonce, sealed, stanzaAD(i.epoch, i.id))
	if err != nil {
		return nil, fmt.Errorf("%w: file key does not open for recording %q in epoch %q (ciphertext moved to another recording, or altered)",
			age.ErrIncorrectIdentity, i.id, i.epoch)
	}
	return fileKey, nil
}
