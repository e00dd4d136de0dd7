//go:build unix

package media_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/callvault/callvault/media"
)

// diskUsage is the space the first stream's spool file takes on disk.
func diskUsage(t *testing.T, sp *media.Spool) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(sp.Dir, sp.Streams[0].File))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}
