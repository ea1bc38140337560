// Package storetest is the conformance suite of workflow.Store: every store
// implementation runs it against a real backend.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// Run checks a Store against the contract in workflow/ports.go. open must
// return a new, empty store on every call (cleaned up through t.Cleanup) and
// may be called concurrently: the subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) workflow.Store) {
	tests := []struct {
		name string
		test func(*testing.T, workflow.Store)
	}{
		{"CreateGet", testCreateGet},
		{"NotFound", testNotFound},
		{"OpenRequest", testOpenRequest},
		{"ConcurrentCreate", testConcurrentCreate},
		{"RateLimit", testRateLimit},
		{"RefusalsCount", testRefusalsCount},
		{"LimitPerAction", testLimitPerAction},
		{"CreateStarted", testCreateStarted},
		{"UpdateFnError", testUpdateFnError},
		{"ConcurrentUpdate", testConcurrentUpdate},
		{"RacingDecisions", testRacingDecisions},
		{"Due", testDue},
		{"Claim", testClaim},
		{"Ping", testPing},
		{"Audit", testAudit},
		{"AuditPages", testAuditPages},
		{"Resets", testResets},
		{"Recent", testRecent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, open(t))
		})
	}
}

// base is the suite's "now". Times are UTC with nanoseconds, so that a
// faithful round trip gives reflect.DeepEqual values.
var base = time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)

// noLimit is a limit the tests never reach.
var noLimit = workflow.Limit{Max: 1000, Window: time.Hour}

// NewRequest returns a pending request of requester created at created,
// whose only deadline is DecideBy.
func NewRequest(requester string, created time.Time) *workflow.Request {
	return &workflow.Request{
		ID:          workflow.NewID(),
		Requester:   requester,
		Account:     workflow.Account{UserName: "jdoe", Email: "jdoe@example.com", DisplayName: "Jane Doe"},
		DirectoryID: "d-0123456789",
		Approvers:   []string{"UAPPROVER1", "UAPPROVER2"},
		Status:      workflow.StatusPending,
		CreatedAt:   created,
		DecideBy:    created.Add(30 * time.Minute),
		Events:      []workflow.Event{{At: created, Kind: workflow.EventRequested, Actor: requester}},
	}
}

// fullRequest returns a pending request with every field set.
func fullRequest(t *testing.T) *workflow.Request {
	r := NewRequest("UREQUESTER", base)
	r.RevealBy = base.Add(time.Hour)
	r.DecidedBy, r.DecidedAt = "UAPPROVER1", base.Add(time.Minute)
	r.EndedAt = base.Add(2 * time.Minute)
	r.Failure = workflow.CodeInvalidPassword
	r.ResetLease, r.ResetOwner, r.RevealTries = base.Add(3*time.Minute), "replica-1", 2
	r.Account.DN = "CN=Requester,OU=Users,OU=CORP,DC=corp,DC=example,DC=com"
	r.Account.GUID = "a8b4cf38-c9f2-48b3-96f8-0123456789ab"
	r.Account.Unchecked = true
	r.AskedAs = workflow.AskedNoManager
	r.Action, r.Agent = workflow.ActionUnlock, "UAGENT"
	r.Unlocked = true
	r.StillLocked = &workflow.Lockout{Known: true, Locked: true, Since: base.Add(-time.Hour), Until: base.Add(time.Hour), Forever: true}
	r.Events = append(r.Events, workflow.Event{At: base.Add(time.Second), Kind: workflow.EventFailed, Actor: "UAPPROVER2",
		Code: workflow.CodeDirectoryThrottled, Detail: "throttled, then \"quoted\" ünïcode", Reason: "locked out <again> & \"stuck\""})
	bad := 4
	r.Facts = &workflow.Facts{
		SignIn: workflow.SignIn{
			Lockout:      &workflow.Lockout{Known: true, Locked: true, Since: base.Add(-time.Hour), Until: base.Add(time.Hour), Forever: true},
			BadPasswords: &bad,
			PasswordSet:  &workflow.PasswordSet{At: base.Add(-24 * time.Hour), MustChange: true},
		},
		Resets: &workflow.ResetHistory{Count: 2, Last: base.Add(-48 * time.Hour)},
		Hours:  &workflow.LocalTime{Zone: "Europe/Berlin", Clock: "Sat 22:14", Outside: true},
	}
	r.RemindAt, r.EscalateAt, r.Escalated = base.Add(10*time.Minute), base.Add(15*time.Minute), []string{"UFALLBACK"}
	checkAllSet(t, "Request", reflect.ValueOf(*r))
	checkAllSet(t, "Event", reflect.ValueOf(r.Events[1]))
	checkAllSet(t, "Facts", reflect.ValueOf(*r.Facts))
	checkAllSet(t, "Lockout", reflect.ValueOf(*r.Facts.Lockout))
	checkAllSet(t, "PasswordSet", reflect.ValueOf(*r.Facts.PasswordSet))
	checkAllSet(t, "ResetHistory", reflect.ValueOf(*r.Facts.Resets))
	checkAllSet(t, "LocalTime", reflect.ValueOf(*r.Facts.Hours))
	return r
}

// checkAllSet fails the test if a field of struct v, or of a struct inside
// it, is zero: a field added to Request must be added to fullRequest too.
func checkAllSet(t *testing.T, path string, v reflect.Value) {
	for i := range v.NumField() {
		f, name := v.Field(i), path+"."+v.Type().Field(i).Name
		switch {
		case f.IsZero():
			t.Fatalf("fullRequest leaves %s zero: set it so that the round trip covers it", name)
		case f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Time]():
			checkAllSet(t, name, f)
		}
	}
}

func testCreateGet(t *testing.T, s workflow.Store) {
	want := fullRequest(t)
	if err := s.Create(t.Context(), want, noLimit); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, err := s.Get(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Get returned\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func testNotFound(t *testing.T, s workflow.Store) {
	for _, id := range []string{workflow.NewID(), "", "R../../etc", "not-an-id"} {
		if _, err := s.Get(t.Context(), id); workflow.ErrorCode(err) != workflow.CodeNotFound {
			t.Errorf("Get(%q) error = %v, want code %s", id, err, workflow.CodeNotFound)
		}
		called := false
		_, err := s.Update(t.Context(), id, func(*workflow.Request) error { called = true; return nil })
		if workflow.ErrorCode(err) != workflow.CodeNotFound || called {
			t.Errorf("Update(%q) error = %v, fn called %v; want code %s without calling fn", id, err, called, workflow.CodeNotFound)
		}
	}
}

// testOpenRequest walks one employee through requests that end in each
// terminal status: while a request is open it is the one Open returns and
// it blocks Create; once it ended, Open finds none and Create is allowed.
func testOpenRequest(t *testing.T, s workflow.Store) {
	ctx, user := t.Context(), "UEMPLOYEE"
	if _, err := s.Open(ctx, user); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Fatalf("Open on an empty store: error = %v, want code %s", err, workflow.CodeNoOpenRequest)
	}
	ends := []workflow.Status{workflow.StatusCompleted, workflow.StatusFailed, workflow.StatusDenied,
		workflow.StatusExpired, workflow.StatusCancelled}
	for i, end := range ends {
		r := NewRequest(user, base.Add(time.Duration(i)*time.Hour))
		if err := s.Create(ctx, r, noLimit); err != nil {
			t.Fatalf("Create after a %s request: %v", ends[max(i-1, 0)], err)
		}
		for _, st := range []workflow.Status{workflow.StatusPending, workflow.StatusApproved, workflow.StatusResetting} {
			mustUpdate(t, s, r.ID, func(r *workflow.Request) { r.Status = st })
			got, err := s.Open(ctx, user)
			if err != nil || got.ID != r.ID || got.Status != st {
				t.Fatalf("Open with a %s request = %v, %v; want %s", st, got, err, r.ID)
			}
			if got, n, err := s.Standing(ctx, user, workflow.ActionReset, r.CreatedAt.Add(-time.Minute)); err != nil || got == nil || got.ID != r.ID || n != 1 {
				t.Fatalf("Standing with a %s request = %v, %d, %v; want %s, created once since", st, got, n, err, r.ID)
			}
			other := NewRequest(user, r.CreatedAt.Add(time.Minute))
			if err := s.Create(ctx, other, noLimit); workflow.ErrorCode(err) != workflow.CodeOpenRequest {
				t.Fatalf("Create with a %s request open: error = %v, want code %s", st, err, workflow.CodeOpenRequest)
			}
			if _, err := s.Get(ctx, other.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
				t.Fatalf("a refused Create stored the request: Get error = %v", err)
			}
		}
		mustUpdate(t, s, r.ID, func(r *workflow.Request) { r.Status, r.EndedAt = end, base })
		if got, err := s.Open(ctx, user); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
			t.Fatalf("Open after the request became %s = %v, %v; want code %s", end, got, err, workflow.CodeNoOpenRequest)
		}
		if got, _, err := s.Standing(ctx, user, workflow.ActionUnlock, base); got != nil || err != nil {
			t.Fatalf("Standing after the request became %s = %v, %v; want no open request", end, got, err)
		}
	}
}

func testConcurrentCreate(t *testing.T, s workflow.Store) {
	const n = 20
	errs := concurrently(n, func(int) error {
		return s.Create(t.Context(), NewRequest("UEMPLOYEE", base), noLimit)
	})
	ok := 0
	for _, err := range errs {
		switch workflow.ErrorCode(err) {
		case "":
			ok++
		case workflow.CodeOpenRequest:
		default:
			t.Errorf("Create: unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent Creates for one employee succeeded, want exactly 1", ok, n)
	}
}

func testRateLimit(t *testing.T, s workflow.Store) {
	ctx, user := t.Context(), "UEMPLOYEE"
	limit := workflow.Limit{Max: 3, Window: 24 * time.Hour}
	create := func(at time.Time) (*workflow.Request, error) {
		r := NewRequest(user, at)
		if err := s.Create(ctx, r, limit); err != nil {
			return r, err
		}
		mustUpdate(t, s, r.ID, func(r *workflow.Request) {
			if err := r.Cancel(user, at); err != nil {
				t.Fatal(err)
			}
		})
		return r, nil
	}
	for i := range 3 {
		if _, err := create(base.Add(time.Duration(i) * time.Hour)); err != nil {
			t.Fatalf("request %d within the limit: %v", i+1, err)
		}
	}
	if n, err := created(ctx, s, user, base.Add(3*time.Hour-24*time.Hour)); err != nil || n != 3 {
		t.Fatalf("Standing in the window: %d, %v; want 3", n, err)
	}
	if n, err := created(ctx, s, user, base.Add(30*time.Minute)); err != nil || n != 2 {
		t.Fatalf("Standing after the first: %d, %v; want 2", n, err)
	}
	if n, err := created(ctx, s, "UNOBODY", base); err != nil || n != 0 {
		t.Fatalf("Standing of someone who never asked: %d, %v", n, err)
	}
	r, err := create(base.Add(3 * time.Hour))
	if workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Fatalf("4th request within 24h: error = %v, want code %s", err, workflow.CodeRateLimited)
	}
	if _, err := s.Get(ctx, r.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Errorf("a rate-limited request was stored: Get error = %v", err)
	}
	if _, err := s.Open(ctx, user); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Errorf("a rate-limited request is open: Open error = %v", err)
	}
	if ids, _ := s.Due(ctx, base.Add(1000*time.Hour), 1000); slices.Contains(ids, r.ID) {
		t.Errorf("a rate-limited request is due")
	}
	if n, _ := created(ctx, s, user, base.Add(-time.Hour)); n != 3 {
		t.Errorf("the refused request counted: Standing = %d, want 3", n)
	}
	// The first request has left the window; the refused one never counted.
	if _, err := create(base.Add(24*time.Hour + time.Minute)); err != nil {
		t.Errorf("a request once the first one left the window: %v", err)
	}
	if _, err := create(base.Add(24*time.Hour + 2*time.Minute)); workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Errorf("a 4th request in the moved window: error = %v, want code %s", err, workflow.CodeRateLimited)
	}
}

// testLimitPerAction: each action has its own count (Counter): unlocks
// and their refusals count against the unlock limit only, resets against
// the reset limit only; an open request of one action blocks the other.
func testLimitPerAction(t *testing.T, s workflow.Store) {
	ctx, user := t.Context(), "UEMPLOYEE"
	limit := workflow.Limit{Max: 2, Window: 24 * time.Hour}
	count := func(a workflow.Action) int {
		t.Helper()
		open, n, err := s.Standing(ctx, user, a, base.Add(-time.Hour))
		if err != nil || open != nil {
			t.Fatalf("Standing(%s) = %v, %d, %v", a, open, n, err)
		}
		return n
	}
	ask := func(a workflow.Action, at time.Time) error {
		r := NewRequest(user, at)
		r.Action = a
		if err := s.Create(ctx, r, limit); err != nil {
			return err
		}
		mustUpdate(t, s, r.ID, func(r *workflow.Request) {
			if err := r.Cancel(user, at); err != nil {
				t.Fatal(err)
			}
		})
		return nil
	}
	if err := ask(workflow.ActionUnlock, base); err != nil {
		t.Fatal(err)
	}
	rec := workflow.AuditRecord{At: base.Add(time.Minute), Event: workflow.EventRefused, User: user, Action: workflow.ActionUnlock,
		Actor: user, Code: workflow.CodeNotLocked}
	if err := s.Refused(ctx, rec, limit); err != nil {
		t.Fatal(err)
	}
	if n := count(workflow.ActionUnlock); n != 2 {
		t.Fatalf("unlock attempts = %d, want 2 (a request and a refusal)", n)
	}
	if n := count(workflow.ActionReset); n != 0 {
		t.Fatalf("reset attempts = %d after unlocks only, want 0", n)
	}
	if err := ask(workflow.ActionUnlock, base.Add(2*time.Minute)); workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Fatalf("a 3rd unlock: %v, want code %s", err, workflow.CodeRateLimited)
	}
	for i := range 2 {
		if err := ask(workflow.ActionReset, base.Add(time.Duration(3+i)*time.Minute)); err != nil {
			t.Fatalf("reset %d while unlocks are limited: %v", i+1, err)
		}
	}
	if n := count(workflow.ActionUnlock); n != 2 {
		t.Fatalf("unlock attempts = %d after resets, want 2", n)
	}
	// The empty action of records stored before actions counts as a reset.
	if err := ask("", base.Add(5*time.Minute)); workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Fatalf("a 3rd reset (no action): %v, want code %s", err, workflow.CodeRateLimited)
	}
	// One open request per employee, whatever its action.
	open := NewRequest(user, base.Add(6*time.Minute))
	if err := s.Create(ctx, open, noLimit); err != nil {
		t.Fatal(err)
	}
	other := NewRequest(user, base.Add(7*time.Minute))
	other.Action = workflow.ActionUnlock
	if err := s.Create(ctx, other, noLimit); workflow.ErrorCode(err) != workflow.CodeOpenRequest {
		t.Fatalf("an unlock while a reset is open: %v, want code %s", err, workflow.CodeOpenRequest)
	}
}

// testCreateStarted: a request whose first steps need nobody else is
// created approved or resetting (a lease), is open, and is due at its
// deadline; an ended one is refused.
func testCreateStarted(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	unlock := NewRequest("UEMPLOYEE", base)
	unlock.Action, unlock.Approvers = workflow.ActionUnlock, nil
	if err := unlock.BeginUnlock("replica-1", base, base.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	approved := NewRequest("UOTHER", base)
	approved.Agent, approved.Approvers = "UAGENT", []string{"UAGENT"}
	if err := approved.Decide("UAGENT", true, base, 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*workflow.Request{unlock, approved} {
		if err := s.Create(ctx, r, noLimit); err != nil {
			t.Fatalf("Create a %s request: %v", r.Status, err)
		}
		if got, err := s.Open(ctx, r.Requester); err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("Open = %s, %v; want\n%s", dump(got), err, dump(r))
		}
		deadline, _ := r.NextDeadline()
		if ids, err := s.Due(ctx, deadline, 100); err != nil || !slices.Contains(ids, r.ID) {
			t.Errorf("a %s request is not due at its deadline: %v, %v", r.Status, ids, err)
		}
	}
	ended := NewRequest("UTHIRD", base)
	ended.Status = workflow.StatusCompleted
	if err := s.Create(ctx, ended, noLimit); workflow.ErrorCode(err) != workflow.CodeInvalidInput {
		t.Errorf("Create an ended request: %v, want code %s", err, workflow.CodeInvalidInput)
	}
}

func testUpdateFnError(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	r := NewRequest("UEMPLOYEE", base)
	if err := s.Create(ctx, r, noLimit); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	got, err := s.Update(ctx, r.ID, func(r *workflow.Request) error {
		r.Status = workflow.StatusCancelled
		r.Events = append(r.Events, workflow.Event{At: base, Kind: workflow.EventCancelled})
		return errBoom
	})
	if err != errBoom || got != nil {
		t.Fatalf("Update = %v, %v; want nil and fn's error unchanged", got, err)
	}
	if now, err := s.Get(ctx, r.ID); err != nil || !reflect.DeepEqual(now, r) {
		t.Errorf("after a failed fn the request is\n%s\n(%v), want it unchanged", dump(now), err)
	}
	if _, err := s.Open(ctx, r.Requester); err != nil {
		t.Errorf("after a failed fn the request is no longer open: %v", err)
	}
	// A domain error passes through with its code.
	_, err = s.Update(ctx, r.ID, func(r *workflow.Request) error { return r.Decide(r.Requester, true, base, time.Minute) })
	if workflow.ErrorCode(err) != workflow.CodeSelfApproval {
		t.Errorf("Update with a refused Decide: error = %v, want code %s", err, workflow.CodeSelfApproval)
	}
}

// testConcurrentUpdate checks compare-and-set: no append may be lost.
func testConcurrentUpdate(t *testing.T, s workflow.Store) {
	const n = 50
	r := NewRequest("UEMPLOYEE", base)
	if err := s.Create(t.Context(), r, noLimit); err != nil {
		t.Fatal(err)
	}
	errs := concurrently(n, func(i int) error {
		_, err := s.Update(t.Context(), r.ID, func(r *workflow.Request) error {
			r.Events = append(r.Events, workflow.Event{At: base, Kind: "test", Detail: strconv.Itoa(i)})
			return nil
		})
		return err
	})
	for _, err := range errs {
		if err != nil {
			t.Errorf("Update: %v", err)
		}
	}
	got, err := s.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range got.Events[1:] {
		seen[ev.Detail] = true
	}
	if len(got.Events) != n+1 || len(seen) != n {
		t.Errorf("after %d concurrent appends: %d events (%d distinct), want %d", n, len(got.Events)-1, len(seen), n)
	}
}

// testRacingDecisions has two approvers click at once: the first decision
// wins, the other sees it.
func testRacingDecisions(t *testing.T, s workflow.Store) {
	for range 5 {
		r := NewRequest("UEMPLOYEE", base)
		if err := s.Create(t.Context(), r, noLimit); err != nil {
			t.Fatal(err)
		}
		errs := concurrently(2, func(i int) error {
			_, err := s.Update(t.Context(), r.ID, func(r *workflow.Request) error {
				return r.Decide(r.Approvers[i], true, base, 15*time.Minute)
			})
			return err
		})
		winner := slices.Index(errs, nil)
		if winner < 0 || workflow.ErrorCode(errs[1-winner]) != workflow.CodeDecided {
			t.Fatalf("racing approvals: errors %v, want exactly one nil and one %s", errs, workflow.CodeDecided)
		}
		got, err := s.Get(t.Context(), r.ID)
		if err != nil || got.Status != workflow.StatusApproved || got.DecidedBy != r.Approvers[winner] || len(got.Events) != 2 {
			t.Fatalf("after racing approvals: %s (%v), want approved once by %s", dump(got), err, r.Approvers[winner])
		}
		mustUpdate(t, s, r.ID, func(r *workflow.Request) { r.Status = workflow.StatusCancelled })
	}
}

func testDue(t *testing.T, s workflow.Store) {
	ctx, now := t.Context(), base
	type dueCase struct {
		name string
		set  func(*workflow.Request)
		due  bool
	}
	cases := []dueCase{
		{"pending past DecideBy", func(r *workflow.Request) { r.DecideBy = now.Add(-time.Minute) }, true},
		{"pending at DecideBy", func(r *workflow.Request) { r.DecideBy = now }, true},
		{"pending before DecideBy", func(r *workflow.Request) { r.DecideBy = now.Add(time.Minute) }, false},
		{"approved past RevealBy", func(r *workflow.Request) {
			r.Status, r.RevealBy = workflow.StatusApproved, now.Add(-time.Second)
		}, true},
		{"approved before RevealBy", func(r *workflow.Request) {
			r.Status, r.RevealBy = workflow.StatusApproved, now.Add(time.Hour)
		}, false},
		{"resetting past lease", func(r *workflow.Request) {
			r.Status, r.ResetLease = workflow.StatusResetting, now.Add(-time.Millisecond)
		}, true},
		{"resetting within lease", func(r *workflow.Request) {
			r.Status, r.ResetLease = workflow.StatusResetting, now.Add(time.Minute)
		}, false},
		{"completed", func(r *workflow.Request) { r.Status = workflow.StatusCompleted }, false},
		{"denied", func(r *workflow.Request) { r.Status = workflow.StatusDenied }, false},
	}
	ids := map[string]string{}
	for i, c := range cases {
		r := NewRequest("U"+strconv.Itoa(i), now.Add(-time.Hour))
		r.DecideBy = now.Add(24 * time.Hour)
		if err := s.Create(ctx, r, noLimit); err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, s, r.ID, c.set)
		ids[c.name] = r.ID
	}
	checkDue := func(when string) {
		t.Helper()
		got, err := s.Due(ctx, now, 100)
		if err != nil {
			t.Fatalf("Due: %v", err)
		}
		want := 0
		for _, c := range cases {
			if slices.Contains(got, ids[c.name]) != c.due {
				t.Errorf("%s: Due includes %q: %v, want %v", when, c.name, !c.due, c.due)
			}
			if c.due {
				want++
			}
		}
		if len(got) != want {
			t.Errorf("%s: Due returned %d IDs, want %d", when, len(got), want)
		}
	}
	checkDue("after setup")

	// Due follows updates: ended requests leave, a moved deadline enters.
	change := func(name string, due bool, set func(*workflow.Request)) {
		mustUpdate(t, s, ids[name], set)
		cases[slices.IndexFunc(cases, func(c dueCase) bool { return c.name == name })].due = due
	}
	change("pending past DecideBy", false, func(r *workflow.Request) { r.Status = workflow.StatusExpired })
	change("pending before DecideBy", true, func(r *workflow.Request) { r.DecideBy = now.Add(-time.Minute) })
	change("resetting past lease", false, func(r *workflow.Request) { r.Status = workflow.StatusFailed })
	checkDue("after updates")
	withDeadline := 0
	for _, id := range ids {
		if r, err := s.Get(ctx, id); err == nil {
			if _, ok := r.NextDeadline(); ok {
				withDeadline++
			}
		}
	}
	if n, err := s.Watched(ctx); err != nil || n != withDeadline {
		t.Errorf("Watched = %d, %v; want %d (the requests with a deadline)", n, err, withDeadline)
	}

	if got, err := s.Due(ctx, now, 2); err != nil || len(got) != 2 {
		t.Errorf("Due with max 2 = %v, %v; want 2 IDs", got, err)
	}
	if got, err := s.Due(ctx, now.Add(-48*time.Hour), 100); err != nil || len(got) != 0 {
		t.Errorf("Due two days earlier = %v, %v; want none", got, err)
	}
}

func testClaim(t *testing.T, s workflow.Store) {
	ctx, ttl := t.Context(), time.Second
	claim := func(key string) bool {
		t.Helper()
		ok, err := s.Claim(ctx, key, ttl)
		if err != nil {
			t.Fatalf("Claim(%q): %v", key, err)
		}
		return ok
	}
	if !claim("envelope-1") {
		t.Fatal("first Claim = false, want true")
	}
	if claim("envelope-1") {
		t.Fatal("second Claim within the ttl = true, want false")
	}
	if !claim("envelope-2") {
		t.Fatal("Claim of another key = false, want true")
	}
	time.Sleep(ttl + 200*time.Millisecond)
	if !claim("envelope-1") {
		t.Fatal("Claim after the ttl = false, want true")
	}

	const n = 20
	var mu sync.Mutex
	won := 0
	errs := concurrently(n, func(int) error {
		ok, err := s.Claim(ctx, "envelope-3", time.Minute)
		mu.Lock()
		defer mu.Unlock()
		if ok {
			won++
		}
		return err
	})
	if err := errors.Join(errs...); err != nil || won != 1 {
		t.Errorf("%d concurrent Claims: %d true (errors: %v), want exactly 1", n, won, err)
	}
}

func testPing(t *testing.T, s workflow.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// mustUpdate applies set to request id through Update.
func mustUpdate(t *testing.T, s workflow.Store, id string, set func(*workflow.Request)) {
	t.Helper()
	if _, err := s.Update(t.Context(), id, func(r *workflow.Request) error { set(r); return nil }); err != nil {
		t.Fatalf("Update(%s): %v", id, err)
	}
}

// created returns Standing's count of requests, for a requester whose
// requests have all ended.
func created(ctx context.Context, s workflow.Store, requester string, since time.Time) (int, error) {
	open, n, err := s.Standing(ctx, requester, workflow.ActionReset, since)
	if err == nil && open != nil {
		err = fmt.Errorf("Standing found open request %s", open.ID)
	}
	return n, err
}

// concurrently runs n calls of fn at once and returns their errors.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func dump(r *workflow.Request) string {
	b, _ := json.MarshalIndent(r, "", "  ")
	return string(b)
}

// testAudit: every event a change adds is in the audit log, written with
// the change; refused attempts too; a change that is not saved leaves no
// record; the query's filters select.
func testAudit(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	r := NewRequest("UEMPLOYEE", base)
	if err := s.Create(ctx, r, workflow.Limit{Max: 1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, r.ID, func(r *workflow.Request) {
		if err := r.Decide("UAPPROVER1", true, base.Add(time.Minute), time.Hour); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := s.Update(ctx, r.ID, func(r *workflow.Request) error {
		r.Events = append(r.Events, workflow.Event{At: base.Add(2 * time.Minute), Kind: workflow.EventCancelled})
		return errors.New("not saved")
	}); err == nil {
		t.Fatal("Update saved despite fn's error")
	}
	if err := s.Create(ctx, NewRequest("UEMPLOYEE", base.Add(3*time.Minute)), workflow.Limit{Max: 1, Window: time.Hour}); err == nil {
		t.Fatal("a second open request was created")
	}
	refusal := workflow.AuditRecord{At: base.Add(4 * time.Minute), Event: workflow.EventRefused, User: "UOTHER",
		Account: "Administrator", Code: workflow.CodeProtectedAccount, Detail: "on the protected list"}
	if err := s.Refused(ctx, refusal, workflow.Limit{}); err != nil {
		t.Fatal(err)
	}
	all, err := auditRecords(ctx, s, workflow.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Fatalf("audit log has %d records, want 3: %+v", len(all), all)
	}
	want0 := workflow.AuditRecord{At: base, Event: "requested", RequestID: r.ID, User: "UEMPLOYEE", Account: "jdoe",
		DirectoryID: "d-0123456789", Actor: "UEMPLOYEE", Status: workflow.StatusPending}
	if !all[0].At.Equal(want0.At) || all[0].Event != want0.Event || all[0].RequestID != want0.RequestID || all[0].Status != want0.Status || all[0].Account != "jdoe" {
		t.Errorf("first record %+v, want %+v", all[0], want0)
	}
	if all[1].Event != "approved" || all[1].Status != workflow.StatusApproved || all[1].Approver != "UAPPROVER1" || all[1].Actor != "UAPPROVER1" {
		t.Errorf("second record %+v", all[1])
	}
	if all[2].Event != workflow.EventRefused || all[2].Code != workflow.CodeProtectedAccount || all[2].User != "UOTHER" {
		t.Errorf("refusal record %+v", all[2])
	}
	for _, c := range []struct {
		name string
		q    workflow.AuditQuery
		want int
	}{
		{"by user", workflow.AuditQuery{User: "UEMPLOYEE"}, 2},
		{"by account", workflow.AuditQuery{User: "JDOE"}, 2},
		{"by refused account", workflow.AuditQuery{User: "administrator"}, 1},
		{"approved", workflow.AuditQuery{Status: "approved"}, 1},
		{"refused", workflow.AuditQuery{Status: workflow.EventRefused}, 1},
		{"since", workflow.AuditQuery{Since: base.Add(time.Minute)}, 2},
		{"until", workflow.AuditQuery{Until: base.Add(time.Minute)}, 1},
		{"window", workflow.AuditQuery{Since: base.Add(30 * time.Second), Until: base.Add(2 * time.Minute)}, 1},
	} {
		got, err := auditRecords(ctx, s, c.q)
		if err != nil || len(got) != c.want {
			t.Errorf("%s: %d records (%v), want %d", c.name, len(got), err, c.want)
		}
	}
}

// auditRecords collects what Audit hands over for q.
func auditRecords(ctx context.Context, s workflow.Store, q workflow.AuditQuery) ([]workflow.AuditRecord, error) {
	var out []workflow.AuditRecord
	err := s.Audit(ctx, q, func(rec workflow.AuditRecord) error {
		out = append(out, rec)
		return nil
	})
	return out, err
}

// pagedRecords is more audit records than a store reads at once (both
// stores read 1000 a page), so that Audit must go on from page to page.
const pagedRecords = 2345

// testAuditPages: Audit streams a log longer than a page: every record
// once, in order, with the filters applied across the pages' edges; an
// error from the callback stops it at once and comes back unchanged.
func testAuditPages(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	// Three requests whose events make the log long, in three atomic
	// writes: requests carry their history, and each event is a record.
	var ids []string
	for i, n := range []int{1000, 1000, pagedRecords - 2000} {
		r := NewRequest(fmt.Sprintf("UPAGE%d", i), base.Add(time.Duration(i)*time.Hour))
		for j := len(r.Events); j < n; j++ {
			r.Events = append(r.Events, workflow.Event{At: r.CreatedAt.Add(time.Duration(j) * time.Millisecond), Kind: workflow.EventRequested, Detail: strconv.Itoa(j)})
		}
		if err := s.Create(ctx, r, noLimit); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	all, err := auditRecords(ctx, s, workflow.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != pagedRecords {
		t.Fatalf("Audit handed over %d records, want %d", len(all), pagedRecords)
	}
	for i, rec := range all {
		req, j := i/1000, i%1000
		if rec.RequestID != ids[req] || !rec.At.Equal(base.Add(time.Duration(req)*time.Hour+time.Duration(j)*time.Millisecond)) {
			t.Fatalf("record %d: %+v, want event %d of request %d, in order", i, rec, j, req)
		}
	}
	// A window across the first page's edge, and one user in the middle.
	since, until := base.Add(990*time.Millisecond), base.Add(time.Hour+10*time.Millisecond)
	if got, err := auditRecords(ctx, s, workflow.AuditQuery{Since: since, Until: until}); err != nil || len(got) != 20 {
		t.Errorf("a window across a page's edge: %d records (%v), want 20", len(got), err)
	}
	if got, err := auditRecords(ctx, s, workflow.AuditQuery{User: "UPAGE1"}); err != nil || len(got) != 1000 || got[0].User != "UPAGE1" {
		t.Errorf("one user: %d records (%v), want 1000", len(got), err)
	}
	stop := errors.New("the reader went away")
	n := 0
	err = s.Audit(ctx, workflow.AuditQuery{}, func(workflow.AuditRecord) error {
		n++
		if n == 1500 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 1500 {
		t.Errorf("a callback that fails at record 1500: Audit = %v after %d records, want its error at once", err, n)
	}
}

// testRefusalsCount: a refusal Refused counts against a limit counts like
// a created request (Standing sees it, Create refuses once the limit is
// reached) until it leaves the window; one recorded without a limit does
// not count; both are in the audit log; neither touches another employee.
func testRefusalsCount(t *testing.T, s workflow.Store) {
	ctx, user := t.Context(), "UPROBER"
	limit := workflow.Limit{Max: 3, Window: 24 * time.Hour}
	refuse := func(at time.Time, l workflow.Limit) {
		t.Helper()
		rec := workflow.AuditRecord{At: at, Event: workflow.EventRefused, User: user, Account: "Administrator",
			DirectoryID: "d-0123456789", Actor: user, Code: workflow.CodeProtectedAccount}
		if err := s.Refused(ctx, rec, l); err != nil {
			t.Fatalf("Refused: %v", err)
		}
	}
	attempts := func(since time.Time) int {
		t.Helper()
		n, err := created(ctx, s, user, since)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	refuse(base, limit)
	refuse(base.Add(time.Minute), workflow.Limit{}) // not the employee's doing
	if n := attempts(base.Add(-time.Hour)); n != 1 {
		t.Fatalf("after a counted and an uncounted refusal, Standing counts %d attempts, want 1", n)
	}
	r := NewRequest(user, base.Add(2*time.Minute))
	if err := s.Create(ctx, r, limit); err != nil {
		t.Fatalf("a request after one counted refusal: %v", err)
	}
	mustUpdate(t, s, r.ID, func(r *workflow.Request) {
		if err := r.Cancel(user, base.Add(2*time.Minute)); err != nil {
			t.Fatal(err)
		}
	})
	refuse(base.Add(3*time.Minute), limit)
	if n := attempts(base.Add(-time.Hour)); n != 3 {
		t.Fatalf("Standing counts %d attempts, want 3 (two refusals and a request)", n)
	}
	if n := attempts(base.Add(30 * time.Second)); n != 2 {
		t.Fatalf("Standing after the first refusal counts %d, want 2", n)
	}
	late := NewRequest(user, base.Add(4*time.Minute))
	if err := s.Create(ctx, late, limit); workflow.ErrorCode(err) != workflow.CodeRateLimited {
		t.Fatalf("a request after two counted refusals and a request: %v, want code %s", err, workflow.CodeRateLimited)
	}
	if _, err := s.Get(ctx, late.ID); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Errorf("a rate-limited request was stored: %v", err)
	}
	if n, err := created(ctx, s, "UNEIGHBOUR", base.Add(-time.Hour)); err != nil || n != 0 {
		t.Errorf("another employee's attempts: %d, %v; want 0", n, err)
	}
	// The first refusal leaves the window: one attempt is free again.
	if err := s.Create(ctx, NewRequest(user, base.Add(24*time.Hour+time.Second)), limit); err != nil {
		t.Errorf("a request once the first refusal left the window: %v", err)
	}
	recs, err := auditRecords(ctx, s, workflow.AuditQuery{User: user, Status: workflow.EventRefused})
	if err != nil || len(recs) != 3 {
		t.Errorf("the audit log has %d refusals of %s (%v), want 3", len(recs), user, err)
	}
	// A counted refusal must say whose it is; nothing is written otherwise.
	err = s.Refused(ctx, workflow.AuditRecord{At: base, Event: workflow.EventRefused, Code: workflow.CodeProtectedAccount}, limit)
	if workflow.ErrorCode(err) != workflow.CodeInvalidInput {
		t.Errorf("a counted refusal without a user: %v, want code %s", err, workflow.CodeInvalidInput)
	}
	if recs, _ := auditRecords(ctx, s, workflow.AuditQuery{Status: workflow.EventRefused}); len(recs) != 3 {
		t.Errorf("the refusal without a user was written: %d refusals", len(recs))
	}
}

// testResets: a change that completes a reset adds it to the account's
// history (by objectGUID when known, so that a rename keeps it; else by
// name, in any case); nothing else does.
func testResets(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	guid := "0c1d2e3f-aaaa-4bbb-8ccc-" + strconv.FormatInt(time.Now().UnixNano()%1e12, 10)
	run := func(requester string, acct workflow.Account, at time.Time, end workflow.EventKind) {
		t.Helper()
		r := NewRequest(requester, at)
		r.Account = acct
		if err := s.Create(ctx, r, noLimit); err != nil {
			t.Fatal(err)
		}
		mustUpdate(t, s, r.ID, func(r *workflow.Request) {
			r.Status = workflow.StatusResetting
			r.Events = append(r.Events, workflow.Event{At: at.Add(time.Minute), Kind: workflow.EventRevealed})
		})
		mustUpdate(t, s, r.ID, func(r *workflow.Request) {
			r.Status = map[workflow.EventKind]workflow.Status{workflow.EventCompleted: workflow.StatusCompleted, workflow.EventFailed: workflow.StatusFailed}[end]
			r.Events = append(r.Events, workflow.Event{At: at.Add(2 * time.Minute), Kind: end})
		})
		// A later change of the completed request adds nothing.
		mustUpdate(t, s, r.ID, func(r *workflow.Request) {
			r.Events = append(r.Events, workflow.Event{At: at.Add(3 * time.Minute), Kind: workflow.EventNotified})
		})
	}
	acct := workflow.Account{UserName: "jdoe", GUID: guid}
	if h, err := s.Resets(ctx, acct, base.Add(-time.Hour)); err != nil || h != (workflow.ResetHistory{}) {
		t.Fatalf("Resets of an account never reset = %+v, %v", h, err)
	}
	run("UEMP1", acct, base, workflow.EventCompleted)
	run("UEMP2", acct, base.Add(time.Hour), workflow.EventFailed)
	renamed := workflow.Account{UserName: "jane.doe", GUID: strings.ToUpper(guid)}
	run("UEMP3", renamed, base.Add(2*time.Hour), workflow.EventCompleted)
	run("UEMP4", workflow.Account{UserName: "jdoe"}, base.Add(3*time.Hour), workflow.EventCompleted) // no GUID: another key
	run("UEMP5", workflow.Account{UserName: "JDoe"}, base.Add(4*time.Hour), workflow.EventCompleted)

	for _, c := range []struct {
		acct  workflow.Account
		since time.Time
		want  workflow.ResetHistory
	}{
		{acct, base.Add(-time.Hour), workflow.ResetHistory{Count: 2, Last: base.Add(2*time.Hour + 2*time.Minute)}},
		{renamed, base.Add(-time.Hour), workflow.ResetHistory{Count: 2, Last: base.Add(2*time.Hour + 2*time.Minute)}},
		{acct, base.Add(30 * time.Minute), workflow.ResetHistory{Count: 1, Last: base.Add(2*time.Hour + 2*time.Minute)}},
		{acct, base.Add(3 * time.Hour), workflow.ResetHistory{}},
		{workflow.Account{UserName: "JDOE"}, base, workflow.ResetHistory{Count: 2, Last: base.Add(4*time.Hour + 2*time.Minute)}},
	} {
		h, err := s.Resets(ctx, c.acct, c.since)
		// The stores keep the times to the millisecond.
		if err != nil || !h.Last.Truncate(time.Millisecond).Equal(c.want.Last.Truncate(time.Millisecond)) || h.Count != c.want.Count {
			t.Errorf("Resets(%s since %s) = %+v, %v; want %+v", c.acct.AccountKey(), c.since.Format(time.Kitchen), h, err, c.want)
		}
	}
}

// testRecent: the latest requests created, newest first, the store
// keeping at least RecentKept.
func testRecent(t *testing.T, s workflow.Store) {
	ctx := t.Context()
	if ids, err := s.Recent(ctx, 10); err != nil || len(ids) != 0 {
		t.Fatalf("Recent of an empty store = %v, %v", ids, err)
	}
	var ids []string
	for i := range workflow.RecentKept + 5 {
		r := NewRequest("UEMP"+strconv.Itoa(i), base.Add(time.Duration(i)*time.Second))
		if err := s.Create(ctx, r, noLimit); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	slices.Reverse(ids)
	got, err := s.Recent(ctx, 3)
	if err != nil || !slices.Equal(got, ids[:3]) {
		t.Fatalf("Recent(3) = %v, %v; want %v", got, err, ids[:3])
	}
	got, err = s.Recent(ctx, 1000)
	if err != nil || len(got) < workflow.RecentKept || !slices.Equal(got[:workflow.RecentKept], ids[:workflow.RecentKept]) {
		t.Fatalf("Recent(1000) = %d IDs, %v", len(got), err)
	}
}
