package redisstore_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/internal/turns"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/store/storetest"
	"github.com/example/resetbot/workflow"
	"github.com/redis/go-redis/v9"
)

// connect returns a client for rawURL that answers PING.
func connect(rawURL string) (redis.UniversalClient, error) {
	c, err := redisstore.Dial(rawURL)
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
}

// testClient connects once to the Redis of REDIS_URL or the local default.
var testClient = sync.OnceValues(func() (redis.UniversalClient, error) {
	return connect(cmp.Or(os.Getenv("REDIS_URL"), "redis://127.0.0.1:6379/0"))
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

// newStore returns a Store on the test Redis; see newStoreOn.
func newStore(tb testing.TB, opts ...redisstore.Option) (*redisstore.Store, string) {
	return newStoreOn(tb, client(tb), opts...)
}

// newStoreOn returns a Store of c under a fresh random prefix whose keys are
// deleted when the test ends.
func newStoreOn(tb testing.TB, c redis.UniversalClient, opts ...redisstore.Option) (*redisstore.Store, string) {
	prefix := "resetbot-test:" + rand.Text() + ":"
	tb.Cleanup(func() {
		if ks := keys(tb, c, prefix); len(ks) > 0 {
			for batch := range slices.Chunk(ks, 1000) {
				if err := c.Del(context.Background(), batch...).Err(); err != nil {
					tb.Errorf("cleanup: %v", err)
				}
			}
		}
	})
	return redisstore.New(c, prefix, storetest.Key, opts...), prefix
}

// keys returns the sorted keys of a Store with prefix, on every master
// of a cluster.
func keys(tb testing.TB, c redis.UniversalClient, prefix string) []string {
	ctx := context.Background()
	var (
		mu  sync.Mutex
		all []string
	)
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, redisstore.KeyPrefix(prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			all = append(all, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
	} else {
		err = scan(ctx, c)
	}
	if err != nil {
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

func TestTampering(t *testing.T) { testTampering(t, client(t)) }

func TestLanes(t *testing.T) { testLanes(t, client(t)) }

// testLanes runs the delivery lanes' suites on c: the conformance suite,
// and the tampering suite rewriting records with plain GET and SET.
func testLanes(t *testing.T, c redis.UniversalClient) {
	storetest.RunLanes(t, func(t *testing.T) storetest.LaneStore {
		s, _ := newStoreOn(t, c)
		return s
	})
	storetest.RunLaneTampering(t, func(t *testing.T) (storetest.LaneStore, storetest.TamperLane) {
		s, _ := newStoreOn(t, c)
		return s, func(t *testing.T, l delivery.Lane, edit func([]byte) []byte) {
			t.Helper()
			if err := s.TamperLane(t.Context(), l, edit); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// testTampering runs the tampering suite on c, rewriting records with
// plain GET and SET as any client of the same Redis could.
func testTampering(t *testing.T, c redis.UniversalClient) {
	storetest.RunTampering(t, func(t *testing.T) (workflow.Store, storetest.Tamper) {
		s, prefix := newStoreOn(t, c)
		return s, func(t *testing.T, id string, edit func([]byte) []byte) {
			t.Helper()
			key := redisstore.KeyPrefix(prefix) + "req:" + id
			stored, err := c.Get(t.Context(), key).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Set(t.Context(), key, edit(stored), 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestKeysUnderPrefix(t *testing.T) {
	testKeysUnderPrefix(t, client(t))
}

// testKeysUnderPrefix checks the names of every kind of key a Store
// writes: all begin with the hash-tagged prefix.
func testKeysUnderPrefix(t *testing.T, c redis.UniversalClient) []string {
	s, prefix := newStoreOn(t, c)
	ctx := t.Context()
	r := storetest.NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, workflow.Limit{Max: 3, Window: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "envelope", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Throttle(ctx, "chat.update", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	l := delivery.People(r.ID)
	tk, ok, err := s.Take(ctx, l, "replica-1", time.Now(), time.Now().Add(time.Minute))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := s.Put(ctx, tk, "replica-1", []byte("{}"), nil, time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	tagged := "{" + strings.TrimSuffix(prefix, ":") + "}:"
	want := []string{tagged + "audit", tagged + "claim:envelope", tagged + "due",
		tagged + "inbox:home:UAPPROVER1", tagged + "inbox:home:UAPPROVER2", tagged + "inbox:home:UEMPLOYEE",
		tagged + "inbox:queue:UAPPROVER1", tagged + "inbox:queue:UAPPROVER2",
		tagged + "lane:people:" + r.ID, tagged + "lanes-due", tagged + "lease:people:" + r.ID, tagged + "open:UEMPLOYEE",
		tagged + "rate:UEMPLOYEE", tagged + "recent", tagged + "req:" + r.ID, tagged + "slack-throttle"}
	got := keys(t, c, prefix)
	if !slices.Equal(got, want) {
		t.Errorf("keys of the store:\n%q\nwant\n%q", got, want)
	}
	return got
}

// TestThrottles: a Retry-After one replica met is seen by the others until
// it ends.
func TestThrottles(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	now := time.Now()
	if got, err := s.Throttled(ctx); err != nil || len(got) != 0 {
		t.Fatalf("fresh store: %v %v", got, err)
	}
	for key, until := range map[string]time.Time{
		"chat.postMessage:C0AUDIT": now.Add(30 * time.Second), "chat.update": now.Add(-time.Second),
	} {
		if err := s.Throttle(ctx, key, until); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Throttled(ctx)
	if err != nil || len(got) != 1 || got["chat.postMessage:C0AUDIT"].UnixMilli() != now.Add(30*time.Second).UnixMilli() {
		t.Fatalf("throttled %v %v; want only the audit channel", got, err)
	}
}

// TestThrottleAnnounced: a window one replica records after another's
// Watch said it was subscribed reaches that Watch, which is how replicas
// learn it at once.
func TestThrottleAnnounced(t *testing.T) { testThrottleAnnounced(t, client(t)) }

func testThrottleAnnounced(t *testing.T, c redis.UniversalClient) {
	s, prefix := newStoreOn(t, c)
	other := redisstore.New(c, prefix, storetest.Key) // another replica, same prefix
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	learned := make(chan string, 100)
	done, subscribed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		other.Watch(ctx, func() { close(subscribed) }, func(key string, until time.Time) { learned <- fmt.Sprint(key, " ", until.UnixMilli()) })
	}()
	select {
	case <-subscribed:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch never said it was subscribed")
	}
	until := time.Now().Add(30 * time.Second)
	want := fmt.Sprint("chat.update ", until.UnixMilli())
	if err := s.Throttle(ctx, "chat.update", until); err != nil { // announced once
		t.Fatal(err)
	}
	select {
	case got := <-learned:
		if got != want {
			t.Fatalf("learned %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the announcement never reached the other replica's Watch")
	}
	cancel()
	<-done // Watch returns when ctx ends
}

func TestKeyPrefix(t *testing.T) {
	for prefix, want := range map[string]string{
		"resetbot:":      "{resetbot}:",
		"app:resetbot:":  "{app:resetbot}:",
		"resetbot":       "{resetbot}",
		"resetbot::":     "{resetbot:}:",
		"resetbot-":      "{resetbot-}",
		"":               "{resetbot}:",
		":":              "{resetbot}:",
		"{rb}:x:":        "{rb}:x:",
		"x:{rb}:":        "x:{rb}:",
		"{}:":            "{{}}:", // an empty tag is no tag
		"a}b{:":          "{a}b{}:",
		"a{b:":           "{a{b}:",
		"prod:{bot}":     "prod:{bot}",
		"weird{:}:stuff": "weird{:}:stuff",
	} {
		if got := redisstore.KeyPrefix(prefix); got != want {
			t.Errorf("KeyPrefix(%q) = %q, want %q", prefix, got, want)
		}
	}
}

func TestEndedRequestExpires(t *testing.T) {
	s, prefix := newStore(t, redisstore.WithRetention(time.Hour))
	ctx, rdb := t.Context(), client(t)
	tagged := redisstore.KeyPrefix(prefix)
	end := func(r *workflow.Request) {
		t.Helper()
		_, err := s.Update(ctx, r.ID, func(r *workflow.Request) error {
			return r.Cancel(r.Requester, time.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	r := storetest.NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, workflow.Limit{Max: 3, Window: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, tagged+"req:"+r.ID).Val(); ttl != -1 {
		t.Errorf("open request has TTL %v, want none", ttl)
	}
	if ttl := rdb.PTTL(ctx, tagged+"rate:UEMPLOYEE").Val(); ttl <= 23*time.Hour || ttl > 24*time.Hour {
		t.Errorf("rate key TTL %v, want the 24h window", ttl)
	}
	end(r)
	if ttl := rdb.PTTL(ctx, tagged+"req:"+r.ID).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("ended request has TTL %v, want the 1h retention", ttl)
	}
	if got := keys(t, rdb, prefix); slices.ContainsFunc(got, func(k string) bool { return strings.Contains(k, ":open:") || strings.HasSuffix(k, ":due") }) {
		t.Errorf("an ended request left index keys: %q", got)
	}
	// A lane record expires after the retention too.
	l := delivery.People(r.ID)
	tk, ok, err := s.Take(ctx, l, "replica-1", time.Now(), time.Now().Add(time.Minute))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := s.Put(ctx, tk, "replica-1", []byte("{}"), nil, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, tagged+"lane:"+l.String()).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("lane record has TTL %v, want the 1h retention", ttl)
	}

	// A request whose record is gone (expired, deleted) leaves its
	// deadline behind; the sweeper's Update drops it.
	r = storetest.NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, workflow.Limit{}); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, tagged+"req:"+r.ID)
	if _, err := s.Update(ctx, r.ID, func(*workflow.Request) error { return nil }); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Fatalf("Update of an expired request: %v, want code %s", err, workflow.CodeNotFound)
	}
	if ids, err := s.Due(ctx, time.Now(), 0); err != nil || len(ids) != 0 {
		t.Errorf("Due after the request expired = %v, %v; want none", ids, err)
	}
}

// TestUnavailable checks that every call reports an unreachable Redis
// within seconds, whatever the kind of deployment.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"redis://127.0.0.1:1/0", "redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster", "redis+cluster://127.0.0.1:1,127.0.0.1:2"} {
		t.Run(strings.SplitN(u, ":", 2)[0], func(t *testing.T) {
			t.Parallel()
			c, err := redisstore.Dial(u)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, ctx := redisstore.New(c, "resetbot-test:", storetest.Key), t.Context()
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
		})
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
}

func TestParseSentinelURL(t *testing.T) {
	opt, err := redisstore.ParseSentinelURL("rediss+sentinel://bot:s3cret@s1.example.com,s2.example.com:26380,[::1]:26381/my%20master%2F1/3" +
		"?sentinel_username=watcher&sentinel_password=p%40ss&read_timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"s1.example.com:26379", "s2.example.com:26380", "[::1]:26381"}; !slices.Equal(opt.SentinelAddrs, want) {
		t.Errorf("Sentinels %q, want %q", opt.SentinelAddrs, want)
	}
	if opt.MasterName != "my master/1" || opt.DB != 3 || opt.Username != "bot" || opt.Password != "s3cret" ||
		opt.SentinelUsername != "watcher" || opt.SentinelPassword != "p@ss" {
		t.Errorf("parsed to master %q db %d user %q/%q sentinel user %q/%q", opt.MasterName, opt.DB,
			opt.Username, opt.Password, opt.SentinelUsername, opt.SentinelPassword)
	}
	if opt.TLSConfig == nil || opt.TLSConfig.ServerName != "" || opt.TLSConfig.MinVersion < tls.VersionTLS12 || opt.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS config %+v, want TLS 1.2+ checking each dialed address", opt.TLSConfig)
	}
	if opt.ReadTimeout != 5*time.Second || opt.DialTimeout != 2*time.Second || !opt.ContextTimeoutEnabled || opt.MaxRetries != 1 {
		t.Errorf("read timeout %v, dial timeout %v, context timeouts %v, retries %d; want 5s from the URL, then the defaults",
			opt.ReadTimeout, opt.DialTimeout, opt.ContextTimeoutEnabled, opt.MaxRetries)
	}

	opt, err = redisstore.ParseSentinelURL("redis+sentinel://127.0.0.1:26379/mymaster/")
	if err != nil || opt.MasterName != "mymaster" || opt.DB != 0 || opt.TLSConfig != nil || opt.Password != "" || opt.SentinelPassword != "" {
		t.Errorf("plain URL parsed to %+v, %v", opt, err)
	}
	if opt, err := redisstore.ParseSentinelURL("rediss+sentinel://h/m?skip_verify=true"); err != nil || !opt.TLSConfig.InsecureSkipVerify {
		t.Errorf("skip_verify: %v", err)
	}
}

func TestParseClusterURL(t *testing.T) {
	opt, err := redisstore.ParseClusterURL("rediss+cluster://bot:s3cret@node1.example.com:7000,node2.example.com,[::1]:7002?read_timeout=5s&max_redirects=5")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"node1.example.com:7000", "node2.example.com:6379", "[::1]:7002"}; !slices.Equal(opt.Addrs, want) {
		t.Errorf("nodes %q, want %q", opt.Addrs, want)
	}
	if opt.Username != "bot" || opt.Password != "s3cret" || opt.MaxRedirects != 5 {
		t.Errorf("user %q/%q, redirects %d", opt.Username, opt.Password, opt.MaxRedirects)
	}
	if opt.TLSConfig == nil || opt.TLSConfig.ServerName != "" || opt.TLSConfig.MinVersion < tls.VersionTLS12 || opt.TLSConfig.InsecureSkipVerify {
		t.Errorf("TLS config %+v, want TLS 1.2+ checking each dialed address", opt.TLSConfig)
	}
	if opt.ReadTimeout != 5*time.Second || opt.WriteTimeout != 2*time.Second || !opt.ContextTimeoutEnabled || opt.MaxRetries != 1 {
		t.Errorf("read timeout %v, write timeout %v, context timeouts %v, retries %d; want 5s from the URL, then the defaults",
			opt.ReadTimeout, opt.WriteTimeout, opt.ContextTimeoutEnabled, opt.MaxRetries)
	}
	opt, err = redisstore.ParseClusterURL("redis+cluster://127.0.0.1:7000/")
	if err != nil || !slices.Equal(opt.Addrs, []string{"127.0.0.1:7000"}) || opt.TLSConfig != nil || opt.Password != "" {
		t.Errorf("plain URL parsed to %+v, %v", opt, err)
	}
	if opt, err := redisstore.ParseClusterURL("rediss+cluster://h?skip_verify=true"); err != nil || !opt.TLSConfig.InsecureSkipVerify {
		t.Errorf("skip_verify: %v", err)
	}
}

// TestDial checks the client type of each kind of URL.
func TestDial(t *testing.T) {
	for u, want := range map[string]string{
		"redis://127.0.0.1:6379/0":                 "*redis.Client",
		"rediss+sentinel://127.0.0.1:26379/master": "*redis.Client",
		"redis+cluster://127.0.0.1:7000":           "*redis.ClusterClient",
		"REDIS+CLUSTER://127.0.0.1:7000":           "*redis.ClusterClient",
	} {
		c, err := redisstore.Dial(u)
		if err != nil {
			t.Errorf("Dial(%q): %v", u, err)
			continue
		}
		if got := fmt.Sprintf("%T", c); got != want {
			t.Errorf("Dial(%q) = %s, want %s", u, got, want)
		}
		c.Close()
		if err := redisstore.ValidateURL(u); err != nil {
			t.Errorf("ValidateURL(%q) = %v", u, err)
		}
	}
}

// TestValidateURL checks that bad URLs are refused with a reason and
// without the password (s3cret, p4ss).
func TestValidateURL(t *testing.T) {
	for url, reason := range map[string]string{
		"":                                                            "scheme",
		"localhost:6379":                                              "scheme",
		"http://localhost:6379":                                       "scheme",
		"unix:///tmp/redis.sock":                                      "scheme",
		"redis://bot:s3cret@host:port/0":                              "port",
		"redis://bot:s3cret@host/x":                                   "database",
		"redis://host/0?nonsense=1":                                   "nonsense",
		"redis://bot:s3%zzcret@host/0":                                "percent-encoded",
		"redis://bot:s3cret@host/0?password=p4ss":                     "password",
		"redis+sentinel://bot:s3cret@h1,h2":                           "master",
		"redis+sentinel://bot:s3cret@h1,h2/":                          "master",
		"redis+sentinel://bot:s3cret@h1,h2/m/x":                       "database",
		"redis+sentinel://bot:s3cret@h1,h2/m/-1":                      "database",
		"redis+sentinel://bot:s3cret@h1,h2/m/0/1":                     "path",
		"redis+sentinel://bot:s3cret@/m":                              "host",
		"redis+sentinel://bot:s3cret@h1,,h2/m":                        "host",
		"redis+sentinel://bot:s3cret@h1:0/m":                          "port",
		"redis+sentinel://bot:s3cret@h1:70000/m":                      "port",
		"redis+sentinel://bot:s3cret@h1:x/m":                          "h1:x",
		"redis+sentinel://bot:s3cret@::1/m":                           "::1",
		"redis+sentinel://bot:s3cret@h1/m?master_name=n":              "master_name",
		"redis+sentinel://bot:s3cret@h1/m?addr=h2:1":                  "addr",
		"redis+sentinel://h1/m?password=p4ss":                         "password",
		"redis+sentinel://h1/m?sentinel_password=p4ss&read_timeout=x": "read_timeout",
		"redis+sentinel://bot:s3cret@h1/m?dial_timeout=s3cret":        "dial_timeout",
		"redis+sentinel://bot:s3cret@h1/m?skip_verify=true":           "skip_verify",
		"redis+sentinel://bot:s3cret@h1/m?route_randomly=true":        "route_randomly",
		"redis+sentinel://bot:s3cret@h1/m?replica_only=true":          "replica_only",
		"redis+cluster://bot:s3cret@h1?read_only=true":                "read_only",
		"redis+cluster://bot:s3cret@h1?route_by_latency=true":         "route_by_latency",
		"redis+sentinel://bot:s3cret@h1/m#frag":                       "#",
		"redis+sentinel://bot:s3%zzcret@h1/m":                         "password",
		"redis+sentinel://h1/m?sentinel_password=p4%zzss":             "query",
		"redis+cluster://bot:s3cret@h1,h2/0":                          "database 0",
		"redis+cluster://bot:s3cret@h1?db=1":                          "db",
		"redis+cluster://bot:s3cret@h1?addr=h2:1":                     "addr",
		"redis+cluster://h1?password=p4ss":                            "password",
		"redis+cluster://bot:s3cret@h1?skip_verify=true":              "TLS",
		"rediss+cluster://bot:s3cret@h1?skip_verify=maybe":            "skip_verify",
		"redis+cluster://bot:s3cret@":                                 "host",
		"redis+sentinel+cluster://h1":                                 "scheme",
	} {
		err := redisstore.ValidateURL(url)
		if err == nil {
			t.Errorf("ValidateURL(%q) = nil, want an error about %s", url, reason)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "s3cret") || strings.Contains(msg, "p4ss") || strings.Contains(msg, "zz") {
			t.Errorf("ValidateURL(%q) = %q: shows the password", url, msg)
		}
		if !strings.Contains(msg, reason) {
			t.Errorf("ValidateURL(%q) = %q, want it to name %s", url, msg, reason)
		}
		if _, derr := redisstore.Dial(url); derr == nil || derr.Error() != msg {
			t.Errorf("Dial(%q) = %v, want ValidateURL's error", url, derr)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                  "",
		"localhost:6379":                    "[not a URL]",
		"redis://127.0.0.1:6379/0":          "redis://127.0.0.1:6379/0",
		"rediss://bot:s3cret@host:6380/1":   "rediss://bot:xxxxx@host:6380/1",
		"rediss://:s3cret@host":             "rediss://:xxxxx@host",
		"redis://bot@host/0":                "redis://bot@host/0",
		"redis://b%40t:s3:cr@et@h/0?x=1#s3": "redis://b%40t:xxxxx@h/0?x=1",
		"rediss+sentinel://bot:s3cret@[::1]:26379,h2/mymaster/0?sentinel_username=w&sentinel_password=p4ss&dial_timeout=1s": "rediss+sentinel://bot:xxxxx@[::1]:26379,h2/mymaster/0?sentinel_username=w&sentinel_password=xxxxx&dial_timeout=1s",
		"redis+sentinel://h1/m?sentinel%5Fpassword=p4ss":                                                                    "redis+sentinel://h1/m?sentinel%5Fpassword=xxxxx",
		"redis+cluster://bot:s3cret@h1,h2?password=p4ss":                                                                    "redis+cluster://bot:xxxxx@h1,h2?password=xxxxx",
		"redis+cluster://h1?%zz=p4ss":                                                                                       "redis+cluster://h1?%zz=xxxxx",
	} {
		if got := redisstore.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkCreateUpdate(b *testing.B) {
	s, _ := newStore(b)
	storetest.BenchCreateUpdate(b, s)
}

// TestRoundTrips pins what each call costs: Update reads, then writes
// (with the change's audit records and delivery marks); Standing asks its
// two questions in one pipeline; a lane's Take and Put are one each.
func TestRoundTrips(t *testing.T) {
	opts := client(t).(*redis.Client).Options() // skip or fail as the other tests do
	proxy, err := turns.Start(opts.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	via := *opts
	via.Addr, via.PoolSize = proxy.Addr(), 1
	c := redis.NewClient(&via)
	t.Cleanup(func() { c.Close() }) // after newStoreOn's cleanup
	s, _ := newStoreOn(t, c)
	ctx := t.Context()
	r := storetest.NewRequest("UEMPLOYEE", time.Now())
	if err := s.Create(ctx, r, workflow.Limit{}); err != nil {
		t.Fatal(err)
	}
	touch := func(r *workflow.Request) error { r.RevealTries++; return nil }
	saved, err := s.Update(ctx, r.ID, touch) // loads the script
	if err != nil {
		t.Fatal(err)
	}
	cost := func(what string, want int64, op func() error) {
		t.Helper()
		before := proxy.Turns()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := proxy.Turns() - before; got != want {
			t.Errorf("%s: %d round trips, want %d", what, got, want)
		}
	}
	cost("Update", 2, func() error { saved, err = s.Update(ctx, r.ID, touch); return err })
	l := delivery.Audit(r.ID)
	var tk delivery.Taken
	if tk, _, err = s.Take(ctx, l, "replica-1", time.Now(), time.Now().Add(time.Minute)); err != nil { // loads the script
		t.Fatal(err)
	}
	if err := s.Put(ctx, tk, "replica-1", []byte("{}"), nil, time.Time{}, false); err != nil { // loads the script
		t.Fatal(err)
	}
	cost("Take a lane", 1, func() error {
		tk, _, err = s.Take(ctx, l, "replica-1", time.Now(), time.Now().Add(time.Minute))
		return err
	})
	cost("Put a lane", 1, func() error { return s.Put(ctx, tk, "replica-1", []byte(`{"n":1}`), nil, time.Time{}, true) })
	// The first pipeline of this client cost 3 turns here (go-redis dialled
	// a connection for it: a HELLO first); count from the second.
	if _, _, err := s.Standing(ctx, "UNOBODY", workflow.ActionReset, time.Now()); err != nil {
		t.Fatal(err)
	}
	cost("Standing of someone without an open request", 1, func() error {
		_, _, err := s.Standing(ctx, "UNOBODY", workflow.ActionReset, time.Now().Add(-time.Hour))
		return err
	})
	if saved.RevealTries != 2 {
		t.Errorf("after 2 changes RevealTries = %d, want 2", saved.RevealTries)
	}
}

// GetMany reads several requests in one round trip: nil for one that is
// gone, and for one that fails verification (moved aside as by Get).
func TestGetMany(t *testing.T) {
	s, prefix := newStore(t)
	ctx, rdb := t.Context(), client(t)
	var ids []string
	for _, u := range []string{"U1", "U2", "U3"} {
		r := storetest.NewRequest(u, time.Now())
		if err := s.Create(ctx, r, workflow.Limit{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	rdb.Set(ctx, redisstore.KeyPrefix(prefix)+"req:"+ids[1], "forged", 0)
	got, err := s.GetMany(ctx, append(ids, workflow.NewID()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0] == nil || got[0].ID != ids[0] || got[1] != nil || got[2] == nil || got[3] != nil {
		t.Fatalf("GetMany = %v", got)
	}
	if _, err := s.Get(ctx, ids[1]); workflow.ErrorCode(err) != workflow.CodeNotFound {
		t.Errorf("the forged record was not moved aside: %v", err)
	}
}
