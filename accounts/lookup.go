package accounts

import "context"

// Entry is what the directory (LDAP) says about one account. It holds
// facts, not judgements: the rules in this package decide what they mean.
type Entry struct {
	DN          string // distinguished name
	UserName    string // sAMAccountName: the ResetUserPassword UserName
	Email       string // mail
	UPN         string // userPrincipalName
	DisplayName string // displayName, else cn
	ManagerDN   string // manager, "" when none
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

	// ExpirePassword sets pwdLastSet to 0 on dn, so that the user must
	// change the password at the next logon. It needs write access to that
	// attribute. Errors: CodeLookupUnavailable.
	ExpirePassword(ctx context.Context, dn string) error
}
