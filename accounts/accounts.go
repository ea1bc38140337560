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
package accounts

import (
	"context"
	"strings"

	"github.com/example/resetbot/workflow"
)

// DefaultProtectedGroups are the groups whose members, direct or nested,
// are never reset here. PROTECTED_GROUPS adds more.
var DefaultProtectedGroups = []string{
	"Domain Admins", "Enterprise Admins", "Schema Admins", "Administrators",
	"Account Operators", "Backup Operators", "AWS Delegated Administrators",
}

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
}

// Accounts implements workflow.Accounts.
type Accounts struct {
	protected map[string]bool // folded names
	m         map[string]string
	lookup    Lookup
}

var _ workflow.Accounts = (*Accounts)(nil)

// New returns Accounts configured by o.
func New(o Options) *Accounts {
	a := &Accounts{protected: map[string]bool{}, m: o.Map, lookup: o.Lookup}
	for _, u := range o.ProtectedUsers {
		a.protected[Fold(u)] = true
	}
	return a
}

// Find implements workflow.Accounts.
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

// byEmail returns the one entry whose mail or UPN is email.
func (a *Accounts) byEmail(ctx context.Context, email string) (Entry, error) {
	entries, err := a.lookup.ByEmail(ctx, email)
	if err != nil {
		return Entry{}, err
	}
	switch len(entries) {
	case 0:
		return Entry{}, workflow.Errorf(workflow.CodeNoAccount, "no directory account has the mail or userPrincipalName %q", email)
	case 1:
		return entries[0], nil
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.UserName
	}
	return Entry{}, workflow.Errorf(workflow.CodeAmbiguousAccount,
		"%d directory accounts have the mail or userPrincipalName %q: %s", len(entries), email, strings.Join(names, ", "))
}

// account is the workflow account of entry e, found for person p.
func account(e Entry, p workflow.Person) workflow.Account {
	name := e.DisplayName
	if name == "" {
		name = p.Name
	}
	return workflow.Account{UserName: e.UserName, Email: p.Email, DisplayName: name, DN: e.DN}
}

// Check implements workflow.Accounts: the name rules, then, with a
// directory, the account's current entry: machine, disabled, outside the
// allowed OUs, a member of a protected group.
func (a *Accounts) Check(ctx context.Context, acct workflow.Account) (workflow.Account, error) {
	if err := a.checkName(acct.UserName); err != nil {
		return workflow.Account{}, err
	}
	if a.lookup == nil {
		return acct, nil
	}
	e, ok, err := a.lookup.ByName(ctx, acct.UserName)
	switch {
	case err != nil:
		return workflow.Account{}, err
	case !ok:
		return workflow.Account{}, workflow.Errorf(workflow.CodeNoAccount, "the directory has no account %q", acct.UserName)
	}
	if err := a.checkEntry(ctx, e); err != nil {
		return workflow.Account{}, err
	}
	acct.DN = e.DN
	if e.DisplayName != "" {
		acct.DisplayName = e.DisplayName
	}
	return acct, nil
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

// checkEntry applies the guards that need the directory's entry.
func (a *Accounts) checkEntry(ctx context.Context, e Entry) error {
	if err := a.checkName(e.UserName); err != nil {
		return err
	}
	switch {
	case e.Machine:
		return workflow.Errorf(workflow.CodeMachineAccount, "%q (%s) is a computer, service or trust account", e.UserName, e.DN)
	case e.Disabled:
		return workflow.Errorf(workflow.CodeAccountDisabled, "%q (%s) is disabled in the directory; a reset would enable it again", e.UserName, e.DN)
	case e.OutsideOUs:
		return workflow.Errorf(workflow.CodeOutsideOU, "%q (%s) is outside the OUs in ALLOWED_OUS", e.UserName, e.DN)
	}
	group, err := a.lookup.ProtectedGroup(ctx, e.DN)
	if err != nil {
		return err
	}
	if group != "" {
		return workflow.Errorf(workflow.CodeProtectedGroup, "%q (%s) is a member of the protected group %q (directly or through nested groups)", e.UserName, e.DN, group)
	}
	return nil
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
	return workflow.Manager{UserName: m.UserName, Email: email, Name: m.DisplayName, Disabled: m.Disabled}, true, nil
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
