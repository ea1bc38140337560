package ldapdir

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// inChain is the LDAP_MATCHING_RULE_IN_CHAIN rule: memberOf through any
// depth of nested groups.
const inChain = "1.2.840.113556.1.4.1941"

// protectedGroup is one group found for a configured name.
type protectedGroup struct {
	name string // as configured
	dn   string
	sid  string // objectSid as S-1-5-21-...-RID; "" when unreadable
	rid  uint32 // the last part of a domain SID, 0 for other SIDs
}

// protectedGroups returns the configured groups that exist, in configured
// order, from the cache or one search.
func (c *Client) protectedGroups(ctx context.Context) ([]protectedGroup, error) {
	if len(c.groupNames) == 0 {
		return nil, nil
	}
	c.groupsMu.Lock()
	if c.now().Before(c.groupsExpiry) {
		groups := c.groups
		c.groupsMu.Unlock()
		return groups, nil
	}
	c.groupsMu.Unlock()
	// Searched without the lock: concurrent misses search twice, harmlessly.
	var terms strings.Builder
	for _, name := range c.groupNames {
		v := ldap.EscapeFilter(name)
		terms.WriteString("(cn=" + v + ")(sAMAccountName=" + v + ")")
	}
	req := ldap.NewSearchRequest(c.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=group)(|"+terms.String()+"))", []string{"cn", "sAMAccountName", "objectSid"}, nil)
	found, err := c.search(ctx, "resolve protected groups", req)
	if err != nil {
		return nil, c.wrap(err, "resolve protected groups")
	}
	groups := c.matchGroups(found)
	c.groupsMu.Lock()
	c.groups, c.groupsExpiry = groups, c.now().Add(groupCacheTTL)
	c.groupsMu.Unlock()
	return groups, nil
}

// matchGroups pairs each configured name with the groups whose cn or
// sAMAccountName it is, and logs (once) the names that match none.
func (c *Client) matchGroups(found []*ldap.Entry) []protectedGroup {
	var groups []protectedGroup
	for _, name := range c.groupNames {
		n := len(groups)
		for _, e := range found {
			if !strings.EqualFold(e.GetEqualFoldAttributeValue("cn"), name) &&
				!strings.EqualFold(e.GetEqualFoldAttributeValue("sAMAccountName"), name) {
				continue
			}
			sid, rid := parseSID(e.GetEqualFoldRawAttributeValue("objectSid"))
			groups = append(groups, protectedGroup{name: name, dn: e.DN, sid: sid, rid: rid})
		}
		if len(groups) == n {
			c.groupsMu.Lock()
			first := !c.missingLogged[name]
			c.missingLogged[name] = true
			c.groupsMu.Unlock()
			if first {
				c.log.Debug("ldap protected group not found, skipped", "group", name, "base", c.baseDN)
			}
		}
	}
	return groups
}

// ProtectedGroup returns the name (as configured) of the first protected
// group that dn is a member of: directly, through nested groups, or as its
// primary group (primaryGroupID, which memberOf does not show). It returns
// "" when dn is in none, or does not exist. Errors are *workflow.Error
// with code workflow.CodeLookupUnavailable; dn that is not a DN is one.
func (c *Client) ProtectedGroup(ctx context.Context, dn string) (string, error) {
	if parsed, err := ldap.ParseDN(dn); err != nil || len(parsed.RDNs) == 0 {
		return "", c.unavailable(err, "protected group check: %q is not a DN", dn)
	}
	groups, err := c.protectedGroups(ctx)
	if err != nil || len(groups) == 0 {
		return "", err
	}
	var terms strings.Builder
	for _, g := range groups {
		terms.WriteString("(memberOf:" + inChain + ":=" + ldap.EscapeFilter(g.dn) + ")")
		if g.rid != 0 {
			terms.WriteString("(primaryGroupID=" + strconv.FormatUint(uint64(g.rid), 10) + ")")
		}
	}
	found, err := c.readEntry(ctx, "protected group check", dn, "(|"+terms.String()+")", "primaryGroupID", "objectSid")
	if err != nil || found == nil {
		return "", err
	}
	primary := primaryGroupSID(found)
	for _, g := range groups {
		if primary != "" && strings.EqualFold(primary, g.sid) {
			return g.name, nil
		}
		member, err := c.readEntry(ctx, "protected group check", dn, "(memberOf:"+inChain+":="+ldap.EscapeFilter(g.dn)+")")
		if err != nil {
			return "", err
		}
		if member != nil {
			return g.name, nil
		}
	}
	// The combined filter matched but no single group did: the membership
	// changed in between. Refuse rather than guess.
	return "", c.unavailable(nil, "protected group check of %q on %s: membership changed during the check, try again", dn, c.server)
}

// readEntry reads dn if it matches filter: nil when it does not or does
// not exist.
func (c *Client) readEntry(ctx context.Context, step, dn, filter string, attrs ...string) (*ldap.Entry, error) {
	if len(attrs) == 0 {
		attrs = []string{"1.1"} // no attributes
	}
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
	found, err := c.search(ctx, step, req)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return nil, nil
	case err != nil:
		return nil, c.wrap(err, step)
	case len(found) == 0:
		return nil, nil
	}
	return found[0], nil
}

// primaryGroupSID returns the SID of e's primary group: e's domain SID
// followed by primaryGroupID; "" when either is missing.
func primaryGroupSID(e *ldap.Entry) string {
	sid, rid := parseSID(e.GetEqualFoldRawAttributeValue("objectSid"))
	pg := e.GetEqualFoldAttributeValue("primaryGroupID")
	if rid == 0 || pg == "" {
		return ""
	}
	return sid[:strings.LastIndexByte(sid, '-')+1] + pg
}

// parseSID returns the string form of a binary objectSid and, for a domain
// SID (S-1-5-21-...), its relative ID, the last sub-authority.
func parseSID(b []byte) (sid string, rid uint32) {
	if len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return "", 0
	}
	var authority uint64
	for _, x := range b[2:8] {
		authority = authority<<8 | uint64(x)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "S-1-%d", authority)
	subs := make([]uint32, b[1])
	for i := range subs {
		subs[i] = binary.LittleEndian.Uint32(b[8+4*i:])
		fmt.Fprintf(&s, "-%d", subs[i])
	}
	if authority == 5 && len(subs) >= 2 && subs[0] == 21 {
		rid = subs[len(subs)-1]
	}
	return s.String(), rid
}
