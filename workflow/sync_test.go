package workflow

import (
	"context"
	"fmt"
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
