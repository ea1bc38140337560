package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// envFileFor writes the world's settings as a .env file in the dialect's
// less shell-like forms (a list with spaces, a quoted value with a comment,
// export), leaving out the names in skip.
func (w *world) envFileFor(t *testing.T, skip ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# written by the test\n\n")
	names := make([]string, 0, len(w.vars))
	for k := range w.vars {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := w.vars[k]
		switch {
		case slices.Contains(skip, k):
		case k == "APPROVERS":
			fmt.Fprintf(&b, "%s=%s\n", k, strings.ReplaceAll(v, ",", ", ")) // the shell would run the second entry as a command
		case k == "AUDIT_CHANNEL":
			fmt.Fprintf(&b, "export %s=\"%s\" # the audit channel\n", k, v)
		default:
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEnvFile: `bot --env-file PATH` and BOT_ENV_FILE read the settings
// from a .env file; a variable in the environment wins, and doctor says
// which ones did.
func TestEnvFile(t *testing.T) {
	w := newWorld(t)
	path := w.envFileFor(t)
	real := map[string]string{"LOG_LEVEL": "warn"}
	for _, args := range [][]string{{"bot", "--env-file", path, "doctor"}, {"bot", "--env-file=" + path, "doctor"}, {"bot", "doctor"}} {
		env := real
		if len(args) == 2 {
			env = map[string]string{"LOG_LEVEL": "warn", "BOT_ENV_FILE": path}
		}
		var out syncBuffer
		if err := run(context.Background(), args, func(k string) string { return env[k] }, &out); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		if want := "ok    settings file " + path + " ("; !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "the environment wins for LOG_LEVEL)") {
			t.Errorf("%v: doctor does not say what it read:\n%s", args, out.String())
		}
		if !strings.Contains(out.String(), "ok    audit channel (AUDIT_CHANNEL): #resetbot-audit") || !strings.Contains(out.String(), "3 approver(s) found") {
			t.Errorf("%v: the file's values were not read as meant:\n%s", args, out.String())
		}
	}
	var out syncBuffer
	err := run(context.Background(), []string{"bot", "--env-file", filepath.Join(t.TempDir(), "missing.env"), "doctor"}, func(string) string { return "" }, &out)
	if err == nil || !strings.Contains(err.Error(), "bot: env file: cannot read") {
		t.Errorf("a missing env file: %v", err)
	}
}

// TestRunShReadsEnvWithoutShell: scripts/run.sh leaves the .env file to
// the bot, so a line the shell would run as a command is a value.
func TestRunShReadsEnvWithoutShell(t *testing.T) {
	w := newWorld(t)
	path := w.envFileFor(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join("..", "..", "scripts", "run.sh"), "doctor")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "BOT_ENV_FILE=" + path,
		"GOFLAGS=" + os.Getenv("GOFLAGS"), "GOCACHE=" + goEnv(t, "GOCACHE"), "GOMODCACHE=" + goEnv(t, "GOMODCACHE"), "GOPROXY=" + goEnv(t, "GOPROXY")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh doctor: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "command not found") || !strings.Contains(string(out), "everything works, but read the warnings above") {
		t.Errorf("run.sh doctor:\n%s", out)
	}
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
