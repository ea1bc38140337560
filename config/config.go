// Package config reads the bot's configuration from the environment. Every
// problem is reported at once, in plain words; secrets never appear in
// errors, logs or String() output.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/ldapdir"
	"github.com/example/resetbot/mailnotice"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

// Secret is a string that redacts itself when printed or logged.
type Secret string

// Value returns the secret itself, for the one place that needs it.
func (s Secret) Value() string { return string(s) }

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret in %#v.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts the secret in slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the secret in JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Config is the bot's configuration. The environment variable names are a
// stable interface (see README.md).
type Config struct {
	SlackBotToken Secret // SLACK_BOT_TOKEN, xoxb-...
	SlackAppToken Secret // SLACK_APP_TOKEN, xapp-...
	SlackAPIURL   string // SLACK_API_URL, ends in /

	DirectoryID  string // DIRECTORY_ID
	AWSRegion    string // AWS_REGION (or AWS_DEFAULT_REGION)
	AWSEndpoint  string // AWS_ENDPOINT_URL_DIRECTORY_SERVICE, else AWS_ENDPOINT_URL
	AWSAccessKey string // AWS_ACCESS_KEY_ID: when set with the secret key, static credentials; else the SDK's default chain
	AWSSecretKey Secret // AWS_SECRET_ACCESS_KEY
	AWSSession   Secret // AWS_SESSION_TOKEN
	AWSAttempts  int    // AWS_MAX_ATTEMPTS: tries per directory call, retries included

	Store

	Approvers      []string // APPROVERS: user IDs (U..., W...)
	ApproverGroups []string // APPROVERS: user-group IDs (S...)
	EmailDomains   []string // ALLOWED_EMAIL_DOMAINS, lower case
	AuditChannel   string   // AUDIT_CHANNEL
	ProtectedUsers []string // accounts.DefaultProtectedUsers plus PROTECTED_USERS

	// The directory over LDAP (optional): the account by email, the guards,
	// the manager.
	LDAPURL          string        // LDAP_URL: ldaps://host:636 or ldap://host:389 (StartTLS)
	LDAPInsecure     bool          // LDAP_INSECURE: allow ldap:// without StartTLS
	LDAPBindDN       string        // LDAP_BIND_DN
	LDAPBindPassword Secret        // LDAP_BIND_PASSWORD
	LDAPBaseDN       string        // LDAP_BASE_DN
	LDAPCAFile       string        // LDAP_CA_FILE
	LDAPTimeout      time.Duration // LDAP_TIMEOUT: per LDAP operation
	ProtectedGroups  []string      // PROTECTED_GROUPS: cn/sAMAccountName, DN or SID of each; added to the groups protected by identity (package ldapdir)
	RefuseAdminCount bool          // REFUSE_ADMIN_COUNT: refuse accounts with adminCount=1 (default true)
	AllowedOUs       []string      // ALLOWED_OUS: DNs, separated by ;
	ManagerApproval  bool          // APPROVER_SOURCE=manager
	// UncheckedAccounts lets the bot run without LDAP_URL
	// (ALLOW_UNCHECKED_ACCOUNTS): no disabled or group guards, an explicit
	// choice that every audit line of a request repeats.
	UncheckedAccounts bool
	ForceChange       bool   // FORCE_CHANGE_AT_LOGON
	AccountMapFile    string // ACCOUNT_MAP_FILE
	AccountMap        map[string]string

	// Unlocks, and requests on an employee's behalf.
	UnlockApproval   bool     // UNLOCK_APPROVAL=approvers (default none: at once, within UnlockLimit)
	UnlockLimit      int      // UNLOCK_LIMIT per RequestWindow
	Helpdesk         []string // HELPDESK: user IDs (U..., W...) who may ask on an employee's behalf
	HelpdeskGroups   []string // HELPDESK: user-group IDs (S...)
	HelpdeskApproves bool     // HELPDESK_APPROVES: the agent's request is the approval
	HelpdeskDelivery bool     // HELPDESK_DELIVERY: the agent gets the Reveal when the employee has no Slack account

	// The owner's notice email after each reset and unlock (optional;
	// package mailnotice).
	SMTPURL         string // SMTP_URL: smtp://host[:port] (STARTTLS required) or smtps://host[:port]; empty: no email
	SMTPUsername    string // SMTP_USERNAME; empty: no authentication
	SMTPPassword    Secret // SMTP_PASSWORD
	SMTPFrom        string // SMTP_FROM: an address, bare or with a name
	SMTPCAFile      string // SMTP_CA_FILE: PEM bundle that signs the server's certificate; empty: system roots
	HelpdeskContact string // HELPDESK_CONTACT: how to reach helpdesk, shown in the notices

	Oversight // reminders, escalation, reasons, work hours, "This wasn't me" (oversight.go)

	RequestTTL    time.Duration // REQUEST_TTL
	RevealTTL     time.Duration // REVEAL_TTL
	RequestLimit  int           // REQUEST_LIMIT per RequestWindow
	RequestWindow time.Duration // REQUEST_LIMIT_WINDOW
	SweepInterval time.Duration // SWEEP_INTERVAL
	WorkLease     time.Duration // WORK_LEASE: how long a replica owns in-flight work before another takes it over

	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT: how long SIGTERM waits for work in flight
	AllowInsecure   InsecureKinds // ALLOW_INSECURE_ENDPOINTS: which endpoints may be reached without TLS

	MetricsAddr string     // METRICS_ADDR: /metrics on its own listener; empty: on HTTP_ADDR
	HTTPAddr    string     // HTTP_ADDR
	LogLevel    slog.Level // LOG_LEVEL
}

// DefaultHTTPAddr is where /healthz, /readyz and /metrics listen unless
// HTTP_ADDR says otherwise: this machine only. The container image sets
// HTTP_ADDR=:8080, since a container's probes and scrapes come from outside
// it.
const DefaultHTTPAddr = "127.0.0.1:8080"

var (
	userIDRe    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	groupIDRe   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
	channelIDRe = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	domainRe    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
)

// Load reads the configuration through getenv (os.Getenv in production).
// A secret NAME may instead be read from the file named by NAME_FILE. The
// error lists every problem found, one per line.
func Load(getenv func(string) string) (*Config, error) {
	l := loader{getenv: getenv}
	c := &Config{
		SlackBotToken:   Secret(l.secret("SLACK_BOT_TOKEN")),
		SlackAppToken:   Secret(l.secret("SLACK_APP_TOKEN")),
		SlackAPIURL:     l.str("SLACK_API_URL", "https://slack.com/api/"),
		DirectoryID:     l.str("DIRECTORY_ID", ""),
		AWSRegion:       l.str("AWS_REGION", getenv("AWS_DEFAULT_REGION")),
		AWSEndpoint:     l.str("AWS_ENDPOINT_URL_DIRECTORY_SERVICE", getenv("AWS_ENDPOINT_URL")),
		AWSAccessKey:    l.str("AWS_ACCESS_KEY_ID", ""),
		AWSSecretKey:    Secret(l.secret("AWS_SECRET_ACCESS_KEY")),
		AWSSession:      Secret(l.secret("AWS_SESSION_TOKEN")),
		AWSAttempts:     l.integer("AWS_MAX_ATTEMPTS", 4),
		Store:           l.store(),
		AuditChannel:    l.str("AUDIT_CHANNEL", ""),
		RequestTTL:      l.duration("REQUEST_TTL", 30*time.Minute),
		RevealTTL:       l.duration("REVEAL_TTL", 15*time.Minute),
		RequestLimit:    l.integer("REQUEST_LIMIT", 3),
		RequestWindow:   l.duration("REQUEST_LIMIT_WINDOW", 24*time.Hour),
		SweepInterval:   l.duration("SWEEP_INTERVAL", 5*time.Second),
		WorkLease:       l.duration("WORK_LEASE", 2*time.Minute),
		HTTPAddr:        l.str("HTTP_ADDR", DefaultHTTPAddr),
		ShutdownTimeout: l.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		MetricsAddr:     l.str("METRICS_ADDR", ""),
		AllowInsecure:   l.insecureKinds("ALLOW_INSECURE_ENDPOINTS"),
	}
	l.slack(c)
	l.aws(c)
	l.people(c)
	l.directory(c)
	l.guards(c)
	l.helpdesk(c)
	l.mail(c)
	l.timings(c)
	l.oversight(c)
	l.listeners(c)
	l.insecureRedis(c)
	if len(l.problems) > 0 {
		return nil, &Error{Problems: l.problems}
	}
	return c, nil
}

// slack checks the Slack tokens and API URL.
func (l *loader) slack(c *Config) {
	l.token("SLACK_BOT_TOKEN", c.SlackBotToken, "xoxb-", "a bot token", "the bot token (xoxb-...) from the Slack app's OAuth & Permissions page")
	l.token("SLACK_APP_TOKEN", c.SlackAppToken, "xapp-", "an app-level token", "an app-level token (xapp-...) with the connections:write scope, from the Slack app's Basic Information page")
	if !l.httpURL("SLACK_API_URL", c.SlackAPIURL, "the bot token", InsecureSlack, c.AllowInsecure) || !strings.HasSuffix(c.SlackAPIURL, "/") {
		l.problem("SLACK_API_URL must be an http(s) URL ending in /, like https://slack.com/api/")
	}
}

// token checks a required token: set, not a placeholder, and of the kind
// its prefix says.
func (l *loader) token(name string, tok Secret, prefix, kind, where string) {
	switch {
	case l.failed(name):
	case tok == "":
		l.problem(name + " is required: " + where)
	case strings.Contains(tok.Value(), "...") || tok.Value() == prefix:
		// The placeholder is not a secret: say which one it is.
		l.problem(fmt.Sprintf("%s is still the placeholder %s...: set it to %s", name, prefix, where))
	case !strings.HasPrefix(tok.Value(), prefix):
		l.problem(name + " must be " + kind + " starting with " + prefix)
	}
}

// httpURL checks an http(s) URL setting: false when it is not one; a
// problem when it is plain http and ALLOW_INSECURE_ENDPOINTS does not allow
// its kind (what would cross the network unencrypted is carried).
func (l *loader) httpURL(name, v, carried, kind string, allowed InsecureKinds) bool {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	if u.Scheme == "http" && !allowed.Allows(kind) {
		l.problem(name + " " + v + " is plain http: " + carried + " would cross the network unencrypted; use https://, or set ALLOW_INSECURE_ENDPOINTS=" + kind + " for a local test server")
	}
	return true
}

// The kinds of endpoint ALLOW_INSECURE_ENDPOINTS may name.
const (
	InsecureRedis = "redis" // redis:// (no TLS) to a host other than this one
	InsecureSlack = "slack" // an http:// SLACK_API_URL
	InsecureAWS   = "aws"   // an http:// Directory Service endpoint
)

// InsecureKinds are the kinds of endpoint the bot may reach without TLS.
type InsecureKinds []string

// Allows reports whether endpoints of kind may be reached without TLS.
func (k InsecureKinds) Allows(kind string) bool { return slices.Contains(k, kind) }

// insecureKinds reads ALLOW_INSECURE_ENDPOINTS: unset or false for none,
// true for every kind, or the kinds, comma-separated.
func (l *loader) insecureKinds(name string) InsecureKinds {
	all := InsecureKinds{InsecureRedis, InsecureSlack, InsecureAWS}
	v := strings.TrimSpace(l.getenv(name))
	switch strings.ToLower(v) {
	case "", "false", "0", "no", "off":
		return nil
	case "true", "1", "yes", "on":
		return all
	}
	var kinds InsecureKinds
	for _, k := range list(v) {
		k = strings.ToLower(k)
		if !all.Allows(k) {
			l.fail(name, fmt.Sprintf("%s entry %q is not a kind of endpoint: name redis, slack or aws, comma-separated (or true for all three)", name, k))
			continue
		}
		if !kinds.Allows(k) {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 && !l.failed(name) {
		l.fail(name, fmt.Sprintf("%s %q names no kind of endpoint: name redis, slack or aws, comma-separated, or true, or false", name, v))
	}
	return kinds
}

// aws checks the directory and the AWS settings.
func (l *loader) aws(c *Config) {
	switch {
	case c.DirectoryID == "":
		l.problem("DIRECTORY_ID is required: the directory's ID, like d-1234567890")
	case placeholder("DIRECTORY_ID", c.DirectoryID):
		l.problem(fmt.Sprintf("DIRECTORY_ID is still the placeholder %s from .env.example: set it to your directory's ID (AWS console -> Directory Service -> Directories)", c.DirectoryID))
	case !workflow.ValidDirectoryID(c.DirectoryID):
		l.problem(fmt.Sprintf("DIRECTORY_ID %q must be d- followed by 10 lower-case hex digits, like d-1234567890", c.DirectoryID))
	}
	if c.AWSRegion == "" {
		l.problem("AWS_REGION is required: the region of the directory, like eu-west-1")
	}
	if c.AWSEndpoint != "" && !l.httpURL("AWS_ENDPOINT_URL_DIRECTORY_SERVICE", c.AWSEndpoint, "the new passwords", InsecureAWS, c.AllowInsecure) {
		l.problem("AWS_ENDPOINT_URL_DIRECTORY_SERVICE must be an http(s) URL")
	}
	if (c.AWSAttempts < 1 || c.AWSAttempts > 10) && !l.failed("AWS_MAX_ATTEMPTS") {
		l.problem("AWS_MAX_ATTEMPTS must be between 1 and 10")
	}
	if (c.AWSAccessKey == "") != (c.AWSSecretKey == "") {
		l.problem("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (or neither, to use the SDK's default credential chain)")
	}
}

// people reads the approvers, the email domains and the audit channel.
func (l *loader) people(c *Config) {
	for _, id := range list(l.getenv("APPROVERS")) {
		switch {
		case placeholder("APPROVERS", id):
			l.fail("APPROVERS", fmt.Sprintf("APPROVERS entry %s is still a placeholder from .env.example: use your approvers' Slack user IDs (profile -> ... -> Copy member ID) and user-group IDs (S...)", id))
		case userIDRe.MatchString(id):
			c.Approvers = append(c.Approvers, id)
		case groupIDRe.MatchString(id):
			c.ApproverGroups = append(c.ApproverGroups, id)
		default:
			l.fail("APPROVERS", fmt.Sprintf("APPROVERS entry %q is neither a Slack user ID (U..., W...) nor a user-group ID (S...)", id))
		}
	}
	for _, d := range list(l.getenv("ALLOWED_EMAIL_DOMAINS")) {
		d = strings.ToLower(strings.TrimPrefix(d, "@"))
		if placeholder("ALLOWED_EMAIL_DOMAINS", d) {
			l.fail("ALLOWED_EMAIL_DOMAINS", fmt.Sprintf("ALLOWED_EMAIL_DOMAINS entry %s is still a placeholder (the domain reserved for examples): list your employees' email domains", d))
			continue
		}
		if !domainRe.MatchString(d) {
			l.fail("ALLOWED_EMAIL_DOMAINS", fmt.Sprintf("ALLOWED_EMAIL_DOMAINS entry %q is not a domain name like example.com", d))
			continue
		}
		c.EmailDomains = append(c.EmailDomains, d)
	}
	if len(c.EmailDomains) == 0 && !l.failed("ALLOWED_EMAIL_DOMAINS") {
		// Checked on the parsed list: " , " names no domain.
		l.problem("ALLOWED_EMAIL_DOMAINS is required: the email domains of your employees, comma-separated (e.g. example.com,example.org); people whose Slack email is elsewhere are refused")
	}
	if placeholder("AUDIT_CHANNEL", c.AuditChannel) {
		l.problem(fmt.Sprintf("AUDIT_CHANNEL is still the placeholder %s from .env.example: set it to your audit channel's ID (channel details, at the bottom), or leave it unset", c.AuditChannel))
	} else if c.AuditChannel != "" && !channelIDRe.MatchString(c.AuditChannel) {
		l.problem(fmt.Sprintf("AUDIT_CHANNEL %q must be a channel ID like C0123456789 (not a #name)", c.AuditChannel))
	}
}

// guards reads the protected users and checks what the guards need; it
// runs after directory (LDAP_URL).
func (l *loader) guards(c *Config) {
	if len(c.Approvers)+len(c.ApproverGroups) == 0 && !l.failed("APPROVERS") && !c.ManagerApproval {
		l.problem("APPROVERS is required: comma-separated Slack user IDs (U...) and user-group IDs (S...) who may approve resets")
	}
	c.ProtectedUsers = append(slices.Clone(accounts.DefaultProtectedUsers), list(l.getenv("PROTECTED_USERS"))...)
	for _, u := range c.ProtectedUsers {
		if err := workflow.ValidateUserName(u); err != nil {
			l.problem(fmt.Sprintf("PROTECTED_USERS entry %q is not an account name: %v", u, err))
		}
	}
	c.UncheckedAccounts = l.boolean("ALLOW_UNCHECKED_ACCOUNTS")
	switch {
	case c.LDAPURL == "" && !c.UncheckedAccounts && !l.failed("ALLOW_UNCHECKED_ACCOUNTS"):
		l.problem("LDAP_URL is required: without the directory the bot cannot refuse disabled accounts (a reset would enable them again) or members of administrators' groups. Set LDAP_URL, or ALLOW_UNCHECKED_ACCOUNTS=true to run without these guards, which every audit line will then say")
	case c.LDAPURL != "" && c.UncheckedAccounts:
		l.problem("ALLOW_UNCHECKED_ACCOUNTS=true only applies without LDAP_URL; remove it")
	}
}

// helpdesk reads the unlock and on-behalf settings; it runs after
// directory (LDAP_URL).
func (l *loader) helpdesk(c *Config) {
	switch v := strings.ToLower(l.str("UNLOCK_APPROVAL", "none")); v {
	case "none":
	case "approvers":
		c.UnlockApproval = true
	default:
		l.fail("UNLOCK_APPROVAL", fmt.Sprintf("UNLOCK_APPROVAL %q must be none (an unlock happens at once, within UNLOCK_LIMIT) or approvers (the same approval as a reset)", v))
	}
	c.UnlockLimit = l.integer("UNLOCK_LIMIT", 3)
	if c.UnlockLimit < 1 && !l.failed("UNLOCK_LIMIT") {
		l.problem("UNLOCK_LIMIT must be at least 1")
	}
	for _, id := range list(l.getenv("HELPDESK")) {
		switch {
		case placeholder("APPROVERS", id):
			l.fail("HELPDESK", fmt.Sprintf("HELPDESK entry %s is still a placeholder: use your helpdesk's Slack user IDs (U...) and user-group IDs (S...)", id))
		case userIDRe.MatchString(id):
			c.Helpdesk = append(c.Helpdesk, id)
		case groupIDRe.MatchString(id):
			c.HelpdeskGroups = append(c.HelpdeskGroups, id)
		default:
			l.fail("HELPDESK", fmt.Sprintf("HELPDESK entry %q is neither a Slack user ID (U..., W...) nor a user-group ID (S...)", id))
		}
	}
	c.HelpdeskApproves = l.boolean("HELPDESK_APPROVES")
	c.HelpdeskDelivery = l.boolean("HELPDESK_DELIVERY")
	if len(c.Helpdesk)+len(c.HelpdeskGroups) == 0 && !l.failed("HELPDESK") {
		for _, s := range []struct {
			name string
			set  bool
		}{{"HELPDESK_APPROVES", c.HelpdeskApproves}, {"HELPDESK_DELIVERY", c.HelpdeskDelivery}} {
			if s.set {
				l.problem(s.name + " needs HELPDESK: the Slack users and groups who may ask on an employee's behalf")
			}
		}
	}
	if c.LDAPURL == "" {
		for _, s := range []struct {
			name, why string
			set       bool
		}{
			{"UNLOCK_APPROVAL", "unlocks read and write the directory", l.getenv("UNLOCK_APPROVAL") != ""},
			{"UNLOCK_LIMIT", "unlocks read and write the directory", l.getenv("UNLOCK_LIMIT") != ""},
			{"HELPDESK_DELIVERY", "only the directory can say whose account an email names when nobody in Slack has it, and the password it hands over must be made \"must change at next logon\"", c.HelpdeskDelivery},
		} {
			if s.set && !l.failed(s.name) {
				l.problem(s.name + " needs LDAP_URL: " + s.why)
			}
		}
	}
}

// mail reads the settings of the notice email.
func (l *loader) mail(c *Config) {
	c.SMTPURL = l.str("SMTP_URL", "")
	c.SMTPUsername = l.str("SMTP_USERNAME", "")
	c.SMTPPassword = Secret(l.secret("SMTP_PASSWORD"))
	c.SMTPFrom = l.str("SMTP_FROM", "")
	c.SMTPCAFile = l.str("SMTP_CA_FILE", "")
	c.HelpdeskContact = l.str("HELPDESK_CONTACT", "")
	if c.HelpdeskContact != "" && (len([]rune(c.HelpdeskContact)) > 200 || strings.ContainsFunc(c.HelpdeskContact, unicode.IsControl)) {
		l.problem("HELPDESK_CONTACT must be one line of at most 200 characters, like \"+1 555 0100 or helpdesk@example.com\"")
	}
	if c.SMTPURL == "" {
		for _, s := range []struct {
			name string
			set  bool
		}{
			{"SMTP_USERNAME", c.SMTPUsername != ""}, {"SMTP_PASSWORD", c.SMTPPassword != ""},
			{"SMTP_FROM", c.SMTPFrom != ""}, {"SMTP_CA_FILE", c.SMTPCAFile != ""},
		} {
			if s.set {
				l.problem(s.name + " needs SMTP_URL: without it no notice email is sent")
			}
		}
		return
	}
	if err := mailnotice.ValidateURL(c.SMTPURL); err != nil {
		// The error never repeats the URL, which might hold a password.
		l.problem("SMTP_URL " + err.Error())
	}
	switch _, err := mailnotice.ParseFrom(c.SMTPFrom); {
	case c.SMTPFrom == "":
		l.problem("SMTP_FROM is required with SMTP_URL: the sender of the notices, like \"Password reset <resetbot@example.com>\"")
	case err != nil:
		l.problem(fmt.Sprintf("SMTP_FROM %q is not one address like resetbot@example.com or Password reset <resetbot@example.com>: %v", c.SMTPFrom, err))
	}
	if (c.SMTPUsername == "") != (c.SMTPPassword == "") && !l.failed("SMTP_PASSWORD") {
		l.problem("SMTP_USERNAME and SMTP_PASSWORD (or SMTP_PASSWORD_FILE) go together: set both to authenticate, or neither for a relay that trusts this host")
	}
	if c.SMTPCAFile != "" {
		if _, err := mailnotice.LoadCAFile(c.SMTPCAFile); err != nil {
			l.problem("SMTP_CA_FILE: " + err.Error())
		}
	}
	if c.HelpdeskContact == "" {
		l.problem("HELPDESK_CONTACT is required with SMTP_URL: every notice tells the account's owner how to reach helpdesk if the reset or unlock was not theirs")
	}
}

// timings checks the windows, leases and limits.
func (l *loader) timings(c *Config) {
	l.positive("REQUEST_TTL", c.RequestTTL)
	l.positive("REVEAL_TTL", c.RevealTTL)
	l.positive("REQUEST_LIMIT_WINDOW", c.RequestWindow)
	l.positive("SWEEP_INTERVAL", c.SweepInterval)
	l.positive("WORK_LEASE", c.WorkLease)
	l.positive("SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
	if c.RequestLimit < 1 && !l.failed("REQUEST_LIMIT") {
		l.problem("REQUEST_LIMIT must be at least 1")
	}
}

// listeners checks the HTTP listeners and reads the log level.
func (l *loader) listeners(c *Config) {
	if c.HTTPAddr == "" || !strings.Contains(c.HTTPAddr, ":") {
		l.problem(fmt.Sprintf("HTTP_ADDR %q must be host:port or :port, like :8080", c.HTTPAddr))
	}
	if c.MetricsAddr != "" && (!strings.Contains(c.MetricsAddr, ":") || sameListener(c.MetricsAddr, c.HTTPAddr)) {
		l.problem(fmt.Sprintf("METRICS_ADDR %q must be host:port or :port, like 127.0.0.1:9090, and differ from HTTP_ADDR", c.MetricsAddr))
	}
	switch lv := strings.ToLower(l.str("LOG_LEVEL", "info")); lv {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		l.problem(fmt.Sprintf("LOG_LEVEL %q must be debug, info, warn or error", lv))
	}
}

// sameListener reports whether listeners on a and b would take the same
// port: the same fixed port on the same host, or on all interfaces.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { ip := net.ParseIP(h); return h == "" || ip != nil && ip.IsUnspecified() }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

// insecureRedis refuses a Redis reached without TLS on another host.
func (l *loader) insecureRedis(c *Config) {
	if c.RedisURL == "" || c.AllowInsecure.Allows(InsecureRedis) {
		return
	}
	if host, plain := plainRemoteRedis(c.RedisURL.Value()); plain {
		l.problem("REDIS_URL reaches " + host + " without TLS: use rediss:// (or rediss+sentinel://, rediss+cluster://), or set ALLOW_INSECURE_ENDPOINTS=redis for a private network you trust")
	}
}

// plainRemoteRedis returns the first host of a Redis URL without TLS that
// is not on this machine.
func plainRemoteRedis(u string) (string, bool) {
	var addrs []string
	switch {
	case strings.HasPrefix(u, "redis://"):
		if o, err := redisstore.ParseURL(u); err == nil {
			addrs = []string{o.Addr}
		}
	case strings.HasPrefix(u, "redis+sentinel://"):
		if o, err := redisstore.ParseSentinelURL(u); err == nil {
			addrs = o.SentinelAddrs
		}
	case strings.HasPrefix(u, "redis+cluster://"):
		if o, err := redisstore.ParseClusterURL(u); err == nil {
			addrs = o.Addrs
		}
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return host, true
		}
	}
	return "", false
}

// Store is where the bot keeps its state and audit log: all that the
// `bot audit` export needs.
type Store struct {
	RedisURL       Secret        // REDIS_URL; empty: embedded store in DataDir
	StateKey       Secret        // STATE_KEY: signs stored requests; empty: derived (Config.SealKey)
	RedisPrefix    string        // REDIS_KEY_PREFIX
	DataDir        string        // DATA_DIR
	AuditRetention time.Duration // AUDIT_RETENTION: how long audit records are kept
}

// LoadStore reads only the store settings, for commands that need nothing
// else. The error lists every problem found.
func LoadStore(getenv func(string) string) (*Store, error) {
	l := loader{getenv: getenv}
	s := l.store()
	if len(l.problems) > 0 {
		return nil, &Error{Problems: l.problems}
	}
	return &s, nil
}

// store reads and checks the store settings.
func (l *loader) store() Store {
	s := Store{
		RedisURL:       Secret(l.secret("REDIS_URL")),
		RedisPrefix:    l.str("REDIS_KEY_PREFIX", "resetbot:"),
		DataDir:        l.str("DATA_DIR", "./data"),
		AuditRetention: l.days("AUDIT_RETENTION", 400),
		StateKey:       Secret(l.secret("STATE_KEY")),
	}
	if k := s.StateKey.Value(); k != "" && len(k) < seal.MinKeyLen {
		l.problem(fmt.Sprintf("STATE_KEY must be at least %d characters of random (e.g. the output of `openssl rand -base64 48`); it has %d", seal.MinKeyLen, len(k)))
	}
	if r := s.RedisURL.Value(); placeholder("REDIS_URL", r) {
		l.problem("REDIS_URL is still the example from .env.example (rediss://default:password@redis.internal:6379/0): set it to your Redis, or leave it unset for the embedded store")
	} else if r != "" {
		if err := redisstore.ValidateURL(r); err != nil {
			l.problem("REDIS_URL must be a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL (see README.md): " + err.Error())
		}
	} else if s.DataDir == "" {
		l.problem("DATA_DIR must not be empty when REDIS_URL is unset (the embedded store lives there)")
	}
	l.positive("AUDIT_RETENTION", s.AuditRetention)
	return s
}

// days reads a duration that may also be given in days, like 400d.
func (l *loader) days(name string, def int) time.Duration {
	v := strings.TrimSpace(l.getenv(name))
	if n, ok := strings.CutSuffix(v, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil {
			l.fail(name, fmt.Sprintf("%s %q is not a number of days like 400d, or a duration like 720h", name, v))
			return 0
		}
		return time.Duration(d) * 24 * time.Hour
	}
	return l.duration(name, time.Duration(def)*24*time.Hour)
}

// SealKey returns the key that signs stored requests: STATE_KEY, else one
// derived from SLACK_APP_TOKEN, which every replica holds and the store
// never sees. (Regenerating the app token, or a STATE_KEY that differs
// between replicas, makes the open requests unverifiable: they are then
// refused and audited as tampered.)
func (c *Config) SealKey() seal.Key {
	if k := c.StateKey.Value(); k != "" {
		if key, err := seal.New([]byte(k)); err == nil {
			return key
		}
	}
	return seal.Derive(c.SlackAppToken.Value(), "requests")
}

// placeholders are the values that .env.example and README.md show in place
// of real ones (the tokens' "xoxb-..." are caught by token): a
// configuration copied without filling them in is refused with words that
// name the setting.
var placeholders = map[string][]string{
	"DIRECTORY_ID":          {"d-0123456789"},
	"APPROVERS":             {"U0123456789", "S0123456789"},
	"AUDIT_CHANNEL":         {"C0123456789"},
	"ALLOWED_EMAIL_DOMAINS": {"example.com"},
	"REDIS_URL":             {"rediss://default:password@redis.internal:6379/0"},
}

// placeholder reports whether v is a placeholder of setting name.
func placeholder(name, v string) bool {
	return v != "" && (slices.Contains(placeholders[name], v) || strings.Contains(v, "..."))
}

// Error lists every configuration problem.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "configuration has " + strconv.Itoa(len(e.Problems)) + " problem(s):\n  - " + strings.Join(e.Problems, "\n  - ")
}

// LogValue summarises the configuration for the start-up log, secrets
// redacted.
func (c *Config) LogValue() slog.Value {
	store := "redis"
	if c.RedisURL == "" {
		store = "embedded:" + c.DataDir
	}
	return slog.GroupValue(
		slog.String("slack_api_url", c.SlackAPIURL),
		slog.String("directory_id", c.DirectoryID),
		slog.String("aws_region", c.AWSRegion),
		slog.String("aws_endpoint", c.AWSEndpoint),
		slog.String("store", store),
		slog.String("redis_url", redisstore.RedactURL(c.RedisURL.Value())),
		slog.Any("allow_insecure_endpoints", []string(c.AllowInsecure)),
		slog.Any("approvers", c.Approvers),
		slog.Any("approver_groups", c.ApproverGroups),
		slog.Any("allowed_email_domains", c.EmailDomains),
		slog.String("audit_channel", c.AuditChannel),
		slog.Any("protected_users", c.ProtectedUsers),
		slog.String("ldap_url", c.LDAPURL),
		slog.Bool("ldap_plain_text", c.LDAPURL != "" && c.LDAPInsecure),
		slog.String("ldap_bind_dn", c.LDAPBindDN),
		slog.String("ldap_base_dn", c.LDAPBaseDN),
		slog.Any("protected_groups", c.ProtectedGroups),
		slog.Bool("refuse_admin_count", c.RefuseAdminCount),
		slog.Any("allowed_ous", c.AllowedOUs),
		slog.Bool("manager_approval", c.ManagerApproval),
		slog.Bool("allow_unchecked_accounts", c.UncheckedAccounts),
		slog.Bool("state_key_set", c.StateKey != ""),
		slog.Bool("force_change_at_logon", c.ForceChange),
		slog.Int("account_map_entries", len(c.AccountMap)),
		slog.Bool("unlock_approval", c.UnlockApproval),
		slog.Int("unlock_limit", c.UnlockLimit),
		slog.Any("helpdesk", c.Helpdesk),
		slog.Any("helpdesk_groups", c.HelpdeskGroups),
		slog.Bool("helpdesk_approves", c.HelpdeskApproves),
		slog.Bool("helpdesk_delivery", c.HelpdeskDelivery),
		slog.String("smtp_url", c.SMTPURL),
		slog.String("smtp_from", c.SMTPFrom),
		slog.String("smtp_username", c.SMTPUsername),
		slog.Bool("smtp_password_set", c.SMTPPassword != ""),
		slog.String("smtp_ca_file", c.SMTPCAFile),
		slog.String("helpdesk_contact", c.HelpdeskContact),
		slog.Group("oversight", c.Oversight.oversightLog()...),
		slog.String("request_ttl", c.RequestTTL.String()),
		slog.String("reveal_ttl", c.RevealTTL.String()),
		slog.Int("request_limit", c.RequestLimit),
		slog.String("request_limit_window", c.RequestWindow.String()),
		slog.String("work_lease", c.WorkLease.String()),
		slog.String("audit_retention", c.AuditRetention.String()),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("metrics_addr", c.MetricsAddr),
		slog.String("log_level", c.LogLevel.String()),
	)
}

// directory reads the LDAP settings and the ones that need them.
func (l *loader) directory(c *Config) {
	c.LDAPURL = l.str("LDAP_URL", "")
	c.LDAPInsecure = l.boolean("LDAP_INSECURE")
	c.LDAPBindDN = l.str("LDAP_BIND_DN", "")
	c.LDAPBindPassword = Secret(l.secret("LDAP_BIND_PASSWORD"))
	c.LDAPBaseDN = l.str("LDAP_BASE_DN", "")
	c.LDAPCAFile = l.str("LDAP_CA_FILE", "")
	c.LDAPTimeout = l.duration("LDAP_TIMEOUT", 5*time.Second)
	l.protectedGroups(c)
	c.RefuseAdminCount = l.booleanOr("REFUSE_ADMIN_COUNT", true)
	c.ForceChange = l.boolean("FORCE_CHANGE_AT_LOGON")
	switch src := strings.ToLower(l.str("APPROVER_SOURCE", "static")); src {
	case "static":
	case "manager":
		c.ManagerApproval = true
	default:
		l.problem(fmt.Sprintf("APPROVER_SOURCE %q must be static (APPROVERS) or manager (the AD manager, APPROVERS as fallback)", src))
	}
	for _, ou := range strings.Split(l.getenv("ALLOWED_OUS"), ";") {
		if ou = strings.TrimSpace(ou); ou != "" {
			c.AllowedOUs = append(c.AllowedOUs, ou)
		}
	}
	l.accountMap(c)
	l.positive("LDAP_TIMEOUT", c.LDAPTimeout)
	if c.LDAPURL == "" {
		for _, s := range []struct {
			name string
			set  bool
		}{
			{"APPROVER_SOURCE=manager", c.ManagerApproval}, {"FORCE_CHANGE_AT_LOGON", c.ForceChange},
			{"ALLOWED_OUS", len(c.AllowedOUs) > 0}, {"PROTECTED_GROUPS", l.getenv("PROTECTED_GROUPS") != ""},
			{"LDAP_BIND_DN", c.LDAPBindDN != ""}, {"LDAP_BASE_DN", c.LDAPBaseDN != ""},
		} {
			if s.set {
				l.problem(s.name + " needs LDAP_URL: it reads the directory")
			}
		}
		return
	}
	// The LDAP settings are checked in one place, ldapdir.Options.Problems,
	// which ldapdir.New runs again: here, so that they are reported with
	// the rest of the configuration.
	for _, p := range c.LDAPOptions().Problems() {
		if !l.failed(p.Setting) {
			l.problem(p.Text)
		}
	}
}

// LDAPOptions returns the options of the LDAP client (package ldapdir) the
// configuration describes, without a logger.
func (c *Config) LDAPOptions() ldapdir.Options {
	return ldapdir.Options{
		URL:             c.LDAPURL,
		Insecure:        c.LDAPInsecure,
		BindDN:          c.LDAPBindDN,
		BindPassword:    c.LDAPBindPassword.Value(),
		BaseDN:          c.LDAPBaseDN,
		CAFile:          c.LDAPCAFile,
		ProtectedGroups: c.ProtectedGroups,
		AllowedOUs:      c.AllowedOUs,
		Timeout:         max(c.LDAPTimeout, 0), // a negative one is LDAP_TIMEOUT's own problem
	}
}

// protectedGroups reads PROTECTED_GROUPS: group names (cn or
// sAMAccountName), DNs or SIDs. Entries are separated by ";" when the
// value has one (DNs hold commas), else by ","; a value that is one DN
// and nothing else is that DN.
func (l *loader) protectedGroups(c *Config) {
	v := strings.TrimSpace(l.getenv("PROTECTED_GROUPS"))
	var entries []string
	switch {
	case strings.Contains(v, ";"):
		for _, e := range strings.Split(v, ";") {
			if e = strings.TrimSpace(e); e != "" {
				entries = append(entries, e)
			}
		}
	case ldapdir.IsDN(v):
		entries = []string{v}
	case strings.Contains(v, "="):
		l.problem(fmt.Sprintf("PROTECTED_GROUPS %q mixes a DN with other entries: separate the entries with ; when one of them is a DN", v))
		return
	default:
		entries = list(v)
	}
	// Each entry is checked with the other LDAP settings (ldapdir).
	c.ProtectedGroups = entries
}

// accountMap reads ACCOUNT_MAP_FILE.
func (l *loader) accountMap(c *Config) {
	c.AccountMapFile = l.str("ACCOUNT_MAP_FILE", "")
	if c.AccountMapFile == "" {
		return
	}
	f, err := os.Open(c.AccountMapFile)
	if err != nil {
		l.problem(fmt.Sprintf("ACCOUNT_MAP_FILE: cannot read %s: %v", c.AccountMapFile, errors.Unwrap(err)))
		return
	}
	defer f.Close()
	m, problems := accounts.ParseMap(f)
	for _, p := range problems {
		l.problem(fmt.Sprintf("ACCOUNT_MAP_FILE %s: %s", c.AccountMapFile, p))
	}
	c.AccountMap = m
}

func (l *loader) boolean(name string) bool { return l.booleanOr(name, false) }

// booleanOr reads a boolean that is def when unset.
func (l *loader) booleanOr(name string, def bool) bool {
	switch v := strings.ToLower(strings.TrimSpace(l.getenv(name))); v {
	case "":
		return def
	case "false", "0", "no", "off":
		return false
	case "true", "1", "yes", "on":
		return true
	default:
		l.fail(name, fmt.Sprintf("%s %q must be true or false", name, v))
		return false
	}
}

type loader struct {
	getenv   func(string) string
	problems []string
	bad      map[string]bool
}

func (l *loader) problem(p string) { l.problems = append(l.problems, p) }

func (l *loader) fail(name, p string) {
	if l.bad == nil {
		l.bad = map[string]bool{}
	}
	l.bad[name] = true
	l.problem(p)
}

func (l *loader) failed(name string) bool { return l.bad[name] }

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

// secret reads NAME, or the file named by NAME_FILE (not both).
func (l *loader) secret(name string) string {
	v, file := strings.TrimSpace(l.getenv(name)), strings.TrimSpace(l.getenv(name+"_FILE"))
	switch {
	case v != "" && file != "":
		l.fail(name, fmt.Sprintf("set %s or %s_FILE, not both", name, name))
		return ""
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			// The path is not secret; the error from os names only the path.
			l.fail(name, fmt.Sprintf("%s_FILE: cannot read %s: %v", name, file, errors.Unwrap(err)))
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	return v
}

// parsed reads name with parse, def when unset; a value parse refuses is a
// problem that says what was expected.
func parsed[T any](l *loader, name string, def T, parse func(string) (T, error), expected string) T {
	v := strings.TrimSpace(l.getenv(name))
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		l.fail(name, fmt.Sprintf("%s %q is not %s", name, v, expected))
		var zero T
		return zero
	}
	return x
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	return parsed(l, name, def, time.ParseDuration, "a duration like 30m or 1h30m")
}

func (l *loader) positive(name string, d time.Duration) {
	if d <= 0 && !l.failed(name) {
		l.problem(fmt.Sprintf("%s must be longer than zero", name))
	}
}

func (l *loader) integer(name string, def int) int {
	return parsed(l, name, def, strconv.Atoi, "a whole number")
}

// list splits a comma-separated value, dropping blanks.
func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
