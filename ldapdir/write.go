package ldapdir

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/workflow"
)

// The bot's writes besides ExpirePassword. Each writes one attribute of
// one object and only ever the value named here, with the rights an
// operator delegated to LDAP_BIND_DN on the users' OU (README, "LDAP
// permissions"); a refusal for lack of that right is its own error
// (accounts.ErrNotPermitted), not "try again".

// unlockedLockoutTime is the only value Unlock ever writes. Samba takes
// any lockoutTime from an administrator: 5 does nothing and "now" locks
// the account; AD documents 0 as the only value to write.
const unlockedLockoutTime = "0"

// disableAttempts bounds Disable's read-compare-write rounds when
// userAccountControl changes under it.
const disableAttempts = 3

// Unlock replaces lockoutTime of dn (a DN, or <GUID=...> as accounts
// passes it) with 0: the lockout ends and the server zeroes badPwdCount.
// It writes nothing else and no other value. Errors: *workflow.Error with
// code workflow.CodeDirectoryMisconfigured wrapping
// accounts.ErrNotPermitted when LDAP_BIND_DN may not write lockoutTime
// there (insufficientAccessRights: Samba's "00002098 ... no write property
// access"; delegate "Write lockoutTime"), workflow.CodeNoAccount when dn
// does not exist, workflow.CodeLookupUnavailable otherwise.
func (c *Client) Unlock(ctx context.Context, dn string) error {
	if strings.TrimSpace(dn) == "" {
		return workflow.Errorf(workflow.CodeNoAccount, "LDAP unlock: no account DN")
	}
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("lockoutTime", []string{unlockedLockoutTime})
	return c.writeError(c.modify(ctx, "unlock", req), "unlock (lockoutTime=0)", dn, "lockoutTime")
}

// Disable sets ACCOUNTDISABLE (0x2) in userAccountControl of dn (a DN, or
// <GUID=...> as accounts passes it) and keeps every other bit; changed is
// false when the bit was already set, and nothing is written then. The
// value read is compared and the new one set in one modify (delete the
// value read, add the new one): the server applies both or neither, and
// refuses the delete (noSuchAttribute) when the value is no longer the
// one read, so a change made in between is never overwritten; Disable then
// reads again, up to 3 times. Errors: *workflow.Error with code
// workflow.CodeDirectoryMisconfigured wrapping accounts.ErrNotPermitted
// when LDAP_BIND_DN may not write userAccountControl there (delegate
// "Write userAccountControl"), workflow.CodeNoAccount when dn does not
// exist or is not a user, workflow.CodeUncheckable when its
// userAccountControl is not readable (the other bits could not be kept),
// workflow.CodeConflict when it changed under every attempt,
// workflow.CodeLookupUnavailable otherwise.
func (c *Client) Disable(ctx context.Context, dn string) (changed bool, err error) {
	if strings.TrimSpace(dn) == "" {
		return false, workflow.Errorf(workflow.CodeNoAccount, "LDAP disable: no account DN")
	}
	for attempt := 1; attempt <= disableAttempts; attempt++ {
		e, err := c.readEntry(ctx, "read userAccountControl", dn, "(objectClass=user)", "userAccountControl")
		switch {
		case err != nil:
			return false, err
		case e == nil:
			return false, workflow.Errorf(workflow.CodeNoAccount, "LDAP disable: %s on %s is not a user (or no longer exists)", dn, c.server)
		}
		read := e.GetEqualFoldAttributeValue("userAccountControl")
		uac, ok := parseUAC(read)
		if !ok {
			return false, workflow.Errorf(workflow.CodeUncheckable,
				"LDAP disable: userAccountControl of %s on %s is not readable by LDAP_BIND_DN, so its other bits cannot be kept; nothing was written", dn, c.server)
		}
		if uac&uacAccountDisable != 0 {
			return false, nil
		}
		if c.beforeWrite != nil {
			c.beforeWrite()
		}
		req := ldap.NewModifyRequest(dn, nil)
		req.Delete("userAccountControl", []string{read})
		req.Add("userAccountControl", []string{formatUAC(uac | uacAccountDisable)})
		err = c.modify(ctx, "disable", req)
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
			c.log.Debug("ldap disable: userAccountControl changed since it was read; reading it again", "dn", dn, "attempt", attempt)
			continue
		}
		if err != nil {
			return false, c.writeError(err, "disable (userAccountControl |= 0x2)", dn, "userAccountControl")
		}
		return true, nil
	}
	return false, workflow.Errorf(workflow.CodeConflict,
		"LDAP disable: userAccountControl of %s on %s changed between the read and the write %d times; nothing was written", dn, c.server, disableAttempts)
}

// formatUAC writes userAccountControl as AD stores it: a signed 32-bit
// integer.
func formatUAC(v uint32) string { return strconv.FormatInt(int64(int32(v)), 10) }

// modify runs req on the shared connection (see do for the errors) and
// logs it at debug: the step, the DN and the outcome, never a value.
func (c *Client) modify(ctx context.Context, step string, req *ldap.ModifyRequest) error {
	start := time.Now()
	_, err := do(ctx, c, step, func(conn *ldap.Conn) (struct{}, error) {
		return struct{}{}, conn.Modify(req)
	})
	c.log.Debug("ldap modify", "op", step, "dn", req.DN, "duration", time.Since(start), "error", err)
	return err
}

// writeError describes a failed write of attr on dn by step: the right
// missing (accounts.ErrNotPermitted), no such object, or anything else.
func (c *Client) writeError(err error, step, dn, attr string) error {
	switch {
	case err == nil:
		return nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights):
		return workflow.Wrap(workflow.CodeDirectoryMisconfigured, fmt.Errorf("%w: %w", accounts.ErrNotPermitted, oneLine{err}),
			fmt.Sprintf("LDAP %s of %s on %s: LDAP_BIND_DN %q may not write %s (delegate \"Write %s\" on user objects in the users' OU: README, LDAP permissions)",
				step, dn, c.server, c.bindDN, attr, attr))
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultInvalidDNSyntax):
		return workflow.Wrap(workflow.CodeNoAccount, oneLine{err}, fmt.Sprintf("LDAP %s: %s does not exist on %s", step, dn, c.server))
	}
	return c.wrap(err, step+" of "+dn)
}
