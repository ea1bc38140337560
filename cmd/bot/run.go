package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/sync/errgroup"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/config"
	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/directory"
	"github.com/example/resetbot/ldapdir"
	"github.com/example/resetbot/metrics"
	"github.com/example/resetbot/slackapp"
	boltstore "github.com/example/resetbot/store/boltstore"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
)

// run runs the subcommand args[1] names, or the bot when there is none.
// `bot --env-file PATH ...` (or BOT_ENV_FILE) reads settings from a .env
// file beneath the environment. Its error starts with what ran ("bot: ..."
// for the bot, "bot doctor: ..." for a subcommand), so that main prints it
// as it is.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	args = args[min(1, len(args)):]
	envPath := ""
	if len(args) > 0 {
		if p, ok := strings.CutPrefix(strings.TrimLeft(args[0], "-"), "env-file="); ok && strings.HasPrefix(args[0], "-") {
			envPath, args = p, args[1:]
		} else if (args[0] == "--env-file" || args[0] == "-env-file") && len(args) > 1 {
			envPath, args = args[1], args[2:]
		}
	}
	name, rest := "run", []string(nil)
	if len(args) > 0 {
		name, rest = args[0], args[1:]
	}
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	}
	getenv, envFile, err := config.WithEnvFile(getenv, envPath)
	if err != nil {
		return prefixed("bot", err)
	}
	for _, c := range subcommands(envFile) {
		if c.name != name {
			continue
		}
		err := c.run(ctx, rest, getenv, stdout)
		switch {
		case err == nil || errors.Is(err, flag.ErrHelp):
			return nil
		case c.name == "run":
			return prefixed("bot", err)
		}
		return prefixed("bot "+c.name, err)
	}
	return prefixed("bot", fmt.Errorf("unknown subcommand %q (try: bot help)", name))
}

// subcommand is one of the bot's subcommands; each answers -h and --help
// with its own usage.
type subcommand struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error
}

// subcommands are the bot's subcommands; envFile is the .env file read
// beneath the environment, if any, for those that report it.
func subcommands(envFile *config.EnvFile) []subcommand {
	return []subcommand{
		{"run", "run the bot (the default)", func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
			return runBot(ctx, args, getenv, stdout, envFile)
		}},
		{"doctor", "check Slack, the store, the directory and LDAP, and say what to fix;\nwith --email, also find that employee's account and apply the guards", func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
			return doctor(ctx, args, getenv, stdout, envFile)
		}},
		{"audit", "export the audit log as JSON lines", func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
			return audit(ctx, args, getenv, stdout, time.Now())
		}},
		{"healthcheck", "exit 0 when the running bot's /healthz (or --url) answers 200 in 3s;\nfor a container HEALTHCHECK, since the image has no shell", healthcheck},
		{"playground", "see the bot work before you set anything up: the real bot against stand-ins of\nSlack and Directory Service, and a local web page that shows what each person sees", playgroundCommand},
	}
}

// usage prints the list of subcommands.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bot [--env-file PATH] [SUBCOMMAND] [FLAGS]")
	for _, c := range subcommands(nil) {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, strings.ReplaceAll(c.summary, "\n", "\n               "))
	}
	fmt.Fprintln(w, "`bot SUBCOMMAND -h` shows a subcommand's flags. Configuration comes from the environment, and\nfrom the .env file that --env-file or BOT_ENV_FILE names (the environment wins over it); see README.md.")
}

// prefixedError is an error with what ran in front of it.
type prefixedError struct {
	prefix string
	err    error
}

func prefixed(prefix string, err error) error { return &prefixedError{prefix, err} }

func (e *prefixedError) Error() string { return e.prefix + ": " + e.err.Error() }
func (e *prefixedError) Unwrap() error { return e.err }

// newFlags returns the flag set of a subcommand: errors and usage go to
// stdout, and -h prints usage (one line per use) and the flags.
func newFlags(name, use string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: "+use)
		fs.PrintDefaults()
	}
	return fs
}

// noArgs refuses arguments left after the flags.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (try: bot %s -h)", fs.Arg(0), fs.Name())
	}
	return nil
}

// runBot runs the bot until ctx ends.
func runBot(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, envFile *config.EnvFile) error {
	fs := newFlags("run", "bot [run]\nRuns the bot until SIGTERM or Ctrl-C. Configuration comes from the environment; see README.md.", stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if envFile != nil {
		log.Info("read settings from "+envFile.Path+"; the environment wins over it", "env_file", envFile.Path,
			"from_file", len(envFile.Vars), "overridden_by_environment", envFile.Overridden)
	}
	log.Info("starting", "config", cfg)

	b, err := build(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	applyTestHooks(b, getenv)
	if err := b.checkProtectedGroups(ctx); err != nil {
		return err
	}

	auth, err := b.api.AuthTestContext(ctx)
	if err != nil {
		if !slackRefused(err) {
			return fmt.Errorf("cannot reach Slack at %s (auth.test): %w", cfg.SlackAPIURL, err)
		}
		return tokenError("SLACK_BOT_TOKEN", botTokenFix, err)
	}
	// Only members of the bot's own workspace (or Grid organisation) count.
	b.identity.Team, b.identity.Enterprise = auth.TeamID, auth.EnterpriseID

	lis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	listeners := map[string]net.Listener{"health": lis}
	if cfg.MetricsAddr != "" {
		mlis, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			lis.Close()
			return fmt.Errorf("METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		listeners["metrics"] = mlis
		log.Info("metrics listening", "addr", mlis.Addr().String())
	}
	log.Info("health listening", "addr", lis.Addr().String(), "metrics", cfg.MetricsAddr == "")
	err = b.serve(ctx, listeners)
	if err != nil {
		log.Error("stopping: "+err.Error(), "error", err)
		return err
	}
	log.Info("stopped")
	return nil
}

// serve runs the bot's parts under one group until ctx ends or one of them
// fails for good (then the others stop too), and then gives work in flight
// SHUTDOWN_TIMEOUT to finish.
func (b *bot) serve(ctx context.Context, listeners map[string]net.Listener) error {
	g, gctx := errgroup.WithContext(ctx)
	for name, lis := range listeners {
		srv := httpServer(b.routes(name, len(listeners) == 1), defaultHTTPLimits)
		g.Go(func() error {
			if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server on %s: %w", name, lis.Addr(), err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	g.Go(func() error { b.svc.RunSweeper(gctx, b.cfg.SweepInterval); return nil })
	g.Go(func() error { b.engine.Run(gctx); return nil })
	// Replicas tell each other about Slack's 429s through the store.
	g.Go(func() error { b.gate.Follow(gctx, 10*time.Second); return nil })
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case err := <-b.fatal:
			return tokenError("SLACK_BOT_TOKEN", botTokenFix, err)
		}
	})
	g.Go(func() error {
		if err := b.app.Run(gctx); err != nil {
			return tokenError("SLACK_APP_TOKEN", appTokenFix, err)
		}
		return nil
	})
	err := g.Wait()
	// Nobody waits out Slack's Retry-After any more: the leases hand that
	// work to another replica or the next start.
	b.gate.Close()
	b.drain()
	return err
}

// httpLimits bound what one client of the health and metrics listeners may
// hold: a connection that trickles its headers or body, never reads the
// answer, or stays open idle is closed, so that a few slow clients cannot
// use up the process's connections and memory.
type httpLimits struct {
	ReadHeader time.Duration // the request line and headers
	Read       time.Duration // the whole request, body included
	Write      time.Duration // from the end of the headers to the end of the answer
	Idle       time.Duration // between requests on a kept-alive connection
}

// defaultHTTPLimits fit the listeners' few small, fast answers (/readyz
// waits at most 2 s for the store, a /metrics scrape about 1 s).
var defaultHTTPLimits = httpLimits{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 20 * time.Second, Idle: 60 * time.Second}

// httpServer returns a server for h with the limits lim.
func httpServer(h http.Handler, lim httpLimits) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: lim.ReadHeader, ReadTimeout: lim.Read,
		WriteTimeout: lim.Write, IdleTimeout: lim.Idle, MaxHeaderBytes: 16 << 10}
}

// drain waits up to SHUTDOWN_TIMEOUT for handlers and background work in
// flight, then stops what is left: its leases let another replica, or the
// next start, take it over.
func (b *bot) drain() {
	done := make(chan struct{})
	deadline := time.Now().Add(b.cfg.ShutdownTimeout)
	go func() {
		b.app.Wait()
		b.svc.Wait()
		b.engine.Wait()
		// The notice emails queued by now get what is left of the time.
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		b.notices.close(ctx)
		cancel()
		close(done)
	}()
	t := time.NewTimer(b.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	b.log.Warn("work still in flight at SHUTDOWN_TIMEOUT; stopping it (its leases let another replica or the next start finish it)", "shutdown_timeout", b.cfg.ShutdownTimeout.String())
	b.app.Stop()
	b.svc.Stop()
	b.engine.Stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		b.log.Error("work did not stop within 5s of being told to")
	}
}

// Where each Slack token comes from, for the fix line of its refusal.
const (
	botTokenFix = "the Bot User OAuth Token (xoxb-...) on the app's OAuth & Permissions page; reinstall the app if it was revoked"
	appTokenFix = "an app-level token (xapp-...) with connections:write on the app's Basic Information page"
)

// tokenError describes err from Slack; a refused token says which one and
// what to do, never the token.
func tokenError(name, where string, err error) error {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) || slices.Contains([]string{"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}, err.Error()) {
		code := cmp.Or(se.Err, err.Error())
		return fmt.Errorf("Slack refused %s (%s): set %s to %s, then start the bot again", name, code, name, where)
	}
	return fmt.Errorf("Slack (%s): %w", name, err)
}

// bot is the wired application.
type bot struct {
	cfg       *config.Config
	log       *slog.Logger
	api       *slack.Client
	app       *slackapp.App
	svc       *workflow.Service
	engine    *delivery.Engine // chat delivery: the lanes' workers
	store     workflow.Store
	lanes     delivery.Store
	dir       *directory.Client
	ldap      *ldapdir.Client // nil without LDAP_URL
	gate      *slackapp.Gate
	socket    *socketmode.Client
	watch     *slackapp.ConnWatch // why the last Socket Mode connection ended
	http      *http.Client        // for response_url posts and the Slack Web API
	identity  *slackapp.Identity
	approvers *slackapp.StaticApprovers
	helpdesk  workflow.Helpdesk  // HELPDESK; nil when unset: nobody asks on another's behalf
	fatal     chan error         // a Slack token refused for good
	throttles slackapp.Throttles // shared Retry-After windows; nil for the embedded store
	accounts  *accounts.Accounts
	notices   *ownerNotices // nil without SMTP_URL
	metrics   *metrics.Metrics
	closers   []func() error
}

func (b *bot) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
}

// build wires the application from cfg. It connects to nothing but the
// store.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger) (*bot, error) {
	b := &bot{cfg: cfg, log: log, metrics: metrics.New()}
	if err := b.openStore(); err != nil {
		return nil, err
	}
	steps := []func(context.Context) error{b.openDirectory, b.openSlack, func(context.Context) error {
		var err error
		b.accounts, err = b.openAccounts()
		return err
	}}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			b.close()
			return nil, err
		}
	}
	notices, err := newOwnerNotices(cfg, b.accounts, b.ldap != nil, b.identity, log.With("component", "mail"))
	if err != nil {
		b.close()
		return nil, err
	}
	b.notices = notices
	owner := workflow.NewID() // this replica, in leases
	lanes := &slackapp.Lanes{API: b.api, HTTP: b.http, AuditChannel: cfg.AuditChannel, Requests: b.store,
		Gate: b.gate, Log: log.With("component", "delivery"),
		Helpdesk: slices.Concat(cfg.Helpdesk, cfg.HelpdeskGroups), Recent: b.store}
	if len(cfg.Helpdesk)+len(cfg.HelpdeskGroups) > 0 {
		helpdesk := &slackapp.StaticApprovers{API: b.api, Users: cfg.Helpdesk, Groups: cfg.HelpdeskGroups,
			Log: log.With("component", "helpdesk"), Gate: b.gate}
		lanes.IsHelpdesk = helpdesk.Includes
	}
	b.engine = delivery.New(b.lanes, lanes, delivery.Config{Owner: owner, Lease: cfg.WorkLease, Poll: cfg.SweepInterval},
		nil, log.With("component", "delivery"))
	b.engine.OnTampered = b.laneTampered
	deps := workflow.Deps{
		Store:     b.store,
		Directory: b.dir,
		Passwords: directory.NewPasswords(),
		Identity:  b.identity,
		Accounts:  b.accounts,
		Approvers: b.approvers,
		Helpdesk:  b.helpdesk,
		Notifier:  lanes,
		Watcher:   b.engine,
		Metrics:   b.metrics,
		Log:       log.With("component", "workflow"),
	}
	if b.ldap != nil {
		deps.Facts = b.accounts // the sign-in facts the approvers see
	}
	if cfg.ReportDisables {
		deps.Disabler = b.accounts
	}
	if notices != nil {
		deps.Notices = notices
	}
	b.svc = workflow.New(workflow.Config{
		DirectoryID:        cfg.DirectoryID,
		RequestTTL:         cfg.RequestTTL,
		RevealTTL:          cfg.RevealTTL,
		Limit:              workflow.Limit{Max: cfg.RequestLimit, Window: cfg.RequestWindow},
		ManagerApproval:    cfg.ManagerApproval,
		ForceChangeAtLogon: cfg.ForceChange,
		Owner:              owner,
		ResetLease:         cfg.WorkLease,
		RemindAfter:        cfg.RemindAfter,
		EscalateAfter:      cfg.EscalateAfter,
		RequireReason:      cfg.RequireReason,
		WorkHours:          cfg.WorkHours,
		Unlock:             cfg.LDAPURL != "",
		UnlockApproval:     cfg.UnlockApproval,
		UnlockLimit:        workflow.Limit{Max: cfg.UnlockLimit, Window: cfg.RequestWindow},
		HelpdeskApproves:   cfg.HelpdeskApproves,
		HelpdeskDelivery:   cfg.HelpdeskDelivery,
	}, deps)
	if notices != nil {
		notices.svc = b.svc
	}
	lanes.OnTampered = b.svc.ReportTampered
	b.app = &slackapp.App{API: b.api, Socket: b.socket, Flows: b.svc, Claims: b.store, Replies: b.engine, Gate: b.gate,
		HTTP: b.http, Log: log.With("component", "slack"), OnConnect: b.metrics.Connected, Watch: b.watch,
		AskReason: cfg.RequireReason, Homes: b.engine}
	b.gauges()
	return b, nil
}

// openDirectory makes the Directory Service client; it calls nothing.
func (b *bot) openDirectory(ctx context.Context) error {
	cfg := b.cfg
	dir, err := directory.New(ctx, directory.Options{
		DirectoryID:     cfg.DirectoryID,
		Region:          cfg.AWSRegion,
		Endpoint:        cfg.AWSEndpoint,
		AccessKeyID:     cfg.AWSAccessKey,
		SecretAccessKey: cfg.AWSSecretKey.Value(),
		SessionToken:    cfg.AWSSession.Value(),
		MaxAttempts:     cfg.AWSAttempts,
		Log:             b.log.With("component", "aws-sdk"),
	})
	if err != nil {
		return fmt.Errorf("AWS Directory Service client: %w", err)
	}
	b.dir = dir
	return nil
}

// openSlack makes the Slack clients, the gate every call goes through, and
// the identity and approver lookups; it calls nothing.
func (b *bot) openSlack(context.Context) error {
	cfg := b.cfg
	b.http = &http.Client{Timeout: 20 * time.Second}
	// slack-go logs only at debug level, and only what Slack sent us; its
	// own debug mode (which would print requests) stays off at every level.
	slackLog := slog.NewLogLogger(b.log.With("component", "slack-go").Handler(), slog.LevelDebug)
	b.api = slack.New(cfg.SlackBotToken.Value(),
		slack.OptionAPIURL(cfg.SlackAPIURL),
		slack.OptionAppLevelToken(cfg.SlackAppToken.Value()),
		slack.OptionHTTPClient(b.http),
		slack.OptionLog(slackLog),
	)
	b.watch = &slackapp.ConnWatch{}
	b.socket = socketmode.New(b.api, socketmode.OptionLog(slackLog), socketmode.OptionDialer(b.watch.Dialer()))
	// Every Slack call goes through one gate, which waits out 429s per key
	// and lets the most urgent call go first; slack-go itself does not
	// retry.
	b.gate = slackapp.NewGate()
	b.gate.Shared = b.throttles
	b.fatal = make(chan error, 1)
	b.gate.Observe = b.metrics.SlackCall
	b.gate.Log = b.log.With("component", "gate")
	b.gate.OnFatal = func(err error) {
		select {
		case b.fatal <- err:
		default:
		}
	}
	b.identity = &slackapp.Identity{API: b.api, Domains: cfg.EmailDomains, Gate: b.gate,
		RosterPages: slackapp.RosterPages, Log: b.log.With("component", "identity")}
	b.approvers = &slackapp.StaticApprovers{API: b.api, Users: cfg.Approvers, Groups: cfg.ApproverGroups,
		Log: b.log.With("component", "approvers"), Gate: b.gate}
	if len(cfg.Helpdesk)+len(cfg.HelpdeskGroups) > 0 {
		b.helpdesk = &slackapp.StaticApprovers{API: b.api, Users: cfg.Helpdesk, Groups: cfg.HelpdeskGroups,
			Log: b.log.With("component", "helpdesk"), Gate: b.gate}
	}
	return nil
}

// openAccounts returns the account finder and guards, over LDAP when
// LDAP_URL is set. It does not dial.
func (b *bot) openAccounts() (*accounts.Accounts, error) {
	cfg := b.cfg
	opts := accounts.Options{ProtectedUsers: cfg.ProtectedUsers, Map: cfg.AccountMap, RefuseAdminCount: cfg.RefuseAdminCount}
	if cfg.LDAPURL == "" {
		b.log.Warn("ALLOW_UNCHECKED_ACCOUNTS=true and no LDAP_URL: the account is the Slack email's local part, and disabled accounts and protected groups are not checked (every audit line says so)")
		return accounts.New(opts), nil
	}
	if cfg.LDAPInsecure {
		b.log.Warn(ldapPlainText)
	}
	lopts := cfg.LDAPOptions()
	lopts.Log = b.log.With("component", "ldap")
	client, err := ldapdir.New(lopts)
	if err != nil {
		return nil, fmt.Errorf("LDAP: %w", err)
	}
	b.closers = append(b.closers, client.Close)
	b.ldap = client
	opts.Lookup = client
	return accounts.New(opts), nil
}

// ldapPlainText is what every start (and doctor) says when LDAP_INSECURE
// is set.
const ldapPlainText = "LDAP_INSECURE=true: LDAP runs in plain text: the bind password and every directory lookup cross the network unencrypted, and anyone on the path can read or change the answers the guards rely on; use ldaps:// or StartTLS (unset LDAP_INSECURE) outside a lab"

// checkProtectedGroups resolves the protected groups once at start-up, so
// that a PROTECTED_GROUPS entry that matches no group (a typo, a renamed
// group) stops the bot instead of protecting nobody. When LDAP cannot be
// reached now, the bot starts anyway: every check resolves the groups
// again and refuses while one does not resolve.
func (b *bot) checkProtectedGroups(ctx context.Context) error {
	if b.ldap == nil {
		return nil
	}
	set, err := b.ldap.ProtectedGroups(ctx)
	if workflow.ErrorCode(err) == workflow.CodeLookupUnavailable {
		b.log.Error("LDAP could not be asked for the protected groups at start-up; requests are answered \"try again\" until it can, and refused while a PROTECTED_GROUPS entry does not resolve", "error", err)
		return nil
	}
	if err == nil {
		err = set.Err()
	}
	if err != nil {
		return fmt.Errorf("protected groups: %w", err)
	}
	b.log.Info("protected groups resolved", "groups", len(set.Groups), "domain", set.DefaultNamingContext, "domain_sid", set.DomainSID)
	return nil
}

// laneTampered audits a chat delivery record that failed verification: it
// was moved aside, and the lane starts again from what the request says.
func (b *bot) laneTampered(l delivery.Lane, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rec := workflow.AuditRecord{At: time.Now(), Event: workflow.EventTampered, Code: workflow.CodeTampered,
		Detail:      "stored chat delivery record " + l.String() + " failed its signature check (" + err.Error() + "); it was moved aside and not used",
		DirectoryID: b.cfg.DirectoryID}
	rec.RequestID = l.Request()
	if aerr := b.store.Refused(ctx, rec, workflow.Limit{}); aerr != nil {
		b.log.Error("could not write a tampered chat delivery record to the audit log", "lane", l.String(), "error", aerr)
	}
}

// gauges registers the metrics read at each scrape.
func (b *bot) gauges() {
	b.metrics.Gauge("resetbot_requests_open", "Requests with a deadline the sweeper watches: the open ones.", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := b.store.Watched(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	b.metrics.Gauge("resetbot_chat_calls_waiting", "Slack calls waiting for a key's Retry-After, and chat lanes parked on one.", func() float64 {
		return float64(b.gate.Waiting())
	})
	b.metrics.Gauge("resetbot_chat_lanes_pending", "Chat delivery lanes queued, running or waiting for a rate-limited key in this replica.", func() float64 {
		return float64(b.engine.Pending())
	})
}

// openStore opens Redis when REDIS_URL is set, else the embedded store.
func (b *bot) openStore() error {
	st, err := openStore(b.cfg.Store, b.cfg.SealKey())
	if err != nil {
		return err
	}
	b.closers = append(b.closers, st.close)
	b.store, b.lanes, b.throttles = st.Store, st.lanes, st.throttles
	return nil
}

// openedStore is a store and what else comes with it.
type openedStore struct {
	workflow.Store
	lanes     delivery.Store     // the chat delivery's records, in the same store
	throttles slackapp.Throttles // nil for the embedded store
	close     func() error
}

// openStore opens the store sc describes, which seals requests with key
// (the zero key: the store serves only its audit log).
func openStore(sc config.Store, key seal.Key) (openedStore, error) {
	if u := sc.RedisURL.Value(); u != "" {
		client, err := redisstore.Dial(u)
		if err != nil {
			return openedStore{}, fmt.Errorf("REDIS_URL: %w", err)
		}
		rs := redisstore.New(client, sc.RedisPrefix, key, redisstore.WithAuditRetention(sc.AuditRetention))
		return openedStore{Store: rs, lanes: rs, throttles: rs, close: client.Close}, nil
	}
	if err := os.MkdirAll(sc.DataDir, 0o700); err != nil {
		return openedStore{}, fmt.Errorf("DATA_DIR: %w", err)
	}
	s, err := boltstore.Open(filepath.Join(sc.DataDir, "resetbot.db"), key, boltstore.WithAuditRetention(sc.AuditRetention))
	if err != nil {
		return openedStore{}, fmt.Errorf("embedded store in DATA_DIR %s: %w", sc.DataDir, err)
	}
	return openedStore{Store: s, lanes: s, close: s.Close}, nil
}

// routes serves the listener name: "health" (health, readiness, and the
// metrics too when they have no listener of their own) or "metrics".
func (b *bot) routes(name string, withMetrics bool) http.Handler {
	mux := http.NewServeMux()
	if name == "metrics" || withMetrics {
		mux.Handle("GET /metrics", b.metrics.Handler())
	}
	if name == "metrics" {
		return mux
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", b.readyz)
	return mux
}

// readyz answers 200 when the store answers and Socket Mode is connected,
// else 503 with a short reason per problem. Whoever can reach the
// listener reads the answer, so the error itself (addresses, a server's
// words) goes only to the log.
func (b *bot) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if err := b.store.Ping(ctx); err != nil {
		problems = append(problems, "store unavailable")
		b.log.Warn("not ready: the store does not answer", "error", err)
	}
	if !b.app.Connected() {
		problems = append(problems, "slack not connected")
		b.log.Warn("not ready: Socket Mode is not connected")
	}
	if len(problems) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, p := range problems {
			fmt.Fprintln(w, p)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}
