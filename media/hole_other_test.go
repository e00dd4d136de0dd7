//go:build !unix

package media_test

import (
	"testing"

	"github.com/callvault/callvault/media"
)

func diskUsage(t *testing.T, sp *media.Spool) int64 { return 0 }
