package media

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time (user and system) of the calling thread, so that
// benchmarks can report CPU per packet even on a busy machine.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
