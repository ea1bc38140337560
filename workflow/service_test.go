package workflow_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/testclock"
	"github.com/example/resetbot/store/memstore"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

type harness struct {
	svc   *workflow.Service
	store *memstore.Store
	accts *fakeAccounts
	// people is the chat's users (change them only between calls).
	people  fakeIdentity
	dir     *fakeDirectory
	note    *fakeNotifier
	display *fakeDisplay
	watch   *changeWatcher
	clock   *testclock.Clock
	logs    *bytes.Buffer
}

// t0 is the harness's start time.
var t0 = time.Date(2030, 1, 2, 9, 0, 0, 0, time.UTC)

// option changes the service's configuration or collaborators before it
// is built.
type option func(*workflow.Config, *workflow.Deps)

func newHarness(t *testing.T, opts ...option) *harness {
	t.Helper()
	h := &harness{
		dir: &fakeDirectory{}, note: &fakeNotifier{}, display: &fakeDisplay{}, watch: &changeWatcher{},
		clock: testclock.New(t0), logs: &bytes.Buffer{},
	}
	h.store = memstore.New(seal.Derive("workflow tests", "requests"), memstore.WithClock(h.clock))
	h.people = fakeIdentity{
		"UEMP":   {Email: "alice@corp.example.com"},
		"UADMIN": {Email: "admin@corp.example.com"},
		"UAPP1":  {Email: "bob@corp.example.com"},
	}
	h.accts = &fakeAccounts{
		byEmail: map[string]workflow.Account{
			"alice@corp.example.com": {UserName: "alice", Email: "alice@corp.example.com"},
			"admin@corp.example.com": {UserName: "administrator"},
			"bob@corp.example.com":   {UserName: "bob"},
		},
		refuse: map[string]workflow.Code{"administrator": workflow.CodeProtectedAccount},
	}
	cfg := workflow.Config{DirectoryID: "d-1234567890", Owner: "replica-1"}
	deps := workflow.Deps{
		Store: h.store, Directory: h.dir, Passwords: &fakePasswords{},
		Identity:  h.people,
		Accounts:  h.accts,
		Approvers: fakeApprovers{"UAPP1", "UAPP2", "UEMP"},
		Notifier:  h.note, Watcher: h.watch, Clock: h.clock,
		Log: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	h.svc = workflow.New(cfg, deps)
	return h
}

func (h *harness) submit(t *testing.T) *workflow.Request {
	t.Helper()
	r, err := h.svc.Submit(context.Background(), "UEMP")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *harness) get(t *testing.T, id string) *workflow.Request {
	t.Helper()
	h.svc.Wait()
	r, err := h.store.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// reveal clicks Reveal as actor, the password shown on h.display.
func (h *harness) reveal(id, actor string) (*workflow.Request, error) {
	return h.svc.Reveal(context.Background(), id, actor, h.display)
}

// records returns the audit records q selects.
func (h *harness) records(q workflow.AuditQuery) ([]workflow.AuditRecord, error) {
	var out []workflow.AuditRecord
	err := h.store.Audit(context.Background(), q, func(rec workflow.AuditRecord) error {
		out = append(out, rec)
		return nil
	})
	return out, err
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
	ended, err := h.reveal(r.ID, "UEMP")
	if err != nil || ended.Status != workflow.StatusCompleted {
		t.Fatalf("Reveal returned %v, %v", ended, err)
	}
	got := h.get(t, r.ID)
	if got.Status != workflow.StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
	sent, delivered := h.dir.passwords(), h.display.passwords()
	if len(sent) != 1 || !slices.Equal(sent, delivered) {
		t.Fatalf("directory got %q, employee got %q", sent, delivered)
	}
	// Each change is told to the Watcher (the chat delivery) once.
	want := []workflow.EventKind{workflow.EventRequested, workflow.EventApproved, workflow.EventRevealed, workflow.EventCompleted}
	if k := h.watch.told(); !slices.Equal(k, want) {
		t.Fatalf("changes told %v, want %v", k, want)
	}
	assertNoLeak(t, h, sent[0])
}

func assertNoLeak(t *testing.T, h *harness, password string) {
	t.Helper()
	if strings.Contains(h.logs.String(), password) {
		t.Errorf("password in logs")
	}
	if strings.Contains(h.store.Dump(), password) {
		t.Errorf("password in store")
	}
}

func TestInvalidPasswordRetriesOnceLonger(t *testing.T) {
	h := newHarness(t)
	h.dir.errs = []error{workflow.Errorf(workflow.CodeInvalidPassword, "InvalidPasswordException: too simple")}
	r := h.submit(t)
	mustDecide(t, h, r.ID)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	sent := h.dir.passwords()
	if len(sent) != 2 || len(sent[1]) <= len(sent[0]) || len(sent[0]) != 20 {
		t.Fatalf("passwords tried: %q", sent)
	}
	if got := h.get(t, r.ID); got.Status != workflow.StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
	if d := h.display.passwords(); len(d) != 1 || d[0] != sent[1] {
		t.Fatalf("delivered %q", d)
	}
}

func TestDirectoryFailuresEndTheRequestWithTheirCode(t *testing.T) {
	for _, code := range []workflow.Code{workflow.CodeUserDoesNotExist, workflow.CodeInvalidPassword, workflow.CodeDirectoryUnavailable, workflow.CodeUnsupportedOperation,
		workflow.CodeDirectoryDoesNotExist, workflow.CodeDirectoryClient, workflow.CodeDirectoryService, workflow.CodeDirectoryThrottled, workflow.CodeDirectoryAccessDenied} {
		t.Run(string(code), func(t *testing.T) {
			h := newHarness(t)
			h.dir.echo = true // a lower layer that puts the password in its error must not leak it
			h.dir.errs = []error{workflow.Errorf(code, "boom"), workflow.Errorf(code, "boom")}
			r := h.submit(t)
			mustDecide(t, h, r.ID)
			if _, err := h.reveal(r.ID, "UEMP"); err != nil {
				t.Fatal(err)
			}
			got := h.get(t, r.ID)
			if got.Status != workflow.StatusFailed || got.Failure != code {
				t.Fatalf("status %s failure %s", got.Status, got.Failure)
			}
			if len(h.display.passwords()) != 0 {
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
	h.display.fail = 1
	r := h.submit(t)
	mustDecide(t, h, r.ID)
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	got := h.get(t, r.ID)
	if got.Status != workflow.StatusApproved || got.LastEvent().Kind != workflow.EventInterrupted {
		t.Fatalf("after a lost delivery: %s %s", got.Status, got.LastEvent().Kind)
	}
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	sent, delivered := h.dir.passwords(), h.display.passwords()
	if len(sent) != 2 || len(delivered) != 1 || delivered[0] != sent[1] {
		t.Fatalf("sent %q delivered %q", sent, delivered)
	}
	if got := h.get(t, r.ID); got.Status != workflow.StatusCompleted {
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
	if got := h.get(t, r.ID); got.Status != workflow.StatusExpired {
		t.Fatalf("pending after the window: %s", got.Status)
	}
	r = h.submit(t)
	if _, err := h.svc.Decide(ctx, r.ID, "UAPP2", true); err != nil {
		t.Fatal(err)
	}
	h.clock.Add(15*time.Minute - time.Second)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != workflow.StatusApproved {
		t.Fatalf("expired early: %s", got.Status)
	}
	h.clock.Add(time.Second)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != workflow.StatusExpired {
		t.Fatalf("approved after the reveal window: %s", got.Status)
	}
	if _, err := h.reveal(r.ID, "UEMP"); workflow.ErrorCode(err) != workflow.CodeDecided {
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
	if _, err := h.store.Update(ctx, r.ID, func(r *workflow.Request) error {
		return r.BeginReset("UEMP", "dead-replica", h.clock.Now(), h.clock.Now().Add(2*time.Minute))
	}); err != nil {
		t.Fatal(err)
	}
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != workflow.StatusResetting {
		t.Fatalf("recovered a live lease: %s", got.Status)
	}
	h.clock.Add(2 * time.Minute)
	mustSweep(t, h)
	if got := h.get(t, r.ID); got.Status != workflow.StatusApproved || got.LastEvent().Kind != workflow.EventInterrupted {
		t.Fatalf("after the lease: %s %s", got.Status, got.LastEvent().Kind)
	}
	if _, err := h.reveal(r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	if got := h.get(t, r.ID); got.Status != workflow.StatusCompleted {
		t.Fatalf("status %s", got.Status)
	}
}

func TestSubmitRefusals(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for user, want := range map[string]workflow.Code{"UNOBODY": workflow.CodeUnknownUser, "UADMIN": workflow.CodeProtectedAccount} {
		if _, err := h.svc.Submit(ctx, user); workflow.ErrorCode(err) != want {
			t.Errorf("%s: %v, want %s", user, err, want)
		}
	}
	r := h.submit(t)
	open, err := h.svc.Submit(ctx, "UEMP")
	if workflow.ErrorCode(err) != workflow.CodeOpenRequest || open == nil || open.ID != r.ID {
		t.Fatalf("second request: %v %+v", err, open)
	}
	h.svc.Wait()
	h = newHarness(t, func(_ *workflow.Config, d *workflow.Deps) { d.Approvers = fakeApprovers{"UAPP1"} })
	if _, err := h.svc.Submit(ctx, "UAPP1"); workflow.ErrorCode(err) != workflow.CodeNoApprovers {
		t.Fatalf("only approver is the requester: %v", err)
	}
	h.svc.Wait()
	h.store.SetDown(true)
	if _, err := h.svc.Submit(ctx, "UAPP1"); workflow.ErrorCode(err) != workflow.CodeUnavailable {
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
