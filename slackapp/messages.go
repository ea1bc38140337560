package slackapp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// Stable action IDs of the buttons: a contract with Slack messages already
// posted (a click on an old message still routes) and with the tests.
const (
	ActionApprove = "approve"
	ActionDeny    = "deny"
	ActionReveal  = "reveal"
	ActionReport  = "report" // "This wasn't me", on the employee's completed reset
)

// Msg is a message to post or to update: the notification text and the
// blocks shown.
type Msg struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks,omitempty"`
}

// Options returns the slack-go options that send m.
func (m Msg) Options() []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false)}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

// when formats t for Slack: the reader's own time zone, with a UTC fallback.
func when(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// user mentions a Slack user.
func user(id string) string {
	if id == "" {
		return "the bot"
	}
	return "<@" + id + ">"
}

func users(ids []string) string {
	m := make([]string, len(ids))
	for i, id := range ids {
		m[i] = user(id)
	}
	return strings.Join(m, ", ")
}

// code quotes s as inline code, with backticks removed and Slack's control
// characters escaped so that it cannot break out.
func code(s string) string { return "`" + escape(strings.ReplaceAll(s, "`", "'")) + "`" }

// escape makes s safe to show in mrkdwn text.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

// plainSection shows text as plain text: no formatting, links or
// mentions, whatever it holds (what people wrote).
func plainSection(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.PlainTextType, text, false, false), nil, nil)
}

func contextLine(text string) *slack.ContextBlock {
	return slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, text, false, false))
}

func button(actionID, label, value string, style slack.Style) *slack.ButtonBlockElement {
	b := slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
	b.Style = style
	return b
}

// employee names r's employee: a mention, or, for one with no Slack
// account, their email.
func employee(r *workflow.Request) string {
	if email := r.EmployeeEmail(); email != "" {
		return code(email) + " (no Slack account)"
	}
	return user(r.Requester)
}

// person names the employee of a refusal: a Slack user ID, or the email
// of one named by email (workflow.MailRequester).
func person(id string) string {
	if email, ok := strings.CutPrefix(id, "mail:"); ok {
		return code(email)
	}
	return user(id)
}

// asker names who asked for r: the employee, or the agent on their
// behalf.
func asker(r *workflow.Request) string {
	if r.Agent == "" {
		return user(r.Requester)
	}
	return fmt.Sprintf("%s (helpdesk) on behalf of %s", user(r.Agent), employee(r))
}

// summary is the request line shared by approver and audit messages.
func summary(r *workflow.Request) string {
	what := "reset the password of " + code(r.Account.UserName)
	if r.IsUnlock() {
		what = "unlock the account " + code(r.Account.UserName)
	}
	s := fmt.Sprintf("%s asks to %s in directory %s.", user(r.Requester), what, code(r.DirectoryID))
	if r.Agent != "" {
		s = fmt.Sprintf("%s (helpdesk) asks, on behalf of %s, to %s in directory %s.", user(r.Agent), employee(r), what, code(r.DirectoryID))
	}
	if r.IsUnlock() {
		s += " It is locked out after too many bad passwords; an unlock leaves the password as it is."
	}
	if !r.InChat() {
		s += fmt.Sprintf(" The employee has no Slack account: the temporary password goes to %s, who hands it over, and must be changed at the next logon.", user(r.Agent))
	}
	return s
}

// requestTitle is the notification text of an approver's message.
func requestTitle(r *workflow.Request) string {
	noun := "Password reset request"
	if r.IsUnlock() {
		noun = "Unlock request"
	}
	return noun + " from " + asker(r) + " for " + code(r.Account.UserName)
}

// ApprovalMessage is the DM to an approver: the request, what the bot
// knows that helps decide (the employee's reason, the account's facts)
// and, while it is pending, Approve and Deny buttons; afterwards the
// outcome.
func ApprovalMessage(r *workflow.Request) Msg { return approvalFor("", r) }

// approvalFor is ApprovalMessage as approver sees it: a fallback
// approver asked when the manager did not answer is told so.
func approvalFor(approver string, r *workflow.Request) Msg {
	text := requestTitle(r)
	details := fmt.Sprintf("*Requested:* %s\n*Decide by:* %s\n*Request:* %s", when(r.CreatedAt), when(r.DecideBy), code(r.ID))
	if r.Account.Email != "" {
		details = fmt.Sprintf("*Email:* %s\n", escape(r.Account.Email)) + details
	}
	blocks := []slack.Block{section(":key: " + summary(r)), section(details)}
	if why := askedAs(r); why != "" && !slices.Contains(r.Escalated, approver) {
		blocks = append(blocks, contextLine(why))
	}
	if why := escalatedNote(approver, r); why != "" {
		blocks = append(blocks, contextLine(why))
	}
	if reason := r.Reason(); reason != "" {
		blocks = append(blocks, plainSection("Reason given: "+reason))
	}
	if lines := factLines(r.Facts); len(lines) > 0 {
		blocks = append(blocks, section(strings.Join(lines, "\n")))
	}
	if r.Status == workflow.StatusPending {
		blocks = append(blocks,
			contextLine("Approve only if you know this request is genuine, for example because the person asked you in person or on a call."),
			slack.NewActionBlock("decision",
				button(ActionApprove, "Approve", r.ID, slack.StylePrimary),
				button(ActionDeny, "Deny", r.ID, slack.StyleDanger)))
		return Msg{Text: text, Blocks: blocks}
	}
	state := string(r.Status)
	if r.DecidedBy != "" && r.Status != workflow.StatusDenied {
		state = string(workflow.StatusApproved) // what follows is not the approver's to see
	}
	return Msg{Text: text + ": " + state, Blocks: append(blocks, section(outcome(r)))}
}

// QueueMessage is an approver's message listing the requests rows, as
// they are now: one request looks as ApprovalMessage; several get a line
// each (who, which account, since when) with Approve and Deny while
// pending, and who decided and when afterwards. It holds at most
// maxQueueRows rows, within Block Kit's 50 blocks (2 a pending row, 2 for
// the heading).
func QueueMessage(approver string, rows []*workflow.Request) Msg {
	if len(rows) == 1 {
		return approvalFor(approver, rows[0])
	}
	open := 0
	var who []string
	for _, r := range rows {
		if r.Status == workflow.StatusPending {
			open++
			who = append(who, employee(r))
		}
	}
	kind := "password reset requests"
	if slices.ContainsFunc(rows, (*workflow.Request).IsUnlock) {
		kind = "requests (password resets and unlocks)"
	}
	head := fmt.Sprintf(":key: %d %s wait for your decision.", open, kind)
	text := fmt.Sprintf("%d %s: %s", open, kind, strings.Join(who, ", "))
	if open == 0 {
		head = fmt.Sprintf(":white_check_mark: The %d %s listed here are decided.", len(rows), kind)
		text = head
	}
	blocks := []slack.Block{section(head),
		contextLine("Approve only the requests you know are genuine, for example because the person asked you in person or on a call.")}
	for _, r := range rows {
		if r.Status != workflow.StatusPending {
			blocks = append(blocks, section("~"+rowHead(r)+"~\n"+outcome(r)))
			continue
		}
		blocks = append(blocks, section(queueRow(approver, r)), slack.NewActionBlock("decide:"+r.ID,
			button(ActionApprove, "Approve", r.ID, slack.StylePrimary),
			button(ActionDeny, "Deny", r.ID, slack.StyleDanger)))
	}
	return Msg{Text: text, Blocks: blocks}
}

// queueRow is a pending request as a row of approver's queue (and Home):
// who, which account, since when, the facts in brief, the reason, and why
// a fallback approver was asked.
func queueRow(approver string, r *workflow.Request) string {
	line := rowHead(r)
	if r.Account.Email != "" {
		line += " · " + escape(r.Account.Email)
	}
	if facts := factsInBrief(r.Facts); facts != "" {
		line += "\n" + facts
	}
	if reason := r.Reason(); reason != "" {
		line += "\nReason: " + code(reason)
	}
	if slices.Contains(r.Escalated, approver) {
		line += "\n" + escalatedNote(approver, r)
	}
	return line
}

// rowHead is the first line of a request's row: who, which account,
// since when, and whether it is an unlock or asked by helpdesk.
func rowHead(r *workflow.Request) string {
	line := fmt.Sprintf("%s · %s · since %s", employee(r), code(r.Account.UserName), when(r.CreatedAt))
	if r.IsUnlock() {
		line += " · *unlock*"
	}
	if r.Agent != "" {
		line += " · asked by " + user(r.Agent) + " (helpdesk)"
	}
	if !r.InChat() {
		line += " · the password goes to " + user(r.Agent)
	}
	return line
}

// outcome says how a request that left pending was decided or ended.
func outcome(r *workflow.Request) string {
	switch {
	case r.Status == workflow.StatusDenied:
		return fmt.Sprintf(":no_entry: Denied by %s at %s.", user(r.DecidedBy), when(r.DecidedAt))
	case r.DecidedBy != "":
		// What happens after the approval is for the employee and the audit
		// channel: the approver's message changes once, which spares
		// Slack's chat.update budget on a busy day.
		return fmt.Sprintf(":white_check_mark: Approved by %s at %s.", user(r.DecidedBy), when(r.DecidedAt))
	case r.Status == workflow.StatusExpired:
		return fmt.Sprintf(":hourglass: Expired at %s: nobody decided in time.", when(r.EndedAt))
	case r.Status == workflow.StatusCancelled:
		return fmt.Sprintf(":leftwards_arrow_with_hook: Cancelled by the employee at %s.", when(r.EndedAt))
	}
	return "Status: " + string(r.Status)
}

// RevealMessage is the employee's DM after approval: while the request is
// approved, a Reveal button; afterwards what happened.
func RevealMessage(r *workflow.Request) Msg {
	head := fmt.Sprintf(":white_check_mark: %s approved your request to reset the password of %s.", user(r.DecidedBy), code(r.Account.UserName))
	switch {
	case !r.InChat():
		head = fmt.Sprintf(":white_check_mark: %s approved the reset of the password of %s for %s, which you asked for. They have no Slack account, so the temporary password is shown to you, to hand over once you are sure who they are; they must change it at the next logon.",
			user(r.DecidedBy), code(r.Account.UserName), code(r.EmployeeEmail()))
	case r.AskedAs == workflow.AskedHelpdesk:
		head = fmt.Sprintf(":white_check_mark: %s (helpdesk) asked to reset the password of %s on your behalf, and their request was the approval.", user(r.Agent), code(r.Account.UserName))
	case r.Agent != "":
		head += fmt.Sprintf(" %s (helpdesk) asked for it on your behalf.", user(r.Agent))
	}
	switch r.Status {
	case workflow.StatusApproved:
		body := fmt.Sprintf("When you are ready to sign in, click *Reveal my temporary password*. The bot then sets a new password and shows it only to you, here. The button works until %s.", when(r.RevealBy))
		if !r.InChat() {
			body = fmt.Sprintf("When they are with you, click *Reveal my temporary password*. The bot then sets a new password and shows it only to you, here. The button works until %s.", when(r.RevealBy))
		}
		switch last := r.LastEvent(); last.Kind {
		case workflow.EventInterrupted:
			body = ":warning: Your new password could not be shown to you, so nobody knows it. Click the button again to get another one. The button works until " + when(r.RevealBy) + "."
			if last.Code == workflow.CodeDirectoryUncertain {
				body = ":warning: The directory did not answer in time, so your password may or may not have changed, and nobody knows it. Click the button again to set a new one. The button works until " + when(r.RevealBy) + "."
			}
		case workflow.EventPostponed:
			body = ":warning: I could not check your account in the directory just now; nothing was changed. Click the button again in a minute. It works until " + when(r.RevealBy) + "."
		}
		return Msg{Text: "Your password reset was approved: reveal your temporary password", Blocks: []slack.Block{
			section(head), section(body),
			slack.NewActionBlock("reveal", button(ActionReveal, "Reveal my temporary password", r.ID, slack.StylePrimary)),
		}}
	case workflow.StatusResetting:
		return Msg{Text: "Setting your new password…", Blocks: []slack.Block{section(head), section(":hourglass_flowing_sand: Setting your new password…")}}
	case workflow.StatusCompleted:
		again := "run `/reset-password` again"
		if !r.InChat() {
			again = "ask again with `/reset-password for " + escape(r.EmployeeEmail()) + "`"
		}
		blocks := []slack.Block{section(head),
			section(fmt.Sprintf(":lock: Password reset at %s. The temporary password was shown to you once and is not stored anywhere. If you lost it, %s.", when(r.EndedAt), again))}
		if lock := lockLine(r.Unlocked, r.StillLocked); lock != "" {
			blocks = append(blocks, section(lock))
		}
		if r.InChat() {
			// Only the account's owner can say the reset was not theirs.
			blocks = append(blocks, reportBlocks(r)...)
		}
		return Msg{Text: "Your password was reset", Blocks: blocks}
	case workflow.StatusFailed:
		return Msg{Text: "Your password reset failed", Blocks: []slack.Block{section(head),
			section(":x: " + RequestFailureText(r))}}
	case workflow.StatusExpired:
		return Msg{Text: "Your password reset expired", Blocks: []slack.Block{section(head),
			section(fmt.Sprintf(":hourglass: The reveal button expired at %s and your password was not changed. Run `/reset-password` to start again.", when(r.EndedAt)))}}
	case workflow.StatusCancelled:
		return Msg{Text: "Your password reset was cancelled", Blocks: []slack.Block{section(head),
			section(":leftwards_arrow_with_hook: You cancelled this request; your password was not changed.")}}
	}
	return Msg{Text: "Status: " + string(r.Status)}
}

// lockLine says what the reset did about a lockout: "" when the account
// was not locked (or that could not be read).
func lockLine(unlocked bool, still *workflow.Lockout) string {
	switch {
	case unlocked:
		return ":unlock: The account was locked out after too many bad passwords; it is unlocked now too."
	case still != nil:
		return ":lock: The account is still locked out after too many bad passwords, and I could not unlock it: the new password works " + lockEnd(*still) + "."
	}
	return ""
}

// lockEnd says when a lockout ends: "once the lockout ends at T", or "once
// helpdesk unlocks it" when it never ends by itself or that is not known.
func lockEnd(l workflow.Lockout) string {
	if !l.Until.IsZero() && !l.Forever {
		return fmt.Sprintf("once the lockout ends at %s, or once helpdesk unlocks the account", when(l.Until))
	}
	return "once helpdesk unlocks the account"
}

// PasswordMessage is the ephemeral message with the temporary password. It is
// the only message that ever holds it.
func PasswordMessage(r *workflow.Request, d workflow.Delivery) Msg {
	change := "Sign in with it now and change it right away (on Windows: Ctrl+Alt+Del, *Change a password*)."
	if d.MustChange {
		change = "Sign in with it now: you will be asked to choose a new password at once."
	}
	head := fmt.Sprintf(":key: Your temporary password for %s is:", code(r.Account.UserName))
	if !r.InChat() {
		head = fmt.Sprintf(":key: The temporary password for %s (%s, who has no Slack account) is:", code(r.Account.UserName), code(r.EmployeeEmail()))
		change = "Give it to them only, once you are sure who they are: they will be asked to choose a new password at their first sign-in."
	}
	blocks := []slack.Block{section(head), section("```" + d.Password + "```")}
	if lock := lockLine(d.Unlocked, d.StillLocked); lock != "" {
		blocks = append(blocks, section(lock))
	}
	blocks = append(blocks, section(change+" This message is only visible to you and disappears when you reload Slack; the password is not stored anywhere."))
	return Msg{Text: "Your temporary password for " + r.Account.UserName, Blocks: blocks}
}

// RefusalMessage is the audit channel's line for a request refused before
// it was stored.
func RefusalMessage(f workflow.Refusal) Msg {
	acct := "an account I could not determine"
	if f.Account != "" {
		acct = code(f.Account)
	}
	verb := "reset"
	if f.Action == workflow.ActionUnlock {
		verb = "unlock"
	}
	s := fmt.Sprintf(":no_entry_sign: %s asked to %s %s: refused (%s). %s", person(f.User), verb, acct, code(string(f.Code)), escape(f.Detail))
	if f.Agent != "" {
		s = fmt.Sprintf(":no_entry_sign: %s asked, on behalf of %s, to %s %s: refused (%s). %s", user(f.Agent), person(f.User), verb, acct, code(string(f.Code)), escape(f.Detail))
	}
	if f.Code == workflow.CodeTampered {
		who := "nobody I can name"
		if f.User != "" {
			who = user(f.User) + " (as the record claims; unverified)"
		}
		s = fmt.Sprintf(":rotating_light: A stored request of %s was not acted on (%s). %s", who, code(string(f.Code)), escape(f.Detail))
	}
	if hint := helpdeskHint(f.Code); hint != "" {
		s += "\n" + hint
	}
	line := fmt.Sprintf("%s · %s", when(f.At), s)
	return Msg{Text: line, Blocks: []slack.Block{section(line)}}
}

// askedAs tells an approver why they were asked, or "" for the configured
// approvers.
func askedAs(r *workflow.Request) string {
	emp := employee(r)
	switch r.AskedAs {
	case workflow.AskedManager:
		return fmt.Sprintf("You were asked as %s's manager in the directory.", emp)
	case workflow.AskedNoManager:
		return fmt.Sprintf("You were asked as helpdesk fallback: %s has no manager in the directory.", emp)
	case workflow.AskedManagerDisabled:
		return fmt.Sprintf("You were asked as helpdesk fallback: the directory account of %s's manager is disabled.", emp)
	case workflow.AskedManagerNotInChat:
		return fmt.Sprintf("You were asked as helpdesk fallback: %s's manager in the directory is not an active Slack member.", emp)
	case workflow.AskedManagerIsRequester:
		return fmt.Sprintf("You were asked as helpdesk fallback: %s is their own manager in the directory.", emp)
	case workflow.AskedManagerIsAgent:
		return fmt.Sprintf("You were asked as helpdesk fallback: %s's manager in the directory is the helpdesk member who asked, who may not approve.", emp)
	case workflow.AskedHelpdesk:
		return fmt.Sprintf("%s (helpdesk) asked on %s's behalf; their request was the approval (HELPDESK_APPROVES).", user(r.Agent), emp)
	}
	return ""
}

// AuditParent is the audit channel's parent message of a request, kept
// current.
func AuditParent(r *workflow.Request) Msg {
	noun := "Password reset"
	if r.IsUnlock() {
		noun = "Unlock"
	}
	text := fmt.Sprintf("%s %s for %s (%s): %s", noun, r.ID, r.Account.UserName, r.Requester, r.Status)
	fields := []*slack.TextBlockObject{
		slack.NewTextBlockObject(slack.MarkdownType, "*Employee:* "+employee(r), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Account:* "+code(r.Account.UserName), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Directory:* "+code(r.DirectoryID), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Status:* "+statusLabel(r.Status)+reportedMark(r), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Approvers:* "+users(r.Approvers), false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "*Requested:* "+when(r.CreatedAt), false, false),
	}
	if r.Agent != "" {
		fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, "*Asked by:* "+user(r.Agent)+" (helpdesk, on the employee's behalf)", false, false))
	}
	if r.IsUnlock() && len(r.Approvers) == 0 {
		fields[4] = slack.NewTextBlockObject(slack.MarkdownType, "*Approvers:* none (UNLOCK_APPROVAL=none)", false, false)
	}
	blocks := []slack.Block{
		section(fmt.Sprintf(":key: %s request %s", noun, code(r.ID))),
		slack.NewSectionBlock(nil, fields, nil),
	}
	if !r.InChat() {
		blocks = append(blocks, contextLine(fmt.Sprintf(":warning: The employee has no Slack account: the temporary password is shown to the helpdesk agent %s, who hands it over (HELPDESK_DELIVERY=true), and must be changed at the next logon.", user(r.Agent))))
	}
	if r.Account.Unchecked {
		blocks = append(blocks, contextLine(uncheckedNote))
	}
	return Msg{Text: text, Blocks: blocks}
}

// uncheckedNote is the line every audit message of a request carries when
// its account was not checked against the directory.
const uncheckedNote = ":warning: Account not checked against the directory (ALLOW_UNCHECKED_ACCOUNTS=true): nobody checked that it is enabled or not an administrator."

func statusLabel(s workflow.Status) string {
	switch s {
	case workflow.StatusPending:
		return ":large_yellow_circle: pending approval"
	case workflow.StatusApproved:
		return ":large_blue_circle: approved, waiting for the employee"
	case workflow.StatusResetting:
		return ":large_blue_circle: resetting"
	case workflow.StatusCompleted:
		return ":large_green_circle: completed"
	case workflow.StatusFailed:
		return ":red_circle: failed"
	case workflow.StatusDenied:
		return ":no_entry: denied"
	case workflow.StatusExpired:
		return ":white_circle: expired"
	case workflow.StatusCancelled:
		return ":white_circle: cancelled"
	}
	return string(s)
}

// maxAuditReply bounds the text of one audit reply (a section holds 3000
// characters).
const maxAuditReply = 2900

// AuditReplies is one audit-thread reply for the events of r from index
// from on, as many as fit, and the index of the first event it leaves out.
// When the audit channel lags behind (Slack's rate limits), one reply
// carries several steps.
func AuditReplies(r *workflow.Request, from int) (Msg, int) {
	var lines []string
	size, next := 0, from
	for ; next < len(r.Events); next++ {
		line := AuditReply(r, r.Events[next]).Text
		if len(lines) > 0 && size+len(line)+1 > maxAuditReply {
			break
		}
		lines = append(lines, line)
		size += len(line) + 1
	}
	text := strings.Join(lines, "\n")
	if len(text) > maxAuditReply {
		text = strings.ToValidUTF8(text[:maxAuditReply], "") + "…"
	}
	return Msg{Text: text, Blocks: []slack.Block{section(text)}}, next
}

// AuditReply is the audit thread's line for one event.
func AuditReply(r *workflow.Request, ev workflow.Event) Msg {
	var s string
	switch ev.Kind {
	case workflow.EventRequested:
		what := "a reset of"
		if r.IsUnlock() {
			what = "an unlock of"
		}
		who := user(ev.Actor)
		if r.Agent != "" {
			who = fmt.Sprintf("%s (helpdesk), on behalf of %s,", user(ev.Actor), employee(r))
		}
		s = fmt.Sprintf("%s requested %s %s (email %s). Asked %s; decide by %s.", who, what, code(r.Account.UserName), escape(orNone(r.Account.Email)), users(r.Approvers), when(r.DecideBy))
		switch {
		case r.IsUnlock() && len(r.Approvers) == 0:
			s = fmt.Sprintf("%s requested %s %s (email %s). No approval needed (UNLOCK_APPROVAL=none).", who, what, code(r.Account.UserName), escape(orNone(r.Account.Email)))
		case r.AskedAs == workflow.AskedHelpdesk:
			s = fmt.Sprintf("%s requested %s %s (email %s). Their request is the approval (HELPDESK_APPROVES=true).", who, what, code(r.Account.UserName), escape(orNone(r.Account.Email)))
		default:
			if why := askedAs(r); why != "" {
				s += " " + strings.Replace(why, "You were", "They were", 1)
			}
		}
		if ev.Reason != "" {
			s += " Reason: " + code(ev.Reason)
		}
		if brief := factsInBrief(r.Facts); brief != "" {
			s += "\nKnown then: " + brief
		}
	case workflow.EventApproved:
		s = fmt.Sprintf("Approved by %s.", user(ev.Actor))
	case workflow.EventDenied:
		s = fmt.Sprintf("Denied by %s.", user(ev.Actor))
		if ev.Reason != "" {
			s += " Reason: " + code(ev.Reason)
		}
	case workflow.EventRevealed:
		s = fmt.Sprintf("%s clicked Reveal; resetting the password.", user(ev.Actor))
	case workflow.EventUnlocking:
		s = "Unlocking the account (lockoutTime=0)."
	case workflow.EventInterrupted:
		s = fmt.Sprintf("Reset interrupted (%s); Reveal offered again.", escape(ev.Detail))
	case workflow.EventPostponed:
		s = fmt.Sprintf("Reveal postponed, nothing changed: %s. %s", code(string(ev.Code)), escape(ev.Detail))
	case workflow.EventCompleted:
		s = "Password reset; the temporary password was shown to the employee only."
		if !r.InChat() {
			s = fmt.Sprintf("Password reset; the temporary password was shown to the helpdesk agent %s only, not to the employee, who has no Slack account (HELPDESK_DELIVERY=true). The agent hands it over; it must be changed at the next logon.", user(r.Agent))
		}
		if r.IsUnlock() {
			s = "Account unlocked (lockoutTime=0); the password is unchanged."
			if ev.Detail != "" {
				s += " " + escape(ev.Detail) + "."
			}
		}
		switch ev.Code {
		case workflow.CodeForceChangeFailed:
			s += fmt.Sprintf("\n:warning: %s: could not set \"must change password at next logon\" (%s). The employee was told to change it at once.\n%s", code(string(ev.Code)), escape(ev.Detail), helpdeskHint(ev.Code))
		case workflow.CodeUnlockNotPermitted, workflow.CodeUnlockFailed:
			s += fmt.Sprintf("\n:lock: %s: %s.\n%s", code(string(ev.Code)), escape(ev.Detail), helpdeskHint(ev.Code))
		}
		if r.Unlocked {
			s += "\n:unlock: The account was locked out; the reset also unlocked it."
		}
	case workflow.EventFailed:
		noun := "Reset"
		if r.IsUnlock() {
			noun = "Unlock"
		}
		s = fmt.Sprintf("%s failed: %s. %s", noun, code(string(ev.Code)), escape(ev.Detail))
		if hint := helpdeskHint(ev.Code); hint != "" {
			s += "\n" + hint
		}
	case workflow.EventExpired:
		s = "Expired: " + escape(ev.Detail) + "."
	case workflow.EventCancelled:
		s = fmt.Sprintf("Cancelled by %s.", user(ev.Actor))
	default:
		if s = oversightAudit(r, ev); s == "" {
			s = string(ev.Kind)
		}
	}
	line := fmt.Sprintf("%s · %s", when(ev.At), s)
	if r.Account.Unchecked {
		line += "\n" + uncheckedNote
	}
	return Msg{Text: line, Blocks: []slack.Block{section(line)}}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// EmployeeNotice is the DM that tells the employee about an event, or ok
// false when the event needs none.
func EmployeeNotice(r *workflow.Request, ev workflow.Event) (Msg, bool) {
	if r.IsUnlock() {
		return unlockNotice(r, ev)
	}
	if !r.InChat() {
		return agentNotice(r, ev)
	}
	var s string
	switch ev.Kind {
	case workflow.EventRequested:
		if r.Agent == "" {
			return Msg{}, false
		}
		s = onBehalfNotice(r)
	case workflow.EventDenied:
		s = fmt.Sprintf(":no_entry: %s denied your request to reset the password of %s. Your password was not changed. If you think this is a mistake, talk to them or to helpdesk.", user(ev.Actor), code(r.Account.UserName))
		if ev.Reason != "" {
			return Msg{Text: s, Blocks: []slack.Block{section(s), plainSection("Their reason: " + ev.Reason)}}, true
		}
	case workflow.EventEscalated:
		s = escalatedNotice(r)
	case workflow.EventExpired:
		if r.DecidedBy == "" {
			s = fmt.Sprintf(":hourglass: Nobody approved your request to reset the password of %s in time, so it expired. Your password was not changed. Run `/reset-password` to try again, or contact helpdesk.", code(r.Account.UserName))
		} else {
			s = fmt.Sprintf(":hourglass: You did not reveal your temporary password in time, so the request for %s expired. Your password was not changed. Run `/reset-password` to start again.", code(r.Account.UserName))
		}
	case workflow.EventFailed:
		s = fmt.Sprintf(":x: The reset of %s failed. %s", code(r.Account.UserName), FailureText(ev.Code))
	case workflow.EventPostponed:
		s = fmt.Sprintf(":warning: I could not check your account %s in the directory just now, so nothing was changed. Click *Reveal my temporary password* again in a minute (until %s).", code(r.Account.UserName), when(r.RevealBy))
	case workflow.EventInterrupted:
		s = fmt.Sprintf(":warning: Your new password for %s could not be shown to you. Click *Reveal my temporary password* again to get another one (until %s).", code(r.Account.UserName), when(r.RevealBy))
		if ev.Code == workflow.CodeDirectoryUncertain {
			s = fmt.Sprintf(":warning: The directory did not answer in time, so the password of %s may or may not have changed. Click *Reveal my temporary password* again to set a new one (until %s).", code(r.Account.UserName), when(r.RevealBy))
		}
	default:
		return Msg{}, false
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}, true
}

// onBehalfNotice tells the employee that a helpdesk agent asked for r on
// their behalf, and what comes next.
func onBehalfNotice(r *workflow.Request) string {
	s := fmt.Sprintf(":information_source: %s (helpdesk) asked to reset the password of your account %s on your behalf.", user(r.Agent), code(r.Account.UserName))
	if r.IsUnlock() {
		s = fmt.Sprintf(":information_source: %s (helpdesk) asked to unlock your account %s on your behalf.", user(r.Agent), code(r.Account.UserName))
	}
	switch {
	case r.IsUnlock() && r.Status != workflow.StatusPending:
		// It is unlocked at once: its outcome follows.
	case r.Status == workflow.StatusPending:
		s += fmt.Sprintf(" I asked %s to approve it.", users(r.Approvers))
		if !r.IsUnlock() {
			s += " Once it is approved, I send you a button here that shows a temporary password to you only."
		}
	default:
		s += " Their request was the approval: I send you a button here that shows a temporary password to you only."
	}
	return s + fmt.Sprintf(" If you did not ask helpdesk for this, tell them at once; `%s cancel` cancels it while it waits.", DefaultCommand)
}

// unlockFailure tells the employee why their unlock failed; without the
// right to unlock, until when the lockout lasts, when the directory said.
func unlockFailure(r *workflow.Request) string {
	if r.Failure != workflow.CodeUnlockNotPermitted || r.StillLocked == nil {
		return RequestFailureText(r)
	}
	until := "until helpdesk unlocks it"
	if l := *r.StillLocked; !l.Until.IsZero() && !l.Forever {
		until = fmt.Sprintf("until %s, when its lockout ends by itself, or until helpdesk unlocks it", when(l.Until))
	}
	return "I am not allowed to unlock accounts in this directory, so your account stays locked " + until + ". Your password was not changed."
}

// unlockNotice is the DM that tells the employee about an event of an
// unlock request, or ok false when the event needs none: the employee
// who asked themselves and needed no approval read the outcome in the
// answer to their command.
func unlockNotice(r *workflow.Request, ev workflow.Event) (Msg, bool) {
	acct := code(r.Account.UserName)
	told := r.Agent == "" && r.DecidedBy == "" // the command's answer said it all
	var s string
	switch ev.Kind {
	case workflow.EventRequested:
		if r.Agent == "" || !r.InChat() {
			return Msg{}, false
		}
		s = onBehalfNotice(r)
	case workflow.EventCompleted:
		if told {
			return Msg{}, false
		}
		s = fmt.Sprintf(":unlock: Your account %s is unlocked. Sign in with your usual password; if you do not remember it, `%s` resets it.", acct, DefaultCommand)
		if r.DecidedBy != "" && r.AskedAs != workflow.AskedHelpdesk {
			s += fmt.Sprintf(" (Approved by %s.)", user(r.DecidedBy))
		}
	case workflow.EventFailed:
		if told {
			return Msg{}, false
		}
		s = fmt.Sprintf(":x: The unlock of %s failed. %s", acct, unlockFailure(r))
	case workflow.EventDenied:
		s = fmt.Sprintf(":no_entry: %s denied your request to unlock %s, which stays as it was. If you think this is a mistake, talk to them or to helpdesk.", user(ev.Actor), acct)
	case workflow.EventExpired:
		s = fmt.Sprintf(":hourglass: Nobody approved your request to unlock %s in time, so it expired and nothing was changed. Run `%s unlock` to try again, or contact helpdesk.", acct, DefaultCommand)
	default:
		return Msg{}, false
	}
	if !r.InChat() {
		return Msg{}, false // nobody to tell in Slack: the agent read the answer to their command
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}, true
}

// agentNotice is the DM that tells the agent about an event of a reset
// they asked for an employee with no Slack account (the Reveal goes to
// them), or ok false when the event needs none.
func agentNotice(r *workflow.Request, ev workflow.Event) (Msg, bool) {
	what := fmt.Sprintf("the reset of %s for %s", code(r.Account.UserName), code(r.EmployeeEmail()))
	var s string
	switch ev.Kind {
	case workflow.EventDenied:
		s = fmt.Sprintf(":no_entry: %s denied %s that you asked for. Nothing was changed.", user(ev.Actor), what)
	case workflow.EventExpired:
		s = fmt.Sprintf(":hourglass: %s expired: nobody decided, or nobody clicked Reveal, in time. Nothing was changed.", strings.ToUpper(what[:1])+what[1:])
	case workflow.EventFailed:
		s = fmt.Sprintf(":x: %s failed. %s", strings.ToUpper(what[:1])+what[1:], RequestFailureText(r))
	case workflow.EventPostponed, workflow.EventInterrupted:
		s = fmt.Sprintf(":warning: %s could not be finished just now; nothing was shown. Click *Reveal my temporary password* again (until %s).", strings.ToUpper(what[:1])+what[1:], when(r.RevealBy))
	default:
		return Msg{}, false
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}, true
}

// Receipt answers the employee's /reset-password: which account, who was
// asked, when it expires.
func Receipt(r *workflow.Request) Msg {
	s := fmt.Sprintf(":key: Request %s created to reset the password of %s.\nI asked %s to approve it. It expires at %s if nobody decides.\nOnce it is approved I will send you a DM with a button that reveals your temporary password. `/reset-password cancel` cancels it.",
		code(r.ID), code(r.Account.UserName), users(r.Approvers), when(r.DecideBy))
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// UnlockReply answers the employee's /reset-password unlock: the outcome
// of an unlock done at once, or, when it needs approval, who was asked.
func UnlockReply(r *workflow.Request) Msg {
	acct := code(r.Account.UserName)
	var s string
	switch r.Status {
	case workflow.StatusCompleted:
		s = fmt.Sprintf(":unlock: Your account %s is unlocked. Sign in with your usual password; if you do not remember it, `%s` resets it.", acct, DefaultCommand)
	case workflow.StatusFailed:
		s = fmt.Sprintf(":x: I could not unlock %s. %s", acct, unlockFailure(r))
	case workflow.StatusPending:
		s = fmt.Sprintf(":key: Request %s created to unlock your account %s.\nI asked %s to approve it. It expires at %s if nobody decides.\nOnce it is approved, your account is unlocked at once (your password stays as it is) and I tell you here in a DM. `%s cancel` cancels it.",
			code(r.ID), acct, users(r.Approvers), when(r.DecideBy), DefaultCommand)
	default:
		s = fmt.Sprintf("Your request %s to unlock %s is %s.", code(r.ID), acct, r.Status)
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// AgentReceipt answers a helpdesk agent's request on an employee's
// behalf: what was asked, who decides, and where the outcome goes.
func AgentReceipt(r *workflow.Request) Msg {
	acct, emp := code(r.Account.UserName), employee(r)
	what := "reset the password of " + acct
	if r.IsUnlock() {
		what = "unlock " + acct
	}
	s := fmt.Sprintf(":key: Request %s created, on behalf of %s, to %s.", code(r.ID), emp, what)
	switch r.Status {
	case workflow.StatusCompleted:
		s = fmt.Sprintf(":unlock: On behalf of %s, %s is unlocked (request %s). They were told.", emp, acct, code(r.ID))
	case workflow.StatusFailed:
		s = fmt.Sprintf(":x: On behalf of %s, I could not unlock %s (request %s): %s", emp, acct, code(r.ID), RequestFailureText(r))
	case workflow.StatusApproved:
		s += " Your request is the approval (HELPDESK_APPROVES=true): they get a button in their DM that shows a temporary password to them only."
	case workflow.StatusPending:
		s += fmt.Sprintf(" I asked %s to approve it; it expires at %s.", users(r.Approvers), when(r.DecideBy))
		switch {
		case !r.InChat():
			s += " They have no Slack account: once it is approved, *you* get the button that shows the temporary password (HELPDESK_DELIVERY=true), to hand over once you are sure who they are; it must be changed at the next logon."
		case r.IsUnlock():
			s += " Once it is approved, the account is unlocked at once."
		default:
			s += " Once it is approved, they get a button in their DM that shows a temporary password to them only."
		}
	}
	if r.InChat() && r.Status != workflow.StatusCompleted && r.Status != workflow.StatusFailed {
		s += " They were told that you asked."
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// AskReply answers the command that made r, asked by the chat user by.
func AskReply(r *workflow.Request, by string) Msg {
	switch {
	case r.Agent != "" && r.Agent == by:
		return AgentReceipt(r)
	case r.IsUnlock():
		return UnlockReply(r)
	}
	return Receipt(r)
}

// StatusReply describes the employee's open request.
func StatusReply(r *workflow.Request) Msg {
	if r.IsUnlock() || r.Agent != "" {
		return requestStatus(r)
	}
	var s string
	switch r.Status {
	case workflow.StatusPending:
		s = fmt.Sprintf("Your request %s to reset %s is waiting for approval from %s. It expires at %s.", code(r.ID), code(r.Account.UserName), users(r.Approvers), when(r.DecideBy))
	case workflow.StatusApproved:
		s = fmt.Sprintf("Your request %s to reset %s was approved by %s. Use the Reveal button in my DM before %s.", code(r.ID), code(r.Account.UserName), user(r.DecidedBy), when(r.RevealBy))
	case workflow.StatusResetting:
		s = fmt.Sprintf("Your request %s: the password of %s is being reset right now.", code(r.ID), code(r.Account.UserName))
	default:
		s = fmt.Sprintf("Your request %s is %s.", code(r.ID), r.Status)
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// requestStatus describes the employee's open unlock request, or one
// made on their behalf.
func requestStatus(r *workflow.Request) Msg {
	what := "to reset " + code(r.Account.UserName)
	if r.IsUnlock() {
		what = "to unlock " + code(r.Account.UserName)
	}
	by := ""
	if r.Agent != "" {
		by = fmt.Sprintf(" (asked by %s, helpdesk, on your behalf)", user(r.Agent))
	}
	var s string
	switch r.Status {
	case workflow.StatusPending:
		s = fmt.Sprintf("Your request %s %s%s is waiting for approval from %s. It expires at %s.", code(r.ID), what, by, users(r.Approvers), when(r.DecideBy))
	case workflow.StatusApproved:
		s = fmt.Sprintf("Your request %s %s%s was approved by %s. Use the Reveal button in my DM before %s.", code(r.ID), what, by, user(r.DecidedBy), when(r.RevealBy))
	case workflow.StatusResetting:
		s = fmt.Sprintf("Your request %s %s%s is being carried out right now.", code(r.ID), what, by)
	default:
		s = fmt.Sprintf("Your request %s %s%s is %s.", code(r.ID), what, by, r.Status)
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// CancelReply confirms a cancellation.
func CancelReply(r *workflow.Request) Msg {
	s := fmt.Sprintf("Cancelled your request %s to reset %s. Your password was not changed.", code(r.ID), code(r.Account.UserName))
	if r.IsUnlock() {
		s = fmt.Sprintf("Cancelled your request %s to unlock %s. Nothing was changed.", code(r.ID), code(r.Account.UserName))
	}
	if r.Agent != "" {
		s += fmt.Sprintf(" It was asked by %s (helpdesk) on your behalf; tell them if you did not want it.", user(r.Agent))
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// HelpMessage explains the command; problem, when set, says what was wrong
// with what the user typed.
func HelpMessage(command, problem string) Msg {
	s := fmt.Sprintf("*%s* resets the password of your own directory account, with a manager's approval.\n"+
		"• `%s`: ask for a reset. An approver gets a DM; once they approve, I send you a button that shows a temporary password to you only.\n"+
		"• `%s unlock`: unlock your account when it is locked out after too many bad passwords (an old password saved on a phone, say); your password stays as it is.\n"+
		"• `%s status`: show your open request.\n"+
		"• `%s cancel`: cancel your open request.\n"+
		"• `%s help`: this help.\n"+
		"Helpdesk members may ask for someone else: `%s @someone` or `%s for someone@example.com`, with `unlock` after it to unlock.", command, command, command, command, command, command, command, command)
	if problem != "" {
		s = ":warning: " + problem + "\n\n" + s
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// TextMessage is a one-line reply.
func TextMessage(s string) Msg { return Msg{Text: s, Blocks: []slack.Block{section(s)}} }
