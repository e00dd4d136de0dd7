// Package recorder is callvault's SIPREC recording server (RFC 7866): the
// phone system or its SBC opens a recording session with a SIP INVITE whose
// body holds the SDP of the streams to record and RFC 7865 metadata saying
// who is on the call; the recorder answers every stream recvonly, receives
// the RTP (package media), and when the session ends stores one stereo
// recording through the same encrypted ingest path as the HTTP API.
//
// It uses github.com/emiago/sipgo for SIP, package siprec to read the
// offer and metadata and build the answer, and package media for RTP and
// the spool. Only configured recording clients (an address allow-list,
// loopback by default) may open sessions; everything else is refused
// before its body is read. The sockets of a session listen before the 200
// OK goes out, so no early packet is lost. Audio is spooled to disk as it
// arrives: after a kill -9, Recover turns every interrupted session into a
// recording with all audio up to the last flush.
package recorder

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/media"
	"github.com/callvault/callvault/siprec"
	"github.com/callvault/callvault/throttle"
)

// strangerReplies is how many requests a minute from an address that is not
// a recording client get an answer (403) before the rest are dropped.
const strangerReplies = 5

// Defaults.
const (
	DefaultInactivity  = 60 * time.Second
	DefaultMaxSessions = 2500
	DefaultPortMin     = 20000
	DefaultPortMax     = 39998
)

// Listener is one SIP transport the recorder listens on.
type Listener struct {
	Network string      // "udp", "tcp" or "tls"
	Addr    string      // host:port
	TLS     *tls.Config // for "tls": the recorder's certificate (and client CAs to require one)
}

// Recorder is the SIPREC recording server.
type Recorder struct {
	Listen  []Listener
	Allow   []netip.Prefix // recording clients; DefaultAllow when empty
	MediaIP netip.Addr     // where RTP is received and what the answer announces
	PortMin int            // RTP port range (even ports)
	PortMax int
	// SpoolDir holds the audio of sessions in progress.
	SpoolDir string
	// Inactivity ends a session that has received no RTP for this long
	// (a BYE that never came): default DefaultInactivity.
	Inactivity  time.Duration
	MaxSessions int
	// Credentials, when set, require digest authentication (user name →
	// password) of every INVITE that opens a session, on top of Allow.
	Credentials map[string]string
	Realm       string // digest realm, DefaultRealm when empty

	Archive   *archive.Archive
	Source    *callvault.Source // the siprec source the recordings are filed under
	Academies callvault.AcademyService
	// Space, when set, refuses new sessions (503) when storage is nearly
	// full; sessions in progress continue.
	Space interface{ Admit() error }
	// Alert, when set, is called when recordings cannot be stored (the
	// database or blob store is down): once when it starts, daily while it
	// lasts, once when it is over. It must not block for long.
	Alert  func(StoreAlert)
	Logger *slog.Logger
	Now    func() time.Time

	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	dialogs map[string]*sipgo.DialogUA // by transport: "UDP", "TCP", "TLS"
	ports   *ports
	auth    *digestAuth // nil: no digest authentication

	mu       sync.Mutex
	sessions map[string]*session // by Call-ID
	started  uint64              // sessions answered
	rejected map[int]uint64      // INVITEs refused, by status code
	ended    map[string]uint64   // sessions ended, by why (Counts.Ended)
	// strangers counts requests from addresses that are not recording
	// clients: a few get a 403, then they are ignored (a scanner learns
	// nothing and costs nothing).
	strangers *throttle.Limiter
	storing   int        // sessions being stored (a BYE may start one while Close waits)
	stored    *sync.Cond // on mu: broadcast as each store ends
	acad      academyCache
	stopping  chan struct{}     // closed by Close: retries give up, spools stay
	done      media.StreamStats // media counters of the sessions that ended
	stopOnce  sync.Once
	listeners []func() error // close the SIP sockets
	// Storing: failures so far, whether the last attempt failed, when
	// Alert was last told, spools kept for the next start.
	storeFailures uint64
	storeFailing  bool
	storeAlerted  time.Time
	kept          int
}

// session is one recording session in progress.
type session struct {
	callID  string
	id      string // the recording's spool id
	dialog  *sipgo.DialogServerSession
	media   *media.Session
	offer   *siprec.Offer
	answer  []byte
	version uint64
	ports   []int
	crypto  []*siprec.Crypto // our SDES answer key per stream (SRTP), nil for plain RTP
	meta    spoolMeta

	lastData  uint64
	lastHeard time.Time
	// Session timer (RFC 4028): what was agreed, when the session was
	// last refreshed, whether the recorder's own refresh is under way.
	timer       sessionTimer
	refreshedAt time.Time
	refreshing  bool
	ending      bool
	counted     bool // its media counters are in Recorder.done
}

// spoolMeta is what the recorder keeps in the spool header to make the
// recording, also after a crash.
type spoolMeta struct {
	CallID       string                  `json:"call_id"`
	Direction    string                  `json:"direction,omitempty"`
	Participants []callvault.Participant `json:"participants,omitempty"`
	// Codecs are the rtpmap encodings the streams were answered with
	// ("PCMA/8000"), for the recording's audit entry.
	Codecs []string `json:"codecs,omitempty"`
}

// Start listens on every configured transport and returns when they are
// ready. Stop with Close (and cancel ctx).
func (r *Recorder) Start(ctx context.Context) error {
	if r.Archive == nil || r.Source == nil || r.SpoolDir == "" {
		return errors.New("recorder: needs an archive, a source and a spool folder")
	}
	if len(r.Allow) == 0 {
		r.Allow = DefaultAllow
	}
	if !r.MediaIP.IsValid() {
		r.MediaIP = netip.MustParseAddr("127.0.0.1")
	}
	if r.PortMin == 0 && r.PortMax == 0 {
		r.PortMin, r.PortMax = DefaultPortMin, DefaultPortMax
	}
	var err error
	if r.ports, err = newPorts(r.MediaIP, r.PortMin, r.PortMax); err != nil {
		return err
	}
	if r.Inactivity <= 0 {
		r.Inactivity = DefaultInactivity
	}
	if r.MaxSessions <= 0 {
		r.MaxSessions = DefaultMaxSessions
	}
	r.sessions = map[string]*session{}
	r.stopping = make(chan struct{})
	r.rejected = map[int]uint64{}
	r.ended = map[string]uint64{}
	r.stored = sync.NewCond(&r.mu)
	r.strangers = throttle.New(strangerReplies, time.Minute)
	if len(r.Credentials) > 0 {
		r.auth = newDigestAuth(r.Realm, r.Credentials, r.now)
	}
	if r.ua, err = sipgo.NewUA(sipgo.WithUserAgent("callvault-srs")); err != nil {
		return err
	}
	if r.srv, err = sipgo.NewServer(r.ua, sipgo.WithServerLogger(r.log())); err != nil {
		return err
	}
	client, err := sipgo.NewClient(r.ua)
	if err != nil {
		return err
	}
	// The Contact of our answers, per transport: where in-dialog requests
	// (ACK, BYE, re-INVITE) come back to, on the transport the INVITE used.
	r.dialogs = map[string]*sipgo.DialogUA{}
	for _, l := range r.Listen {
		contact := sip.Uri{User: "srs", Host: r.MediaIP.String()}
		if ap, err := netip.ParseAddrPort(l.Addr); err == nil {
			if !ap.Addr().IsUnspecified() {
				contact.Host = ap.Addr().String()
			}
			contact.Port = int(ap.Port())
		}
		if l.Network != "udp" {
			contact.UriParams = sip.NewParams()
			contact.UriParams.Add("transport", l.Network)
		}
		r.dialogs[strings.ToUpper(l.Network)] = &sipgo.DialogUA{Client: client, ContactHDR: sip.ContactHeader{Address: contact}}
	}
	r.srv.OnInvite(r.onInvite)
	r.srv.OnAck(r.onAck)
	r.srv.OnBye(r.onBye)
	r.srv.OnUpdate(r.onUpdate)
	r.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		if !r.admit(req, tx) || !r.understood(req, tx) {
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	r.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})

	for _, l := range r.Listen {
		closeFn, err := r.listen(l)
		if err != nil {
			r.closeListeners()
			return fmt.Errorf("recorder: listen %s %s: %w", l.Network, l.Addr, err)
		}
		r.listeners = append(r.listeners, closeFn)
	}
	go func() {
		<-ctx.Done()
		r.closeListeners()
	}()
	go r.watchInactivity(ctx)
	return nil
}

// Close stops taking sessions, ends those in progress and stores them.
func (r *Recorder) Close() error {
	r.mu.Lock()
	var open []*session
	for _, s := range r.sessions {
		if !s.ending {
			s.ending = true
			open = append(open, s)
		}
	}
	r.mu.Unlock()
	for _, s := range open {
		r.finish(s, "server stopping")
	}
	if r.stopping != nil {
		// Sessions just finished get a few seconds; retries then stop
		// and their spools wait for the next start.
		r.stopOnce.Do(func() { time.AfterFunc(5*time.Second, func() { close(r.stopping) }) })
	}
	r.mu.Lock()
	for r.storing > 0 {
		r.stored.Wait()
	}
	r.mu.Unlock()
	r.closeListeners()
	if r.srv != nil {
		r.srv.Close()
	}
	if r.ua != nil {
		return r.ua.Close()
	}
	return nil
}

// closeListeners closes the SIP sockets (once).
func (r *Recorder) closeListeners() {
	r.mu.Lock()
	ls := r.listeners
	r.listeners = nil
	r.mu.Unlock()
	for _, c := range ls {
		c()
	}
}

// Sessions returns how many recording sessions are in progress.
func (r *Recorder) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Counts is what the recorder has done since it started, for metrics.
type Counts struct {
	Active   int            // sessions in progress
	Started  uint64         // sessions answered
	Rejected map[int]uint64 // INVITEs refused, by SIP status
	// Ended counts sessions that ended, by why: bye, no_rtp (the
	// inactivity timeout), session_timer_expired, session_refresh_failed
	// (RFC 4028), server_stopping. Many no_rtp endings mean an SBC that
	// does not send BYE, or RTP that does not reach the recorder.
	Ended map[string]uint64
	// Pending are recordings of ended sessions waiting in the spool to be
	// stored; StoreFailures counts the attempts to store that failed.
	Pending       int
	StoreFailures uint64
}

// Counts returns the recorder's counters.
func (r *Recorder) Counts() Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := Counts{Started: r.started, Rejected: make(map[int]uint64, len(r.rejected)), Ended: make(map[string]uint64, len(r.ended)),
		Pending: r.pendingLocked(), StoreFailures: r.storeFailures}
	for _, s := range r.sessions {
		if !s.ending {
			c.Active++
		}
	}
	for k, v := range r.rejected {
		c.Rejected[k] = v
	}
	for k, v := range r.ended {
		c.Ended[k] = v
	}
	return c
}

// respond answers a request outside a dialog, with a Warning saying why.
func (r *Recorder) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason, why string, headers ...sip.Header) {
	if req.IsInvite() && code >= 300 {
		r.mu.Lock()
		r.rejected[code]++
		r.mu.Unlock()
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if why != "" {
		res.AppendHeader(sip.NewHeader("Warning", `399 callvault "`+strings.ReplaceAll(why, `"`, `'`)+`"`))
	}
	if code == 503 {
		res.AppendHeader(sip.NewHeader("Retry-After", "300"))
	}
	for _, h := range headers {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		r.log().Debug("sip: respond failed", "code", code, "err", err)
	}
}

// items are the comma-separated values of a request's headers called
// names (the option tags of Require or Supported, the methods of Allow),
// trimmed, empty ones left out.
func items(req *sip.Request, names ...string) []string {
	var out []string
	for _, name := range names {
		for _, h := range req.GetHeaders(name) {
			for _, v := range strings.Split(h.Value(), ",") {
				if v = strings.TrimSpace(v); v != "" {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// listed reports whether the headers called names list v, in any case.
func listed(req *sip.Request, v string, names ...string) bool {
	return slices.ContainsFunc(items(req, names...), func(x string) bool { return strings.EqualFold(x, v) })
}

// isSIPREC reports whether an INVITE opens a recording session: it
// requires the siprec option tag, or its Contact carries +sip.src. Clients
// differ in which they send; either is enough.
func isSIPREC(req *sip.Request) bool {
	if listed(req, "siprec", "Require") {
		return true
	}
	if c := req.Contact(); c != nil && c.Params != nil {
		if _, ok := c.Params.Get("+sip.src"); ok {
			return true
		}
	}
	return false
}

// admit lets requests from recording clients through. The gate keeps
// strangers from sipgo; this is the second line, should one get past.
func (r *Recorder) admit(req *sip.Request, tx sip.ServerTransaction) bool {
	if allowed(r.Allow, req.Source()) {
		return true
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil && r.stranger(ap.Addr(), string(req.Method)) {
		tx.Respond(forbidden(req))
	}
	return false
}

// understood answers a request the recorder cannot take as RFC 3261 §8.2
// asks: 505 for another SIP version, 416 for a Request-URI that is not a
// SIP URI, 420 (with Unsupported) for a required extension other than
// siprec and timer. It returns false when it answered.
func (r *Recorder) understood(req *sip.Request, tx sip.ServerTransaction) bool {
	refuse := func(code int, reason string, hs ...sip.Header) bool {
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		res.SipVersion = "SIP/2.0"
		for _, h := range hs {
			res.AppendHeader(h)
		}
		if req.IsInvite() {
			r.mu.Lock()
			r.rejected[code]++
			r.mu.Unlock()
		}
		tx.Respond(res)
		return false
	}
	if req.SipVersion != "SIP/2.0" {
		return refuse(505, "Version Not Supported")
	}
	if s := strings.ToLower(req.Recipient.Scheme); s != "sip" && s != "sips" && s != "" {
		return refuse(416, "Unsupported URI Scheme")
	}
	var unknown []string
	for _, tag := range items(req, "Require") {
		if !strings.EqualFold(tag, "siprec") && !strings.EqualFold(tag, "timer") {
			unknown = append(unknown, tag)
		}
	}
	if len(unknown) > 0 {
		return refuse(420, "Bad Extension", sip.NewHeader("Unsupported", strings.Join(unknown, ", ")))
	}
	return true
}

func (r *Recorder) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !r.admit(req, tx) || !r.understood(req, tx) {
		return
	}
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	if to := req.To(); to != nil && to.Params != nil {
		if _, ok := to.Params.Get("tag"); ok {
			r.onReinvite(req, tx, callID)
			return
		}
	}
	if !isSIPREC(req) {
		r.respond(tx, req, 488, "Not Acceptable Here", "callvault only accepts SIPREC recording sessions (Require: siprec)")
		return
	}
	if callID == "" {
		r.respond(tx, req, 400, "Bad Request", "no Call-ID")
		return
	}
	if r.auth != nil {
		if ok, stale := r.auth.check(req); !ok {
			if req.GetHeader("Authorization") != nil && !stale {
				r.log().Warn("sip: digest authentication failed", "source", req.Source(), "call_id", callID)
			}
			r.respond(tx, req, 401, "Unauthorized", "", r.auth.challenges(stale)...)
			return
		}
	}
	if r.Space != nil {
		if err := r.Space.Admit(); err != nil {
			r.respond(tx, req, 503, "Service Unavailable", "storage nearly full: recording refused, retry later")
			return
		}
	}
	r.mu.Lock()
	_, dup := r.sessions[callID]
	n := len(r.sessions)
	r.mu.Unlock()
	if dup {
		r.respond(tx, req, 482, "Loop Detected", "a recording session with this Call-ID is in progress")
		return
	}
	if n >= r.MaxSessions {
		r.respond(tx, req, 503, "Service Unavailable", "too many recording sessions")
		return
	}

	timer, err := negotiateTimer(req)
	if err != nil {
		r.refuseTimer(tx, req, err)
		return
	}
	offer, metaBody, err := readOffer(req)
	if err != nil {
		r.respond(tx, req, 400, "Bad Request", callvault.ErrorMessage(err))
		return
	}
	var meta *siprec.Metadata
	if len(metaBody) > 0 {
		if meta, err = siprec.ParseMetadata(metaBody); err != nil {
			// Still record: the audio matters more than who was on it.
			r.log().Warn("sip: recording metadata does not parse; recording without it", "call_id", callID, "err", err)
			meta = nil
		}
	}

	preferG711(offer)
	s := &session{callID: callID, id: uuid.Must(uuid.NewV7()).String(), offer: offer, version: 1}
	var sides map[string]string
	s.meta, sides = r.describe(context.Background(), callID, offer, meta)
	streams, err := r.openStreams(s, offer, sides)
	if err != nil {
		r.respond(tx, req, 500, "Server Internal Error", "no media port free")
		return
	}
	answer, err := siprec.Answer(offer, siprec.AnswerOptions{Addr: r.MediaIP.String(), Ports: s.ports,
		Supported: supportedCodec, Crypto: s.answerKey, SessionID: uint64(time.Now().UnixNano()), SessionVersion: s.version})
	if err != nil {
		r.closeStreams(s, streams)
		if errors.Is(err, siprec.ErrNoCodec) || errors.Is(err, siprec.ErrNoCrypto) {
			r.respond(tx, req, 488, "Not Acceptable Here", "no stream offers a codec callvault records (PCMU, PCMA, G722, Opus) with a usable SRTP suite")
			return
		}
		r.respond(tx, req, 500, "Server Internal Error", "")
		r.log().Error("sip: could not build the answer", "call_id", callID, "err", err)
		return
	}
	s.answer = answer
	metaJSON, _ := json.Marshal(s.meta)
	var active []media.StreamConfig
	for _, sc := range streams {
		if sc.Conn != nil {
			active = append(active, sc)
		}
	}
	ms, err := media.NewSession(media.Config{Dir: r.SpoolDir, ID: s.id, Now: r.Now, Meta: metaJSON}, active...)
	if err != nil {
		r.closeStreams(s, streams)
		r.respond(tx, req, 500, "Server Internal Error", "the recording could not be started")
		r.log().Error("sip: could not start the spool", "call_id", callID, "err", err)
		return
	}
	s.media = ms
	if paused(offer) {
		ms.Pause()
	}

	dua := r.dialogs[strings.ToUpper(req.Transport())]
	if dua == nil {
		r.abandon(s)
		r.respond(tx, req, 500, "Server Internal Error", "no contact for transport "+req.Transport())
		return
	}
	dialog, err := dua.ReadInvite(req, tx)
	if err != nil {
		r.abandon(s)
		r.respond(tx, req, 400, "Bad Request", err.Error())
		return
	}
	s.dialog = dialog
	s.lastHeard = r.now()
	s.refreshed(timer, s.lastHeard)
	r.mu.Lock()
	r.sessions[callID] = s
	r.started++
	r.mu.Unlock()
	res := sip.NewSDPResponseFromRequest(dialog.InviteRequest, answer) // with the To tag of the dialog
	for _, h := range timer.headers() {
		res.AppendHeader(h)
	}
	if err := dialog.WriteResponse(res); err != nil {
		// The 200 OK may have gone out (sipgo reports a missing ACK the
		// same way): keep recording. If the client never heard it, no RTP
		// comes and the inactivity timeout ends the session.
		r.log().Error("sip: the answer may not have reached the client; recording anyway", "call_id", callID, "err", err)
	}
	r.log().Info("recording session started", "call_id", callID, "recording", s.id, "streams", len(active), "source", req.Source())
}

// readOffer splits an INVITE's body and parses its SDP offer; the metadata
// part is returned unparsed (it is optional).
func readOffer(req *sip.Request) (*siprec.Offer, []byte, error) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = h.Value()
	}
	sdpBody, metaBody, err := siprec.SplitBody(ct, req.Body())
	if err != nil {
		return nil, metaBody, err
	}
	offer, err := siprec.ParseOffer(sdpBody)
	return offer, metaBody, err
}

// paused reports whether the offer asks for no recording right now.
func paused(o *siprec.Offer) bool {
	for _, st := range o.Streams {
		if st.Media == "audio" && st.Port != 0 && st.Direction != siprec.Inactive && st.RecordPref != "pause" && st.RecordPref != "off" {
			return false
		}
	}
	return true
}

func supportedCodec(c siprec.Codec) bool {
	switch {
	case c.ClockRate == 8000 && (c.Name == "PCMU" || c.Name == "PCMA" || c.Name == "G722"):
		return media.Supported(c.Name + "/8000")
	case c.Name == "OPUS" && c.ClockRate == 48000:
		return media.Supported("opus/48000")
	}
	return false
}

// preferG711 drops Opus from streams that also offer G.711: recordings are
// 8 kHz either way, and Opus costs 50-100 times the CPU to decode.
func preferG711(o *siprec.Offer) {
	for i := range o.Streams {
		st := &o.Streams[i]
		g711 := false
		for _, c := range st.Codecs {
			g711 = g711 || (c.Name == "PCMU" || c.Name == "PCMA") && c.ClockRate == 8000
		}
		if !g711 {
			continue
		}
		st.Codecs = slices.DeleteFunc(st.Codecs, func(c siprec.Codec) bool { return c.Name == "OPUS" })
	}
}

// answerKey is the SDES key the answer gives for stream i (RFC 4568: each
// side names its own key, though the recorder never sends).
func (s *session) answerKey(i int) *siprec.Crypto {
	if i < len(s.crypto) {
		return s.crypto[i]
	}
	return nil
}

// openStreams opens a socket for every audio stream the recorder can take,
// before the answer goes out. Streams it cannot take get port 0.
func (r *Recorder) openStreams(s *session, o *siprec.Offer, sides map[string]string) ([]media.StreamConfig, error) {
	out := make([]media.StreamConfig, len(o.Streams))
	s.ports = make([]int, len(o.Streams))
	audio := 0
	for i, st := range o.Streams {
		if st.Media != "audio" || st.Port == 0 || !st.IsRTP() || !hasSupported(st) {
			continue
		}
		// SRTP: decrypt with the first offered key of a suite we support;
		// answer with a fresh key of our own for the same suite.
		var srtp *media.SRTPKey
		if st.IsSRTP() {
			chosen := chooseCrypto(st)
			if chosen == nil {
				continue
			}
			ours, err := ourKey(chosen, nil)
			if err != nil {
				continue
			}
			srtp = &media.SRTPKey{Suite: chosen.Suite, Key: chosen.Key, MKI: chosen.MKI}
			if s.crypto == nil {
				s.crypto = make([]*siprec.Crypto, len(o.Streams))
			}
			s.crypto[i] = ours
		}
		conn, port, err := r.ports.open()
		if err != nil {
			r.closeStreams(s, out)
			return nil, err
		}
		s.ports[i] = port
		pts := map[uint8]string{}
		for _, c := range st.Codecs {
			if c.Name != "" {
				pts[c.PT] = c.Name + "/" + strconv.Itoa(c.ClockRate)
			}
		}
		// RTP must come from the address the offer names; many clients
		// (and sipp) send it from another port than their SDP says.
		var remote netip.AddrPort
		if a, err := netip.ParseAddr(st.Addr); err == nil && !a.IsUnspecified() {
			remote = netip.AddrPortFrom(a.Unmap(), 0)
		}
		label := streamLabel(st, i)
		for _, c := range st.Codecs {
			if supportedCodec(c) {
				if enc := c.Name + "/" + strconv.Itoa(c.ClockRate); !slices.Contains(s.meta.Codecs, enc) {
					s.meta.Codecs = append(s.meta.Codecs, enc)
				}
				break
			}
		}
		out[i] = media.StreamConfig{Label: label, Side: side(sides, st.Label, audio), Conn: conn, Remote: remote, PayloadTypes: pts, SRTP: srtp}
		audio++
	}
	return out, nil
}

// streamLabel is the label of the offer's stream i in the media session:
// its a=label, or "m" and its index if it has none.
func streamLabel(st siprec.Stream, i int) string {
	if st.Label != "" {
		return st.Label
	}
	return "m" + strconv.Itoa(i)
}

// chooseCrypto is the SDES key an SRTP stream is decrypted with: the first
// offered of a suite the recorder supports, or nil.
func chooseCrypto(st siprec.Stream) *siprec.Crypto {
	for _, c := range st.Crypto {
		if media.SupportedSuite(c.Suite) {
			return &c
		}
	}
	return nil
}

// ourKey is the recorder's own key for the answer to the offered crypto
// attribute chosen: prev (the key of an earlier answer) under chosen's
// tag if its suite is the same, or else a fresh key of chosen's suite.
func ourKey(chosen, prev *siprec.Crypto) (*siprec.Crypto, error) {
	if prev != nil && strings.EqualFold(prev.Suite, chosen.Suite) {
		return &siprec.Crypto{Tag: chosen.Tag, Suite: chosen.Suite, Key: prev.Key}, nil
	}
	k, err := media.NewSRTPKey(chosen.Suite)
	if err != nil {
		return nil, err
	}
	return &siprec.Crypto{Tag: chosen.Tag, Suite: chosen.Suite, Key: k.Key}, nil
}

func hasSupported(st siprec.Stream) bool {
	for _, c := range st.Codecs {
		if supportedCodec(c) {
			return true
		}
	}
	return false
}

func (r *Recorder) closeStreams(s *session, streams []media.StreamConfig) {
	for i, sc := range streams {
		if sc.Conn != nil {
			sc.Conn.Close()
		}
		if i < len(s.ports) && s.ports[i] != 0 {
			r.ports.release(s.ports[i])
		}
	}
}

// abandon drops a session that never started: its spool and its ports.
func (r *Recorder) abandon(s *session) {
	if s.media != nil {
		if sp, err := s.media.Finish(); err == nil {
			sp.Remove()
		}
	}
	for _, p := range s.ports {
		if p != 0 {
			r.ports.release(p)
		}
	}
}

func (r *Recorder) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if !allowed(r.Allow, req.Source()) {
		return
	}
	if s := r.find(req); s != nil {
		s.dialog.ReadAck(req, tx)
	}
}

func (r *Recorder) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if !r.admit(req, tx) {
		return
	}
	s := r.find(req)
	if s == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if err := s.dialog.ReadBye(req, tx); err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	r.mu.Lock()
	if s.ending {
		r.mu.Unlock()
		return
	}
	s.ending = true
	r.mu.Unlock()
	r.finish(s, "BYE")
}

func (r *Recorder) find(req *sip.Request) *session {
	h := req.CallID()
	if h == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[h.Value()]
}

// watchInactivity ends sessions that have received nothing for
// r.Inactivity (a BYE that was lost, a client that died) and those whose
// client stopped refreshing them (RFC 4028), and sends the refreshes the
// recorder owes.
func (r *Recorder) watchInactivity(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := r.now()
		var idle, expired, refresh []*session
		var intervals []time.Duration // of the expired
		r.mu.Lock()
		for _, s := range r.sessions {
			if s.ending {
				continue
			}
			if expire, due := s.timerDue(now); expire {
				s.ending = true
				expired, intervals = append(expired, s), append(intervals, s.timer.interval)
				continue
			} else if due {
				s.refreshing = true
				refresh = append(refresh, s)
			}
			if d := s.media.Stats().Total.Datagrams; d != s.lastData {
				s.lastData, s.lastHeard = d, now
			} else if now.Sub(s.lastHeard) >= r.Inactivity {
				s.ending = true
				idle = append(idle, s)
			}
		}
		r.mu.Unlock()
		for _, s := range refresh {
			go r.refreshSession(ctx, s)
		}
		for i, s := range expired {
			r.log().Warn("recording session ended: the client stopped refreshing it", "call_id", s.callID, "session_expires", intervals[i])
			r.hangUp(ctx, s, "session timer expired")
		}
		for _, s := range idle {
			r.log().Warn("recording session ended: no RTP", "call_id", s.callID, "for", r.Inactivity)
			r.hangUp(ctx, s, "no RTP")
		}
	}
}

// hangUp ends a session the recorder ends itself, and tells the client
// with a BYE, without waiting on it: a dead client must not hold up the
// others' endings.
func (r *Recorder) hangUp(ctx context.Context, s *session, why string) {
	r.finish(s, why)
	go func() {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s.dialog.Bye(bctx)
	}()
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Recorder) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
