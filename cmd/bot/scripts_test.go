package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTestScriptStopsWhatItStarted runs scripts/test.sh --check-services
// with no Redis on its port and no Redis Sentinel or Cluster: it starts
// them (its output shows them answering), and once it has exited nothing
// answers on any of their ports. (Samba is the shared one: two domain
// controllers cannot share ports 389 and 636.)
func TestTestScriptStopsWhatItStarted(t *testing.T) {
	samba := os.Getenv("SAMBA_ENV_FILE")
	if samba == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("SAMBA_ENV_FILE is required in CI")
		}
		t.Skip("SAMBA_ENV_FILE is not set (run ./scripts/test.sh)")
	}
	port := freePort(t)
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join("..", "..", "scripts", "test.sh"), "--check-services")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + tmp,
		"TEST_REDIS_PORT=" + port, "SAMBA_ENV_FILE=" + samba, "GOFLAGS=" + os.Getenv("GOFLAGS")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test.sh --check-services: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "starting redis-server on 127.0.0.1:"+port) ||
		!strings.Contains(string(out), "REDIS_URL=redis://127.0.0.1:"+port+"/0 answers PONG") {
		t.Fatalf("test.sh did not start a Redis on %s:\n%s", port, out)
	}
	ports := []string{port}
	for _, m := range regexp.MustCompile(`(?m)^REDIS_HA_(?:PRIMARY_PORT|REPLICA_PORT|SENTINEL_PORTS|CLUSTER_PORTS)=([0-9,]+)$`).FindAllStringSubmatch(string(out), -1) {
		ports = append(ports, strings.Split(m[1], ",")...)
	}
	if len(ports) != 1+1+1+3+3 {
		t.Fatalf("ports %v: test.sh did not show the Redis Sentinel and Cluster it started:\n%s", ports, out)
	}
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second); err == nil {
			c.Close()
			t.Errorf("port %s still answers after test.sh ended:\n%s", p, out)
		}
	}
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
