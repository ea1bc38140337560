package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/internal/turns"
	"github.com/redis/go-redis/v9"
)

// procStats is what /proc tells about a process.
type procStats struct {
	CPU      time.Duration // user + system time so far
	RSS, HWM int64         // resident set now and at its peak, bytes
}

var clockTicks = sync.OnceValue(func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if n, perr := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && perr == nil && n > 0 {
		return n
	}
	return 100 // USER_HZ on every Linux we run on
})

// readProc reads the CPU time (utime+stime of /proc/PID/stat) and the
// memory (VmRSS, VmHWM of /proc/PID/status) of process pid.
func readProc(pid int) (procStats, error) {
	var st procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after it. utime and stime are fields 14 and 15 of the line.
	end := strings.LastIndexByte(string(stat), ')')
	fields := strings.Fields(string(stat[end+1:]))
	if len(fields) < 13 {
		return st, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return st, fmt.Errorf("/proc/%d/stat: %v %v", pid, err1, err2)
	}
	st.CPU = time.Duration(utime+stime) * time.Second / time.Duration(clockTicks())
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch {
		case err != nil:
		case name == "VmRSS":
			st.RSS = kb * 1024
		case name == "VmHWM":
			st.HWM = kb * 1024
		}
	}
	return st, nil
}

// useManagers makes the world's directory the Samba AD of SAMBA_ENV_FILE
// (skipped without one, except in CI) with m managers and n employees,
// each employee's manager one of them in turn, all also Slack members;
// the bot asks each employee's manager (APPROVER_SOURCE=manager). Resets
// go to the Directory Service test server, which keeps them: the directory
// is measured for the bot's lookups and guards, not for Samba's writes.
func useManagers(tb testing.TB, w *world, m, n int) (managers, employees []string) {
	tb.Helper()
	env := sambatest.Require(tb)
	admin := env.Admin(tb)
	for k, v := range map[string]string{"LDAP_URL": env.LDAPSURL, "LDAP_CA_FILE": env.CAFile, "LDAP_BIND_DN": env.BindDN,
		"LDAP_BIND_PASSWORD": env.BindPassword, "LDAP_BASE_DN": env.BaseDN, "APPROVER_SOURCE": "manager"} {
		w.vars[k] = v
	}
	delete(w.vars, "ALLOW_UNCHECKED_ACCOUNTS")
	member := func(prefix, manager string) (id, name string) {
		u := sambatest.User{Name: sambatest.Unique(prefix), GivenName: "Load", Surname: "Test", Manager: manager}
		u.Mail, u.DisplayName = sambatest.Mail(u.Name), "Load "+u.Name
		admin.CreateUser(u)
		id = "U" + strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(u.Name))
		w.slack.AddUser(slacktest.User{ID: id, Name: u.Name, RealName: u.DisplayName, Email: u.Mail})
		return id, u.Name
	}
	var names []string
	for range m {
		id, name := member("lmgr", "")
		managers, names = append(managers, id), append(names, name)
	}
	for i := range n {
		id, name := member("lemp", names[i%m])
		w.ds.AddUser(name)
		employees = append(employees, id)
	}
	return managers, employees
}

// countTurns puts a counting proxy between the world's bot and its Redis
// and returns it: the bot's round trips are the proxy's turns (a pipeline
// is one).
func countTurns(tb testing.TB, w *world) *turns.Proxy {
	tb.Helper()
	u, err := url.Parse(w.vars["REDIS_URL"])
	if err != nil {
		tb.Fatal(err)
	}
	proxy, err := turns.Start(u.Host)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { proxy.Close() })
	u.Host = proxy.Addr()
	w.vars["REDIS_URL"] = u.String()
	return proxy
}

// redisMonitor counts the commands Redis runs on keys under a prefix,
// through MONITOR on a raw connection (go-redis cannot stream its output).
// Commands run by Lua scripts ("[0 lua]") are counted apart: they are not
// round trips.
type redisMonitor struct {
	conn   net.Conn
	prefix string
	done   chan struct{}

	mu     sync.Mutex
	counts map[string]int // command (upper case) -> round trips
	lua    int
	err    error
}

// startRedisMonitor connects to the Redis at url and starts counting.
func startRedisMonitor(tb testing.TB, url, prefix string) *redisMonitor {
	tb.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", opts.Addr, 5*time.Second)
	if err != nil {
		tb.Fatalf("MONITOR connection: %v", err)
	}
	rd := bufio.NewReaderSize(conn, 1<<20)
	send := func(args ...string) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, b.String()); err != nil {
			tb.Fatalf("MONITOR connection: %v", err)
		}
		line, err := rd.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+") {
			tb.Fatalf("Redis answered %q to %s: %v", line, args[0], err)
		}
	}
	if opts.Password != "" {
		if opts.Username != "" {
			send("AUTH", opts.Username, opts.Password)
		} else {
			send("AUTH", opts.Password)
		}
	}
	send("MONITOR")
	_ = conn.SetDeadline(time.Time{})
	m := &redisMonitor{conn: conn, prefix: prefix, done: make(chan struct{}), counts: map[string]int{}}
	go m.read(rd)
	tb.Cleanup(func() { m.stop() })
	return m
}

func (m *redisMonitor) read(rd *bufio.Reader) {
	defer close(m.done)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			m.mu.Lock()
			m.err = err
			m.mu.Unlock()
			return
		}
		// +1700000000.123456 [0 127.0.0.1:50000] "EVALSHA" "..." ...
		if !strings.Contains(line, m.prefix) {
			continue
		}
		_, rest, ok := strings.Cut(line, "] ")
		if !ok {
			continue
		}
		m.mu.Lock()
		if strings.Contains(line[:len(line)-len(rest)], " lua]") {
			m.lua++
		} else {
			name, _, _ := strings.Cut(strings.TrimPrefix(rest, `"`), `"`)
			m.counts[strings.ToUpper(name)]++
		}
		m.mu.Unlock()
	}
}

// stop ends the connection and returns the counts: round trips by command
// and commands run inside scripts.
func (m *redisMonitor) stop() (map[string]int, int) {
	m.conn.Close()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.counts), m.lua
}

// percentile returns the p-th percentile (nearest rank) of ds, or -1 if
// ds is empty.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// fmtDur prints a duration for the tables: ms below 10 s, else seconds.
func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

// sortedByCount returns the keys of m, largest count first.
func sortedByCount(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	return keys
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }
