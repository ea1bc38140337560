package slackapp

import (
	"fmt"

	"github.com/example/resetbot/workflow"
)

// ErrorText is the one place that turns an error into what a person reads.
// r, when known, is the request the error is about. Internal errors get a
// short generic line; their detail goes to the log only.
func ErrorText(err error, r *workflow.Request) string {
	switch c := workflow.ErrorCode(err); c {
	case workflow.CodeNotFound:
		return "I don't know that request. It may be older than my records, or the button was not made by me."
	case workflow.CodeNoOpenRequest:
		return "You have no open password reset request. Type `/reset-password` to start one."
	case workflow.CodeOpenRequest:
		if r != nil {
			return fmt.Sprintf("You already have an open request (%s, %s). Use `/reset-password status` to see it or `/reset-password cancel` to cancel it.", code(r.ID), r.Status)
		}
		return "You already have an open request. Use `/reset-password status` to see it or `/reset-password cancel` to cancel it."
	case workflow.CodeRateLimited:
		return "You have reached the limit of password reset requests for now. Please try again later or contact helpdesk."
	case workflow.CodeDecided:
		switch {
		case r != nil && r.Status == workflow.StatusExpired:
			return fmt.Sprintf("Nothing changed: this request already expired at %s. The employee can run `/reset-password` again.", when(r.EndedAt))
		case r != nil && r.Status == workflow.StatusCancelled:
			return "Nothing changed: this request was already cancelled by the employee."
		}
		if r != nil && r.DecidedBy != "" {
			verb := "approved"
			if r.Status == workflow.StatusDenied {
				verb = "denied"
			}
			return fmt.Sprintf("Nothing changed: this request was already %s by %s at %s (now %s).", verb, user(r.DecidedBy), when(r.DecidedAt), r.Status)
		}
		if r != nil {
			return fmt.Sprintf("Nothing changed: this request is already %s.", r.Status)
		}
		return "Nothing changed: this request was already decided."
	case workflow.CodeExpired:
		return "Nothing changed: this request has expired. The employee can run `/reset-password` again."
	case workflow.CodeWrongState:
		if r != nil && r.Status == workflow.StatusResetting {
			return "Your password is being reset right now; wait for the message with your temporary password."
		}
		if r != nil && r.Status == workflow.StatusPending {
			return "This request has not been approved yet."
		}
		return "Nothing changed: the request is not in a state that allows this."
	case workflow.CodeSelfApproval:
		return "You cannot approve or deny your own password reset request. Another approver has to decide."
	case workflow.CodeNotApprover:
		return "You are not an approver of this request, so your click changed nothing."
	case workflow.CodeNotRequester:
		return "Only the person who asked for this reset can use this button."
	case workflow.CodeUnknownUser:
		return "I could not find your Slack account details, so I cannot tell which directory account is yours. Please contact helpdesk."
	case workflow.CodeIneligibleUser:
		return "Password resets here are only for active employees (not guests, bots or deactivated accounts). Please contact helpdesk."
	case workflow.CodeNoEmail:
		return "Your Slack profile has no email address, so I cannot tell which directory account is yours. Please contact helpdesk."
	case workflow.CodeEmailDomain:
		return "Your Slack email address is not in a domain this bot serves, so I cannot reset a directory password for you. Please contact helpdesk."
	case workflow.CodeProtectedAccount:
		return "This account is protected and cannot be reset with this bot. Please contact helpdesk."
	case workflow.CodeLookupUnavailable:
		return "I can't reach the directory right now to check your account, so nothing was changed. Please try again in a minute."
	case workflow.CodeNoApprovers:
		return "There is nobody who could approve your request right now. Please contact helpdesk."
	case workflow.CodeUnavailable:
		return "I can't reach my database right now, so I could not finish this. Please try again in a minute; `/reset-password status` shows where your request stands."
	default:
		if t := FailureText(c); t != "" && c != workflow.CodeInternal {
			return t
		}
		return "Something went wrong on my side and nothing was changed. Please try again in a minute; if it keeps happening, contact helpdesk."
	}
}

// FailureText tells the employee why a reset failed, one distinct message
// per cause.
func FailureText(code workflow.Code) string {
	switch code {
	case workflow.CodeUserDoesNotExist:
		return "The directory has no account with your user name. Your password was not changed; helpdesk can check which account is yours."
	case workflow.CodeInvalidPassword:
		return "The directory's password policy rejected the temporary passwords I generated, so your password was not changed. Helpdesk has been told."
	case workflow.CodeDirectoryUnavailable:
		return "The directory is not reachable right now, even after several tries. Your password was not changed; please try again later."
	case workflow.CodeUnsupportedOperation:
		return "The directory does not allow this account's password to be reset by this service (for example an administrator account, or one outside the managed OU). Please contact helpdesk."
	case workflow.CodeDirectoryDoesNotExist:
		return "The bot is configured with a directory that does not exist. Your password was not changed; the operators have been alerted."
	case workflow.CodeDirectoryClient:
		return "The directory refused the request because of a problem on the bot's side. Your password was not changed; helpdesk has been told."
	case workflow.CodeDirectoryService:
		return "AWS Directory Service had an internal error, even after several tries. Your password was not changed; please try again later."
	case workflow.CodeDirectoryThrottled:
		return "AWS is limiting how fast we can reset passwords right now. Your password was not changed; please try again in a few minutes."
	case workflow.CodeDirectoryAccessDenied:
		return "The bot is not allowed to reset passwords in this directory (AWS access denied). Your password was not changed; the operators have been alerted."
	case workflow.CodeDirectoryUncertain:
		return "The directory did not answer in time, so your password may or may not have changed. Click Reveal again to set a new one, or contact helpdesk."
	case workflow.CodeInterrupted:
		return "The reset was interrupted several times before your password could be shown to you. Please contact helpdesk, or start a new request with `/reset-password`."
	case workflow.CodeNoAccount:
		return "I could not find a directory account with your Slack email address, so I cannot tell which account is yours. Your password was not changed; please contact helpdesk."
	case workflow.CodeAmbiguousAccount:
		return "More than one directory account has your Slack email address, so I cannot tell which one is yours. Your password was not changed; please contact helpdesk."
	case workflow.CodeAccountDisabled:
		return "Your directory account is disabled, and a reset would enable it again, so I cannot reset it here. Please contact helpdesk."
	case workflow.CodeProtectedGroup:
		return "Your directory account is in an administrators' group, and those accounts cannot be reset with this bot. Please contact helpdesk."
	case workflow.CodeMachineAccount:
		return "That is a computer or service account, not a person's account, so I cannot reset it here. Please contact helpdesk."
	case workflow.CodeOutsideOU:
		return "Your directory account is outside the part of the directory this bot may reset. Please contact helpdesk."
	case workflow.CodeProtectedAccount:
		return "This account is protected and cannot be reset with this bot. Please contact helpdesk."
	case workflow.CodeInvalidUserName:
		return "Your directory account name is not one I can reset here (it breaks the directory's naming rules or holds invisible characters). Please contact helpdesk."
	case workflow.CodeInternal:
		return "Something went wrong on the bot's side. Please contact helpdesk."
	}
	return ""
}

// helpdeskHint tells helpdesk what to do about a failure, in the audit
// thread.
func helpdeskHint(code workflow.Code) string {
	switch code {
	case workflow.CodeDirectoryDoesNotExist:
		return ":rotating_light: Operators: DIRECTORY_ID does not name a directory this account and region can see."
	case workflow.CodeDirectoryAccessDenied:
		return ":rotating_light: Operators: the bot's IAM role lacks ds:ResetUserPassword on this directory."
	case workflow.CodeUnsupportedOperation:
		return "Helpdesk: the account is outside the OU AWS lets us reset, or is an administrator; reset it by hand if appropriate."
	case workflow.CodeUserDoesNotExist:
		return "Helpdesk: the email-derived account name does not exist; check the employee's account name."
	case workflow.CodeInvalidPassword:
		return "Helpdesk: the directory's password policy is stricter than the generator; check length and complexity settings."
	case workflow.CodeAccountDisabled:
		return "Helpdesk: the account is disabled; a reset would have enabled it. Enable it first if the employee should have it back."
	case workflow.CodeProtectedGroup, workflow.CodeProtectedAccount:
		return "Helpdesk: a privileged account; reset it by hand after checking who asks."
	case workflow.CodeAmbiguousAccount:
		return "Helpdesk: several accounts share this email; fix the directory or add the employee to ACCOUNT_MAP_FILE."
	case workflow.CodeNoAccount:
		return "Helpdesk: no account has this email as mail or userPrincipalName; fix the directory or add the employee to ACCOUNT_MAP_FILE."
	case workflow.CodeForceChangeFailed:
		return "Helpdesk: give the bot's LDAP account write access to pwdLastSet, or set \"must change password\" by hand."
	}
	return ""
}
