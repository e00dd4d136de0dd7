package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/secret"
	"github.com/callvault/callvault/totp"
)

// demoRecordings is how many calls --demo creates.
const demoRecordings = 240

// seedDemo fills an empty deployment with two academies, one account per
// role and a few hundred calls over the last 14 months. It does nothing if
// the demo source exists (a previous run seeded already).
func seedDemo(ctx context.Context, e *env, dep *deployment) error {
	sys := callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "demo"})
	if _, err := dep.sources.FindSourceByName(sys, "demo"); err == nil {
		e.logger.Info("demo data already present")
		return nil
	}
	academies := []*callvault.Academy{
		{Slug: "oakfield", Name: "Oakfield Primary Academy",
			Numbers: []callvault.Range{{First: "+441632960000", Last: "+441632960099"}}, Extensions: []callvault.Range{{First: "2000", Last: "2099"}}},
		{Slug: "riverside", Name: "Riverside Secondary Academy",
			Numbers: []callvault.Range{{First: "+441632961000", Last: "+441632961099"}}, Extensions: []callvault.Range{{First: "3000", Last: "3099"}}},
	}
	for _, a := range academies {
		err := dep.audited(sys, callvault.AuditEvent{Action: "academy.create", TargetType: "academy", TargetID: a.Slug},
			func(ctx context.Context) error { return dep.academies.CreateAcademy(ctx, a) })
		if err != nil && callvault.ErrorCode(err) != callvault.ECONFLICT {
			return err
		}
		got, err := dep.academies.FindAcademyBySlug(sys, a.Slug)
		if err != nil {
			return err
		}
		a.ID = got.ID
	}

	var out bytes.Buffer
	fmt.Fprintf(&out, "\nDemo accounts (shown only now):\n\n")
	demoUsers := []struct {
		login, name, role string
		academies         []int64
	}{
		{"techsupport", "Tech Support", callvault.RoleAdmin, nil},
		{"ceo", "Chief Executive", callvault.RoleCEO, nil},
		{"principal", "Oakfield Principal", callvault.RolePrincipal, []int64{academies[0].ID}},
		{"dpo", "Data Protection Lead", callvault.RoleDPO, nil},
		{"listener", "Authorised Listener", callvault.RoleListener, []int64{academies[0].ID}},
	}
	users := map[string]*callvault.User{}
	for _, du := range demoUsers {
		pw := secret.Password()
		hash, err := secret.HashPassword(pw)
		if err != nil {
			return err
		}
		u := &callvault.User{Login: du.login, Name: du.name, Role: du.role, AcademyIDs: du.academies, PasswordHash: hash}
		err = dep.audited(sys, callvault.AuditEvent{Action: "user.create", TargetType: "user", TargetID: du.login, Details: map[string]string{"role": du.role, "why": "demo"}},
			func(ctx context.Context) error { return dep.users.CreateUser(ctx, u) })
		if err != nil {
			if callvault.ErrorCode(err) == callvault.ECONFLICT {
				continue
			}
			return err
		}
		// Demo accounts get a second factor already, so the demo works
		// without an authenticator app: their recovery codes stand in.
		codes, err := enrolDemoMFA(sys, dep, u)
		if err != nil {
			return err
		}
		fmt.Fprintf(&out, "    %-12s %-10s %s   second step: %s\n", du.login, du.role, pw, strings.Join(codes, " or "))
		users[du.login] = u
	}
	fmt.Fprintf(&out, "\nEach second-step code works once (they are recovery codes; the TOTP key is not shown).\n")
	fmt.Fprintf(&out, "Seeding %d demo recordings in the background; the CEO then approves the principal's\n"+
		"request for \"listener\" to hear three calls for 7 days.\n\n", demoRecordings)
	_, _ = out.WriteTo(e.stdout)

	src, err := dep.findOrCreateSource(ctx, "demo", callvault.SourceImport)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	now := time.Now()
	start := time.Now()
	for i := range demoRecordings {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		meta, wav, err := demoCall(rng, i, now)
		if err != nil {
			return err
		}
		err = dep.audited(sys, callvault.AuditEvent{Action: "recording.ingest", Details: map[string]string{"why": "demo"}}, func(ctx context.Context) error {
			_, _, err := dep.archive.Ingest(ctx, archive.IngestRequest{Source: src, Meta: meta, Audio: bytes.NewReader(wav)})
			return err
		})
		if err != nil {
			return fmt.Errorf("demo recording %d: %w", i, err)
		}
	}
	e.logger.Info("demo recordings seeded", "count", demoRecordings, "took", time.Since(start).Round(time.Millisecond))
	if err := demoGrant(ctx, dep, users); err != nil {
		return err
	}
	return demoHold(ctx, dep, users)
}

// demoHold has the DPO place a legal hold for a complaint: every call with
// one parent's number, now and later, is kept past its retention date.
func demoHold(ctx context.Context, dep *deployment, users map[string]*callvault.User) error {
	dpo := users["dpo"]
	if dpo == nil {
		return nil
	}
	h := &callvault.Hold{Reason: callvault.HoldComplaint, Title: "Complaint about attendance calls, Oakfield Year 4",
		Reference: "COMP-2026-014", ReviewAt: time.Now().AddDate(0, 3, 0),
		Filter: &callvault.HoldFilter{Number: "+447700900100"}}
	return dep.audited(callvault.NewContextWithActor(ctx, &callvault.Actor{User: dpo}),
		callvault.AuditEvent{Action: "hold.create", Details: map[string]string{"why": "demo"}},
		func(ctx context.Context) error { return dep.holds.CreateHold(ctx, h, nil) })
}

// enrolDemoMFA gives a demo account a TOTP secret nobody knows and three
// recovery codes to sign in with.
func enrolDemoMFA(ctx context.Context, dep *deployment, u *callvault.User) ([]string, error) {
	key, _, err := totp.Generate(u.Login)
	if err != nil {
		return nil, err
	}
	sealed, err := dep.vault.Seal([]byte(key), "totp:"+strconv.FormatInt(u.ID, 10))
	if err != nil {
		return nil, err
	}
	if err := dep.mfa.SetTOTP(ctx, u.ID, sealed, 0); err != nil {
		return nil, err
	}
	codes, hashes := totp.RecoveryCodes(3)
	return codes, dep.mfa.SetRecoveryCodes(ctx, u.ID, hashes)
}

// demoGrant plays the policy's story once: the Oakfield principal asks for
// the listener to hear three recent Oakfield calls; the CEO approves.
func demoGrant(ctx context.Context, dep *deployment, users map[string]*callvault.User) error {
	principal, ceo, listener := users["principal"], users["ceo"], users["listener"]
	if principal == nil || ceo == nil || listener == nil {
		return nil // accounts from an earlier run: leave them be
	}
	as := func(u *callvault.User) context.Context {
		return callvault.NewContextWithActor(ctx, &callvault.Actor{User: u})
	}
	recs, _, _, err := dep.recordings.FindRecordings(as(principal), callvault.RecordingFilter{Limit: 3})
	if err != nil || len(recs) == 0 {
		return err
	}
	req := &callvault.ListenRequest{Purpose: callvault.PurposeComplaint, ListenerIDs: []int64{listener.ID},
		Justification: "A parent complained about how these calls were handled; the pastoral lead should review them."}
	for _, r := range recs {
		req.RecordingIDs = append(req.RecordingIDs, r.ID)
	}
	err = dep.audited(as(principal), callvault.AuditEvent{Action: "request.create", Details: map[string]string{"why": "demo"}},
		func(ctx context.Context) error { return dep.grants.CreateListenRequest(ctx, req) })
	if err != nil {
		return err
	}
	return dep.audited(as(ceo), callvault.AuditEvent{Action: "request.decide", Details: map[string]string{"why": "demo"}},
		func(ctx context.Context) error {
			_, _, err := dep.grants.DecideListenRequest(ctx, req.ID, true, "Necessary to answer the complaint.")
			return err
		})
}

var (
	demoNames  = []string{"Mrs Ahmed", "Mr Jones", "Ms Okafor", "Mr Novak", "Mrs Patel", "Dr Evans", "Ms Kowalski", "Mr O'Brien"}
	staffNames = []string{"Reception", "Attendance Office", "Finance", "SENCo", "Head's PA"}
	demoCodecs = []string{"ulaw", "ulaw", "ulaw", "alaw", "pcm16"}
)

// demoCall makes one plausible call: mostly inbound calls from a pool of
// parents' numbers to an academy DDI, answered on an extension.
func demoCall(rng *rand.Rand, i int, now time.Time) (archive.Metadata, []byte, error) {
	ac := rng.IntN(10)
	base, ext := 960000, 2000
	if ac >= 6 {
		base, ext = 961000, 3000
	}
	caller := fmt.Sprintf("+4477009%05d", 100+rng.IntN(60))
	if rng.IntN(4) == 0 {
		caller = fmt.Sprintf("+441632%06d", 970000+rng.IntN(500))
	}
	ddi := fmt.Sprintf("+441632%06d", base+rng.IntN(20))
	extension := fmt.Sprint(ext + rng.IntN(40))
	// Spread over 14 months, more recent calls more likely, school hours.
	ago := time.Duration(math.Pow(rng.Float64(), 1.3) * float64(425*24*time.Hour))
	day := now.Add(-ago).In(callvault.London)
	started := time.Date(day.Year(), day.Month(), day.Day(), 8+rng.IntN(9), rng.IntN(60), rng.IntN(60), 0, callvault.London)
	if started.After(now) {
		started = started.AddDate(0, 0, -1)
	}
	// Durations: log-normal around 40 s, from 10 s to 4 minutes.
	secs := math.Exp(math.Log(40) + 0.8*rng.NormFloat64())
	secs = math.Max(10, math.Min(240, secs))
	dur := time.Duration(secs * float64(time.Second))

	direction := callvault.DirectionInbound
	if rng.IntN(4) == 0 {
		direction = callvault.DirectionOutbound
	}
	codec := demoCodecs[rng.IntN(len(demoCodecs))]
	left, right := audio.Conversation(int64(i)+1, dur, 8000)
	var buf bytes.Buffer
	if err := audio.WriteWAV(&buf, codec, 8000, left, right); err != nil {
		return archive.Metadata{}, nil, err
	}
	meta := archive.Metadata{
		SourceRef: fmt.Sprintf("demo-%04d", i),
		StartedAt: started.UTC(),
		Direction: direction,
		Participants: []archive.MetadataParticipant{
			{Number: caller, Name: demoNames[rng.IntN(len(demoNames))], Side: callvault.SideExternal},
			{Number: ddi, Extension: extension, Name: staffNames[rng.IntN(len(staffNames))], Side: callvault.SideStaff},
		},
	}
	return meta, buf.Bytes(), nil
}
