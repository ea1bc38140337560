// Package accounts finds an employee's directory account and applies the
// guards: the rules that say which accounts must never be reset by the bot.
// It implements workflow.Accounts on top of an optional directory Lookup
// (LDAP, package ldapdir); without one, the account is the email's local
// part and only the name rules apply.
//
// The name rules hold with or without a directory: the API's own rules,
// no control or invisible characters, no machine accounts (a name ending in
// $), and no protected user, compared after Unicode NFKC normalisation and
// case folding so that "ａｄｍｉｎｉｓｔｒａｔｏｒ" is Administrator, as
// Active Directory itself compares names.
//
// The directory guards fail closed: a fact the directory did not give (an
// attribute an ACL hides, tokenGroups that cannot be read, a protected
// group that does not resolve) refuses the account; it never counts as
// "enabled" or "in no group". Built-in accounts and privileged groups are
// told by identity (SIDs), not by name.
//
// It also gives what people are shown about an account (Facts: locked and
// until when, bad passwords, when the password was set; unknown when not
// readable, never guessed) and makes the bot's directory writes (Unlock,
// Disable) to the very object a request was made for, found again by its
// objectGUID (directory.go).
package accounts

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/example/resetbot/workflow"
)

// DefaultProtectedUsers are built-in and AWS-managed accounts that are
// never reset here. PROTECTED_USERS adds more.
var DefaultProtectedUsers = []string{"Administrator", "Admin", "krbtgt", "Guest", "AWSAdminD", "AWS_ADMIN"}

// Options configure Accounts.
type Options struct {
	// ProtectedUsers are account names never reset here.
	ProtectedUsers []string
	// Map overrides the account of some chat users: chat user ID ->
	// account name (ACCOUNT_MAP_FILE).
	Map map[string]string
	// Lookup is the directory; nil means no lookups (no LDAP).
	Lookup Lookup
	// RefuseAdminCount refuses accounts with adminCount=1
	// (REFUSE_ADMIN_COUNT, on by default in the configuration).
	RefuseAdminCount bool
}

// Accounts implements workflow.Accounts.
type Accounts struct {
	protected        map[string]bool // folded names
	m                map[string]string
	lookup           Lookup
	refuseAdminCount bool
}

var _ workflow.Accounts = (*Accounts)(nil)

// New returns Accounts configured by o.
func New(o Options) *Accounts {
	a := &Accounts{protected: map[string]bool{}, m: o.Map, lookup: o.Lookup, refuseAdminCount: o.RefuseAdminCount}
	for _, u := range o.ProtectedUsers {
		a.protected[Fold(u)] = true
	}
	return a
}

// Find implements workflow.Accounts. With a directory, the account found by
// email must carry that email in its mail or userPrincipalName (see
// byEmail); an account from the map is the operator's explicit choice and
// is taken as it is. Errors: CodeNoAccount, CodeAmbiguousAccount,
// CodeEmailMismatch, CodeInvalidUserName, CodeMachineAccount,
// CodeLookupUnavailable.
func (a *Accounts) Find(ctx context.Context, p workflow.Person) (workflow.Account, error) {
	mapped, isMapped := a.m[p.ID]
	if a.lookup == nil {
		name := mapped
		if !isMapped {
			name = localPart(p.Email)
		}
		if err := CheckName(name); err != nil {
			return workflow.Account{}, err
		}
		return workflow.Account{UserName: name, Email: p.Email, DisplayName: p.Name, Unchecked: true}, nil
	}
	var e Entry
	if isMapped {
		// ACCOUNT_MAP_FILE is the operator naming the account for this Slack
		// user: no email comparison, by design (that is what the map is for).
		found, ok, err := a.lookup.ByName(ctx, mapped)
		if err != nil {
			return workflow.Account{}, err
		}
		if !ok {
			return workflow.Account{}, workflow.Errorf(workflow.CodeNoAccount,
				"the account map gives %s the account %q, which the directory does not have", p.ID, mapped)
		}
		e = found
	} else {
		found, err := a.byEmail(ctx, p.Email)
		if err != nil {
			return workflow.Account{}, err
		}
		e = found
	}
	return account(e, p), nil
}

// byEmail returns the one entry whose mail or userPrincipalName is email.
// The directory compares case-insensitively, its own way (a Unicode
// folding that may take the Kelvin sign U+212A for k); an entry counts
// only when its mail or UPN equals email with ASCII letters folded and
// every other character exact (sameEmail). Entries the directory returned
// but that do not carry the email that way are CodeEmailMismatch when no
// entry does.
func (a *Accounts) byEmail(ctx context.Context, email string) (Entry, error) {
	email = strings.TrimSpace(email)
	found, err := a.lookup.ByEmail(ctx, email)
	if err != nil {
		return Entry{}, err
	}
	var entries []Entry
	for _, e := range found {
		if sameEmail(e.Email, email) || sameEmail(e.UPN, email) {
			entries = append(entries, e)
		}
	}
	switch {
	case len(entries) == 0 && len(found) > 0:
		return Entry{}, workflow.Errorf(workflow.CodeEmailMismatch,
			"the directory answered %q (%s) for %q, but its mail %q and userPrincipalName %q are not that address (compared with ASCII case folding only)",
			found[0].UserName, found[0].DN, email, found[0].Email, found[0].UPN)
	case len(entries) == 0:
		return Entry{}, workflow.Errorf(workflow.CodeNoAccount, "no directory account has the mail or userPrincipalName %q", email)
	case len(entries) == 1:
		return entries[0], nil
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.UserName
	}
	return Entry{}, workflow.Errorf(workflow.CodeAmbiguousAccount,
		"%d directory accounts have the mail or userPrincipalName %q: %s", len(entries), email, strings.Join(names, ", "))
}

// sameEmail reports whether the directory's address dir is the Slack email:
// EqualFoldASCII, so that an address that merely looks like another one to
// a Unicode-folding directory is not taken for it. An empty dir never
// matches.
func sameEmail(dir, email string) bool {
	return dir != "" && EqualFoldASCII(dir, email)
}

// EqualFoldASCII reports whether a and b are equal with ASCII letters
// compared case-insensitively and every other byte exactly. Unlike
// strings.EqualFold it never folds a non-ASCII character into an ASCII one
// (the Kelvin sign U+212A into k, the long s U+017F into s).
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// account is the workflow account of entry e, found for person p.
func account(e Entry, p workflow.Person) workflow.Account {
	name := e.DisplayName
	if name == "" {
		name = p.Name
	}
	return workflow.Account{UserName: e.UserName, Email: p.Email, DisplayName: name, DN: e.DN, GUID: e.GUID}
}

// Check implements workflow.Accounts: the name rules, then, with a
// directory, the account's current entry (see CheckSteps). Errors:
// CodeInvalidUserName, CodeProtectedAccount, CodeMachineAccount,
// CodeNoAccount, CodeAccountChanged, CodeUncheckable, CodeAccountDisabled,
// CodeOutsideOU, CodeProtectedGroup, CodeAdminCount, CodeLookupUnavailable.
func (a *Accounts) Check(ctx context.Context, acct workflow.Account) (workflow.Account, error) {
	acct, _, err := a.CheckSteps(ctx, acct)
	return acct, err
}

// CheckSteps is Check, and also says which checks the account passed, in
// the order they ran (for bot doctor); on a refusal the error says which
// check decided. The guards over the directory's entry, in order: the name
// rules and protected users again on the directory's name; the same object
// as acct.GUID when set; every attribute a guard needs readable; not a
// built-in account by RID (500 Administrator, 501 Guest, 502 krbtgt,
// whatever their names); not a computer, service or trust account;
// enabled; inside ALLOWED_OUS; in no protected group (tokenGroups); no
// adminCount=1 unless allowed. Errors: as Check.
func (a *Accounts) CheckSteps(ctx context.Context, acct workflow.Account) (workflow.Account, []string, error) {
	if err := a.checkName(acct.UserName); err != nil {
		return workflow.Account{}, nil, err
	}
	passed := []string{"name rules", "not a protected user"}
	if a.lookup == nil {
		return acct, passed, nil
	}
	e, ok, err := a.lookup.ByName(ctx, acct.UserName)
	switch {
	case err != nil:
		return workflow.Account{}, nil, err
	case !ok:
		return workflow.Account{}, nil, workflow.Errorf(workflow.CodeNoAccount, "the directory has no account %q", acct.UserName)
	case acct.GUID != "" && e.GUID != "" && !strings.EqualFold(acct.GUID, e.GUID): // an unreadable GUID is refused below
		return workflow.Account{}, nil, workflow.Errorf(workflow.CodeAccountChanged,
			"the account %q is now the directory object %s (%s), not %s", acct.UserName, e.GUID, e.DN, acct.GUID)
	}
	steps, err := a.checkEntry(ctx, e)
	if err != nil {
		return workflow.Account{}, nil, err
	}
	acct.DN, acct.GUID = e.DN, e.GUID
	if e.DisplayName != "" {
		acct.DisplayName = e.DisplayName
	}
	return acct, append(passed, steps...), nil
}

// checkName applies the name rules and the protected users.
func (a *Accounts) checkName(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if a.protected[Fold(name)] {
		return workflow.Errorf(workflow.CodeProtectedAccount, "account %q is on the protected list", name)
	}
	return nil
}

// builtinAccountRIDs are the accounts every domain has, protected by
// identity whatever they are renamed to: 500 Administrator, 501 Guest
// (disabled by default; a reset would enable it), 502 krbtgt.
var builtinAccountRIDs = map[uint64]string{500: "Administrator", 501: "Guest", 502: "krbtgt"}

// checkEntry applies the guards that need the directory's entry and
// returns the checks passed.
func (a *Accounts) checkEntry(ctx context.Context, e Entry) ([]string, error) {
	if err := a.checkName(e.UserName); err != nil {
		return nil, err
	}
	if len(e.Unreadable) > 0 {
		return nil, workflow.Errorf(workflow.CodeUncheckable,
			"%q (%s): LDAP_BIND_DN may not read %s, which every account has; it cannot be checked, so it is refused",
			e.UserName, e.DN, strings.Join(e.Unreadable, ", "))
	}
	if rid, ok := domainRID(e.SID); ok && builtinAccountRIDs[rid] != "" {
		return nil, workflow.Errorf(workflow.CodeProtectedAccount, "%q (%s) is the domain's built-in %s account (%s)", e.UserName, e.DN, builtinAccountRIDs[rid], e.SID)
	}
	switch {
	case e.Machine:
		return nil, workflow.Errorf(workflow.CodeMachineAccount, "%q (%s) is a computer, service or trust account", e.UserName, e.DN)
	case e.Disabled:
		return nil, workflow.Errorf(workflow.CodeAccountDisabled, "%q (%s) is disabled in the directory; a reset would enable it again", e.UserName, e.DN)
	case e.OutsideOUs:
		return nil, workflow.Errorf(workflow.CodeOutsideOU, "%q (%s) is outside the OUs in ALLOWED_OUS", e.UserName, e.DN)
	}
	passed := []string{"userAccountControl, objectSid and objectGUID readable", "not a built-in account (RID 500, 501, 502)",
		"not a computer or service account", "enabled", "inside ALLOWED_OUS (when set)"}
	group, member, err := a.lookup.ProtectedGroup(ctx, e)
	switch {
	case err != nil:
		return nil, err
	case member:
		return nil, workflow.Errorf(workflow.CodeProtectedGroup, "%q (%s) is a member of %s through tokenGroups (directly, nested or as its primary group)", e.UserName, e.DN, group)
	}
	passed = append(passed, "in no protected group (tokenGroups)")
	switch {
	case e.AdminCount && a.refuseAdminCount:
		return nil, workflow.Errorf(workflow.CodeAdminCount, "%q (%s) has adminCount=1: it is or was in a group AdminSDHolder protects (REFUSE_ADMIN_COUNT=false allows it)", e.UserName, e.DN)
	case e.AdminCount:
		passed = append(passed, "adminCount=1 allowed (REFUSE_ADMIN_COUNT=false)")
	default:
		passed = append(passed, "no adminCount")
	}
	return passed, nil
}

// domainRID returns the relative ID of a domain account's SID
// (S-1-5-21-a-b-c-RID).
func domainRID(sid string) (uint64, bool) {
	parts := strings.Split(sid, "-")
	if len(parts) != 8 || parts[0] != "S" || parts[1] != "1" || parts[2] != "5" || parts[3] != "21" {
		return 0, false
	}
	rid, err := strconv.ParseUint(parts[len(parts)-1], 10, 32)
	return rid, err == nil
}

// Manager implements workflow.Accounts. Without a directory there is never
// a manager.
func (a *Accounts) Manager(ctx context.Context, acct workflow.Account) (workflow.Manager, bool, error) {
	if a.lookup == nil {
		return workflow.Manager{}, false, nil
	}
	e, ok, err := a.lookup.ByName(ctx, acct.UserName)
	if err != nil || !ok || e.ManagerDN == "" {
		return workflow.Manager{}, false, err
	}
	m, ok, err := a.lookup.ByDN(ctx, e.ManagerDN)
	if err != nil || !ok {
		return workflow.Manager{}, false, err
	}
	email := m.Email
	if email == "" {
		email = m.UPN
	}
	// A manager whose userAccountControl cannot be read is taken as
	// disabled: the fallback approvers are asked instead.
	disabled := m.Disabled || slices.Contains(m.Unreadable, "userAccountControl")
	return workflow.Manager{UserName: m.UserName, Email: email, Name: m.DisplayName, Disabled: disabled}, true, nil
}

// ExpirePassword implements workflow.Accounts.
func (a *Accounts) ExpirePassword(ctx context.Context, acct workflow.Account) error {
	if a.lookup == nil {
		return workflow.Errorf(workflow.CodeInternal, "must change at next logon needs LDAP_URL")
	}
	dn := acct.DN
	if dn == "" {
		e, ok, err := a.lookup.ByName(ctx, acct.UserName)
		if err != nil {
			return err
		}
		if !ok {
			return workflow.Errorf(workflow.CodeNoAccount, "the directory has no account %q", acct.UserName)
		}
		dn = e.DN
	}
	return a.lookup.ExpirePassword(ctx, dn)
}

// localPart returns the part of email before the last @.
func localPart(email string) string {
	if at := strings.LastIndexByte(email, '@'); at >= 0 {
		return email[:at]
	}
	return email
}
