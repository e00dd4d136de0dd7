// Package notify chases listen requests that wait too long for a decision:
// it e-mails the people who may decide them (the CEO, and the principals of
// every academy a request covers). The mail says only that a request waits
// and where; never what the call was about.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/callvault/callvault"
)

// Mailer sends one message.
type Mailer interface {
	Send(ctx context.Context, to []string, subject, body string) error
}

// Chaser reminds deciders of waiting requests.
type Chaser struct {
	Grants callvault.GrantService
	Users  callvault.UserService
	Mailer Mailer
	Now    func() time.Time
	Logger *slog.Logger
	// After is how long a request may wait before the first reminder, and
	// then between reminders.
	After time.Duration
	// URL is the public address, for links in the mail.
	URL string

	mu     sync.Mutex
	chased map[int64]time.Time // request id → last reminder (a restart may send one more)
}

// Run chases every interval until ctx ends.
func (c *Chaser) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n, err := c.Chase(ctx); err != nil {
			c.Logger.Error("chasing listen requests failed", "err", err)
		} else if n > 0 {
			c.Logger.Info("chased listen requests awaiting a decision", "reminders", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Chase sends the reminders that are due and returns how many it sent.
func (c *Chaser) Chase(ctx context.Context) (int, error) {
	sys := callvault.NewContextWithActor(ctx, &callvault.Actor{System: true, Name: "chaser"})
	reqs, err := c.Grants.FindListenRequests(sys, callvault.RequestFilter{State: callvault.RequestPending})
	if err != nil {
		return 0, err
	}
	users, err := c.Users.FindUsers(sys)
	if err != nil {
		return 0, err
	}
	now := c.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chased == nil {
		c.chased = map[int64]time.Time{}
	}
	sent := 0
	var errs []string
	for _, r := range reqs {
		if now.Sub(r.CreatedAt) < c.After || now.Sub(c.chased[r.ID]) < c.After {
			continue
		}
		to := deciders(users, r)
		if len(to) == 0 {
			errs = append(errs, fmt.Sprintf("request %d: nobody who may decide it has an e-mail address", r.ID))
			continue
		}
		body := fmt.Sprintf("Listen request %d from %s has waited since %s for a decision by the CEO or the academy's Principal.\n\n"+
			"Purpose: %s\nRecordings: %d\n\nDecide it at %s/requests/%d\n",
			r.ID, r.Requester, r.CreatedAt.In(callvault.London).Format("Mon 2 Jan 2006 15:04"), r.Purpose, len(r.RecordingIDs),
			strings.TrimSuffix(c.URL, "/"), r.ID)
		if err := c.Mailer.Send(ctx, to, fmt.Sprintf("callvault: listen request %d awaits your decision", r.ID), body); err != nil {
			errs = append(errs, fmt.Sprintf("request %d: %v", r.ID, err))
			continue
		}
		c.chased[r.ID] = now
		sent++
	}
	if len(errs) > 0 {
		return sent, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return sent, nil
}

// deciders are the enabled accounts with an e-mail address who may decide r.
func deciders(users []*callvault.User, r *callvault.ListenRequest) []string {
	var to []string
	for _, u := range users {
		if u.Disabled || u.Email == "" || u.ID == r.RequesterID {
			continue
		}
		if callvault.CanDecide(&callvault.Actor{User: u}, r) && !slices.Contains(to, u.Email) {
			to = append(to, u.Email)
		}
	}
	return to
}
