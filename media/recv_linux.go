package media

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receiving on Linux. A goroutine per stream, woken by the kernel for each
// datagram, costs a wake-up, a trip through the Go scheduler and netpoller
// and two recvfrom calls (the second one finding the socket empty) for
// every packet: most of the recorder's CPU at a few thousand streams.
// Instead, a few reader goroutines (one per CPU) take turns over all the
// streams' sockets every pollEvery and read whatever each has queued, up to
// 8 datagrams a recvmmsg(2) call, without ever waiting on a socket.
// Sessions share the readers; a stream goes to the one with the fewest. The
// kernel's receive timestamp (SO_TIMESTAMPNS) of each datagram is its
// arrival time, so the pacing delays packets without moving them on the
// timeline, and the jitter measured is the network's, not the pacing's.
//
// The socket is taken away from the Go runtime: its file descriptor is
// duplicated and the *net.UDPConn closed, which removes it from the
// runtime's poller (otherwise the poller would still be woken for every
// datagram, for nothing). The stream owns the duplicate and closes it at
// Finish.
//
// The socket's receive buffer holds what arrives between two passes, and
// what a sender that stalled sends at once when it catches up. The kernel
// default (net.core.rmem_default, 208 KiB on most systems) takes some 250
// RTP datagrams on loopback (832 bytes of buffer each) and over a hundred
// from most network cards: seconds of one stream, where a pass is 200 ms.
// Each socket asks for rcvBuf, which the kernel grants up to
// net.core.rmem_max (docs/SIPREC.md says to raise it); it costs memory
// only while datagrams wait. Measured: the load generator, short of CPU
// with 2,000 sessions, fell 5–7 s behind and then sent its backlog at
// once; 1.3% of the datagrams overflowed the default buffer, none 1 MiB.
const rcvBuf = 1 << 20

// The kernel stamps datagrams on arrival only while some socket in the
// system asks for timestamps, and it turns stamping on a little after the
// first one does (from a work queue, which a busy machine runs a few
// milliseconds late). A datagram that arrives meanwhile is stamped when it
// is read, up to a pass late, and a stream whose first packet that is
// starts its timeline late by as much. So a socket that asks for
// timestamps is kept open for the life of the process, from its start: the
// first session finds stamping on, and the last one to end does not turn it
// off for the next.
func init() {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return // then each stream's own socket turns stamping on
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1) != nil {
		unix.Close(fd)
	}
}

// pollEvery is how often a reader collects the datagrams of its sockets:
// the delay between a packet's arrival and its processing. Nothing that
// decides where audio goes depends on it: arrivals are the kernel's
// stamps, the reorder window counts in RTP time, and Pause, Resume, Finish
// and the syncer (before each write-out, so what reaches the disk at a
// sync does not depend on it either) read the sockets first. What it
// decides is how many datagrams a visit to a socket (a system call, and a
// socket and a stream cold in the CPU's caches) collects: with 20 ms
// packets, one at 20 ms, ten at 200. A visit costs about 3 µs of CPU
// whatever it finds and each datagram about 1.3 µs more in the kernel
// (BenchmarkReceive's bare sockets), so with 20 ms packets the kernel's
// share is 4.2 µs a packet at 20 ms, 2.4 at 50, 1.8 at 100 and 1.6 at 200.
// Longer would gain little and ask more of the receive buffer: ten 20 ms
// datagrams take 8 KiB of it on loopback and up to 40 KiB from network
// cards that give each datagram a page, of the kernel's default 208 KiB.
var pollEvery = 200 * time.Millisecond // a variable for the tests

// Batches of recvmmsg.
const (
	batchLen = 16   // datagrams a call
	bufLen   = 4096 // bytes a datagram; what is longer is cut (and then malformed)
	ctrlLen  = 8    // 64-bit words of control data a datagram: one timestamp
)

// maxAge bounds how long before a pass a datagram can be taken to have
// arrived: a wall clock stepped between the kernel's stamp and the reader's
// reading of the clock is not believed further than this.
const maxAge = int64(time.Second)

// batch is the scratch of recvmmsg.
type batch struct {
	hdrs  [batchLen]unix.Mmsghdr
	iovs  [batchLen]unix.Iovec
	names [batchLen]unix.RawSockaddrInet6
	ctrl  [batchLen][ctrlLen]uint64 // uint64: aligned for the Cmsghdr
	bufs  [batchLen][bufLen]byte
}

var batches = sync.Pool{New: func() any { return newBatch() }}

func newBatch() *batch {
	b := new(batch)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(bufLen)
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
		h.Control = (*byte)(unsafe.Pointer(&b.ctrl[i][0]))
	}
	return b
}

// reader is a goroutine that reads a share of the streams.
type reader struct {
	mu      sync.Mutex
	streams []*Stream // replaced, never modified: the running pass keeps its copy
	kick    chan struct{}
}

var readers struct {
	once sync.Once
	all  []*reader
}

// pickReader returns the reader with the fewest streams, starting the
// readers on first use.
func pickReader() *reader {
	readers.once.Do(func() {
		for range max(1, runtime.GOMAXPROCS(0)) {
			r := &reader{kick: make(chan struct{}, 1)}
			readers.all = append(readers.all, r)
			go r.run()
		}
	})
	var best *reader
	bestN := 0
	for _, r := range readers.all {
		r.mu.Lock()
		n := len(r.streams)
		r.mu.Unlock()
		if best == nil || n < bestN {
			best, bestN = r, n
		}
	}
	return best
}

func (r *reader) add(st *Stream) {
	r.mu.Lock()
	r.streams = append(r.streams[:len(r.streams):len(r.streams)], st)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *reader) remove(st *Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range r.streams {
		if s == st {
			streams := make([]*Stream, 0, len(r.streams)-1)
			r.streams = append(append(streams, r.streams[:i]...), r.streams[i+1:]...)
			return
		}
	}
}

// run reads every pollEvery while the reader has streams, and sleeps
// while it has none.
func (r *reader) run() {
	b := newBatch()
	t := time.NewTicker(pollEvery)
	for {
		r.mu.Lock()
		streams := r.streams
		r.mu.Unlock()
		if len(streams) == 0 {
			t.Stop()
			<-r.kick
			t.Reset(pollEvery)
			continue
		}
		for _, st := range streams {
			st.mu.Lock()
			st.poll(b)
			st.mu.Unlock()
		}
		<-t.C
	}
}

// attach takes the stream's socket from the Go runtime and gives it to a
// reader. It reports false if the socket is not a UDP socket whose
// descriptor could be duplicated; the stream then has a goroutine of its
// own. The caller owns st alone.
func (st *Stream) attach() bool {
	if st.udp == nil {
		return false
	}
	rc, err := st.udp.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	if rc.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }) != nil || err != nil {
		return false
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf) // best effort: the default serves too
	if st.sess.realClock {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			unix.Close(fd)
			return false
		}
	}
	st.udp.Close() // the duplicate keeps the socket open
	st.fd = fd
	st.rd = pickReader()
	st.rd.add(st)
	return true
}

// detach stops the reader from reading the stream. If final, it first
// reads what the socket still holds (what arrived since the last pass).
// After it, the socket can be closed.
func (st *Stream) detach(final bool) {
	st.mu.Lock()
	if final {
		st.collect()
	}
	st.stopping.Store(true)
	st.mu.Unlock()
	st.rd.remove(st)
}

// collect handles what the socket holds now, if the stream is on a
// reader. The caller holds st.mu.
func (st *Stream) collect() {
	if st.rd == nil {
		return
	}
	b := batches.Get().(*batch)
	st.poll(b)
	batches.Put(b)
}

func (st *Stream) closeFD() error {
	if st.fd < 0 {
		return nil
	}
	err := unix.Close(st.fd)
	st.fd = -1
	return err
}

// poll reads and handles everything queued on the stream's socket. The
// caller holds st.mu.
func (st *Stream) poll(b *batch) {
	if st.stopping.Load() {
		return
	}
	s := st.sess
	for {
		for i := range b.hdrs {
			b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
			b.hdrs[i].Hdr.SetControllen(8 * ctrlLen)
		}
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(st.fd), uintptr(unsafe.Pointer(&b.hdrs[0])), batchLen, unix.MSG_DONTWAIT, 0, 0)
		n := int(r)
		switch errno {
		case 0:
			st.readErrs = 0
		case unix.EAGAIN:
			return
		case unix.EINTR:
			continue
		default:
			// ICMP errors (ECONNREFUSED) and the like are transient; a storm
			// of errors is not.
			st.readErrs++
			if st.readErrs > 100 {
				st.readErr = errno
				st.stopping.Store(true)
				st.rd.remove(st)
				return
			}
			continue
		}
		var now time.Time
		var base int64
		if s.realClock {
			now = time.Now()
			base = int64(now.Sub(s.start))
		} else {
			base = int64(s.now().Sub(s.start))
		}
		for i := range n {
			arrival := base
			if s.realClock {
				if ts := stamp(&b.ctrl[i], int(b.hdrs[i].Hdr.Controllen)); ts != 0 {
					arrival -= min(max(now.UnixNano()-ts, 0), maxAge)
				}
			}
			st.handle(b.bufs[i][:b.hdrs[i].Len], source(&b.names[i]), arrival)
		}
		if n < batchLen {
			return
		}
	}
}

// stamp returns the kernel's receive timestamp (SCM_TIMESTAMPNS) in the
// control data of a datagram, in ns since the Unix epoch, or 0.
func stamp(ctrl *[ctrlLen]uint64, n int) int64 {
	c := unsafe.Slice((*byte)(unsafe.Pointer(&ctrl[0])), 8*ctrlLen)[:min(n, 8*ctrlLen)]
	for len(c) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(c) {
			return 0
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			return (*unix.Timespec)(unsafe.Pointer(&c[unix.CmsgLen(0)])).Nano()
		}
		c = c[min(len(c), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return 0
}

// source is the sender's address in a datagram's name.
func source(n *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&n.Port))[:])
	switch n.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(n))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(n.Addr), port)
	}
	return netip.AddrPort{}
}
