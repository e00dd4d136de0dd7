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
	"encoding/binary"
	"fmt"
	"html"
	"net"
	"net/netip"
	"strings"
	"sync"
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
	Codec          string // "PCMU" (default), "PCMA", "G722" or "OPUS"
	Caller, Callee Party
	// Caller's audio goes on stream label 1, the callee's on label 2, at
	// 8 kHz, encoded as G.711; the session lasts as long as the longer of
	// the two.
	CallerAudio, CalleeAudio []int16
	// Payloads, when set, are sent instead of CallerAudio and CalleeAudio:
	// the encoded payloads of each leg, one per ptime (G.722 and Opus,
	// which this package does not encode).
	Payloads [2][][]byte
	Ptime    time.Duration // default 20 ms
	// Paused offers both streams a=inactive (hold, or a pause asked for
	// in a re-INVITE).
	Paused bool
	// NoBye leaves the session without hanging up (inactivity tests).
	NoBye bool
	// Username and Password answer a digest challenge.
	Username, Password string
	// SRTPKey, when set (30 bytes: 16 of master key, 14 of salt), sends
	// both streams as SRTP (RTP/SAVP, AES_CM_128_HMAC_SHA1_80) with this
	// SDES key.
	SRTPKey []byte
	// SRTPMKI, when set with SRTPKey, is the key's master key identifier
	// (1 to 8 bytes), offered as |value:length and sent in every packet.
	SRTPMKI []byte
	// WrongSRTPKey encrypts with a key other than the one offered (tests).
	WrongSRTPKey bool
	// Headers are added to the INVITE (Session-Expires, Supported, Allow).
	Headers []sip.Header
}

// Client sends recording sessions to one recorder.
type Client struct {
	Server netip.AddrPort // the recorder's SIP address (UDP)
	IP     netip.Addr     // this side's address, default 127.0.0.1

	ua     *sipgo.UserAgent
	client *sipgo.Client
	srv    *sipgo.Server
	dialog sipgo.DialogUA
	tls    bool

	mu       sync.Mutex
	received []*sip.Request // requests the recorder sent (after Listen)
	// updateStatus is what an UPDATE from the recorder is answered with.
	updateStatus int
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
	c.srv, c.updateStatus = srv, 200
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		c.note(req)
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnUpdate(func(req *sip.Request, tx sip.ServerTransaction) {
		c.note(req)
		c.mu.Lock()
		code := c.updateStatus
		c.mu.Unlock()
		tx.Respond(sip.NewResponseFromRequest(req, code, "", nil))
	})
	return c, nil
}

func (c *Client) note(req *sip.Request) {
	c.mu.Lock()
	c.received = append(c.received, req.Clone())
	c.mu.Unlock()
}

// Listen takes requests from the recorder (BYE, UPDATE) on a UDP port of
// its own, named in the Contact of the sessions opened after it, until
// Close. Without it what the recorder sends the client goes unheard.
func (c *Client) Listen(ctx context.Context) error {
	l, err := net.ListenPacket("udp", netip.AddrPortFrom(c.IP, 0).String())
	if err != nil {
		return err
	}
	c.dialog.ContactHDR.Address.Port = l.LocalAddr().(*net.UDPAddr).Port
	go c.srv.ServeUDP(l)
	return nil
}

// Received returns the requests of the session callID that the recorder
// sent, in order (methods BYE and UPDATE; see Listen).
func (c *Client) Received(callID string) []*sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*sip.Request
	for _, r := range c.received {
		if h := r.CallID(); h != nil && h.Value() == callID {
			out = append(out, r)
		}
	}
	return out
}

// AnswerUpdates sets the status UPDATEs from the recorder get (200 until
// then).
func (c *Client) AnswerUpdates(code int) {
	c.mu.Lock()
	c.updateStatus = code
	c.mu.Unlock()
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
	s, err := c.Dial(ctx, call)
	if s == nil {
		return nil, err
	}
	defer s.Close()
	res := s.Result
	if err != nil {
		return &res, err
	}
	if err := s.Send(ctx, call.legs()); err != nil {
		return &res, err
	}
	if call.NoBye {
		return &res, nil
	}
	return &res, s.Bye(ctx)
}

// Dial opens the session from two RTP sockets of its own, ready to Send.
// As with Open, the Session is nil only if no response came, and must be
// closed otherwise.
func (c *Client) Dial(ctx context.Context, call Call) (*Session, error) {
	call = call.withDefaults()
	// The RTP sockets exist before the offer names their ports.
	var conns [2]*net.UDPConn
	for i := range conns {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: c.IP.AsSlice()})
		if err != nil {
			if i == 1 {
				conns[0].Close()
			}
			return nil, err
		}
		conns[i] = conn
	}
	s, err := c.Open(ctx, call, [2]int{conns[0].LocalAddr().(*net.UDPAddr).Port, conns[1].LocalAddr().(*net.UDPAddr).Port})
	if s == nil {
		conns[0].Close()
		conns[1].Close()
		return nil, err
	}
	s.conns, s.call = conns, call
	for i := range s.pkts {
		s.pkts[i].Header = rtp.Header{Version: 2, PayloadType: call.payloadType(), SSRC: uint32(0x1000 + i),
			SequenceNumber: uint16(100 * i), Timestamp: uint32(1000 * i)}
	}
	if err == nil && call.SRTPKey != nil {
		key := call.SRTPKey
		if call.WrongSRTPKey {
			key = bytes.Clone(key)
			key[0] ^= 0xff
		}
		s.srtp, err = srtpContext(key, call.SRTPMKI)
	}
	return s, err
}

// srtpContext is the sending context of an AES_CM_128_HMAC_SHA1_80 key.
func srtpContext(key, mki []byte) (*srtp.Context, error) {
	if len(key) != 30 {
		return nil, fmt.Errorf("SRTP key is %d bytes, want 30", len(key))
	}
	var opts []srtp.ContextOption
	if mki != nil {
		opts = append(opts, srtp.MasterKeyIndicator(mki))
	}
	return srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80, opts...)
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
	switch call.Codec {
	case "PCMA":
		return 8
	case "G722":
		return 9
	case "OPUS":
		return 111
	}
	return 0
}

// clock is the RTP clock rate of the call's codec.
func (call Call) clock() int {
	if call.Codec == "OPUS" {
		return 48000
	}
	return 8000
}

// legs are the payloads the call sends on its two streams.
func (call Call) legs() [2][][]byte {
	if call.Payloads[0] != nil || call.Payloads[1] != nil {
		return call.Payloads
	}
	call = call.withDefaults()
	per := int(call.Ptime / (time.Second / 8000))
	return [2][][]byte{EncodeG711(call.Codec, call.CallerAudio, per), EncodeG711(call.Codec, call.CalleeAudio, per)}
}

// EncodeG711 encodes PCM at 8 kHz as codec ("PCMU" or "PCMA") in payloads
// of per samples; the last is padded with silence.
func EncodeG711(codec string, pcm []int16, per int) [][]byte {
	var out [][]byte
	for off := 0; off < len(pcm); off += per {
		raw := make([]byte, 2*per)
		for j := 0; j < per && off+j < len(pcm); j++ {
			binary.LittleEndian.PutUint16(raw[2*j:], uint16(pcm[off+j]))
		}
		if codec == "PCMA" {
			out = append(out, g711.EncodeAlaw(raw))
		} else {
			out = append(out, g711.EncodeUlaw(raw))
		}
	}
	return out
}

// Session is a recording session the recorder answered.
type Session struct {
	Result
	// Dest is where the recorder receives the RTP of the caller's stream
	// (label 1) and of the callee's (label 2).
	Dest [2]netip.AddrPort

	client *Client
	dialog *sipgo.DialogClientSession
	ports  [2]int
	// For Send (sessions made by Dial):
	call  Call
	conns [2]*net.UDPConn
	pkts  [2]rtp.Packet
	srtp  *srtp.Context
	// epoch is when the first packet was sent, ts0 the streams' first
	// timestamps: the RTP clock runs in real time between Sends, as a
	// phone system's does.
	epoch time.Time
	ts0   [2]uint32
}

// Open opens the recording session of call, offering its two streams as
// sent from ports (call's audio is not used), and acknowledges the answer.
// The returned Session is nil only if no response came; on an error it
// holds the status the recorder answered, and must still be closed.
func (c *Client) Open(ctx context.Context, call Call, ports [2]int) (*Session, error) {
	call = call.withDefaults()
	body, boundary := Body(call, c.IP, ports)
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
	for _, h := range call.Headers {
		req.AppendHeader(h)
	}
	d, err := c.dialog.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	s := &Session{dialog: d, client: c, ports: ports}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: call.Username, Password: call.Password}); err != nil {
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

// Response is the recorder's final response to the INVITE.
func (s *Session) Response() *sip.Response { return s.dialog.InviteResponse }

// Bye hangs up.
func (s *Session) Bye(ctx context.Context) error { return s.dialog.Bye(ctx) }

// Close releases the dialog's resources and the RTP sockets; it does not
// hang up.
func (s *Session) Close() error {
	for _, c := range s.conns {
		if c != nil {
			c.Close()
		}
	}
	return s.dialog.Close()
}

// Reinvite sends a re-INVITE with call's offer (Paused for hold, new
// parties for a metadata update, another SRTPKey to rekey) on the
// session's ports, and acknowledges the answer. It returns the status the
// recorder answered. After a 2xx, later Sends use the new key (with its
// rollover counter starting again, as libsrtp-based senders do).
func (s *Session) Reinvite(ctx context.Context, call Call) (int, error) {
	body, boundary := Body(call, s.client.IP, s.ports)
	req := sip.NewRequest(sip.INVITE, s.remote())
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", "multipart/mixed;boundary="+boundary))
	res, err := s.dialog.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, s.remote())
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
		if err := s.dialog.WriteRequest(ack); err != nil {
			return res.StatusCode, err
		}
		if s.srtp != nil && call.SRTPKey != nil && (!bytes.Equal(call.SRTPKey, s.call.SRTPKey) || !bytes.Equal(call.SRTPMKI, s.call.SRTPMKI)) {
			ctx, err := srtpContext(call.SRTPKey, call.SRTPMKI)
			if err != nil {
				return res.StatusCode, err
			}
			s.srtp, s.call.SRTPKey, s.call.SRTPMKI = ctx, call.SRTPKey, call.SRTPMKI
		}
	}
	return res.StatusCode, nil
}

// Refresh sends a re-INVITE without a body, as a session-timer refresh
// (RFC 4028) may be, with headers hs (Session-Expires): the recorder's 2xx
// carries an offer, which the ACK answers with the session's SDP. It
// returns the status and the SDP of the recorder's offer.
func (s *Session) Refresh(ctx context.Context, hs ...sip.Header) (int, []byte, error) {
	req := sip.NewRequest(sip.INVITE, s.remote())
	for _, h := range hs {
		req.AppendHeader(h)
	}
	res, err := s.dialog.Do(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, s.remote())
		ack.AppendHeader(&sip.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sip.ACK})
		ack.SetBody([]byte(sdpBody(s.call, s.client.IP, s.ports)))
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		if err := s.dialog.WriteRequest(ack); err != nil {
			return res.StatusCode, res.Body(), err
		}
	}
	return res.StatusCode, res.Body(), nil
}

// RefreshByUpdate sends an UPDATE without a body, the other way a session
// timer refreshes, with headers hs (Session-Expires), and returns the
// response.
func (s *Session) RefreshByUpdate(ctx context.Context, hs ...sip.Header) (*sip.Response, error) {
	req := sip.NewRequest(sip.UPDATE, s.remote())
	for _, h := range hs {
		req.AppendHeader(h)
	}
	return s.dialog.Do(ctx, req)
}

// Update sends an UPDATE carrying call's metadata alone (RFC 7866 §8.3).
func (s *Session) Update(ctx context.Context, call Call) (int, error) {
	req := sip.NewRequest(sip.UPDATE, s.remote())
	req.SetBody([]byte(Metadata(call)))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/rs-metadata+xml"))
	req.AppendHeader(sip.NewHeader("Content-Disposition", "recording-session"))
	res, err := s.dialog.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// remote is where in-dialog requests go: the recorder's Contact.
func (s *Session) remote() sip.Uri {
	if c := s.dialog.InviteResponse.Contact(); c != nil {
		return *c.Address.Clone()
	}
	return s.dialog.InviteRequest.Recipient
}

// Send sends both legs' payloads in real time, one packet per ptime each,
// continuing the streams' sequence numbers from the last Send. Timestamps
// follow the wall clock from the first packet (the RTP clock runs while
// nothing is sent, between Sends, as a phone system's does).
func (s *Session) Send(ctx context.Context, legs [2][][]byte) error {
	if s.conns[0] == nil {
		return fmt.Errorf("siprectest: Send needs a session made by Dial")
	}
	dst := [2]*net.UDPAddr{net.UDPAddrFromAddrPort(s.Dest[0]), net.UDPAddrFromAddrPort(s.Dest[1])}
	buf, enc := make([]byte, 1500), make([]byte, 1500)
	start := time.Now()
	if s.epoch.IsZero() {
		s.epoch = start
		s.ts0 = [2]uint32{s.pkts[0].Timestamp, s.pkts[1].Timestamp}
	}
	clock := uint64(s.call.clock())
	for k := range max(len(legs[0]), len(legs[1])) {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i := range 2 {
			p := &s.pkts[i]
			at := start.Sub(s.epoch) + time.Duration(k)*s.call.Ptime // since the first packet
			p.Timestamp = s.ts0[i] + uint32(uint64(at)*clock/uint64(time.Second))
			if k < len(legs[i]) {
				p.Payload = legs[i][k]
				m, err := p.MarshalTo(buf)
				if err != nil {
					return err
				}
				out := buf[:m]
				if s.srtp != nil {
					if out, err = s.srtp.EncryptRTP(enc[:0], buf[:m], nil); err != nil {
						return err
					}
				}
				if _, err := s.conns[i].WriteToUDP(out, dst[i]); err != nil {
					return err
				}
				p.SequenceNumber++
			}
		}
		time.Sleep(time.Until(start.Add(time.Duration(k+1) * s.call.Ptime)))
	}
	return nil
}

// Body is the multipart INVITE body of a call: SDP with two sendonly
// streams (labels 1 and 2, inactive when call.Paused) on ports, and
// metadata saying the caller sends 1 and the callee 2.
func Body(call Call, ip netip.Addr, ports [2]int) ([]byte, string) {
	const boundary = "callvault-siprectest"
	body := "--" + boundary + "\r\nContent-Type: application/sdp\r\n\r\n" + sdpBody(call, ip, ports) +
		"\r\n--" + boundary + "\r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n" + Metadata(call) +
		"\r\n--" + boundary + "--\r\n"
	return []byte(body), boundary
}

// sdpBody is the SDP of Body.
func sdpBody(call Call, ip netip.Addr, ports [2]int) string {
	call = call.withDefaults()
	pt := call.payloadType()
	rtpmap := map[string]string{"PCMU": "PCMU/8000", "PCMA": "PCMA/8000", "G722": "G722/8000", "OPUS": "opus/48000/2"}[call.Codec]
	var sdp strings.Builder
	fmt.Fprintf(&sdp, "v=0\r\no=sbc 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n", ip, ip)
	proto, crypto := "RTP/AVP", ""
	if call.SRTPKey != nil {
		proto = "RTP/SAVP"
		mki := ""
		if n := len(call.SRTPMKI); n > 0 && n <= 8 {
			var v uint64
			for _, b := range call.SRTPMKI {
				v = v<<8 | uint64(b)
			}
			mki = fmt.Sprintf("|2^31|%d:%d", v, n)
		}
		crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(call.SRTPKey) + mki + "\r\n"
	}
	dir := "sendonly"
	if call.Paused {
		dir = "inactive"
	}
	for i, p := range ports {
		fmt.Fprintf(&sdp, "m=audio %d %s %d 101\r\na=rtpmap:%d %s\r\na=rtpmap:101 telephone-event/%d\r\na=ptime:20\r\n%sa=%s\r\na=label:%d\r\n",
			p, proto, pt, pt, rtpmap, call.clock(), crypto, dir, i+1)
	}
	return sdp.String()
}

// Metadata is the RFC 7865 recording metadata of a call: the caller sends
// stream label 1, the callee label 2.
func Metadata(call Call) string {
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
<datamode>complete</datamode>
<session session_id="c2Vzcw=="/>
<participant participant_id="cA=="><nameID aor="%s"><name>%s</name></nameID></participant>
<participant participant_id="cQ=="><nameID aor="%s"><name>%s</name></nameID></participant>
<stream stream_id="czE=" session_id="c2Vzcw=="><label>1</label></stream>
<stream stream_id="czI=" session_id="c2Vzcw=="><label>2</label></stream>
<participantstreamassoc participant_id="cA=="><send>czE=</send><recv>czI=</recv></participantstreamassoc>
<participantstreamassoc participant_id="cQ=="><send>czI=</send><recv>czE=</recv></participantstreamassoc>
</recording>
`, html.EscapeString(call.Caller.AOR), html.EscapeString(call.Caller.Name), html.EscapeString(call.Callee.AOR), html.EscapeString(call.Callee.Name))
}
