package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/mail"
)

func TestSend(t *testing.T) {
	box := cvtest.NewMailbox(t)
	s := &mail.Sender{Addr: box.Addr, From: "callvault@trust.example", Now: func() time.Time { return time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC) }}
	body := "Emergency access was opened.\n.dot line\nSee /grants"
	if err := s.Send(context.Background(), []string{"ceo@trust.example", "dpo@trust.example"}, "callvault: break-glass access", body); err != nil {
		t.Fatal(err)
	}
	msgs := box.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 2 || msgs[0].From != "callvault@trust.example" {
		t.Fatalf("received %+v", msgs)
	}
	d := msgs[0].Data
	for _, want := range []string{"Subject: callvault: break-glass access", "To: ceo@trust.example, dpo@trust.example", "Emergency access was opened.", "\r\n.dot line", "Date: Fri, 27 Nov 2026 09:00:00 +0000"} {
		if !strings.Contains(d, want) {
			t.Errorf("message lacks %q:\n%s", want, d)
		}
	}
	for _, bad := range [][]string{nil, {"no-at-sign"}, {"a@b\r\nBcc: x@y"}} {
		if err := s.Send(context.Background(), bad, "x", "y"); err == nil {
			t.Errorf("Send to %q succeeded", bad)
		}
	}
	if err := s.Send(context.Background(), []string{"a@b.example"}, "two\r\nlines", "y"); err == nil {
		t.Error("Send with a two-line subject succeeded")
	}
	down := &mail.Sender{Addr: "127.0.0.1:1", From: "callvault@trust.example"}
	if err := down.Send(context.Background(), []string{"a@b.example"}, "x", "y"); err == nil {
		t.Error("Send to a closed port succeeded")
	}
}
