package workflow_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// approved submits alice's request and has UAPP1 approve it.
func (h *harness) approved(t *testing.T) *workflow.Request {
	t.Helper()
	r := h.submit(t)
	if _, err := h.svc.Decide(context.Background(), r.ID, "UAPP1", true); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestGuardAtRevealFailsWithoutReset(t *testing.T) {
	for _, code := range []workflow.Code{workflow.CodeAccountDisabled, workflow.CodeProtectedGroup, workflow.CodeMachineAccount, workflow.CodeOutsideOU, workflow.CodeNoAccount, workflow.CodeProtectedAccount} {
		t.Run(string(code), func(t *testing.T) {
			h := newHarness(t)
			r := h.approved(t)
			// The account changed in the directory between approval and Reveal.
			h.accts.set(func(f *fakeAccounts) { f.refuse["alice"] = code })
			if _, err := h.reveal(r.ID, "UEMP"); err != nil {
				t.Fatal(err)
			}
			got := h.get(t, r.ID)
			if got.Status != workflow.StatusFailed || got.Failure != code {
				t.Fatalf("status %s failure %s, want failed %s", got.Status, got.Failure, code)
			}
			if n := len(h.dir.passwords()); n != 0 {
				t.Fatalf("%d resets despite the guard", n)
			}
			if d := got.LastEvent().Detail; !strings.Contains(d, "checked again at Reveal") {
				t.Errorf("detail %q", d)
			}
		})
	}
}

func TestLookupOutageAtRevealPostpones(t *testing.T) {
	h := newHarness(t)
	r := h.approved(t)
	revealBy := h.get(t, r.ID).RevealBy
	h.accts.set(func(f *fakeAccounts) { f.down = true })
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	got := h.get(t, r.ID)
	if got.Status != workflow.StatusApproved || got.LastEvent().Kind != workflow.EventPostponed || got.LastEvent().Code != workflow.CodeLookupUnavailable {
		t.Fatalf("after an outage at Reveal: %s, %+v", got.Status, got.LastEvent())
	}
	if !got.RevealBy.Equal(revealBy) || got.RevealTries != 0 {
		t.Fatalf("postponing changed the window (%s -> %s) or counted a try (%d)", revealBy, got.RevealBy, got.RevealTries)
	}
	if n := len(h.dir.passwords()); n != 0 {
		t.Fatalf("%d resets during the outage", n)
	}
	h.accts.set(func(f *fakeAccounts) { f.down = false })
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Status != workflow.StatusCompleted {
		t.Fatalf("after the outage: %s", got.Status)
	}
}

func TestLookupOutageAtSubmit(t *testing.T) {
	h := newHarness(t)
	h.accts.set(func(f *fakeAccounts) { f.down = true })
	if _, err := h.svc.Submit(context.Background(), "UEMP"); workflow.ErrorCode(err) != workflow.CodeLookupUnavailable {
		t.Fatalf("got %v", err)
	}
	h.svc.Wait()
	if _, err := h.store.Open(context.Background(), "UEMP"); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Fatalf("a request was stored during the outage: %v", err)
	}
	if f := h.note.refused(); len(f) != 0 {
		t.Fatalf("an outage was audited as a refusal: %+v", f)
	}
}

func TestManagerApproval(t *testing.T) {
	people := fakeIdentity{
		"UEMP":  {Email: "alice@corp.example.com"},
		"UMGR":  {Email: "maria@corp.example.com"},
		"UAPP1": {Email: "bob@corp.example.com"},
	}
	for _, tc := range []struct {
		name    string
		manager *workflow.Manager
		want    []string
		asked   workflow.AskedAs
	}{
		{"manager on chat", &workflow.Manager{UserName: "maria", Email: "maria@corp.example.com"}, []string{"UMGR"}, workflow.AskedManager},
		{"no manager", nil, []string{"UAPP1", "UAPP2"}, workflow.AskedNoManager},
		{"manager disabled", &workflow.Manager{UserName: "maria", Email: "maria@corp.example.com", Disabled: true}, []string{"UAPP1", "UAPP2"}, workflow.AskedManagerDisabled},
		{"manager not on chat", &workflow.Manager{UserName: "zed", Email: "zed@corp.example.com"}, []string{"UAPP1", "UAPP2"}, workflow.AskedManagerNotInChat},
		{"manager without email", &workflow.Manager{UserName: "zed"}, []string{"UAPP1", "UAPP2"}, workflow.AskedManagerNotInChat},
		{"own manager", &workflow.Manager{UserName: "alice", Email: "alice@corp.example.com"}, []string{"UAPP1", "UAPP2"}, workflow.AskedManagerIsRequester},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *workflow.Config, d *workflow.Deps) { c.ManagerApproval, d.Identity = true, people })
			h.accts.set(func(f *fakeAccounts) {
				f.managers = map[string]workflow.Manager{}
				if tc.manager != nil {
					f.managers["alice"] = *tc.manager
				}
			})
			r := h.submit(t)
			if !slices.Equal(r.Approvers, tc.want) || r.AskedAs != tc.asked {
				t.Fatalf("approvers %v asked as %q, want %v %q", r.Approvers, r.AskedAs, tc.want, tc.asked)
			}
		})
	}
}

func TestRefusalsAreAuditedOncePerQuietPeriod(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for range 3 {
		if _, err := h.svc.Submit(ctx, "UADMIN"); workflow.ErrorCode(err) != workflow.CodeProtectedAccount {
			t.Fatalf("got %v", err)
		}
	}
	h.svc.Wait()
	f := h.note.refused()
	if len(f) != 1 || f[0].User != "UADMIN" || f[0].Account != "administrator" || f[0].Code != workflow.CodeProtectedAccount {
		t.Fatalf("refusals %+v", f)
	}
	if _, err := h.svc.Submit(ctx, "UNOBODY"); workflow.ErrorCode(err) != workflow.CodeUnknownUser {
		t.Fatalf("got %v", err)
	}
	h.svc.Wait()
	if f := h.note.refused(); len(f) != 2 || f[1].Account != "" || f[1].Code != workflow.CodeUnknownUser {
		t.Fatalf("refusals %+v", f)
	}
}

func TestForceChangeAtLogon(t *testing.T) {
	force := func(c *workflow.Config, _ *workflow.Deps) { c.ForceChangeAtLogon = true }
	h := newHarness(t, force)
	r := h.approved(t)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	got := h.get(t, r.ID)
	if got.Status != workflow.StatusCompleted || got.LastEvent().Code != "" || !slices.Equal(h.accts.expired, []string{"alice"}) || !slices.Equal(h.display.musts, []bool{true}) {
		t.Fatalf("status %s event %+v expired %v must %v", got.Status, got.LastEvent(), h.accts.expired, h.display.musts)
	}

	h = newHarness(t, force)
	h.accts.expireErr = workflow.Wrap(workflow.CodeLookupUnavailable, errors.New("insufficient access"), "pwdLastSet")
	r = h.approved(t)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	got = h.get(t, r.ID)
	if got.Status != workflow.StatusCompleted || got.LastEvent().Code != workflow.CodeForceChangeFailed || !strings.Contains(got.LastEvent().Detail, "insufficient access") {
		t.Fatalf("status %s event %+v", got.Status, got.LastEvent())
	}
	if len(h.display.shown) != 1 || !slices.Equal(h.display.musts, []bool{false}) {
		t.Fatalf("delivered %d, must change %v", len(h.display.shown), h.display.musts)
	}
}

// countingIdentity counts the lookups that reach the chat.
type countingIdentity struct {
	workflow.Identity
	mu sync.Mutex
	n  int
}

func (c *countingIdentity) Person(ctx context.Context, user string) (workflow.Person, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Identity.Person(ctx, user)
}

func (c *countingIdentity) lookups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestRateLimitBeforeAnyLookup(t *testing.T) {
	var people *countingIdentity
	h := newHarness(t, func(c *workflow.Config, d *workflow.Deps) {
		c.Limit = workflow.Limit{Max: 1, Window: time.Hour}
		people = &countingIdentity{Identity: d.Identity}
		d.Identity = people
	})
	ctx := context.Background()
	h.submit(t)
	if _, err := h.svc.Cancel(ctx, "UEMP"); err != nil {
		t.Fatal(err)
	}
	h.svc.Wait()
	before := people.lookups()
	if _, err := h.svc.Submit(ctx, "UEMP"); workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Fatalf("second request in the window: %v", err)
	}
	if people.lookups() != before {
		t.Fatal("a request over the limit asked the chat who the user is")
	}
	h.svc.Wait()
	if f := h.note.refused(); len(f) != 1 || f[0].Code != workflow.CodeRateLimited {
		t.Fatalf("refusals %+v", f)
	}
}

func TestAuditRecordsEveryStepAndRefusal(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	r := h.approved(t)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := h.svc.Submit(ctx, "UADMIN"); workflow.ErrorCode(err) != workflow.CodeProtectedAccount {
			t.Fatal(err)
		}
	}
	h.svc.Wait()
	all, err := h.records(workflow.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range all {
		got = append(got, rec.Event+":"+string(rec.Status)+":"+string(rec.Code))
		if rec.DirectoryID != "d-1234567890" || rec.User == "" {
			t.Errorf("record %+v", rec)
		}
	}
	want := []string{"requested:pending:", "approved:approved:", "revealed:resetting:", "completed:completed:",
		"refused::protected_account", "refused::protected_account"}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log %v, want %v", got, want)
	}
	if recs, _ := h.records(workflow.AuditQuery{User: "ALICE"}); len(recs) != 4 || recs[1].Approver != "UAPP1" {
		t.Errorf("by account: %+v", recs)
	}
	if recs, _ := h.records(workflow.AuditQuery{Status: workflow.EventRefused}); len(recs) != 2 || recs[0].Account != "administrator" {
		t.Errorf("refused: %+v", recs)
	}
	if recs, _ := h.records(workflow.AuditQuery{Since: t0.Add(time.Minute)}); len(recs) != 0 {
		t.Errorf("since a later time: %+v", recs)
	}
}

// TestAccountDerivedAgainAtReveal: at Reveal the account comes from the
// requester again, not from the store; anything but the same directory
// object, still allowed, resets nothing.
func TestAccountDerivedAgainAtReveal(t *testing.T) {
	const guid = "a8b4cf38-c9f2-48b3-96f8-0123456789ab"
	for _, tc := range []struct {
		name   string
		change func(h *harness)
		want   workflow.Code // "" for completed
		reset  string
	}{
		{"same object", func(*harness) {}, "", "alice"},
		{"same object renamed", func(h *harness) {
			h.accts.set(func(f *fakeAccounts) {
				f.byEmail["alice@corp.example.com"] = workflow.Account{UserName: "asmith", Email: "alice@corp.example.com", GUID: guid}
			})
		}, "", "asmith"},
		{"another object with the same name", func(h *harness) {
			h.accts.set(func(f *fakeAccounts) {
				f.byEmail["alice@corp.example.com"] = workflow.Account{UserName: "alice", Email: "alice@corp.example.com", GUID: "0000-another"}
			})
		}, workflow.CodeAccountChanged, ""},
		{"email now another person's", func(h *harness) { h.people["UEMP"] = workflow.Person{Email: "bob@corp.example.com"} }, workflow.CodeAccountChanged, ""},
		{"no longer in chat", func(h *harness) { delete(h.people, "UEMP") }, workflow.CodeUnknownUser, ""},
		{"account gone", func(h *harness) {
			h.accts.set(func(f *fakeAccounts) { delete(f.byEmail, "alice@corp.example.com") })
		}, workflow.CodeNoAccount, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.accts.set(func(f *fakeAccounts) {
				f.byEmail["alice@corp.example.com"] = workflow.Account{UserName: "alice", Email: "alice@corp.example.com", GUID: guid}
			})
			r := h.approved(t)
			tc.change(h)
			if _, err := h.reveal(r.ID, "UEMP"); err != nil {
				t.Fatal(err)
			}
			got := h.get(t, r.ID)
			resets := h.dir.resetUsers()
			if tc.want == "" {
				if got.Status != workflow.StatusCompleted || len(resets) != 1 || resets[0] != tc.reset {
					t.Fatalf("status %s, resets %v; want %s reset", got.Status, resets, tc.reset)
				}
				return
			}
			if got.Status != workflow.StatusFailed || got.Failure != tc.want || len(resets) != 0 {
				t.Fatalf("status %s failure %s resets %v; want failed %s and no reset", got.Status, got.Failure, resets, tc.want)
			}
		})
	}
}

// TestApproverCheckedAtClick: an approver who was eligible when the
// request was made but has since been deactivated in chat, or disabled in
// the directory, cannot decide; the request stays pending for the others.
func TestApproverCheckedAtClick(t *testing.T) {
	for name, change := range map[string]func(h *harness){
		"deactivated in chat": func(h *harness) {
			h.people["UAPP1"] = workflow.Person{Email: "bob@corp.example.com", Name: "deactivated"}
		},
		"disabled in the directory": func(h *harness) {
			h.accts.set(func(f *fakeAccounts) { f.disabled = map[string]bool{"bob@corp.example.com": true} })
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			r := h.submit(t)
			change(h)
			for _, approve := range []bool{true, false} {
				if _, err := h.svc.Decide(context.Background(), r.ID, "UAPP1", approve); workflow.ErrorCode(err) != workflow.CodeApproverInactive {
					t.Fatalf("Decide(approve=%v) by an inactive approver: %v, want code %s", approve, err, workflow.CodeApproverInactive)
				}
			}
			if got := h.get(t, r.ID); got.Status != workflow.StatusPending || got.DecidedBy != "" {
				t.Fatalf("after the refused clicks: %s decided by %q", got.Status, got.DecidedBy)
			}
			if _, err := h.svc.Decide(context.Background(), r.ID, "UAPP2", true); err != nil {
				t.Fatalf("another approver: %v", err)
			}
		})
	}
	// The directory down: the click is not taken, and says why.
	h := newHarness(t)
	r := h.submit(t)
	h.accts.set(func(f *fakeAccounts) { f.down = true })
	if _, err := h.svc.Decide(context.Background(), r.ID, "UAPP1", true); workflow.ErrorCode(err) != workflow.CodeLookupUnavailable {
		t.Fatalf("Decide with the directory down: %v", err)
	}
	if got := h.get(t, r.ID); got.Status != workflow.StatusPending {
		t.Fatalf("decided while the approver could not be checked: %s", got.Status)
	}
}
