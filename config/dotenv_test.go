package config

import (
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

// TestParseEnvComposeRules: the rules of Docker Compose's .env files (its
// documentation's "env file syntax" examples), one line each.
func TestParseEnvComposeRules(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`VAR=VAL`, "VAL"},
		{`VAR="VAL"`, "VAL"},
		{`VAR='VAL'`, "VAL"},
		{`VAR=VAL # comment`, "VAL"},
		{`VAR=VAL# not a comment`, "VAL# not a comment"},
		{`VAR="VAL # not a comment"`, "VAL # not a comment"},
		{`VAR="VAL" # comment`, "VAL"},
		{`VAR='$OTHER'`, "$OTHER"},
		{`VAR='${OTHER}'`, "${OTHER}"},
		{`VAR='Let\'s go!'`, "Let's go!"},
		{`VAR="{\"hello\": \"json\"}"`, `{"hello": "json"}`},
		{`VAR="some\tvalue"`, "some\tvalue"},
		{`VAR='some\tvalue'`, `some\tvalue`},
		{`VAR=some\tvalue`, `some\tvalue`},
		{`VAR="a\\b\nc"`, "a\\b\nc"},
		{"VAR='SOME\nVALUE'", "SOME\nVALUE"},
		{"VAR=\"SOME\nVALUE\"", "SOME\nVALUE"},
		{`export VAR=VAL`, "VAL"},
		{`VAR: VAL`, "VAL"},
		{`  VAR  =  VAL  `, "VAL"},
		{`VAR=`, ""},
		{`VAR=""`, ""},
		{`VAR=a=b=c`, "a=b=c"},
		{`VAR=one two;three,four`, "one two;three,four"},
		{`VAR=pa$$word`, "pa$word"},
		{`VAR="pa$$word"`, "pa$word"},
		{`VAR='pa$$word'`, "pa$$word"},
		{`VAR=${UNSET:-fallback}`, "fallback"},
		{`VAR=${SET:-fallback}`, "from-env"},
		{`VAR=${SET:+alt}`, "alt"},
		{`VAR=${UNSET:+alt}`, ""},
		{`VAR=$SET/x`, "from-env/x"},
		{`VAR="${SET}-${UNSET}"`, "from-env-"},
		{"VAR=a\r\n", "a"},
	} {
		got, err := ParseEnv([]byte(tc.line), func(k string) (string, bool) {
			if k == "SET" {
				return "from-env", true
			}
			return "", false
		})
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if got["VAR"] != tc.want || len(got) != 1 {
			t.Errorf("%q: got %q (%v), want %q", tc.line, got["VAR"], got, tc.want)
		}
	}
}

// TestParseEnvFile: a whole file: comments, blank lines, a key alone,
// references to the lines above, and the environment first.
func TestParseEnvFile(t *testing.T) {
	src := "\xef\xbb\xbf# settings\n\nA=1\n  # indented comment\nB=${A}2\nINHERITED\nC='multi\nline' # comment\nD=\"x\" \nHOME_DIR=$HOME/data\n"
	got, err := ParseEnv([]byte(src), func(k string) (string, bool) {
		if k == "HOME" {
			return "/home/u", true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "12", "C": "multi\nline", "D": "x", "HOME_DIR": "/home/u/data"}
	if !maps.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestParseEnvErrors: what Compose refuses is refused, with the line.
func TestParseEnvErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"A=1\nB='open\nC=3\n", "line 2: B: the quoted value 'open is never closed"},
		{"A=1\n\nB=\"x\" y\n", `line 3: B: unexpected "y" after the closing quote`},
		{"A B=1\n", `line 1: unexpected character ' ' in variable name "A B"`},
		{"=1\n", "line 1: no variable name"},
		{"A=1\nB=${NEEDED:?set NEEDED first}\n", "line 2: B: NEEDED: set NEEDED first"},
		{"A=cost $ 5\n", `line 1: A: "$ " is not a variable reference`},
		{"A='x'\nB=\"multi\nline\"\nC=\"${D:?missing}\"\n", "line 4: C: D: missing"},
	} {
		_, err := ParseEnv([]byte(tc.src), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, err, tc.want)
		}
	}
}

// TestEnvExample parses .env.example with every commented setting turned
// on: the values mean what the comments say (a DN with spaces and commas
// is one value), and the placeholders are refused by name.
func TestEnvExample(t *testing.T) {
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	on := regexp.MustCompile(`(?m)^# ([A-Z][A-Z0-9_]*=)`).ReplaceAll(b, []byte("$1"))
	vars, err := ParseEnv(on, noEnv)
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
	plain, err := ParseEnv(b, noEnv)
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
	got, err := ParseEnv(m[1], func(k string) (string, bool) {
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
