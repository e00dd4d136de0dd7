package vault

import (
	"fmt"

	"github.com/callvault/callvault/durable"
)

// LoadOrCreateKEK reads the key-encryption key from path, or creates it
// (KeySize random bytes, mode 0600, folder 0700) if there is none, and
// reports whether it created it. Creation is atomic: of several processes
// starting at once, one creates the key and all return it.
//
// It refuses a key file of the wrong size and, on Unix, one that group or
// others may read or write. Losing this file loses every recording, so back
// it up apart from the keyring and the blobs.
func LoadOrCreateKEK(path string) ([]byte, bool, error) {
	key, created, err := durable.LoadOrCreateSecret(path, KeySize, "KEK")
	if err != nil {
		return nil, false, fmt.Errorf("vault: %w", err)
	}
	return key, created, nil
}
