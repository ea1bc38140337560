package slackapp

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// Priority orders the calls that wait on a rate-limited key: lower goes
// first. What a person is waiting for right now comes first, the audit
// channel last.
type Priority int

// The priorities.
const (
	PriorityNow        Priority = iota // the answer to a click, the message just clicked, a command's lookups
	PriorityNext                       // the DM a person waits for next: an approver's request, the Reveal button, the password
	PriorityOthers                     // other people's message updates and notices
	PriorityAudit                      // the audit channel: a request's parent message, which shows its state
	PriorityAuditReply                 // the audit channel: the replies in a request's thread
)

// maxInFlight bounds the calls in flight on one key while Slack accepts
// them, so that a burst that runs into a limit sends few calls after
// Slack's first 429.
const maxInFlight = 4

// Gate spends Slack's rate limits the way Slack counts them. Calls go out
// at once, up to maxInFlight per key, while Slack accepts them. After an
// HTTP 429 on a key (a channel for chat.postMessage, the method for tiered
// methods) the calls on that key wait for its Retry-After and then go one
// at a time, most urgent first, each as soon as the one before succeeded,
// until none is waiting or Slack answers 429 again: nothing is sent inside
// a Retry-After, and whatever Slack's bucket holds when it ends is used,
// however Slack rounds the Retry-After. Other keys are never held up.
// Work that would wait long may park instead of blocking (Park), and is
// woken when its turn comes. Shared, when set, tells other replicas about
// a 429 and learns theirs. A nil *Gate runs calls at once.
type Gate struct {
	Shared Throttles
	// OnFatal, when set, is told about a refusal no retry can fix: the
	// bot token was revoked or is invalid.
	OnFatal func(error)
	// Observe, when set, counts each call: the Slack method and the result
	// (ok, rate_limited, Slack's error code, or error).
	Observe func(method, result string)
	// Log, when set, is told once about each shared window the gate
	// ignores (see learn).
	Log *slog.Logger

	mu      sync.Mutex
	keys    map[string]*gateKey
	seq     uint64
	waiting int
	ignored map[string]bool // shared windows ignored and logged, by key
	closed  chan struct{}   // closed by Close: nobody waits any more
	once    sync.Once
}

// ErrGateClosed is returned to calls that would wait for a rate-limited key
// after Close (the bot is shutting down; leases hand the work on).
var ErrGateClosed = errors.New("shutting down: not waiting for Slack's Retry-After")

// Throttles carries Retry-After windows between replicas.
type Throttles interface {
	// Throttle records that key must not be called before until, and
	// announces it to Watch.
	Throttle(ctx context.Context, key string, until time.Time) error
	// Throttled returns the keys that must not be called yet, with their ends.
	Throttled(ctx context.Context) (map[string]time.Time, error)
	// Watch calls learn with each window Throttle announces, from any
	// replica, until ctx ends, and subscribed once every later
	// announcement will reach it. Announcements may be lost (a
	// reconnection): Throttled is the record.
	Watch(ctx context.Context, subscribed func(), learn func(key string, until time.Time))
}

type gateKey struct {
	inFlight  int
	throttled bool                   // after a 429, until nobody waits: one call at a time
	until     time.Time              // no call before this
	spacing   time.Duration          // the last Retry-After: Backlog's estimate of a turn
	waiters   []*waiter              // by priority, then arrival
	timer     *time.Timer            // wakes the queue at until
	reserved  map[string]*time.Timer // tickets whose parked turn came: their slot, held a while
}

// A waiter is a call waiting for its key: a goroutine blocked in Do
// (ready), or work parked without one (wake, ticket).
type waiter struct {
	prio   Priority
	seq    uint64
	ready  chan struct{} // nil for a parked waiter
	wake   func()        // a parked waiter's: called when its turn comes
	ticket string        // a parked waiter's: who gets the turn
}

// turnHold is how long the turn of a parked waiter is held for its ticket
// after wake: the time its work takes to come back for it.
const turnHold = 2 * time.Second

// NewGate returns an empty gate.
func NewGate() *Gate { return &Gate{keys: map[string]*gateKey{}, closed: make(chan struct{})} }

// Close makes every call waiting for a rate-limited key, and every later
// one that would wait, return ErrGateClosed at once; calls that may go
// still go.
func (g *Gate) Close() {
	if g != nil {
		g.once.Do(func() { close(g.closed) })
	}
}

// Backlog returns about how long a call on key with priority prio would
// wait before it may go, 0 when it may go now: the rest of the key's
// Retry-After window and, while the key is throttled (one call at a time),
// a turn for each call queued ahead of it.
func (g *Gate) Backlog(key string, prio Priority) time.Duration {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.keys[key]
	if k == nil {
		return 0
	}
	wait := max(time.Until(k.until), 0)
	if k.throttled {
		ahead := 0
		for _, w := range k.waiters {
			if w.prio <= prio {
				ahead++
			}
		}
		wait += time.Duration(ahead) * k.spacing
	}
	return wait
}

// Waiting returns how many calls wait for a rate-limited key.
func (g *Gate) Waiting() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// ErrThrottled is returned by DoWithin when the key's Retry-After would
// keep the call waiting longer than allowed.
var ErrThrottled = errors.New("Slack asked to wait longer than this call may")

// Do runs call under key's limit with priority prio. A call Slack answers
// with 429 is made again after the Retry-After; other errors are returned.
func (g *Gate) Do(ctx context.Context, key string, prio Priority, call func() error) error {
	return g.DoWithin(ctx, key, prio, 0, call)
}

// DoWithin is Do for a call that may wait at most maxWait (0: no bound) for
// key's Retry-After window and the calls ahead of it: when Backlog says it
// would wait longer, or once it has waited that long, it returns
// ErrThrottled without calling, so that the caller can leave the call for
// later.
func (g *Gate) DoWithin(ctx context.Context, key string, prio Priority, maxWait time.Duration, call func() error) error {
	return g.DoFor(ctx, key, prio, maxWait, "", call)
}

// DoFor is DoWithin for the work named ticket: when the turn of a waiter
// ticket parked on key has come (Park), the call takes that turn at once.
func (g *Gate) DoFor(ctx context.Context, key string, prio Priority, maxWait time.Duration, ticket string, call func() error) error {
	if g == nil {
		return call()
	}
	var seq uint64 // a call Slack answered 429 keeps its place in the queue
	for {
		if g.takeTurn(key, ticket) {
			// The slot was held for this ticket: go.
		} else {
			if maxWait > 0 && g.Backlog(key, prio) > maxWait {
				return ErrThrottled
			}
			if err := g.enterWithin(ctx, key, prio, maxWait, &seq); err != nil {
				return err
			}
		}
		err := call()
		g.observe(key, err)
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			g.leave(key, max(rl.RetryAfter, time.Second))
			if g.Shared != nil {
				// The others ignore a longer window (learn): they wait
				// what they will accept and meet Slack's 429 themselves.
				_ = g.Shared.Throttle(context.WithoutCancel(ctx), key, time.Now().Add(min(rl.RetryAfter, MaxSharedWait)))
			}
			continue
		}
		g.leave(key, 0)
		if g.OnFatal != nil && slackError(err, fatalErrors...) {
			g.OnFatal(err)
		}
		return err
	}
}

// observe reports a call on key to Observe.
func (g *Gate) observe(key string, err error) {
	if g.Observe == nil {
		return
	}
	method, _, _ := strings.Cut(key, ":")
	var rl *slack.RateLimitedError
	var se slack.SlackErrorResponse
	result := "ok"
	switch {
	case err == nil:
	case errors.As(err, &rl):
		result = "rate_limited"
	case errors.As(err, &se):
		result = se.Err
	default:
		result = "error"
	}
	g.Observe(method, result)
}

// fatalErrors are Slack's answers to a token that no longer works.
var fatalErrors = []string{"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}

// enterWithin is enter waiting at most maxWait (0: no bound); past that it
// returns ErrThrottled. Backlog is an estimate: calls already in flight
// may take longer than it says.
func (g *Gate) enterWithin(ctx context.Context, key string, prio Priority, maxWait time.Duration, seq *uint64) error {
	if maxWait <= 0 {
		return g.enter(ctx, key, prio, seq)
	}
	wctx, cancel := context.WithTimeoutCause(ctx, maxWait, ErrThrottled)
	defer cancel()
	err := g.enter(wctx, key, prio, seq)
	if err != nil && ctx.Err() == nil && context.Cause(wctx) == ErrThrottled {
		return ErrThrottled
	}
	return err
}

// enter waits until a call on key may go. *seq is the call's place in the
// queue: 0 for a new call, which gets one; a call that comes back after a
// 429 keeps its own.
func (g *Gate) enter(ctx context.Context, key string, prio Priority, seq *uint64) error {
	g.mu.Lock()
	k := g.keys[key]
	if k == nil {
		k = &gateKey{}
		g.keys[key] = k
	}
	if !k.throttled && len(k.waiters) == 0 && k.inFlight < maxInFlight && !time.Now().Before(k.until) {
		k.inFlight++
		g.mu.Unlock()
		return nil
	}
	if *seq == 0 {
		g.seq++
		*seq = g.seq
	}
	w := &waiter{prio: prio, seq: *seq, ready: make(chan struct{})}
	i, _ := slices.BinarySearchFunc(k.waiters, w, func(a, b *waiter) int {
		if a.prio != b.prio {
			return int(a.prio - b.prio)
		}
		return int(a.seq - b.seq)
	})
	k.waiters = slices.Insert(k.waiters, i, w)
	g.waiting++
	g.dispatch(key, k)
	g.mu.Unlock()

	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-g.closed:
		err = ErrGateClosed
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if j := slices.Index(k.waiters, w); j >= 0 {
		k.waiters = slices.Delete(k.waiters, j, j+1)
		g.waiting--
	} else { // let go just now: hand the turn on
		k.inFlight--
		g.dispatch(key, k)
	}
	return err
}

// Park queues work named ticket for key with priority prio without a
// goroutine: wake is called once, when a call of that priority may go
// (in the order of the key's queue), and the key's slot is then held for
// ticket for a moment (DoFor takes it). When a call may go now, wake is
// called at once. Parking a ticket already parked on key keeps its place.
func (g *Gate) Park(key string, prio Priority, ticket string, wake func()) {
	if g == nil {
		go wake()
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.keys[key]
	if k == nil {
		k = &gateKey{}
		g.keys[key] = k
	}
	for _, w := range k.waiters {
		if w.ready == nil && w.ticket == ticket {
			w.wake = wake
			return
		}
	}
	if !k.throttled && len(k.waiters) == 0 && k.inFlight < maxInFlight && !time.Now().Before(k.until) {
		go wake()
		return
	}
	g.seq++
	w := &waiter{prio: prio, seq: g.seq, wake: wake, ticket: ticket}
	i, _ := slices.BinarySearchFunc(k.waiters, w, func(a, b *waiter) int {
		if a.prio != b.prio {
			return int(a.prio - b.prio)
		}
		return int(a.seq - b.seq)
	})
	k.waiters = slices.Insert(k.waiters, i, w)
	g.waiting++
	g.dispatch(key, k)
}

// takeTurn takes the slot held on key for ticket, if any.
func (g *Gate) takeTurn(key, ticket string) bool {
	if ticket == "" {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.keys[key]
	if k == nil || k.reserved[ticket] == nil {
		return false
	}
	k.reserved[ticket].Stop()
	delete(k.reserved, ticket)
	return true // the slot stays counted in inFlight for this call
}

// leave ends a call on key; retryAfter > 0 means Slack answered 429.
func (g *Gate) leave(key string, retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := g.keys[key]
	k.inFlight--
	now := time.Now()
	switch {
	case retryAfter > 0:
		k.throttled, k.spacing = true, retryAfter
		k.until = later(k.until, now.Add(retryAfter))
	case k.throttled && len(k.waiters) > 0:
		// Slack took the call: the next one goes now, alone.
	case k.throttled:
		k.throttled = false
	}
	g.dispatch(key, k)
}

// dispatch lets the next waiter on k go when it may, or sets a timer for
// when it may. g.mu is held.
func (g *Gate) dispatch(key string, k *gateKey) {
	if len(k.waiters) == 0 {
		if k.inFlight == 0 && !k.throttled && !time.Now().Before(k.until) && len(k.reserved) == 0 {
			delete(g.keys, key)
		}
		return
	}
	limit := maxInFlight
	if k.throttled {
		limit = 1
	}
	if k.inFlight >= limit {
		return
	}
	if wait := time.Until(k.until); wait > 0 {
		if k.timer == nil {
			k.timer = time.AfterFunc(wait, func() {
				g.mu.Lock()
				defer g.mu.Unlock()
				k.timer = nil
				g.dispatch(key, k)
			})
		}
		return
	}
	w := k.waiters[0]
	k.waiters = k.waiters[1:]
	g.waiting--
	k.inFlight++
	if w.ready != nil {
		close(w.ready)
	} else {
		// A parked waiter: hold the slot for its ticket a moment, and
		// let it go if the work does not come back for it.
		if k.reserved == nil {
			k.reserved = map[string]*time.Timer{}
		}
		if old := k.reserved[w.ticket]; old != nil {
			old.Stop()
			k.inFlight-- // one turn per ticket
		}
		ticket := w.ticket
		k.reserved[ticket] = time.AfterFunc(turnHold, func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if k.reserved[ticket] == nil {
				return
			}
			delete(k.reserved, ticket)
			k.inFlight--
			g.dispatch(key, k)
		})
		go w.wake()
	}
	if !k.throttled {
		g.dispatch(key, k) // more may go at once
	}
}

// MaxSharedWait bounds a Retry-After window learned from other replicas.
// Slack's Web API answers 429 with a Retry-After of seconds, a minute at
// most for the per-minute tiers; five minutes leaves room for that and for
// the replicas' clocks to differ, while whoever can write to the shared
// store (another app's credentials, a neighbour on a shared Redis) can
// hold a key for five minutes per write at worst, never for hours. A
// replica that meets a longer Retry-After itself still waits all of it.
const MaxSharedWait = 5 * time.Minute

// maxIgnoredLogged bounds the keys remembered as ignored and logged, so
// that a writer of many bogus keys costs a bounded map and log.
const maxIgnoredLogged = 100

// The keys Gate.Do is called with: the methods limited as a whole, and the
// prefixes of the ones limited per channel or per message.
var (
	methodKeys = []string{"users.info", "users.list", "users.lookupByEmail", "usergroups.users.list",
		"chat.postEphemeral", "conversations.open", "chat.update", "views.open", "views.publish"}
	channelIDShape = regexp.MustCompile(`^[CDG][A-Z0-9]{2,20}$`)
	messageTSShape = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,9}$`)
)

// OwnKey reports whether key is one this gate uses: a method in
// methodKeys, chat.postMessage:<channel ID>, or
// response_url:<channel ID>/<message ts>.
func OwnKey(key string) bool {
	if slices.Contains(methodKeys, key) {
		return true
	}
	if ch, ok := strings.CutPrefix(key, "chat.postMessage:"); ok {
		return channelIDShape.MatchString(ch)
	}
	if msg, ok := strings.CutPrefix(key, "response_url:"); ok {
		ch, ts, ok := strings.Cut(msg, "/")
		return ok && channelIDShape.MatchString(ch) && messageTSShape.MatchString(ts)
	}
	return false
}

// learn applies other replicas' Retry-After windows. What comes from the
// shared store is not trusted further than a replica's own 429 could go: a
// key this gate does not use, or a window that ends more than
// MaxSharedWait from now, is ignored, and logged once per key.
func (g *Gate) learn(throttled map[string]time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	for key, until := range throttled {
		if !until.After(now) {
			continue
		}
		switch {
		case !OwnKey(key):
			g.ignore(key, "a shared Slack Retry-After names a key this bot does not use; ignored", "until", until)
			continue
		case until.After(now.Add(MaxSharedWait)):
			g.ignore(key, "a shared Slack Retry-After ends further ahead than any Retry-After the bot shares; ignored", "until", until, "max_wait", MaxSharedWait.String())
			continue
		}
		k := g.keys[key]
		if k == nil {
			k = &gateKey{}
			g.keys[key] = k
		}
		if until.After(k.until) {
			k.until, k.throttled = until, true
			k.spacing = max(k.spacing, time.Second)
		}
	}
}

// ignore logs, once per key, that a shared window for key was ignored.
// g.mu is held.
func (g *Gate) ignore(key, msg string, args ...any) {
	if g.Log == nil || g.ignored[key] || len(g.ignored) > maxIgnoredLogged {
		return
	}
	if g.ignored == nil {
		g.ignored = map[string]bool{}
	}
	g.ignored[key] = true
	if len(g.ignored) > maxIgnoredLogged {
		g.Log.Warn("more shared Slack Retry-After windows are ignored; not logging them any more")
		return
	}
	// The key came from the store: quoted, and cut short.
	if len(key) > 100 {
		key = key[:100] + "..."
	}
	g.Log.Warn(msg+" (who writes to the store? see README.md, Running several replicas)", append([]any{"key", key}, args...)...)
}

// Follow learns other replicas' Retry-After windows as they announce them,
// and reads them all every interval in case an announcement was lost, until
// ctx ends. The first read waits for the subscription (at most an
// interval), so that a window announced at start-up is either heard or
// read. It does nothing without Shared.
func (g *Gate) Follow(ctx context.Context, interval time.Duration) {
	if g == nil || g.Shared == nil {
		return
	}
	watching, subscribed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		defer close(watching)
		g.Shared.Watch(ctx, func() { once.Do(func() { close(subscribed) }) },
			func(key string, until time.Time) { g.learn(map[string]time.Time{key: until}) })
	}()
	defer func() { <-watching }()
	wait := time.NewTimer(interval)
	select {
	case <-subscribed:
	case <-watching:
	case <-ctx.Done():
	case <-wait.C:
	}
	wait.Stop()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if th, err := g.Shared.Throttled(ctx); err == nil {
			g.learn(th)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
