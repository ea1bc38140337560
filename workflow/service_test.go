package workflow

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

type harness struct {
	svc   *Service
	store *memStore
	accts *fakeAccounts
	// people is the chat's users (change them only between calls).
	people fakeIdentity
	dir    *fakeDirectory
	note   *fakeNotifier
	clock  *fakeClock
	logs   *bytes.Buffer
}

// option changes the service's configuration or collaborators before it
// is built.
type option func(*Config, *Deps)

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	h := &harness{
		store: newMemStore(), dir: &fakeDirectory{}, note: &fakeNotifier{},
		clock: &fakeClock{now: t0}, logs: &bytes.Buffer{},
	}
	h.people = fakeIdentity{
		"UEMP":   {Email: "alice@corp.example.com"},
		"UADMIN": {Email: "admin@corp.example.com"},
		"UAPP1":  {Email: "bob@corp.example.com"},
	}
	h.accts = &fakeAccounts{
		byEmail: map[string]Account{
			"alice@corp.example.com": {UserName: "alice", Email: "alice@corp.example.com"},
			"admin@corp.example.com": {UserName: "administrator"},
			"bob@corp.example.com":   {UserName: "bob"},
		},
		refuse: map[string]Code{"administrator": CodeProtectedAccount},
	}
	cfg := Config{DirectoryID: "d-1234567890", Owner: "replica-1"}
	deps := Deps{
		Store: h.store, Directory: h.dir, Passwords: &fakePasswords{},
		Identity:  h.people,
		Accounts:  h.accts,
		Approvers: fakeApprovers{"UAPP1", "UAPP2", "UEMP"},
		Notifier:  h.note, Clock: h.clock,
		Log: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	h.svc = New(cfg, deps)
	return h
}

func (h *harness) submit(t *testing.T) *Request {
	t.Helper()
	r, err := h.svc.Submit(context.Background(), "UEMP")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *harness) get(t *testing.T, id string) *Request {
	t.Helper()
	h.svc.Wait()
	r, err := h.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHappyPathDeliversExactlyTheDirectoryPassword(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	r := h.submit(t)
	if slices.Contains(r.Approvers, "UEMP") {
		t.Fatalf("requester is among the approvers: %v", r.Approvers)
	}
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", true); err != nil {
		t.Fatal(err)
	}
	ended, err := h.svc.Reveal(ctx, r.ID, "UEMP")
	if err != nil || ended.Status != StatusCompleted {
		t.Fatalf("Reveal returned %v, %v", ended, err)
	}
	got := h.get(t, r.ID)
	if got.Status != StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
	sent, delivered := h.dir.passwords(), h.note.passwords()
	if len(sent) != 1 || !slices.Equal(sent, delivered) {
		t.Fatalf("directory got %q, employee got %q", sent, delivered)
	}
	want := []EventKind{EventRequested, EventApproved, EventCompleted}
	if k := h.note.kinds(); !slices.Equal(k, want) {
		t.Fatalf("synced events %v, want %v", k, want)
	}
	if got.AnySyncPending() || got.Outbox[LanePeople].Owner != "" || got.Outbox[LaneAudit].Owner != "" {
		t.Fatalf("sync not finished: %+v", got)
	}
	assertNoLeak(t, h, sent[0])
}

func assertNoLeak(t *testing.T, h *harness, password string) {
	t.Helper()
	if strings.Contains(h.logs.String(), password) {
		t.Errorf("password in logs")
	}
	if strings.Contains(h.store.raw(), password) {
		t.Errorf("password in store")
	}
}

func TestInvalidPasswordRetriesOnceLonger(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.dir.errs = []error{Errorf(CodeInvalidPassword, "InvalidPasswordException: too simple")}
	r := h.submit(t)
	mustDecide(t, h, r.ID)
	if _, err := h.svc.Reveal(ctx, r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	sent := h.dir.passwords()
	if len(sent) != 2 || len(sent[1]) <= len(sent[0]) || len(sent[0]) != 20 {
		t.Fatalf("passwords tried: %q", sent)
	}
	if got := h.get(t, r.ID); got.Status != StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
	if d := h.note.passwords(); len(d) != 1 || d[0] != sent[1] {
		t.Fatalf("delivered %q", d)
	}
}

func TestDirectoryFailuresEndTheRequestWithTheirCode(t *testing.T) {
	for _, code := range []Code{CodeUserDoesNotExist, CodeInvalidPassword, CodeDirectoryUnavailable, CodeUnsupportedOperation,
		CodeDirectoryDoesNotExist, CodeDirectoryClient, CodeDirectoryService, CodeDirectoryThrottled, CodeDirectoryAccessDenied} {
		t.Run(string(code), func(t *testing.T) {
			h := newHarness(t)
			h.dir.echo = true // a lower layer that puts the password in its error must not leak it
			h.dir.errs = []error{Errorf(code, "boom"), Errorf(code, "boom")}
			ctx := context.Background()
			r := h.submit(t)
			mustDecide(t, h, r.ID)
			if _, err := h.svc.Reveal(ctx, r.ID, "UEMP"); err != nil {
				t.Fatal(err)
			}
			got := h.get(t, r.ID)
			if got.Status != StatusFailed || got.Failure != code {
				t.Fatalf("status %s failure %s", got.Status, got.Failure)
			}
			if len(h.note.passwords()) != 0 {
				t.Fatal("a password was delivered after a failed reset")
			}
			for _, p := range h.dir.passwords() {
				assertNoLeak(t, h, p)
				if strings.Contains(got.LastEvent().Detail, p) {
					t.Fatal("password in the failure detail")
				}
			}
		})
	}
}

func TestDeliveryFailureOffersRevealAgain(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.note.failSend = 1
	r := h.submit(t)
	mustDecide(t, h, r.ID)
	if _, err := h.svc.Reveal(ctx, r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	got := h.get(t, r.ID)
	if got.Status != StatusApproved || got.LastEvent().Kind != EventInterrupted {
		t.Fatalf("after a lost delivery: %s %s", got.Status, got.LastEvent().Kind)
	}
	if _, err := h.svc.Reveal(ctx, r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	sent, delivered := h.dir.passwords(), h.note.passwords()
	if len(sent) != 2 || len(delivered) != 1 || delivered[0] != sent[1] {
		t.Fatalf("sent %q delivered %q", sent, delivered)
	}
	if got := h.get(t, r.ID); got.Status != StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
}

func TestSweeperExpiresBothWindows(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	r := h.submit(t)
	h.clock.Add(30 * time.Minute)
	if err := h.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Status != StatusExpired {
		t.Fatalf("pending after the window: %s", got.Status)
	}
	r = h.submit(t)
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP2", true); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(15*time.Minute - time.Second)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != StatusApproved {
		t.Fatalf("expired early: %s", got.Status)
	}
	h.clock.Add(time.Second)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != StatusExpired {
		t.Fatalf("approved after the reveal window: %s", got.Status)
	}
	if _, err := h.svc.Reveal(ctx, r.ID, "UEMP"); ErrorCode(err) != CodeDecided {
		t.Fatalf("reveal after expiry: %v", err)
	}
	if len(h.dir.passwords()) != 0 {
		t.Fatal("directory called")
	}
}

func TestSweeperRecoversADeadReset(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	r := h.submit(t)
	mustDecide(t, h, r.ID)
	// Another replica took the reset and died.
	if _, err := h.store.Update(ctx, r.ID, func(r *Request) error {
		return r.BeginReset("UEMP", "dead-replica", h.clock.Now(), h.clock.Now().Add(2*time.Minute))
	}); err != nil {
		t.Fatal(err)
	}
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != StatusResetting {
		t.Fatalf("recovered a live lease: %s", got.Status)
	}
	h.clock.Add(2 * time.Minute)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != StatusApproved || got.LastEvent().Kind != EventInterrupted {
		t.Fatalf("after the lease: %s %s", got.Status, got.LastEvent().Kind)
	}
	if _, err := h.svc.Reveal(ctx, r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Status != StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
}

func TestFailedSyncIsRetriedBySweeper(t *testing.T) {
	h := newHarness(t)
	h.note.failSync = 1
	r := h.submit(t)
	got := h.get(t, r.ID)
	if !got.SyncPending(LanePeople) || got.Outbox[LanePeople].Owner != "replica-1" {
		t.Fatalf("after a failed sync: %+v", got)
	}
	mustSweep(t, h)
	if got := h.get(t, r.ID); !got.SyncPending(LanePeople) {
		t.Fatal("sweeper retried before the retry time")
	}
	h.clock.Add(h.svc.Config().SyncRetry)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.AnySyncPending() || got.Outbox[LanePeople].Owner != "" {
		t.Fatalf("sweeper did not finish the sync: %+v", got)
	}
	if k := h.note.kinds(); !slices.Equal(k, []EventKind{EventRequested}) {
		t.Fatalf("synced %v", k)
	}
}

func TestSubmitRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for user, want := range map[string]Code{"UNOBODY": CodeUnknownUser, "UADMIN": CodeProtectedAccount} {
		if _, err := h.svc.Submit(ctx, user); ErrorCode(err) != want {
			t.Errorf("%s: %v, want %s", user, err, want)
		}
	}
	r := h.submit(t)
	open, err := h.svc.Submit(ctx, "UEMP")
	if ErrorCode(err) != CodeOpenRequest || open == nil || open.ID != r.ID {
		t.Fatalf("second request: %v %+v", err, open)
	}
	h.svc.Wait()
	h = newHarness(t, func(_ *Config, d *Deps) { d.Approvers = fakeApprovers{"UAPP1"} })
	if _, err := h.svc.Submit(ctx, "UAPP1"); ErrorCode(err) != CodeNoApprovers {
		t.Fatalf("only approver is the requester: %v", err)
	}
	h.svc.Wait()
	h.store.setDown(true)
	if _, err := h.svc.Submit(ctx, "UAPP1"); ErrorCode(err) != CodeUnavailable {
		t.Fatalf("store down: %v", err)
	}
}

func mustDecide(t *testing.T, h *harness, id string) {
	t.Helper()
	if _, err := h.svc.Decide(context.Background(), id, "UAPP1", true); err != nil {
		t.Fatal(err)
	}
}

func mustSweep(t *testing.T, h *harness) {
	t.Helper()
	if err := h.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}
