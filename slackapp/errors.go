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
	helpdesk string // a hint after the operator detail; "" when the detail says it all
}

// genericText is what a person reads about an internal error; its detail
// goes to the log only.
const genericText = "Something went wrong on my side and nothing was changed. Please try again in a minute; if it keeps happening, contact helpdesk."

// texts is the one table of what people read, keyed by code. Every code in
// workflow.Codes has an entry (a test checks it).
var texts = map[workflow.Code]codeText{
	workflow.CodeNotFound:         {employee: "I don't know that request. It may be older than my records, or the button was not made by me."},
	workflow.CodeNoOpenRequest:    {employee: "You have no open password reset request. Type `{command}` to start one."},
	workflow.CodeOpenRequest:      {employee: "You already have an open request. Use `{command} status` to see it or `{command} cancel` to cancel it."},
	workflow.CodeRateLimited:      {employee: "You have reached the limit of password reset requests for now. Please try again later or contact helpdesk."},
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
		employee: "This account is protected and cannot be reset with this bot. Please contact helpdesk.",
		helpdesk: "Helpdesk: a privileged account; reset it by hand after checking who asks.",
	},
	workflow.CodeNoApprovers: {employee: "There is nobody who could approve your request right now. Please contact helpdesk."},
	workflow.CodeNoAccount: {
		employee: "I could not find a directory account with your Slack email address, so I cannot tell which account is yours. Your password was not changed; please contact helpdesk.",
		helpdesk: "Helpdesk: no account has this email as mail or userPrincipalName; fix the directory or add the employee to ACCOUNT_MAP_FILE.",
	},
	workflow.CodeAmbiguousAccount: {
		employee: "More than one directory account has your Slack email address, so I cannot tell which one is yours. Your password was not changed; please contact helpdesk.",
		helpdesk: "Helpdesk: several accounts share this email; fix the directory or add the employee to ACCOUNT_MAP_FILE.",
	},
	workflow.CodeAccountDisabled: {
		employee: "Your directory account is disabled, and a reset would enable it again, so I cannot reset it here. Please contact helpdesk.",
		helpdesk: "Helpdesk: the account is disabled; a reset would have enabled it. Enable it first if the employee should have it back.",
	},
	workflow.CodeProtectedGroup: {
		employee: "Your directory account is in an administrators' group, and those accounts cannot be reset with this bot. Please contact helpdesk.",
		helpdesk: "Helpdesk: a privileged account; reset it by hand after checking who asks.",
	},
	workflow.CodeMachineAccount:    {employee: "That is a computer or service account, not a person's account, so I cannot reset it here. Please contact helpdesk."},
	workflow.CodeOutsideOU:         {employee: "Your directory account is outside the part of the directory this bot may reset. Please contact helpdesk."},
	workflow.CodeLookupUnavailable: {employee: "I can't reach the directory right now to check your account, so nothing was changed. Please try again in a minute."},
	workflow.CodeUncheckable: {
		employee: "I could not read everything I must check about your directory account, so I cannot reset it here. Your password was not changed; please contact helpdesk.",
		helpdesk: "Helpdesk: the bot's LDAP account may not read an attribute a guard needs on this account (often a privileged account with a tighter ACL); reset it by hand after checking who asks.",
	},
	workflow.CodeAdminCount: {
		employee: "Your directory account is marked as privileged (it is or was in an administrators' group), and those accounts cannot be reset with this bot. Please contact helpdesk.",
		helpdesk: "Helpdesk: adminCount=1 (AdminSDHolder); reset it by hand after checking who asks, or clear adminCount if the account is no longer privileged.",
	},
	workflow.CodeEmailMismatch: {
		employee: "The directory account I found does not have your Slack email address, so I cannot be sure it is yours. Your password was not changed; please contact helpdesk.",
		helpdesk: "Helpdesk: the account's mail and userPrincipalName differ from the Slack email; fix the directory or add the employee to ACCOUNT_MAP_FILE.",
	},
	workflow.CodeAccountChanged: {
		employee: "Your directory account is not the one this request was made for any more, so nothing was reset. Please start a new request with `{command}`.",
		helpdesk: "Helpdesk: the employee's account changed between the request and Reveal (another object, or a changed email or account map).",
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
}

// text returns the words for code, with the slash command filled in.
func text(code workflow.Code) codeText {
	t, ok := texts[code]
	if !ok {
		t = codeText{employee: genericText}
	}
	t.employee = strings.ReplaceAll(t.employee, "{command}", DefaultCommand)
	return t
}

// ErrorText is the one place that turns an error into what a person reads.
// r, when known, is the request the error is about and makes a few answers
// more precise. Internal errors get a short generic line; their detail goes
// to the log only.
func ErrorText(err error, r *workflow.Request) string {
	c := workflow.ErrorCode(err)
	if r != nil {
		if s := aboutRequest(c, r); s != "" {
			return s
		}
	}
	return text(c).employee
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
		switch r.Status {
		case workflow.StatusResetting:
			return "Your password is being reset right now; wait for the message with your temporary password."
		case workflow.StatusPending:
			return "This request has not been approved yet."
		}
	}
	return ""
}

// FailureText tells the employee why a reset failed, one distinct message
// per cause.
func FailureText(c workflow.Code) string { return text(c).employee }

// helpdeskHint tells helpdesk what to do about a failure or refusal, in the
// audit channel.
func helpdeskHint(c workflow.Code) string { return text(c).helpdesk }
