//go:build !linux && !darwin && !freebsd

package diskspace

import (
	"errors"
	"io/fs"
	"runtime"
)

// Usage is not implemented on this system: it always fails, so a Monitor
// using it refuses new recordings (fail closed). Inject Monitor.Statfs.
func Usage(path string) (free, total uint64, err error) {
	return 0, 0, &fs.PathError{Op: "statfs", Path: path, Err: errors.New("free disk space is not measured on " + runtime.GOOS)}
}
