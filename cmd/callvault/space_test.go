package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/diskspace"
	"github.com/callvault/callvault/mail"
	"github.com/callvault/callvault/recorder"
)

// A change of free-space level is written to the audit trail and e-mailed
// (through a real SMTP server) to the administrators who have an address,
// and to nobody else.
func TestSpaceAlertMailsAdmins(t *testing.T) {
	dep := openTest(t, t.TempDir())
	defer dep.Close()
	ctx := system(context.Background())
	for _, u := range []*callvault.User{
		{Login: "tech", Role: callvault.RoleAdmin, Email: "tech@trust.example"},
		{Login: "tech2", Role: callvault.RoleAdmin},
		{Login: "dpo", Role: callvault.RoleDPO, Email: "dpo@trust.example"},
	} {
		if err := dep.users.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	box := cvtest.NewMailbox(t)
	sender := &mail.Sender{Addr: box.Addr, From: "callvault@trust.example"}
	e := &env{stdout: io.Discard, stderr: io.Discard, logger: cvtest.Quiet}
	spaceAlert(ctx, e, dep, sender, diskspace.Status{Level: diskspace.LevelCritical, Path: "/srv/callvault",
		Free: 900e6, Total: 100e9, Floor: 1e9, CheckedAt: time.Now()})

	msgs := box.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"tech@trust.example"}) ||
		!strings.Contains(msgs[0].Data, "REFUSING NEW RECORDINGS") || !strings.Contains(msgs[0].Data, "never deletes recordings") {
		t.Fatalf("mail = %+v", msgs)
	}
	dep.log.Close() // flush
	found := false
	dep.audit.WalkAudit(ctx, 0, func(ev *callvault.AuditEvent) error {
		if ev.Action == "storage.space" && ev.Details["level"] == "critical" && ev.TargetID == "/srv/callvault" {
			found = true
		}
		return nil
	})
	if !found {
		t.Error("no storage.space audit entry")
	}
}

// Recordings that cannot be stored are e-mailed to the administrators and
// audited, with the error and how many wait in the spool; so is the end of
// it.
func TestStoreAlertMailsAdmins(t *testing.T) {
	dep := openTest(t, t.TempDir())
	defer dep.Close()
	ctx := system(context.Background())
	if err := dep.users.CreateUser(ctx, &callvault.User{Login: "tech", Role: callvault.RoleAdmin, Email: "tech@trust.example"}); err != nil {
		t.Fatal(err)
	}
	box := cvtest.NewMailbox(t)
	sender := &mail.Sender{Addr: box.Addr, From: "callvault@trust.example"}
	e := &env{stdout: io.Discard, stderr: io.Discard, logger: cvtest.Quiet}
	storeAlert(ctx, e, dep, sender, recorder.StoreAlert{Failing: true, Pending: 3, Err: callvault.Errorf(callvault.EUNAVAILABLE, "blob store down")})
	storeAlert(ctx, e, dep, sender, recorder.StoreAlert{Pending: 0})
	msgs := box.Messages()
	if len(msgs) != 2 || !slices.Equal(msgs[0].To, []string{"tech@trust.example"}) ||
		!strings.Contains(msgs[0].Data, "blob store down") || !strings.Contains(msgs[0].Data, "3 recording(s) are waiting") ||
		!strings.Contains(msgs[1].Data, "stored again") {
		t.Fatalf("mail = %+v", msgs)
	}
	dep.log.Close() // flush
	var actions []string
	dep.audit.WalkAudit(ctx, 0, func(ev *callvault.AuditEvent) error {
		if strings.HasPrefix(ev.Action, "recording.store_") {
			actions = append(actions, ev.Action+" "+ev.Details["pending"]+" "+ev.Details["error"])
		}
		return nil
	})
	if !slices.Equal(actions, []string{"recording.store_failing 3 blob store down", "recording.store_recovered 0 "}) {
		t.Errorf("audit entries %q", actions)
	}
}
