package slackapp

import (
	"fmt"
	"strings"

	"github.com/example/resetbot/workflow"
)

// codeText is what people read about a code: the employee (or whoever
// clicked) and helpdesk in the audit channel. {command} stands for the
// slash command.
type codeText struct {
	employee string
	unlock   string // what the employee reads about an unlock, when it differs from employee
	// agent is what a helpdesk agent who asked on an employee's behalf
	// reads, {who} standing for the employee; "" when the employee's
	// words, quoted, say it (see OnBehalfErrorText).
	agent    string
	helpdesk string // a hint after the operator detail; "" when the detail says it all
}

// genericText is what a person reads about an internal error; its detail
// goes to the log only.
const genericText = "Something went wrong on my side and nothing was changed. Please try again in a minute; if it keeps happening, contact helpdesk."

// texts is the one table of what people read, keyed by code. Every code in
// workflow.Codes has an entry (a test checks it).
var texts = map[workflow.Code]codeText{
	workflow.CodeNotFound:      {employee: "I don't know that request. It may be older than my records, or the button was not made by me."},
	workflow.CodeNoOpenRequest: {employee: "You have no open password reset request. Type `{command}` to start one."},
	workflow.CodeOpenRequest: {
		employee: "You already have an open request. Use `{command} status` to see it or `{command} cancel` to cancel it.",
		agent:    "{who} already has an open request; they see it with `{command} status` and can cancel it with `{command} cancel`.",
	},
	workflow.CodeRateLimited: {
		employee: "You have reached the limit of password reset requests for now. Please try again later or contact helpdesk.",
		unlock:   "You have reached the limit of unlocks for now. Please try again later, or contact helpdesk; `{command}` can still reset your password.",
		agent:    "{who} has reached the limit of these requests for now (their own and those made for them count): use your directory tools.",
	},
	workflow.CodeDecided:          {employee: "Nothing changed: this request was already decided."},
	workflow.CodeExpired:          {employee: "Nothing changed: this request has expired. The employee can run `{command}` again."},
	workflow.CodeWrongState:       {employee: "Nothing changed: the request is not in a state that allows this."},
	workflow.CodeSelfApproval:     {employee: "You cannot approve or deny your own password reset request. Another approver has to decide."},
	workflow.CodeNotApprover:      {employee: "You are not an approver of this request, so your click changed nothing."},
	workflow.CodeNotRequester:     {employee: "Only the person who asked for this reset can use this button."},
	workflow.CodeApproverInactive: {employee: "Nothing changed: I could not confirm that your own account may approve right now (it is deactivated, a guest or bot account, not of this workspace, or disabled in the directory). Another approver has to decide; helpdesk can check your account."},
	workflow.CodeUnknownUser:      {employee: "I could not find your Slack account details, so I cannot tell which directory account is yours. Please contact helpdesk."},
	workflow.CodeIneligibleUser:   {employee: "Password resets here are only for active employees (not guests, bots or deactivated accounts). Please contact helpdesk."},
	workflow.CodeNoEmail:          {employee: "Your Slack profile has no email address, so I cannot tell which directory account is yours. Please contact helpdesk."},
	workflow.CodeEmailDomain:      {employee: "Your Slack email address is not in a domain this bot serves, so I cannot reset a directory password for you. Please contact helpdesk."},
	workflow.CodeEmailUnconfirmed: {employee: "Slack has not confirmed the email address on your profile, so I cannot tell which directory account is yours. Confirm it in Slack, or contact helpdesk."},
	workflow.CodeForeignUser:      {employee: "Password resets here are only for members of this Slack workspace, not for people from other organisations. Please contact your own helpdesk."},
	workflow.CodeInvalidUserName:  {employee: "Your directory account name is not one I can reset here (it breaks the directory's naming rules or holds invisible characters). Please contact helpdesk."},
	workflow.CodeProtectedAccount: {
		employee: "This account is protected and cannot be reset or unlocked with this bot. Please contact helpdesk.",
		helpdesk: "Helpdesk: a privileged account; reset it by hand after checking who asks.",
	},
	workflow.CodeNoApprovers: {
		employee: "There is nobody who could approve your request right now. Please contact helpdesk.",
		agent:    "There is nobody but you and {who} who could approve this request, and neither of you may. Use your directory tools.",
	},
	workflow.CodeNoAccount: {
		employee: "I could not find a directory account with your Slack email address, so I cannot tell which account is yours. Your password was not changed; please contact helpdesk.",
		helpdesk: "Helpdesk: no account has this email as mail or userPrincipalName; fix the directory or add the employee to ACCOUNT_MAP_FILE.",
	},
	workflow.CodeAmbiguousAccount: {
		employee: "More than one directory account has your Slack email address, so I cannot tell which one is yours. Your password was not changed; please contact helpdesk.",
		helpdesk: "Helpdesk: several accounts share this email; fix the directory or add the employee to ACCOUNT_MAP_FILE.",
	},
	workflow.CodeAccountDisabled: {
		employee: "Your directory account is disabled, and the bot never touches disabled accounts (a reset would enable it again). Please contact helpdesk.",
		helpdesk: "Helpdesk: the account is disabled; a reset would have enabled it. Enable it first if the employee should have it back.",
	},
	workflow.CodeProtectedGroup: {
		employee: "Your directory account is in an administrators' group, and those accounts cannot be reset or unlocked with this bot. Please contact helpdesk.",
		helpdesk: "Helpdesk: a privileged account; reset it by hand after checking who asks.",
	},
	workflow.CodeMachineAccount:    {employee: "That is a computer or service account, not a person's account, so I cannot reset or unlock it here. Please contact helpdesk."},
	workflow.CodeOutsideOU:         {employee: "Your directory account is outside the part of the directory this bot may reset or unlock. Please contact helpdesk."},
	workflow.CodeLookupUnavailable: {employee: "I can't reach the directory right now to check your account, so nothing was changed. Please try again in a minute."},
	workflow.CodeUncheckable: {
		employee: "I could not read everything I must check about your directory account, so I cannot reset or unlock it here. Nothing was changed; please contact helpdesk.",
		helpdesk: "Helpdesk: the bot's LDAP account may not read an attribute a guard needs on this account (often a privileged account with a tighter ACL); reset it by hand after checking who asks.",
	},
	workflow.CodeAdminCount: {
		employee: "Your directory account is marked as privileged (it is or was in an administrators' group), and those accounts cannot be reset or unlocked with this bot. Please contact helpdesk.",
		helpdesk: "Helpdesk: adminCount=1 (AdminSDHolder); reset it by hand after checking who asks, or clear adminCount if the account is no longer privileged.",
	},
	workflow.CodeEmailMismatch: {
		employee: "The directory account I found does not have your Slack email address, so I cannot be sure it is yours. Your password was not changed; please contact helpdesk.",
		helpdesk: "Helpdesk: the account's mail and userPrincipalName differ from the Slack email; fix the directory or add the employee to ACCOUNT_MAP_FILE.",
	},
	workflow.CodeAccountChanged: {
		employee: "Your directory account is not the one this request was made for any more, so nothing was reset. Please start a new request with `{command}`.",
		unlock:   "Your directory account is not the one this request was made for any more, so nothing was unlocked. Please start a new request with `{command} unlock`.",
		helpdesk: "Helpdesk: the employee's account changed between the request and Reveal (another object, or a changed email or account map).",
	},
	workflow.CodeNotLocked: {
		employee: "Your account is not locked, so I changed nothing. If you still cannot sign in, your password may be wrong or expired: `{command}` resets it.",
		agent:    "{who}'s account is not locked, so I changed nothing. If they cannot sign in, their password may be wrong or expired: a reset may help.",
	},
	workflow.CodeUnlockNotPermitted: {
		employee: "I am not allowed to unlock accounts in this directory, so your account stays locked until its lockout ends by itself, or until helpdesk unlocks it. Your password was not changed.",
		helpdesk: "Helpdesk: the account is still locked: unlock it by hand (ADUC: the Account tab, Unlock account). Operators: delegate Write lockoutTime to the bot's LDAP account (README, LDAP permissions).",
	},
	workflow.CodeUnlockFailed: {
		employee: "Your password was reset, but I could not unlock your account: it stays locked until its lockout ends by itself, or until helpdesk unlocks it.",
		helpdesk: "Helpdesk: the password was reset but the account is still locked: unlock it by hand (ADUC: the Account tab, Unlock account).",
	},
	workflow.CodeUnlockInterrupted: {
		employee: "The unlock was interrupted and I could not confirm it. Try to sign in; if your account is still locked, run `{command} unlock` again or contact helpdesk.",
		helpdesk: "Helpdesk: the replica doing the unlock stopped; the account may or may not be unlocked.",
	},
	workflow.CodeUnlockDisabled: {
		employee: "Unlocking accounts is not set up here. Please contact helpdesk; `{command}` can still reset your password.",
		agent:    "Unlocking accounts is not set up here (the bot has no LDAP_URL): unlock {who}'s account with your directory tools.",
	},
	workflow.CodeNotHelpdesk: {
		employee: "Only helpdesk members can ask for someone else, so nothing was done. `{command}` resets your own password and `{command} unlock` unlocks your own account.",
		helpdesk: "Helpdesk: someone not in HELPDESK named another person; nothing was looked up.",
	},
	workflow.CodeNotInChat: {
		employee: "Nobody in Slack has that email address, so there is nobody to give a temporary password to: it never goes to helpdesk unless HELPDESK_DELIVERY is on. Nothing was done.",
		agent:    "Nobody in Slack has the email address {who}, so there is nobody to give a temporary password to: it never goes to helpdesk unless HELPDESK_DELIVERY is on. Nothing was done; use your directory tools (an unlock works: `{command} for <email> unlock`).",
	},
	workflow.CodeAgentNotDelivered: {
		employee: "The password was reset, but I could not make it \"must change at next logon\", so I did not show it to you: nobody knows it now. Reset it with your directory tools.",
		helpdesk: "Helpdesk: the account's password is now unknown to everyone: reset it by hand. Operators: give the bot's LDAP account Write pwdLastSet (README, LDAP permissions).",
	},
	workflow.CodeTampered: {
		employee: "I could not verify this request's record, so I did not act on it and nothing was reset. Helpdesk has been told; please start a new request with `{command}`.",
		helpdesk: ":rotating_light: Security: a stored request failed its signature check (changed outside the bot, or STATE_KEY differs between replicas). Check who can write to the bot's Redis.",
	},
	workflow.CodeUserDoesNotExist: {
		employee: "The directory has no account with your user name. Your password was not changed; helpdesk can check which account is yours.",
		helpdesk: "Helpdesk: the email-derived account name does not exist; check the employee's account name.",
	},
	workflow.CodeInvalidPassword: {
		employee: "The directory's password policy rejected the temporary passwords I generated, so your password was not changed. Helpdesk has been told.",
		helpdesk: "Helpdesk: the directory's password policy is stricter than the generator; check length and complexity settings.",
	},
	workflow.CodeDirectoryUnavailable: {employee: "The directory is not reachable right now, even after several tries. Your password was not changed; please try again later."},
	workflow.CodeUnsupportedOperation: {
		employee: "The directory does not allow this account's password to be reset by this service (for example an administrator account, or one outside the managed OU). Please contact helpdesk.",
		helpdesk: "Helpdesk: the account is outside the OU AWS lets us reset, or is an administrator; reset it by hand if appropriate.",
	},
	workflow.CodeDirectoryDoesNotExist: {
		employee: "The bot is configured with a directory that does not exist. Your password was not changed; the operators have been alerted.",
		helpdesk: ":rotating_light: Operators: DIRECTORY_ID does not name a directory this account and region can see.",
	},
	workflow.CodeDirectoryClient:    {employee: "The directory refused the request because of a problem on the bot's side. Your password was not changed; helpdesk has been told."},
	workflow.CodeDirectoryService:   {employee: "AWS Directory Service had an internal error, even after several tries. Your password was not changed; please try again later."},
	workflow.CodeDirectoryThrottled: {employee: "AWS is limiting how fast we can reset passwords right now. Your password was not changed; please try again in a few minutes."},
	workflow.CodeDirectoryAccessDenied: {
		employee: "The bot is not allowed to reset passwords in this directory (AWS access denied). Your password was not changed; the operators have been alerted.",
		helpdesk: ":rotating_light: Operators: the bot's IAM role lacks ds:ResetUserPassword on this directory.",
	},
	workflow.CodeDirectoryUncertain: {employee: "The directory did not answer in time, so your password may or may not have changed. Click Reveal again to set a new one, or contact helpdesk."},
	workflow.CodeInterrupted:        {employee: "The reset was interrupted several times before your password could be shown to you. Please contact helpdesk, or start a new request with `{command}`."},
	workflow.CodeDeliveryFailed:     {employee: "Your new password could not be shown to you. Click Reveal again to get another one, or contact helpdesk."},
	workflow.CodeForceChangeFailed: {
		employee: "Your password was reset, but the directory will not ask you to change it: change it yourself right after signing in.",
		helpdesk: "Helpdesk: give the bot's LDAP account write access to pwdLastSet, or set \"must change password\" by hand.",
	},
	workflow.CodeUnavailable:            {employee: "I can't reach my database right now, so I could not finish this. Please try again in a minute; `{command} status` shows where your request stands."},
	workflow.CodeInternal:               {employee: genericText},
	workflow.CodeConflict:               {employee: genericText},
	workflow.CodeInvalidInput:           {employee: genericText},
	workflow.CodeDirectoryMisconfigured: {employee: genericText},
	workflow.CodeAlreadyReported:        {employee: "You already reported this reset; helpdesk was alerted then. Call helpdesk if you have not heard from them."},
	workflow.CodeNoticeFailed: {
		employee: "Your password was reset, but the notice email to your directory address could not be sent.",
		helpdesk: "Helpdesk: the account's owner was not told by email; tell them another way that their password was reset.",
	},
}

// text returns the words for code, with the slash command filled in.
func text(code workflow.Code) codeText {
	t, ok := texts[code]
	if !ok {
		t = codeText{employee: genericText}
	}
	for _, s := range []*string{&t.employee, &t.unlock, &t.agent} {
		*s = strings.ReplaceAll(*s, "{command}", DefaultCommand)
	}
	return t
}

// forAction returns what the employee reads about code for action a.
func (t codeText) forAction(a workflow.Action) string {
	if a.Name() == workflow.ActionUnlock && t.unlock != "" {
		return t.unlock
	}
	return t.employee
}

// ErrorText is the one place that turns an error into what a person reads.
// r, when known, is the request the error is about and makes a few answers
// more precise. Internal errors get a short generic line; their detail goes
// to the log only.
func ErrorText(err error, r *workflow.Request) string {
	a := workflow.ActionReset
	if r != nil {
		a = r.Action
	}
	return ActionErrorText(err, a, r)
}

// ActionErrorText is ErrorText for an answer about action a (a refusal
// of `/reset-password unlock` has no request yet).
func ActionErrorText(err error, a workflow.Action, r *workflow.Request) string {
	c := workflow.ErrorCode(err)
	if r != nil {
		if s := aboutRequest(c, r); s != "" {
			return s
		}
	}
	return text(c).forAction(a)
}

// OnBehalfErrorText is what a helpdesk agent who asked for action a on
// the employee's behalf (who: their mention, or their email) reads about
// a refusal: the code, and the employee's own words quoted (or words for
// the agent), and helpdesk's hint.
func OnBehalfErrorText(err error, a workflow.Action, who string, r *workflow.Request) string {
	c := workflow.ErrorCode(err)
	t := text(c)
	if c == workflow.CodeOpenRequest && r != nil {
		return fmt.Sprintf("%s already has an open request (%s, %s %s); they see it with `%s status` and can cancel it with `%s cancel`.",
			who, code(r.ID), r.Action.Name(), r.Status, DefaultCommand, DefaultCommand)
	}
	if t.agent != "" {
		return strings.ReplaceAll(t.agent, "{who}", who)
	}
	s := fmt.Sprintf(":no_entry_sign: Nothing was done for %s (%s). They would read: _%s_", who, code(string(c)), t.forAction(a))
	if t.helpdesk != "" {
		s += "\n" + t.helpdesk
	}
	return s
}

// aboutRequest words the codes whose answer names the request, or "".
func aboutRequest(c workflow.Code, r *workflow.Request) string {
	switch c {
	case workflow.CodeOpenRequest:
		return fmt.Sprintf("You already have an open request (%s, %s). Use `%s status` to see it or `%s cancel` to cancel it.", code(r.ID), r.Status, DefaultCommand, DefaultCommand)
	case workflow.CodeDecided:
		switch {
		case r.Status == workflow.StatusExpired:
			return fmt.Sprintf("Nothing changed: this request already expired at %s. The employee can run `%s` again.", when(r.EndedAt), DefaultCommand)
		case r.Status == workflow.StatusCancelled:
			return "Nothing changed: this request was already cancelled by the employee."
		case r.DecidedBy != "":
			verb := "approved"
			if r.Status == workflow.StatusDenied {
				verb = "denied"
			}
			return fmt.Sprintf("Nothing changed: this request was already %s by %s at %s (now %s).", verb, user(r.DecidedBy), when(r.DecidedAt), r.Status)
		}
		return fmt.Sprintf("Nothing changed: this request is already %s.", r.Status)
	case workflow.CodeWrongState:
		switch {
		case r.Status == workflow.StatusResetting && r.IsUnlock():
			return "Your account is being unlocked right now; the outcome follows in a moment."
		case r.Status == workflow.StatusResetting:
			return "Your password is being reset right now; wait for the message with your temporary password."
		case r.Status == workflow.StatusPending:
			return "This request has not been approved yet."
		}
	}
	return ""
}

// FailureText tells the employee why a reset failed, one distinct message
// per cause.
func FailureText(c workflow.Code) string { return text(c).employee }

// RequestFailureText tells the employee why request r failed, in the
// words of its action.
func RequestFailureText(r *workflow.Request) string { return text(r.Failure).forAction(r.Action) }

// helpdeskHint tells helpdesk what to do about a failure or refusal, in the
// audit channel.
func helpdeskHint(c workflow.Code) string { return text(c).helpdesk }
