package siprectest

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchWriter sends up to sendBatch datagrams, each to its own address,
// with one sendmmsg(2).
type batchWriter struct {
	raw   syscall.RawConn
	n     int
	hdrs  [sendBatch]unix.Mmsghdr
	iovs  [sendBatch]unix.Iovec
	names [sendBatch]unix.RawSockaddrInet6 // or Inet4, which is shorter
	bufs  [sendBatch][packetLen]byte
}

func newBatchWriter(conn *net.UDPConn) (*batchWriter, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &batchWriter{raw: raw}
	for i := range w.hdrs {
		w.iovs[i] = unix.Iovec{Base: &w.bufs[i][0], Len: packetLen}
		w.hdrs[i].Hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&w.names[i])), Iov: &w.iovs[i], Iovlen: 1}
	}
	return w, nil
}

// next adds a datagram to to and returns its buffer to fill.
func (w *batchWriter) next(to netip.AddrPort) []byte {
	i := w.n
	w.n++
	sa := &w.names[i]
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	port[0], port[1] = byte(to.Port()>>8), byte(to.Port())
	if a := to.Addr(); a.Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = a.As4()
		w.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
	} else {
		sa.Family = unix.AF_INET6
		sa.Addr = a.As16()
		w.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	return w.bufs[i][:]
}

func (w *batchWriter) full() bool { return w.n == sendBatch }

// flush sends what next added and reports how many datagrams went and how
// many the kernel refused.
func (w *batchWriter) flush() (sent, failed int) {
	for off := 0; off < w.n; {
		var (
			n     int
			errno syscall.Errno
		)
		err := w.raw.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[off])), uintptr(w.n-off), 0, 0, 0)
			if e == unix.EAGAIN {
				return false // wait until the socket can send
			}
			n, errno = int(r), e
			return true
		})
		if err != nil { // the socket is closed
			failed += w.n - off
			break
		}
		if errno != 0 || n <= 0 { // the first datagram failed: skip it
			failed++
			off++
			continue
		}
		sent += n
		off += n
	}
	w.n = 0
	return sent, failed
}
