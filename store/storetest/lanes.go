package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

// LaneStore is a store of requests that also keeps the chat delivery
// lanes: every store of the bot is both.
type LaneStore interface {
	workflow.Store
	delivery.Store
}

// RunLanes checks a store's delivery lanes against the contract in
// delivery/lane.go: changes mark their lanes in the same write, leases,
// due times, inboxes, and records that round-trip. open returns a new,
// empty store sealing with Key.
func RunLanes(t *testing.T, open func(t *testing.T) LaneStore) {
	tests := []struct {
		name string
		test func(*testing.T, LaneStore)
	}{
		{"ChangesMarkTheirLanes", testChangesMarkTheirLanes},
		{"TakeAndPut", testTakeAndPut},
		{"MarkWhileTaken", testMarkWhileTaken},
		{"LeaseEnds", testLeaseEnds},
		{"OneTaker", testOneTaker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, open(t))
		})
	}
}

// due returns the lanes due at now, by name.
func due(t *testing.T, s LaneStore, now time.Time) []string {
	t.Helper()
	lanes, err := s.DueLanes(t.Context(), now, 0)
	if err != nil {
		t.Fatalf("DueLanes: %v", err)
	}
	var names []string
	for _, l := range lanes {
		names = append(names, l.String())
	}
	slices.Sort(names)
	return names
}

func laneNames(ls ...delivery.Lane) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.String())
	}
	slices.Sort(out)
	return out
}

// take takes l for owner, failing the test unless it could.
func take(t *testing.T, s LaneStore, l delivery.Lane, owner string) delivery.Taken {
	t.Helper()
	now := time.Now()
	tk, ok, err := s.Take(t.Context(), l, owner, now, now.Add(time.Minute))
	if err != nil || !ok {
		t.Fatalf("Take(%s) by %s = %v, %v; want it taken", l, owner, ok, err)
	}
	return tk
}

// testChangesMarkTheirLanes: Create marks the request's lanes, its
// approvers' queues and the Homes of the employee and the approvers (with
// the request in their inboxes), in the same
// write; a decision marks them again; a reveal alone marks nothing; a
// refused Create or a failed Update marks nothing.
func testChangesMarkTheirLanes(t *testing.T, s LaneStore) {
	ctx := t.Context()
	r := NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, noLimit); err != nil {
		t.Fatal(err)
	}
	far := time.Now().Add(time.Hour)
	homes := []delivery.Lane{delivery.Home("UEMPLOYEE"), delivery.Home("UAPPROVER1"), delivery.Home("UAPPROVER2")}
	created := laneNames(append([]delivery.Lane{delivery.Audit(r.ID), delivery.Queue("UAPPROVER1"), delivery.Queue("UAPPROVER2")}, homes...)...)
	if got := due(t, s, far); !slices.Equal(got, created) {
		t.Fatalf("after Create, due lanes %v, want %v", got, created)
	}
	lanes := append([]delivery.Lane{delivery.People(r.ID), delivery.Audit(r.ID), delivery.Queue("UAPPROVER1"), delivery.Queue("UAPPROVER2")}, homes...)
	all := laneNames(lanes...)
	if got := due(t, s, time.Now().Add(-time.Hour)); len(got) != 0 {
		t.Errorf("lanes due an hour before the change: %v", got)
	}
	for _, l := range lanes {
		tk := take(t, s, l, "replica-1")
		want := []string(nil)
		if l.Kind == delivery.KindQueue || l.Kind == delivery.KindHome {
			want = []string{delivery.Item(r.ID, 1)}
		}
		if !slices.Equal(tk.Inbox, want) || tk.Data != nil {
			t.Errorf("%s taken with inbox %v and data %q, want inbox %v and no data", l, tk.Inbox, tk.Data, want)
		}
		// A request's lane is taken with its request; a person's without.
		if wantReq := l.Request() != ""; (tk.Request != nil) != wantReq || wantReq && (tk.Request.ID != r.ID || tk.Request.Requester != r.Requester || tk.Request.Status != r.Status) {
			t.Errorf("%s taken with request %+v, want %v", l, tk.Request, wantReq)
		}
		if err := s.Put(ctx, tk, "replica-1", []byte(`{"told":"`+l.String()+`"}`), tk.Inbox, time.Time{}, true); err != nil {
			t.Fatalf("Put(%s): %v", l, err)
		}
	}
	if got := due(t, s, far); len(got) != 0 {
		t.Fatalf("after every lane was put done, due lanes %v", got)
	}

	// A failed Update and a refused Create mark nothing.
	if _, err := s.Update(ctx, r.ID, func(r *workflow.Request) error {
		r.Events = append(r.Events, workflow.Event{At: time.Now(), Kind: workflow.EventCancelled})
		return errors.New("not saved")
	}); err == nil {
		t.Fatal("Update saved despite fn's error")
	}
	if err := s.Create(ctx, NewRequest("UEMPLOYEE", time.Now()), noLimit); workflow.ErrorCode(err) != workflow.CodeOpenRequest {
		t.Fatalf("a second open request: %v", err)
	}
	if got := due(t, s, far); len(got) != 0 {
		t.Fatalf("a change that was not saved marked %v", got)
	}

	mustUpdate(t, s, r.ID, func(r *workflow.Request) {
		if err := r.Decide("UAPPROVER2", true, time.Now(), time.Hour); err != nil {
			t.Fatal(err)
		}
	})
	if got := due(t, s, far); !slices.Equal(got, all) {
		t.Fatalf("after the decision, due lanes %v, want %v", got, all)
	}
	tk := take(t, s, delivery.Queue("UAPPROVER1"), "replica-2")
	if want := `{"told":"queue:UAPPROVER1"}`; string(tk.Data) != want || !slices.Equal(tk.Inbox, []string{delivery.Item(r.ID, 2)}) {
		t.Errorf("queue record %q with inbox %v, want %s and the request again", tk.Data, tk.Inbox, want)
	}
	for _, l := range lanes {
		tk := take(t, s, l, "replica-2")
		if err := s.Put(ctx, tk, "replica-2", nil, tk.Inbox, time.Time{}, true); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate(t, s, r.ID, func(r *workflow.Request) {
		if err := r.BeginReset("UEMPLOYEE", "replica-2", time.Now(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	})
	if got := due(t, s, far); len(got) != 0 {
		t.Errorf("a reveal alone marked %v", got)
	}
	tk = take(t, s, delivery.People(r.ID), "replica-3")
	if want := `{"told":"people:` + r.ID + `"}`; string(tk.Data) != want {
		t.Errorf("a Put without data lost the record: %q, want %s", tk.Data, want)
	}
}

// testTakeAndPut: a lane's lease keeps other owners out until released;
// Put saves the record, removes only the handled items, and sets the due
// time; Put by an owner without the lease saves nothing.
func testTakeAndPut(t *testing.T, s LaneStore) {
	ctx := t.Context()
	r := NewRequest("UEMPLOYEE", time.Now())
	r.Approvers = []string{"UQUEUE"}
	if err := s.Create(ctx, r, noLimit); err != nil {
		t.Fatal(err)
	}
	other := NewRequest("UOTHER", time.Now())
	other.Approvers = []string{"UQUEUE"}
	if err := s.Create(ctx, other, noLimit); err != nil {
		t.Fatal(err)
	}
	q := delivery.Queue("UQUEUE")
	tk := take(t, s, q, "replica-1")
	if want := []string{delivery.Item(r.ID, 1), delivery.Item(other.ID, 1)}; !sameSet(tk.Inbox, want) {
		t.Fatalf("inbox %v, want %v", tk.Inbox, want)
	}
	now := time.Now()
	if _, ok, err := s.Take(ctx, q, "replica-2", now, now.Add(time.Minute)); ok || err != nil {
		t.Fatalf("a second owner took a leased lane: %v, %v", ok, err)
	}
	if err := s.Put(ctx, tk, "replica-2", []byte(`{"x":1}`), nil, time.Time{}, true); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Fatalf("Put by an owner without the lease: %v, want code %s", err, workflow.CodeConflict)
	}
	// The holder takes it again (its lease goes on) and keeps it.
	tk = take(t, s, q, "replica-1")
	next := time.Now().Add(30 * time.Minute)
	if err := s.Put(ctx, tk, "replica-1", []byte(`{"rows":1}`), []string{delivery.Item(r.ID, 1)}, next, false); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Take(ctx, q, "replica-2", time.Now(), time.Now().Add(time.Minute)); ok {
		t.Fatal("Put without release let the lease go")
	}
	if got := due(t, s, next.Add(-time.Second)); slices.Contains(got, q.String()) {
		t.Errorf("the lane is due before the next time Put gave: %v", got)
	}
	if got := due(t, s, next); !slices.Contains(got, q.String()) {
		t.Errorf("the lane is not due at the next time Put gave: %v", got)
	}
	tk = take(t, s, q, "replica-1")
	if string(tk.Data) != `{"rows":1}` || !slices.Equal(tk.Inbox, []string{delivery.Item(other.ID, 1)}) {
		t.Fatalf("after Put: data %q, inbox %v; want the saved data and the unhandled item", tk.Data, tk.Inbox)
	}
	if err := s.Put(ctx, tk, "replica-1", []byte(`{"rows":2}`), tk.Inbox, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	if got := due(t, s, time.Now().Add(time.Hour)); slices.Contains(got, q.String()) {
		t.Errorf("a lane put with nothing left is still due: %v", got)
	}
	tk = take(t, s, q, "replica-2")
	if string(tk.Data) != `{"rows":2}` || len(tk.Inbox) != 0 {
		t.Errorf("released lane taken by another owner: data %q, inbox %v", tk.Data, tk.Inbox)
	}
}

// testMarkWhileTaken: a change that marks a lane while its holder works
// on it keeps it due after the holder's Put, whatever next the holder
// gives, with the new item in its inbox.
func testMarkWhileTaken(t *testing.T, s LaneStore) {
	ctx := t.Context()
	r := NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, noLimit); err != nil {
		t.Fatal(err)
	}
	q := delivery.Queue("UAPPROVER1")
	tk := take(t, s, q, "replica-1")
	mustUpdate(t, s, r.ID, func(r *workflow.Request) {
		if err := r.Cancel("UEMPLOYEE", time.Now()); err != nil {
			t.Fatal(err)
		}
	})
	later := time.Now().Add(time.Hour)
	if err := s.Put(ctx, tk, "replica-1", []byte(`{}`), tk.Inbox, later, true); err != nil {
		t.Fatal(err)
	}
	if got := due(t, s, time.Now().Add(time.Second)); !slices.Contains(got, q.String()) {
		t.Errorf("a lane marked while taken is not due after Put: %v", got)
	}
	tk = take(t, s, q, "replica-2")
	if !slices.Equal(tk.Inbox, []string{delivery.Item(r.ID, 2)}) {
		t.Errorf("inbox after a mark during the lease: %v, want the request's new version", tk.Inbox)
	}
}

// testLeaseEnds: once a lease ends, another owner takes the lane, and
// the former holder's Put saves nothing.
func testLeaseEnds(t *testing.T, s LaneStore) {
	ctx := t.Context()
	r := NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, noLimit); err != nil {
		t.Fatal(err)
	}
	l := delivery.Audit(r.ID)
	now := time.Now()
	tk, ok, err := s.Take(ctx, l, "replica-1", now, now.Add(200*time.Millisecond))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := due(t, s, now.Add(100*time.Millisecond)); slices.Contains(got, l.String()) {
		t.Errorf("a lane is due while its lease runs: %v", got)
	}
	if got := due(t, s, now.Add(time.Second)); !slices.Contains(got, l.String()) {
		t.Errorf("a lane whose lease ended is not due: %v", got)
	}
	time.Sleep(300 * time.Millisecond)
	tk2 := take(t, s, l, "replica-2")
	if err := s.Put(ctx, tk, "replica-1", []byte(`{"stale":true}`), nil, time.Time{}, true); workflow.ErrorCode(err) != workflow.CodeConflict {
		t.Errorf("Put after the lease ended and another took the lane: %v, want code %s", err, workflow.CodeConflict)
	}
	if err := s.Put(ctx, tk2, "replica-2", []byte(`{"fresh":true}`), nil, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	if tk3 := take(t, s, l, "replica-3"); string(tk3.Data) != `{"fresh":true}` {
		t.Errorf("record %q, want the new holder's", tk3.Data)
	}
}

// testOneTaker: of many owners taking one lane at once, one gets it.
func testOneTaker(t *testing.T, s LaneStore) {
	r := NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(t.Context(), r, noLimit); err != nil {
		t.Fatal(err)
	}
	const n = 20
	won := make([]bool, n)
	errs := concurrently(n, func(i int) error {
		now := time.Now()
		_, ok, err := s.Take(t.Context(), delivery.Audit(r.ID), "replica-"+string(rune('a'+i)), now, now.Add(time.Minute))
		won[i] = ok
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := len(slices.DeleteFunc(won, func(w bool) bool { return !w })); n != 1 {
		t.Errorf("%d owners took the lane at once, want 1", n)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TamperLane rewrites the stored record of a lane with edit, behind the
// store's back.
type TamperLane func(t *testing.T, l delivery.Lane, edit func(stored []byte) []byte)

// RunLaneTampering checks that a store never hands out a lane record it
// did not seal for that lane (workflow.CodeTampered, with a
// *workflow.Tampered cause naming the lane), and that the lane then
// starts again from nothing: a record copied from another lane cannot
// make the bot update another person's messages.
func RunLaneTampering(t *testing.T, open func(t *testing.T) (LaneStore, TamperLane)) {
	edits := []struct {
		name string
		edit func(t *testing.T, s LaneStore, tamper TamperLane, l delivery.Lane) func([]byte) []byte
	}{
		{"channel", func(t *testing.T, _ LaneStore, _ TamperLane, _ delivery.Lane) func([]byte) []byte {
			return func(b []byte) []byte {
				if !bytes.Contains(b, []byte("D0EMPLOYEE")) {
					t.Fatalf("the stored record holds no channel: %s", b)
				}
				return bytes.Replace(b, []byte("D0EMPLOYEE"), []byte("D0STRANGER"), 1)
			}
		}},
		{"unsealed", func(*testing.T, LaneStore, TamperLane, delivery.Lane) func([]byte) []byte {
			return func([]byte) []byte { return []byte(`{"channel":"D0STRANGER","ts":"1.1"}`) }
		}},
		{"another key", func(t *testing.T, _ LaneStore, _ TamperLane, l delivery.Lane) func([]byte) []byte {
			foreign, err := seal.Derive("someone else", "requests").SealLane(l.String(), []byte(`{"channel":"D0STRANGER"}`))
			if err != nil {
				t.Fatal(err)
			}
			return func([]byte) []byte { return foreign }
		}},
		{"another lane's record", func(t *testing.T, s LaneStore, tamper TamperLane, _ delivery.Lane) func([]byte) []byte {
			other := NewRequest("USTRANGER", time.Now())
			if err := s.Create(t.Context(), other, noLimit); err != nil {
				t.Fatal(err)
			}
			ol := delivery.People(other.ID)
			tk := take(t, s, ol, "replica-1")
			if err := s.Put(t.Context(), tk, "replica-1", []byte(`{"channel":"D0STRANGER","ts":"9.9"}`), nil, time.Time{}, true); err != nil {
				t.Fatal(err)
			}
			var copied []byte
			tamper(t, ol, func(b []byte) []byte { copied = bytes.Clone(b); return b })
			return func([]byte) []byte { return copied }
		}},
		{"a request's record", func(t *testing.T, s LaneStore, _ TamperLane, l delivery.Lane) func([]byte) []byte {
			r := NewRequest("USTRANGER", time.Now())
			sealed, err := Key.Seal(r)
			if err != nil {
				t.Fatal(err)
			}
			return func([]byte) []byte { return sealed }
		}},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s, tamper := open(t)
			ctx := t.Context()
			r := NewRequest("UEMPLOYEE", time.Now())
			if err := s.Create(ctx, r, noLimit); err != nil {
				t.Fatal(err)
			}
			l := delivery.People(r.ID)
			tk := take(t, s, l, "replica-1")
			if err := s.Put(ctx, tk, "replica-1", []byte(`{"channel":"D0EMPLOYEE","ts":"1.1"}`), nil, time.Time{}, true); err != nil {
				t.Fatal(err)
			}
			tamper(t, l, e.edit(t, s, tamper, l))
			now := time.Now()
			_, ok, err := s.Take(ctx, l, "replica-2", now, now.Add(time.Minute))
			var cause *workflow.Tampered
			if workflow.ErrorCode(err) != workflow.CodeTampered || !errors.As(err, &cause) || cause.ID != l.String() || ok {
				t.Fatalf("Take of a tampered record: %v, %v; want code %s naming %s", ok, err, workflow.CodeTampered, l)
			}
			tk = take(t, s, l, "replica-2")
			if tk.Data != nil {
				t.Errorf("after the refusal the lane holds %q, want nothing (moved aside)", tk.Data)
			}
		})
	}
}
