package media_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
)

// TestCallOverUDP records a 7-second two-party call sent over real sockets,
// with everything a network and a sloppy client do: loss, reordering,
// duplicates, a packet too late for the reorder window, DTMF events, a
// switch from PCMU to PCMA the SDP never offered, packets from a stranger's
// address, RTCP on the RTP port, sequence and timestamp wrap-around, an SSRC
// change right after a lost packet, and a staff stream that starts half a
// second late. Every sample of the rendered WAV must equal the G.711 round
// trip of the conversation at the same position, or silence where the
// packet was lost, left out, or not audio.
func TestCallOverUDP(t *testing.T) {
	const (
		rate     = 8000
		packet   = 160 // 20 ms
		startA   = 320 // stream A's first packet arrives 40 ms in
		startB   = 4080
		packetsA = 300
		packetsB = 280
	)
	left, right := audio.Conversation(3, 7*time.Second, rate)
	c := &clock{t: t0}
	connA, connB := listen(t), listen(t)
	a, b, stranger := newSender(t, connA), newSender(t, connB), newSender(t, connA)
	sess := session(t, c, media.Config{},
		media.StreamConfig{Label: "1", Side: callvault.SideExternal, Conn: connA, Remote: addrOf(a.conn),
			PayloadTypes: map[uint8]string{0: "PCMU/8000", 101: "telephone-event/8000"}},
		media.StreamConfig{Label: "2", Side: callvault.SideStaff, Conn: connB, Remote: addrOf(b.conn),
			PayloadTypes: map[uint8]string{8: "PCMA/8000"}})
	a.tgt = lockstep(sess, 0)
	stranger.tgt = a.tgt
	b.tgt = lockstep(sess, 1)
	wantL, wantR := make(timeline, 7*rate), make(timeline, 7*rate)

	// Stream A, as a list of sends in arrival order.
	type send struct {
		at int64 // sample position of the arrival time
		do func()
	}
	var sends []send
	at := func(i int) int64 { return int64(startA + packet*i) }
	tsA := func(i int) uint32 { base := uint32(0xFFFFF000); return base + uint32(packet*i) } // wraps at 26
	packetA := func(i int) func() {
		pos := int64(startA + packet*i)
		pt, ssrc, seq, ts := uint8(0), uint32(0x1111), uint16(65500+i), tsA(i)
		if i >= 100 && i < 200 {
			pt = 8
		}
		if i >= 200 {
			ssrc, seq, ts = 0x2222, uint16(1000+i-200), 12345678+uint32(packet*(i-200))
		}
		payload := encode(pt, left[pos:pos+packet])
		return func() { a.rtp(pkt(ssrc, seq, ts, pt, payload)) }
	}
	heard := func(i int) {
		pos := int64(startA + packet*i)
		pt := uint8(0)
		if i >= 100 && i < 200 {
			pt = 8
		}
		wantL.put(pos, decode(pt, encode(pt, left[pos:pos+packet])))
	}
	for i := range packetsA {
		switch {
		case i == 10 || i == 11 || i == 199: // lost
			continue
		case i == 20: // duplicated at once
			sends = append(sends, send{at(i), packetA(i)}, send{at(i), packetA(i)})
		case i == 30: // and again after 33
			sends = append(sends, send{at(i), packetA(i)}, send{at(33) + 40, packetA(i)})
		case i == 40: // swapped with 41: within the reorder window
			sends = append(sends, send{at(41), packetA(i)})
		case i == 41:
			sends = append(sends, send{at(40), packetA(i)})
		case i == 50: // after 55: too late, its place was given up at 53
			sends = append(sends, send{at(55) + 40, packetA(i)})
			continue
		case i >= 60 && i < 65: // a key press: events instead of audio
			seq, ts := uint16(65500+i), tsA(60)
			payload := []byte{5, 10, 0, byte(160 * (i - 59))}
			sends = append(sends, send{at(i), func() { a.rtp(pkt(0x1111, seq, ts, 101, payload)) }})
			continue
		case i == 120: // a stranger injects the sequence numbers of 125 and 126
			for k := uint16(125); k <= 126; k++ {
				payload := make([]byte, packet)
				for j := range payload {
					payload[j] = 0x0F // loud
				}
				p := pkt(0x1111, 65500+k, tsA(int(k)), 8, payload)
				sends = append(sends, send{at(i) - 1, func() { stranger.rtp(p) }})
			}
			sends = append(sends, send{at(i), packetA(i)})
		case i == 150: // an RTCP sender report on the RTP port
			sr := []byte{0x80, 200, 0, 6, 0, 0, 0x11, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 5, 0}
			sends = append(sends, send{at(i), func() { a.raw(sr) }}, send{at(i), packetA(i)})
		default:
			sends = append(sends, send{at(i), packetA(i)})
		}
		heard(i)
	}
	// Stream B: PCMA from half a second in, three packets lost.
	for j := range packetsB {
		pos := int64(startB + packet*j)
		payload := encode(8, right[pos:pos+packet])
		if j == 77 || j == 78 || j == 150 {
			continue
		}
		p := pkt(0xBBBB, uint16(4242+j), uint32(999+packet*j), 8, payload)
		sends = append(sends, send{pos, func() { b.rtp(p) }})
		wantR.put(pos, decode(8, payload))
	}
	// Play them in arrival order (stable: equal times keep list order).
	sortSends := func(s []send) {
		for i := 1; i < len(s); i++ {
			for j := i; j > 0 && s[j].at < s[j-1].at; j-- {
				s[j], s[j-1] = s[j-1], s[j]
			}
		}
	}
	sortSends(sends)
	for _, s := range sends {
		c.Set(t0.Add(time.Duration(s.at) * time.Second / rate))
		s.do()
	}

	c.Set(t0.Add(7 * time.Second))
	sp, err := sess.Finish()
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if sp.Duration() != 7*time.Second || sp.Frames() != 7*rate || sp.Interrupted {
		t.Errorf("Finish: duration %v, %d frames, interrupted %v; want 7s, %d, false", sp.Duration(), sp.Frames(), sp.Interrupted, 7*rate)
	}
	gotL, gotR := render(t, sp)
	compare(t, "left (external)", gotL, wantL)
	compare(t, "right (staff)", gotR, wantR)

	st := sess.Stats()
	sa, sb := st.Streams[0], st.Streams[1]
	wantA := media.StreamStats{Label: "1", Side: callvault.SideExternal,
		Datagrams: a.sent + stranger.sent, Packets: a.sent - 1, Lost: 3, Late: 1, Duplicates: 2, Reordered: 1,
		WrongSource: 2, RTCP: 1, SSRCChanges: 1,
		Codecs: map[string]uint64{"PCMU": 195, "PCMA": 99, "telephone-event": 5},
		Audio:  time.Duration(startA+packet*packetsA) * time.Second / rate}
	checkStats(t, sa, wantA)
	wantB := media.StreamStats{Label: "2", Side: callvault.SideStaff, Datagrams: b.sent, Packets: b.sent, Lost: 3,
		Codecs: map[string]uint64{"PCMA": b.sent}, Audio: time.Duration(startB+packet*packetsB) * time.Second / rate}
	checkStats(t, sb, wantB)
	if sa.Bytes != 160*(a.sent-1-5)+4*5 {
		t.Errorf("stream 1: %d payload bytes, want %d", sa.Bytes, 160*(a.sent-1-5)+4*5)
	}
	if st.Total.Lost != 6 || st.Total.Packets != sa.Packets+sb.Packets {
		t.Errorf("total: %d lost, %d packets; want 6, %d", st.Total.Lost, st.Total.Packets, sa.Packets+sb.Packets)
	}
}

// checkStats compares the counters; Jitter and Bytes are checked apart.
func checkStats(t *testing.T, got, want media.StreamStats) {
	t.Helper()
	want.Jitter, want.Bytes = got.Jitter, got.Bytes
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stream %s stats:\n got %+v\nwant %+v", got.Label, got, want)
	}
}
