package media

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// fileSystem is a file system that holds spools, synced as a whole with
// syncfs(2) through a folder of it kept open.
type fileSystem struct {
	name string // the spool folder it was first seen through
	dir  *os.File
}

// fileSystems holds one fileSystem per device for the life of the process
// (one open folder each: spools rarely live on more than one).
var fileSystems struct {
	sync.Mutex
	m map[uint64]*fileSystem
}

// fileSystemOf returns the file system of the folder dir.
func fileSystemOf(dir string) (*fileSystem, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	dev := uint64(fi.Sys().(*syscall.Stat_t).Dev)
	fileSystems.Lock()
	defer fileSystems.Unlock()
	if fs := fileSystems.m[dev]; fs != nil {
		return fs, nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if fileSystems.m == nil {
		fileSystems.m = map[uint64]*fileSystem{}
	}
	fs := &fileSystem{name: dir, dir: f}
	fileSystems.m[dev] = fs
	return fs, nil
}

// sync makes everything written to the file system durable: file data and
// metadata, and a flush of the device's write cache. Since Linux 5.8 it
// also reports write-back errors (a failing disk) that occurred since the
// last sync; older kernels return success regardless.
func (fs *fileSystem) sync() error {
	rc, err := fs.dir.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	return serr
}
