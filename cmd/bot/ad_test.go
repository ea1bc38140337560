package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// adWorld is a world whose directory is a real Samba AD: the bot looks
// accounts up over LDAP, and the Directory Service test server performs
// resets on Samba (as AWS does, a reset enables a disabled account).
type adWorld struct {
	*world
	env   *sambatest.Env
	admin *sambatest.Admin
}

func newADWorld(t *testing.T) *adWorld {
	t.Helper()
	env := sambatest.Require(t)
	w := &adWorld{world: newWorld(t), env: env, admin: env.Admin(t)}
	w.ds.SetBackend(w.admin.ResetBackend())
	w.vars["LDAP_URL"] = env.LDAPSURL
	w.vars["LDAP_CA_FILE"] = env.CAFile
	w.vars["LDAP_BIND_DN"] = env.BindDN
	w.vars["LDAP_BIND_PASSWORD"] = env.BindPassword
	w.vars["LDAP_BASE_DN"] = env.BaseDN
	w.vars["LDAP_TIMEOUT"] = "2s"
	delete(w.vars, "ALLOW_UNCHECKED_ACCOUNTS")
	return w
}

// employee creates a directory user (a unique name, enabled, in the
// customer OU) and a Slack member with the same email; it returns the
// Slack ID and the account name.
func (w *adWorld) employee(prefix string, mod func(*sambatest.User)) (string, string) {
	w.t.Helper()
	u := sambatest.User{Name: sambatest.Unique(prefix), GivenName: "Erin", Surname: "Example"}
	u.Mail = sambatest.Mail(u.Name)
	u.DisplayName = "Erin " + u.Name
	if mod != nil {
		mod(&u)
	}
	w.admin.CreateUser(u)
	id := "U" + strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(u.Name))
	w.slack.AddUser(slacktest.User{ID: id, Name: u.Name, RealName: u.DisplayName, Email: u.Mail})
	return id, u.Name
}

// requestAs has user ask for a reset and returns the request and the DM of
// approver to click.
func (w *adWorld) requestAs(user, approver string) (*workflow.Request, slacktest.Message) {
	w.t.Helper()
	answer := w.command(user, "")
	id := idRe.FindString(answer)
	if id == "" {
		w.t.Fatalf("no request in the answer: %s", answer)
	}
	dm := w.messageFor(slacktest.DMChannel(approver), id, slackapp.ActionApprove)
	return w.waitStatus(id, workflow.StatusPending), dm
}

// revealDM approves r as approver and returns the employee's Reveal DM.
func (w *adWorld) revealDM(r *workflow.Request, approver string, dm slacktest.Message) slacktest.Message {
	w.t.Helper()
	w.clickAcked(approver, slackapp.ActionApprove, r.ID, dm)
	w.waitStatus(r.ID, workflow.StatusApproved)
	return w.messageFor(slacktest.DMChannel(r.Requester), r.ID, slackapp.ActionReveal)
}

// TestADResetThroughBinary: the bot binary finds the account by email over
// LDAPS, asks the employee's manager, and the password shown in Slack is
// the one the domain controller now accepts; the old one no longer works.
// With FORCE_CHANGE_AT_LOGON the password is valid but must be changed.
func TestADResetThroughBinary(t *testing.T) {
	for _, force := range []bool{false, true} {
		name := "plain"
		if force {
			name = "force_change_at_logon"
		}
		t.Run(name, func(t *testing.T) {
			w := newADWorld(t)
			w.vars["APPROVER_SOURCE"] = "manager"
			if force {
				w.vars["FORCE_CHANGE_AT_LOGON"] = "true"
				w.vars["LDAP_BIND_DN"] = w.env.RWBindDN
				w.vars["LDAP_BIND_PASSWORD"] = w.env.RWBindPassword
			}
			mgrID, mgr := w.employee("mgr", nil)
			empID, emp := w.employee("emp", func(u *sambatest.User) { u.Manager = mgr })
			w.startProcess()

			r, dm := w.requestAs(empID, mgrID)
			if r.Account.UserName != emp || !strings.HasPrefix(r.Account.DN, "CN="+emp+",OU=Users,OU=CORP,") ||
				r.AskedAs != workflow.AskedManager || len(r.Approvers) != 1 || r.Approvers[0] != mgrID {
				t.Fatalf("request %+v", r)
			}
			if txt := blocksText(dm); !strings.Contains(txt, "manager in the directory") {
				t.Errorf("the manager is not told why they were asked: %s", txt)
			}
			reveal := w.revealDM(r, mgrID, dm)
			w.clickAcked(empID, slackapp.ActionReveal, r.ID, reveal)
			done := w.waitStatus(r.ID, workflow.StatusCompleted)
			eph := w.passwordMessages()
			if len(eph) != 1 || eph[0].User != empID {
				t.Fatalf("ephemerals %+v", eph)
			}
			password := passwordIn(t, eph[0])
			upn := emp + "@corp.example.com"
			if err := w.env.Bind(upn, w.env.SeedPassword); !sambatest.IsInvalidCredentials(err) {
				t.Fatalf("the old password still binds: %v", err)
			}
			err := w.env.Bind(upn, password)
			if !force {
				if err != nil {
					t.Fatalf("the password shown in Slack does not bind: %v", err)
				}
				if got := w.admin.PwdLastSet(emp); got == 0 {
					t.Fatal("pwdLastSet is 0 without FORCE_CHANGE_AT_LOGON")
				}
				return
			}
			// AD answers a right password whose change is due with data 773.
			if err == nil || !strings.Contains(err.Error(), "data 773") {
				t.Fatalf("bind with the new password: %v, want 'must change password' (773)", err)
			}
			if got := w.admin.PwdLastSet(emp); got != 0 {
				t.Fatalf("pwdLastSet %d after a forced change", got)
			}
			if done.LastEvent().Code != "" || !strings.Contains(blocksText(eph[0]), "asked to choose a new password") {
				t.Errorf("event %+v, message %s", done.LastEvent(), blocksText(eph[0]))
			}
		})
	}
}

// TestADForceChangeRefused: the bind account may not write pwdLastSet; the
// reset still completes, the employee is told to change the password now,
// and helpdesk sees why.
func TestADForceChangeRefused(t *testing.T) {
	w := newADWorld(t)
	w.vars["FORCE_CHANGE_AT_LOGON"] = "true" // with the read-only account
	empID, emp := w.employee("emp", nil)
	w.start()
	r, dm := w.requestAs(empID, approver1)
	w.clickAcked(empID, slackapp.ActionReveal, r.ID, w.revealDM(r, approver1, dm))
	done := w.waitStatus(r.ID, workflow.StatusCompleted)
	if ev := done.LastEvent(); ev.Code != workflow.CodeForceChangeFailed || !strings.Contains(ev.Detail, "pwdLastSet") {
		t.Fatalf("completed event %+v", ev)
	}
	eph := w.passwordMessages()
	if len(eph) != 1 || !strings.Contains(blocksText(eph[0]), "change it right away") {
		t.Fatalf("ephemerals %+v", eph)
	}
	if err := w.env.Bind(emp+"@corp.example.com", passwordIn(t, eph[0])); err != nil {
		t.Fatalf("the new password does not bind: %v", err)
	}
	_, replies := w.auditThread(r.ID)
	if all := threadText(replies); !strings.Contains(all, "force_change_failed") || !strings.Contains(all, "write access to pwdLastSet") {
		t.Errorf("audit thread:\n%s", all)
	}
}

func threadText(msgs []slacktest.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(blocksText(m) + "\n")
	}
	return b.String()
}

// TestADGuardsAtRequest: each account the directory says must not be reset
// is refused with its own message, nothing is stored or sent to approvers,
// and the audit channel has one line naming the cause.
func TestADGuardsAtRequest(t *testing.T) {
	w := newADWorld(t)
	w.vars["ALLOWED_OUS"] = sambatest.OUCorp
	cases := map[string]struct {
		email string
		code  workflow.Code
	}{
		"UDISABLED": {sambatest.Mail(sambatest.UserDisabled), workflow.CodeAccountDisabled},
		"UDADMIN":   {sambatest.Mail(sambatest.UserDomainAdmin), workflow.CodeProtectedGroup},
		"UNESTED":   {sambatest.Mail(sambatest.UserNestedAdmin), workflow.CodeProtectedGroup},
		"UWS01":     {sambatest.ComputerMail, workflow.CodeMachineAccount},
		"UTWIN":     {sambatest.SharedMail, workflow.CodeAmbiguousAccount},
		"UOUTSIDER": {sambatest.Mail(sambatest.UserOutsider), workflow.CodeOutsideOU},
		"UNOBODY":   {"nobody@corp.example.com", workflow.CodeNoAccount},
		"UKRBTGT":   {"kdc@corp.example.com", workflow.CodeProtectedAccount}, // mapped to krbtgt below
	}
	mapFile := t.TempDir() + "/accounts"
	if err := os.WriteFile(mapFile, []byte("UKRBTGT krbtgt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.vars["ACCOUNT_MAP_FILE"] = mapFile
	for id, c := range cases {
		w.slack.AddUser(slacktest.User{ID: id, Name: strings.ToLower(id), Email: c.email})
	}
	w.start()
	for id, c := range cases {
		want := slackapp.ErrorText(workflow.Errorf(c.code, ""), nil)
		if got := w.command(id, ""); got != want {
			t.Errorf("%s (%s): answered %q, want the %s message %q", id, c.email, got, c.code, want)
		}
	}
	w.wait("an audit line per refusal", func() bool { return len(w.slack.Messages(auditChannel)) >= len(cases) })
	audit := threadText(w.slack.Messages(auditChannel))
	for id, c := range cases {
		if !strings.Contains(audit, "<@"+id+">") || !strings.Contains(audit, "refused (`"+string(c.code)+"`)") {
			t.Errorf("audit lacks %s refused with %s:\n%s", id, c.code, audit)
		}
	}
	if len(w.ds.ResetCalls()) != 0 || len(w.slack.Messages(slacktest.DMChannel(approver1))) != 0 {
		t.Fatal("a refused request reached the directory or an approver")
	}
	if keys, _ := w.redis.Keys(context.Background(), redisstore.KeyPrefix(w.prefix)+"req:*").Result(); len(keys) != 0 {
		t.Fatalf("requests were stored: %v", keys)
	}
	// The one that may be reset, to show the guards are not refusing all.
	r, _ := w.requestAs(employee, approver1)
	if r.Account.UserName != sambatest.UserAlice || r.Account.DisplayName != "Alice Smith" {
		t.Fatalf("alice's request: %+v", r.Account)
	}
}

// TestADGuardsAtReveal: an account that changes in the directory between
// approval and Reveal is checked again; the request fails with a clear
// reason and nothing is reset (a disabled account stays disabled).
func TestADGuardsAtReveal(t *testing.T) {
	w := newADWorld(t)
	w.vars["ALLOWED_OUS"] = sambatest.OUCorp
	w.start()
	for _, tc := range []struct {
		name   string
		code   workflow.Code
		change func(name string)
	}{
		{"disabled", workflow.CodeAccountDisabled, func(n string) { w.admin.SetDisabled(n, true) }},
		{"domain admin", workflow.CodeProtectedGroup, func(n string) { w.admin.AddToGroup(n, sambatest.GroupDomainAdmins) }},
		{"nested admin", workflow.CodeProtectedGroup, func(n string) { w.admin.AddToGroup(n, sambatest.GroupTier0) }},
		{"moved out", workflow.CodeOutsideOU, func(n string) { moveTo(t, w.admin, n, sambatest.OUElsewhere) }},
		{"tokenGroups hidden", workflow.CodeUncheckable, func(n string) { w.admin.DenyRead(n, w.env.BindDN, "tokenGroups") }},
		{"adminCount", workflow.CodeAdminCount, func(n string) { w.admin.Replace(n, "adminCount", "1") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			empID, emp := w.employee("rev", nil)
			r, dm := w.requestAs(empID, approver1)
			reveal := w.revealDM(r, approver1, dm)
			tc.change(emp)
			w.clickAcked(empID, slackapp.ActionReveal, r.ID, reveal)
			got := w.waitStatus(r.ID, workflow.StatusFailed)
			if got.Failure != tc.code {
				t.Fatalf("failure %s, want %s", got.Failure, tc.code)
			}
			for _, c := range w.ds.ResetCalls() {
				if c.UserName == emp {
					t.Fatalf("%s was reset", emp)
				}
			}
			if err := w.env.Bind(emp+"@corp.example.com", w.env.SeedPassword); tc.name != "disabled" && err != nil {
				t.Errorf("the password changed: %v", err)
			}
			if tc.name == "disabled" && w.admin.UserAccountControl(emp)&sambatest.UACAccountDisable == 0 {
				t.Error("the disabled account was enabled")
			}
			if txt := w.dmTexts(empID); !strings.Contains(txt, slackapp.FailureText(tc.code)) {
				t.Errorf("employee not told why:\n%s", txt)
			}
		})
	}
}

// moveTo moves account name under the OU parent.
func moveTo(t *testing.T, admin *sambatest.Admin, name, parent string) {
	t.Helper()
	dn := admin.DN(name)
	rdn := dn[:strings.IndexByte(dn, ',')]
	if err := admin.Conn().ModifyDN(ldap.NewModifyDNRequest(dn, rdn, true, parent)); err != nil {
		t.Fatalf("move %s: %v", dn, err)
	}
	t.Cleanup(func() {
		_ = admin.Conn().ModifyDN(ldap.NewModifyDNRequest(rdn+","+parent, rdn, true, sambatest.OUCorpUsers))
	})
}

// TestADManagerFallbacks: with APPROVER_SOURCE=manager, the configured
// approvers are asked, and told why, when the manager cannot be.
func TestADManagerFallbacks(t *testing.T) {
	w := newADWorld(t)
	w.vars["APPROVER_SOURCE"] = "manager"
	noSlack, ghost := w.employee("ghost", nil)
	w.slack.AddUser(slacktest.User{ID: noSlack, Deleted: true, Email: "gone@example.invalid"})
	cases := map[string]struct {
		manager func(u *sambatest.User)
		asked   workflow.AskedAs
		words   string
	}{
		"none":       {nil, workflow.AskedNoManager, "has no manager in the directory"},
		"disabled":   {func(u *sambatest.User) { u.Manager = sambatest.ManagerDisabled }, workflow.AskedManagerDisabled, "manager is disabled"},
		"not slack":  {func(u *sambatest.User) { u.Manager = ghost }, workflow.AskedManagerNotInChat, "not an active Slack member"},
		"themselves": {nil, workflow.AskedManagerIsRequester, "their own manager"},
	}
	ids := map[string]string{}
	for name, c := range cases {
		id, acct := w.employee("fb", c.manager)
		if name == "themselves" {
			w.admin.SetManager(acct, acct)
		}
		ids[name] = id
	}
	w.start()
	for name, c := range cases {
		r, dm := w.requestAs(ids[name], approver1)
		if r.AskedAs != c.asked || strings.Join(r.Approvers, ",") != approver1+","+approver2+","+employee {
			t.Errorf("%s: asked as %q: %v", name, r.AskedAs, r.Approvers)
		}
		if txt := blocksText(dm); !strings.Contains(txt, "helpdesk fallback") || !strings.Contains(txt, c.words) {
			t.Errorf("%s: approver DM: %s", name, txt)
		}
		w.command(ids[name], "cancel")
	}
}

// TestADOutage: with the directory unreachable (from start-up on), a
// request gets "try again in a minute" and changes nothing; a Reveal is postponed (nothing reset,
// the button works again); when the directory is back the flow completes.
func TestADOutage(t *testing.T) {
	w := newADWorld(t)
	proxy := newTCPProxy(t, strings.TrimPrefix(w.env.LDAPSURL, "ldaps://"))
	w.vars["LDAP_URL"] = "ldaps://" + proxy.addr()
	w.vars["LDAP_TIMEOUT"] = "1s"
	// Down at start-up: the bot starts all the same (the protected groups
	// are resolved again by every check) and says so.
	proxy.setUp(false)
	bot := w.start()
	if !strings.Contains(bot.logs.String(), "LDAP could not be asked for the protected groups at start-up") {
		t.Errorf("start-up during an LDAP outage is not logged:\n%s", bot.logs)
	}

	empID, emp := w.employee("out", nil)
	want := slackapp.ErrorText(workflow.Errorf(workflow.CodeLookupUnavailable, ""), nil)
	if got := w.command(empID, ""); got != want {
		t.Fatalf("request during the outage: %q, want %q", got, want)
	}
	proxy.setUp(true)
	r, dm := w.requestAs(empID, approver1)
	reveal := w.revealDM(r, approver1, dm)
	proxy.setUp(false)
	w.clickAcked(empID, slackapp.ActionReveal, r.ID, reveal)
	w.wait("the Reveal to be postponed", func() bool {
		got := w.get(r.ID)
		return got.Status == workflow.StatusApproved && got.LastEvent().Kind == workflow.EventPostponed && w.settled(got)
	})
	if len(w.ds.ResetCalls()) != 0 {
		t.Fatal("a reset happened while the directory could not be checked")
	}
	if txt := w.dmTexts(empID); !strings.Contains(txt, "could not check your account") {
		t.Errorf("employee not told: %s", txt)
	}
	proxy.setUp(true)
	w.clickAcked(empID, slackapp.ActionReveal, r.ID, w.message(reveal))
	w.waitStatus(r.ID, workflow.StatusCompleted)
	if err := w.env.Bind(sambatest.Mail(emp), passwordIn(t, w.passwordMessages()[0])); err != nil {
		t.Fatalf("the new password: %v", err)
	}
}

// tcpProxy forwards connections to a target while up; down, it closes
// every connection and refuses new ones, like a network outage.
type tcpProxy struct {
	t      *testing.T
	target string
	lis    net.Listener
	mu     sync.Mutex
	up     bool
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target, lis: lis, up: true}
	t.Cleanup(func() { lis.Close(); p.setUp(false) })
	go p.serve()
	return p
}

func (p *tcpProxy) addr() string { return p.lis.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if !p.up {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

func (p *tcpProxy) setUp(up bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = up
	if !up {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// TestADDoctor: doctor checks LDAP (TLS, bind, base DN) and, given an
// email, finds the account and applies the guards as a request would.
func TestADDoctor(t *testing.T) {
	w := newADWorld(t)
	w.vars["APPROVER_SOURCE"] = "manager"
	w.vars["PROTECTED_GROUPS"] = sambatest.GroupTier0
	doctorRun := func(args ...string) (string, error) {
		var out syncBuffer
		err := run(context.Background(), append([]string{"bot", "doctor"}, args...), func(k string) string { return w.vars[k] }, &out)
		return out.String(), err
	}
	out, err := doctorRun("--email", sambatest.Mail(sambatest.UserAlice))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"ok    LDAP: " + w.env.LDAPSURL, `ok    account of alice@corp.example.com: account "alice" (CN=Alice Smith,OU=Users,OU=CORP,`,
		`manager "mmanager" <mmanager@corp.example.com>, disabled false; may be reset`} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{
		"ok    protected groups: ", "domain SID S-1-5-21-",
		"built-in: Domain Admins, S-1-5-21-", "-512, CN=Domain Admins,CN=Users," + w.env.BaseDN,
		"built-in: Key Admins, S-1-5-21-", "-526, no object",
		"built-in: Backup Operators, S-1-5-32-551, CN=Backup Operators,CN=Builtin,",
		"PROTECTED_GROUPS: Tier0 Ops, S-1-5-21-",
		"; may be reset: name rules, not a protected user, userAccountControl, objectSid and objectGUID readable,",
		"in no protected group (tokenGroups), no adminCount: checks passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	out, err = doctorRun("--email", sambatest.Mail(sambatest.UserDisabled))
	if err == nil || !strings.Contains(out, "FAIL  account of disabled1@corp.example.com: refused (account_disabled)") || !strings.Contains(out, "is disabled in the directory") {
		t.Errorf("disabled account: %v\n%s", err, out)
	}
	out, err = doctorRun("--email", sambatest.Mail(sambatest.UserNestedAdmin))
	if err == nil || !strings.Contains(out, "FAIL  account of nested1@corp.example.com: refused (protected_group): ") ||
		!regexp.MustCompile(`member of Domain Admins \(S-1-5-21-\d+-\d+-\d+-512\) through tokenGroups`).MatchString(out) {
		t.Errorf("nested Domain Admin: %v\n%s", err, out)
	}
	w.vars["LDAP_BIND_PASSWORD"] = "wrong-Passw0rd"
	out, err = doctorRun()
	if err == nil || !strings.Contains(out, "FAIL  LDAP") || !strings.Contains(out, "LDAP_BIND_DN/LDAP_BIND_PASSWORD refused") || strings.Contains(out, "wrong-Passw0rd") {
		t.Errorf("wrong bind password: %v\n%s", err, out)
	}
}

// refusal has the Slack user id ask for a reset and checks that the
// answer is the words of code; it returns the audit channel's line about
// id once it is there.
func (w *adWorld) refusal(id string, code workflow.Code) string {
	w.t.Helper()
	want := slackapp.ErrorText(workflow.Errorf(code, ""), nil)
	if got := w.command(id, ""); got != want {
		w.t.Errorf("%s: answered %q, want the %s message %q", id, got, code, want)
		return ""
	}
	var line string
	w.wait("the audit line about "+id, func() bool {
		for _, m := range w.slack.Messages(auditChannel) {
			if txt := blocksText(m); strings.Contains(txt, "<@"+id+">") && strings.Contains(txt, "refused (`"+string(code)+"`)") {
				line = txt
				return true
			}
		}
		return false
	})
	return line
}

// noRequestsStored fails when a request was stored or sent to an approver
// or the directory.
func (w *adWorld) noRequestsStored() {
	w.t.Helper()
	if len(w.ds.ResetCalls()) != 0 || len(w.slack.Messages(slacktest.DMChannel(approver1))) != 0 {
		w.t.Fatal("a refused request reached the directory or an approver")
	}
	if keys, _ := w.redis.Keys(context.Background(), redisstore.KeyPrefix(w.prefix)+"req:*").Result(); len(keys) != 0 {
		w.t.Fatalf("requests were stored: %v", keys)
	}
}

// awsDelegatedGroup creates, in an OU of its own at the domain root (as AWS
// has OU=AWS Delegated Groups, outside the customer OU), a domain-local
// group whose cn starts "AWS Delegated ", and returns its name.
func (w *adWorld) awsDelegatedGroup() string {
	w.t.Helper()
	ou := w.admin.CreateOU(sambatest.Unique("AWS Delegated Groups"), "")
	name := "AWS Delegated " + sambatest.Unique("Administrators")
	w.admin.CreateGroupIn(sambatest.Group{Name: name, OU: ou, DomainLocal: true})
	return name
}

// TestADCustomerOUBase: with LDAP_BASE_DN the customer OU (least privilege
// on AWS Managed AD), where neither Domain Admins nor the AWS delegated
// groups live, a Domain Admin and an AWS delegated admin in that OU are
// both refused; a plain user there is reset.
func TestADCustomerOUBase(t *testing.T) {
	w := newADWorld(t)
	w.vars["LDAP_BASE_DN"] = sambatest.OUCorp
	w.slack.AddUser(slacktest.User{ID: "UDADMIN", Name: "dadmin", Email: sambatest.Mail(sambatest.UserDomainAdmin)})
	delegated := w.awsDelegatedGroup()
	awsID, awsAdmin := w.employee("awsadm", nil)
	w.admin.AddToGroup(awsAdmin, delegated)
	empID, emp := w.employee("plain", nil)
	w.start()

	if line := w.refusal("UDADMIN", workflow.CodeProtectedGroup); !strings.Contains(line, "member of Domain Admins (S-1-5-21-") ||
		!strings.Contains(line, "-512) through tokenGroups") {
		t.Errorf("the audit line does not name Domain Admins by SID: %s", line)
	}
	if line := w.refusal(awsID, workflow.CodeProtectedGroup); !strings.Contains(line, "member of "+delegated+" (S-1-5-21-") {
		t.Errorf("the audit line does not name %s: %s", delegated, line)
	}
	w.noRequestsStored()

	// Doctor lists the delegated group and says why its member is refused.
	var out syncBuffer
	err := run(context.Background(), []string{"bot", "doctor", "--email", sambatest.Mail(awsAdmin)}, func(k string) string { return w.vars[k] }, &out)
	if err == nil || !strings.Contains(out.String(), "AWS delegated: "+delegated+", S-1-5-21-") ||
		!strings.Contains(out.String(), "refused (protected_group): \""+awsAdmin+"\"") || !strings.Contains(out.String(), "is a member of "+delegated+" (S-1-5-21-") {
		t.Errorf("doctor --email for the delegated admin: %v\n%s", err, out.String())
	}

	r, dm := w.requestAs(empID, approver1)
	w.clickAcked(empID, slackapp.ActionReveal, r.ID, w.revealDM(r, approver1, dm))
	done := w.waitStatus(r.ID, workflow.StatusCompleted)
	if done.Account.UserName != emp || done.Account.GUID == "" {
		t.Errorf("account %+v", done.Account)
	}
	if err := w.env.Bind(sambatest.Mail(emp), passwordIn(t, w.passwordMessages()[0])); err != nil {
		t.Fatalf("the password shown does not bind: %v", err)
	}
}

// TestADProtectedGroupMissing: a PROTECTED_GROUPS entry that matches no
// group stops the bot at start-up, naming it; doctor names it too.
func TestADProtectedGroupMissing(t *testing.T) {
	w := newADWorld(t)
	missing := "No Such Group " + sambatest.Unique("x")
	w.vars["PROTECTED_GROUPS"] = sambatest.GroupTier0 + "," + missing
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var out syncBuffer
	err := run(ctx, []string{"bot"}, func(k string) string { return w.vars[k] }, &out)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), `PROTECTED_GROUPS entry "`+missing+`" matches no group in `+w.env.BaseDN) {
		t.Fatalf("start with a missing protected group: %v\n%s", err, out.String())
	}
	if strings.Contains(err.Error(), sambatest.GroupTier0) || w.slack.TotalConnections() != 0 {
		t.Errorf("error %q names the group that exists, or the bot connected to Slack", err)
	}

	out = syncBuffer{}
	err = run(context.Background(), []string{"bot", "doctor"}, func(k string) string { return w.vars[k] }, &out)
	if err == nil || !strings.Contains(out.String(), `FAIL  protected groups: LDAP protected groups: PROTECTED_GROUPS entry "`+missing+`" matches no group`) {
		t.Errorf("doctor: %v\n%s", err, out.String())
	}
}

// TestADUncheckable: an attribute the bind account may not read (an ACE
// on the user denies it) refuses the account as uncheckable: never a
// "not disabled" or "not a member".
func TestADUncheckable(t *testing.T) {
	w := newADWorld(t)
	ids := map[string]string{}
	for _, attr := range []string{"userAccountControl", "objectSid", "tokenGroups"} {
		id, name := w.employee("acl", nil)
		w.admin.DenyRead(name, w.env.BindDN, attr)
		ids[attr] = id
	}
	// A Domain Admin whose tokenGroups are hidden is not taken for "no
	// group".
	daID, da := w.employee("acl", nil)
	w.admin.AddToGroup(da, sambatest.GroupDomainAdmins)
	w.admin.DenyRead(da, w.env.BindDN, "tokenGroups")
	ids["tokenGroups of a Domain Admin"] = daID
	w.start()
	for attr, id := range ids {
		what := strings.TrimSuffix(attr, " of a Domain Admin")
		if line := w.refusal(id, workflow.CodeUncheckable); line != "" && !strings.Contains(line, what) {
			t.Errorf("%s: the audit line does not name %s: %s", attr, what, line)
		}
	}
	w.noRequestsStored()
}

// TestADPrimaryGroupAndAdminCount: a user whose primary group is a group
// nested in Domain Admins is refused; adminCount=1 is refused, unless
// REFUSE_ADMIN_COUNT=false.
func TestADPrimaryGroupAndAdminCount(t *testing.T) {
	for _, refuse := range []bool{true, false} {
		t.Run(fmt.Sprintf("REFUSE_ADMIN_COUNT=%v", refuse), func(t *testing.T) {
			w := newADWorld(t)
			if !refuse {
				w.vars["REFUSE_ADMIN_COUNT"] = "false"
			}
			group := sambatest.Unique("pgroup")
			w.admin.CreateGroup(group)
			w.admin.AddToGroup(group, sambatest.GroupDomainAdmins)
			pgID, pg := w.employee("pg", nil)
			w.admin.AddToGroup(pg, group)
			sid := w.admin.SID(group)
			w.admin.Replace(pg, "primaryGroupID", sid[strings.LastIndexByte(sid, '-')+1:])
			heldID, held := w.employee("held", nil)
			w.admin.Replace(held, "adminCount", "1")
			w.start()

			w.refusal(pgID, workflow.CodeProtectedGroup)
			if refuse {
				w.refusal(heldID, workflow.CodeAdminCount)
				w.noRequestsStored()
				return
			}
			if r, _ := w.requestAs(heldID, approver1); r.Account.UserName != held {
				t.Errorf("request %+v", r.Account)
			}
		})
	}
}

// TestADEmailMustMatch: the entry the directory answers must carry the
// Slack email in mail or userPrincipalName, compared with ASCII case
// folding only. Found by its UPN while its mail is another address is
// fine; Samba finds müller for MÜLLER, which the bot refuses; the Kelvin
// sign (U+212A), which strings.EqualFold takes for k, finds nothing on
// Samba (AD may fold it, which the accounts tests cover).
func TestADEmailMustMatch(t *testing.T) {
	w := newADWorld(t)
	byUPN, upnUser := w.employee("upn", func(u *sambatest.User) { u.Mail = "someone.else@example.org" })
	w.slack.AddUser(slacktest.User{ID: "UUPN2", Name: "upn2", Email: strings.ToUpper(upnUser) + "@CORP.EXAMPLE.COM"})
	muller := "müller-" + sambatest.Unique("m")
	_, _ = w.employee("mue", func(u *sambatest.User) { u.Mail = muller + "@corp.example.com" })
	w.slack.AddUser(slacktest.User{ID: "UMULLER", Name: "muller", Email: strings.Replace(muller, "ü", "Ü", 1) + "@corp.example.com"})
	_, kate := w.employee("kate", nil)
	w.slack.AddUser(slacktest.User{ID: "UKELVIN", Name: "kelvin", Email: "\u212A" + kate[1:] + "@corp.example.com"})
	// The employee's Slack profile has the UPN, not the mail.
	w.slack.AddUser(slacktest.User{ID: byUPN, Name: upnUser, Email: upnUser + "@corp.example.com"})
	w.start()

	w.refusal("UMULLER", workflow.CodeEmailMismatch)
	w.refusal("UKELVIN", workflow.CodeNoAccount)
	for _, id := range []string{byUPN, "UUPN2"} {
		r, _ := w.requestAs(id, approver1)
		if r.Account.UserName != upnUser {
			t.Errorf("%s: account %+v", id, r.Account)
		}
		w.command(id, "cancel")
	}
}
