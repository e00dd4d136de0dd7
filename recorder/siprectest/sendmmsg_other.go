//go:build !linux

package siprectest

import (
	"net"
	"net/netip"
)

// batchWriter sends datagrams one at a time where there is no sendmmsg(2).
type batchWriter struct {
	conn *net.UDPConn
	n    int
	to   [sendBatch]netip.AddrPort
	bufs [sendBatch][packetLen]byte
}

func newBatchWriter(conn *net.UDPConn) (*batchWriter, error) { return &batchWriter{conn: conn}, nil }

// next adds a datagram to to and returns its buffer to fill.
func (w *batchWriter) next(to netip.AddrPort) []byte {
	w.to[w.n] = to
	w.n++
	return w.bufs[w.n-1][:]
}

func (w *batchWriter) full() bool { return w.n == sendBatch }

// flush sends what next added and reports how many datagrams went and how
// many the kernel refused.
func (w *batchWriter) flush() (sent, failed int) {
	for i := range w.n {
		if _, err := w.conn.WriteToUDPAddrPort(w.bufs[i][:], w.to[i]); err != nil {
			failed++
		} else {
			sent++
		}
	}
	w.n = 0
	return sent, failed
}
