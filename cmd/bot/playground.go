package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/example/resetbot/internal/dotenv"
	"github.com/example/resetbot/internal/dstest"
	"github.com/example/resetbot/internal/playground"
	"github.com/example/resetbot/internal/slacktest"
)

// The playground's world: its directory, its audit channel and the
// people the visitor may act as.
const (
	playDirectory    = "d-5a1e5a1e5a"
	playAuditChannel = "C0AUDIT"
	playHelpdesk     = "S0HELPDESK"
)

// playPeople are the sample people: Slack users, with the directory
// account each email leads to.
var playPeople = []struct {
	playground.Person
	account string
}{
	{playground.Person{ID: "UALICE", RealName: "Alice Smith", Email: "alice@corp.example.com", Role: "employee"}, "alice"},
	{playground.Person{ID: "UDAVE", RealName: "Dave Black", Email: "dave@corp.example.com", Role: "employee"}, "dave"},
	{playground.Person{ID: "UBOB", RealName: "Bob Jones", Email: "bob@corp.example.com", Role: "approver (APPROVERS)"}, "bob"},
	{playground.Person{ID: "UCAROL", RealName: "Carol White", Email: "carol@corp.example.com", Role: "approver (helpdesk group)"}, "carol"},
	{playground.Person{ID: "UADMIN", RealName: "Administrator", Email: "administrator@corp.example.com", Role: "a protected account"}, "administrator"},
	{playground.Person{ID: "UEVE", RealName: "Eve Outsider", Email: "eve@gmail.com", Role: "email outside ALLOWED_EMAIL_DOMAINS"}, ""},
}

// sambaPeople are the seeded Samba AD accounts shown with --samba, each a
// guard's case (scripts/samba.sh seeds them).
var sambaPeople = []struct {
	playground.Person
	account string
}{
	{playground.Person{ID: "UDISABLED", RealName: "disabled1", Email: "disabled1@corp.example.com", Role: "a disabled AD account"}, "disabled1"},
	{playground.Person{ID: "UDADMIN", RealName: "dadmin", Email: "dadmin@corp.example.com", Role: "a member of Domain Admins"}, "dadmin"},
	{playground.Person{ID: "UNESTED", RealName: "nested1", Email: "nested1@corp.example.com", Role: "Domain Admins through a nested group"}, "nested1"},
	{playground.Person{ID: "UOUTSIDER", RealName: "outsider", Email: "outsider@corp.example.com", Role: "outside ALLOWED_OUS"}, "outsider"},
}

// playgroundOptions configure startPlayground.
type playgroundOptions struct {
	Addr     string // the page's listener; loopback only
	SambaEnv string // the env file of a Samba AD (scripts/samba.sh); "" for none
	Log      io.Writer
}

// playgroundWorld is a running playground: the stand-ins, the bot and the
// page.
type playgroundWorld struct {
	URL     string
	slack   *slacktest.Server
	ds      *dstest.Server
	dataDir string
	web     *http.Server
	stopBot context.CancelFunc
	botDone chan error
}

// playgroundCommand runs `bot playground` until ctx ends.
func playgroundCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("playground", "bot playground [--addr 127.0.0.1:8088] [--samba]\n"+
		"Runs the real bot against stand-ins of Slack and AWS Directory Service, with the embedded store in a\n"+
		"temporary directory, and serves a page on this machine that shows what each person sees and lets you\n"+
		"act as them. Nothing real is touched. Needs no configuration.", stdout)
	addr := fs.String("addr", "127.0.0.1:8088", "where the page listens; a loopback address only")
	samba := fs.Bool("samba", false, "look accounts up in the Samba AD of the tests (scripts/samba.sh start DIR, then SAMBA_ENV_FILE=DIR/env) to see the directory guards")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	o := playgroundOptions{Addr: *addr, Log: stdout}
	if *samba {
		o.SambaEnv = getenv("SAMBA_ENV_FILE")
		if o.SambaEnv == "" {
			return errors.New("--samba needs SAMBA_ENV_FILE: start one with scripts/samba.sh start /tmp/resetbot-samba (about 10 s), then SAMBA_ENV_FILE=/tmp/resetbot-samba/env")
		}
	}
	pg, err := startPlayground(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "resetbot playground: open %s\nNothing real is touched: Slack and Directory Service are stand-ins in this process, the store is a temporary file.\nThe bot's log follows. Ctrl-C stops it all.\n", pg.URL)
	<-ctx.Done()
	return pg.stop()
}

// startPlayground starts the stand-ins, the bot (run itself, with its own
// settings) and the page.
func startPlayground(ctx context.Context, o playgroundOptions) (pg *playgroundWorld, err error) {
	host, _, err := net.SplitHostPort(o.Addr)
	if ip := net.ParseIP(host); err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("--addr %q: the playground listens on a loopback address only, like 127.0.0.1:8088", o.Addr)
	}
	lis, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %s: %w", o.Addr, err)
	}
	world := &playgroundWorld{URL: "http://" + lis.Addr().String() + "/", slack: slacktest.New(), ds: dstest.New(playDirectory)}
	pg = world
	defer func() {
		if err != nil {
			lis.Close()
			world.stop() // pg is nil by then
		}
	}()
	if pg.dataDir, err = os.MkdirTemp("", "resetbot-playground-"); err != nil {
		return nil, err
	}
	people := playPeople
	vars := map[string]string{
		"SLACK_BOT_TOKEN":                    slacktest.BotToken,
		"SLACK_APP_TOKEN":                    slacktest.AppToken,
		"SLACK_API_URL":                      pg.slack.APIURL(),
		"DIRECTORY_ID":                       playDirectory,
		"AWS_REGION":                         "eu-west-1",
		"AWS_ENDPOINT_URL_DIRECTORY_SERVICE": pg.ds.URL(),
		"AWS_ACCESS_KEY_ID":                  "AKIDPLAYGROUND",
		"AWS_SECRET_ACCESS_KEY":              "playground-not-a-secret",
		"AWS_MAX_ATTEMPTS":                   "2",
		"ALLOW_INSECURE_ENDPOINTS":           "true", // the stand-ins speak plain http on 127.0.0.1
		"DATA_DIR":                           pg.dataDir,
		"APPROVERS":                          "UBOB," + playHelpdesk,
		"ALLOWED_EMAIL_DOMAINS":              "corp.example.com",
		"AUDIT_CHANNEL":                      playAuditChannel,
		"HTTP_ADDR":                          "127.0.0.1:0",
		"SWEEP_INTERVAL":                     "1s",
	}
	note := "Accounts are the email's local part (no LDAP, so no directory guards: ALLOW_UNCHECKED_ACCOUNTS); the stand-in directory knows alice, dave, bob, carol and administrator."
	if o.SambaEnv == "" {
		vars["ALLOW_UNCHECKED_ACCOUNTS"] = "true"
	} else {
		if err := sambaSettings(o.SambaEnv, vars); err != nil {
			return nil, err
		}
		people = append(people, sambaPeople...)
		note = "Accounts are looked up in the Samba AD of the tests (" + vars["LDAP_URL"] + "), with its guards; resets still go to the stand-in directory."
	}
	var accounts []string
	for _, p := range people {
		pg.slack.AddUser(slacktest.User{ID: p.ID, Name: strings.ToLower(strings.Fields(p.RealName)[0]), RealName: p.RealName, Email: p.Email})
		if p.account != "" {
			pg.ds.AddUser(p.account)
			accounts = append(accounts, p.account)
		}
	}
	pg.ds.SetDisplayName("alice", "Alice Smith")
	pg.slack.AddUserGroup(playHelpdesk, "UCAROL")
	pg.slack.AddChannel(slacktest.Channel{ID: playAuditChannel, Name: "resetbot-audit", Private: true, Member: true})

	botCtx, stopBot := context.WithCancel(context.WithoutCancel(ctx))
	pg.stopBot, pg.botDone = stopBot, make(chan error, 1)
	go func() {
		pg.botDone <- run(botCtx, []string{"bot", "run"}, func(k string) string { return vars[k] }, o.Log)
	}()
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pg.slack.WaitFor(wait, func() bool { return pg.slack.Connections() > 0 || len(pg.botDone) > 0 }); err != nil || pg.slack.Connections() == 0 {
		select {
		case e := <-pg.botDone:
			pg.botDone <- e // for stop
			return nil, fmt.Errorf("the bot stopped before it connected to the stand-in Slack: %v", e)
		default:
			return nil, fmt.Errorf("the bot did not connect to the stand-in Slack: %v", err)
		}
	}

	var ps []playground.Person
	for _, p := range people {
		ps = append(ps, p.Person)
	}
	page := playground.New(playground.Options{Slack: pg.slack, Directory: pg.ds, People: ps, AuditChannel: playAuditChannel,
		AuditName: "resetbot-audit", Accounts: accounts, Note: note})
	pg.web = &http.Server{Handler: page.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go pg.web.Serve(lis)
	return pg, nil
}

// sambaSettings points the bot at the Samba AD that the env file of
// scripts/samba.sh describes.
func sambaSettings(path string, vars map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("SAMBA_ENV_FILE: %w", err)
	}
	env, err := dotenv.Parse(b, nil)
	if err != nil {
		return fmt.Errorf("SAMBA_ENV_FILE %s: %w", path, err)
	}
	for k, from := range map[string]string{"LDAP_URL": "SAMBA_LDAPS_URL", "LDAP_CA_FILE": "SAMBA_CA_FILE", "LDAP_BIND_DN": "SAMBA_BIND_DN",
		"LDAP_BIND_PASSWORD": "SAMBA_BIND_PASSWORD", "LDAP_BASE_DN": "SAMBA_BASE_DN"} {
		if env[from] == "" {
			return fmt.Errorf("SAMBA_ENV_FILE %s has no %s: is it the env file of scripts/samba.sh?", path, from)
		}
		vars[k] = env[from]
	}
	vars["ALLOWED_OUS"] = "OU=CORP," + env["SAMBA_BASE_DN"]
	return nil
}

// stop ends the page, the bot and the stand-ins, and removes the
// temporary store.
func (pg *playgroundWorld) stop() error {
	var err error
	if pg.web != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pg.web.Shutdown(sctx)
		cancel()
	}
	if pg.stopBot != nil {
		pg.stopBot()
		select {
		case err = <-pg.botDone:
		case <-time.After(30 * time.Second):
			err = errors.New("the bot did not stop within 30 s")
		}
	}
	pg.slack.Close()
	pg.ds.Close()
	if pg.dataDir != "" {
		os.RemoveAll(pg.dataDir)
	}
	return err
}
