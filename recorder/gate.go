package recorder

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The gate keeps strangers (addresses not in Allow) away from sipgo
// altogether, in front of its transports: sipgo keeps per-source state
// for every datagram, answers methods it has no handler for (405) and
// malformed requests (400) by itself, routes answers to where a request's
// Via says, and keeps TCP connections open for as long as the peer likes.
// So:
//   - UDP: a stranger's datagram never reaches sipgo. While the stranger
//     is under the rate limit (strangerReplies a minute), a request gets
//     a 403 sent back to the datagram's source address, whatever its Via
//     says; then everything from it is dropped unanswered.
//   - TCP and TLS: a stranger's connection is closed as soon as it is
//     accepted, before any byte (or TLS handshake) is read.
//   - A recording client's TCP connection that sends nothing for
//     tcpIdle is closed (a half-sent message cannot hold it for ever);
//     clients reconnect for their next request.

// tcpIdle is how long a recording client's TCP or TLS connection may stay
// silent. SBCs send OPTIONS keep-alives far more often.
const tcpIdle = time.Hour

func (r *Recorder) allowedAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// stranger decides what a stranger's request gets: true for a 403 (while
// under the rate limit), false to be ignored. Both are counted and logged
// (the log only until the limit).
func (r *Recorder) stranger(a netip.Addr, method string) bool {
	host := a.Unmap().String()
	if ok, _ := r.strangers.Allowed(host); !ok {
		r.mu.Lock()
		r.rejected[0]++ // dropped without an answer
		r.mu.Unlock()
		return false
	}
	r.strangers.Fail(host)
	if ok, _ := r.strangers.Allowed(host); !ok {
		r.log().Warn("sip: ignoring an address that is not a recording client for a minute", "source", host)
	} else {
		r.log().Warn("sip: request from an address that is not a recording client", "source", host, "method", method)
	}
	if method == "INVITE" {
		r.mu.Lock()
		r.rejected[403]++
		r.mu.Unlock()
	}
	return true
}

// udpGate is the UDP socket sipgo reads: only recording clients' datagrams
// come out of ReadFrom.
type udpGate struct {
	net.PacketConn
	r *Recorder
}

func (g *udpGate) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := g.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		if g.r.allowedAddr(ua.AddrPort().Addr()) {
			return n, addr, nil
		}
		g.refuse(b[:n], ua)
	}
}

// refuse answers a stranger's request with a 403 to where it came from,
// while the stranger is under the rate limit; anything else is dropped.
func (g *udpGate) refuse(data []byte, from *net.UDPAddr) {
	if len(data) < 8 || !strings.Contains(string(data[:min(len(data), 32)]), " sip:") && !strings.Contains(string(data[:min(len(data), 32)]), " sips:") {
		// Not a request line's start (a response, keep-alive, garbage):
		// not worth parsing, never answered, still counted.
		g.r.stranger(from.AddrPort().Addr(), "")
		return
	}
	msg, err := sip.ParseMessage(data)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok || req.IsAck() || req.CallID() == nil || req.CSeq() == nil || req.Via() == nil || req.From() == nil || req.To() == nil {
		g.r.stranger(from.AddrPort().Addr(), "")
		return
	}
	if !g.r.stranger(from.AddrPort().Addr(), string(req.Method)) {
		return
	}
	g.PacketConn.WriteTo([]byte(forbidden(req).String()), from)
}

// forbidden is the answer to a stranger's request.
func forbidden(req *sip.Request) *sip.Response {
	res := sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
	res.AppendHeader(sip.NewHeader("Warning", `399 callvault "not a configured recording client"`))
	return res
}

// tcpGate is the TCP listener sipgo accepts from (under TLS for "tls"):
// strangers' connections are closed at once, clients' get an idle limit.
type tcpGate struct {
	net.Listener
	r *Recorder
}

func (g *tcpGate) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// Out of file descriptors, a connection reset before it was
			// accepted: sipgo would stop serving TCP for good on any
			// Accept error. Wait a little and go on.
			g.r.log().Warn("sip: TCP accept failed; retrying", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ta, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok || !g.r.allowedAddr(ta.AddrPort().Addr()) {
			if ok {
				g.r.stranger(ta.AddrPort().Addr(), "")
			}
			c.Close()
			continue
		}
		return &idleConn{Conn: c}, nil
	}
}

// idleConn closes (by a read deadline) a connection silent for tcpIdle.
type idleConn struct{ net.Conn }

func (c *idleConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(tcpIdle))
	return c.Conn.Read(b)
}

// listen opens one listener behind the gate and serves it with sipgo.
func (r *Recorder) listen(l Listener) (func() error, error) {
	switch l.Network {
	case "udp":
		conn, err := net.ListenPacket("udp", l.Addr)
		if err != nil {
			return nil, err
		}
		go r.srv.ServeUDP(&udpGate{PacketConn: conn, r: r})
		return conn.Close, nil
	case "tcp", "tls":
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return nil, err
		}
		var gated net.Listener = &tcpGate{Listener: ln, r: r}
		if l.Network == "tls" {
			if l.TLS == nil {
				ln.Close()
				return nil, errors.New("no TLS configuration")
			}
			go r.srv.ServeTLS(tls.NewListener(gated, l.TLS))
		} else {
			go r.srv.ServeTCP(gated)
		}
		return ln.Close, nil
	}
	return nil, errors.New("unknown transport " + l.Network)
}
