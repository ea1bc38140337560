package slackapp

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// cacheTTL is how long a Slack lookup is reused: long enough that a burst
// of requests does not ask Slack about the same person or group again and
// again, short enough that a deactivated user or a changed group counts
// within a minute.
const cacheTTL = time.Minute

// maxCached bounds a cache; when full, expired entries go first, then all.
const maxCached = 10000

// cache keeps lookups for cacheTTL, and makes concurrent lookups of one key
// one call. The zero value is ready to use.
type cache[V any] struct {
	mu      sync.Mutex
	entries map[string]cached[V]
	flight  singleflight.Group
}

type cached[V any] struct {
	v   V
	exp time.Time
}

func (c *cache[V]) get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Now().After(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *cache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.entries == nil {
		c.entries = map[string]cached[V]{}
	}
	if len(c.entries) >= maxCached {
		for k, e := range c.entries {
			if now.After(e.exp) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCached {
			clear(c.entries)
		}
	}
	c.entries[key] = cached[V]{v, now.Add(cacheTTL)}
}

// lookup returns the value of key from c when fresh, else asks Slack with
// call through the gate under method with priority prio, and keeps the
// answer. Lookups of the same key at the same time make one call (a burst
// of employees with the same manager asks Slack about the manager once),
// under the context of the first of them.
func lookup[V any](ctx context.Context, c *cache[V], g *Gate, method string, prio Priority, key string, call func() (V, error)) (V, error) {
	return lookupWithin(ctx, c, g, method, prio, 0, key, call)
}

// lookupWithin is lookup for a call that may wait at most maxWait (0: no
// bound) for a rate-limited method: past that it returns ErrThrottled
// (Gate.DoWithin), and the caller may find the answer another way.
func lookupWithin[V any](ctx context.Context, c *cache[V], g *Gate, method string, prio Priority, maxWait time.Duration, key string, call func() (V, error)) (V, error) {
	if v, ok := c.get(key); ok {
		return v, nil
	}
	got, err, _ := c.flight.Do(key, func() (any, error) {
		if v, ok := c.get(key); ok {
			return v, nil
		}
		var v V
		err := g.DoWithin(ctx, method, prio, maxWait, func() error {
			var err error
			v, err = call()
			return err
		})
		if err != nil {
			return nil, err
		}
		c.put(key, v)
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return got.(V), nil
}
