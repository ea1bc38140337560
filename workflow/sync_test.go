package workflow

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// heldNotifier holds every Sync until release is closed, and records how
// many run at once per lane and whether each ran with the context of the
// call that caused it.
type heldNotifier struct {
	*fakeNotifier
	release chan struct{}
	now     func() time.Time

	mu       sync.Mutex
	inFlight [2]int
	peak     [2]int
	calls    [2]int
	foreign  []string      // requests synced under another request's context
	shortest time.Duration // the least lease left when a Sync began
}

type askerKey struct{}

func (n *heldNotifier) Sync(ctx context.Context, r *Request, l Lane) (Messages, int, error) {
	n.mu.Lock()
	n.inFlight[l]++
	n.calls[l]++
	n.peak[l] = max(n.peak[l], n.inFlight[l])
	if left := r.Outbox[l].Until.Sub(n.now()); n.shortest == 0 || left < n.shortest {
		n.shortest = left
	}
	if ctx.Value(askerKey{}) != r.Requester {
		n.foreign = append(n.foreign, r.ID)
	}
	n.mu.Unlock()
	<-n.release
	n.mu.Lock()
	n.inFlight[l]--
	n.mu.Unlock()
	return n.fakeNotifier.Sync(ctx, r, l)
}

// A burst of requests runs at most MaxSyncs chat syncs per lane at once;
// the rest wait as names in a queue, each with the context of the call
// that asked for it (which carries the click to answer), and all finish.
// A sync whose lease ran low while it waited renews it before it sends.
func TestSyncsBeyondTheLimitWaitTheirTurn(t *testing.T) {
	const users, limit = 12, 3
	note := &heldNotifier{fakeNotifier: &fakeNotifier{}, release: make(chan struct{})}
	h := newHarness(t, func(c *Config, d *Deps) {
		c.MaxSyncs = limit
		people := fakeIdentity{}
		for k, v := range d.Identity.(fakeIdentity) {
			people[k] = v
		}
		d.Identity = people
		d.Notifier = note
	})
	note.now = h.clock.Now
	var ids []string
	for i := range users {
		user, email := fmt.Sprintf("UBURST%d", i), fmt.Sprintf("burst%d@corp.example.com", i)
		h.svc.deps.Identity.(fakeIdentity)[user] = Person{Email: email}
		h.accts.set(func(f *fakeAccounts) { f.byEmail[email] = Account{UserName: fmt.Sprintf("burst%d", i)} })
		r, err := h.svc.Submit(context.WithValue(context.Background(), askerKey{}, user), user)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	h.svc.mu.Lock()
	queued := [2]int{len(h.svc.queue[LanePeople]), len(h.svc.queue[LaneAudit])}
	h.svc.mu.Unlock()
	if queued != [2]int{users - limit, users - limit} {
		t.Errorf("queued syncs per lane = %v, want %d each", queued, users-limit)
	}
	h.clock.Add(90 * time.Second) // the queued syncs' leases run low
	close(note.release)
	h.svc.Wait()

	note.mu.Lock()
	defer note.mu.Unlock()
	if note.peak != [2]int{limit, limit} {
		t.Errorf("most syncs at once per lane = %v, want %d", note.peak, limit)
	}
	if note.calls != [2]int{users, users} {
		t.Errorf("syncs per lane = %v, want %d each", note.calls, users)
	}
	if lease := h.svc.cfg.SyncLease; note.shortest < lease/2 {
		t.Errorf("a sync began with %s of its %s lease left", note.shortest, lease)
	}
	if len(note.foreign) > 0 {
		t.Errorf("requests synced under another caller's context: %v", note.foreign)
	}
	for _, id := range ids {
		r, err := h.store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range Lanes {
			if r.SyncPending(l) || r.Outbox[l].Owner != "" {
				t.Errorf("%s lane %s: done %d of %d, owner %q", id, l, r.Outbox[l].Done, len(r.Events), r.Outbox[l].Owner)
			}
		}
	}
	h.svc.mu.Lock()
	defer h.svc.mu.Unlock()
	if len(h.svc.syncing) != 0 || h.svc.running != [2]int{} {
		t.Errorf("left behind: %d syncs known, %v workers", len(h.svc.syncing), h.svc.running)
	}
}

// countingStore counts Get calls.
type countingStore struct {
	*memStore
	mu   sync.Mutex
	gets int
}

func (c *countingStore) Get(ctx context.Context, id string) (*Request, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.memStore.Get(ctx, id)
}

// A sync starts from the request as the transition here just saved it,
// without reading it again; once nothing here works on a request, a new
// sync reads it, and what was sent is not sent again.
func TestSyncStartsFromTheSavedRequest(t *testing.T) {
	var store *countingStore
	h := newHarness(t, func(c *Config, d *Deps) {
		store = &countingStore{memStore: d.Store.(*memStore)}
		d.Store = store
	})
	submitted := h.submit(t)
	h.svc.Wait()
	if store.gets != 0 {
		t.Errorf("the syncs after Submit read the request %d times, want 0", store.gets)
	}
	if len(h.svc.heads) != 0 {
		t.Errorf("%d heads left after every sync ended", len(h.svc.heads))
	}
	h.svc.startSync(context.Background(), syncKey{submitted.ID, LanePeople})
	h.svc.Wait()
	if store.gets != 1 {
		t.Errorf("a sync of a request nothing here works on read it %d times, want 1", store.gets)
	}
	if got := h.note.kinds(); !slices.Equal(got, []EventKind{EventRequested}) {
		t.Errorf("the people lane synced %v: something was sent twice", got)
	}
}

// Transitions, sweeps and syncs of many requests at once send each event's
// messages once, and leave nothing behind.
func TestConcurrentWorkSendsEachEventOnce(t *testing.T) {
	const users = 16
	h := newHarness(t, func(c *Config, d *Deps) {
		c.MaxSyncs = 4
		people := fakeIdentity{}
		for k, v := range d.Identity.(fakeIdentity) {
			people[k] = v
		}
		for i := range users {
			people[fmt.Sprintf("UMANY%d", i)] = Person{Email: fmt.Sprintf("many%d@corp.example.com", i)}
		}
		d.Identity = people
	})
	for i := range users {
		h.accts.set(func(f *fakeAccounts) {
			f.byEmail[fmt.Sprintf("many%d@corp.example.com", i)] = Account{UserName: fmt.Sprintf("many%d", i)}
		})
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			user := fmt.Sprintf("UMANY%d", i)
			r, err := h.svc.Submit(ctx, user)
			if err != nil {
				t.Error(err)
				return
			}
			wg.Go(func() { h.svc.Sweep(ctx) })
			if _, err := h.svc.Decide(ctx, r.ID, "UAPP1", true); err != nil {
				t.Error(err)
				return
			}
			wg.Go(func() { h.svc.Sweep(ctx) })
			if _, err := h.svc.Reveal(ctx, r.ID, user); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	h.svc.Wait()
	want := map[EventKind]int{EventRequested: users, EventApproved: users, EventCompleted: users}
	got := map[EventKind]int{}
	for _, k := range h.note.kinds() {
		got[k]++
	}
	if !maps.Equal(got, want) {
		t.Errorf("events synced %v, want %v", got, want)
	}
	if len(h.svc.heads) != 0 || len(h.svc.syncing) != 0 {
		t.Errorf("left behind: %d heads, %d syncs", len(h.svc.heads), len(h.svc.syncing))
	}
}

// laneNotifier records the status of the request at each Sync, per lane.
type laneNotifier struct {
	*fakeNotifier
	mu   sync.Mutex
	seen [2][]Status
}

func (n *laneNotifier) Sync(ctx context.Context, r *Request, l Lane) (Messages, int, error) {
	n.mu.Lock()
	n.seen[l] = append(n.seen[l], r.Status)
	n.mu.Unlock()
	return n.fakeNotifier.Sync(ctx, r, l)
}

// The audit lane leaves a reset in progress alone and tells the reveal
// together with its outcome; the people lane answers the click at once.
func TestAuditLaneWaitsForTheEndOfAReset(t *testing.T) {
	note := &laneNotifier{fakeNotifier: &fakeNotifier{}}
	var dir *settledDirectory
	h := newHarness(t, func(c *Config, d *Deps) {
		d.Notifier = note
		dir = &settledDirectory{Directory: d.Directory}
		d.Directory = dir
	})
	dir.svc = h.svc
	r := h.approved(t)
	if _, err := h.svc.Reveal(context.Background(), r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	done := h.get(t, r.ID)
	note.mu.Lock()
	defer note.mu.Unlock()
	if slices.Contains(note.seen[LaneAudit], StatusResetting) {
		t.Errorf("the audit lane synced a reset in progress: %v", note.seen[LaneAudit])
	}
	if done.Status != StatusCompleted || done.SyncPending(LaneAudit) || done.Outbox[LaneAudit].Owner != "" {
		t.Errorf("audit lane after the reset: status %s, done %d of %d, owner %q", done.Status, done.Outbox[LaneAudit].Done, len(done.Events), done.Outbox[LaneAudit].Owner)
	}
}

// settledDirectory resets only once no chat sync runs: whatever the lanes
// do while a request is resetting is done by then.
type settledDirectory struct {
	Directory
	svc *Service
}

func (d *settledDirectory) ResetPassword(ctx context.Context, user, password string) error {
	// Not ctx: the harness's clock is in the past, so ctx has ended.
	for range 5000 {
		d.svc.mu.Lock()
		busy := d.svc.running != [2]int{}
		d.svc.mu.Unlock()
		if !busy {
			break
		}
		time.Sleep(time.Millisecond)
	}
	return d.Directory.ResetPassword(ctx, user, password)
}

// ctxNotifier holds the people lane's first Sync until release is closed,
// and records the askerKey of the context of each people-lane Sync.
type ctxNotifier struct {
	*fakeNotifier
	release chan struct{}
	started chan struct{}
	mu      sync.Mutex
	askers  []any
}

func (n *ctxNotifier) Sync(ctx context.Context, r *Request, l Lane) (Messages, int, error) {
	if l == LanePeople {
		n.mu.Lock()
		n.askers = append(n.askers, ctx.Value(askerKey{}))
		first := len(n.askers) == 1
		n.mu.Unlock()
		if first {
			close(n.started)
			<-n.release
		}
	}
	return n.fakeNotifier.Sync(ctx, r, l)
}

// A click that comes while its request's people lane is busy is answered
// by the lane's next round, with the click's own context (which carries
// its response_url), not with the context of the round already running.
func TestClickDuringASyncIsAnsweredWithItsContext(t *testing.T) {
	note := &ctxNotifier{fakeNotifier: &fakeNotifier{}, release: make(chan struct{}), started: make(chan struct{})}
	h := newHarness(t, func(c *Config, d *Deps) { d.Notifier = note })
	r, err := h.svc.Submit(context.WithValue(context.Background(), askerKey{}, "command"), "UEMP")
	if err != nil {
		t.Fatal(err)
	}
	<-note.started
	if _, err := h.svc.Decide(context.WithValue(context.Background(), askerKey{}, "approve-click"), r.ID, "UAPP1", true); err != nil {
		t.Fatal(err)
	}
	close(note.release)
	h.svc.Wait()
	note.mu.Lock()
	defer note.mu.Unlock()
	if want := []any{"command", "approve-click"}; !slices.Equal(note.askers, want) {
		t.Errorf("people-lane rounds ran with the contexts of %v, want %v", note.askers, want)
	}
}

// writeCounter counts the store's writes of requests.
type writeCounter struct {
	*memStore
	mu     sync.Mutex
	writes int
}

func (c *writeCounter) count() {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
}

func (c *writeCounter) Update(ctx context.Context, id string, fn func(*Request) error) (*Request, error) {
	c.count()
	return c.memStore.Update(ctx, id, fn)
}

func (c *writeCounter) UpdateFrom(ctx context.Context, r *Request, fn func(*Request) error) (*Request, error) {
	c.count()
	return c.memStore.UpdateFrom(ctx, r, fn)
}

// A Reveal costs four writes: the reveal, the outcome, and one round of
// each lane after it. The people lane's round during the reset answers the
// click but saves nothing, since it posted nothing.
func TestRevealWrites(t *testing.T) {
	var store *writeCounter
	var dir *settledDirectory
	note := &laneNotifier{fakeNotifier: &fakeNotifier{}}
	h := newHarness(t, func(c *Config, d *Deps) {
		store = &writeCounter{memStore: d.Store.(*memStore)}
		d.Store, d.Notifier = store, note
		dir = &settledDirectory{Directory: d.Directory}
		d.Directory = dir
	})
	dir.svc = h.svc
	r := h.approved(t)
	h.svc.Wait()
	before := store.writes
	if _, err := h.svc.Reveal(context.Background(), r.ID, "UEMP"); err != nil {
		t.Fatal(err)
	}
	done := h.get(t, r.ID)
	if n := store.writes - before; n != 4 {
		t.Errorf("%d writes for a Reveal, want 4", n)
	}
	note.mu.Lock()
	defer note.mu.Unlock()
	if !slices.Contains(note.seen[LanePeople], StatusResetting) {
		t.Errorf("the people lane did not answer the click while the reset ran: %v", note.seen[LanePeople])
	}
	for _, l := range Lanes {
		if done.SyncPending(l) || done.Outbox[l].Owner != "" {
			t.Errorf("lane %s after the reset: done %d of %d, owner %q", l, done.Outbox[l].Done, len(done.Events), done.Outbox[l].Owner)
		}
	}
}
