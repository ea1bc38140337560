package redisstore_test

// The tests here run against the deployments of scripts/redis-ha.sh:
//
//	scripts/redis-ha.sh start /tmp/resetbot-redis-ha
//	REDIS_HA_ENV_FILE=/tmp/resetbot-redis-ha/env go test ./store/redisstore
//
// REDIS_SENTINEL_URL and REDIS_CLUSTER_URL may be set directly instead.
// Without them the tests skip on a laptop and fail in CI (CI set). The
// failover test starts a Sentinel set of its own, since it kills the
// primary.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/resetbot/internal/dotenv"
	"github.com/example/resetbot/store/storetest"
	"github.com/example/resetbot/workflow"
)

// haSetting returns setting name of scripts/redis-ha.sh: from the
// environment, else from the file REDIS_HA_ENV_FILE.
func haSetting(tb testing.TB, name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	file := os.Getenv("REDIS_HA_ENV_FILE")
	if file == "" {
		return ""
	}
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatalf("REDIS_HA_ENV_FILE: %v", err)
	}
	return envFile(tb, data)[name]
}

// envFile parses scripts/redis-ha.sh's env file (the bot's .env dialect).
func envFile(tb testing.TB, data []byte) map[string]string {
	env, err := dotenv.Parse(data, nil)
	if err != nil {
		tb.Fatalf("REDIS_HA_ENV_FILE: %v", err)
	}
	return env
}

// haClients holds one connection function per URL.
var haClients sync.Map

// haClient returns a client for the deployment of setting name
// (REDIS_SENTINEL_URL or REDIS_CLUSTER_URL), shared by the tests.
func haClient(tb testing.TB, name string) redis.UniversalClient {
	u := haSetting(tb, name)
	if u == "" {
		msg := "no " + name + ": run scripts/redis-ha.sh start DIR and set REDIS_HA_ENV_FILE=DIR/env"
		if os.Getenv("CI") != "" {
			tb.Fatal(msg + " (CI runs every test)")
		}
		tb.Skip("skipping: " + msg)
	}
	once, _ := haClients.LoadOrStore(u, sync.OnceValues(func() (redis.UniversalClient, error) { return connect(u) }))
	c, err := once.(func() (redis.UniversalClient, error))()
	if err != nil {
		tb.Fatalf("%s does not answer: %v", name, err)
	}
	return c
}

func TestSentinelStore(t *testing.T) {
	c := haClient(t, "REDIS_SENTINEL_URL")
	storetest.Run(t, func(t *testing.T) workflow.Store {
		s, _ := newStoreOn(t, c)
		return s
	})
}

func TestClusterStore(t *testing.T) {
	c := haClient(t, "REDIS_CLUSTER_URL")
	storetest.Run(t, func(t *testing.T) workflow.Store {
		s, _ := newStoreOn(t, c)
		return s
	})
}

// Tampered records are refused and moved aside through Sentinel and in a
// cluster too.
func TestTamperingHA(t *testing.T) {
	t.Run("sentinel", func(t *testing.T) { testTampering(t, haClient(t, "REDIS_SENTINEL_URL")) })
	t.Run("cluster", func(t *testing.T) { testTampering(t, haClient(t, "REDIS_CLUSTER_URL")) })
}

// The delivery lanes work through Sentinel and in a cluster (their
// scripts' keys share the store's slot).
func TestLanesHA(t *testing.T) {
	t.Run("sentinel", func(t *testing.T) { testLanes(t, haClient(t, "REDIS_SENTINEL_URL")) })
	t.Run("cluster", func(t *testing.T) { testLanes(t, haClient(t, "REDIS_CLUSTER_URL")) })
}

// Retry-After windows are announced through Sentinel and across a cluster.
func TestThrottleAnnouncedHA(t *testing.T) {
	t.Run("sentinel", func(t *testing.T) { testThrottleAnnounced(t, haClient(t, "REDIS_SENTINEL_URL")) })
	t.Run("cluster", func(t *testing.T) { testThrottleAnnounced(t, haClient(t, "REDIS_CLUSTER_URL")) })
}

// TestClusterKeysShareSlot checks, on a real cluster, that all the keys of
// a Store hash to one slot, so that its scripts never fail with CROSSSLOT,
// and that two prefixes spread over the cluster.
func TestClusterKeysShareSlot(t *testing.T) {
	c := haClient(t, "REDIS_CLUSTER_URL")
	ctx := t.Context()
	slots := map[int64]bool{}
	for range 5 {
		ks := testKeysUnderPrefix(t, c)
		slot := c.ClusterKeySlot(ctx, ks[0]).Val()
		for _, k := range ks {
			if got := c.ClusterKeySlot(ctx, k).Val(); got != slot {
				t.Errorf("key %q is in slot %d, %q in %d: a script touching both fails in a cluster", k, got, ks[0], slot)
			}
		}
		slots[slot] = true
	}
	if len(slots) < 2 {
		t.Errorf("5 random prefixes all hashed to slot %v: the tag does not come from the prefix", slots)
	}
}

func BenchmarkCreateUpdateSentinel(b *testing.B) {
	s, _ := newStoreOn(b, haClient(b, "REDIS_SENTINEL_URL"))
	storetest.BenchCreateUpdate(b, s)
}

func BenchmarkCreateUpdateCluster(b *testing.B) {
	s, _ := newStoreOn(b, haClient(b, "REDIS_CLUSTER_URL"))
	storetest.BenchCreateUpdate(b, s)
}

// startSentinelSet starts a primary, a replica and 3 Sentinels of its own
// with scripts/redis-ha.sh, stopped when the test ends, and returns the
// script's settings.
func startSentinelSet(t *testing.T) map[string]string {
	dir := t.TempDir()
	script := filepath.Join("..", "..", "scripts", "redis-ha.sh")
	run := func(ctx context.Context, cmd string) ([]byte, error) {
		return exec.CommandContext(ctx, "bash", script, cmd, dir).CombinedOutput()
	}
	t.Cleanup(func() {
		if out, err := run(context.Background(), "stop"); err != nil {
			t.Errorf("redis-ha.sh stop: %v\n%s", err, out)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute) // it may apt-get install redis-server
	defer cancel()
	if out, err := run(ctx, "start-sentinel"); err != nil {
		t.Fatalf("redis-ha.sh start-sentinel: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	return envFile(t, data)
}

// TestSentinelFailover kills the primary with SIGKILL while a flow of
// store operations runs, and checks what the package documentation
// promises: during the failover calls fail with CodeUnavailable (or
// succeed); once Sentinel promoted the replica they succeed again without
// a new client, and every write the replica had received before the kill,
// or that was made after it, is there. Writes acknowledged just before the
// kill but not yet replicated may be lost (asynchronous replication); the
// test counts them.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the failover test in -short mode")
	}
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") == "" {
		t.Skip("skipping: no redis-server to run a Sentinel set with (scripts/redis-ha.sh installs it)")
	}
	t.Parallel()
	env := startSentinelSet(t)
	c, err := connect(env["REDIS_SENTINEL_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, _ := newStoreOn(t, c)
	ctx := t.Context()
	approve := func(r *workflow.Request) error { return r.Decide(r.Approvers[0], true, time.Now(), 15*time.Minute) }
	limit := workflow.Limit{Max: 3, Window: time.Hour}

	// Before: requests, half approved, all on the replica.
	var before []*workflow.Request
	for i := range 20 {
		r := storetest.NewRequest(fmt.Sprintf("UBEFORE%d", i), time.Now())
		if err := s.Create(ctx, r, limit); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := s.Update(ctx, r.ID, approve); err != nil {
				t.Fatal(err)
			}
			r.Status = workflow.StatusApproved
		}
		before = append(before, r)
	}
	waitReplicated(t, env["REDIS_HA_PRIMARY_PORT"], env["REDIS_HA_REPLICA_PORT"])

	// During: 4 workers create, approve and read requests until stopped.
	type outcome struct {
		op, id string
		start  time.Time
		err    error
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	record := func(op, id string, start time.Time, err error) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, outcome{op, id, start, err})
	}
	succeededSince := func(t0 time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, o := range outcomes {
			if o.op == "approve" && o.err == nil && o.start.After(t0) {
				n++
			}
		}
		return n
	}
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				opCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
				r := storetest.NewRequest(fmt.Sprintf("UFLOW%d-%d", w, i), time.Now())
				start := time.Now()
				err := s.Create(opCtx, r, limit)
				record("create", r.ID, start, err)
				if err == nil {
					start = time.Now()
					_, err = s.Update(opCtx, r.ID, approve)
					record("approve", r.ID, start, err)
				}
				if err == nil {
					start = time.Now()
					_, err = s.Get(opCtx, r.ID)
					record("get", r.ID, start, err)
				}
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // as a user would retry, not a busy loop
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	time.Sleep(300 * time.Millisecond)
	killAt := killPrimary(t, env["REDIS_HA_PRIMARY_PID_FILE"])

	// Sentinel promotes the replica.
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + strings.Split(env["REDIS_HA_SENTINEL_PORTS"], ",")[0]})
	defer sentinel.Close()
	var promotedAt time.Time
	for deadline := time.Now().Add(30 * time.Second); promotedAt.IsZero(); {
		if addr, err := sentinel.GetMasterAddrByName(ctx, "mymaster").Result(); err == nil && addr[1] == env["REDIS_HA_REPLICA_PORT"] {
			promotedAt = time.Now()
		} else if time.Now().After(deadline) {
			t.Fatalf("Sentinel did not promote the replica within 30s of the kill (master %v, %v)", addr, err)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The flow goes on through the new primary.
	for deadline := time.Now().Add(20 * time.Second); succeededSince(promotedAt.Add(time.Second)) < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover within 20s of the promotion: %d approvals since", succeededSince(promotedAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	// Every error was CodeUnavailable, or the answer to a write that went
	// through before its connection broke and was retried by go-redis: the
	// request then exists, or is approved, already.
	var firstErr, lastErr time.Time
	var unavailable, retried, lost, beforeKill, afterKill int
	for _, o := range outcomes {
		if o.err != nil {
			if firstErr.IsZero() {
				firstErr = o.start
			}
			lastErr = o.start
		}
		code := workflow.ErrorCode(o.err)
		switch {
		case o.err == nil:
		case code == workflow.CodeUnavailable:
			unavailable++
		case o.op == "create" && (code == workflow.CodeOpenRequest || code == workflow.CodeConflict),
			o.op == "approve" && code == workflow.CodeDecided:
			retried++
		default:
			t.Errorf("%s %s at kill%+v: %v, want success or code %s", o.op, o.id, o.start.Sub(killAt), o.err, workflow.CodeUnavailable)
		}
		if o.err != nil && o.start.After(promotedAt.Add(2*time.Second)) {
			t.Errorf("%s %s failed %v after the promotion: %v", o.op, o.id, o.start.Sub(promotedAt), o.err)
		}
		if o.err != nil || o.op == "get" {
			continue
		}
		// An acknowledged write: after the kill it must be there; before
		// it, it may be lost if the replica had not received it.
		got, err := s.Get(ctx, o.id)
		switch {
		case o.start.After(killAt) && err != nil:
			t.Errorf("%s %s, acknowledged %v after the kill, is gone: %v", o.op, o.id, o.start.Sub(killAt), err)
		case o.start.After(killAt) && o.op == "approve" && got.Status != workflow.StatusApproved:
			t.Errorf("approval of %s, acknowledged %v after the kill, is gone: status %s", o.id, o.start.Sub(killAt), got.Status)
		case o.start.After(killAt):
			afterKill++
		case workflow.ErrorCode(err) == workflow.CodeNotFound,
			err == nil && o.op == "approve" && got.Status != workflow.StatusApproved:
			beforeKill++
			lost++
		case err != nil:
			t.Errorf("Get %s: %v", o.id, err)
		default:
			beforeKill++
		}
	}
	for _, want := range before {
		if got, err := s.Get(ctx, want.ID); err != nil || got.Status != want.Status {
			t.Errorf("request %s, replicated before the kill: %v (%v), want status %s", want.ID, got, err, want.Status)
		}
	}
	t.Logf("Sentinel promoted the replica %v after the SIGKILL; calls failed from %v to %v after it (%d CodeUnavailable, %d retried writes already applied); "+
		"of the acknowledged writes, %d after the kill were all kept, %d of the %d during the flow before it lost to asynchronous replication",
		promotedAt.Sub(killAt).Round(time.Millisecond), firstErr.Sub(killAt).Round(time.Millisecond), lastErr.Sub(killAt).Round(time.Millisecond),
		unavailable, retried, afterKill, lost, beforeKill)

	// After: the whole contract holds on the new primary, through the same client.
	t.Run("conformance after the failover", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) workflow.Store {
			s, _ := newStoreOn(t, c)
			return s
		})
	})
}

// waitReplicated waits until the replica has received everything the
// primary wrote so far.
func waitReplicated(t *testing.T, primaryPort, replicaPort string) {
	t.Helper()
	primary := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + primaryPort})
	defer primary.Close()
	replica := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + replicaPort})
	defer replica.Close()
	want := infoInt(t, primary, "master_repl_offset")
	for deadline := time.Now().Add(10 * time.Second); ; {
		got := infoInt(t, replica, "slave_repl_offset")
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica is at offset %d, the primary at %d after 10s", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoInt returns a number of INFO replication.
func infoInt(t *testing.T, c *redis.Client, field string) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s: %v", field, err)
			}
			return n
		}
	}
	t.Fatalf("INFO replication has no %s:\n%s", field, info)
	return 0
}

// killPrimary sends SIGKILL to the server of pidFile and returns when it
// is dead.
func killPrimary(t *testing.T, pidFile string) time.Time {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(data)))
	if err != nil {
		t.Fatalf("%s: %v", pidFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the primary (PID %d): %v", pid, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		// Dead: gone, or a zombie until PID 1 reaps it.
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if errors.Is(err, os.ErrNotExist) || err == nil && bytes.Contains(stat, []byte(") Z ")) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the primary (PID %d) still runs 5s after SIGKILL", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
