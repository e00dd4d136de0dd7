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
	// Block counts are in fragment-size units (statfs(2)); Frsize equals
	// Bsize on the usual filesystems, and old kernels leave it zero.
	unit := uint64(st.Frsize)
	if st.Frsize <= 0 {
		unit = uint64(st.Bsize)
	}
	return mulSat(st.Bavail, unit), mulSat(st.Blocks, unit), nil
}

// mulSat is a*b, or the largest uint64 if that overflows.
func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return 1<<64 - 1
	}
	return lo
}
