package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
)

func TestDoctorAllGood(t *testing.T) {
	w := newWorld(t)
	w.vars["HELPDESK"] = approver2 + ",S0HELPDESK"
	var out syncBuffer
	if err := run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"ok    Slack bot token", "ok    Slack bot scopes", "ok    Slack app token", "ok    store: Redis at",
		"ok    directory " + testDirectory + ": corp.example.com (MicrosoftAD, NetBIOS CORP, Active)", "ok    approvers (APPROVERS): 3 approver(s)",
		"ok    helpdesk (HELPDESK): 3 member(s) may ask on an employee's behalf",
		"ok    audit channel (AUDIT_CHANNEL): #resetbot-audit (C0AUDIT, private): the bot is a member and may post there", "everything works, but read the warnings above",
		// The world runs without LDAP, by explicit choice: doctor says what that means.
		"WARN  no LDAP (ALLOW_UNCHECKED_ACCOUNTS=true): accounts are not checked against the directory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out.String())
		}
	}
	if len(w.ds.ResetCalls()) != 0 || len(w.slack.Calls("chat.postMessage")) != 0 {
		t.Fatal("doctor changed something")
	}
}

func TestDoctorSaysWhatToFix(t *testing.T) {
	w := newWorld(t)
	w.slack.SetScopes("commands", "chat:write", "im:write", "users:read")
	d := w.ds.Directory()
	d.Type, d.Stage = "ADConnector", "Active"
	w.ds.SetDirectory(d)
	w.vars["APPROVERS"] = "UNOBODY,S0EMPTY"
	w.vars["SLACK_APP_TOKEN"] = "xapp-wrong"
	var out syncBuffer
	err := run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "5 check(s) failed") {
		t.Fatalf("doctor: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"FAIL  Slack bot scopes: missing users:read.email, usergroups:read", "fix: create the app from manifest.yaml",
		"FAIL  Slack app token", "FAIL  directory " + testDirectory + ": type ADConnector is not supported",
		"FAIL  approvers (APPROVERS): user UNOBODY", "group S0EMPTY",
		"FAIL  audit channel (AUDIT_CHANNEL): missing_scope", "fix: create the app from manifest.yaml (channels:read and groups:read)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "xapp-wrong") || strings.Contains(out.String(), "test-secret") {
		t.Errorf("doctor printed a secret:\n%s", out.String())
	}

	w.vars["DIRECTORY_ID"] = "d-9999999999"
	out = syncBuffer{}
	if err := run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out); err == nil {
		t.Fatalf("doctor passed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "FAIL  directory d-9999999999") || !strings.Contains(out.String(), "EntityDoesNotExistException") {
		t.Errorf("unknown directory:\n%s", out.String())
	}
}

// TestDoctorAuditChannel: doctor says when the bot may not post in
// AUDIT_CHANNEL (then the audit trail would be silently missing), and how
// to fix it.
func TestDoctorAuditChannel(t *testing.T) {
	w := newWorld(t)
	w.slack.AddChannel(slacktest.Channel{ID: "C0PUBLIC", Name: "helpdesk", Member: true})
	w.slack.AddChannel(slacktest.Channel{ID: "C0OUTSIDE", Name: "general"})
	w.slack.AddChannel(slacktest.Channel{ID: "G0SECRET", Name: "secret", Private: true})
	w.slack.AddChannel(slacktest.Channel{ID: "C0OLD", Name: "old-audit", Member: true, Archived: true})
	w.slack.AddChannel(slacktest.Channel{ID: "C0SHARED", Name: "vendor", Member: true, ExtShared: true})
	w.slack.AddChannel(slacktest.Channel{ID: "C0ANNOUNCE", Name: "announce", Member: true, ReadOnly: true})
	for _, tc := range []struct{ channel, want, fix string }{
		{"C0PUBLIC", "ok    audit channel (AUDIT_CHANNEL): #helpdesk (C0PUBLIC, public): the bot is a member and may post there", ""},
		{"", "ok    audit channel (AUDIT_CHANNEL): not set", ""},
		{"C0OUTSIDE", "FAIL  audit channel (AUDIT_CHANNEL): the bot is not a member of #general (C0OUTSIDE)", "/invite @Password Reset"},
		{"G0SECRET", "FAIL  audit channel (AUDIT_CHANNEL): Slack shows the bot no channel G0SECRET", "/invite @Password Reset"},
		{"C0NOWHERE", "FAIL  audit channel (AUDIT_CHANNEL): Slack shows the bot no channel C0NOWHERE", "check the ID"},
		{"C0OLD", "FAIL  audit channel (AUDIT_CHANNEL): #old-audit (C0OLD) is archived", "unarchive"},
		{"C0SHARED", "FAIL  audit channel (AUDIT_CHANNEL): #vendor (C0SHARED) is shared with another organization", "your own organization"},
		{"C0ANNOUNCE", "FAIL  audit channel (AUDIT_CHANNEL): #announce (C0ANNOUNCE) is read-only", "allow members to post"},
	} {
		w.vars["AUDIT_CHANNEL"] = tc.channel
		var out syncBuffer
		err := run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out)
		if (err == nil) != (tc.fix == "") {
			t.Errorf("AUDIT_CHANNEL=%s: doctor returned %v\n%s", tc.channel, err, out.String())
		}
		if !strings.Contains(out.String(), tc.want) || !strings.Contains(out.String(), tc.fix) {
			t.Errorf("AUDIT_CHANNEL=%s: doctor output lacks %q or %q:\n%s", tc.channel, tc.want, tc.fix, out.String())
		}
	}
	if n := len(w.slack.Calls("chat.postMessage")); n != 0 {
		t.Errorf("doctor posted %d messages", n)
	}
}

// TestManifestAsksForExactlyTheScopesUsed keeps manifest.yaml honest.
func TestManifestAsksForExactlyTheScopesUsed(t *testing.T) {
	b, err := os.ReadFile("../../manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bot := regexp.MustCompile(`(?s)bot:\n(.*?)\n\S`).FindSubmatch(append(b, "\nx"...))
	if bot == nil {
		t.Fatal("no bot scopes in manifest.yaml")
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^\s+- ([a-z:.]+)`).FindAllSubmatch(bot[1], -1) {
		got = append(got, string(m[1]))
	}
	want := slices.Clone(slackapp.RequiredScopes)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("manifest scopes %v, the bot uses %v", got, want)
	}
	// should_escape: a mention reaches the bot as the user ID, which
	// requests on an employee's behalf need.
	for _, must := range []string{"socket_mode_enabled: true", "command: /reset-password", "interactivity:\n    is_enabled: true", "should_escape: true",
		"home_tab_enabled: true", "bot_events:\n      - app_home_opened"} {
		if !strings.Contains(string(b), must) {
			t.Errorf("manifest lacks %q", must)
		}
	}
}

// TestDockerfile checks what the image promises, since no Docker engine
// builds it here: multi-stage, static binary, non-root.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Count(s, "\nFROM ") < 2 && !strings.HasPrefix(s, "FROM") {
		t.Error("not a multi-stage build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build", "./cmd/bot", "USER 65532", "nonroot", "ENTRYPOINT [\"/bot\"]"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// TestDoctorPointsAtTheRealCause: with Slack unreachable, doctor says it
// cannot reach Slack (not that a token is wrong) and skips the checks that
// need the bot token instead of failing them too.
func TestDoctorPointsAtTheRealCause(t *testing.T) {
	w := newWorld(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + lis.Addr().String() + "/api/"
	lis.Close() // nothing listens there
	w.vars["SLACK_API_URL"] = dead
	w.vars["AWS_ACCESS_KEY_ID"], w.vars["AWS_SECRET_ACCESS_KEY"] = "", ""
	w.vars["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
	var out syncBuffer
	err = run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out)
	if err == nil {
		t.Fatalf("doctor passed:\n%s", out.String())
	}
	for _, want := range []string{
		"FAIL  Slack bot token (SLACK_BOT_TOKEN): cannot reach Slack at " + dead,
		"skip  Slack bot scopes: needs Slack bot token (SLACK_BOT_TOKEN), which failed",
		"skip  approvers (APPROVERS): needs Slack bot token",
		"FAIL  Slack app token (SLACK_APP_TOKEN): cannot reach Slack at " + dead,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "missing commands") {
		t.Errorf("doctor blamed the scopes for a network failure:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "fix: no AWS credentials found") {
		t.Errorf("doctor does not say that no AWS credentials were found:\n%s", out.String())
	}

	// Credentials that work, and IAM that says no.
	w.vars["AWS_ACCESS_KEY_ID"], w.vars["AWS_SECRET_ACCESS_KEY"] = "AKIDTEST", "test-secret"
	w.ds.FailNextOp("DescribeDirectories", "AccessDeniedException", 5)
	out = syncBuffer{}
	if err := run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out); err == nil {
		t.Fatalf("doctor passed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "fix: the credentials work but IAM denies the call") {
		t.Errorf("doctor does not say that IAM denies the call:\n%s", out.String())
	}
}

// TestDoctorPrintsNoSDKLines: the AWS SDK's own warnings (here: the
// instance metadata service refusing a token, on a machine without AWS
// credentials) go to the bot's log, never as raw lines among doctor's.
func TestDoctorPrintsNoSDKLines(t *testing.T) {
	w := newWorld(t)
	imds := httptest.NewServer(http.NotFoundHandler()) // no instance role here
	t.Cleanup(imds.Close)
	delete(w.vars, "AWS_ACCESS_KEY_ID")
	delete(w.vars, "AWS_SECRET_ACCESS_KEY")
	cmd := exec.Command(binary(t), "doctor")
	home := t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")}
	for k, v := range w.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("doctor passed without AWS credentials:\n%s", out)
	}
	if !strings.Contains(string(out), "fix: no AWS credentials found") {
		t.Errorf("doctor does not say that no AWS credentials were found:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !doctorLine.MatchString(line) {
			t.Errorf("a line that is not doctor's: %q", line)
		}
	}
}

// doctorLine is every line doctor prints: its title, a check's outcome or
// fix, the configuration's problems, and the last line (main's error).
var doctorLine = regexp.MustCompile(`^(resetbot doctor|  (ok|FAIL|skip|WARN)  .+|        fix: .+|everything looks right|everything works, but read the warnings above|bot doctor: .+)$`)
