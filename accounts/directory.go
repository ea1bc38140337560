package accounts

import (
	"context"
	"strings"

	"github.com/example/resetbot/workflow"
)

// What the bot reads about, and writes to, an account's directory object
// after the request was made: always the very object the request was made
// for. The account is read again by its objectGUID, which never changes,
// and refused when its DN or name is no longer the one the request
// carries (moved, renamed, or another object now has that name); a write
// goes to <GUID=...>, so it reaches the object that was just checked
// whatever its DN is by then.

// current returns acct's directory entry, read again by acct.GUID, after
// checking that it is still the object acct describes. what names the
// operation for errors.
func (a *Accounts) current(ctx context.Context, acct workflow.Account, what string) (Entry, error) {
	if a.lookup == nil {
		return Entry{}, workflow.Errorf(workflow.CodeInternal, "%s needs the directory (LDAP_URL)", what)
	}
	if acct.GUID == "" || acct.DN == "" {
		return Entry{}, workflow.Errorf(workflow.CodeUncheckable,
			"%s of %q: the account carries no directory object (DN %q, objectGUID %q), so it cannot be told apart from another object with its name; nothing was written",
			what, acct.UserName, acct.DN, acct.GUID)
	}
	e, ok, err := a.lookup.ByGUID(ctx, acct.GUID)
	switch {
	case err != nil:
		return Entry{}, err
	case !ok:
		return Entry{}, workflow.Errorf(workflow.CodeNoAccount, "%s of %q: the directory object %s (%s) no longer exists", what, acct.UserName, acct.GUID, acct.DN)
	case !strings.EqualFold(e.DN, acct.DN):
		return Entry{}, workflow.Errorf(workflow.CodeAccountChanged,
			"%s of %q: the directory object %s is now %s, not %s (moved or renamed since); nothing was written", what, acct.UserName, acct.GUID, e.DN, acct.DN)
	case Fold(e.UserName) != Fold(acct.UserName):
		return Entry{}, workflow.Errorf(workflow.CodeAccountChanged,
			"%s of %q: the directory object %s (%s) is now named %q; nothing was written", what, acct.UserName, acct.GUID, e.DN, e.UserName)
	}
	return e, nil
}

// guidDN is the DN form that names an object by its objectGUID
// (MS-ADTS 3.1.1.3.1.2.4).
func guidDN(guid string) string { return "<GUID=" + guid + ">" }

// Facts returns what the directory says now about acct's sign-in state
// (see Facts), read again by its objectGUID. Facts that could not be read
// are marked unknown in the result, not an error. Errors: CodeUncheckable
// (acct has no DN or objectGUID), CodeNoAccount (the object is gone),
// CodeAccountChanged (it was moved or renamed), CodeLookupUnavailable,
// CodeInternal (no directory).
func (a *Accounts) Facts(ctx context.Context, acct workflow.Account) (Facts, error) {
	e, err := a.current(ctx, acct, "read the facts")
	if err != nil {
		return Facts{}, err
	}
	return e.Facts, nil
}

// Unlock ends acct's lockout: lockoutTime is replaced with 0 (and nothing
// else is ever written there), which also zeroes badPwdCount. The account
// is read again by its objectGUID and must still be the object acct
// describes and pass every guard of Check (enabled, in no protected group,
// ...), whatever the caller checked before; the write goes to that object
// by its GUID. It does not ask whether the account is locked: an unlock of
// an account that is not is harmless, and the caller says "not locked"
// from Facts. Errors: CodeUncheckable (acct has no DN or objectGUID, or a
// guard could not read what it needs), CodeNoAccount, CodeAccountChanged,
// every guard's code (CodeAccountDisabled, CodeProtectedGroup, ...), a
// refusal for lack of the delegated right "Write lockoutTime" (code
// workflow.CodeDirectoryMisconfigured, wrapping ErrNotPermitted),
// CodeLookupUnavailable, CodeInternal (no directory).
func (a *Accounts) Unlock(ctx context.Context, acct workflow.Account) error {
	e, err := a.current(ctx, acct, "unlock")
	if err != nil {
		return err
	}
	if _, err := a.checkEntry(ctx, e); err != nil {
		return err
	}
	return a.lookup.Unlock(ctx, guidDN(e.GUID))
}

// Disable turns acct's directory account off (ACCOUNTDISABLE in
// userAccountControl, every other bit kept), for an owner who reports a
// reset they did not ask for (REPORT_DISABLES); changed is false when it
// was already disabled. The account is read again by its objectGUID and
// must still be the object acct describes; the guards are not applied,
// since disabling only takes access away. Errors: CodeUncheckable (acct
// has no DN or objectGUID, or userAccountControl is not readable),
// CodeNoAccount, CodeAccountChanged, CodeConflict (userAccountControl
// kept changing under the write), a refusal for lack of the delegated
// right "Write userAccountControl" (code
// workflow.CodeDirectoryMisconfigured, wrapping ErrNotPermitted),
// CodeLookupUnavailable, CodeInternal (no directory).
func (a *Accounts) Disable(ctx context.Context, acct workflow.Account) (changed bool, err error) {
	e, err := a.current(ctx, acct, "disable")
	if err != nil {
		return false, err
	}
	return a.lookup.Disable(ctx, guidDN(e.GUID))
}

// Lockout implements workflow.Accounts: the lockout of Facts, in the
// workflow's terms. Without a directory nothing is known (no error).
// Errors: as Facts.
func (a *Accounts) Lockout(ctx context.Context, acct workflow.Account) (workflow.Lockout, error) {
	if a.lookup == nil {
		return workflow.Lockout{}, nil
	}
	f, err := a.Facts(ctx, acct)
	if err != nil {
		return workflow.Lockout{}, err
	}
	return f.Lockout.workflow(), nil
}

// Mailboxes returns where acct's owner is told by email about what the
// bot did to the account (the notice email): its mail and otherMailbox
// values as the directory holds them now, read again by objectGUID (the
// caller checks each value). Errors: those of Facts.
func (a *Accounts) Mailboxes(ctx context.Context, acct workflow.Account) (mail string, other []string, err error) {
	e, err := a.current(ctx, acct, "read the mailboxes")
	if err != nil {
		return "", nil, err
	}
	return e.Email, e.Other, nil
}

var _ workflow.FactSource = (*Accounts)(nil)

// SignIn implements workflow.FactSource: Facts, each fact that could not
// be read left out (nil).
func (a *Accounts) SignIn(ctx context.Context, acct workflow.Account) (workflow.SignIn, error) {
	f, err := a.Facts(ctx, acct)
	if err != nil {
		return workflow.SignIn{}, err
	}
	return f.SignIn(), nil
}
