package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/config"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// doctor checks the configuration against Slack, the store, the directory
// and LDAP, prints one line per check and what to fix, and fails when any
// check fails. A check whose prerequisite failed is skipped, not failed, so
// that one cause gives one failure. It changes nothing.
func doctor(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, envFile *config.EnvFile) error {
	fs := newFlags("doctor", "bot doctor [--email EMAIL]\nChecks the configuration against Slack, the store, the directory and LDAP, changes nothing,\nand says what to fix. Exits 0 when every check passed.", stdout)
	email := fs.String("email", "", "an employee's email: find their account and apply the guards (needs LDAP_URL for the directory checks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "resetbot doctor")
	if envFile != nil {
		fmt.Fprintf(stdout, "  ok    settings file %s\n", envFile)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stdout, "  FAIL  configuration\n%s\n", err)
		return errors.New("the configuration is invalid")
	}
	fmt.Fprintln(stdout, "  ok    configuration")
	warnings := 0
	if cfg.UncheckedAccounts {
		fmt.Fprintln(stdout, "  WARN  no LDAP (ALLOW_UNCHECKED_ACCOUNTS=true): accounts are not checked against the directory; a disabled account would be enabled again by a reset, and administrators are not refused")
		warnings++
	}
	if cfg.LDAPURL != "" && cfg.LDAPInsecure {
		fmt.Fprintln(stdout, "  WARN  "+ldapPlainText)
		warnings++
	}
	b, err := build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stdout, "  FAIL  start-up: %v\n", err)
		return errors.New("the bot cannot start")
	}
	defer b.close()

	d := &doctorRun{b: b, cfg: cfg, email: *email, out: stdout, results: map[string]bool{}}
	d.api = d.scopeWatchingClient()
	for _, c := range d.checks() {
		d.run(ctx, c)
	}
	if d.failed > 0 {
		return fmt.Errorf("%d check(s) failed", d.failed)
	}
	if warnings > 0 {
		fmt.Fprintln(stdout, "everything works, but read the warnings above")
		return nil
	}
	fmt.Fprintln(stdout, "everything looks right")
	return nil
}

// doctorRun is one run of doctor.
type doctorRun struct {
	b       *bot
	cfg     *config.Config
	email   string
	out     io.Writer
	api     *slack.Client // reports the token's scopes
	results map[string]bool
	failed  int

	mu     sync.Mutex
	scopes []string
}

// doctorCheck is one named check; it runs only when the checks it needs
// passed.
type doctorCheck struct {
	name  string
	needs []string
	run   func(ctx context.Context) (detail, fix string, err error)
}

// The names of the checks others depend on.
const (
	checkBotToken = "Slack bot token (SLACK_BOT_TOKEN)"
	checkLDAP     = "LDAP"
)

func (d *doctorRun) checks() []doctorCheck {
	cs := []doctorCheck{
		{checkBotToken, nil, d.botToken},
		{"Slack bot scopes", []string{checkBotToken}, d.botScopes},
		{"Slack app token (SLACK_APP_TOKEN)", nil, d.appToken},
		{"store", nil, d.store},
		{"directory " + d.cfg.DirectoryID, nil, d.directory},
	}
	if d.b.ldap != nil {
		cs = append(cs, doctorCheck{checkLDAP, nil, d.ldap},
			doctorCheck{"protected groups", []string{checkLDAP}, d.protectedGroups})
	}
	if d.email != "" {
		var needs []string
		if d.b.ldap != nil {
			needs = []string{checkLDAP}
		}
		cs = append(cs, doctorCheck{"account of " + d.email, needs, d.account})
	}
	cs = append(cs, doctorCheck{"approvers (APPROVERS)", []string{checkBotToken}, d.approvers})
	if len(d.cfg.Helpdesk)+len(d.cfg.HelpdeskGroups) > 0 {
		cs = append(cs, doctorCheck{"helpdesk (HELPDESK)", []string{checkBotToken}, d.helpdesk})
	}
	return append(cs,
		doctorCheck{"audit channel (AUDIT_CHANNEL)", []string{checkBotToken}, d.auditChannel})
}

// run runs c, or skips it when a check it needs failed, and prints the
// outcome.
func (d *doctorRun) run(ctx context.Context, c doctorCheck) {
	for _, n := range c.needs {
		if !d.results[n] {
			fmt.Fprintf(d.out, "  skip  %s: needs %s, which failed\n", c.name, n)
			return
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	detail, fix, err := c.run(cctx)
	d.results[c.name] = err == nil
	if err != nil {
		d.failed++
		fmt.Fprintf(d.out, "  FAIL  %s: %v\n", c.name, err)
		if fix != "" {
			fmt.Fprintf(d.out, "        fix: %s\n", fix)
		}
		return
	}
	fmt.Fprintf(d.out, "  ok    %s: %s\n", c.name, detail)
}

// scopeWatchingClient is a Slack client that keeps the scopes Slack
// reports in a response header of every bot-token call.
func (d *doctorRun) scopeWatchingClient() *slack.Client {
	return slack.New(d.cfg.SlackBotToken.Value(), slack.OptionAPIURL(d.cfg.SlackAPIURL),
		slack.OptionHTTPClient(&http.Client{Timeout: 15 * time.Second}),
		slack.OptionOnResponseHeaders(func(_ string, h http.Header) {
			if v := h.Get("X-OAuth-Scopes"); v != "" {
				d.mu.Lock()
				defer d.mu.Unlock()
				d.scopes = nil
				for _, s := range strings.Split(v, ",") {
					d.scopes = append(d.scopes, strings.TrimSpace(s))
				}
			}
		}))
}

func (d *doctorRun) botToken(ctx context.Context) (string, string, error) {
	r, err := d.api.AuthTestContext(ctx)
	if err != nil {
		if !slackRefused(err) {
			return "", "check SLACK_API_URL, DNS and the network path (proxy, firewall) to Slack", fmt.Errorf("cannot reach Slack at %s: %w", d.cfg.SlackAPIURL, err)
		}
		return "", "copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page", err
	}
	// The approvers' check tells members of this workspace from others.
	d.b.identity.Team, d.b.identity.Enterprise = r.TeamID, r.EnterpriseID
	return fmt.Sprintf("team %s, bot user %s", r.TeamID, r.UserID), "", nil
}

func (d *doctorRun) botScopes(context.Context) (string, string, error) {
	d.mu.Lock()
	have := slices.Clone(d.scopes)
	d.mu.Unlock()
	var missing []string
	for _, s := range slackapp.RequiredScopes {
		if !slices.Contains(have, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return "", "create the app from manifest.yaml (or add these scopes under OAuth & Permissions) and reinstall it", fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return strings.Join(slackapp.RequiredScopes, ", "), "", nil
}

func (d *doctorRun) appToken(ctx context.Context) (string, string, error) {
	if _, _, err := d.b.api.StartSocketModeContext(ctx); err != nil {
		if !slackRefused(err) {
			return "", "check SLACK_API_URL, DNS and the network path to Slack", fmt.Errorf("cannot reach Slack at %s: %w", d.cfg.SlackAPIURL, err)
		}
		return "", "generate an app-level token with the connections:write scope (Basic Information page) and turn on Socket Mode", err
	}
	return "a Socket Mode connection can be opened", "", nil
}

func (d *doctorRun) store(ctx context.Context) (string, string, error) {
	where := "embedded file in " + d.cfg.DataDir
	if d.cfg.RedisURL != "" {
		where = "Redis at " + redisstore.RedactURL(d.cfg.RedisURL.Value())
	}
	if err := d.b.store.Ping(ctx); err != nil {
		return "", "check REDIS_URL (host, port, password, rediss:// for TLS) and that Redis runs", err
	}
	return where, "", nil
}

func (d *doctorRun) directory(ctx context.Context) (string, string, error) {
	info, err := d.b.dir.Describe(ctx)
	if err != nil {
		fix := "check DIRECTORY_ID, AWS_REGION and the credentials; the IAM policy in README.md"
		switch {
		case strings.Contains(err.Error(), "no usable AWS credentials"):
			fix = "no AWS credentials found: give the bot an IAM role (instance, task or IRSA), AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		case workflow.ErrorCode(err) == workflow.CodeDirectoryAccessDenied:
			fix = "the credentials work but IAM denies the call: allow ds:DescribeDirectories and ds:ResetUserPassword (README.md, AWS IAM policy)"
		case workflow.ErrorCode(err) == workflow.CodeDirectoryUnavailable:
			fix = "check AWS_REGION, AWS_ENDPOINT_URL_DIRECTORY_SERVICE, DNS and the network path (VPC endpoint, proxy) to Directory Service"
		}
		return "", fix, err
	}
	if info.Type != "SimpleAD" && info.Type != "MicrosoftAD" {
		return "", "ResetUserPassword works only on Managed Microsoft AD and Simple AD", fmt.Errorf("type %s is not supported", info.Type)
	}
	if info.Stage != "Active" {
		return "", "wait until the directory is Active, or check it in the AWS console", fmt.Errorf("directory stage is %s", info.Stage)
	}
	return fmt.Sprintf("%s (%s, NetBIOS %s, %s)", info.Name, info.Type, info.ShortName, info.Stage), "", nil
}

func (d *doctorRun) ldap(ctx context.Context) (string, string, error) {
	if err := d.b.ldap.Check(ctx); err != nil {
		return "", "check LDAP_URL, LDAP_CA_FILE (the CA that signed the directory's certificate), LDAP_BIND_DN, LDAP_BIND_PASSWORD and LDAP_BASE_DN", err
	}
	transport := "TLS"
	if d.cfg.LDAPInsecure {
		transport = "PLAIN TEXT (LDAP_INSECURE=true, not encrypted)"
	}
	return fmt.Sprintf("%s: %s, bind as %s and base %s work", d.cfg.LDAPURL, transport, d.cfg.LDAPBindDN, d.cfg.LDAPBaseDN), "", nil
}

// protectedGroups lists the groups whose members are never reset, as the
// bot resolved them (name, SID, DN), and fails when a PROTECTED_GROUPS
// entry matches no group: the bot would not start.
func (d *doctorRun) protectedGroups(ctx context.Context) (string, string, error) {
	set, err := d.b.ldap.ProtectedGroups(ctx)
	if err == nil {
		err = set.Err()
	}
	if err != nil {
		return "", "fix or remove the PROTECTED_GROUPS entries named (a cn or sAMAccountName, a DN, or a SID; separate entries with ; when one is a DN), and let LDAP_BIND_DN read objectSid of the domain and its groups", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d groups, searched in %s (domain SID %s", len(set.Groups), set.DefaultNamingContext, set.DomainSID)
	if set.RootDomainSID != set.DomainSID {
		fmt.Fprintf(&b, ", forest root SID %s", set.RootDomainSID)
	}
	b.WriteString("); membership through tokenGroups")
	aws := 0
	for _, g := range set.Groups {
		if g.Source == accounts.SourceAWSDelegated {
			aws++
		}
	}
	if aws == 0 {
		b.WriteString("; no AWS delegated group found (right on Simple AD; on Managed Microsoft AD, LDAP_BIND_DN must be able to read OU=AWS Delegated Groups)")
	}
	for _, g := range set.Groups {
		where := g.DN
		if where == "" {
			where = "no object"
		}
		fmt.Fprintf(&b, "\n          %s: %s, %s, %s", g.Source, g.Name, g.SID, where)
	}
	return b.String(), "", nil
}

// account finds the account of the employee with the given email and
// applies the guards, as a request would, and says which check decided:
// the refusal, or every check passed.
func (d *doctorRun) account(ctx context.Context) (string, string, error) {
	accts := d.b.accounts
	acct, err := accts.Find(ctx, workflow.Person{ID: "doctor", Email: d.email})
	var passed []string
	if err == nil {
		acct, passed, err = accts.CheckSteps(ctx, acct)
	}
	if err != nil {
		if code := workflow.ErrorCode(err); code != workflow.CodeLookupUnavailable && code != workflow.CodeInternal {
			err = fmt.Errorf("refused (%s): %w", code, err)
		}
		return "", "a refusal here is what the employee would get; see README.md (guards)", err
	}
	detail := fmt.Sprintf("account %q", acct.UserName)
	if acct.DN != "" {
		detail += fmt.Sprintf(" (%s, %q, objectGUID %s)", acct.DN, acct.DisplayName, acct.GUID)
	}
	if d.cfg.ManagerApproval {
		m, ok, err := accts.Manager(ctx, acct)
		switch {
		case err != nil:
			return "", "", err
		case !ok:
			detail += "; no manager in the directory: APPROVERS are asked"
		default:
			detail += fmt.Sprintf("; manager %q <%s>, disabled %v", m.UserName, m.Email, m.Disabled)
		}
	}
	return detail + "; may be reset: " + strings.Join(passed, ", ") + ": checks passed", "", nil
}

// approvers looks the configured approvers up as requests do.
func (d *doctorRun) approvers(ctx context.Context) (string, string, error) {
	if len(d.cfg.Approvers)+len(d.cfg.ApproverGroups) == 0 {
		return "none: only managers approve, and requests without a manager on Slack are refused", "", nil
	}
	n, problems := d.b.approvers.Check(ctx, d.b.identity)
	if len(problems) > 0 {
		return "", "use Slack user IDs (profile -> ... -> Copy member ID) and user-group IDs (S...)", errors.New(strings.Join(problems, "; "))
	}
	return fmt.Sprintf("%d approver(s) found", n), "", nil
}

// helpdesk looks the helpdesk members (HELPDESK) up as approvers are.
func (d *doctorRun) helpdesk(ctx context.Context) (string, string, error) {
	list, ok := d.b.helpdesk.(*slackapp.StaticApprovers)
	if !ok {
		return "", "", errors.New("HELPDESK is set but was not wired")
	}
	n, problems := list.Check(ctx, d.b.identity)
	if len(problems) > 0 {
		return "", "use Slack user IDs (profile -> ... -> Copy member ID) and user-group IDs (S...)", errors.New(strings.Join(problems, "; "))
	}
	return fmt.Sprintf("%d member(s) may ask on an employee's behalf", n), "", nil
}

// auditChannel checks that the bot may post in AUDIT_CHANNEL: Slack shows
// it the channel, the bot is a member, and the channel takes posts. A
// channel that refuses the bot's posts leaves the audit trail silently
// missing (the bot logs each refusal and goes on).
func (d *doctorRun) auditChannel(ctx context.Context) (string, string, error) {
	id := d.cfg.AuditChannel
	if id == "" {
		return "not set: no audit trail in Slack (the audit log in the store is kept; see bot audit)", "", nil
	}
	invite := "in Slack, open the channel and type /invite @Password Reset (the app's name), or pick a channel the bot is in"
	c, err := d.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil {
		var se slack.SlackErrorResponse
		errors.As(err, &se)
		switch se.Err {
		case "channel_not_found":
			return "", invite + "; check the ID (channel details, at the bottom)",
				fmt.Errorf("Slack shows the bot no channel %s: it does not exist, or it is private and the bot is not a member", id)
		case "missing_scope":
			return "", "create the app from manifest.yaml (channels:read and groups:read) or add those scopes under OAuth & Permissions, and reinstall it", err
		}
		if !slackRefused(err) {
			return "", "check SLACK_API_URL, DNS and the network path to Slack", fmt.Errorf("cannot reach Slack at %s: %w", d.cfg.SlackAPIURL, err)
		}
		return "", "", err
	}
	name := "#" + c.Name
	switch {
	case c.IsIM || c.IsMpIM:
		return "", "use a channel that helpdesk reads", fmt.Errorf("%s is a direct message, not a channel", id)
	case c.IsArchived:
		return "", "unarchive the channel, or pick another one", fmt.Errorf("%s (%s) is archived", name, id)
	case !c.IsMember:
		return "", invite, fmt.Errorf("the bot is not a member of %s (%s), so its posts there would be refused and the audit trail would be missing", name, id)
	case c.IsReadOnly:
		return "", "allow members to post in the channel's settings, or pick another channel", fmt.Errorf("%s (%s) is read-only", name, id)
	case c.IsExtShared:
		return "", "use a channel of your own organization", fmt.Errorf("%s (%s) is shared with another organization (Slack Connect): the audit trail would be read outside", name, id)
	}
	kind := "public"
	if c.IsPrivate {
		kind = "private"
	}
	return fmt.Sprintf("%s (%s, %s): the bot is a member and may post there", name, id, kind), "", nil
}

// slackRefused reports whether Slack itself answered err (a refusal), as
// opposed to a network failure on the way.
func slackRefused(err error) bool {
	var se slack.SlackErrorResponse
	var sc slack.StatusCodeError
	return errors.As(err, &se) || errors.As(err, &sc)
}
