package slackapp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/internal/slacktest"
)

// A burst of requests whose employees share a manager asks Slack about
// the manager once: lookups of one email at the same time make one call,
// and the answer is reused; an email Slack does not know stays unknown.
func TestByEmailAsksSlackOncePerPerson(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	addPeople(srv)
	id := &Identity{API: slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())), Gate: NewGate()}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			p, ok, err := id.ByEmail(ctx, "app1@corp.example.com")
			if err != nil || !ok || p.ID != approver1ID {
				t.Errorf("ByEmail = %+v, %v, %v; want %s", p, ok, err, approver1ID)
			}
		})
	}
	wg.Wait()
	if p, ok, err := id.ByEmail(ctx, "App1@Corp.Example.com"); err != nil || !ok || p.ID != approver1ID {
		t.Errorf("ByEmail in other case = %+v, %v, %v", p, ok, err)
	}
	if n := len(srv.Calls("users.lookupByEmail")); n != 1 {
		t.Errorf("%d users.lookupByEmail calls for 21 lookups of one person, want 1", n)
	}
	for range 2 {
		if _, ok, err := id.ByEmail(ctx, "nobody@corp.example.com"); err != nil || ok {
			t.Errorf("ByEmail of an unknown email = %v, %v; want not found", ok, err)
		}
	}
}

// An answer to the user gets its own time: a command whose work used up
// the handler's deadline still tells the user something went wrong.
func TestCommandPastItsDeadlineIsStillAnswered(t *testing.T) {
	h := newAppHarness(t, func(a *App) { a.Timeout = time.Nanosecond })
	p := h.answer(h.command(employeeID, ""))
	if p.Text == "" {
		t.Error("empty answer")
	}
	if _, err := h.store.Open(context.Background(), employeeID); err == nil {
		t.Error("a request was created past the deadline")
	}
}
