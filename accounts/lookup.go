package accounts

import (
	"context"
	"errors"
)

// Entry is what the directory (LDAP) says about one account. It holds
// facts, not judgements: the rules in this package decide what they mean.
type Entry struct {
	DN          string   // distinguished name
	UserName    string   // sAMAccountName: the ResetUserPassword UserName
	Email       string   // mail
	Other       []string // otherMailbox: the owner's other addresses, as the directory holds them (free text)
	UPN         string   // userPrincipalName
	DisplayName string   // displayName, else cn
	ManagerDN   string   // manager, "" when none
	// GUID is objectGUID in its dashed string form (the first three fields
	// little-endian, as Windows shows it): the one identity of the object
	// that never changes, not even on a rename or a move.
	GUID string
	// SID is objectSid as S-1-5-21-<domain>-<RID>.
	SID      string
	Disabled bool // userAccountControl bit 2 (ACCOUNTDISABLE)
	// Machine is true for computer, managed service and trust accounts:
	// objectClass computer (gMSAs and sMSAs derive from it), a
	// userAccountControl trust or workstation/server bit, or a
	// sAMAccountName ending in $.
	Machine bool
	// OutsideOUs is true when allowed OUs are configured (ALLOWED_OUS) and
	// the DN is under none of them.
	OutsideOUs bool
	// AdminCount is true when adminCount is set to a non-zero value: the
	// account is, or was, a member of a group AdminSDHolder protects. Most
	// accounts have no adminCount at all, so its absence is no sign of an
	// ACL.
	AdminCount bool
	// Unreadable names the attributes the guards need that the directory's
	// answer lacked (userAccountControl, objectSid, objectGUID). Every
	// account has them, so one that is missing is one the bind account may
	// not read: an ACL, often on the privileged accounts.
	Unreadable []string
	// Facts are the account's sign-in state (locked, bad passwords, when
	// the password was set), each marked unknown when it could not be
	// read. They inform people; the guards never use them.
	Facts Facts
}

// Group is a protected group: its members, direct, nested or through
// their primary group, are never reset here.
type Group struct {
	Name string // e.g. "Domain Admins", the cn of an AWS delegated group, or the PROTECTED_GROUPS entry's group
	SID  string // S-1-5-...: what membership is decided on
	DN   string // the group's object; "" when the domain has none with this SID (Samba has no Key Admins)
	// Source says why the group is protected: SourceBuiltIn,
	// SourceAWSDelegated or SourceConfigured.
	Source string
}

// Why a group is protected.
const (
	SourceBuiltIn      = "built-in"
	SourceAWSDelegated = "AWS delegated"
	SourceConfigured   = "PROTECTED_GROUPS"
)

// String names the group with its SID, as refusals and doctor show it.
func (g Group) String() string { return g.Name + " (" + g.SID + ")" }

// Lookup reads the directory. Every method runs under ctx and the
// implementation's own timeout. An error means the directory could not be
// asked (down, timeout, bind refused) or could not answer what a guard
// needs: it is never a "no" about the account.
type Lookup interface {
	// ByEmail returns every user whose mail or userPrincipalName equals
	// email, compared case-insensitively by the directory (the caller
	// compares again). Errors: CodeLookupUnavailable.
	ByEmail(ctx context.Context, email string) ([]Entry, error)

	// ByName returns the account whose sAMAccountName is name (compared
	// case-insensitively, as AD does); ok is false when there is none.
	// Errors: CodeLookupUnavailable.
	ByName(ctx context.Context, name string) (e Entry, ok bool, err error)

	// ByDN returns the account with distinguished name dn; ok is false when
	// there is none. Errors: CodeLookupUnavailable.
	ByDN(ctx context.Context, dn string) (e Entry, ok bool, err error)

	// ProtectedGroup returns the first protected group the account e is a
	// member of, directly, through nested groups or as its primary group;
	// member is false when it is in none. Errors: CodeUncheckable when the
	// answer cannot be trusted (e's tokenGroups are not readable, or the
	// protected groups could not all be resolved: a PROTECTED_GROUPS entry
	// that matches nothing, a group whose SID is not readable),
	// CodeLookupUnavailable when the directory could not be asked.
	ProtectedGroup(ctx context.Context, e Entry) (g Group, member bool, err error)

	// ByGUID returns the account whose objectGUID is guid (dashed string
	// form), wherever it is now; ok is false when there is none. Errors:
	// CodeLookupUnavailable.
	ByGUID(ctx context.Context, guid string) (e Entry, ok bool, err error)

	// ExpirePassword sets pwdLastSet to 0 on dn, so that the user must
	// change the password at the next logon. It needs write access to that
	// attribute. Errors: CodeLookupUnavailable.
	ExpirePassword(ctx context.Context, dn string) error

	// Unlock replaces lockoutTime of the account dn (a DN, or
	// <GUID=...>) with 0, and never with anything else: that ends a
	// lockout and zeroes badPwdCount. It needs the delegated right "Write
	// lockoutTime". Errors: CodeNoAccount (no such object); a refusal for
	// lack of that right wraps ErrNotPermitted; CodeLookupUnavailable.
	Unlock(ctx context.Context, dn string) error

	// Disable sets ACCOUNTDISABLE (bit 0x2) in userAccountControl of the
	// account dn (a DN, or <GUID=...>), keeping every other bit; changed
	// is false when it was already set (nothing is written then). The
	// value is compared and set in one modify, so that a change made in
	// between is never overwritten. It needs the delegated right "Write
	// userAccountControl". Errors: CodeNoAccount, CodeUncheckable
	// (userAccountControl is not readable, so the other bits cannot be
	// kept), CodeConflict (it kept changing), a refusal for lack of the
	// right wraps ErrNotPermitted, CodeLookupUnavailable.
	Disable(ctx context.Context, dn string) (changed bool, err error)
}

// ErrNotPermitted is wrapped by the error of a directory write that the
// directory refused because the bind account lacks the right
// (insufficientAccessRights): an operator has to delegate it (README, LDAP
// permissions); trying again will not help. The error carrying it has code
// workflow.CodeDirectoryMisconfigured; test for it with errors.Is.
var ErrNotPermitted = errors.New("LDAP_BIND_DN lacks the delegated right to write this attribute")
