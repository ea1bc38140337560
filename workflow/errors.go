package workflow

import (
	"errors"
	"fmt"
)

// Code classifies an error so that the edge (Slack) can choose the words a
// person reads. Codes are stable; messages are for operators and logs.
type Code string

// Codes returned by this package and by the adapters that implement its
// interfaces. Each one that a user can cause has its own message in slackapp.
const (
	// Request lookup and state.
	CodeNotFound         Code = "not_found"         // no such request (unknown or forged ID)
	CodeNoOpenRequest    Code = "no_open_request"   // status/cancel without an open request
	CodeOpenRequest      Code = "open_request"      // the employee already has an open request
	CodeRateLimited      Code = "rate_limited"      // too many requests in the window
	CodeDecided          Code = "already_decided"   // a click after the first decision
	CodeExpired          Code = "expired"           // the decision or reveal window has passed
	CodeWrongState       Code = "wrong_state"       // the request is not in a state that allows this
	CodeSelfApproval     Code = "self_approval"     // the requester tried to decide their own request
	CodeNotApprover      Code = "not_approver"      // the clicker is not an eligible approver
	CodeNotRequester     Code = "not_requester"     // someone other than the requester clicked Reveal
	CodeApproverInactive Code = "approver_inactive" // the approver's own chat or directory account may not decide now

	// Identity and eligibility.
	CodeUnknownUser      Code = "unknown_user"      // Slack does not know the user
	CodeIneligibleUser   Code = "ineligible_user"   // deleted, bot, or guest account
	CodeNoEmail          Code = "no_email"          // the Slack profile has no email
	CodeEmailDomain      Code = "email_domain"      // email outside the allowed domains
	CodeEmailUnconfirmed Code = "email_unconfirmed" // Slack has not confirmed the profile's email
	CodeForeignUser      Code = "foreign_user"      // not a member of this workspace or org (e.g. Slack Connect)
	CodeInvalidUserName  Code = "invalid_user_name" // the account name breaks the API's rules
	CodeProtectedAccount Code = "protected_account" // the account must not be reset here
	CodeNoApprovers      Code = "no_approvers"      // nobody but the requester could approve

	// Directory guards: the account exists but must not be reset here, or
	// cannot be found. Checked when the request is made and again at Reveal.
	CodeNoAccount         Code = "no_account"          // no directory account has the employee's email
	CodeAmbiguousAccount  Code = "ambiguous_account"   // several directory accounts have the employee's email
	CodeAccountDisabled   Code = "account_disabled"    // userAccountControl ACCOUNTDISABLE: a reset would re-enable it
	CodeProtectedGroup    Code = "protected_group"     // a member (maybe nested) of a protected group
	CodeMachineAccount    Code = "machine_account"     // a computer, managed service or trust account
	CodeOutsideOU         Code = "outside_ou"          // not under one of ALLOWED_OUS
	CodeLookupUnavailable Code = "lookup_unavailable"  // the directory (LDAP) could not be asked: try again shortly
	CodeUncheckable       Code = "account_uncheckable" // an attribute a guard needs could not be read (ACL): refused, never allowed
	CodeAdminCount        Code = "admin_count"         // adminCount=1: the account is or was in a privileged group (AdminSDHolder)
	CodeEmailMismatch     Code = "email_mismatch"      // the directory entry's mail and UPN are not the Slack email
	CodeAccountChanged    Code = "account_changed"     // at Reveal, the requester's account is no longer the directory object asked for

	// Unlocks and requests on an employee's behalf.
	CodeNotLocked          Code = "not_locked"           // an unlock of an account that is not locked: nothing written
	CodeUnlockNotPermitted Code = "unlock_not_permitted" // the bot's LDAP account lacks the delegated right Write lockoutTime: the account stays locked
	CodeUnlockFailed       Code = "unlock_failed"        // a reset worked, but ending the account's lockout after it failed
	CodeUnlockInterrupted  Code = "unlock_interrupted"   // the replica doing an unlock stopped: it may or may not have happened
	CodeUnlockDisabled     Code = "unlock_disabled"      // unlocks need the directory (LDAP_URL), which is not configured
	CodeNotHelpdesk        Code = "not_helpdesk"         // someone not in HELPDESK named another person
	CodeNotInChat          Code = "not_in_chat"          // on behalf, by email: nobody in chat has it, and the password may not go to the agent (HELPDESK_DELIVERY)
	CodeAgentNotDelivered  Code = "agent_not_delivered"  // a reset for the agent to hand over could not be made "must change at next logon": not shown to anyone

	// Integrity of what the store holds.
	CodeTampered Code = "tampered" // a stored request failed its signature check: it is never acted on

	// Directory Service (ResetUserPassword exceptions and IAM).
	CodeUserDoesNotExist       Code = "user_does_not_exist"
	CodeInvalidPassword        Code = "invalid_password"
	CodeDirectoryUnavailable   Code = "directory_unavailable"
	CodeUnsupportedOperation   Code = "unsupported_operation"
	CodeDirectoryDoesNotExist  Code = "directory_does_not_exist" // EntityDoesNotExistException
	CodeDirectoryClient        Code = "directory_client_error"   // ClientException
	CodeDirectoryService       Code = "directory_service_error"  // ServiceException
	CodeDirectoryThrottled     Code = "directory_throttled"
	CodeDirectoryAccessDenied  Code = "directory_access_denied"
	CodeDirectoryUncertain     Code = "directory_uncertain" // the call ended without an answer: the password may or may not have changed
	CodeInterrupted            Code = "interrupted"         // the reset was interrupted (crash, lost delivery) too often
	CodeDeliveryFailed         Code = "delivery_failed"
	CodeForceChangeFailed      Code = "force_change_failed" // the password was reset but "must change at next logon" could not be set
	CodeUnavailable            Code = "unavailable"         // the store is unreachable: try again shortly
	CodeInternal               Code = "internal"
	CodeConflict               Code = "conflict" // a concurrent change won; retry
	CodeInvalidInput           Code = "invalid_input"
	CodeDirectoryMisconfigured Code = "directory_misconfigured"

	// After a reset (oversight.go).
	CodeAlreadyReported Code = "already_reported" // "This wasn't me" pressed again
	CodeNoticeFailed    Code = "notice_failed"    // the owner's notice email did not reach every address
)

// Codes are all the codes, for tables keyed by code to be checked against.
var Codes = []Code{
	CodeNotFound, CodeNoOpenRequest, CodeOpenRequest, CodeRateLimited, CodeDecided, CodeExpired, CodeWrongState,
	CodeSelfApproval, CodeNotApprover, CodeNotRequester, CodeApproverInactive,
	CodeUnknownUser, CodeIneligibleUser, CodeNoEmail, CodeEmailDomain, CodeEmailUnconfirmed, CodeForeignUser,
	CodeInvalidUserName, CodeProtectedAccount, CodeNoApprovers,
	CodeNoAccount, CodeAmbiguousAccount, CodeAccountDisabled, CodeProtectedGroup, CodeMachineAccount, CodeOutsideOU, CodeLookupUnavailable,
	CodeUncheckable, CodeAdminCount, CodeEmailMismatch, CodeAccountChanged,
	CodeNotLocked, CodeUnlockNotPermitted, CodeUnlockFailed, CodeUnlockInterrupted, CodeUnlockDisabled,
	CodeNotHelpdesk, CodeNotInChat, CodeAgentNotDelivered, CodeTampered,
	CodeUserDoesNotExist, CodeInvalidPassword, CodeDirectoryUnavailable, CodeUnsupportedOperation, CodeDirectoryDoesNotExist,
	CodeDirectoryClient, CodeDirectoryService, CodeDirectoryThrottled, CodeDirectoryAccessDenied, CodeDirectoryUncertain,
	CodeInterrupted, CodeDeliveryFailed, CodeForceChangeFailed, CodeUnavailable, CodeInternal, CodeConflict, CodeInvalidInput,
	CodeDirectoryMisconfigured,
	CodeAlreadyReported, CodeNoticeFailed,
}

// Error is the error type of this package and its adapters. Message is for
// operators and logs and never contains a secret.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	switch {
	case e.Message != "" && e.Err != nil:
		return e.Message + ": " + e.Err.Error()
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return string(e.Code) + ": " + e.Err.Error()
	}
	return string(e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the given code wrapping err.
func Wrap(code Code, err error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal for any other non-nil error, or "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Tampered is the cause a store gives, inside an *Error with CodeTampered,
// for a stored record that failed verification: it was not written by
// this bot (or with this key), so nothing in it is trusted. The record is
// a request, or a chat delivery record (then ID names its lane and
// Requester is empty).
type Tampered struct {
	ID        string // the request ID (or delivery lane) it was read under
	Requester string // the requester the record claims, unverified; "" when unreadable or not a request
}

func (t *Tampered) Error() string {
	if !ValidID(t.ID) {
		return "delivery record " + t.ID + " failed verification"
	}
	return "request " + t.ID + " (claiming requester " + t.Requester + ") failed verification"
}
