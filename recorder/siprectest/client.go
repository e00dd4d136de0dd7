// Package siprectest is a SIPREC recording client for tests and load
// generation: it opens a recording session on a callvault recorder the way
// an SBC does (INVITE with Require: siprec, a +sip.src Contact and a
// multipart body of SDP and RFC 7865 metadata), streams two RTP streams of
// real G.711 audio in real time, and hangs up. It uses the same libraries
// as the recorder (sipgo, pion/rtp).
package siprectest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/zaf/g711"

	"github.com/callvault/callvault/siprec"
)

// Party is one side of the recorded call.
type Party struct {
	AOR  string // "sip:+447700900123@pstn.example"
	Name string
}

// Call describes one recording session to send.
type Call struct {
	CallID         string
	Codec          string // "PCMU" (default) or "PCMA"
	Caller, Callee Party
	// Caller's audio goes on stream label 1, the callee's on label 2, at
	// 8 kHz; the session lasts as long as the longer of the two.
	CallerAudio, CalleeAudio []int16
	Ptime                    time.Duration // default 20 ms
	// NoBye leaves the session without hanging up (inactivity tests).
	NoBye bool
	// SRTPKey, when set (30 bytes: 16 of master key, 14 of salt), sends
	// both streams as SRTP (RTP/SAVP, AES_CM_128_HMAC_SHA1_80) with this
	// SDES key.
	SRTPKey []byte
	// WrongSRTPKey encrypts with a key other than the one offered (tests).
	WrongSRTPKey bool
}

// Client sends recording sessions to one recorder.
type Client struct {
	Server netip.AddrPort // the recorder's SIP address (UDP)
	IP     netip.Addr     // this side's address, default 127.0.0.1

	ua     *sipgo.UserAgent
	client *sipgo.Client
	dialog sipgo.DialogUA
	port   int
	tls    bool
}

// NewClient makes a client with its own SIP socket (UDP).
func NewClient(server netip.AddrPort) (*Client, error) { return newClient(server, nil) }

// NewTLSClient makes a client that signals over TLS, trusting conf's roots.
func NewTLSClient(server netip.AddrPort, conf *tls.Config) (*Client, error) {
	return newClient(server, conf)
}

// SBCs send SIPREC INVITEs (SDP and metadata, 2-4 KB) over UDP as one
// fragmented datagram; sipgo would otherwise insist on TCP above 1300
// bytes. It is process-wide, so it is set once, before any test starts a
// recorder that reads it: importing this package means a test client.
func init() { sip.UDPMTUSize = 65000 }

func newClient(server netip.AddrPort, conf *tls.Config) (*Client, error) {
	c := &Client{Server: server, IP: netip.MustParseAddr("127.0.0.1"), tls: conf != nil}
	opts := []sipgo.UserAgentOption{sipgo.WithUserAgent("callvault-siprectest")}
	if conf != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(conf))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, err
	}
	c.ua = ua
	if c.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(c.IP.String())); err != nil {
		return nil, err
	}
	params := sip.NewParams()
	params.Add("+sip.src", "")
	c.dialog = sipgo.DialogUA{Client: c.client, ContactHDR: sip.ContactHeader{
		Address: sip.Uri{User: "sbc", Host: c.IP.String()}, Params: params}}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		return nil, err
	}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	return c, nil
}

// Close releases the client's sockets.
func (c *Client) Close() error { return c.ua.Close() }

// Result is what the recorder answered.
type Result struct {
	Status int
	Answer *siprec.Offer // the SDP answer, parsed
}

// Run opens the session, streams the audio in real time and hangs up.
func (c *Client) Run(ctx context.Context, call Call) (*Result, error) {
	call = call.withDefaults()
	// The RTP sockets exist before the offer names their ports.
	var conns [2]*net.UDPConn
	for i := range conns {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: c.IP.AsSlice()})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		conns[i] = conn
	}
	s, err := c.Open(ctx, call, [2]int{conns[0].LocalAddr().(*net.UDPAddr).Port, conns[1].LocalAddr().(*net.UDPAddr).Port})
	if s == nil {
		return nil, err
	}
	defer s.Close()
	res := s.Result
	if err != nil {
		return &res, err
	}
	dst := [2]*net.UDPAddr{net.UDPAddrFromAddrPort(s.Dest[0]), net.UDPAddrFromAddrPort(s.Dest[1])}
	sendKey := call.SRTPKey
	if call.WrongSRTPKey && sendKey != nil {
		sendKey = bytes.Clone(sendKey)
		sendKey[0] ^= 0xff
	}
	if err := stream(ctx, conns, dst, [2][]int16{call.CallerAudio, call.CalleeAudio}, call.Ptime, call.payloadType(), sendKey); err != nil {
		return &res, err
	}
	if call.NoBye {
		return &res, nil
	}
	return &res, s.Bye(ctx)
}

func (call Call) withDefaults() Call {
	if call.Codec == "" {
		call.Codec = "PCMU"
	}
	if call.Ptime == 0 {
		call.Ptime = 20 * time.Millisecond
	}
	return call
}

func (call Call) payloadType() uint8 {
	if call.Codec == "PCMA" {
		return 8
	}
	return 0
}

// Session is a recording session the recorder answered.
type Session struct {
	Result
	// Dest is where the recorder receives the RTP of the caller's stream
	// (label 1) and of the callee's (label 2).
	Dest [2]netip.AddrPort

	dialog *sipgo.DialogClientSession
}

// Open opens the recording session of call, offering its two streams as
// sent from ports (call's audio is not used), and acknowledges the answer.
// The returned Session is nil only if no response came; on an error it
// holds the status the recorder answered, and must still be closed.
func (c *Client) Open(ctx context.Context, call Call, ports [2]int) (*Session, error) {
	call = call.withDefaults()
	body, boundary := Body(call, c.IP, ports, call.payloadType())
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: "srs", Host: c.Server.Addr().String(), Port: int(c.Server.Port())})
	if c.tls {
		req.SetTransport("TLS")
	}
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", "multipart/mixed;boundary="+boundary))
	req.AppendHeader(sip.NewHeader("Require", "siprec"))
	// A Contact of its own: sipgo would add the client's, shared, and fill
	// in its port, which races when sessions open at once.
	req.AppendHeader(c.dialog.ContactHDR.Clone())
	if call.CallID != "" {
		cid := sip.CallIDHeader(call.CallID)
		req.AppendHeader(&cid)
	}
	d, err := c.dialog.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	s := &Session{dialog: d}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		if d.InviteResponse != nil {
			s.Status = d.InviteResponse.StatusCode
		}
		return s, err
	}
	s.Status = d.InviteResponse.StatusCode
	if s.Answer, err = siprec.ParseOffer(d.InviteResponse.Body()); err != nil {
		return s, fmt.Errorf("answer: %w", err)
	}
	if err := d.Ack(ctx); err != nil {
		return s, err
	}
	if len(s.Answer.Streams) != 2 {
		return s, fmt.Errorf("answer has %d streams, want 2", len(s.Answer.Streams))
	}
	for i, st := range s.Answer.Streams {
		a, err := netip.ParseAddr(st.Addr)
		if err != nil {
			return s, fmt.Errorf("answer stream %s: address %q: %w", st.Label, st.Addr, err)
		}
		s.Dest[i] = netip.AddrPortFrom(a.Unmap(), uint16(st.Port))
	}
	return s, nil
}

// Bye hangs up.
func (s *Session) Bye(ctx context.Context) error { return s.dialog.Bye(ctx) }

// Close releases the dialog's resources; it does not hang up.
func (s *Session) Close() error { return s.dialog.Close() }

// stream sends both legs in real time, one packet per ptime each.
func stream(ctx context.Context, conns [2]*net.UDPConn, dst [2]*net.UDPAddr, legs [2][]int16, ptime time.Duration, pt uint8, srtpKey []byte) error {
	var srtpCtx *srtp.Context
	if srtpKey != nil {
		if len(srtpKey) != 30 {
			return fmt.Errorf("SRTP key is %d bytes, want 30", len(srtpKey))
		}
		var err error
		if srtpCtx, err = srtp.CreateContext(srtpKey[:16], srtpKey[16:], srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
			return err
		}
	}
	enc := make([]byte, 1500)
	per := int(ptime / (time.Second / 8000))
	n := max(len(legs[0]), len(legs[1]))
	var pkts [2]rtp.Packet
	for i := range pkts {
		pkts[i].Header = rtp.Header{Version: 2, PayloadType: pt, SSRC: uint32(0x1000 + i), SequenceNumber: uint16(100 * i), Timestamp: uint32(1000 * i)}
	}
	start := time.Now()
	buf := make([]byte, 1500)
	for k, off := 0, 0; off < n; k, off = k+1, off+per {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := range 2 {
			pcm := make([]byte, 2*per)
			for j := 0; j < per && off+j < len(legs[i]); j++ {
				s := legs[i][off+j]
				pcm[2*j], pcm[2*j+1] = byte(s), byte(uint16(s)>>8)
			}
			if pt == 8 {
				pkts[i].Payload = g711.EncodeAlaw(pcm)
			} else {
				pkts[i].Payload = g711.EncodeUlaw(pcm)
			}
			m, err := pkts[i].MarshalTo(buf)
			if err != nil {
				return err
			}
			out := buf[:m]
			if srtpCtx != nil {
				if out, err = srtpCtx.EncryptRTP(enc[:0], buf[:m], nil); err != nil {
					return err
				}
			}
			if _, err := conns[i].WriteToUDP(out, dst[i]); err != nil {
				return err
			}
			pkts[i].SequenceNumber++
			pkts[i].Timestamp += uint32(per)
		}
		time.Sleep(time.Until(start.Add(time.Duration(k+1) * ptime)))
	}
	return nil
}

// Body is the multipart INVITE body of a call: SDP with two sendonly
// streams (labels 1 and 2) on ports, and metadata saying the caller sends
// 1 and the callee 2.
func Body(call Call, ip netip.Addr, ports [2]int, pt uint8) ([]byte, string) {
	codec := map[uint8]string{0: "PCMU", 8: "PCMA"}[pt]
	var sdp strings.Builder
	fmt.Fprintf(&sdp, "v=0\r\no=sbc 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n", ip, ip)
	proto, crypto := "RTP/AVP", ""
	if call.SRTPKey != nil {
		proto = "RTP/SAVP"
		crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(call.SRTPKey) + "\r\n"
	}
	for i, p := range ports {
		fmt.Fprintf(&sdp, "m=audio %d %s %d 101\r\na=rtpmap:%d %s/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n%sa=sendonly\r\na=label:%d\r\n",
			p, proto, pt, pt, codec, crypto, i+1)
	}
	meta := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
<datamode>complete</datamode>
<session session_id="c2Vzcw=="/>
<participant participant_id="cA=="><nameID aor=%q><name>%s</name></nameID></participant>
<participant participant_id="cQ=="><nameID aor=%q><name>%s</name></nameID></participant>
<stream stream_id="czE=" session_id="c2Vzcw=="><label>1</label></stream>
<stream stream_id="czI=" session_id="c2Vzcw=="><label>2</label></stream>
<participantstreamassoc participant_id="cA=="><send>czE=</send><recv>czI=</recv></participantstreamassoc>
<participantstreamassoc participant_id="cQ=="><send>czI=</send><recv>czE=</recv></participantstreamassoc>
</recording>
`, call.Caller.AOR, call.Caller.Name, call.Callee.AOR, call.Callee.Name)
	const boundary = "callvault-siprectest"
	body := "--" + boundary + "\r\nContent-Type: application/sdp\r\n\r\n" + sdp.String() +
		"\r\n--" + boundary + "\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n" + meta +
		"\r\n--" + boundary + "--\r\n"
	return []byte(body), boundary
}
