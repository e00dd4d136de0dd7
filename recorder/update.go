package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/emiago/sipgo/sip"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/media"
	"github.com/callvault/callvault/siprec"
)

// onUpdate takes an UPDATE inside a session: new metadata, with or without
// a new offer (RFC 7866 §8.3).
func (r *Recorder) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	if !r.admit(req, tx) || !r.understood(req, tx) {
		return
	}
	callID := ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	r.onReinvite(req, tx, callID)
}

// onReinvite applies a re-INVITE or an UPDATE: new metadata, pause and
// resume. Streams keep their ports; streams added later are answered with
// port 0 (not recorded). An UPDATE may carry metadata alone.
func (r *Recorder) onReinvite(req *sip.Request, tx sip.ServerTransaction, callID string) {
	r.mu.Lock()
	s := r.sessions[callID]
	ended := s != nil && s.ending // a BYE or the timeout came first
	r.mu.Unlock()
	if s == nil || ended || s.dialog == nil || !sameDialog(req, s.dialog.InviteRequest) {
		r.respond(tx, req, 481, "Call/Transaction Does Not Exist", "")
		return
	}
	if err := s.dialog.ReadRequest(req, tx); err != nil {
		// RFC 3261 §14.2: a CSeq lower than one already seen.
		r.respond(tx, req, 500, "Server Internal Error", "CSeq out of order")
		return
	}
	// Every re-INVITE and UPDATE refreshes the session (RFC 4028 §10),
	// once it is answered with a 2xx; each says anew what timer it wants.
	timer, err := negotiateTimer(req)
	if err != nil {
		r.refuseTimer(tx, req, err)
		return
	}
	ok := func(res *sip.Response) {
		for _, h := range timer.headers() {
			res.AppendHeader(h)
		}
		// Refreshed before the 2xx goes: the client may act on it at once.
		r.mu.Lock()
		s.refreshed(timer, r.now())
		r.mu.Unlock()
		if err := tx.Respond(res); err != nil {
			r.log().Warn("sip: could not answer a re-INVITE or UPDATE", "call_id", callID, "err", err)
		}
	}
	if req.IsInvite() && len(req.Body()) == 0 {
		// An offerless re-INVITE (a session-timer refresh, RFC 4028, or a
		// client asking for an offer): the 2xx offers the session as it
		// is, the last answer unchanged; the ACK's answer changes nothing.
		r.mu.Lock()
		sdp := s.answer
		r.mu.Unlock()
		ok(sip.NewSDPResponseFromRequest(req, sdp))
		return
	}
	offer, metaBody, err := readOffer(req)
	switch {
	case req.Method == sip.UPDATE && (len(req.Body()) == 0 || errors.Is(err, siprec.ErrNoSDP)):
		offer = nil // metadata alone, or nothing: nothing changes in the media
	case err != nil:
		r.respond(tx, req, 400, "Bad Request", callvault.ErrorMessage(err))
		return
	default:
		preferG711(offer)
	}
	if len(metaBody) > 0 {
		r.updateMetadata(s, metaBody)
	}
	if offer == nil {
		ok(sip.NewResponseFromRequest(req, 200, "OK", nil))
		return
	}
	keys, crypto, err := s.newKeys(offer)
	if err != nil {
		r.respond(tx, req, 488, "Not Acceptable Here", callvault.ErrorMessage(err))
		return
	}
	ports := make([]int, len(offer.Streams))
	copy(ports, s.ports)
	r.mu.Lock()
	s.version++
	version := s.version
	r.mu.Unlock()
	answer, err := siprec.Answer(offer, siprec.AnswerOptions{Addr: r.MediaIP.String(), Ports: ports,
		Supported: supportedCodec, Crypto: func(i int) *siprec.Crypto { return crypto[i] },
		SessionID: s.offer.SessionID + 1, SessionVersion: version})
	if err != nil {
		r.respond(tx, req, 488, "Not Acceptable Here", "the new offer has no stream callvault can record")
		return
	}
	for i, k := range keys {
		if k == nil {
			continue
		}
		if err := s.media.Rekey(streamLabel(s.offer.Streams[i], i), *k); err != nil {
			// Checked by newKeys: the session has ended meanwhile.
			r.log().Warn("sip: could not take a new SRTP key", "call_id", callID, "err", err)
		}
	}
	s.crypto = crypto
	if paused(offer) {
		s.media.Pause()
	} else {
		s.media.Resume()
	}
	r.mu.Lock()
	s.answer = answer
	r.mu.Unlock()
	ok(sip.NewSDPResponseFromRequest(req, answer))
}

// newKeys is what an offer inside the session asks of SRTP: for each
// stream being recorded, the sender's key to decrypt with from now on (nil
// for plain RTP; the key in use already is no change), and the attributes
// of the answer (the recorder's key, kept while the suite is). A stream
// that was SRTP offered as plain RTP, or with no key the recorder can use,
// is an error: the offer is refused and the session goes on as it was.
func (s *session) newKeys(o *siprec.Offer) ([]*media.SRTPKey, []*siprec.Crypto, error) {
	keys := make([]*media.SRTPKey, len(o.Streams))
	crypto := make([]*siprec.Crypto, len(o.Streams))
	for i, st := range o.Streams {
		if i >= len(s.ports) || s.ports[i] == 0 || st.Port == 0 {
			continue // not recorded, or being removed: answered with port 0
		}
		label := streamLabel(s.offer.Streams[i], i)
		prev := s.answerKey(i)
		if !st.IsSRTP() {
			if prev != nil {
				return nil, nil, callvault.Errorf(callvault.EUNSUPPORTED, "stream %q was SRTP and is offered as plain RTP", label)
			}
			continue
		}
		chosen := chooseCrypto(st)
		if chosen == nil {
			return nil, nil, callvault.Errorf(callvault.EUNSUPPORTED, "stream %q offers no SRTP key of a suite callvault supports", label)
		}
		k := media.SRTPKey{Suite: chosen.Suite, Key: chosen.Key, MKI: chosen.MKI}
		if err := k.Check(); err != nil {
			return nil, nil, callvault.Errorf(callvault.ErrorCode(err), "stream %q: %s", label, callvault.ErrorMessage(err))
		}
		ours, err := ourKey(chosen, prev)
		if err != nil {
			return nil, nil, err
		}
		keys[i], crypto[i] = &k, ours
	}
	return keys, crypto, nil
}

// sameDialog reports whether an in-dialog request comes from the client
// that opened the session: same Call-ID (looked up already) and From tag.
func sameDialog(req, invite *sip.Request) bool {
	tag := func(r *sip.Request) string {
		if f := r.From(); f != nil && f.Params != nil {
			v, _ := f.Params.Get("tag")
			return v
		}
		return ""
	}
	return tag(req) != "" && tag(req) == tag(invite)
}

// updateMetadata applies new recording metadata (a transfer, a party
// joining): the recording keeps everyone who took part, so the
// participants are the union of those known so far and the new ones. The
// direction stays what the session started with. Metadata that does not
// parse is logged and ignored; the recording goes on.
func (r *Recorder) updateMetadata(s *session, body []byte) {
	meta, err := siprec.ParseMetadata(body)
	if err != nil {
		r.log().Warn("sip: metadata update does not parse; ignored", "call_id", s.callID, "err", err)
		return
	}
	if len(meta.Participants) == 0 {
		return
	}
	m, _ := r.describe(context.Background(), s.callID, s.offer, meta)
	r.mu.Lock()
	merged := s.meta
	merged.Participants = slices.Clone(merged.Participants)
	if merged.Direction == "" {
		merged.Direction = m.Direction
	}
	for _, p := range m.Participants {
		if !slices.Contains(merged.Participants, p) {
			merged.Participants = append(merged.Participants, p)
		}
	}
	r.mu.Unlock()
	b, err := json.Marshal(merged)
	if err == nil {
		err = s.media.SetMeta(b)
	}
	if err != nil {
		r.log().Error("sip: could not keep a metadata update", "call_id", s.callID, "err", err)
		return
	}
	r.mu.Lock()
	s.meta = merged
	r.mu.Unlock()
	r.log().Info("recording metadata updated", "call_id", s.callID, "participants", len(merged.Participants))
}
