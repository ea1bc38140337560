package workflow_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// locked is a lockout as the directory reports one that ends at t0+30m.
var locked = workflow.Lockout{Known: true, Locked: true, Since: t0.Add(-time.Minute), Until: t0.Add(30 * time.Minute)}

// withUnlock turns unlocks on, with approvers when approval is set.
func withUnlock(approval bool) option {
	return func(c *workflow.Config, _ *workflow.Deps) { c.Unlock, c.UnlockApproval = true, approval }
}

func (h *harness) lock(name string, l workflow.Lockout) {
	h.accts.set(func(f *fakeAccounts) {
		if f.locks == nil {
			f.locks = map[string]workflow.Lockout{}
		}
		f.locks[name] = l
	})
}

func (h *harness) unlock(t *testing.T, user string) (*workflow.Request, error) {
	t.Helper()
	return h.svc.Ask(context.Background(), workflow.Ask{By: user, Action: workflow.ActionUnlock})
}

// TestUnlockAtOnce: with UNLOCK_APPROVAL=none a locked account is unlocked
// by the command itself (one write, nothing asked of anyone), audited
// like a reset; the request is ended when Ask returns.
func TestUnlockAtOnce(t *testing.T) {
	h := newHarness(t, withUnlock(false))
	h.lock("alice", locked)
	r, err := h.unlock(t, "UEMP")
	if err != nil || r.Status != workflow.StatusCompleted || !r.IsUnlock() || len(r.Approvers) != 0 {
		t.Fatalf("unlock: %v, %+v", err, r)
	}
	if got := h.accts.unlocks(); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("unlocks %v", got)
	}
	if len(h.dir.passwords()) != 0 {
		t.Fatal("an unlock reset the password")
	}
	want := []workflow.EventKind{workflow.EventRequested, workflow.EventUnlocking, workflow.EventCompleted}
	if k := h.watch.told(); !slices.Equal(k, want) {
		t.Fatalf("events told %v, want %v", k, want)
	}
	recs, _ := h.records(workflow.AuditQuery{User: "UEMP"})
	if len(recs) != 3 || recs[2].Action != workflow.ActionUnlock || recs[2].Status != workflow.StatusCompleted {
		t.Fatalf("audit records %+v", recs)
	}
}

// TestUnlockNotLocked: an account the directory says is not locked gets
// its own answer; nothing is stored or written, the refusal is audited
// and counts against the unlock limit (it tells whether the account is
// locked), not against resets.
func TestUnlockNotLocked(t *testing.T) {
	h := newHarness(t, withUnlock(false))
	h.lock("alice", workflow.Lockout{Known: true})
	if _, err := h.unlock(t, "UEMP"); workflow.ErrorCode(err) != workflow.CodeNotLocked {
		t.Fatalf("unlock of an account that is not locked: %v", err)
	}
	if len(h.accts.unlocks()) != 0 {
		t.Fatal("an account that is not locked was written")
	}
	if _, err := h.store.Open(context.Background(), "UEMP"); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Fatalf("a request was stored: %v", err)
	}
	h.svc.Wait()
	if f := h.note.refused(); len(f) != 1 || f[0].Code != workflow.CodeNotLocked || f[0].Action != workflow.ActionUnlock || f[0].Account != "alice" {
		t.Fatalf("refusals told %+v", f)
	}
	ctx := context.Background()
	since := h.clock.Now().Add(-time.Hour)
	if _, n, _ := h.store.Standing(ctx, "UEMP", workflow.ActionUnlock, since); n != 1 {
		t.Fatalf("unlock attempts %d, want 1", n)
	}
	if _, n, _ := h.store.Standing(ctx, "UEMP", workflow.ActionReset, since); n != 0 {
		t.Fatalf("reset attempts %d, want 0", n)
	}
	// Not known (the attribute is not readable): the unlock goes ahead,
	// lockoutTime=0 being harmless, and the audit says why.
	h.lock("alice", workflow.Lockout{})
	r, err := h.unlock(t, "UEMP")
	if err != nil || r.Status != workflow.StatusCompleted || r.LastEvent().Detail == "" {
		t.Fatalf("unlock with the lockout unknown: %v %+v", err, r)
	}
}

// TestUnlockLimit: UNLOCK_LIMIT unlocks per employee per window, refusals
// they caused included; the reset limit is another count.
func TestUnlockLimit(t *testing.T) {
	h := newHarness(t, withUnlock(false), func(c *workflow.Config, _ *workflow.Deps) { c.UnlockLimit.Max = 2 })
	for i := range 2 {
		h.lock("alice", locked)
		if r, err := h.unlock(t, "UEMP"); err != nil || r.Status != workflow.StatusCompleted {
			t.Fatalf("unlock %d: %v", i+1, err)
		}
	}
	h.lock("alice", locked)
	if _, err := h.unlock(t, "UEMP"); workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Fatalf("3rd unlock: %v", err)
	}
	if n := len(h.accts.unlocks()); n != 2 {
		t.Fatalf("%d unlocks", n)
	}
	if r := h.submit(t); r.Status != workflow.StatusPending {
		t.Fatalf("a reset while unlocks are limited: %+v", r)
	}
	h.clock.Add(24 * time.Hour)
	if _, err := h.svc.Cancel(context.Background(), "UEMP"); err != nil {
		t.Fatal(err)
	}
	if r, err := h.unlock(t, "UEMP"); err != nil || r.Status != workflow.StatusCompleted {
		t.Fatalf("unlock a day later: %v", err)
	}
}

// TestUnlockWithApprovers: UNLOCK_APPROVAL=approvers asks the approvers;
// the approval unlocks at once (no Reveal), in the same change, so that
// racing approvals write once; a denial writes nothing.
func TestUnlockWithApprovers(t *testing.T) {
	h := newHarness(t, withUnlock(true))
	h.lock("alice", locked)
	ctx := context.Background()
	r, err := h.unlock(t, "UEMP")
	if err != nil || r.Status != workflow.StatusPending || slices.Contains(r.Approvers, "UEMP") || len(r.Approvers) != 2 {
		t.Fatalf("unlock request: %v %+v", err, r)
	}
	if len(h.accts.unlocks()) != 0 {
		t.Fatal("unlocked before approval")
	}
	if _, err := h.svc.Decide(ctx, r.ID, "UEMP", true); workflow.ErrorCode(err) != workflow.CodeSelfApproval {
		t.Fatalf("self approval: %v", err)
	}
	results := make(chan error, 4)
	for _, a := range []string{"UAPP1", "UAPP2", "UAPP1", "UAPP2"} {
		go func() { _, err := h.svc.Decide(ctx, r.ID, a, true); results <- err }()
	}
	won := 0
	for range 4 {
		if err := <-results; err == nil {
			won++
		} else if workflow.ErrorCode(err) != workflow.CodeDecided {
			t.Errorf("a losing approval: %v", err)
		}
	}
	got := h.get(t, r.ID)
	if won != 1 || got.Status != workflow.StatusCompleted || len(h.accts.unlocks()) != 1 {
		t.Fatalf("%d approvals won, status %s, unlocks %v", won, got.Status, h.accts.unlocks())
	}
	if _, err := h.reveal(r.ID, "UEMP"); workflow.ErrorCode(err) != workflow.CodeWrongState {
		t.Fatalf("Reveal on an unlock: %v", err)
	}
	h.lock("alice", locked)
	r, _ = h.unlock(t, "UEMP")
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP2", false); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Status != workflow.StatusDenied || len(h.accts.unlocks()) != 1 {
		t.Fatalf("denied unlock: %s, unlocks %v", got.Status, h.accts.unlocks())
	}
}

// TestUnlockGuardsAndRights: an account that may not be touched is
// neither unlocked when asked nor when it became so before the approval;
// without the right to write lockoutTime the request fails, saying until
// when the lockout lasts; a lockout that ran out meanwhile writes nothing.
func TestUnlockGuardsAndRights(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, withUnlock(true))
	h.lock("administrator", locked)
	if _, err := h.unlock(t, "UADMIN"); workflow.ErrorCode(err) != workflow.CodeProtectedAccount {
		t.Fatalf("protected: %v", err)
	}
	h.lock("alice", locked)
	r, _ := h.unlock(t, "UEMP")
	h.accts.set(func(f *fakeAccounts) { f.refuse["alice"] = workflow.CodeAccountDisabled })
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", true); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Status != workflow.StatusFailed || got.Failure != workflow.CodeAccountDisabled || len(h.accts.unlocks()) != 0 {
		t.Fatalf("disabled before approval: %s %s %v", got.Status, got.Failure, h.accts.unlocks())
	}
	h.accts.set(func(f *fakeAccounts) { delete(f.refuse, "alice") })

	r, _ = h.unlock(t, "UEMP")
	h.lock("alice", workflow.Lockout{Known: true})
	mustDecide(t, h, r.ID)
	if got := h.get(t, r.ID); got.Failure != workflow.CodeNotLocked || len(h.accts.unlocks()) != 0 {
		t.Fatalf("ran out before approval: %s %v", got.Failure, h.accts.unlocks())
	}

	h.lock("alice", locked)
	h.accts.set(func(f *fakeAccounts) {
		f.unlockErr = workflow.Errorf(workflow.CodeDirectoryMisconfigured, "insufficientAccessRights")
	})
	r, _ = h.unlock(t, "UEMP")
	mustDecide(t, h, r.ID)
	got := h.get(t, r.ID)
	if got.Status != workflow.StatusFailed || got.Failure != workflow.CodeUnlockNotPermitted || got.StillLocked == nil || !got.StillLocked.Until.Equal(locked.Until) {
		t.Fatalf("without the right: %s %s %+v", got.Status, got.Failure, got.StillLocked)
	}
}

// TestUnlockDisabledWithoutDirectory: unlocks need the directory.
func TestUnlockDisabledWithoutDirectory(t *testing.T) {
	h := newHarness(t)
	if _, err := h.unlock(t, "UEMP"); workflow.ErrorCode(err) != workflow.CodeUnlockDisabled {
		t.Fatalf("unlock without a directory: %v", err)
	}
}

// TestSweeperEndsADeadUnlock: an unlock whose replica died ends as failed
// after its lease (nobody would click again), saying so.
func TestSweeperEndsADeadUnlock(t *testing.T) {
	h := newHarness(t, withUnlock(true))
	h.lock("alice", locked)
	ctx := context.Background()
	r, _ := h.unlock(t, "UEMP")
	if _, err := h.store.Update(ctx, r.ID, func(r *workflow.Request) error {
		if err := r.Decide("UAPP1", true, h.clock.Now(), time.Minute); err != nil {
			return err
		}
		return r.BeginUnlock("dead-replica", h.clock.Now(), h.clock.Now().Add(2*time.Minute))
	}); err != nil {
		t.Fatal(err)
	}
	mustSweep(t, h)
	h.clock.Add(2 * time.Minute)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != workflow.StatusFailed || got.Failure != workflow.CodeUnlockInterrupted {
		t.Fatalf("after the lease: %s %s", got.Status, got.Failure)
	}
}

// TestResetAlsoUnlocks: the reset of a locked account ends its lockout
// after ResetUserPassword worked, and says so; without the right the
// password is still shown, with until when the account stays locked, and
// helpdesk is told; a failed reset unlocks nothing.
func TestResetAlsoUnlocks(t *testing.T) {
	h := newHarness(t)
	h.lock("alice", locked)
	h.dir.errs = []error{workflow.Errorf(workflow.CodeUnsupportedOperation, "no")}
	r := h.submit(t)
	mustDecide(t, h, r.ID)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	if len(h.accts.unlocks()) != 0 {
		t.Fatal("a failed reset unlocked the account")
	}

	r = h.submit(t)
	mustDecide(t, h, r.ID)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	got := h.get(t, r.ID)
	if got.Status != workflow.StatusCompleted || !got.Unlocked || got.StillLocked != nil || !slices.Equal(h.accts.unlocks(), []string{"alice"}) {
		t.Fatalf("reset of a locked account: %s unlocked %v %v", got.Status, got.Unlocked, h.accts.unlocks())
	}
	if d := h.display.last(); !d.Unlocked || d.StillLocked != nil {
		t.Fatalf("delivery %+v", d)
	}

	h.lock("alice", locked)
	h.accts.set(func(f *fakeAccounts) {
		f.unlockErr = workflow.Errorf(workflow.CodeDirectoryMisconfigured, "insufficientAccessRights")
	})
	r = h.submit(t)
	mustDecide(t, h, r.ID)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	got = h.get(t, r.ID)
	if got.Status != workflow.StatusCompleted || got.Unlocked || got.StillLocked == nil || got.LastEvent().Code != workflow.CodeUnlockNotPermitted {
		t.Fatalf("without the right: %s %+v %+v", got.Status, got.StillLocked, got.LastEvent())
	}
	if d := h.display.last(); d.Unlocked || d.StillLocked == nil || !d.StillLocked.Until.Equal(locked.Until) || d.Password == "" {
		t.Fatalf("delivery %+v", d)
	}
}
