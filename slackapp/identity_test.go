package slackapp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/workflow"
)

// A burst of requests whose employees share a manager asks Slack about
// the manager once: lookups of one email at the same time make one call,
// and the answer is reused; an email Slack does not know stays unknown.
func TestByEmailAsksSlackOncePerPerson(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	addPeople(srv)
	id := &Identity{API: slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())), Gate: NewGate(),
		Domains: []string{"corp.example.com"}, Team: slacktest.TeamID}
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

// TestWhoMayUseTheBot: the rules that bind a Slack user to a directory
// account (issue 13): a confirmed email in an allowed domain, a member of
// this workspace or its Enterprise Grid organisation, no Slack Connect
// stranger; approvers are checked for membership only.
func TestWhoMayUseTheBot(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	for _, u := range []slacktest.User{
		{ID: "UOK", Email: "ok@corp.example.com"},
		{ID: "UCAPS", Email: "Caps@CORP.Example.com"},
		{ID: "UUNCONF", Email: "unconf@corp.example.com", Unconfirmed: true},
		{ID: "USTRANGER", Email: "stranger@corp.example.com", IsStranger: true, TeamID: "T9"},
		{ID: "UCONNECT", Email: "partner@corp.example.com", TeamID: "T9"}, // a Slack Connect member sharing a channel
		{ID: "WORG", Email: "org@corp.example.com", TeamID: "T2", EnterpriseID: "E1"},
		{ID: "WOTHERORG", Email: "x@corp.example.com", TeamID: "T3", EnterpriseID: "E9"},
		{ID: "UELSEWHERE", Email: "eve@gmail.com"},
		{ID: "UGUEST", Email: "guest@corp.example.com", IsRestricted: true},
		{ID: "UGONE", Email: "gone@corp.example.com", Deleted: true},
		{ID: "UNOMAIL"},
	} {
		srv.AddUser(u)
	}
	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL()))
	newIdentity := func(team, enterprise string) *Identity {
		return &Identity{API: api, Gate: NewGate(), Domains: []string{"corp.example.com"}, Team: team, Enterprise: enterprise}
	}
	ctx := context.Background()
	cases := []struct {
		user             string
		enterprise       string
		person, approver workflow.Code // "" = allowed
	}{
		{"UOK", "", "", ""},
		{"UCAPS", "", "", ""},
		{"UUNCONF", "", workflow.CodeEmailUnconfirmed, ""},
		{"USTRANGER", "", workflow.CodeForeignUser, workflow.CodeForeignUser},
		{"UCONNECT", "", workflow.CodeForeignUser, workflow.CodeForeignUser},
		{"WORG", "", workflow.CodeForeignUser, workflow.CodeForeignUser},
		{"WORG", "E1", "", ""},
		{"WOTHERORG", "E1", workflow.CodeForeignUser, workflow.CodeForeignUser},
		{"UELSEWHERE", "", workflow.CodeEmailDomain, ""},
		{"UGUEST", "", workflow.CodeIneligibleUser, workflow.CodeIneligibleUser},
		{"UGONE", "", workflow.CodeIneligibleUser, workflow.CodeIneligibleUser},
		{"UNOMAIL", "", workflow.CodeNoEmail, ""},
		{"UNOBODY", "", workflow.CodeUnknownUser, workflow.CodeUnknownUser},
	}
	for _, c := range cases {
		t.Run(c.user+"@"+c.enterprise, func(t *testing.T) {
			id := newIdentity(slacktest.TeamID, c.enterprise)
			if _, err := id.Person(ctx, c.user); workflow.ErrorCode(err) != c.person {
				t.Errorf("Person: %v, want code %q", err, c.person)
			}
			if _, err := id.Approver(ctx, c.user); workflow.ErrorCode(err) != c.approver {
				t.Errorf("Approver: %v, want code %q", err, c.approver)
			}
		})
	}
	// A manager is asked only when they could use the bot themselves.
	id := newIdentity(slacktest.TeamID, "")
	for email, want := range map[string]bool{
		"ok@corp.example.com": true, "unconf@corp.example.com": false, "stranger@corp.example.com": false,
		"partner@corp.example.com": false, "eve@gmail.com": false, "guest@corp.example.com": false,
	} {
		if _, ok, err := id.ByEmail(ctx, email); err != nil || ok != want {
			t.Errorf("ByEmail(%s) = %v, %v; want %v", email, ok, err, want)
		}
	}
	// Until the bot knows its workspace, nobody is a member.
	if _, err := newIdentity("", "").Person(ctx, "UOK"); workflow.ErrorCode(err) != workflow.CodeInternal {
		t.Errorf("Person without a workspace: %v, want code %s", err, workflow.CodeInternal)
	}
	// An employee named by email on their behalf: a member who may use the
	// bot is found; one who may not is refused with its own code (never
	// taken for "nobody in Slack", whose password could go to the agent);
	// only an email Slack does not know is nobody's; another domain is
	// refused before Slack is asked.
	before := len(srv.Calls("users.lookupByEmail"))
	if _, ok, err := id.Employee(ctx, "someone@gmail.com"); workflow.ErrorCode(err) != workflow.CodeEmailDomain || ok {
		t.Errorf("Employee of another domain: %v, %v", ok, err)
	}
	if n := len(srv.Calls("users.lookupByEmail")); n != before {
		t.Errorf("Slack was asked about an email of another domain")
	}
	for email, want := range map[string]workflow.Code{
		"ok@corp.example.com": "", "unconf@corp.example.com": workflow.CodeEmailUnconfirmed, "stranger@corp.example.com": workflow.CodeForeignUser,
		"partner@corp.example.com": workflow.CodeForeignUser, "guest@corp.example.com": workflow.CodeIneligibleUser,
		"gone@corp.example.com": workflow.CodeIneligibleUser, "nobody@corp.example.com": "",
	} {
		p, ok, err := id.Employee(ctx, email)
		if workflow.ErrorCode(err) != want || (want == "" && ok != (email == "ok@corp.example.com")) || (ok && p.ID != "UOK") {
			t.Errorf("Employee(%s) = %+v, %v, %v; want code %q", email, p, ok, err, want)
		}
	}
}

// Person carries the time zone users.info gives (for the working-hours
// flag), and none when Slack gives none.
func TestPersonTimeZone(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	srv.AddUser(slacktest.User{ID: "UTZ", Name: "tz", Email: "tz@corp.example.com", TZ: "Asia/Kolkata"})
	srv.AddUser(slacktest.User{ID: "UNOTZ", Name: "notz", Email: "notz@corp.example.com"})
	id := &Identity{API: slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())), Gate: NewGate(),
		Domains: []string{"corp.example.com"}, Team: slacktest.TeamID}
	p, err := id.Person(context.Background(), "UTZ")
	if err != nil || p.TZ != "Asia/Kolkata" || p.TZOffset != 5*3600+1800 {
		t.Fatalf("Person = %+v, %v", p, err)
	}
	if p, err := id.Person(context.Background(), "UNOTZ"); err != nil || p.TZ != "" {
		t.Fatalf("Person without a zone = %+v, %v", p, err)
	}
}

// In a burst, when users.info is rate-limited, the roster answers:
// users.list is read (RosterPages pages) into the cache and a lookup
// waits no longer for users.info; a member the roster shows deactivated
// is refused as users.info would refuse them; a member whose email the
// list does not show confirmed, or who is beyond the pages read, is asked
// about with users.info once its limit allows. Without a burst the
// roster is never read.
func TestRosterAnswersABurst(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	addPeople(srv) // 5 members
	srv.AddUser(slacktest.User{ID: "UGONE", Name: "gone", Email: "gone@corp.example.com", Deleted: true})
	srv.AddUser(slacktest.User{ID: "UUNCONF", Name: "unconf", Email: "unconf@corp.example.com", Unconfirmed: true})
	srv.AddUser(slacktest.User{ID: "ULATE", Name: "late", Email: "late@corp.example.com"}) // 8th: beyond 2 pages of 3
	id := &Identity{API: slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())), Gate: NewGate(),
		Domains: []string{"corp.example.com"}, Team: slacktest.TeamID, RosterPages: 2, RosterPageSize: 3}
	ctx := context.Background()

	if p, err := id.Person(ctx, employeeID); err != nil || p.Email != "emp@corp.example.com" {
		t.Fatalf("Person without a burst: %+v, %v", p, err)
	}
	if n := len(srv.Calls("users.list")); n != 0 {
		t.Fatalf("users.list read %d times without a burst", n)
	}

	srv.ThrottleMethod("users.info", 1500*time.Millisecond) // Retry-After: 2
	start := time.Now()
	p, err := id.Person(ctx, approver2ID)
	if err != nil || p.Email != "app2@corp.example.com" || p.Name != "Abe Approver" {
		t.Fatalf("Person in a burst: %+v, %v", p, err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Errorf("the lookup waited %s for users.info's limit", waited)
	}
	if _, err := id.Person(ctx, "UGONE"); workflow.ErrorCode(err) != workflow.CodeIneligibleUser {
		t.Errorf("a deactivated member from the roster: %v", err)
	}
	if n := len(srv.Calls("users.list")); n != 2 {
		t.Errorf("users.list read %d times, want 2 pages once", n)
	}
	infos := len(srv.Calls("users.info"))
	if _, err := id.Person(ctx, "UUNCONF"); workflow.ErrorCode(err) != workflow.CodeEmailUnconfirmed {
		t.Errorf("a member with an unconfirmed email: %v", err)
	}
	if p, err := id.Person(ctx, "ULATE"); err != nil || p.Email != "late@corp.example.com" {
		t.Errorf("a member beyond the pages read: %+v, %v", p, err)
	}
	if got := len(srv.Calls("users.info")) - infos; got < 2 {
		t.Errorf("%d users.info calls for the two the roster did not answer, want at least 2", got)
	}
	if n := len(srv.Calls("users.list")); n != 2 {
		t.Errorf("users.list read again within %s: %d calls", rosterEvery, n)
	}
}

// A roster read never makes the burst wait for users.list's own limit:
// a page that would wait is not read, and users.info answers.
func TestRosterDoesNotWaitForItsLimit(t *testing.T) {
	srv := slacktest.New()
	t.Cleanup(srv.Close)
	addPeople(srv)
	id := &Identity{API: slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL())), Gate: NewGate(),
		Domains: []string{"corp.example.com"}, Team: slacktest.TeamID, RosterPages: 2, RosterPageSize: 3}
	srv.ThrottleMethod("users.info", 1500*time.Millisecond) // Retry-After: 2
	srv.ThrottleMethod("users.list", 3500*time.Millisecond) // Retry-After: 4
	p, err := id.Person(context.Background(), approver2ID)
	if err != nil || p.Email != "app2@corp.example.com" {
		t.Fatalf("Person while both are limited: %+v, %v", p, err)
	}
	if n := len(srv.Calls("users.list")); n != 1 {
		t.Errorf("%d users.list calls, want the one answered 429 and no wait for another", n)
	}
}
