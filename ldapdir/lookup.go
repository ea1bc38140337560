package ldapdir

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/workflow"
)

// userAttributes are the attributes read for an accounts.Entry. The bind
// account must be able to read the first line's for the guards; the
// second line's are the accounts.Facts, left unknown when hidden (facts.go);
// otherMailbox is where the owner's notice email also goes;
// tokenGroups is read on its own (base scope only).
var userAttributes = []string{
	"sAMAccountName", "mail", "userPrincipalName", "displayName", "cn", "manager",
	"userAccountControl", "objectClass", "distinguishedName", "objectSid", "objectGUID", "adminCount",
	attrUACComputed, "lockoutTime", "msDS-ResultantPSO", "badPwdCount", "pwdLastSet",
	"otherMailbox",
}

// userAccountControl bits.
const (
	uacAccountDisable      = 0x2
	uacInterdomainTrust    = 0x800
	uacWorkstationTrust    = 0x1000
	uacServerTrust         = 0x2000
	uacMachineOrTrustFlags = uacInterdomainTrust | uacWorkstationTrust | uacServerTrust
)

// machineClasses are the objectClasses of computer and managed service
// accounts (compared case-insensitively).
var machineClasses = []string{"computer", "msDS-ManagedServiceAccount", "msDS-GroupManagedServiceAccount"}

// search runs one search on the shared connection (see do for the errors)
// and logs it at debug. Referrals, such as the one to the Configuration
// partition that AD returns for a subtree search at the domain root, are
// ignored.
func (c *Client) search(ctx context.Context, step string, req *ldap.SearchRequest) ([]*ldap.Entry, error) {
	start := time.Now()
	limit := c.timeout
	if d, ok := ctx.Deadline(); ok {
		limit = min(time.Until(d), limit)
	}
	// The server counts the limit in whole seconds from the second the
	// search arrived in (Samba's deadline is that second + limit, at .000),
	// so a limit of 1 can end a quick search a millisecond after it
	// arrives. One more second keeps the server from cutting a search
	// short; the bot's own deadline (do) still bounds how long it waits.
	req.TimeLimit = int(math.Ceil(limit.Seconds())) + 1
	res, err := do(ctx, c, step, func(conn *ldap.Conn) (*ldap.SearchResult, error) {
		return conn.Search(req)
	})
	n := 0
	if res != nil {
		n = len(res.Entries)
	}
	c.log.Debug("ldap search", "op", step, "base", req.BaseDN, "filter", req.Filter,
		"entries", n, "duration", time.Since(start), "error", err)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

// searchUsers searches users under the base DN.
func (c *Client) searchUsers(ctx context.Context, step, filter string) ([]*ldap.Entry, error) {
	req := ldap.NewSearchRequest(c.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, "(&(objectClass=user)"+filter+")", userAttributes, nil)
	entries, err := c.search(ctx, step, req)
	if err != nil {
		return nil, c.wrap(err, step)
	}
	return entries, nil
}

// wrap turns an LDAP result error from do into a *workflow.Error naming
// step; a *workflow.Error is returned as it is.
func (c *Client) wrap(err error, step string) error {
	var we *workflow.Error
	if errors.As(err, &we) {
		return err
	}
	return c.unavailable(err, "%s on %s failed", step, c.server)
}

// ByEmail returns every user (computers included, so that the guards can
// name them) whose mail or userPrincipalName is email; the server compares
// case-insensitively. An empty email matches nobody. Errors are
// *workflow.Error with code workflow.CodeLookupUnavailable.
func (c *Client) ByEmail(ctx context.Context, email string) ([]accounts.Entry, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return nil, nil
	}
	v := ldap.EscapeFilter(email)
	found, err := c.searchUsers(ctx, "search by email", "(|(mail="+v+")(userPrincipalName="+v+"))")
	if err != nil {
		return nil, err
	}
	entries := make([]accounts.Entry, 0, len(found))
	for _, e := range found {
		entries = append(entries, c.entry(ctx, e))
	}
	return entries, nil
}

// ByName returns the user whose sAMAccountName is name (compared
// case-insensitively by the server); ok is false when there is none.
// Errors are *workflow.Error with code workflow.CodeLookupUnavailable,
// including the impossible case of several matches.
func (c *Client) ByName(ctx context.Context, name string) (accounts.Entry, bool, error) {
	if name == "" {
		return accounts.Entry{}, false, nil
	}
	found, err := c.searchUsers(ctx, "search by name", "(sAMAccountName="+ldap.EscapeFilter(name)+")")
	switch {
	case err != nil:
		return accounts.Entry{}, false, err
	case len(found) == 0:
		return accounts.Entry{}, false, nil
	case len(found) > 1:
		return accounts.Entry{}, false, c.unavailable(nil, "search by name on %s: %d accounts are named %q", c.server, len(found), name)
	}
	return c.entry(ctx, found[0]), true, nil
}

// ByDN returns the user with distinguished name dn; ok is false when
// there is none (noSuchObject, or dn is not a DN or not a user). Errors
// are *workflow.Error with code workflow.CodeLookupUnavailable.
func (c *Client) ByDN(ctx context.Context, dn string) (accounts.Entry, bool, error) {
	if parsed, err := ldap.ParseDN(dn); err != nil || len(parsed.RDNs) == 0 {
		return accounts.Entry{}, false, nil // "" would read the root DSE
	}
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=user)", userAttributes, nil)
	found, err := c.search(ctx, "read by DN", req)
	switch {
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultInvalidDNSyntax):
		return accounts.Entry{}, false, nil
	case err != nil:
		return accounts.Entry{}, false, c.wrap(err, "read by DN")
	case len(found) == 0:
		return accounts.Entry{}, false, nil
	}
	return c.entry(ctx, found[0]), true, nil
}

// ByGUID returns the user whose objectGUID is guid (dashed string form),
// read at base scope through <GUID=...> wherever it is in the domain; ok
// is false when there is none (or guid is not a GUID, or the object is
// not a user). Errors are *workflow.Error with code
// workflow.CodeLookupUnavailable.
func (c *Client) ByGUID(ctx context.Context, guid string) (accounts.Entry, bool, error) {
	if !isGUID(guid) {
		return accounts.Entry{}, false, nil
	}
	req := ldap.NewSearchRequest(guidDN(guid), ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		0, 0, false, "(objectClass=user)", userAttributes, nil)
	found, err := c.search(ctx, "read by objectGUID", req)
	switch {
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultReferral):
		return accounts.Entry{}, false, nil
	case err != nil:
		return accounts.Entry{}, false, c.wrap(err, "read by objectGUID")
	case len(found) == 0:
		return accounts.Entry{}, false, nil
	}
	return c.entry(ctx, found[0]), true, nil
}

// guidDN is the DN form that names an object by its objectGUID
// (MS-ADTS 3.1.1.3.1.2.4); AD and Samba take it as a search base and as
// the object of a modify.
func guidDN(guid string) string { return "<GUID=" + guid + ">" }

// isGUID reports whether s is a GUID in its dashed string form
// (8-4-4-4-12 hexadecimal digits), so that nothing else is ever put
// between <GUID= and >.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case '0' <= r && r <= '9', 'a' <= r && r <= 'f', 'A' <= r && r <= 'F':
		default:
			return false
		}
	}
	return true
}

// ExpirePassword replaces pwdLastSet with 0 on dn, so that the user must
// change the password at the next logon. Errors are *workflow.Error with
// code workflow.CodeLookupUnavailable, e.g. when the bind account may not
// write pwdLastSet (insufficientAccessRights) or dn does not exist.
func (c *Client) ExpirePassword(ctx context.Context, dn string) error {
	start := time.Now()
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("pwdLastSet", []string{"0"})
	_, err := do(ctx, c, "modify pwdLastSet", func(conn *ldap.Conn) (struct{}, error) {
		return struct{}{}, conn.Modify(req)
	})
	c.log.Debug("ldap modify", "op", "expire password", "dn", dn, "duration", time.Since(start), "error", err)
	if ldap.IsErrorAnyOf(err, ldap.LDAPResultInsufficientAccessRights) {
		return c.unavailable(err, "modify pwdLastSet of %q on %s: LDAP_BIND_DN may not write it (FORCE_CHANGE_AT_LOGON needs that right)", dn, c.server)
	}
	if err != nil {
		return c.wrap(err, "modify pwdLastSet of "+strconv.Quote(dn))
	}
	return nil
}

// entry converts a search result to an accounts.Entry. An attribute the
// guards need that is absent or unparsable (every account has them, so an
// ACL hid it) is named in Unreadable, never taken as a harmless value. The
// facts (facts.go) may need a read or two more, for a locked account.
func (c *Client) entry(ctx context.Context, e *ldap.Entry) accounts.Entry {
	get := e.GetEqualFoldAttributeValue
	var unreadable []string
	uac, ok := parseUAC(get("userAccountControl"))
	if !ok {
		unreadable = append(unreadable, "userAccountControl")
	}
	sid, _ := parseSID(e.GetEqualFoldRawAttributeValue("objectSid"))
	if sid == "" {
		unreadable = append(unreadable, "objectSid")
	}
	guid := formatGUID(e.GetEqualFoldRawAttributeValue("objectGUID"))
	if guid == "" {
		unreadable = append(unreadable, "objectGUID")
	}
	name := get("sAMAccountName")
	display := get("displayName")
	if display == "" {
		display = get("cn")
	}
	adminCount, _ := strconv.ParseInt(get("adminCount"), 10, 64)
	other := e.GetEqualFoldAttributeValues("otherMailbox")
	if len(other) == 0 {
		other = nil
	}
	return accounts.Entry{
		DN:          e.DN,
		UserName:    name,
		Email:       get("mail"),
		Other:       other,
		UPN:         get("userPrincipalName"),
		DisplayName: display,
		ManagerDN:   get("manager"),
		GUID:        guid,
		SID:         sid,
		Disabled:    uac&uacAccountDisable != 0,
		Machine:     isMachine(e.GetEqualFoldAttributeValues("objectClass"), uac, name),
		OutsideOUs:  c.outsideOUs(e.DN),
		AdminCount:  adminCount != 0,
		Unreadable:  unreadable,
		Facts:       c.facts(ctx, e, guid),
	}
}

// parseUAC parses userAccountControl, a signed 32-bit integer in AD; ok is
// false when s is not one (absent included).
func parseUAC(s string) (uint32, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < math.MinInt32 || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// formatGUID returns the dashed string form of a binary objectGUID, as
// Windows shows it and as <GUID=...> takes it: the first three fields
// little-endian, the last two as stored. "" when b is not 16 bytes.
func formatGUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]),
		binary.LittleEndian.Uint16(b[4:6]), binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// isMachine reports a computer, managed service or trust account.
func isMachine(classes []string, uac uint32, name string) bool {
	for _, oc := range classes {
		for _, mc := range machineClasses {
			if strings.EqualFold(oc, mc) {
				return true
			}
		}
	}
	return uac&uacMachineOrTrustFlags != 0 || strings.HasSuffix(name, "$")
}

// outsideOUs reports whether allowed OUs are configured and dn is under
// none of them (compared case-insensitively). A DN that does not parse is
// outside.
func (c *Client) outsideOUs(dn string) bool {
	if len(c.allowedOUs) == 0 {
		return false
	}
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return true
	}
	for _, ou := range c.allowedOUs {
		if ou.AncestorOfFold(parsed) {
			return false
		}
	}
	return true
}
