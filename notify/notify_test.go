package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/mail"
	"github.com/callvault/callvault/notify"
)

func TestChaseWaitingRequests(t *testing.T) {
	d := cvtest.New(t)
	box := cvtest.NewMailbox(t)
	sys := d.Sys
	oak := &callvault.Academy{Slug: "oakfield", Name: "Oakfield", Extensions: []callvault.Range{{First: "2000", Last: "2099"}}}
	river := &callvault.Academy{Slug: "riverside", Name: "Riverside"}
	for _, a := range []*callvault.Academy{oak, river} {
		if err := d.Academies.CreateAcademy(sys, a); err != nil {
			t.Fatal(err)
		}
	}
	users := map[string]*callvault.User{}
	for _, u := range []*callvault.User{
		{Login: "ceo", Role: callvault.RoleCEO, Email: "ceo@trust.example"},
		{Login: "head", Role: callvault.RolePrincipal, AcademyIDs: []int64{oak.ID}, Email: "head@oak.example"},
		{Login: "otherhead", Role: callvault.RolePrincipal, AcademyIDs: []int64{river.ID}, Email: "head@river.example"},
		{Login: "dpo", Role: callvault.RoleDPO, Email: "dpo@trust.example"},
		{Login: "listener", Role: callvault.RoleListener},
	} {
		u.PasswordHash = "x"
		if err := d.Users.CreateUser(sys, u); err != nil {
			t.Fatal(err)
		}
		users[u.Login] = u
	}
	src := &callvault.Source{Name: "pbx", Kind: callvault.SourceAPI, TokenHash: strings.Repeat("ab", 32)}
	if err := d.Sources.CreateSource(sys, src); err != nil {
		t.Fatal(err)
	}
	rec, _, err := d.Archive.Ingest(context.Background(), archive.IngestRequest{Source: src,
		Meta:  archive.Metadata{SourceRef: "1", StartedAt: time.Now().Add(-time.Hour), Participants: []archive.MetadataParticipant{{Extension: "2001", Side: "staff"}}},
		Audio: strings.NewReader(string(cvtest.CallWAV(t, "ulaw", time.Second)))})
	if err != nil {
		t.Fatal(err)
	}
	dpo := callvault.NewContextWithActor(context.Background(), &callvault.Actor{User: users["dpo"]})
	req := &callvault.ListenRequest{RecordingIDs: []string{rec.ID}, Purpose: callvault.PurposeComplaint,
		Justification: "a parent's complaint about this call", ListenerIDs: []int64{users["listener"].ID}}
	if err := d.Grants.CreateListenRequest(dpo, req); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := &notify.Chaser{Grants: d.Grants, Users: d.Users, Mailer: &mail.Sender{Addr: box.Addr, From: "callvault@trust.example"},
		Now: func() time.Time { return now }, Logger: cvtest.Quiet, After: 48 * time.Hour, URL: "https://callvault.trust.example"}
	if n, err := c.Chase(context.Background()); n != 0 || err != nil {
		t.Fatalf("a fresh request was chased: %d, %v", n, err)
	}
	now = now.Add(49 * time.Hour)
	if n, err := c.Chase(context.Background()); n != 1 || err != nil {
		t.Fatalf("Chase after 49 h = %d, %v; want 1 reminder", n, err)
	}
	msgs := box.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	to := msgs[0].To
	slices.Sort(to)
	if strings.Join(to, ",") != "ceo@trust.example,head@oak.example" {
		t.Errorf("reminder went to %v; want the CEO and Oakfield's principal only (not the requester, not another academy's head)", to)
	}
	if !strings.Contains(msgs[0].Data, "https://callvault.trust.example/requests/") || strings.Contains(msgs[0].Data, rec.ID) {
		t.Errorf("reminder text:\n%s", msgs[0].Data)
	}
	if n, _ := c.Chase(context.Background()); n != 0 {
		t.Errorf("chased again at once: %d", n)
	}
	now = now.Add(49 * time.Hour)
	if n, _ := c.Chase(context.Background()); n != 1 {
		t.Errorf("second reminder two days later: %d, want 1", n)
	}
	ceo := callvault.NewContextWithActor(context.Background(), &callvault.Actor{User: users["ceo"]})
	if _, _, err := d.Grants.DecideListenRequest(ceo, req.ID, false, "not necessary"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(49 * time.Hour)
	if n, _ := c.Chase(context.Background()); n != 0 {
		t.Errorf("a decided request was chased: %d", n)
	}
}
