package blob

import (
	"strings"
	"unicode/utf8"

	"github.com/callvault/callvault"
)

// Key limits. Segments stay below the 255-byte name limit of common
// filesystems and S3 keys are limited to 1024 bytes.
const (
	maxKeyLen     = 1024
	maxSegmentLen = 255
)

// tempPrefix is how Walk reports temporary blobs. Delete accepts such keys so
// the sweeper can remove abandoned temporaries; Create and Open never do.
const tempPrefix = ".tmp/"

// validKey reports why key cannot name a blob, or nil. A valid key is a
// relative, slash-separated path of non-empty segments, none starting with
// "." (so "..", "." and the temp folder are unreachable), without
// backslashes, control characters or invalid UTF-8.
func validKey(key string) error {
	if key == "" {
		return callvault.Errorf(callvault.EINVALID, "blob key is empty")
	}
	if len(key) > maxKeyLen {
		return callvault.Errorf(callvault.EINVALID, "blob key is longer than %d bytes", maxKeyLen)
	}
	if !utf8.ValidString(key) {
		return callvault.Errorf(callvault.EINVALID, "blob key %q is not valid UTF-8", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := validSegment(key, seg); err != nil {
			return err
		}
	}
	return nil
}

func validSegment(key, seg string) error {
	switch {
	case seg == "":
		return callvault.Errorf(callvault.EINVALID, "blob key %q has an empty segment or a leading or trailing slash", key)
	case seg[0] == '.':
		return callvault.Errorf(callvault.EINVALID, "blob key %q has a segment starting with a dot", key)
	case len(seg) > maxSegmentLen:
		return callvault.Errorf(callvault.EINVALID, "blob key %q has a segment longer than %d bytes", key, maxSegmentLen)
	}
	for _, r := range seg {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return callvault.Errorf(callvault.EINVALID, "blob key %q contains a backslash or control character", key)
		}
	}
	return nil
}

// tempName returns the temp file name of a key reported by Walk with
// temp=true, and whether key is such a key.
func tempName(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, tempPrefix)
	if !ok || validSegment(key, name) != nil || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}
