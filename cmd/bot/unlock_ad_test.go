package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/example/resetbot/internal/sambatest"
	"github.com/example/resetbot/internal/slacktest"
	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/workflow"
)

// lockoutWorld is an adWorld with account lockout switched on in an OU of
// the test's own (a PSO of its own: 3 bad passwords lock for 30 minutes;
// the shared domain's policy is never changed), and the bot's LDAP
// account that OU's operator, delegated Write lockoutTime there (as the
// README's delegation does), unless readOnly.
type lockoutWorld struct {
	*adWorld
	ou sambatest.LockoutOU
}

func newLockoutWorld(t *testing.T, readOnly bool) *lockoutWorld {
	t.Helper()
	w := &lockoutWorld{adWorld: newADWorld(t)}
	w.ou = w.admin.CreateLockoutOU(sambatest.PSO{LockoutThreshold: 3, LockoutDuration: 30 * time.Minute})
	if readOnly {
		// The read-only account of every other test: it may read the
		// PSO's duration (to say until when), not write lockoutTime.
		w.admin.AllowRead(w.ou.PSO, w.env.BindDN, "msDS-LockoutDuration")
	} else {
		w.vars["LDAP_BIND_DN"] = w.ou.Operator
		w.vars["LDAP_BIND_PASSWORD"] = w.env.SeedPassword
	}
	return w
}

// lockable creates a user in the lockout OU with a Slack member of the
// same email, and returns the Slack ID and the account name.
func (w *lockoutWorld) lockable(prefix string) (string, string) {
	w.t.Helper()
	u := sambatest.User{Name: sambatest.Unique(prefix), GivenName: "Lou", Surname: "Locked"}
	u.Mail = sambatest.Mail(u.Name)
	u.DisplayName = "Lou " + u.Name
	w.admin.CreateLockableUser(w.ou, u)
	id := "U" + strings.ToUpper(strings.NewReplacer("-", "", "_", "").Replace(u.Name))
	w.slack.AddUser(slacktest.User{ID: id, Name: u.Name, RealName: u.DisplayName, Email: u.Mail})
	return id, u.Name
}

// binds reports whether name binds with password now.
func (w *lockoutWorld) binds(name, password string) error {
	return w.env.Bind(sambatest.Mail(name), password)
}

// unlockWrites counts the bot's LDAP writes of lockoutTime in its debug
// log (ldapdir logs each modify, never a value).
func unlockWrites(logs ...*syncBuffer) int {
	n := 0
	for _, l := range logs {
		for _, line := range strings.Split(l.String(), "\n") {
			if strings.Contains(line, `"msg":"ldap modify"`) && strings.Contains(line, `"op":"unlock"`) {
				n++
			}
		}
	}
	return n
}

// TestADUnlockByCommand: an account locked by bad binds (an old password
// on a phone) is unlocked by `/reset-password unlock` at once
// (UNLOCK_APPROVAL=none) and binds again with its old password; the audit
// thread says so. An account that is not locked gets its own words and
// nothing is written or stored; that refusal counts against UNLOCK_LIMIT,
// which then refuses an unlock of the locked account (it stays locked)
// while a reset is still possible.
func TestADUnlockByCommand(t *testing.T) {
	w := newLockoutWorld(t, false)
	w.vars["UNLOCK_LIMIT"] = "2"
	id, name := w.lockable("unl")
	bot := w.start()

	w.admin.LockOut(name, 3)
	if err := w.binds(name, w.env.SeedPassword); err == nil || !strings.Contains(err.Error(), "data 775") {
		t.Fatalf("the locked account binds: %v", err)
	}
	answer := w.command(id, "unlock")
	if !strings.Contains(answer, "is unlocked") || !strings.Contains(answer, "`"+name+"`") {
		t.Fatalf("answer: %s", answer)
	}
	if w.admin.Locked(name) || w.admin.LockoutTime(name) != 0 {
		t.Fatalf("still locked: lockoutTime %d", w.admin.LockoutTime(name))
	}
	if err := w.binds(name, w.env.SeedPassword); err != nil {
		t.Fatalf("the old password does not bind after the unlock: %v", err)
	}
	if n := unlockWrites(bot.logs); n != 1 {
		t.Errorf("%d lockoutTime writes, want 1", n)
	}
	if len(w.ds.ResetCalls()) != 0 {
		t.Fatal("an unlock reset the password")
	}
	if _, metrics := getURL(t, bot, "/metrics"); !strings.Contains(metrics, `resetbot_unlocks_total{action="unlock",result="ok"} 1`) ||
		!strings.Contains(metrics, `resetbot_requests_created_total{action="unlock",asked_by="employee"} 1`) {
		t.Errorf("metrics lack the unlock:\n%s", grepLines(metrics, "resetbot_"))
	}
	id1 := idRe.FindString(w.slack.Messages(auditChannel)[0].Text)
	r := w.waitStatus(id1, workflow.StatusCompleted)
	if !r.IsUnlock() || r.Requester != id || len(r.Approvers) != 0 {
		t.Fatalf("request %+v", r)
	}
	if _, replies := w.auditThread(r.ID); !strings.Contains(threadText(replies), "Account unlocked (lockoutTime=0)") {
		t.Errorf("audit thread:\n%s", threadText(replies))
	}
	if n := len(w.slack.Messages(slacktest.DMChannel(id))); n != 0 {
		t.Errorf("the employee got %d DMs besides the answer to their command", n)
	}

	// Not locked: its own words, nothing written or stored.
	if got, want := w.command(id, "unlock"), slackapp.ActionErrorText(workflow.Errorf(workflow.CodeNotLocked, ""), workflow.ActionUnlock, nil); got != want {
		t.Fatalf("unlock of an account that is not locked: %q, want %q", got, want)
	}
	if n := unlockWrites(bot.logs); n != 1 {
		t.Errorf("%d lockoutTime writes after a refusal, want 1", n)
	}
	if _, err := w.store.Open(context.Background(), id); workflow.ErrorCode(err) != workflow.CodeNoOpenRequest {
		t.Fatalf("a request is open: %v", err)
	}

	// The limit: one unlock and one refusal are two; the account stays
	// locked.
	w.admin.LockOut(name, 3)
	if got, want := w.command(id, "unlock"), slackapp.ActionErrorText(workflow.Errorf(workflow.CodeRateLimited, ""), workflow.ActionUnlock, nil); got != want {
		t.Fatalf("a 3rd unlock: %q, want %q", got, want)
	}
	if !w.admin.Locked(name) || unlockWrites(bot.logs) != 1 {
		t.Fatal("an unlock past UNLOCK_LIMIT was written")
	}
	if answer := w.command(id, ""); !strings.Contains(answer, "created to reset the password") {
		t.Fatalf("a reset while unlocks are limited: %s", answer)
	}
}

// TestADUnlockWithApprovers: with UNLOCK_APPROVAL=approvers the approver
// is asked; the approval unlocks the account at once (no Reveal), exactly
// once however many clicks and redelivered envelopes; the employee is
// told in a DM.
func TestADUnlockWithApprovers(t *testing.T) {
	w := newLockoutWorld(t, false)
	w.vars["UNLOCK_APPROVAL"] = "approvers"
	id, name := w.lockable("unla")
	bot := w.start()
	other := w.start()
	w.admin.LockOut(name, 3)

	answer := w.command(id, "unlock")
	rid := idRe.FindString(answer)
	if rid == "" || !strings.Contains(answer, "asked <@"+approver1+">") {
		t.Fatalf("answer: %s", answer)
	}
	dm := w.messageFor(slacktest.DMChannel(approver1), rid, slackapp.ActionApprove)
	if txt := blocksText(dm); !strings.Contains(txt, "asks to unlock the account `"+name+"`") {
		t.Errorf("approver's DM: %s", txt)
	}
	if !w.admin.Locked(name) {
		t.Fatal("unlocked before the approval")
	}
	click := map[string]any{"type": "block_actions", "user": map[string]any{"id": approver1}, "channel": map[string]any{"id": dm.Channel},
		"container": map[string]any{"type": "message", "message_ts": dm.TS, "channel_id": dm.Channel},
		"actions":   []any{map[string]any{"action_id": slackapp.ActionApprove, "block_id": "decision", "type": "button", "value": rid}}}
	w.slack.SendTo(0, "redelivered-unlock", "interactive", click)
	w.slack.SendTo(1, "redelivered-unlock", "interactive", click)
	for range 3 {
		w.click(approver1, slackapp.ActionApprove, rid, dm)
	}
	w.click(approver2, slackapp.ActionApprove, rid, w.messageFor(slacktest.DMChannel(approver2), rid, slackapp.ActionApprove))
	r := w.waitStatus(rid, workflow.StatusCompleted)
	time.Sleep(300 * time.Millisecond) // let a wrongly second write show up
	if n := unlockWrites(bot.logs, other.logs); n != 1 {
		t.Fatalf("%d lockoutTime writes for one approved unlock", n)
	}
	if r.DecidedBy == "" || w.admin.Locked(name) {
		t.Fatalf("request %+v, locked %v", r, w.admin.Locked(name))
	}
	if err := w.binds(name, w.env.SeedPassword); err != nil {
		t.Fatalf("the old password: %v", err)
	}
	if txt := w.dmTexts(id); !strings.Contains(txt, "is unlocked") || strings.Contains(txt, "Reveal") {
		t.Errorf("employee's DMs:\n%s", txt)
	}
}

// TestADResetUnlocksLockedAccount: a reset of a locked account also
// unlocks it (a reset alone leaves it locked: the new password would get
// 775), after ResetUserPassword worked; the new password binds.
func TestADResetUnlocksLockedAccount(t *testing.T) {
	w := newLockoutWorld(t, false)
	id, name := w.lockable("rul")
	w.start()
	w.admin.LockOut(name, 3)
	r, dm := w.requestAs(id, approver1)
	w.clickAcked(id, slackapp.ActionReveal, r.ID, w.revealDM(r, approver1, dm))
	done := w.waitStatus(r.ID, workflow.StatusCompleted)
	eph := w.passwordMessages()
	if len(eph) != 1 || !strings.Contains(blocksText(eph[0]), "it is unlocked now too") {
		t.Fatalf("password messages:\n%s", threadText(eph))
	}
	if !done.Unlocked || done.StillLocked != nil || w.admin.Locked(name) {
		t.Fatalf("request unlocked %v, still %+v; locked %v", done.Unlocked, done.StillLocked, w.admin.Locked(name))
	}
	if err := w.binds(name, passwordIn(t, eph[0])); err != nil {
		t.Fatalf("the new password does not bind: %v", err)
	}
}

// TestADWithoutTheUnlockRight: with a bind account that may not write
// lockoutTime, an unlock fails with words that say until when the
// account stays locked; a reset of a locked account still gives the
// password and says the same; helpdesk gets a hint; the account stays
// locked.
func TestADWithoutTheUnlockRight(t *testing.T) {
	w := newLockoutWorld(t, true)
	id, name := w.lockable("nor")
	w.start()
	w.admin.LockOut(name, 3)
	answer := w.command(id, "unlock")
	if !strings.Contains(answer, "I am not allowed to unlock accounts") || !strings.Contains(answer, "when its lockout ends by itself") || !strings.Contains(answer, "<!date^") {
		t.Fatalf("answer: %s", answer)
	}
	if !w.admin.Locked(name) {
		t.Fatal("unlocked without the right")
	}
	rid := idRe.FindString(w.slack.Messages(auditChannel)[0].Text)
	failed := w.waitStatus(rid, workflow.StatusFailed)
	if failed.Failure != workflow.CodeUnlockNotPermitted || failed.StillLocked == nil || failed.StillLocked.Until.IsZero() {
		t.Fatalf("request %s %+v", failed.Failure, failed.StillLocked)
	}
	if _, replies := w.auditThread(rid); !strings.Contains(threadText(replies), "delegate Write lockoutTime") {
		t.Errorf("no hint for helpdesk:\n%s", threadText(replies))
	}

	r, dm := w.requestAs(id, approver1)
	w.clickAcked(id, slackapp.ActionReveal, r.ID, w.revealDM(r, approver1, dm))
	done := w.waitStatus(r.ID, workflow.StatusCompleted)
	eph := w.passwordMessages()
	if len(eph) != 1 || !strings.Contains(blocksText(eph[0]), "still locked out") || !strings.Contains(blocksText(eph[0]), "once the lockout ends at") {
		t.Fatalf("password messages:\n%s", threadText(eph))
	}
	if done.LastEvent().Code != workflow.CodeUnlockNotPermitted || done.StillLocked == nil || !w.admin.Locked(name) {
		t.Fatalf("completed %+v, still %+v", done.LastEvent(), done.StillLocked)
	}
	if err := w.binds(name, passwordIn(t, eph[0])); err == nil || !strings.Contains(err.Error(), "data 775") {
		t.Fatalf("the new password while locked: %v, want 775", err)
	}
	if _, replies := w.auditThread(r.ID); !strings.Contains(threadText(replies), "unlock_not_permitted") {
		t.Errorf("audit thread:\n%s", threadText(replies))
	}
}

// TestADLockedButProtected: a locked account that is disabled, or in
// Domain Admins, is neither unlocked nor reset: refused with its own
// words, nothing stored or written; it stays locked.
func TestADLockedButProtected(t *testing.T) {
	w := newLockoutWorld(t, false)
	disabledID, disabled := w.lockable("lkd")
	adminID, admin := w.lockable("lka")
	bot := w.start()
	// Disabled first: on Samba, writing userAccountControl ends a
	// lockout; a disabled account still locks after bad passwords.
	w.admin.SetDisabled(disabled, true)
	for _, n := range []string{disabled, admin} {
		w.admin.LockOut(n, 3)
	}
	w.admin.AddToGroup(admin, sambatest.GroupDomainAdmins)
	for id, code := range map[string]workflow.Code{disabledID: workflow.CodeAccountDisabled, adminID: workflow.CodeProtectedGroup} {
		if got, want := w.command(id, "unlock"), slackapp.ActionErrorText(workflow.Errorf(code, ""), workflow.ActionUnlock, nil); got != want {
			t.Errorf("unlock of %s: %q, want %q", id, got, want)
		}
		if got, want := w.command(id, ""), slackapp.ErrorText(workflow.Errorf(code, ""), nil); got != want {
			t.Errorf("reset of %s: %q, want %q", id, got, want)
		}
	}
	for _, n := range []string{disabled, admin} {
		if !w.admin.Locked(n) {
			t.Errorf("%s was unlocked", n)
		}
	}
	if unlockWrites(bot.logs) != 0 || len(w.ds.ResetCalls()) != 0 {
		t.Fatal("a protected account was written")
	}
	if keys, _ := w.redis.Keys(context.Background(), redisstore.KeyPrefix(w.prefix)+"req:*").Result(); len(keys) != 0 {
		t.Fatalf("requests were stored: %v", keys)
	}
	if w.admin.UserAccountControl(disabled)&sambatest.UACAccountDisable == 0 {
		t.Fatal("the disabled account was enabled")
	}
}

// TestADUnlockCommandRedelivered: Slack redelivering the unlock command
// to two replicas, and the employee typing it twice at once, unlock once.
func TestADUnlockCommandRedelivered(t *testing.T) {
	w := newLockoutWorld(t, false)
	id, name := w.lockable("unr")
	a, b := w.start(), w.start()
	w.wait("two connections", func() bool { return w.slack.Connections() == 2 })
	w.admin.LockOut(name, 3)
	cmd := map[string]any{"command": "/reset-password", "text": "unlock", "user_id": id, "channel_id": slacktest.DMChannel(id),
		"team_id": slacktest.TeamID, "trigger_id": "t1", "api_app_id": slacktest.AppID}
	w.slack.SendTo(0, "redelivered-unlock-command", "slash_commands", cmd)
	w.slack.SendTo(1, "redelivered-unlock-command", "slash_commands", cmd)
	e1, e2 := w.slack.SlashCommand(id, "unlock"), w.slack.SlashCommand(id, "unlock")
	w.reply(e1)
	w.reply(e2)
	w.wait("the unlock", func() bool { return !w.admin.Locked(name) })
	time.Sleep(300 * time.Millisecond) // let a wrongly second write show up
	if n := unlockWrites(a.logs, b.logs); n != 1 {
		t.Fatalf("%d lockoutTime writes", n)
	}
}
