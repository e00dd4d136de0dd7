package recorder

import (
	"context"
	"sync"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/media"
	"github.com/callvault/callvault/phone"
	"github.com/callvault/callvault/siprec"
)

// maxExtension is the longest number taken for an internal extension
// rather than a phone number.
const maxExtension = 6

// academyCache keeps the academies' number ranges for a few seconds, so
// that a burst of INVITEs costs one database read.
type academyCache struct {
	mu   sync.Mutex
	at   time.Time
	list []*callvault.Academy
}

func (r *Recorder) academies(ctx context.Context) []*callvault.Academy {
	if r.Academies == nil {
		return nil
	}
	c := &r.acad
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < 10*time.Second {
		return c.list
	}
	list, err := r.Academies.FindAcademies(callvault.NewContextWithActor(ctx, callvault.SystemActor))
	if err != nil {
		r.log().Warn("sip: cannot read academies; sides follow stream order", "err", err)
		return c.list
	}
	c.list, c.at = list, time.Now()
	return list
}

// participant turns a metadata participant into a recording's: a short
// number is an extension, anything longer a phone number in E.164 where it
// parses; the staff side is whoever's number or extension belongs to an
// academy.
func participant(p siprec.Participant, academies []*callvault.Academy) callvault.Participant {
	out := callvault.Participant{Name: p.Name, Side: callvault.SideExternal}
	digits := p.Number
	switch {
	case digits == "":
	case len(digits) <= maxExtension && digits[0] != '+':
		out.Extension = digits
	default:
		if n, ok := phone.Normalize(digits); ok {
			out.Number = n
		} else {
			out.Number = digits
		}
	}
	if (out.Number != "" || out.Extension != "") && callvault.AssignAcademy(academies, []callvault.Participant{out}) != nil {
		out.Side = callvault.SideStaff
	}
	return out
}

// describe reads who is on the call and which stream each sends: the
// recording's participants and direction, and each SDP label's side. With
// no usable metadata the first audio stream is taken as the external party
// and the second as staff, the order most clients use.
func (r *Recorder) describe(ctx context.Context, callID string, offer *siprec.Offer, meta *siprec.Metadata) (spoolMeta, map[string]string) {
	m := spoolMeta{CallID: callID}
	sides := map[string]string{}
	if meta == nil || len(meta.Participants) == 0 {
		return m, sides
	}
	academies := r.academies(ctx)
	byID := map[string]callvault.Participant{}
	staffKnown := false
	for _, p := range meta.Participants {
		cp := participant(p, academies)
		byID[p.ID] = cp
		staffKnown = staffKnown || cp.Side == callvault.SideStaff
	}
	if !staffKnown {
		// No party's number belongs to an academy (academies not set up
		// yet, a number missing from their ranges): the metadata cannot
		// say which side is staff, so the stream order does, as without
		// metadata, and the sender of the second audio stream is taken
		// as staff. Else both legs would land on one channel.
		audio := 0
		for _, st := range offer.Streams {
			if st.Media != "audio" || st.Port == 0 {
				continue
			}
			if audio == 1 {
				for _, p := range meta.Senders(st.Label) {
					if cp, ok := byID[p.ID]; ok {
						cp.Side = callvault.SideStaff
						byID[p.ID] = cp
					}
				}
			}
			audio++
		}
	}
	for _, p := range meta.Participants {
		m.Participants = append(m.Participants, byID[p.ID])
	}
	for _, st := range offer.Streams {
		if st.Label == "" {
			continue
		}
		senders := meta.Senders(st.Label)
		switch {
		case len(senders) == 1:
			sides[st.Label] = byID[senders[0].ID].Side
		case len(senders) > 1:
			sides[st.Label] = media.SideMixed
		}
	}
	// Direction: who called whom, when the client says; else the first
	// participant is taken as the caller.
	caller := meta.Participants[0].ID
	if meta.Caller != "" {
		caller = meta.Caller
	}
	staff, external := 0, 0
	for _, p := range m.Participants {
		if p.Side == callvault.SideStaff {
			staff++
		} else {
			external++
		}
	}
	switch {
	case external == 0 && staff > 0:
		m.Direction = callvault.DirectionInternal
	case byID[caller].Side == callvault.SideStaff:
		m.Direction = callvault.DirectionOutbound
	default:
		m.Direction = callvault.DirectionInbound
	}
	return m, sides
}

// side is the channel of the stream with label, the idx-th audio stream.
func side(sides map[string]string, label string, idx int) string {
	if s, ok := sides[label]; ok {
		return s
	}
	if idx == 0 {
		return callvault.SideExternal
	}
	return callvault.SideStaff
}
