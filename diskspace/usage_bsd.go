//go:build darwin || freebsd

package diskspace

import (
	"io/fs"
	"math/bits"

	"golang.org/x/sys/unix"
)

// Usage returns the bytes free to an unprivileged process (blocks reserved
// for root do not count: callvault should not run as root) and the size of the
// filesystem holding path.
func Usage(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, &fs.PathError{Op: "statfs", Path: path, Err: err}
	}
	// FreeBSD's Bavail goes negative when the reserve is in use.
	return mulSat(nonNegative(st.Bavail), uint64(st.Bsize)), mulSat(st.Blocks, uint64(st.Bsize)), nil
}

func nonNegative[T int64 | uint64](v T) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// mulSat is a*b, or the largest uint64 if that overflows.
func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return 1<<64 - 1
	}
	return lo
}
