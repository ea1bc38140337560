package workflow

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func pending() *Request {
	return &Request{
		ID: NewID(), Requester: "UEMP", Account: Account{UserName: "alice"},
		Approvers: []string{"UAPP1", "UAPP2"}, Status: StatusPending,
		CreatedAt: t0, DecideBy: t0.Add(30 * time.Minute),
		Events: []Event{{At: t0, Kind: EventRequested, Actor: "UEMP"}},
	}
}

func approved() *Request {
	r := pending()
	if err := r.Decide("UAPP1", true, t0.Add(time.Minute), 15*time.Minute); err != nil {
		panic(err)
	}
	return r
}

func TestStateMachineAllowsOnlyListedMoves(t *testing.T) {
	all := []Status{StatusPending, StatusApproved, StatusResetting, StatusCompleted, StatusFailed, StatusDenied, StatusExpired, StatusCancelled}
	allowed := map[[2]Status]bool{
		{StatusPending, StatusApproved}: true, {StatusPending, StatusDenied}: true,
		{StatusPending, StatusExpired}: true, {StatusPending, StatusCancelled}: true,
		{StatusPending, StatusResetting}:  true, // an unlock that needs no decision (BeginUnlock only)
		{StatusApproved, StatusResetting}: true, {StatusApproved, StatusExpired}: true,
		{StatusApproved, StatusCancelled}: true, {StatusResetting, StatusCompleted}: true,
		{StatusResetting, StatusFailed}: true, {StatusResetting, StatusApproved}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := CanMove(from, to); got != allowed[[2]Status{from, to}] {
				t.Errorf("CanMove(%s, %s) = %v", from, to, got)
			}
		}
		if from.Terminal() && len(transitions[from]) > 0 {
			t.Errorf("terminal %s has moves", from)
		}
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		req     func() *Request
		actor   string
		approve bool
		at      time.Time
		want    Code
		status  Status
	}{
		{"approver approves", pending, "UAPP1", true, t0.Add(time.Minute), "", StatusApproved},
		{"approver denies", pending, "UAPP2", false, t0.Add(time.Minute), "", StatusDenied},
		{"requester approves own", func() *Request { r := pending(); r.Approvers = append(r.Approvers, "UEMP"); return r }, "UEMP", true, t0.Add(time.Minute), CodeSelfApproval, StatusPending},
		{"stranger approves", pending, "USTRANGER", true, t0.Add(time.Minute), CodeNotApprover, StatusPending},
		{"empty actor", pending, "", true, t0.Add(time.Minute), CodeNotApprover, StatusPending},
		{"second decision", approved, "UAPP2", false, t0.Add(2 * time.Minute), CodeDecided, StatusApproved},
		{"after the window", pending, "UAPP1", true, t0.Add(30 * time.Minute), CodeExpired, StatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			events := len(r.Events)
			err := r.Decide(tt.actor, tt.approve, tt.at, 15*time.Minute)
			if ErrorCode(err) != tt.want {
				t.Fatalf("error %v, want code %q", err, tt.want)
			}
			if r.Status != tt.status {
				t.Fatalf("status %s, want %s", r.Status, tt.status)
			}
			if err != nil && len(r.Events) != events {
				t.Fatalf("a refused decision added events")
			}
			if err == nil && (r.DecidedBy != tt.actor || !r.DecidedAt.Equal(tt.at)) {
				t.Fatalf("decision not recorded: %+v", r)
			}
			if err == nil && tt.approve && !r.RevealBy.Equal(tt.at.Add(15*time.Minute)) {
				t.Fatalf("reveal window %v", r.RevealBy)
			}
		})
	}
}

func TestBeginResetOnlyRequesterInWindow(t *testing.T) {
	at := t0.Add(2 * time.Minute)
	if err := pending().BeginReset("UEMP", "me", at, at.Add(time.Minute)); ErrorCode(err) != CodeWrongState {
		t.Fatalf("reveal while pending: %v", err)
	}
	if err := approved().BeginReset("UAPP1", "me", at, at.Add(time.Minute)); ErrorCode(err) != CodeNotRequester {
		t.Fatalf("reveal by approver: %v", err)
	}
	r := approved()
	if err := r.BeginReset("UEMP", "me", r.RevealBy, r.RevealBy.Add(time.Minute)); ErrorCode(err) != CodeExpired {
		t.Fatalf("reveal after window: %v", err)
	}
	if err := r.BeginReset("UEMP", "me", at, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusResetting || r.ResetOwner != "me" || r.RevealTries != 1 {
		t.Fatalf("%+v", r)
	}
	if err := r.BeginReset("UEMP", "other", at, at.Add(time.Minute)); ErrorCode(err) != CodeWrongState {
		t.Fatalf("second reveal: %v", err)
	}
	if err := r.Complete("other", at, "", ""); ErrorCode(err) != CodeConflict {
		t.Fatalf("complete by non-owner: %v", err)
	}
	if err := r.Complete("me", at, "", ""); err != nil || r.Status != StatusCompleted || !r.EndedAt.Equal(at) {
		t.Fatalf("complete: %v %+v", err, r)
	}
	if err := r.BeginReset("UEMP", "me", at, at.Add(time.Minute)); ErrorCode(err) != CodeDecided {
		t.Fatalf("reveal after completion: %v", err)
	}
}

func TestInterruptOffersRevealAgainThenFails(t *testing.T) {
	r := approved()
	at := t0.Add(3 * time.Minute)
	for try := 1; try <= 3; try++ {
		if err := r.BeginReset("UEMP", "me", at, at.Add(time.Minute)); err != nil {
			t.Fatalf("try %d: %v", try, err)
		}
		if err := r.Interrupt("", at.Add(30*time.Second), 15*time.Minute, 3, CodeInterrupted, "lost"); ErrorCode(err) != CodeConflict {
			t.Fatalf("sweeper interrupted a live lease: %v", err)
		}
		at = at.Add(time.Minute)
		if err := r.Interrupt("", at, 15*time.Minute, 3, CodeInterrupted, "lost"); err != nil {
			t.Fatal(err)
		}
		if try < 3 && (r.Status != StatusApproved || !r.RevealBy.Equal(at.Add(15*time.Minute)) || r.LastEvent().Kind != EventInterrupted) {
			t.Fatalf("try %d: %+v", try, r)
		}
	}
	if r.Status != StatusFailed || r.Failure != CodeInterrupted {
		t.Fatalf("after 3 interrupted reveals: %s %s", r.Status, r.Failure)
	}
}

func TestCancel(t *testing.T) {
	if err := pending().Cancel("UAPP1", t0); ErrorCode(err) != CodeNotRequester {
		t.Fatalf("cancel by other: %v", err)
	}
	r := approved()
	if err := r.Cancel("UEMP", t0.Add(5*time.Minute)); err != nil || r.Status != StatusCancelled {
		t.Fatalf("%v %s", err, r.Status)
	}
	if err := r.Cancel("UEMP", t0); ErrorCode(err) != CodeDecided {
		t.Fatalf("cancel twice: %v", err)
	}
	r = approved()
	if err := r.BeginReset("UEMP", "me", t0.Add(2*time.Minute), t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Cancel("UEMP", t0.Add(2*time.Minute)); ErrorCode(err) != CodeWrongState {
		t.Fatalf("cancel during reset: %v", err)
	}
}

func TestExpireIfDueAndDeadlines(t *testing.T) {
	r := pending()
	if d, ok := r.NextDeadline(); !ok || !d.Equal(r.DecideBy) {
		t.Fatalf("pending deadline %v %v", d, ok)
	}
	if r.ExpireIfDue(r.DecideBy.Add(-time.Nanosecond)) {
		t.Fatal("expired early")
	}
	if !r.ExpireIfDue(r.DecideBy) || r.Status != StatusExpired {
		t.Fatal("did not expire")
	}
	if _, ok := r.NextDeadline(); ok {
		t.Fatal("an ended request is still due")
	}

	a := approved()
	if d, ok := a.NextDeadline(); !ok || !d.Equal(a.RevealBy) {
		t.Fatalf("approved deadline %v", d)
	}
	if !a.ExpireIfDue(a.RevealBy) || !strings.Contains(a.LastEvent().Detail, "reveal") {
		t.Fatalf("approved did not expire: %+v", a.LastEvent())
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if !ValidID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "R", "../../etc", "Rabc", strings.Repeat("R", 25), "r" + NewID()[1:], NewID() + "x", "R" + strings.Repeat("A", 24)} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestValidateUserName(t *testing.T) {
	good := []string{"alice", "a", "john.smith", "o'brien", "user_1-2", strings.Repeat("x", 64), "Zoë"}
	for _, n := range good {
		if err := ValidateUserName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	bad := []string{"", strings.Repeat("x", 65), " alice", "alice ", "a\tb", "a\x00b", "\xff"}
	for _, c := range `\"/[]:;|=,+*?<>@` {
		bad = append(bad, "al"+string(c)+"ice")
	}
	for _, n := range bad {
		if err := ValidateUserName(n); ErrorCode(err) != CodeInvalidUserName {
			t.Errorf("%q: %v", n, err)
		}
	}
}

func unlockRequest(approvers ...string) *Request {
	r := pending()
	r.Action, r.Approvers = ActionUnlock, approvers
	return r
}

// TestBeginUnlock: an unlock begins without a click, at once when nobody
// has to decide, else only once approved; a reset never begins that way,
// and an unlock has no Reveal.
func TestBeginUnlock(t *testing.T) {
	at := t0.Add(time.Minute)
	r := unlockRequest()
	if err := r.BeginUnlock("me", at, at.Add(time.Minute)); err != nil || r.Status != StatusResetting || r.ResetOwner != "me" || r.LastEvent().Kind != EventUnlocking {
		t.Fatalf("unlock without approvers: %v, %+v", err, r)
	}
	if err := r.BeginUnlock("other", at, at.Add(time.Minute)); ErrorCode(err) != CodeWrongState {
		t.Fatalf("second begin: %v", err)
	}
	if err := unlockRequest("UAPP1").BeginUnlock("me", at, at.Add(time.Minute)); ErrorCode(err) != CodeWrongState {
		t.Fatalf("an unlock with approvers began before a decision: %v", err)
	}
	if err := unlockRequest().BeginUnlock("me", t0.Add(30*time.Minute), t0.Add(31*time.Minute)); ErrorCode(err) != CodeExpired {
		t.Fatalf("an unlock after its window: %v", err)
	}
	a := unlockRequest("UAPP1")
	if err := a.Decide("UAPP1", true, at, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.BeginReset("UEMP", "me", at, at.Add(time.Minute)); ErrorCode(err) != CodeWrongState {
		t.Fatalf("Reveal on an unlock: %v", err)
	}
	if err := a.BeginUnlock("me", at, at.Add(time.Minute)); err != nil || a.Status != StatusResetting {
		t.Fatalf("approved unlock: %v %s", err, a.Status)
	}
	if err := pending().BeginUnlock("me", at, at.Add(time.Minute)); ErrorCode(err) != CodeWrongState {
		t.Fatalf("BeginUnlock on a reset: %v", err)
	}
	// The sweeper ends an unlock whose replica died: nobody can click again.
	if err := a.Interrupt("", at.Add(time.Minute), 15*time.Minute, 3, CodeInterrupted, "lost"); err != nil {
		t.Fatal(err)
	}
	if a.Status != StatusFailed || a.Failure != CodeUnlockInterrupted {
		t.Fatalf("interrupted unlock: %s %s", a.Status, a.Failure)
	}
}

// TestCompletedUnlock: a completed unlock is no reset: it is not added to
// the account's reset history, and "This wasn't me" (a reset's) refuses it.
func TestCompletedUnlock(t *testing.T) {
	at := t0.Add(time.Minute)
	r := unlockRequest()
	if err := r.BeginUnlock("me", at, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := len(r.Events)
	if err := r.Complete("me", at, "", ""); err != nil || r.Status != StatusCompleted {
		t.Fatalf("complete: %v %s", err, r.Status)
	}
	if _, ok := CompletedAt(r, before); ok {
		t.Error("a completed unlock counts as a reset")
	}
	if err := r.Report("UEMP", at); ErrorCode(err) != CodeWrongState {
		t.Errorf("report of an unlock: %v", err)
	}
	reset := approved()
	if err := reset.BeginReset("UEMP", "me", at, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before = len(reset.Events)
	if err := reset.Complete("me", at, "", ""); err != nil {
		t.Fatal(err)
	}
	if got, ok := CompletedAt(reset, before); !ok || !got.Equal(at) {
		t.Errorf("a completed reset: %v %v", got, ok)
	}
}

// TestRecipient: the employee reveals their own reset; for an employee
// with no chat account, only the agent who asked may, and the employee's
// key is never a chat user.
func TestRecipient(t *testing.T) {
	at := t0.Add(2 * time.Minute)
	r := approved()
	r.Agent = "UAGENT"
	if r.Recipient() != "UEMP" || !r.InChat() || r.EmployeeEmail() != "" {
		t.Fatalf("in chat: recipient %s", r.Recipient())
	}
	if err := r.BeginReset("UAGENT", "me", at, at.Add(time.Minute)); ErrorCode(err) != CodeNotRequester {
		t.Fatalf("the agent revealed the employee's password: %v", err)
	}
	n := approved()
	n.Requester, n.Agent = MailRequester(" Erin@Corp.Example.com "), "UAGENT"
	if n.InChat() || n.EmployeeEmail() != "erin@corp.example.com" || n.Recipient() != "UAGENT" {
		t.Fatalf("no chat: requester %q recipient %q", n.Requester, n.Recipient())
	}
	for _, actor := range []string{"", n.Requester, "UAPP1"} {
		if err := n.BeginReset(actor, "me", at, at.Add(time.Minute)); ErrorCode(err) != CodeNotRequester {
			t.Fatalf("%q revealed: %v", actor, err)
		}
	}
	if err := n.BeginReset("UAGENT", "me", at, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if Counter("UEMP", ActionUnlock) == Counter("UEMP", ActionReset) || Counter("UEMP", "") != Counter("UEMP", ActionReset) {
		t.Fatal("counters of different actions meet")
	}
}
