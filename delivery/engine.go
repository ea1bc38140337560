package delivery

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/example/resetbot/workflow"
)

// Config holds the engine's settings; zero fields take the defaults.
type Config struct {
	Owner   string        // this replica's name in leases (default: a random one)
	Lease   time.Duration // how long a worker owns a lane (default 2m); it stops sending at 3/4 of it
	Workers int           // lanes worked on at once (default 16)
	// AuditWorkers bounds the workers on audit lanes at once (default a
	// quarter of Workers): a throttled audit channel never takes the
	// workers that people's messages need.
	AuditWorkers int
	Poll         time.Duration // how often the store is asked for due lanes another replica left (default 5s)
	Retry        time.Duration // how long after a failure a lane is tried again (default 10s)
}

func (c Config) withDefaults() Config {
	if c.Owner == "" {
		c.Owner = workflow.NewID()
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.AuditWorkers <= 0 || c.AuditWorkers > c.Workers {
		c.AuditWorkers = max(1, c.Workers/4)
	}
	if c.Poll <= 0 {
		c.Poll = 5 * time.Second
	}
	if c.Retry <= 0 {
		c.Retry = 10 * time.Second
	}
	return c
}

// Engine runs due lanes on a fixed pool of workers. Lanes become due when
// a change marks them (in the store, atomically with the change; and here
// at once through Changed), when their retry time comes (the poller), or
// when the Sender wakes a lane that waited for a rate-limited key. Lanes
// wait for a worker in a queue that holds only their names, the most
// urgent kind first (Kinds), so that a burst of thousands of requests
// costs a queue, not goroutines.
type Engine struct {
	store  Store
	sender Sender
	cfg    Config
	clock  workflow.Clock
	log    *slog.Logger
	// OnTampered, when set, is told about a lane record that failed
	// verification (after it was moved aside), to audit it.
	OnTampered func(l Lane, err error)

	mu      sync.Mutex
	lanes   map[Lane]*local // lanes queued, running or waiting here
	ready   readyQueue      // people's lanes: the employees' and the approvers'
	audit   readyQueue      // the audit channel's lanes
	auditOn int             // workers on audit lanes
	seq     uint64
	signal  chan struct{} // a worker may have something to do
	closing bool

	work   context.Context // the context of every Send: Stop ends it
	stop   context.CancelFunc
	active sync.WaitGroup // workers and the poller
}

// local is what this replica knows of a lane it works on.
type local struct {
	queued  bool    // in ready
	running bool    // a worker has it
	again   bool    // woken while running: run once more
	waiting bool    // holds its lease while it waits for a rate-limited key
	replies []Reply // clicks whose answer may replace the lane's messages
	prio    int
	seq     uint64
	index   int // in ready
}

// New returns an engine; Run starts it.
func New(store Store, sender Sender, cfg Config, clock workflow.Clock, log *slog.Logger) *Engine {
	if clock == nil {
		clock = workflow.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	work, stop := context.WithCancel(context.Background())
	return &Engine{store: store, sender: sender, cfg: cfg.withDefaults(), clock: clock, log: log,
		lanes: map[Lane]*local{}, signal: make(chan struct{}, 1), work: work, stop: stop}
}

// Owner returns this engine's name in leases.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Run works on lanes until ctx ends: the workers and the poller. Lanes
// started by then go on (Wait waits for them, Stop ends them); the others
// stay due in the store for another replica or the next start.
func (e *Engine) Run(ctx context.Context) {
	for range e.cfg.Workers {
		e.active.Go(e.worker)
	}
	e.active.Go(func() { e.poll(ctx) })
	<-ctx.Done()
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.kick()
}

// Wait waits for the workers to finish the lanes they have started.
func (e *Engine) Wait() { e.active.Wait() }

// Stop ends the Sends in progress (at shutdown, after the grace period):
// their leases let another replica, or the next start, finish them.
func (e *Engine) Stop() { e.stop() }

// Changed is told about each change the workflow saved (r after it,
// with r.Events[before:] new): it runs the lanes the change marked, at
// once.
func (e *Engine) Changed(r *workflow.Request, before int) {
	for _, m := range Marks(r, before) {
		e.Wake(m.Lane)
	}
}

// Expect gives lane l a click's reply, to use for the message clicked
// the next times the lane runs (until it expires). It does not run the
// lane: the change the click makes does, once saved (Changed); so the
// click hands its reply over before it makes the change.
func (e *Engine) Expect(l Lane, r Reply) {
	e.mu.Lock()
	defer e.mu.Unlock()
	lc := e.localLocked(l)
	lc.replies = slices.DeleteFunc(lc.replies, func(old Reply) bool { return old.Message == r.Message && old.Request == r.Request })
	lc.replies = append(lc.replies, r)
	if len(lc.replies) > maxReplies {
		lc.replies = lc.replies[len(lc.replies)-maxReplies:]
	}
	if lc.queued && lc.prio != 0 {
		lc.prio = 0 // a click to answer: to the front
		heap.Fix(e.queueOf(l), lc.index)
	}
}

// maxReplies bounds the replies kept per lane: enough for every row an
// approver may click before their queue lane runs (two messages of
// rows), so that each click is answered through its own reply rather
// than with chat.update (Tier 3, shared with the audit channel's
// updates); a Reply is a few hundred bytes.
const maxReplies = 64

// Wake runs lane l: at once when a worker is free, else when its turn
// comes; again once it ends if it is running.
func (e *Engine) Wake(l Lane) {
	e.mu.Lock()
	e.wakeLocked(l, e.localLocked(l))
	e.mu.Unlock()
}

// Pending returns how many lanes are queued, running or waiting for a
// rate-limited key here.
func (e *Engine) Pending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, lc := range e.lanes {
		if lc.queued || lc.running || lc.waiting {
			n++
		}
	}
	return n
}

func (e *Engine) localLocked(l Lane) *local {
	lc := e.lanes[l]
	if lc == nil {
		lc = &local{index: -1}
		e.lanes[l] = lc
	}
	return lc
}

func (e *Engine) wakeLocked(l Lane, lc *local) {
	switch {
	case lc.running:
		lc.again = true
	case !lc.queued:
		e.seq++
		lc.queued, lc.seq, lc.prio = true, e.seq, priority(l, lc)
		heap.Push(e.queueOf(l), readyLane{l, lc})
		e.kick()
	case len(lc.replies) > 0 && lc.prio != 0:
		// A click to answer: to the front.
		lc.prio = 0
		heap.Fix(e.queueOf(l), lc.index)
	}
}

// queueOf is the ready queue of lane l.
func (e *Engine) queueOf(l Lane) *readyQueue {
	if l.Kind == KindAudit {
		return &e.audit
	}
	return &e.ready
}

// nextLocked takes the lane a free worker runs next: people's lanes
// first, then an audit lane if fewer than AuditWorkers run.
func (e *Engine) nextLocked() (readyLane, bool) {
	switch {
	case e.ready.Len() > 0:
		return heap.Pop(&e.ready).(readyLane), true
	case e.audit.Len() > 0 && e.auditOn < e.cfg.AuditWorkers:
		e.auditOn++
		return heap.Pop(&e.audit).(readyLane), true
	}
	return readyLane{}, false
}

// priority orders the queue: lanes with a click to answer, then by kind.
func priority(l Lane, lc *local) int {
	if len(lc.replies) > 0 {
		return 0
	}
	return 1 + slices.Index(Kinds, l.Kind)
}

// kick tells a worker there may be something to do.
func (e *Engine) kick() {
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

// worker runs ready lanes, one at a time, until the engine closes.
func (e *Engine) worker() {
	for {
		e.mu.Lock()
		var rl readyLane
		var ok bool
		for !e.closing {
			if rl, ok = e.nextLocked(); ok {
				break
			}
			e.mu.Unlock()
			<-e.signal
			e.mu.Lock()
		}
		if e.closing {
			e.mu.Unlock()
			e.kick() // the next worker ends too
			return
		}
		lc := rl.lc
		lc.queued, lc.running, lc.again = false, true, false
		replies := lc.replies
		lc.replies = nil
		if e.ready.Len() > 0 || e.audit.Len() > 0 {
			e.kick()
		}
		e.mu.Unlock()

		waiting, unused := e.run(rl.lane, replies)

		e.mu.Lock()
		if rl.lane.Kind == KindAudit {
			e.auditOn--
			e.kick() // an audit lane may go now
		}
		lc.running, lc.waiting = false, waiting
		lc.replies = append(unused, lc.replies...)
		switch {
		case lc.again:
			lc.again = false
			e.wakeLocked(rl.lane, lc)
		case !waiting && len(lc.replies) == 0:
			delete(e.lanes, rl.lane)
		}
		e.mu.Unlock()
	}
}

// run works on lane l once, with the replies it was given. It reports
// whether the lane now waits for a rate-limited key (holding its lease),
// and returns the replies it did not use and that may still be used.
func (e *Engine) run(l Lane, replies []Reply) (waiting bool, unused []Reply) {
	ctx := e.work
	now := e.clock.Now()
	until := now.Add(e.cfg.Lease)
	t, ok, err := e.store.Take(ctx, l, e.cfg.Owner, now, until)
	if workflow.ErrorCode(err) == workflow.CodeTampered {
		e.tampered(l, err)
		t, ok, err = e.store.Take(ctx, l, e.cfg.Owner, now, until) // moved aside: start afresh
	}
	switch {
	case err != nil:
		// The lane stays due in the store: the poller tries again.
		e.log.Warn("could not take a chat lane; trying again later", "lane", l.String(), "error", err)
		return false, live(replies, now)
	case !ok:
		return false, nil // another replica holds it, and will see the mark
	}
	sctx, cancel := context.WithDeadline(ctx, until.Add(-e.cfg.Lease/4))
	res, serr := e.sender.Send(sctx, Work{Lane: l, Data: t.Data, Inbox: t.Inbox, Replies: live(replies, now), Request: t.Request})
	cancel()
	next, release := res.Next, res.Wait == nil
	if !release && (next.IsZero() || next.After(until)) {
		// Waiting for a key here: should this replica stop, another
		// takes the lane over when the lease ends.
		next = until
	}
	if serr != nil {
		retry := e.clock.Now().Add(e.cfg.Retry)
		if next.IsZero() || retry.Before(next) {
			next = retry
		}
		release = true
		e.log.Warn("chat lane failed; trying again later", "lane", l.String(), "error", serr, "retry_at", next)
	}
	data := res.Data
	if data == nil {
		data = t.Data
	}
	if err := e.store.Put(ctx, t, e.cfg.Owner, data, res.Handled, next, release); err != nil {
		e.log.Warn("could not save a chat lane's progress; its lease hands it on", "lane", l.String(), "error", err)
		return false, nil
	}
	for _, r := range live(replies, now) {
		if !slices.Contains(res.UsedReplies, r) {
			unused = append(unused, r)
		}
	}
	if res.Wait != nil && serr == nil {
		res.Wait(func() { e.Wake(l) })
		return true, unused
	}
	if release && !next.IsZero() {
		e.wakeAt(l, next)
	}
	return false, unused
}

// wakeAt runs lane l again at t here (a coalescing window's end, a
// failure's retry), unless t is further than the poller's next look: the
// store's due time is the record, for whichever replica comes first.
func (e *Engine) wakeAt(l Lane, t time.Time) {
	d := t.Sub(e.clock.Now())
	if d > e.cfg.Poll {
		return
	}
	time.AfterFunc(max(d, 0), func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if !e.closing {
			e.wakeLocked(l, e.localLocked(l))
		}
	})
}

// live returns the replies that have not expired at now.
func live(replies []Reply, now time.Time) []Reply {
	return slices.DeleteFunc(slices.Clone(replies), func(r Reply) bool { return !now.Before(r.Expires) })
}

// tampered reports a lane record that failed verification: it was moved
// aside by the store, nothing in it was used, and the lane starts again
// from what the request says.
func (e *Engine) tampered(l Lane, err error) {
	e.log.Error("a chat delivery record failed verification and was not used; check who can write to the store", "lane", l.String(), "error", err)
	if e.OnTampered != nil {
		e.OnTampered(l, err)
	}
}

// poll runs, every Poll, the lanes the store says are due: those another
// replica left (it stopped, or its lease ended) and those whose retry
// time came.
func (e *Engine) poll(ctx context.Context) {
	t := time.NewTicker(e.cfg.Poll)
	defer t.Stop()
	for {
		lanes, err := e.store.DueLanes(ctx, e.clock.Now(), pollBatch)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("could not read the due chat lanes", "error", err)
		}
		e.mu.Lock()
		for _, l := range lanes {
			if lc := e.lanes[l]; lc == nil || !lc.running && !lc.queued {
				e.wakeLocked(l, e.localLocked(l))
			}
		}
		// Forget the replies nobody used (a click whose change failed).
		now := e.clock.Now()
		for l, lc := range e.lanes {
			if !lc.queued && !lc.running && !lc.waiting {
				if lc.replies = live(lc.replies, now); len(lc.replies) == 0 {
					delete(e.lanes, l)
				}
			}
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollBatch bounds the due lanes read at once.
const pollBatch = 500

// readyLane is a lane waiting for a worker.
type readyLane struct {
	lane Lane
	lc   *local
}

// readyQueue orders lanes by priority, then arrival.
type readyQueue []readyLane

func (q readyQueue) Len() int { return len(q) }
func (q readyQueue) Less(i, j int) bool {
	if q[i].lc.prio != q[j].lc.prio {
		return q[i].lc.prio < q[j].lc.prio
	}
	return q[i].lc.seq < q[j].lc.seq
}
func (q readyQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].lc.index, q[j].lc.index = i, j
}
func (q *readyQueue) Push(x any) {
	rl := x.(readyLane)
	rl.lc.index = len(*q)
	*q = append(*q, rl)
}
func (q *readyQueue) Pop() any {
	old := *q
	rl := old[len(old)-1]
	rl.lc.index = -1
	*q = old[:len(old)-1]
	return rl
}

// errNotHeld is what a Store's Put answers when the owner lost the lease.
var errNotHeld = errors.New("lease lost")

// LeaseLost returns the error a Store's Put gives when owner no longer
// holds the lane's lease.
func LeaseLost(l Lane) error {
	return workflow.Wrap(workflow.CodeConflict, errNotHeld, "chat lane "+l.String()+" is leased by another replica now")
}
