package recorder

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// ports hands out RTP ports from a range: even numbers only (RTP on the
// even port, RTCP would be the odd one above, which is never opened), next
// after the last one handed out, so a port just released is not reused at
// once and late packets of an ended call do not land in a new one.
type ports struct {
	mu       sync.Mutex
	ip       netip.Addr
	min, max int // inclusive, even
	next     int
	inUse    map[int]bool
}

func newPorts(ip netip.Addr, min, max int) (*ports, error) {
	if min%2 == 1 {
		min++
	}
	if max%2 == 1 {
		max--
	}
	if min < 1024 || max > 65534 || min > max {
		return nil, fmt.Errorf("RTP port range %d-%d: use even ports between 1024 and 65534, first below last", min, max)
	}
	return &ports{ip: ip, min: min, max: max, next: min, inUse: map[int]bool{}}, nil
}

// open binds a UDP socket on a free port of the range. It skips ports that
// another program holds.
func (p *ports) open() (*net.UDPConn, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := (p.max-p.min)/2 + 1
	for range n {
		port := p.next
		p.next += 2
		if p.next > p.max {
			p.next = p.min
		}
		if p.inUse[port] {
			continue
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, uint16(port))))
		if err != nil {
			continue // taken by someone else
		}
		p.inUse[port] = true
		return c, port, nil
	}
	return nil, 0, fmt.Errorf("no free RTP port in %d-%d", p.min, p.max)
}

func (p *ports) release(port int) {
	p.mu.Lock()
	delete(p.inUse, port)
	p.mu.Unlock()
}
