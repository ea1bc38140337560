package config

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/dotenv"
)

func noEnv(string) (string, bool) { return "", false }

// TestEnvExample parses .env.example with every commented setting turned
// on: the values mean what the comments say (a DN with spaces and commas
// is one value), and the placeholders are refused by name.
func TestEnvExample(t *testing.T) {
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	on := regexp.MustCompile(`(?m)^# ([A-Z][A-Z0-9_]*=)`).ReplaceAll(b, []byte("$1"))
	vars, err := dotenv.Parse(on, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"LDAP_BIND_DN": "CN=svc-resetbot,OU=Service Accounts,DC=corp,DC=example,DC=com",
		"APPROVERS":    "U0123456789,S0123456789",
		"LDAP_URL":     "ldaps://dc1.corp.example.com:636",
		"DIRECTORY_ID": "d-0123456789",
		"ALLOWED_OUS":  "OU=Staff,OU=CORP,DC=corp,DC=example,DC=com;OU=Contractors,OU=CORP,DC=corp,DC=example,DC=com",
	} {
		if vars[k] != v {
			t.Errorf("%s = %q, want %q", k, vars[k], v)
		}
	}
	// As the bot would read the file as it is (commented lines off).
	plain, err := dotenv.Parse(b, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Load(func(k string) string { return plain[k] })
	if err == nil {
		t.Fatal(".env.example as it is passes validation")
	}
	for _, name := range []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "DIRECTORY_ID", "APPROVERS entry U0123456789", "APPROVERS entry S0123456789", "ALLOWED_EMAIL_DOMAINS entry example.com", "AUDIT_CHANNEL"} {
		if !regexp.MustCompile(regexp.QuoteMeta(name) + ` is still (the|a) placeholder`).MatchString(err.Error()) {
			t.Errorf("the placeholder of %s is not named:\n%v", name, err)
		}
	}
}

// TestEnvFileUnderTheEnvironment: the real environment wins over the file,
// and what the file sets fills the rest; the report names the overridden
// settings, never a value.
func TestEnvFileUnderTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("LOG_LEVEL=debug\nSLACK_BOT_TOKEN=xoxb-from-file-secret\nDATA_DIR=/file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	real := map[string]string{"LOG_LEVEL": "warn", "BOT_ENV_FILE": path}
	getenv, f, err := WithEnvFile(func(k string) string { return real[k] }, "")
	if err != nil {
		t.Fatal(err)
	}
	if getenv("LOG_LEVEL") != "warn" || getenv("DATA_DIR") != "/file" || getenv("SLACK_BOT_TOKEN") != "xoxb-from-file-secret" || getenv("NOPE") != "" {
		t.Fatalf("layering: %q %q", getenv("LOG_LEVEL"), getenv("DATA_DIR"))
	}
	if f.String() != path+" (3 settings; the environment wins for LOG_LEVEL)" {
		t.Errorf("report %q", f.String())
	}
	// A flag's path wins over BOT_ENV_FILE; no file at all changes nothing.
	if _, _, err := WithEnvFile(func(k string) string { return real[k] }, "/nonexistent/.env"); err == nil || !strings.Contains(err.Error(), "cannot read /nonexistent/.env") {
		t.Errorf("missing file: %v", err)
	}
	if g, f, err := WithEnvFile(func(string) string { return "" }, ""); err != nil || f != nil || g("X") != "" {
		t.Errorf("no file: %v %v", f, err)
	}
}

// TestREADMEEnvExample parses the README's .env example: each value is the
// one the README's rules promise.
func TestREADMEEnvExample(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### The `.env` file\n.*?```sh\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no .env example under \"### The `.env` file\"")
	}
	got, err := dotenv.Parse(m[1], func(k string) (string, bool) {
		if k == "REDIS_PASSWORD" {
			return "p4ss", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"LDAP_BIND_DN":       "CN=svc-resetbot,OU=Service Accounts,DC=corp,DC=example,DC=com",
		"ALLOWED_OUS":        "OU=Staff,OU=CORP,DC=corp,DC=example,DC=com;OU=Contractors,OU=CORP,DC=corp,DC=example,DC=com",
		"APPROVERS":          "U0123ABCD, S0456EFGH",
		"LDAP_BIND_PASSWORD": `s3cret;$HOME#"x`,
		"SMTP_FROM":          "Password Reset <resetbot@corp.example.com>",
		"AWS_REGION":         "eu-west-1",
		"REDIS_URL":          "rediss://bot:p4ss@redis.internal:6379/0",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
