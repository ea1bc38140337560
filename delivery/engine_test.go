package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/testclock"
	"github.com/example/resetbot/store/memstore"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

var t0 = time.Date(2030, 3, 4, 9, 0, 0, 0, time.UTC)

// fakeSender records the work it gets and does what the test says.
type fakeSender struct {
	mu      sync.Mutex
	runs    []delivery.Work
	order   []string                                       // lanes in the order they ran
	do      func(w delivery.Work) (delivery.Result, error) // nil: done, saving "told" with the inbox handled
	inside  int
	peak    int
	release chan struct{} // when set, every Send waits for it
}

func (f *fakeSender) Send(_ context.Context, w delivery.Work) (delivery.Result, error) {
	f.mu.Lock()
	f.runs = append(f.runs, w)
	f.order = append(f.order, w.Lane.String())
	f.inside++
	f.peak = max(f.peak, f.inside)
	do, release := f.do, f.release
	f.mu.Unlock()
	if release != nil {
		<-release
	}
	defer func() {
		f.mu.Lock()
		f.inside--
		f.mu.Unlock()
	}()
	if do != nil {
		return do(w)
	}
	return delivery.Result{Data: []byte(`"told"`), Handled: w.Inbox}, nil
}

func (f *fakeSender) ran() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.order)
}

// world is a store, a clock and an engine working on them.
type world struct {
	t      *testing.T
	clock  *testclock.Clock
	store  *memstore.Store
	sender *fakeSender
	engine *delivery.Engine
	stop   func()
}

func newWorld(t *testing.T, cfg delivery.Config) *world {
	w := &world{t: t, clock: testclock.New(t0), sender: &fakeSender{}}
	w.store = memstore.New(seal.Derive("delivery tests", "requests"), memstore.WithClock(w.clock))
	if cfg.Owner == "" {
		cfg.Owner = "replica-1"
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Hour // the tests that need the poller set it
	}
	w.engine = delivery.New(w.store, w.sender, cfg, w.clock, nil)
	return w
}

// run starts the engine; it stops when the test ends.
func (w *world) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.engine.Run(ctx); close(done) }()
	w.stop = func() { cancel(); <-done; w.engine.Wait() }
	w.t.Cleanup(w.stop)
	time.Sleep(20 * time.Millisecond) // the poller's first look, at once
}

// request creates a pending request of requester asked to approvers, as
// the workflow would, and tells the engine.
func (w *world) request(requester string, approvers ...string) *workflow.Request {
	w.t.Helper()
	r := &workflow.Request{ID: workflow.NewID(), Requester: requester, Account: workflow.Account{UserName: "jdoe"},
		Approvers: approvers, Status: workflow.StatusPending, CreatedAt: w.clock.Now(), DecideBy: w.clock.Now().Add(time.Hour),
		Events: []workflow.Event{{At: w.clock.Now(), Kind: workflow.EventRequested, Actor: requester}}}
	if err := w.store.Create(context.Background(), r, workflow.Limit{}); err != nil {
		w.t.Fatal(err)
	}
	w.engine.Changed(r, 0)
	return r
}

// idle waits until the engine has nothing queued, running or waiting.
func (w *world) idle() {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.engine.Pending() > 0 {
		if time.Now().After(deadline) {
			w.t.Fatalf("the engine still has %d lanes after 10s", w.engine.Pending())
		}
		time.Sleep(time.Millisecond)
	}
}

// due returns the lanes due in the store at the clock's time plus d.
func (w *world) due(d time.Duration) []string {
	w.t.Helper()
	lanes, err := w.store.DueLanes(context.Background(), w.clock.Now().Add(d), 0)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, l := range lanes {
		out = append(out, l.String())
	}
	return out
}

// A change runs the lanes it marked, each once, with the queue's inbox;
// what the lanes saved is what they find next time, and nothing is left
// due.
func TestChangesRunTheirLanesOnce(t *testing.T) {
	w := newWorld(t, delivery.Config{})
	w.run()
	r := w.request("UEMP", "UAPP1", "UAPP2")
	w.idle()
	want := []string{delivery.Audit(r.ID).String(), delivery.Queue("UAPP1").String(), delivery.Queue("UAPP2").String(),
		delivery.Home("UEMP").String(), delivery.Home("UAPP1").String(), delivery.Home("UAPP2").String()}
	if got := w.sender.ran(); !sameSet(got, want) {
		t.Fatalf("lanes run %v, want each of %v once", got, want)
	}
	for _, run := range w.sender.runs {
		if (run.Lane.Kind == delivery.KindQueue || run.Lane.Kind == delivery.KindHome) && !slices.Equal(run.Inbox, []string{delivery.Item(r.ID, 1)}) {
			t.Errorf("%s ran with inbox %v, want the new request", run.Lane, run.Inbox)
		}
	}
	if due := w.due(24 * time.Hour); len(due) != 0 {
		t.Errorf("lanes still due after they ran: %v", due)
	}
	// The next change: the lanes find what they saved; the queues the
	// request that left them.
	if _, err := w.store.Update(context.Background(), r.ID, func(r *workflow.Request) error {
		return r.Decide("UAPP2", false, w.clock.Now(), time.Hour)
	}); err != nil {
		t.Fatal(err)
	}
	r, _ = w.store.Get(context.Background(), r.ID)
	w.engine.Changed(r, 1)
	w.idle()
	for _, run := range w.sender.runs[6:] {
		if want := `"told"`; run.Lane.Kind == delivery.KindPeople {
			if run.Data != nil {
				t.Errorf("the employee's lane ran first with %q, want nothing", run.Data)
			}
		} else if string(run.Data) != want {
			t.Errorf("%s ran with %q, want what it saved", run.Lane, run.Data)
		}
	}
	if n := len(w.sender.runs); n != 13 {
		t.Errorf("%d runs after two changes, want 13 (6 for the request, 7 for the decision)", n)
	}
}

// Lanes wait for a worker in the order people wait for them: a lane with
// a click to answer first, then the employees' DMs, the approvers'
// queues, the Home tabs, the audit channel; in arrival order within each.
func TestLanesWaitInTheOrderPeopleWaitForThem(t *testing.T) {
	w := newWorld(t, delivery.Config{Workers: 1})
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	w.sender.release = release
	w.run()
	blocker := w.request("UBLOCK", "UAPPB") // its first lane holds the only worker
	waitFor(t, func() bool { return len(w.sender.ran()) == 1 })
	a := w.request("UA", "UAPPA")
	b := w.request("UB", "UAPPB2")
	// A click on UAPPA's message: its queue goes first.
	w.engine.Expect(delivery.Queue("UAPPA"), delivery.Reply{Message: "DUAPPA/1.1", URL: "https://x/1", Expires: t0.Add(time.Hour)})
	unblock()
	w.idle()
	got := w.sender.ran()[1:]
	// The queues before the audit channel; a queue with a click first.
	// (The blocker's first lane took the worker; its other one waited.)
	wantOrder := []string{
		delivery.Queue("UAPPA").String(), delivery.Queue("UAPPB").String(), delivery.Queue("UAPPB2").String(),
		delivery.Home("UBLOCK").String(), delivery.Home("UAPPB").String(), delivery.Home("UA").String(), delivery.Home("UAPPA").String(),
		delivery.Home("UB").String(), delivery.Home("UAPPB2").String(),
		delivery.Audit(blocker.ID).String(), delivery.Audit(a.ID).String(), delivery.Audit(b.ID).String(),
	}
	first := w.sender.ran()[0]
	if first != delivery.Queue("UAPPB").String() && first != delivery.Audit(blocker.ID).String() &&
		first != delivery.Home("UBLOCK").String() && first != delivery.Home("UAPPB").String() {
		t.Fatalf("the first lane run was %s, want one of the blocker's", first)
	}
	wantOrder = slices.DeleteFunc(wantOrder, func(l string) bool { return l == first })
	if !slices.Equal(got, wantOrder) {
		t.Errorf("lanes ran in the order\n%v\nwant\n%v", got, wantOrder)
	}
}

// At most Workers lanes run at once; the others wait as names in a
// queue, and all run.
func TestWorkersBoundTheLanesAtOnce(t *testing.T) {
	w := newWorld(t, delivery.Config{Workers: 3})
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock)
	w.sender.release = release
	w.run()
	for i := range 12 {
		w.request(fmt.Sprintf("U%d", i), fmt.Sprintf("UAPP%d", i))
	}
	waitFor(t, func() bool { return len(w.sender.ran()) == 3 })
	// Each request: its audit lane and its employee's Home; the one
	// approver's queue and Home.
	if n := w.engine.Pending(); n != 12*4 {
		t.Errorf("%d lanes pending, want %d", n, 12*4)
	}
	unblock()
	w.idle()
	if w.sender.peak != 3 {
		t.Errorf("%d lanes ran at once, want 3", w.sender.peak)
	}
	if n := len(w.sender.ran()); n < 12*4 {
		t.Errorf("%d runs, want every lane run", n)
	}
}

// A lane that waits for a rate-limited key keeps its lease (another
// replica cannot take it) and what it sent, and runs again when woken,
// not by a timer; should its replica stop, the lane is due again when
// the lease ends.
func TestWaitingLaneRunsWhenWoken(t *testing.T) {
	w := newWorld(t, delivery.Config{Lease: time.Minute})
	var mu sync.Mutex
	var wake func()
	waited := false
	w.sender.do = func(wk delivery.Work) (delivery.Result, error) {
		if wk.Lane.Kind != delivery.KindAudit {
			return delivery.Result{Handled: wk.Inbox}, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if !waited {
			waited = true
			return delivery.Result{Data: []byte(`"half"`), Wait: func(f func()) { mu.Lock(); wake = f; mu.Unlock() }}, nil
		}
		return delivery.Result{Data: []byte(`"all"`)}, nil
	}
	w.run()
	r := w.request("UEMP", "UAPP1")
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return wake != nil })
	l := delivery.Audit(r.ID)
	if _, ok, _ := w.store.Take(context.Background(), l, "replica-2", w.clock.Now(), w.clock.Now().Add(time.Minute)); ok {
		t.Fatal("another replica took a lane that waits for a key here")
	}
	if due := w.due(30 * time.Second); slices.Contains(due, l.String()) {
		t.Errorf("a waiting lane is due before its lease ends: %v", due)
	}
	if due := w.due(time.Minute); !slices.Contains(due, l.String()) {
		t.Errorf("a waiting lane is not due when its lease ends (should this replica stop): %v", due)
	}
	time.Sleep(20 * time.Millisecond)
	if n := countRuns(w.sender.ran(), l.String()); n != 1 {
		t.Fatalf("the waiting lane ran %d times before it was woken", n)
	}
	mu.Lock()
	wake()
	mu.Unlock()
	w.idle()
	if n := countRuns(w.sender.ran(), l.String()); n != 2 {
		t.Fatalf("the lane ran %d times, want 2 (once woken)", n)
	}
	if run := w.sender.runs[len(w.sender.runs)-1]; string(run.Data) != `"half"` {
		t.Errorf("woken, the lane found %q, want what it had sent", run.Data)
	}
	if due := w.due(24 * time.Hour); len(due) != 0 {
		t.Errorf("lanes left due: %v", due)
	}
}

// A lane whose Send fails is tried again Retry later, by the poller, not
// before.
func TestFailedLaneIsTriedAgain(t *testing.T) {
	w := newWorld(t, delivery.Config{Retry: 10 * time.Second, Poll: 5 * time.Millisecond})
	failing := true
	var mu sync.Mutex
	w.sender.do = func(wk delivery.Work) (delivery.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if wk.Lane.Kind == delivery.KindAudit && failing {
			return delivery.Result{}, errors.New("slack is down")
		}
		return delivery.Result{Handled: wk.Inbox}, nil
	}
	w.run()
	r := w.request("UEMP", "UAPP1")
	l := delivery.Audit(r.ID)
	w.idle()
	if !slices.Contains(w.due(10*time.Second), l.String()) || slices.Contains(w.due(9*time.Second), l.String()) {
		t.Fatalf("after a failure the lane is due at %v, want 10s later", w.due(time.Hour))
	}
	runs := countRuns(w.sender.ran(), l.String())
	time.Sleep(30 * time.Millisecond) // polls: nothing due yet
	if n := countRuns(w.sender.ran(), l.String()); n != runs {
		t.Fatalf("the failed lane ran again before its retry time")
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	w.clock.Add(10 * time.Second)
	waitFor(t, func() bool { return countRuns(w.sender.ran(), l.String()) == runs+1 })
	w.idle()
	if due := w.due(24 * time.Hour); len(due) != 0 {
		t.Errorf("lanes left due after the retry: %v", due)
	}
}

// A replica that took a lane and stopped leaves it leased; once the
// lease ends another replica's poller takes it over, with what the first
// one saved.
func TestLeaseEndHandsTheLaneOver(t *testing.T) {
	w := newWorld(t, delivery.Config{Owner: "replica-2", Poll: 5 * time.Millisecond})
	r := w.request("UEMP", "UAPP1")
	l := delivery.Audit(r.ID)
	tk, ok, err := w.store.Take(context.Background(), l, "replica-1", w.clock.Now(), w.clock.Now().Add(time.Minute))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := w.store.Put(context.Background(), tk, "replica-1", []byte(`"before the crash"`), nil, w.clock.Now().Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}
	w.run()                                                     // replica-2; its own lanes of r run at once, except l
	waitFor(t, func() bool { return len(w.sender.ran()) >= 1 }) // the queue
	time.Sleep(20 * time.Millisecond)
	if countRuns(w.sender.ran(), l.String()) != 0 {
		t.Fatal("a lane leased by another replica ran")
	}
	w.clock.Add(time.Minute)
	waitFor(t, func() bool { return countRuns(w.sender.ran(), l.String()) == 1 })
	w.idle()
	for _, run := range w.sender.runs {
		if run.Lane == l && string(run.Data) != `"before the crash"` {
			t.Errorf("taken over with %q, want what the first replica saved", run.Data)
		}
	}
}

// A click's reply reaches the lane that drew the clicked message, at its
// next run; a reply the lane does not use is kept for the run after,
// until it expires.
func TestRepliesReachTheirLane(t *testing.T) {
	w := newWorld(t, delivery.Config{})
	var mu sync.Mutex
	use := false
	w.sender.do = func(wk delivery.Work) (delivery.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		res := delivery.Result{Handled: wk.Inbox}
		if use {
			res.UsedReplies = wk.Replies
		}
		return res, nil
	}
	w.run()
	q := delivery.Queue("UAPP1")
	reply := delivery.Reply{Message: "DUAPP1/1.1", URL: "https://x/1", Expires: t0.Add(time.Minute)}
	w.engine.Expect(q, reply)
	time.Sleep(10 * time.Millisecond)
	if len(w.sender.ran()) != 0 {
		t.Fatal("Expect ran the lane: the change it precedes does")
	}
	r := w.request("UEMP", "UAPP1")
	w.idle()
	last := func() delivery.Work {
		for i := len(w.sender.runs) - 1; i >= 0; i-- {
			if w.sender.runs[i].Lane == q {
				return w.sender.runs[i]
			}
		}
		t.Fatal("the queue did not run")
		return delivery.Work{}
	}
	if got := last().Replies; !slices.Equal(got, []delivery.Reply{reply}) {
		t.Fatalf("the queue ran with replies %v, want the click's", got)
	}
	mu.Lock()
	use = true
	mu.Unlock()
	w.engine.Wake(q)
	w.idle()
	if got := last().Replies; !slices.Equal(got, []delivery.Reply{reply}) {
		t.Fatalf("an unused reply was not kept: %v", got)
	}
	w.engine.Wake(q)
	w.idle()
	if got := last().Replies; len(got) != 0 {
		t.Fatalf("a used reply came again: %v", got)
	}
	w.engine.Expect(q, reply)
	w.clock.Add(time.Minute)
	w.engine.Wake(q)
	w.idle()
	if got := last().Replies; len(got) != 0 {
		t.Fatalf("an expired reply came: %v", got)
	}
	if last := w.sender.runs[len(w.sender.runs)-1]; last.Lane != q {
		t.Errorf("woken for %s, %s ran", q, last.Lane)
	}
	_ = r.ID
}

func countRuns(order []string, lane string) int {
	n := 0
	for _, l := range order {
		if l == lane {
			n++
		}
	}
	return n
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// waitFor polls cond (every millisecond, for at most 10s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// Audit lanes held up (a throttled audit channel) take at most
// AuditWorkers workers: the employees' and approvers' lanes still run.
func TestAuditLanesLeaveWorkersForPeople(t *testing.T) {
	w := newWorld(t, delivery.Config{Workers: 4})
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	var mu sync.Mutex
	auditIn, auditPeak := 0, 0
	w.sender.do = func(wk delivery.Work) (delivery.Result, error) {
		if wk.Lane.Kind == delivery.KindAudit {
			mu.Lock()
			auditIn++
			auditPeak = max(auditPeak, auditIn)
			mu.Unlock()
			<-release
			mu.Lock()
			auditIn--
			mu.Unlock()
		}
		return delivery.Result{Handled: wk.Inbox}, nil
	}
	w.run()
	t.Cleanup(unblock) // before the engine stops: its workers wait for it
	for i := range 8 {
		w.request(fmt.Sprintf("U%d", i), fmt.Sprintf("UAPP%d", i))
	}
	// Every other lane runs while the audit lanes are stuck.
	waitFor(t, func() bool {
		n := 0
		for _, l := range w.sender.ran() {
			if !strings.HasPrefix(l, "audit:") {
				n++
			}
		}
		return n == 8*3 // the queues, and the Homes of the employees and the approvers
	})
	unblock()
	w.idle()
	if auditPeak != 1 {
		t.Errorf("%d audit lanes ran at once, want 1 (a quarter of 4 workers)", auditPeak)
	}
}

// A lane that asks to run again soon (an approver's coalescing window)
// runs again then, here, without waiting for the poller.
func TestLaneRunsAgainAtItsNextTime(t *testing.T) {
	w := newWorld(t, delivery.Config{Poll: time.Second})
	var mu sync.Mutex
	asked := false
	w.sender.do = func(wk delivery.Work) (delivery.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		if wk.Lane.Kind == delivery.KindQueue && !asked {
			asked = true
			return delivery.Result{Next: w.clock.Now().Add(50 * time.Millisecond)}, nil // inbox left for then
		}
		return delivery.Result{Handled: wk.Inbox}, nil
	}
	w.run()
	w.request("UEMP", "UAPP1")
	q := delivery.Queue("UAPP1").String()
	waitFor(t, func() bool { return countRuns(w.sender.ran(), q) == 2 })
	w.idle()
	if due := w.due(24 * time.Hour); len(due) != 0 {
		t.Errorf("lanes left due: %v", due)
	}
}
