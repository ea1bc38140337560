package slackapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slack-go/slack"
)

// fakeSlack answers calls per key like Slack's buckets: burst calls at
// once, then 429 with Retry-After until a token is back (refill every
// interval). It records when each call came and whether it came inside an
// announced Retry-After window.
type fakeSlack struct {
	mu       sync.Mutex
	burst    int
	interval time.Duration
	tokens   map[string]float64
	last     map[string]time.Time
	until    map[string]time.Time
	calls    []fakeCall
	inFlight map[string]int
	maxIn    map[string]int
	pad      time.Duration // added to every Retry-After
}

type fakeCall struct {
	key, label string
	at         time.Time
	limited    bool
	inside     bool // made inside a Retry-After window already announced
}

func newFakeSlack(burst int, interval time.Duration) *fakeSlack {
	return &fakeSlack{burst: burst, interval: interval, tokens: map[string]float64{}, last: map[string]time.Time{},
		until: map[string]time.Time{}, inFlight: map[string]int{}, maxIn: map[string]int{}}
}

func (f *fakeSlack) call(key, label string) error {
	f.mu.Lock()
	now := time.Now()
	f.inFlight[key]++
	f.maxIn[key] = max(f.maxIn[key], f.inFlight[key])
	if _, ok := f.last[key]; !ok {
		f.tokens[key], f.last[key] = float64(f.burst), now
	}
	f.tokens[key] = min(float64(f.burst), f.tokens[key]+float64(now.Sub(f.last[key]))/float64(f.interval))
	f.last[key] = now
	c := fakeCall{key: key, label: label, at: now, inside: now.Before(f.until[key])}
	var err error
	if f.tokens[key] < 1 {
		c.limited = true
		wait := time.Duration((1-f.tokens[key])*float64(f.interval)) + f.pad
		f.until[key] = now.Add(wait)
		err = &slack.RateLimitedError{RetryAfter: wait}
	} else {
		f.tokens[key]--
	}
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	time.Sleep(10 * time.Millisecond) // the round trip
	f.mu.Lock()
	f.inFlight[key]--
	f.mu.Unlock()
	return err
}

func (f *fakeSlack) done(label string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.calls {
		if c.label == label && !c.limited {
			return c.at, true
		}
	}
	return time.Time{}, false
}

func TestGateBurstThenOnePerRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlack(5, time.Second)
		g := NewGate()
		var wg sync.WaitGroup
		start := time.Now()
		for i := range 20 {
			wg.Go(func() {
				if err := g.Do(t.Context(), "chat.postMessage:D1", PriorityNext, func() error { return f.call("chat.postMessage:D1", string(rune('a'+i))) }); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		inside, limited := 0, 0
		for _, c := range f.calls {
			if c.inside {
				inside++
			}
			if c.limited {
				limited++
			}
		}
		// 5 at once, then 15 at one per second.
		if elapsed < 14*time.Second || elapsed > 17*time.Second {
			t.Errorf("20 posts with a burst of 5 at 1/s took %v", elapsed)
		}
		if f.maxIn["chat.postMessage:D1"] > maxInFlight {
			t.Errorf("%d calls in flight on one key", f.maxIn["chat.postMessage:D1"])
		}
		// Only the calls already in flight when Slack first said 429 may
		// land inside its window.
		if inside > maxInFlight-1 {
			t.Errorf("%d of %d calls inside a Retry-After window (%d 429s)", inside, len(f.calls), limited)
		}
		if g.Waiting() != 0 {
			t.Errorf("%d still waiting", g.Waiting())
		}
	})
}

// A server that pads its Retry-After (a second more than its bucket
// needs) does not slow the gate to one call per Retry-After: after each
// window the calls go one at a time while Slack takes them, and none is
// sent inside a window.
func TestGatePaddedRetryAfterStillFollowsTheBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlack(5, time.Second)
		f.pad = time.Second
		g := NewGate()
		var wg sync.WaitGroup
		start := time.Now()
		for i := range 20 {
			wg.Go(func() {
				if err := g.Do(t.Context(), "users.info", PriorityNow, func() error { return f.call("users.info", fmt.Sprint(i)) }); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		// 5 at once, then about one a second: each padded window of about
		// 2 s ends with about 2 calls in the bucket, both used.
		if elapsed := time.Since(start); elapsed > 20*time.Second {
			t.Errorf("20 calls, burst 5 at 1/s, Retry-After padded by 1s: took %v, want the bucket's pace, not one per Retry-After", elapsed)
		}
		// Only the calls already in flight when Slack first said 429 may
		// land inside its window.
		inside := 0
		for _, c := range f.calls {
			if c.inside {
				inside++
			}
		}
		if inside > maxInFlight-1 {
			t.Errorf("%d calls inside a Retry-After window", inside)
		}
	})
}

func TestGateOtherKeysAreNotHeldUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlack(1, 10*time.Second)
		g := NewGate()
		// Use up the audit channel's bucket and leave calls waiting on it.
		for i := range 3 {
			go g.Do(t.Context(), "chat.postMessage:C0AUDIT", PriorityAudit, func() error { return f.call("chat.postMessage:C0AUDIT", "audit"+string(rune('0'+i))) })
		}
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if err := g.Do(t.Context(), "chat.postMessage:UEMP", PriorityNext, func() error { return f.call("chat.postMessage:UEMP", "dm") }); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("a DM waited %v behind the throttled audit channel", d)
		}
	})
}

func TestGateMostUrgentFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlack(1, time.Second)
		g := NewGate()
		key := "chat.update"
		if err := g.Do(t.Context(), key, PriorityOthers, func() error { return f.call(key, "first") }); err != nil {
			t.Fatal(err)
		}
		// The bucket is empty: the next call meets a 429 and the key is
		// throttled; then calls queue up, least urgent first.
		go g.Do(t.Context(), key, PriorityOthers, func() error { return f.call(key, "throttler") })
		time.Sleep(50 * time.Millisecond)
		var wg sync.WaitGroup
		for _, c := range []struct {
			label string
			prio  Priority
		}{{"audit", PriorityAudit}, {"others", PriorityOthers}, {"next", PriorityNext}, {"now", PriorityNow}} {
			wg.Go(func() { g.Do(t.Context(), key, c.prio, func() error { return f.call(key, c.label) }) })
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
		var order []string
		for _, l := range []string{"throttler", "now", "next", "others", "audit"} {
			if _, ok := f.done(l); !ok {
				t.Fatalf("%s never went through", l)
			}
			order = append(order, l)
		}
		slices.SortStableFunc(order, func(a, b string) int {
			ta, _ := f.done(a)
			tb, _ := f.done(b)
			return ta.Compare(tb)
		})
		// The throttled call waits its turn by priority too: it is an
		// "others" call that came before the other one.
		if want := []string{"now", "next", "throttler", "others", "audit"}; !slices.Equal(order, want) {
			t.Errorf("order %v, want %v", order, want)
		}
	})
}

// A call that may wait only a little gives up at once when the throttled
// key has a long queue ahead of it, even if the current Retry-After is
// short; a more urgent call jumps that queue and still goes.
func TestGateWithinCountsTheQueueAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlack(1, time.Second)
		g := NewGate()
		key := "chat.update"
		if err := g.Do(t.Context(), key, PriorityOthers, func() error { return f.call(key, "first") }); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { g.Do(t.Context(), key, PriorityOthers, func() error { return f.call(key, "throttler") }) })
		time.Sleep(50 * time.Millisecond) // the key is throttled now, for about a second
		for i := range 10 {
			wg.Go(func() {
				g.Do(t.Context(), key, PriorityOthers, func() error { return f.call(key, fmt.Sprint("queued", i)) })
			})
		}
		time.Sleep(time.Millisecond)
		if b := g.Backlog(key, PriorityOthers); b < 10*time.Second {
			t.Errorf("Backlog behind 10 queued calls = %v, want at least 10 turns of about 1s", b)
		}
		start := time.Now()
		err := g.DoWithin(t.Context(), key, PriorityOthers, 2*time.Second, func() error { return f.call(key, "late") })
		if !errors.Is(err, ErrThrottled) || time.Since(start) > 0 {
			t.Errorf("DoWithin 2s behind 10 queued calls = %v after %v, want ErrThrottled at once", err, time.Since(start))
		}
		if err := g.DoWithin(t.Context(), key, PriorityNext, 2*time.Second, func() error { return f.call(key, "urgent") }); err != nil {
			t.Errorf("an urgent DoWithin 2s ahead of the queue = %v, want it to go", err)
		}
		wg.Wait()
	})
}

// A call that may wait 2 s gives up after 2 s even when the estimate said
// it could go soon: here the calls in flight take long.
func TestGateWithinBoundsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGate()
		key := "chat.update"
		release := make(chan struct{})
		for range maxInFlight {
			go g.Do(t.Context(), key, PriorityOthers, func() error { <-release; return nil })
		}
		synctest.Wait()
		if b := g.Backlog(key, PriorityNext); b != 0 {
			t.Fatalf("Backlog with calls in flight and no Retry-After = %v, want 0", b)
		}
		start := time.Now()
		called := false
		err := g.DoWithin(t.Context(), key, PriorityNext, 2*time.Second, func() error { called = true; return nil })
		if !errors.Is(err, ErrThrottled) || called || time.Since(start) != 2*time.Second {
			t.Errorf("DoWithin 2s behind calls in flight = %v after %v (called %v), want ErrThrottled after 2s", err, time.Since(start), called)
		}
		close(release)
		if err := g.DoWithin(t.Context(), key, PriorityNext, 2*time.Second, func() error { return nil }); err != nil {
			t.Errorf("DoWithin once the key is free = %v", err)
		}
	})
}

func TestGateCancelledWaiterLetsOthersGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlack(1, time.Second)
		g := NewGate()
		key := "users.info"
		g.Do(t.Context(), key, PriorityNow, func() error { return f.call(key, "a") })
		go g.Do(t.Context(), key, PriorityNow, func() error { return f.call(key, "b") }) // 429, waits
		time.Sleep(10 * time.Millisecond)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := g.Do(ctx, key, PriorityNow, func() error { return f.call(key, "c") }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a waiter past its deadline: %v", err)
		}
		if err := g.Do(t.Context(), key, PriorityNow, func() error { return f.call(key, "d") }); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.done("b"); !ok {
			t.Error("b never went through")
		}
	})
}

// fakeThrottles is a store other replicas share; push makes Throttle
// announce to the watchers.
type fakeThrottles struct {
	mu       sync.Mutex
	m        map[string]time.Time
	push     bool
	watchers []func(string, time.Time)
}

func (f *fakeThrottles) Throttle(_ context.Context, key string, until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[key] = until
	if f.push {
		for _, learn := range f.watchers {
			learn(key, until)
		}
	}
	return nil
}

func (f *fakeThrottles) Watch(ctx context.Context, subscribed func(), learn func(string, time.Time)) {
	f.mu.Lock()
	f.watchers = append(f.watchers, learn)
	f.mu.Unlock()
	subscribed()
	<-ctx.Done()
}

func (f *fakeThrottles) Throttled(context.Context) (map[string]time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]time.Time{}
	for k, v := range f.m {
		out[k] = v
	}
	return out, nil
}

// A replica learns another's Retry-After from the shared record it reads
// every interval, and at once from an announcement.
func TestGateLearnsOtherReplicasRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		name     string
		push     bool
		interval time.Duration
	}{{"read", false, 100 * time.Millisecond}, {"announced", true, time.Hour}} {
		t.Run(tt.name, func(t *testing.T) { testLearnsRetryAfter(t, tt.push, tt.interval) })
	}
}

func testLearnsRetryAfter(t *testing.T, push bool, interval time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		shared := &fakeThrottles{m: map[string]time.Time{}, push: push}
		f := newFakeSlack(1, 5*time.Second)
		a, b := NewGate(), NewGate()
		a.Shared, b.Shared = shared, shared
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go b.Follow(ctx, interval)
		key := "chat.postMessage:C0AUDIT"
		a.Do(t.Context(), key, PriorityAudit, func() error { return f.call(key, "a1") })
		go a.Do(t.Context(), key, PriorityAudit, func() error { return f.call(key, "a2") }) // 429: shared
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		if err := b.Do(t.Context(), key, PriorityAudit, func() error { return f.call(key, "b1") }); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < 4*time.Second {
			t.Errorf("replica b called after %v, inside replica a's Retry-After", time.Since(start))
		}
		for _, c := range f.calls {
			if c.label == "b1" && c.inside {
				t.Error("replica b called inside the window")
			}
		}
		cancel()
	})
}

// TestGateBoundsSharedWindows: what the shared store says is not trusted
// further than a replica's own 429 could go. A window on a key the gate
// does not use, or one that ends more than MaxSharedWait ahead, is
// ignored (whether read from the record or announced) and logged once per
// key however often it is read; a window within the bound on a key the
// gate uses still holds that key.
func TestGateBoundsSharedWindows(t *testing.T) {
	for _, push := range []bool{false, true} {
		t.Run(fmt.Sprintf("announced=%v", push), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs syncBuffer
				shared := &fakeThrottles{m: map[string]time.Time{}}
				g := NewGate()
				g.Shared, g.Log = shared, slog.New(slog.NewTextHandler(&logs, nil))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				go g.Follow(ctx, 10*time.Second)
				synctest.Wait()
				shared.push = push
				now := time.Now()
				for key, until := range map[string]time.Time{
					"chat.update":                          now.Add(3 * time.Hour),                 // a known key, far ahead
					"users.info":                           now.Add(MaxSharedWait + 2*time.Minute), // past the bound when read
					"chat.postMessage:#general":            now.Add(time.Minute),                   // not a channel ID
					"chat.postMessage:C0AUDIT/x":           now.Add(time.Minute),                   // not a channel ID either
					"response_url:D0EMPLOYEE/not-a-ts":     now.Add(time.Minute),                   // not a message
					"evil":                                 now.Add(time.Minute),                   // not a key of the gate
					"chat.postMessage:C0AUDIT":             now.Add(2 * time.Minute),               // within the bound: honoured
					"response_url:D0EMPLOYEE/1700000000.1": now.Add(MaxSharedWait),                 // at the bound: honoured
				} {
					shared.Throttle(ctx, key, until)
				}
				time.Sleep(time.Minute) // six reads of the record
				// (A window past the bound that comes within it later is
				// honoured for what is left then: MaxSharedWait at most.)
				synctest.Wait()
				for _, key := range []string{"chat.update", "users.info"} {
					start := time.Now()
					if err := g.Do(t.Context(), key, PriorityNow, func() error { return nil }); err != nil || time.Since(start) > 0 {
						t.Errorf("%s waited %v (%v) for a window past the bound", key, time.Since(start), err)
					}
				}
				for key, end := range map[string]time.Time{"chat.postMessage:C0AUDIT": now.Add(2 * time.Minute), "response_url:D0EMPLOYEE/1700000000.1": now.Add(MaxSharedWait)} {
					err := g.Do(t.Context(), key, PriorityNow, func() error { return nil })
					if err != nil || time.Now().Before(end) {
						t.Errorf("%s went %v (%v) before the end of a shared window within the bound", key, end.Sub(time.Now()), err)
					}
				}
				cancel()
				for _, key := range []string{"chat.update", "users.info", "chat.postMessage:#general", "chat.postMessage:C0AUDIT/x", "response_url:D0EMPLOYEE/not-a-ts", "evil"} {
					if n := strings.Count(logs.String(), "key="+key+" "); n != 1 {
						t.Errorf("the ignored window of %s was logged %d times, want once:\n%s", key, n, logs.String())
					}
				}
				if strings.Contains(logs.String(), "C0AUDIT ") || strings.Contains(logs.String(), "1700000000.1 ") {
					t.Errorf("an honoured window was logged as ignored:\n%s", logs.String())
				}
			})
		})
	}
}

// TestGateLogsBoundedIgnoredKeys: a writer of many bogus keys costs a
// bounded number of log lines.
func TestGateLogsBoundedIgnoredKeys(t *testing.T) {
	var logs syncBuffer
	g := NewGate()
	g.Log = slog.New(slog.NewTextHandler(&logs, nil))
	for i := range 3 * maxIgnoredLogged {
		g.learn(map[string]time.Time{fmt.Sprintf("junk-%d", i): time.Now().Add(time.Minute)})
	}
	if n := strings.Count(logs.String(), "\n"); n != maxIgnoredLogged+1 {
		t.Errorf("%d log lines for %d bogus keys, want %d", n, 3*maxIgnoredLogged, maxIgnoredLogged+1)
	}
}

// TestOwnKeyKnowsEveryKeyTheGateIsGiven: every key a call site in this
// package passes to the gate is one OwnKey accepts, so that no replica
// ignores a real window: a new key must be added to methodKeys.
func TestOwnKeyKnowsEveryKeyTheGateIsGiven(t *testing.T) {
	calls := regexp.MustCompile(`(?:\.Do|\.DoWithin|\.DoFor|\.call|lookup)\(ctx, (?:[^,"\n]+, )*"([^"]+)"(\+)?`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range calls.FindAllStringSubmatch(string(b), -1) {
			seen++
			key := m[1]
			switch {
			case m[2] == "" && !OwnKey(key):
				t.Errorf("%s: the gate key %q is not one OwnKey accepts", f, key)
			case m[2] != "" && key != "chat.postMessage:" && key != "response_url:":
				t.Errorf("%s: the gate key prefix %q is not one OwnKey accepts", f, key)
			}
		}
	}
	if seen < 8 {
		t.Fatalf("found %d gate keys in the sources; the pattern no longer matches the calls", seen)
	}
	for key, want := range map[string]bool{
		"chat.postMessage:C0123ABCD": true, "chat.postMessage:D0123ABCD": true, "chat.postMessage:G0123ABCD": true,
		"response_url:D0123ABCD/1700000000.000100": true, "chat.update": true, "conversations.open": true,
		"chat.postMessage:": false, "chat.postMessage:c0123abcd": false, "chat.postMessage:C0123ABCD:x": false,
		"response_url:D0123ABCD": false, "response_url:D0123ABCD/": false, "response_url:/1.2": false,
		"chat.delete": false, "": false, "users.info ": false,
	} {
		if OwnKey(key) != want {
			t.Errorf("OwnKey(%q) = %v, want %v", key, !want, want)
		}
	}
}

// Work parked on a throttled key holds no goroutine and is woken when its
// turn comes, the most urgent first; the woken work's call takes the turn
// held for it at once, and a turn nobody comes back for is let go.
func TestGateParkedWorkWakesInTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeSlack(1, time.Second)
		g := NewGate()
		key := "chat.postMessage:C0AUDIT"
		post := func(label string) func() error { return func() error { return f.call(key, label) } }
		if err := g.Do(t.Context(), key, PriorityAudit, post("first")); err != nil {
			t.Fatal(err)
		}
		// The bucket is empty: a call that may wait 100ms meets the 429 and gives up.
		if err := g.DoFor(t.Context(), key, PriorityAudit, 100*time.Millisecond, "lane-a", post("a")); !errors.Is(err, ErrThrottled) {
			t.Fatalf("DoFor on an empty bucket = %v, want ErrThrottled", err)
		}
		var mu sync.Mutex
		var woken []string
		park := func(ticket string, prio Priority) {
			g.Park(key, prio, ticket, func() {
				mu.Lock()
				woken = append(woken, ticket)
				mu.Unlock()
			})
		}
		park("lane-a", PriorityAuditReply)
		park("lane-b", PriorityAudit)
		park("lane-c", PriorityNext)
		park("lane-b", PriorityAudit) // parked again: keeps its place
		seen := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(woken)
		}
		if n := g.Waiting(); n != 3 {
			t.Fatalf("%d parked, want 3", n)
		}
		synctest.Wait()
		if woken := seen(); len(woken) != 0 {
			t.Fatalf("woken %v before the Retry-After ended", woken)
		}
		time.Sleep(time.Second) // the window ends: the most urgent is woken
		synctest.Wait()
		if woken := seen(); !slices.Equal(woken, []string{"lane-c"}) {
			t.Fatalf("woken %v, want lane-c alone", woken)
		}
		start := time.Now()
		if err := g.DoFor(t.Context(), key, PriorityNext, 100*time.Millisecond, "lane-c", post("c")); err != nil {
			t.Fatalf("the woken work's call = %v, want it to take its turn", err)
		}
		if took := time.Since(start); took > 20*time.Millisecond {
			t.Errorf("the woken work's call waited %v", took)
		}
		// lane-b is next; it never comes back for its turn: after turnHold
		// the turn goes to lane-a.
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if woken := seen(); len(woken) < 3 || !slices.Equal(woken[:3], []string{"lane-c", "lane-b", "lane-a"}) {
			t.Errorf("woken %v, want lane-c, lane-b, then lane-a once lane-b's turn was let go", woken)
		}
		if n := g.Waiting(); n != 0 {
			t.Errorf("%d still parked", n)
		}
		for _, c := range f.calls {
			if c.inside {
				t.Errorf("a call inside a Retry-After window: %+v", c)
			}
		}
	})
}
