package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/accounts"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func valid() map[string]string {
	return map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-1-secret-bot",
		"SLACK_APP_TOKEN": "xapp-1-secret-app",
		"DIRECTORY_ID":    "d-1234567890",
		"AWS_REGION":      "eu-west-1",
		"APPROVERS":       "U01ABC, S02GROUP ,W03XYZ",
		// Without LDAP the email domains are required.
		"ALLOWED_EMAIL_DOMAINS": "corp.example.com",
	}
}

// withLDAP returns valid() with the directory over LDAP.
func withLDAP(t *testing.T) map[string]string {
	m := valid()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	m["LDAP_URL"] = "ldaps://dc1.corp.example.com:636"
	m["LDAP_BIND_DN"] = "CN=svc-resetbot,OU=Service,DC=corp,DC=example,DC=com"
	m["LDAP_BIND_PASSWORD"] = "ldap-secret-pw"
	m["LDAP_BASE_DN"] = "DC=corp,DC=example,DC=com"
	m["LDAP_CA_FILE"] = ca
	delete(m, "ALLOWED_EMAIL_DOMAINS")
	return m
}

func TestLDAPSettings(t *testing.T) {
	m := withLDAP(t)
	m["APPROVER_SOURCE"] = "manager"
	delete(m, "APPROVERS") // optional with the manager source
	m["PROTECTED_GROUPS"] = "Tier0 Ops, Helpdesk Admins"
	m["ALLOWED_OUS"] = "OU=Users,OU=CORP,DC=corp,DC=example,DC=com; OU=Contractors,DC=corp,DC=example,DC=com"
	m["FORCE_CHANGE_AT_LOGON"] = "true"
	m["LDAP_TIMEOUT"] = "2s"
	mapFile := filepath.Join(t.TempDir(), "map")
	if err := os.WriteFile(mapFile, []byte("# overrides\nU0123ABCD asmith\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m["ACCOUNT_MAP_FILE"] = mapFile
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if !c.ManagerApproval || !c.ForceChange || c.LDAPTimeout != 2*time.Second || len(c.AllowedOUs) != 2 ||
		c.AccountMap["U0123ABCD"] != "asmith" || c.LDAPBindPassword.Value() != "ldap-secret-pw" || c.LDAPInsecure {
		t.Fatalf("%+v", c)
	}
	if got := c.ProtectedGroups; len(got) != 9 || got[0] != "Domain Admins" || got[8] != "Helpdesk Admins" {
		t.Fatalf("protected groups %q", got)
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c)
	if strings.Contains(logs.String(), "ldap-secret-pw") || strings.Contains(fmt.Sprintf("%+v %#v", c, c), "ldap-secret-pw") {
		t.Fatalf("the LDAP password is shown: %s", logs.String())
	}

	m = withLDAP(t)
	m["LDAP_URL"] = "ldap://dc1:389"
	m["LDAP_INSECURE"] = "true"
	if c, err := Load(env(m)); err != nil || !c.LDAPInsecure {
		t.Fatalf("plain LDAP with LDAP_INSECURE: %v", err)
	}
}

func TestBadLDAPConfigs(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"no domains without LDAP", map[string]string{"LDAP_URL": "", "LDAP_BIND_DN": "", "LDAP_BASE_DN": "", "LDAP_BIND_PASSWORD": "", "LDAP_CA_FILE": ""},
			[]string{"ALLOWED_EMAIL_DOMAINS is required without LDAP_URL"}},
		{"features need LDAP", map[string]string{"LDAP_URL": "", "LDAP_BIND_PASSWORD": "", "LDAP_CA_FILE": "", "ALLOWED_EMAIL_DOMAINS": "corp.example.com",
			"APPROVER_SOURCE": "manager", "FORCE_CHANGE_AT_LOGON": "yes", "ALLOWED_OUS": "OU=X,DC=corp", "PROTECTED_GROUPS": "Tier0"},
			[]string{"APPROVER_SOURCE=manager needs LDAP_URL", "FORCE_CHANGE_AT_LOGON needs LDAP_URL", "ALLOWED_OUS needs LDAP_URL",
				"PROTECTED_GROUPS needs LDAP_URL", "LDAP_BIND_DN needs LDAP_URL", "LDAP_BASE_DN needs LDAP_URL"}},
		{"bad LDAP", map[string]string{"LDAP_URL": "https://dc1", "LDAP_BIND_DN": "", "LDAP_BIND_PASSWORD": "", "LDAP_BASE_DN": "not a dn",
			"LDAP_CA_FILE": "/nonexistent/ca.pem", "LDAP_TIMEOUT": "0s", "APPROVER_SOURCE": "boss", "FORCE_CHANGE_AT_LOGON": "maybe", "ALLOWED_OUS": "Users"},
			[]string{"LDAP_URL \"https://dc1\" must be", "LDAP_BIND_DN is required", "LDAP_BIND_PASSWORD (or LDAP_BIND_PASSWORD_FILE) is required",
				"LDAP_BASE_DN is required", "LDAP_CA_FILE: cannot read /nonexistent/ca.pem", "LDAP_TIMEOUT must be longer than zero",
				"APPROVER_SOURCE \"boss\"", "FORCE_CHANGE_AT_LOGON \"maybe\"", "ALLOWED_OUS entry \"Users\""}},
		{"insecure ldaps", map[string]string{"LDAP_INSECURE": "true"}, []string{"LDAP_INSECURE=true only applies to ldap://"}},
		{"bad map", map[string]string{"ACCOUNT_MAP_FILE": "/nonexistent/map"}, []string{"ACCOUNT_MAP_FILE: cannot read /nonexistent/map"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := withLDAP(t)
			for k, v := range tt.set {
				m[k] = v
			}
			_, err := Load(env(m))
			cerr, ok := err.(*Error)
			if !ok || len(cerr.Problems) != len(tt.want) {
				t.Fatalf("want %d problems, got: %v", len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "ldap-secret-pw") {
				t.Errorf("error shows the LDAP password: %v", err)
			}
		})
	}
	m := withLDAP(t)
	mapFile := filepath.Join(t.TempDir(), "map")
	if err := os.WriteFile(mapFile, []byte("U1 alice\nUBAD\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m["ACCOUNT_MAP_FILE"] = mapFile
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad map line: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackAPIURL != "https://slack.com/api/" || c.RequestTTL != 30*time.Minute || c.RevealTTL != 15*time.Minute ||
		c.HTTPAddr != "127.0.0.1:8080" || c.LogLevel != slog.LevelInfo || c.DataDir != "./data" || c.RequestLimit != 3 ||
		c.RequestWindow != 24*time.Hour || c.RedisURL != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if fmt.Sprint(c.Approvers) != "[U01ABC W03XYZ]" || fmt.Sprint(c.ApproverGroups) != "[S02GROUP]" {
		t.Fatalf("approvers %v groups %v", c.Approvers, c.ApproverGroups)
	}
	if len(c.ProtectedUsers) != len(accounts.DefaultProtectedUsers) || len(c.ProtectedGroups) != len(accounts.DefaultProtectedGroups) || c.ManagerApproval || c.ForceChange || c.LDAPURL != "" {
		t.Fatalf("protected %v", c.ProtectedUsers)
	}
}

func TestAllSettings(t *testing.T) {
	m := valid()
	m["SLACK_API_URL"] = "http://127.0.0.1:9/api/"
	m["ALLOW_INSECURE_ENDPOINTS"] = "true"
	m["REDIS_URL"] = "rediss://bot:hunter2@redis.internal:6380/1"
	m["ALLOWED_EMAIL_DOMAINS"] = "Corp.Example.com,@example.org"
	m["AUDIT_CHANNEL"] = "C0AUDIT"
	m["REQUEST_TTL"] = "10m"
	m["REVEAL_TTL"] = "5m"
	m["HTTP_ADDR"] = "127.0.0.1:0"
	m["LOG_LEVEL"] = "DEBUG"
	m["PROTECTED_USERS"] = "svc-backup, breakglass"
	m["AWS_ENDPOINT_URL"] = "http://127.0.0.1:4566"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.EmailDomains) != "[corp.example.com example.org]" || c.AuditChannel != "C0AUDIT" ||
		c.RequestTTL != 10*time.Minute || c.RevealTTL != 5*time.Minute || c.LogLevel != slog.LevelDebug ||
		c.AWSEndpoint != "http://127.0.0.1:4566" || c.RedisURL.Value() != m["REDIS_URL"] {
		t.Fatalf("%+v", c)
	}
	if got := c.ProtectedUsers[len(c.ProtectedUsers)-2:]; fmt.Sprint(got) != "[svc-backup breakglass]" {
		t.Fatalf("protected users %v", c.ProtectedUsers)
	}
	m["AWS_ENDPOINT_URL_DIRECTORY_SERVICE"] = "http://127.0.0.1:9999"
	if c, _ := Load(env(m)); c.AWSEndpoint != "http://127.0.0.1:9999" {
		t.Fatalf("service-specific endpoint not preferred: %s", c.AWSEndpoint)
	}
}

func TestBadConfigsReportEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"empty", map[string]string{"SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": "", "DIRECTORY_ID": "", "AWS_REGION": "", "APPROVERS": ""},
			[]string{"SLACK_BOT_TOKEN is required", "SLACK_APP_TOKEN is required", "DIRECTORY_ID is required", "AWS_REGION is required", "APPROVERS is required"}},
		{"swapped tokens", map[string]string{"SLACK_BOT_TOKEN": "xapp-1", "SLACK_APP_TOKEN": "xoxb-1"},
			[]string{"SLACK_BOT_TOKEN must be a bot token", "SLACK_APP_TOKEN must be an app-level token"}},
		{"bad ids", map[string]string{"DIRECTORY_ID": "d-12345", "APPROVERS": "alice,#helpdesk", "AUDIT_CHANNEL": "#audit"},
			[]string{`DIRECTORY_ID "d-12345"`, `APPROVERS entry "alice"`, `APPROVERS entry "#helpdesk"`, `AUDIT_CHANNEL "#audit"`}},
		{"bad urls", map[string]string{"SLACK_API_URL": "https://slack.com/api", "REDIS_URL": "http://redis:6379", "AWS_ENDPOINT_URL": "ftp://x"},
			[]string{"SLACK_API_URL must be", "REDIS_URL must be", "AWS_ENDPOINT_URL_DIRECTORY_SERVICE must be"}},
		{"bad durations", map[string]string{"REQUEST_TTL": "30", "REVEAL_TTL": "-5m", "SWEEP_INTERVAL": "0s", "REQUEST_LIMIT": "three"},
			[]string{`REQUEST_TTL "30" is not a duration`, "REVEAL_TTL must be longer than zero", "SWEEP_INTERVAL must be longer than zero", `REQUEST_LIMIT "three"`}},
		{"bad misc", map[string]string{"LOG_LEVEL": "loud", "HTTP_ADDR": "8080", "ALLOWED_EMAIL_DOMAINS": "corp", "AWS_ACCESS_KEY_ID": "AKIA", "PROTECTED_USERS": "a@b"},
			[]string{`LOG_LEVEL "loud"`, `HTTP_ADDR "8080"`, `ALLOWED_EMAIL_DOMAINS entry "corp"`, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", `PROTECTED_USERS entry "a@b"`}},
		{"plain text endpoints", map[string]string{"SLACK_API_URL": "http://slack.internal/api/", "AWS_ENDPOINT_URL": "http://ds.internal",
			"REDIS_URL": "redis://bot:hunter2@redis.internal:6379/0"},
			[]string{"SLACK_API_URL http://slack.internal/api/ is plain http", "AWS_ENDPOINT_URL_DIRECTORY_SERVICE http://ds.internal is plain http",
				"REDIS_URL reaches redis.internal without TLS"}},
		{"plain sentinel", map[string]string{"REDIS_URL": "redis+sentinel://10.0.0.5:26379,127.0.0.1:26379/mymaster"},
			[]string{"REDIS_URL reaches 10.0.0.5 without TLS"}},
		{"bad listeners", map[string]string{"METRICS_ADDR": ":8080", "SHUTDOWN_TIMEOUT": "0s", "AUDIT_RETENTION": "forever"},
			[]string{`METRICS_ADDR ":8080"`, "SHUTDOWN_TIMEOUT must be longer than zero", `AUDIT_RETENTION "forever"`}},
		{"secret twice", map[string]string{"SLACK_BOT_TOKEN_FILE": "/x"}, []string{"set SLACK_BOT_TOKEN or SLACK_BOT_TOKEN_FILE, not both"}},
		{"missing secret file", map[string]string{"SLACK_APP_TOKEN": "", "SLACK_APP_TOKEN_FILE": "/nonexistent/app-token"}, []string{"SLACK_APP_TOKEN_FILE: cannot read /nonexistent/app-token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			for k, v := range tt.set {
				m[k] = v
			}
			c, err := Load(env(m))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			cerr, ok := err.(*Error)
			if !ok || len(cerr.Problems) != len(tt.want) {
				t.Fatalf("want %d problems, got: %v", len(tt.want), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			for _, secret := range []string{"secret-bot", "secret-app", "hunter2"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	bot := filepath.Join(dir, "bot")
	os.WriteFile(bot, []byte("xoxb-from-file\n"), 0o600)
	m := valid()
	delete(m, "SLACK_BOT_TOKEN")
	m["SLACK_BOT_TOKEN_FILE"] = bot
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.SlackBotToken.Value() != "xoxb-from-file" {
		t.Fatalf("token %q", c.SlackBotToken.Value())
	}
}

// TestHideSecrets: no way of printing or logging the configuration shows a
// secret.
func TestHideSecrets(t *testing.T) {
	m := valid()
	m["REDIS_URL"] = "rediss://bot:hunter2@redis:6379/0"
	m["AWS_ACCESS_KEY_ID"] = "AKIAEXAMPLE"
	m["AWS_SECRET_ACCESS_KEY"] = "aws-secret-key"
	m["AWS_SESSION_TOKEN"] = "aws-session-token"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "config", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "config", c, "token", c.SlackBotToken)
	js, _ := json.Marshal(c)
	dumps := []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), string(js), logs.String()}
	for _, d := range dumps {
		for _, secret := range []string{"secret-bot", "secret-app", "hunter2", "aws-secret-key", "aws-session-token"} {
			if strings.Contains(d, secret) {
				t.Errorf("%q shown in %s", secret, d)
			}
		}
	}
	if !strings.Contains(logs.String(), "rediss://bot:xxxxx@redis:6379/0") {
		t.Errorf("redacted Redis URL missing from the log: %s", logs.String())
	}
}

// TestPlaceholdersRefused: the values .env.example shows in place of real
// ones are refused, each with words that name the setting.
func TestPlaceholdersRefused(t *testing.T) {
	m := valid()
	for k, v := range map[string]string{
		"SLACK_BOT_TOKEN": "xoxb-...", "SLACK_APP_TOKEN": "xapp-...", "DIRECTORY_ID": "d-0123456789",
		"APPROVERS": "U0123456789,S0123456789", "ALLOWED_EMAIL_DOMAINS": "example.com", "AUDIT_CHANNEL": "C0123456789",
		"REDIS_URL": "rediss://default:password@redis.internal:6379/0",
	} {
		m[k] = v
	}
	_, err := Load(env(m))
	if err == nil {
		t.Fatal("placeholders accepted")
	}
	want := []string{
		"SLACK_BOT_TOKEN is still the placeholder xoxb-...", "SLACK_APP_TOKEN is still the placeholder xapp-...",
		"DIRECTORY_ID is still the placeholder d-0123456789", "APPROVERS entry U0123456789 is still a placeholder",
		"APPROVERS entry S0123456789 is still a placeholder", "ALLOWED_EMAIL_DOMAINS entry example.com is still a placeholder",
		"AUDIT_CHANNEL is still the placeholder C0123456789", "REDIS_URL is still the example",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if n := len(err.(*Error).Problems); n != len(want) {
		t.Errorf("%d problems, want %d (one per placeholder):\n%v", n, len(want), err)
	}
	// Values that merely look alike are real.
	m = valid()
	m["DIRECTORY_ID"], m["APPROVERS"], m["ALLOWED_EMAIL_DOMAINS"], m["AUDIT_CHANNEL"] = "d-0123456788", "U0123456788", "corp.example.com", "C0123456788"
	if _, err := Load(env(m)); err != nil {
		t.Errorf("real values refused: %v", err)
	}
}
