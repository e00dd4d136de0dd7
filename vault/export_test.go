package vault

// EpochKey exposes the unwrapped key of an epoch for tests.
func (v *Vault) EpochKey(epoch string) ([]byte, error) { return v.epochKey(epoch, false) }
