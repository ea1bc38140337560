package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSubcommandsHelp: every subcommand answers -h and --help with its own
// usage and no error, and does nothing else (`bot run --help` does not
// start the bot: with no configuration at all it would fail).
func TestSubcommandsHelp(t *testing.T) {
	for _, c := range subcommands(nil) {
		for _, flag := range []string{"-h", "--help", "-help"} {
			var out bytes.Buffer
			err := run(context.Background(), []string{"bot", c.name, flag}, func(string) string { return "" }, &out)
			if err != nil {
				t.Errorf("bot %s %s: %v\n%s", c.name, flag, err, out.String())
			}
			if !strings.HasPrefix(out.String(), "usage: bot "+c.name) && !(c.name == "run" && strings.HasPrefix(out.String(), "usage: bot [run]")) {
				t.Errorf("bot %s %s printed no usage of its own:\n%s", c.name, flag, out.String())
			}
			if strings.Contains(out.String(), `"msg":"starting"`) {
				t.Errorf("bot %s %s started the bot", c.name, flag)
			}
		}
	}
	for _, args := range [][]string{{"bot", "help"}, {"bot", "-h"}, {"bot", "--help"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, func(string) string { return "" }, &out); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		for _, c := range subcommands(nil) {
			if !strings.Contains(out.String(), "  "+c.name+" ") {
				t.Errorf("%v does not list %s:\n%s", args, c.name, out.String())
			}
		}
	}
}

// TestOneErrorPrefix: the binary's errors say once what ran, and exit 1;
// help exits 0.
func TestOneErrorPrefix(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the start of the last line on stderr; "" for success
	}{
		{[]string{"audit", "--since", "yesterday"}, `bot audit: --since "yesterday"`},
		{[]string{"audit", "extra"}, `bot audit: unexpected argument "extra"`},
		{[]string{"doctor", "--nope"}, "bot doctor: flag provided but not defined: -nope"},
		{[]string{"healthcheck", "--url", "ftp://x"}, `bot healthcheck: --url "ftp://x" is not an http:// or https:// URL`},
		{[]string{"frobnicate"}, `bot: unknown subcommand "frobnicate"`},
		{[]string{"run"}, "bot: configuration has"},
		{nil, "bot: configuration has"},
		{[]string{"doctor", "--help"}, ""},
		{[]string{"run", "-h"}, ""},
		{[]string{"help"}, ""},
	} {
		cmd := exec.Command(binary(t), tc.args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("bot %v: %v\n%s", tc.args, err, stderr.String())
		case tc.want != "" && (!errors.As(err, &exit) || exit.ExitCode() != 1):
			t.Errorf("bot %v: %v, want exit status 1", tc.args, err)
		}
		if tc.want == "" {
			continue
		}
		if !strings.HasPrefix(stderr.String(), tc.want) {
			t.Errorf("bot %v: stderr %q, want it to start with %q", tc.args, stderr.String(), tc.want)
		}
		if strings.Contains(stderr.String(), "bot: bot") {
			t.Errorf("bot %v: the prefix twice: %q", tc.args, stderr.String())
		}
	}
}
