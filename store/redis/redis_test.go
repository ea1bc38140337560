package redisstore_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	redisstore "github.com/example/resetbot/store/redis"
	"github.com/example/resetbot/store/storetest"
	"github.com/example/resetbot/workflow"
	"github.com/redis/go-redis/v9"
)

// testClient connects once to the Redis of REDIS_URL or the local default.
var testClient = sync.OnceValues(func() (redis.UniversalClient, error) {
	c, err := redisstore.Dial(cmp.Or(os.Getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
})

// client returns the test Redis. Without one, tests are skipped on a
// laptop but fail in CI, which must never skip them.
func client(tb testing.TB) redis.UniversalClient {
	c, err := testClient()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("Redis is required in CI (REDIS_URL or redis://127.0.0.1:6379/0): %v", err)
		}
		tb.Skipf("skipping: no Redis at REDIS_URL or redis://127.0.0.1:6379/0 (%v); start redis-server to run these tests", err)
	}
	return c
}

// newStore returns a Store under a fresh random prefix whose keys are
// deleted when the test ends.
func newStore(tb testing.TB, opts ...redisstore.Option) (*redisstore.Store, string) {
	c := client(tb)
	prefix := "resetbot-test:" + rand.Text() + ":"
	tb.Cleanup(func() {
		if ks := keys(tb, prefix); len(ks) > 0 {
			for batch := range slices.Chunk(ks, 1000) {
				if err := c.Del(context.Background(), batch...).Err(); err != nil {
					tb.Errorf("cleanup: %v", err)
				}
			}
		}
	})
	return redisstore.New(c, prefix, opts...), prefix
}

// keys returns the sorted keys under prefix.
func keys(tb testing.TB, prefix string) []string {
	var all []string
	iter := client(tb).Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		all = append(all, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Fatalf("scan: %v", err)
	}
	slices.Sort(all)
	return all
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) workflow.Store {
		s, _ := newStore(t)
		return s
	})
}

func TestKeysUnderPrefix(t *testing.T) {
	s, prefix := newStore(t)
	ctx := t.Context()
	r := storetest.NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, workflow.Limit{Max: 3, Window: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "envelope", time.Minute); err != nil {
		t.Fatal(err)
	}
	want := []string{prefix + "claim:envelope", prefix + "due", prefix + "open:UEMPLOYEE",
		prefix + "rate:UEMPLOYEE", prefix + "req:" + r.ID}
	if got := keys(t, prefix); !slices.Equal(got, want) {
		t.Errorf("keys under the prefix:\n%q\nwant\n%q", got, want)
	}
}

func TestEndedRequestExpires(t *testing.T) {
	s, prefix := newStore(t, redisstore.WithRetention(time.Hour))
	ctx, rdb := t.Context(), client(t)
	end := func(r *workflow.Request, synced bool) {
		t.Helper()
		_, err := s.Update(ctx, r.ID, func(r *workflow.Request) error {
			if err := r.Cancel(r.Requester, time.Now()); err != nil {
				return err
			}
			if synced {
				r.SyncedEvents = len(r.Events)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	r := storetest.NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, workflow.Limit{Max: 3, Window: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, prefix+"req:"+r.ID).Val(); ttl != -1 {
		t.Errorf("open request has TTL %v, want none", ttl)
	}
	if ttl := rdb.PTTL(ctx, prefix+"rate:UEMPLOYEE").Val(); ttl <= 23*time.Hour || ttl > 24*time.Hour {
		t.Errorf("rate key TTL %v, want the 24h window", ttl)
	}
	end(r, true)
	if ttl := rdb.PTTL(ctx, prefix+"req:"+r.ID).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("ended request has TTL %v, want the 1h retention", ttl)
	}
	if got := keys(t, prefix); slices.ContainsFunc(got, func(k string) bool { return strings.Contains(k, ":open:") || strings.HasSuffix(k, ":due") }) {
		t.Errorf("an ended, synced request left index keys: %q", got)
	}

	// A request that expired with chat sync still pending leaves its
	// deadline behind; the sweeper's Update drops it.
	r = storetest.NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, workflow.Limit{}); err != nil {
		t.Fatal(err)
	}
	end(r, false)
	rdb.Del(ctx, prefix+"req:"+r.ID)
	if _, err := s.Update(ctx, r.ID, func(*workflow.Request) error { return nil }); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("Update of an expired request: %v, want code %s", err, workflow.CodeNotFound)
	}
	if ids, err := s.Due(ctx, time.Now(), 0); err != nil || len(ids) != 0 {
		t.Errorf("Due after the request expired = %v, %v; want none", ids, err)
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	c, err := redisstore.Dial("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, ctx := redisstore.New(c, "resetbot-test:"), t.Context()
	start := time.Now()
	called := false
	calls := []struct {
		name string
		err  error
	}{
		{"Create", s.Create(ctx, storetest.NewRequest("U1", start), workflow.Limit{Max: 3, Window: time.Hour})},
		{"Get", second(s.Get(ctx, workflow.NewID()))},
		{"Open", second(s.Open(ctx, "U1"))},
		{"Update", second(s.Update(ctx, workflow.NewID(), func(*workflow.Request) error { called = true; return nil }))},
		{"Due", second(s.Due(ctx, start, 10))},
		{"Claim", second(s.Claim(ctx, "k", time.Minute))},
		{"Ping", s.Ping(ctx)},
	}
	for _, c := range calls {
		if workflow.ErrorCode(c.err) != workflow.CodeUnavailable || errors.Unwrap(c.err) == nil {
			t.Errorf("%s: error %v, want code %s wrapping the cause", c.name, c.err, workflow.CodeUnavailable)
		}
	}
	if called {
		t.Error("Update called fn without a stored request")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("reporting the outage took %v, want a few seconds at most", d)
	}
}

func second[T any](_ T, err error) error { return err }

func TestParseURL(t *testing.T) {
	opt, err := redisstore.ParseURL("rediss://bot:s3cret@cache.example.com:6380/2")
	if err != nil {
		t.Fatal(err)
	}
	if opt.Addr != "cache.example.com:6380" || opt.DB != 2 || opt.Username != "bot" || opt.Password != "s3cret" ||
		opt.TLSConfig == nil || opt.TLSConfig.ServerName != "cache.example.com" {
		t.Errorf("rediss URL parsed to addr %q db %d user %q TLS %v", opt.Addr, opt.DB, opt.Username, opt.TLSConfig)
	}
	if opt.DialTimeout != 2*time.Second || opt.ReadTimeout != 2*time.Second || opt.WriteTimeout != 2*time.Second {
		t.Errorf("timeouts %v/%v/%v, want 2s", opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout)
	}
	if !opt.ContextTimeoutEnabled || opt.MaxRetries != 1 {
		t.Errorf("context timeouts %v, retries %d; want context deadlines honoured and 1 retry", opt.ContextTimeoutEnabled, opt.MaxRetries)
	}
	if opt, err := redisstore.ParseURL("redis://localhost/0?dial_timeout=5s"); err != nil || opt.DialTimeout != 5*time.Second || opt.TLSConfig != nil {
		t.Errorf("URL timeout: %v, %v; want dial timeout 5s without TLS", opt, err)
	}
	for _, bad := range []string{"http://localhost:6379", "unix:///tmp/redis.sock", "redis://bot:s3cret@host:port/0",
		"redis://bot:s3cret@host/x", "redis://host/0?nonsense=1"} {
		_, err := redisstore.ParseURL(bad)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseURL(%q) error = %v, want one without the password", bad, err)
		}
	}
}

func BenchmarkCreateUpdate(b *testing.B) {
	s, _ := newStore(b)
	storetest.BenchCreateUpdate(b, s)
}
