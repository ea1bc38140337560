package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestNoTestHooksInProductionBuild: the binary built as the Dockerfile
// builds it (no tags) holds no test hook: nothing in it reads
// RESETBOT_TEST_PANIC_TEXT or can make a handler panic on purpose. The
// binary the process tests run (-tags resetbot_testhooks) has them, which
// shows that this check would see them.
func TestNoTestHooksInProductionBuild(t *testing.T) {
	hooks := [][]byte{[]byte("RESETBOT_TEST_PANIC_TEXT"), []byte("this command was told to panic")}
	prod := filepath.Join(t.TempDir(), "bot")
	if out, err := exec.Command("go", "build", "-o", prod, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name, path string
		hooked     bool
	}{{"production build", prod, false}, {"test build", binary(t), true}} {
		b, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hooks {
			if bytes.Contains(b, h) != c.hooked {
				t.Errorf("%s: contains %q = %v, want %v", c.name, h, !c.hooked, c.hooked)
			}
		}
	}
}
