package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/workflow"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func valid() map[string]string {
	return map[string]string{
		"SLACK_BOT_TOKEN":       "xoxb-1-secret-bot",
		"SLACK_APP_TOKEN":       "xapp-1-secret-app",
		"DIRECTORY_ID":          "d-1234567890",
		"AWS_REGION":            "eu-west-1",
		"APPROVERS":             "U01ABC, S02GROUP ,W03XYZ",
		"ALLOWED_EMAIL_DOMAINS": "corp.example.com",
		// Without LDAP, only by explicit choice.
		"ALLOW_UNCHECKED_ACCOUNTS": "true",
	}
}

// selfSignedPEM returns a CA certificate in PEM, as LDAP_CA_FILE holds.
func selfSignedPEM(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// withLDAP returns valid() with the directory over LDAP.
func withLDAP(t *testing.T) map[string]string {
	m := valid()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	m["LDAP_URL"] = "ldaps://dc1.corp.example.com:636"
	m["LDAP_BIND_DN"] = "CN=svc-resetbot,OU=Service,DC=corp,DC=example,DC=com"
	m["LDAP_BIND_PASSWORD"] = "ldap-secret-pw"
	m["LDAP_BASE_DN"] = "DC=corp,DC=example,DC=com"
	m["LDAP_CA_FILE"] = ca
	delete(m, "ALLOW_UNCHECKED_ACCOUNTS")
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
	if got := c.ProtectedGroups; len(got) != 2 || got[0] != "Tier0 Ops" || got[1] != "Helpdesk Admins" {
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

// TestProtectedGroupsAndAdminCount: PROTECTED_GROUPS takes names, DNs
// and SIDs (";" separates entries when one is a DN); REFUSE_ADMIN_COUNT
// is on unless turned off.
func TestProtectedGroupsAndAdminCount(t *testing.T) {
	for _, tc := range []struct {
		groups string
		want   []string
	}{
		{"Tier0 Ops, Helpdesk Admins", []string{"Tier0 Ops", "Helpdesk Admins"}},
		{"CN=Tier0 Ops,OU=Groups,DC=corp,DC=example,DC=com", []string{"CN=Tier0 Ops,OU=Groups,DC=corp,DC=example,DC=com"}},
		{"CN=A,DC=corp; Helpdesk Admins ;S-1-5-21-1-2-3-1105;", []string{"CN=A,DC=corp", "Helpdesk Admins", "S-1-5-21-1-2-3-1105"}},
		{"s-1-5-32-544,Tier0", []string{"s-1-5-32-544", "Tier0"}},
	} {
		m := withLDAP(t)
		m["PROTECTED_GROUPS"] = tc.groups
		c, err := Load(env(m))
		if err != nil {
			t.Fatalf("%q: %v", tc.groups, err)
		}
		if fmt.Sprintf("%q", c.ProtectedGroups) != fmt.Sprintf("%q", tc.want) {
			t.Errorf("PROTECTED_GROUPS=%q: %q, want %q", tc.groups, c.ProtectedGroups, tc.want)
		}
	}
	for groups, want := range map[string]string{
		"S-1-5-21-x":         `PROTECTED_GROUPS entry "S-1-5-21-x" is not a SID`,
		"CN=A,DC=corp,Tier0": `separate the entries with ; when one of them is a DN`,
		"Tier0; CN=A,,DC=x":  `PROTECTED_GROUPS entry "CN=A,,DC=x" is not a DN`,
	} {
		m := withLDAP(t)
		m["PROTECTED_GROUPS"] = groups
		if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PROTECTED_GROUPS=%q: %v, want %q", groups, err, want)
		}
	}
	for v, want := range map[string]bool{"": true, "true": true, "false": false, "0": false, "yes": true} {
		m := withLDAP(t)
		m["REFUSE_ADMIN_COUNT"] = v
		if c, err := Load(env(m)); err != nil || c.RefuseAdminCount != want {
			t.Errorf("REFUSE_ADMIN_COUNT=%q: %v, %v", v, c.RefuseAdminCount, err)
		}
	}
	m := withLDAP(t)
	m["REFUSE_ADMIN_COUNT"] = "sometimes"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), `REFUSE_ADMIN_COUNT "sometimes" must be true or false`) {
		t.Errorf("bad REFUSE_ADMIN_COUNT: %v", err)
	}
}

func TestBadLDAPConfigs(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  map[string]string
		want []string
	}{
		{"no LDAP and no explicit choice", map[string]string{"LDAP_URL": "", "LDAP_BIND_DN": "", "LDAP_BASE_DN": "", "LDAP_BIND_PASSWORD": "", "LDAP_CA_FILE": ""},
			[]string{"LDAP_URL is required"}},
		{"features need LDAP", map[string]string{"LDAP_URL": "", "LDAP_BIND_PASSWORD": "", "LDAP_CA_FILE": "", "ALLOW_UNCHECKED_ACCOUNTS": "true",
			"APPROVER_SOURCE": "manager", "FORCE_CHANGE_AT_LOGON": "yes", "ALLOWED_OUS": "OU=X,DC=corp", "PROTECTED_GROUPS": "Tier0"},
			[]string{"APPROVER_SOURCE=manager needs LDAP_URL", "FORCE_CHANGE_AT_LOGON needs LDAP_URL", "ALLOWED_OUS needs LDAP_URL",
				"PROTECTED_GROUPS needs LDAP_URL", "LDAP_BIND_DN needs LDAP_URL", "LDAP_BASE_DN needs LDAP_URL"}},
		{"bad LDAP", map[string]string{"LDAP_URL": "https://dc1", "LDAP_BIND_DN": "", "LDAP_BIND_PASSWORD": "", "LDAP_BASE_DN": "not a dn",
			"LDAP_CA_FILE": "/nonexistent/ca.pem", "LDAP_TIMEOUT": "0s", "APPROVER_SOURCE": "boss", "FORCE_CHANGE_AT_LOGON": "maybe", "ALLOWED_OUS": "Users"},
			[]string{"LDAP_URL \"https://dc1\" must be", "LDAP_BIND_DN is required", "LDAP_BIND_PASSWORD (or LDAP_BIND_PASSWORD_FILE) is required",
				`LDAP_BASE_DN "not a dn" is not a DN`, "LDAP_CA_FILE: cannot read /nonexistent/ca.pem", "LDAP_TIMEOUT must be longer than zero",
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
	if len(c.ProtectedUsers) != len(accounts.DefaultProtectedUsers) || len(c.ProtectedGroups) != 0 || !c.RefuseAdminCount || c.ManagerApproval || c.ForceChange || c.LDAPURL != "" {
		t.Fatalf("protected %v", c.ProtectedUsers)
	}
	if c.UnlockApproval || c.UnlockLimit != 3 || len(c.Helpdesk)+len(c.HelpdeskGroups) != 0 || c.HelpdeskApproves || c.HelpdeskDelivery {
		t.Fatalf("unlock and helpdesk defaults: %+v", c)
	}
}

// TestUnlockAndHelpdeskSettings: UNLOCK_APPROVAL, UNLOCK_LIMIT, HELPDESK
// (users and groups, as APPROVERS), HELPDESK_APPROVES and
// HELPDESK_DELIVERY, and every problem with them at once.
func TestUnlockAndHelpdeskSettings(t *testing.T) {
	m := withLDAP(t)
	m["UNLOCK_APPROVAL"] = "Approvers"
	m["UNLOCK_LIMIT"] = "5"
	m["HELPDESK"] = "U0DESK1, S0DESKS,W0DESK2"
	m["HELPDESK_APPROVES"] = "true"
	m["HELPDESK_DELIVERY"] = "yes"
	c, err := Load(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if !c.UnlockApproval || c.UnlockLimit != 5 || fmt.Sprint(c.Helpdesk) != "[U0DESK1 W0DESK2]" || fmt.Sprint(c.HelpdeskGroups) != "[S0DESKS]" ||
		!c.HelpdeskApproves || !c.HelpdeskDelivery {
		t.Fatalf("%+v", c)
	}
	for name, tc := range map[string]struct {
		set  map[string]string
		ldap bool
		want []string
	}{
		"bad values": {map[string]string{"UNLOCK_APPROVAL": "manager", "UNLOCK_LIMIT": "0", "HELPDESK": "U0DESK1,#helpdesk,bob", "HELPDESK_APPROVES": "sure"}, true,
			[]string{`UNLOCK_APPROVAL "manager" must be none`, "UNLOCK_LIMIT must be at least 1", `HELPDESK entry "#helpdesk"`, `HELPDESK entry "bob"`, `HELPDESK_APPROVES "sure"`}},
		"not a number": {map[string]string{"UNLOCK_LIMIT": "many"}, true, []string{`UNLOCK_LIMIT "many" is not a whole number`}},
		"no helpdesk": {map[string]string{"HELPDESK_APPROVES": "true", "HELPDESK_DELIVERY": "true"}, true,
			[]string{"HELPDESK_APPROVES needs HELPDESK", "HELPDESK_DELIVERY needs HELPDESK"}},
		"no directory": {map[string]string{"UNLOCK_APPROVAL": "approvers", "UNLOCK_LIMIT": "2", "HELPDESK": "U0DESK1", "HELPDESK_DELIVERY": "true"}, false,
			[]string{"UNLOCK_APPROVAL needs LDAP_URL", "UNLOCK_LIMIT needs LDAP_URL", "HELPDESK_DELIVERY needs LDAP_URL"}},
		"placeholder": {map[string]string{"HELPDESK": "U0123456789"}, true, []string{"HELPDESK entry U0123456789 is still a placeholder"}},
	} {
		t.Run(name, func(t *testing.T) {
			m := valid()
			if tc.ldap {
				m = withLDAP(t)
			}
			for k, v := range tc.set {
				m[k] = v
			}
			_, err := Load(env(m))
			cerr, ok := err.(*Error)
			if !ok || len(cerr.Problems) != len(tc.want) {
				t.Fatalf("want %d problems, got: %v", len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
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
	m["REMIND_AFTER"] = "5m" // shorter than REQUEST_TTL
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
		{"domains that name nothing", map[string]string{"ALLOWED_EMAIL_DOMAINS": " , "}, []string{"ALLOWED_EMAIL_DOMAINS is required"}},
		{"no domains", map[string]string{"ALLOWED_EMAIL_DOMAINS": ""}, []string{"ALLOWED_EMAIL_DOMAINS is required"}},
		{"no LDAP unasked", map[string]string{"ALLOW_UNCHECKED_ACCOUNTS": ""}, []string{"LDAP_URL is required"}},
		{"no LDAP unasked, in words", map[string]string{"ALLOW_UNCHECKED_ACCOUNTS": "maybe"}, []string{`ALLOW_UNCHECKED_ACCOUNTS "maybe"`}},
		{"short state key", map[string]string{"STATE_KEY": "too-short-secret"}, []string{"STATE_KEY must be at least 32 characters"}},
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

// TestLDAPModeRules: with LDAP the email domains are required too, and
// ALLOW_UNCHECKED_ACCOUNTS makes no sense.
func TestLDAPModeRules(t *testing.T) {
	m := withLDAP(t)
	if _, err := Load(env(m)); err != nil {
		t.Fatalf("valid LDAP config refused: %v", err)
	}
	delete(m, "ALLOWED_EMAIL_DOMAINS")
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "ALLOWED_EMAIL_DOMAINS is required") {
		t.Errorf("LDAP without ALLOWED_EMAIL_DOMAINS: %v", err)
	}
	m = withLDAP(t)
	m["ALLOW_UNCHECKED_ACCOUNTS"] = "true"
	if _, err := Load(env(m)); err == nil || !strings.Contains(err.Error(), "ALLOW_UNCHECKED_ACCOUNTS=true only applies without LDAP_URL") {
		t.Errorf("LDAP with ALLOW_UNCHECKED_ACCOUNTS: %v", err)
	}
}

// TestSealKey: STATE_KEY (or its file) signs the requests; without it the
// key is derived from the app token, so replicas with the same tokens
// agree and another app token gives another key.
func TestSealKey(t *testing.T) {
	load := func(m map[string]string) *Config {
		t.Helper()
		c, err := Load(env(m))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := &workflow.Request{ID: workflow.NewID(), Requester: "U1"}
	sealed, err := load(valid()).SealKey().Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := load(valid()).SealKey().Open(r.ID, sealed); err != nil {
		t.Errorf("two loads of one config gave two keys: %v", err)
	}
	other := valid()
	other["SLACK_APP_TOKEN"] = "xapp-1-another-app"
	if _, err := load(other).SealKey().Open(r.ID, sealed); workflow.ErrorCode(err) != workflow.CodeTampered {
		t.Errorf("another app token opened the record: %v", err)
	}
	withKey := valid()
	key := strings.Repeat("0123456789abcdef", 3)
	withKey["STATE_KEY"] = key
	fromEnv, err := load(withKey).SealKey().Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "state-key")
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withFile := valid()
	withFile["STATE_KEY_FILE"] = file
	c := load(withFile)
	if _, err := c.SealKey().Open(r.ID, fromEnv); err != nil {
		t.Errorf("STATE_KEY_FILE gave another key than STATE_KEY: %v", err)
	}
	if _, err := c.SealKey().Open(r.ID, sealed); workflow.ErrorCode(err) != workflow.CodeTampered {
		t.Errorf("STATE_KEY did not replace the derived key: %v", err)
	}
	if dump := fmt.Sprint(slog.AnyValue(c)); strings.Contains(dump, key) {
		t.Errorf("the config dump shows STATE_KEY: %s", dump)
	}
}

// TestInsecureEndpointKinds: ALLOW_INSECURE_ENDPOINTS allows plain text
// only for the kinds it names; each check (redis:// to another host, an
// http:// SLACK_API_URL, an http:// AWS endpoint) consults its own kind,
// and true still allows all three.
func TestInsecureEndpointKinds(t *testing.T) {
	plain := map[string]string{
		"SLACK_API_URL":    "http://slack.internal/api/",
		"AWS_ENDPOINT_URL": "http://ds.internal",
		"REDIS_URL":        "redis://bot:hunter2@redis.internal:6379/0",
	}
	refusals := map[string]string{
		InsecureSlack: "SLACK_API_URL http://slack.internal/api/ is plain http",
		InsecureAWS:   "AWS_ENDPOINT_URL_DIRECTORY_SERVICE http://ds.internal is plain http",
		InsecureRedis: "REDIS_URL reaches redis.internal without TLS",
	}
	for _, tt := range []struct {
		value string
		allow []string // the kinds whose check passes
	}{
		{"", nil},
		{"false", nil},
		{"0", nil},
		{"true", []string{"redis", "slack", "aws"}},
		{"TRUE", []string{"redis", "slack", "aws"}},
		{"redis", []string{"redis"}},
		{"slack", []string{"slack"}},
		{"aws", []string{"aws"}},
		{"redis,slack", []string{"redis", "slack"}},
		{" Redis , AWS ,", []string{"redis", "aws"}},
		{"aws,aws", []string{"aws"}},
		{"redis,slack,aws", []string{"redis", "slack", "aws"}},
	} {
		t.Run(fmt.Sprintf("%q", tt.value), func(t *testing.T) {
			m := valid()
			for k, v := range plain {
				m[k] = v
			}
			m["ALLOW_INSECURE_ENDPOINTS"] = tt.value
			var want []string
			for kind, refusal := range refusals {
				if !slices.Contains(tt.allow, kind) {
					want = append(want, refusal)
				}
			}
			c, err := Load(env(m))
			if len(want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				for _, kind := range []string{InsecureRedis, InsecureSlack, InsecureAWS} {
					if c.AllowInsecure.Allows(kind) != slices.Contains(tt.allow, kind) {
						t.Errorf("Allows(%s) = %v", kind, c.AllowInsecure.Allows(kind))
					}
				}
				return
			}
			cerr, ok := err.(*Error)
			if !ok || len(cerr.Problems) != len(want) {
				t.Fatalf("want %d problems (%q), got: %v", len(want), want, err)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the Redis password: %v", err)
			}
		})
	}
	// Each refusal names the kind that would allow it.
	m := valid()
	for k, v := range plain {
		m[k] = v
	}
	_, err := Load(env(m))
	for _, w := range []string{"ALLOW_INSECURE_ENDPOINTS=slack", "ALLOW_INSECURE_ENDPOINTS=aws", "ALLOW_INSECURE_ENDPOINTS=redis"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("no %q in: %v", w, err)
		}
	}
}

// TestBadInsecureEndpointKinds: a word that is not a kind is a
// configuration error that names it, and allows nothing.
func TestBadInsecureEndpointKinds(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  []string
	}{
		{"maybe", []string{`ALLOW_INSECURE_ENDPOINTS entry "maybe" is not a kind of endpoint`}},
		{"redis,ldap", []string{`ALLOW_INSECURE_ENDPOINTS entry "ldap" is not a kind of endpoint`}},
		{"redis;slack", []string{`ALLOW_INSECURE_ENDPOINTS entry "redis;slack" is not a kind of endpoint`}},
		{"true,redis", []string{`ALLOW_INSECURE_ENDPOINTS entry "true" is not a kind of endpoint`}},
		{"http, smtp", []string{`entry "http" is not a kind`, `entry "smtp" is not a kind`}},
		{" , ", []string{`ALLOW_INSECURE_ENDPOINTS "," names no kind of endpoint`}},
	} {
		t.Run(tt.value, func(t *testing.T) {
			m := valid()
			m["ALLOW_INSECURE_ENDPOINTS"] = tt.value
			m["SLACK_API_URL"] = "http://slack.internal/api/"
			_, err := Load(env(m))
			cerr, ok := err.(*Error)
			// The bad word, and the plain http Slack URL it does not allow.
			if !ok || len(cerr.Problems) != len(tt.want)+1 {
				t.Fatalf("want %d problems, got: %v", len(tt.want)+1, err)
			}
			for _, w := range append(tt.want, "SLACK_API_URL http://slack.internal/api/ is plain http") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
		})
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
