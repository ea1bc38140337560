package workflow_test

import (
	"context"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// attempts returns how many of user's attempts count against the limit now.
func (h *harness) attempts(t *testing.T, user string) int {
	t.Helper()
	h.svc.Wait()
	_, n, err := h.store.Standing(context.Background(), user, workflow.ActionReset, h.clock.Now().Add(-h.svc.Config().Limit.Window))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRefusalsCountTowardsTheLimit: refusals the employee caused (here a
// protected account) count like created requests, so that nobody can
// probe the guards without limit; the rate-limit refusals that follow do
// not count (else one stays limited for ever), and the attempts leave the
// window as requests do.
func TestRefusalsCountTowardsTheLimit(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for i := range 3 {
		if _, err := h.svc.Submit(ctx, "UADMIN"); workflow.ErrorCode(err) != workflow.CodeProtectedAccount {
			t.Fatalf("attempt %d: %v, want code %s", i+1, err, workflow.CodeProtectedAccount)
		}
		h.clock.Add(time.Minute)
	}
	if n := h.attempts(t, "UADMIN"); n != 3 {
		t.Fatalf("%d attempts counted after 3 refusals, want 3", n)
	}
	for range 5 {
		if _, err := h.svc.Submit(ctx, "UADMIN"); workflow.ErrorCode(err) != workflow.CodeRateLimited {
			t.Fatalf("an attempt past the limit: %v, want code %s", err, workflow.CodeRateLimited)
		}
	}
	if n := h.attempts(t, "UADMIN"); n != 3 {
		t.Fatalf("%d attempts counted after 5 rate-limited ones, want still 3", n)
	}
	recs, _ := h.records(workflow.AuditQuery{User: "UADMIN"})
	if len(recs) != 8 {
		t.Errorf("%d refusals in the audit log, want every one of the 8", len(recs))
	}
	// The first refusal leaves the window: one more try, which counts.
	h.clock.Add(24*time.Hour - 3*time.Minute + 30*time.Second)
	if _, err := h.svc.Submit(ctx, "UADMIN"); workflow.ErrorCode(err) != workflow.CodeProtectedAccount {
		t.Fatalf("an attempt once the first refusal left the window: %v, want code %s", err, workflow.CodeProtectedAccount)
	}
	if _, err := h.svc.Submit(ctx, "UADMIN"); workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Fatalf("the attempt after it: %v, want code %s", err, workflow.CodeRateLimited)
	}
	// Someone else is not affected.
	if _, err := h.svc.Submit(ctx, "UEMP"); err != nil {
		t.Fatalf("another employee: %v", err)
	}
}

// TestRefusalsNotTheEmployeesDoingDoNotCount: an outage (the directory
// cannot be asked, the store is down) and an open request already there
// do not count against the limit.
func TestRefusalsNotTheEmployeesDoingDoNotCount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.accts.set(func(f *fakeAccounts) { f.down = true })
	for range 5 {
		if _, err := h.svc.Submit(ctx, "UEMP"); workflow.ErrorCode(err) != workflow.CodeLookupUnavailable {
			t.Fatalf("during a directory outage: %v", err)
		}
	}
	h.accts.set(func(f *fakeAccounts) { f.down = false })
	h.store.SetDown(true)
	for range 5 {
		if _, err := h.svc.Submit(ctx, "UEMP"); workflow.ErrorCode(err) != workflow.CodeUnavailable {
			t.Fatalf("during a store outage: %v", err)
		}
	}
	h.store.SetDown(false)
	if n := h.attempts(t, "UEMP"); n != 0 {
		t.Fatalf("%d attempts counted after outages, want 0", n)
	}
	h.submit(t)
	for range 5 {
		if _, err := h.svc.Submit(ctx, "UEMP"); workflow.ErrorCode(err) != workflow.CodeOpenRequest {
			t.Fatalf("with a request open: %v", err)
		}
	}
	if n := h.attempts(t, "UEMP"); n != 1 {
		t.Fatalf("%d attempts counted for one request and 5 tries while it was open, want 1", n)
	}
	if _, err := h.svc.Cancel(ctx, "UEMP"); err != nil {
		t.Fatal(err)
	}
	h.submit(t)
}
