package workflow_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// managerHarness is a harness whose employee alice has the manager UMGR
// (APPROVER_SOURCE=manager), with reminders after 10 minutes and
// escalation to the configured approvers after 15.
func managerHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	people := fakeIdentity{
		"UEMP":  {Email: "alice@corp.example.com"},
		"UMGR":  {Email: "maria@corp.example.com"},
		"UAPP1": {Email: "bob@corp.example.com"},
	}
	opts = append([]option{func(c *workflow.Config, d *workflow.Deps) {
		c.ManagerApproval, d.Identity = true, people
		c.RemindAfter, c.EscalateAfter = 10*time.Minute, 15*time.Minute
	}}, opts...)
	h := newHarness(t, opts...)
	h.accts.set(func(f *fakeAccounts) {
		f.managers = map[string]workflow.Manager{"alice": {UserName: "maria", Email: "maria@corp.example.com"}}
	})
	return h
}

func kinds(r *workflow.Request) []workflow.EventKind {
	var out []workflow.EventKind
	for _, ev := range r.Events {
		out = append(out, ev.Kind)
	}
	return out
}

func count(r *workflow.Request, k workflow.EventKind) int {
	n := 0
	for _, ev := range r.Events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// TestReminderAndEscalationOnce: the sweeper reminds the approvers at
// REMIND_AFTER and asks the fallback approvers at ESCALATE_AFTER, each
// once however often it runs, and the request's next deadline says when
// each is due; the fallback approvers may then decide.
func TestReminderAndEscalationOnce(t *testing.T) {
	h := managerHarness(t)
	ctx := context.Background()
	r := h.submit(t)
	if !slices.Equal(r.Approvers, []string{"UMGR"}) || !r.RemindAt.Equal(t0.Add(10*time.Minute)) || !r.EscalateAt.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("approvers %v, remind at %s, escalate at %s", r.Approvers, r.RemindAt, r.EscalateAt)
	}
	if d, _ := r.NextDeadline(); !d.Equal(r.RemindAt) {
		t.Fatalf("next deadline %s, want the reminder", d)
	}
	sweep := func() {
		for range 3 {
			if err := h.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.clock.Add(10*time.Minute - time.Second)
	sweep()
	if got := h.get(t, r.ID); count(got, workflow.EventReminded) != 0 {
		t.Fatalf("reminded early: %v", kinds(got))
	}
	h.clock.Add(time.Second)
	sweep()
	got := h.get(t, r.ID)
	if count(got, workflow.EventReminded) != 1 || count(got, workflow.EventEscalated) != 0 {
		t.Fatalf("at REMIND_AFTER: %v", kinds(got))
	}
	if d, _ := got.NextDeadline(); !d.Equal(r.EscalateAt) {
		t.Fatalf("next deadline %s, want the escalation", d)
	}
	h.clock.Add(5 * time.Minute)
	sweep()
	got = h.get(t, r.ID)
	if count(got, workflow.EventReminded) != 1 || count(got, workflow.EventEscalated) != 1 {
		t.Fatalf("at ESCALATE_AFTER: %v", kinds(got))
	}
	// The configured approvers minus the employee, after the manager.
	if !slices.Equal(got.Approvers, []string{"UMGR", "UAPP1", "UAPP2"}) || !slices.Equal(got.Escalated, []string{"UAPP1", "UAPP2"}) {
		t.Fatalf("approvers %v, escalated %v", got.Approvers, got.Escalated)
	}
	if d, _ := got.NextDeadline(); !d.Equal(r.DecideBy) {
		t.Fatalf("next deadline %s, want the end of the decision window", d)
	}
	if told := h.watch.told(); count(&workflow.Request{Events: eventsOf(told)}, workflow.EventEscalated) != 1 {
		t.Fatalf("the watcher was told %v", told)
	}
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP2", true); err != nil {
		t.Fatalf("a fallback approver could not decide: %v", err)
	}
	recs, _ := h.records(workflow.AuditQuery{})
	var steps []string
	for _, rec := range recs {
		steps = append(steps, rec.Event)
	}
	if !slices.Contains(steps, "reminded") || !slices.Contains(steps, "escalated") {
		t.Fatalf("audit log %v", steps)
	}
}

func eventsOf(ks []workflow.EventKind) []workflow.Event {
	var out []workflow.Event
	for _, k := range ks {
		out = append(out, workflow.Event{Kind: k})
	}
	return out
}

// TestNoEscalationUnlessTheManagerWasAsked: requests the configured
// approvers decide have nobody to escalate to; a decision before the
// reminder leaves nothing to remind.
func TestNoEscalationUnlessTheManagerWasAsked(t *testing.T) {
	h := managerHarness(t)
	h.accts.set(func(f *fakeAccounts) { f.managers = nil })
	r := h.submit(t)
	if r.AskedAs != workflow.AskedNoManager || !r.EscalateAt.IsZero() || r.RemindAt.IsZero() {
		t.Fatalf("asked as %q, escalate at %s, remind at %s", r.AskedAs, r.EscalateAt, r.RemindAt)
	}
	ctx := context.Background()
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", false); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(20 * time.Minute)
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); count(got, workflow.EventReminded) != 0 {
		t.Fatalf("a denied request was reminded: %v", kinds(got))
	}
}

// failingApprovers cannot list the configured approvers.
type failingApprovers struct{}

func (failingApprovers) For(context.Context, string, workflow.Account) ([]string, error) {
	return nil, workflow.Errorf(workflow.CodeInternal, "usergroups.users.list failed")
}

// TestEscalationWaitsWhenTheFallbackIsUnknown: when the fallback
// approvers cannot be listed, nobody is asked and the escalation is tried
// again a minute later, not at every sweep.
func TestEscalationWaitsWhenTheFallbackIsUnknown(t *testing.T) {
	h := managerHarness(t, func(_ *workflow.Config, d *workflow.Deps) { d.Approvers = failingApprovers{} })
	r := h.submit(t)
	h.clock.Add(15 * time.Minute)
	if err := h.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := h.get(t, r.ID)
	if count(got, workflow.EventEscalated) != 0 || !got.EscalateAt.Equal(t0.Add(16*time.Minute)) || len(got.Approvers) != 1 {
		t.Fatalf("%v, escalate at %s, approvers %v", kinds(got), got.EscalateAt, got.Approvers)
	}
}

// fakeFacts is the directory's sign-in facts, or an error.
type fakeFacts struct {
	in  workflow.SignIn
	err error
}

func (f fakeFacts) SignIn(context.Context, workflow.Account) (workflow.SignIn, error) {
	return f.in, f.err
}

// TestFactsReadOnceAtTheRequest: the request carries the directory's
// facts, the bot's earlier resets of the account (30 days), and the
// employee's local time, flagged outside the working hours; what could
// not be read is left out.
func TestFactsReadOnceAtTheRequest(t *testing.T) {
	bad := 3
	in := workflow.SignIn{Lockout: &workflow.Lockout{Locked: true, Since: t0.Add(-time.Hour)}, BadPasswords: &bad}
	hours, err := workflow.ParseWorkHours(workflow.DefaultWorkHours)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *workflow.Config, d *workflow.Deps) {
		d.Facts, c.WorkHours = fakeFacts{in: in}, hours
	})
	// t0 is Wednesday 09:00 UTC: 22:00 in Auckland (UTC+13 in January).
	h.people["UEMP"] = workflow.Person{Email: "alice@corp.example.com", TZ: "Pacific/Auckland", TZOffset: 13 * 3600}
	ctx := context.Background()
	// Two earlier resets of the account, one of them more than 30 days ago.
	for _, ago := range []time.Duration{40 * 24 * time.Hour, 2 * time.Hour} {
		h.clock.Set(t0.Add(-ago))
		r := h.submit(t)
		if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", true); err != nil {
			t.Fatal(err)
		}
		if _, err := h.reveal(r.ID, "UEMP"); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Set(t0)
	h.svc = workflow.New(workflow.Config{DirectoryID: "d-1234567890", WorkHours: hours, Limit: workflow.Limit{Max: 10}},
		workflow.Deps{Store: h.store, Directory: h.dir, Passwords: &fakePasswords{}, Identity: h.people, Accounts: h.accts,
			Approvers: fakeApprovers{"UAPP1"}, Notifier: h.note, Clock: h.clock, Facts: fakeFacts{in: in}})
	r := h.submit(t)
	f := r.Facts
	if f == nil || f.Lockout == nil || !f.Lockout.Locked || f.BadPasswords == nil || *f.BadPasswords != 3 || f.PasswordSet != nil {
		t.Fatalf("sign-in facts %+v", f)
	}
	if f.Resets == nil || f.Resets.Count != 1 || !f.Resets.Last.Equal(t0.Add(-2*time.Hour)) {
		t.Fatalf("reset history %+v", f.Resets)
	}
	if f.Hours == nil || *f.Hours != (workflow.LocalTime{Zone: "Pacific/Auckland", Clock: "Wed 22:00", Outside: true}) {
		t.Fatalf("local time %+v", f.Hours)
	}
	if stored := h.get(t, r.ID); stored.Facts == nil || *stored.Facts.BadPasswords != 3 || stored.Facts.Hours.Zone != "Pacific/Auckland" {
		t.Fatalf("the facts were not stored: %+v", stored.Facts)
	}

	// Nothing readable: no facts at all. A zone this system does not know
	// is read with the offset chat gave.
	h2 := newHarness(t, func(c *workflow.Config, d *workflow.Deps) {
		d.Facts, c.WorkHours = fakeFacts{err: workflow.Errorf(workflow.CodeLookupUnavailable, "ldap down")}, hours
	})
	r2 := h2.submit(t)
	if r2.Facts == nil || r2.Facts.Lockout != nil || r2.Facts.BadPasswords != nil || r2.Facts.Hours != nil || r2.Facts.Resets == nil || r2.Facts.Resets.Count != 0 {
		t.Fatalf("facts without the directory or a time zone: %+v", r2.Facts)
	}
	h3 := newHarness(t, func(c *workflow.Config, d *workflow.Deps) { c.WorkHours = hours })
	h3.people["UEMP"] = workflow.Person{Email: "alice@corp.example.com", TZ: "Mars/Olympus_Mons", TZOffset: 2 * 3600}
	if r3 := h3.submit(t); r3.Facts.Hours == nil || r3.Facts.Hours.Clock != "Wed 11:00" || r3.Facts.Hours.Outside {
		t.Fatalf("unknown zone: %+v", r3.Facts.Hours)
	}
}

// TestReasons: the employee's reason and the approver's reason for a
// denial are cleaned (one line, no invisible characters, at most 300
// characters) and kept on their events; with REQUIRE_REASON an
// employee's own reset without one is refused (the command's form asks
// for it), while an unlock or a helpdesk agent's request needs none.
func TestReasons(t *testing.T) {
	var desk *fakeHelpdesk
	h := newHarness(t, withHelpdesk(&desk), withUnlock(false), func(c *workflow.Config, _ *workflow.Deps) { c.RequireReason = true })
	ctx := context.Background()
	if _, err := h.ask(workflow.Ask{By: "UEMP", For: "UEMP"}); workflow.ErrorCode(err) != workflow.CodeInvalidInput {
		t.Fatalf("naming oneself, no reason: %v", err)
	}
	onBehalf, err := h.ask(workflow.Ask{By: "UDESK", For: "UEMP"})
	if err != nil || onBehalf.Reason() != "" {
		t.Fatalf("a helpdesk request without a reason: %v", err)
	}
	if _, err := h.svc.Cancel(ctx, "UEMP"); err != nil {
		t.Fatal(err)
	}
	h.lock("alice", workflow.Lockout{Known: true, Locked: true})
	if u, err := h.ask(workflow.Ask{By: "UEMP", Action: workflow.ActionUnlock}); err != nil || u.Status != workflow.StatusCompleted {
		t.Fatalf("an unlock without a reason: %v", err)
	}
	if _, err := h.svc.Submit(ctx, "UEMP"); workflow.ErrorCode(err) != workflow.CodeInvalidInput {
		t.Fatalf("no reason with REQUIRE_REASON: %v", err)
	}
	if _, err := h.svc.SubmitWithReason(ctx, "UEMP", " \n\u200b\u202e "); workflow.ErrorCode(err) != workflow.CodeInvalidInput {
		t.Fatalf("an invisible reason: %v", err)
	}
	r, err := h.svc.SubmitWithReason(ctx, "UEMP", "  Locked out\r\nafter\tholidays \u202eevil\u200b  ")
	if err != nil {
		t.Fatal(err)
	}
	if r.Reason() != "Locked out after holidays evil" {
		t.Fatalf("reason %q", r.Reason())
	}
	long := strings.Repeat("é", 400)
	denied, err := h.svc.Deny(ctx, r.ID, "UAPP1", long)
	if err != nil {
		t.Fatal(err)
	}
	if got := denied.DenialReason(); got != strings.Repeat("é", workflow.MaxReason) || denied.Status != workflow.StatusDenied {
		t.Fatalf("denial reason of %d characters, status %s", len([]rune(got)), denied.Status)
	}
	all, _ := h.records(workflow.AuditQuery{})
	recs := slices.DeleteFunc(all, func(rec workflow.AuditRecord) bool { return rec.RequestID != r.ID })
	if len(recs) != 2 || recs[0].Event != "requested" || recs[1].Event != "denied" || recs[0].Reason != r.Reason() || recs[1].Reason != denied.DenialReason() {
		t.Fatalf("audit %+v", recs)
	}
}

// fakeDisabler records the accounts it disabled, or fails.
type fakeDisabler struct {
	disabled []string
	err      error
}

func (d *fakeDisabler) Disable(_ context.Context, a workflow.Account) (bool, error) {
	if d.err != nil {
		return false, d.err
	}
	d.disabled = append(d.disabled, a.UserName)
	return len(d.disabled) == 1, nil
}

// fakeNotices records the completions it was told.
type fakeNotices struct{ completed []string }

func (n *fakeNotices) Completed(r *workflow.Request) { n.completed = append(n.completed, r.ID) }

// TestThisWasntMe: only the requester, only after a completed reset, only
// once; with a Disabler the account is disabled and that is recorded, as
// is a failure to disable.
func TestThisWasntMe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disabler *fakeDisabler
		want     []workflow.EventKind
		code     workflow.Code
	}{
		{"alert only", nil, []workflow.EventKind{workflow.EventReported}, ""},
		{"disables", &fakeDisabler{}, []workflow.EventKind{workflow.EventReported, workflow.EventDisabled}, ""},
		{"may not disable", &fakeDisabler{err: workflow.Wrap(workflow.CodeDirectoryMisconfigured, errors.New("no right"), "disable")},
			[]workflow.EventKind{workflow.EventReported, workflow.EventDisabled}, workflow.CodeDirectoryMisconfigured},
	} {
		t.Run(tc.name, func(t *testing.T) {
			notices := &fakeNotices{}
			h := newHarness(t, func(_ *workflow.Config, d *workflow.Deps) {
				if tc.disabler != nil {
					d.Disabler = tc.disabler
				}
				d.Notices = notices
			})
			ctx := context.Background()
			r := h.submit(t)
			if _, err := h.svc.Report(ctx, r.ID, "UEMP"); workflow.ErrorCode(err) != workflow.CodeWrongState {
				t.Fatalf("report before the reset: %v", err)
			}
			if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", true); err != nil {
				t.Fatal(err)
			}
			if _, err := h.reveal(r.ID, "UEMP"); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(notices.completed, []string{r.ID}) {
				t.Fatalf("notices told %v", notices.completed)
			}
			if got, err := h.svc.Report(ctx, r.ID, "UAPP1"); workflow.ErrorCode(err) != workflow.CodeNotRequester || got != nil {
				t.Fatalf("report by someone else: %v, %v", got, err)
			}
			got, err := h.svc.Report(ctx, r.ID, "UEMP")
			if err != nil {
				t.Fatal(err)
			}
			added := kinds(got)[len(kinds(r))+3:] // after approved, revealed, completed
			if !slices.Equal(added, tc.want) || got.LastEvent().Code != tc.code {
				t.Fatalf("events after the report %v (code %q)", added, got.LastEvent().Code)
			}
			if _, err := h.svc.Report(ctx, r.ID, "UEMP"); workflow.ErrorCode(err) != workflow.CodeAlreadyReported {
				t.Fatalf("a second report: %v", err)
			}
			if tc.disabler != nil && tc.disabler.err == nil && !slices.Equal(tc.disabler.disabled, []string{"alice"}) {
				t.Fatalf("disabled %v", tc.disabler.disabled)
			}
			if err := h.svc.RecordNotice(ctx, r.ID, workflow.CodeNoticeFailed, "connect: refused"); err != nil {
				t.Fatal(err)
			}
			if err := h.svc.RecordNotice(ctx, r.ID, "", "again"); workflow.ErrorCode(err) != workflow.CodeWrongState {
				t.Fatalf("a second notice record: %v", err)
			}
			recs, _ := h.records(workflow.AuditQuery{})
			if last := recs[len(recs)-1]; last.Event != "notified" || last.Code != workflow.CodeNoticeFailed {
				t.Fatalf("audit %+v", last)
			}
		})
	}
}

func TestCleanReason(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"  a  b ":                   "a b",
		"line\nbreak\u2028sep":      "line break sep",
		"<@U123> *bold* \u202egnp.": "<@U123> *bold* gnp.", // escaped by each message, not here
		"\x00\x1b[31mred":           "[31mred",
	} {
		if got := workflow.CleanReason(in); got != want {
			t.Errorf("CleanReason(%q) = %q, want %q", in, got, want)
		}
	}
	if got := workflow.CleanReason(strings.Repeat("a ", 400)); len(got) != workflow.MaxReason-1 || strings.HasSuffix(got, " ") {
		t.Errorf("a long reason cut to %d: %q", len(got), got[len(got)-5:])
	}
}
