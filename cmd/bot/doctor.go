package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/config"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redis"
	"github.com/example/resetbot/workflow"
)

// doctor checks the configuration against Slack, the store and the
// directory, prints one line per check and what to fix, and fails when any
// check fails. It changes nothing.
func doctor(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stdout)
	email := fs.String("email", "", "an employee's email: find their account and apply the guards (needs LDAP_URL for the directory checks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "resetbot doctor")
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stdout, "  FAIL  configuration\n%s\n", err)
		return errors.New("doctor: the configuration is invalid")
	}
	fmt.Fprintln(stdout, "  ok    configuration")

	var failed int
	check := func(name string, fn func(ctx context.Context) (string, string, error)) {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		detail, fix, err := fn(cctx)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "  FAIL  %s: %v\n", name, err)
			if fix != "" {
				fmt.Fprintf(stdout, "        fix: %s\n", fix)
			}
			return
		}
		fmt.Fprintf(stdout, "  ok    %s: %s\n", name, detail)
	}

	b, err := build(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintf(stdout, "  FAIL  start-up: %v\n", err)
		return errors.New("doctor: the bot cannot start")
	}
	defer b.close()

	// Scopes come back in a response header of every bot-token call.
	var mu sync.Mutex
	var scopes []string
	api := slack.New(cfg.SlackBotToken.Value(), slack.OptionAPIURL(cfg.SlackAPIURL),
		slack.OptionHTTPClient(&http.Client{Timeout: 15 * time.Second}),
		slack.OptionOnResponseHeaders(func(_ string, h http.Header) {
			if v := h.Get("X-OAuth-Scopes"); v != "" {
				mu.Lock()
				scopes = nil
				for _, s := range strings.Split(v, ",") {
					scopes = append(scopes, strings.TrimSpace(s))
				}
				mu.Unlock()
			}
		}))

	check("Slack bot token (SLACK_BOT_TOKEN)", func(ctx context.Context) (string, string, error) {
		r, err := api.AuthTestContext(ctx)
		if err != nil {
			return "", "copy the Bot User OAuth Token (xoxb-...) from the app's OAuth & Permissions page; check SLACK_API_URL", err
		}
		return fmt.Sprintf("team %s, bot user %s", r.TeamID, r.UserID), "", nil
	})
	check("Slack bot scopes", func(ctx context.Context) (string, string, error) {
		mu.Lock()
		have := slices.Clone(scopes)
		mu.Unlock()
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
	})
	check("Slack app token (SLACK_APP_TOKEN)", func(ctx context.Context) (string, string, error) {
		if _, _, err := b.api.StartSocketModeContext(ctx); err != nil {
			return "", "generate an app-level token with the connections:write scope (Basic Information page) and turn on Socket Mode", err
		}
		return "a Socket Mode connection can be opened", "", nil
	})
	check("store", func(ctx context.Context) (string, string, error) {
		where := "embedded file in " + cfg.DataDir
		if cfg.RedisURL != "" {
			where = "Redis at " + redisstore.RedactURL(cfg.RedisURL.Value())
		}
		if err := b.store.Ping(ctx); err != nil {
			return "", "check REDIS_URL (host, port, password, rediss:// for TLS) and that Redis runs", err
		}
		return where, "", nil
	})
	check("directory "+cfg.DirectoryID, func(ctx context.Context) (string, string, error) {
		info, err := b.dir.Describe(ctx)
		if err != nil {
			fix := "check DIRECTORY_ID, AWS_REGION and the credentials; the IAM policy in README.md"
			if workflow.ErrorCode(err) == workflow.CodeDirectoryAccessDenied {
				fix = "allow ds:DescribeDirectories and ds:ResetUserPassword (README.md, AWS IAM policy)"
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
	})
	if b.ldap != nil {
		check("LDAP "+cfg.LDAPURL, func(ctx context.Context) (string, string, error) {
			if err := b.ldap.Check(ctx); err != nil {
				return "", "check LDAP_URL, LDAP_CA_FILE (the CA that signed the directory's certificate), LDAP_BIND_DN, LDAP_BIND_PASSWORD and LDAP_BASE_DN", err
			}
			return "TLS, bind as " + cfg.LDAPBindDN + " and base " + cfg.LDAPBaseDN + " work", "", nil
		})
	}
	if *email != "" {
		check("account of "+*email, func(ctx context.Context) (string, string, error) {
			return doctorAccount(ctx, b, *email)
		})
	}
	check("approvers (APPROVERS)", func(ctx context.Context) (string, string, error) {
		if len(cfg.Approvers)+len(cfg.ApproverGroups) == 0 {
			return "none: only managers approve, and requests without a manager on Slack are refused", "", nil
		}
		var problems []string
		people := 0
		for _, u := range cfg.Approvers {
			info, err := api.GetUserInfoContext(ctx, u)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("user %s: %v", u, err))
			case info.Deleted || info.IsBot:
				problems = append(problems, fmt.Sprintf("user %s is deactivated or a bot", u))
			default:
				people++
			}
		}
		for _, g := range cfg.ApproverGroups {
			members, err := api.GetUserGroupMembersContext(ctx, g)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("group %s: %v", g, err))
			case len(members) == 0:
				problems = append(problems, fmt.Sprintf("group %s has no members", g))
			default:
				people += len(members)
			}
		}
		if len(problems) > 0 {
			return "", "use Slack user IDs (profile -> ... -> Copy member ID) and user-group IDs (S...)", errors.New(strings.Join(problems, "; "))
		}
		return fmt.Sprintf("%d approver(s) found", people), "", nil
	})
	if failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", failed)
	}
	fmt.Fprintln(stdout, "everything looks right")
	return nil
}

// doctorAccount finds the account of the employee with email and applies
// the guards, as a request would.
func doctorAccount(ctx context.Context, b *bot, email string) (string, string, error) {
	accts := b.accounts
	acct, err := accts.Find(ctx, workflow.Person{ID: "doctor", Email: email})
	if err == nil {
		acct, err = accts.Check(ctx, acct)
	}
	if err != nil {
		return "", "a refusal here is what the employee would get; see README.md (guards)", err
	}
	detail := fmt.Sprintf("account %q", acct.UserName)
	if acct.DN != "" {
		detail += fmt.Sprintf(" (%s, %q)", acct.DN, acct.DisplayName)
	}
	if b.cfg.ManagerApproval {
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
	return detail + "; may be reset", "", nil
}
