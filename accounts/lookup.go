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
	Disabled    bool   // userAccountControl bit 2 (ACCOUNTDISABLE)
	// Machine is true for computer, managed service and trust accounts:
	// objectClass computer (gMSAs and sMSAs derive from it), a
	// userAccountControl trust or workstation/server bit, or a
	// sAMAccountName ending in $.
	Machine bool
	// OutsideOUs is true when allowed OUs are configured (ALLOWED_OUS) and
	// the DN is under none of them.
	OutsideOUs bool
}

// Lookup reads the directory. Every method runs under ctx and the
// implementation's own timeout. An error means the directory could not be
// asked (down, timeout, bind refused): it is never a "no" about the account.
type Lookup interface {
	// ByEmail returns every user whose mail or userPrincipalName equals
	// email, compared case-insensitively.
	ByEmail(ctx context.Context, email string) ([]Entry, error)

	// ByName returns the account whose sAMAccountName is name (compared
	// case-insensitively, as AD does); ok is false when there is none.
	ByName(ctx context.Context, name string) (e Entry, ok bool, err error)

	// ByDN returns the account with distinguished name dn; ok is false when
	// there is none.
	ByDN(ctx context.Context, dn string) (e Entry, ok bool, err error)

	// ProtectedGroup returns the name of the first protected group (as
	// configured) that dn is a member of, directly or through nested
	// groups, or "" when it is in none.
	ProtectedGroup(ctx context.Context, dn string) (string, error)

	// ExpirePassword sets pwdLastSet to 0 on dn, so that the user must
	// change the password at the next logon. It needs write access to that
	// attribute.
	ExpirePassword(ctx context.Context, dn string) error
}
