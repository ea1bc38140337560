package ldapdir

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/workflow"
)

// Protected groups are found by identity, across the whole domain: the
// built-in privileged groups by their well-known SIDs (which need no
// object: Samba has no Key Admins), every AWS delegated group and the
// operator's PROTECTED_GROUPS searched from the domain's naming context
// (never from LDAP_BASE_DN, which on AWS Managed AD is the customer OU,
// where none of them live). An account is a member when its tokenGroups
// (nested groups, the primary group, domain-local and builtin groups, in
// one base-scope read) hold one of their SIDs.

// sidScope says which SID a built-in group's RID is relative to.
type sidScope int

const (
	scopeDomain  sidScope = iota // this domain's SID
	scopeRoot                    // the forest root domain's SID
	scopeBuiltin                 // S-1-5-32
)

// builtinGroups are the privileged groups every domain has, by RID
// (MS-DTYP 2.4.2.4), in the order a refusal names them. Enterprise Admins,
// Schema Admins and Enterprise Key Admins exist only in the forest root
// domain, relative to its SID.
var builtinGroups = []struct {
	rid   uint32
	name  string
	scope sidScope
}{
	{512, "Domain Admins", scopeDomain},
	{519, "Enterprise Admins", scopeRoot},
	{518, "Schema Admins", scopeRoot},
	{544, "Administrators", scopeBuiltin},
	{548, "Account Operators", scopeBuiltin},
	{549, "Server Operators", scopeBuiltin},
	{550, "Print Operators", scopeBuiltin},
	{551, "Backup Operators", scopeBuiltin},
	{552, "Replicator", scopeBuiltin},
	{516, "Domain Controllers", scopeDomain},
	{521, "Read-only Domain Controllers", scopeDomain},
	{520, "Group Policy Creator Owners", scopeDomain},
	{526, "Key Admins", scopeDomain},
	{527, "Enterprise Key Admins", scopeRoot},
}

// AWSDelegatedPrefix starts the cn of every group AWS Managed Microsoft AD
// creates in OU=AWS Delegated Groups. Each of them is an administrative
// delegation (accounts, group policy, DNS, DHCP, certificates, fine-grained
// password policies, Kerberos delegation, directory replication, local
// administrator on every joined server, ...), so every one is protected,
// wherever it is in the domain. Simple AD has none.
const AWSDelegatedPrefix = "AWS Delegated "

// ProtectedGroups is the resolved set of protected groups.
type ProtectedGroups struct {
	DefaultNamingContext string // the domain's naming context, where groups are searched
	DomainSID            string
	RootDomainSID        string // the forest root domain's; the same as DomainSID in a single-domain forest
	// Groups are the protected groups, each once (by SID): the built-in
	// ones, then the AWS delegated ones, then PROTECTED_GROUPS in their
	// order.
	Groups []accounts.Group
	// Missing are the PROTECTED_GROUPS entries that match no group: the
	// bot refuses to start with one, and refuses every account while one
	// is missing.
	Missing []string
	// NoSID are groups found whose objectSid the bind account may not read
	// (DNs): membership in them cannot be decided.
	NoSID []string
}

// Err returns the problems of the set as one *workflow.Error with code
// workflow.CodeUncheckable, naming each entry and what to fix; nil when
// every group resolved.
func (p ProtectedGroups) Err() error {
	var problems []string
	for _, m := range p.Missing {
		problems = append(problems, fmt.Sprintf("PROTECTED_GROUPS entry %q matches no group in %s (check the cn or sAMAccountName, DN or SID)", m, p.DefaultNamingContext))
	}
	for _, dn := range p.NoSID {
		problems = append(problems, fmt.Sprintf("the objectSid of protected group %q is not readable by LDAP_BIND_DN", dn))
	}
	if len(problems) == 0 {
		return nil
	}
	return workflow.Errorf(workflow.CodeUncheckable, "LDAP protected groups: %s", strings.Join(problems, "; "))
}

// groupRef is one PROTECTED_GROUPS entry.
type groupRef struct {
	raw  string // as configured
	kind byte   // 's' SID, 'd' DN, 'n' name (cn or sAMAccountName)
	sid  []byte // binary, for 's'
}

// parseGroupRef classifies a PROTECTED_GROUPS entry: a SID (S-1-...), a
// DN (anything with "=": CN=Tier0,OU=Groups,DC=...), else a cn or
// sAMAccountName.
func parseGroupRef(s string) (groupRef, error) {
	switch {
	case len(s) > 2 && strings.EqualFold(s[:2], "S-"):
		b, err := sidBytes(s)
		if err != nil {
			return groupRef{}, fmt.Errorf("PROTECTED_GROUPS entry %q is not a SID like S-1-5-21-1004336348-1177238915-682003330-1105: %v", s, err)
		}
		return groupRef{raw: s, kind: 's', sid: b}, nil
	case strings.Contains(s, "="):
		if !IsDN(s) {
			return groupRef{}, fmt.Errorf("PROTECTED_GROUPS entry %q is not a DN (separate entries with ; when one of them is a DN)", s)
		}
		return groupRef{raw: s, kind: 'd'}, nil
	}
	return groupRef{raw: s, kind: 'n'}, nil
}

// ProtectedGroups returns the protected groups, from the cache (5 minutes)
// or the directory: the RootDSE, the domain's and the forest root's SIDs,
// one subtree search from the domain's naming context, and a base read per
// PROTECTED_GROUPS DN. Missing entries are in the result, not an error (see
// ProtectedGroups.Err). Errors: *workflow.Error with code
// workflow.CodeLookupUnavailable when the directory could not be asked,
// workflow.CodeUncheckable when it answered without what the set needs
// (no defaultNamingContext, a domain SID that is not readable).
func (c *Client) ProtectedGroups(ctx context.Context) (ProtectedGroups, error) {
	c.groupsMu.Lock()
	if c.now().Before(c.groupsExpiry) {
		set := c.groups
		c.groupsMu.Unlock()
		return set, nil
	}
	c.groupsMu.Unlock()
	// Resolved without the lock: concurrent misses resolve twice, harmlessly.
	set, err := c.resolveGroups(ctx)
	if err != nil {
		return ProtectedGroups{}, err
	}
	c.groupsMu.Lock()
	c.groups, c.groupsExpiry = set, c.now().Add(groupCacheTTL)
	c.groupsMu.Unlock()
	for _, m := range set.Missing {
		c.groupsMu.Lock()
		first := !c.missingLogged[m]
		c.missingLogged[m] = true
		c.groupsMu.Unlock()
		if first {
			c.log.Error("ldap PROTECTED_GROUPS entry matches no group: every account is refused until it does", "group", m, "base", set.DefaultNamingContext)
		}
	}
	c.log.Debug("ldap protected groups resolved", "groups", len(set.Groups), "missing", len(set.Missing), "domain_sid", set.DomainSID)
	return set, nil
}

// resolveGroups reads the protected groups from the directory: the
// domain, the built-in SIDs, then the groups found (findGroups) sorted into
// the set (addFound).
func (c *Client) resolveGroups(ctx context.Context) (ProtectedGroups, error) {
	var set ProtectedGroups
	root, err := c.readEntry(ctx, "read the RootDSE", "", "(objectClass=*)", "defaultNamingContext", "rootDomainNamingContext")
	if err != nil {
		return set, err
	}
	if root == nil || root.GetEqualFoldAttributeValue("defaultNamingContext") == "" {
		return set, workflow.Errorf(workflow.CodeUncheckable, "LDAP RootDSE of %s has no defaultNamingContext: the domain, and so its privileged groups, cannot be found", c.server)
	}
	set.DefaultNamingContext = root.GetEqualFoldAttributeValue("defaultNamingContext")
	rootNC := root.GetEqualFoldAttributeValue("rootDomainNamingContext")
	if set.DomainSID, err = c.namingContextSID(ctx, set.DefaultNamingContext); err != nil {
		return set, err
	}
	set.RootDomainSID = set.DomainSID
	if rootNC != "" && !strings.EqualFold(rootNC, set.DefaultNamingContext) {
		if set.RootDomainSID, err = c.namingContextSID(ctx, rootNC); err != nil {
			return set, err
		}
	}
	// The built-in SIDs, whether or not the domain has their objects.
	for _, b := range builtinGroups {
		rid := strconv.FormatUint(uint64(b.rid), 10)
		sid := "S-1-5-32-" + rid
		switch b.scope {
		case scopeDomain:
			sid = set.DomainSID + "-" + rid
		case scopeRoot:
			sid = set.RootDomainSID + "-" + rid
		}
		set.Groups = append(set.Groups, accounts.Group{Name: b.name, SID: sid, Source: accounts.SourceBuiltIn})
	}
	found, err := c.findGroups(ctx, set.DefaultNamingContext, set.Groups)
	if err != nil {
		return set, err
	}
	c.addFound(&set, found)
	return set, nil
}

// findGroups returns the groups under the naming context nc that may be
// protected: those with the SIDs of builtin, every one whose cn starts
// with AWSDelegatedPrefix, and those the PROTECTED_GROUPS entries name (one
// subtree search, plus a base read per DN entry). Errors: *workflow.Error
// with code workflow.CodeLookupUnavailable.
func (c *Client) findGroups(ctx context.Context, nc string, builtin []accounts.Group) ([]*ldap.Entry, error) {
	var terms strings.Builder
	for _, g := range builtin {
		b, _ := sidBytes(g.SID) // made by resolveGroups from a parsed SID
		terms.WriteString("(objectSid=" + escapeBytes(b) + ")")
	}
	terms.WriteString("(cn=" + ldap.EscapeFilter(AWSDelegatedPrefix) + "*)")
	for _, r := range c.groupRefs {
		switch r.kind {
		case 's':
			terms.WriteString("(objectSid=" + escapeBytes(r.sid) + ")")
		case 'n':
			v := ldap.EscapeFilter(r.raw)
			terms.WriteString("(cn=" + v + ")(sAMAccountName=" + v + ")")
		}
	}
	req := ldap.NewSearchRequest(nc, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=group)(|"+terms.String()+"))", []string{"cn", "sAMAccountName", "objectSid"}, nil)
	found, err := c.search(ctx, "resolve protected groups", req)
	if err != nil {
		return nil, c.wrap(err, "resolve protected groups")
	}
	for _, r := range c.groupRefs {
		if r.kind != 'd' {
			continue
		}
		e, err := c.readEntry(ctx, "resolve protected group "+strconv.Quote(r.raw), r.raw, "(objectClass=group)", "cn", "sAMAccountName", "objectSid")
		if err != nil {
			return nil, err
		}
		if e != nil {
			found = append(found, e)
		}
	}
	return found, nil
}

// addFound completes set from the group entries found: the DNs of the
// built-in groups, every AWS delegated group (sorted by name, so that the
// order is stable), then the groups of the PROTECTED_GROUPS entries in
// their order, each SID once. An entry that matches no group goes to
// Missing; a group whose objectSid was not readable goes to NoSID.
func (c *Client) addFound(set *ProtectedGroups, found []*ldap.Entry) {
	index := map[string]int{} // SID -> position in set.Groups
	for i, g := range set.Groups {
		index[g.SID] = i
	}
	add := func(g accounts.Group) {
		if _, dup := index[g.SID]; !dup {
			index[g.SID] = len(set.Groups)
			set.Groups = append(set.Groups, g)
		}
	}
	type groupEntry struct {
		e   *ldap.Entry
		sid string // "" when not readable
	}
	entries := make([]groupEntry, 0, len(found))
	for _, e := range found {
		sid, _ := parseSID(e.GetEqualFoldRawAttributeValue("objectSid"))
		if sid == "" {
			set.NoSID = append(set.NoSID, e.DN)
		} else if i, ok := index[sid]; ok && set.Groups[i].Source == accounts.SourceBuiltIn {
			set.Groups[i].DN = e.DN
		}
		entries = append(entries, groupEntry{e, sid})
	}
	var aws []accounts.Group
	for _, ge := range entries {
		if cn := ge.e.GetEqualFoldAttributeValue("cn"); ge.sid != "" && hasPrefixFoldASCII(cn, AWSDelegatedPrefix) {
			aws = append(aws, accounts.Group{Name: cn, SID: ge.sid, DN: ge.e.DN, Source: accounts.SourceAWSDelegated})
		}
	}
	slices.SortFunc(aws, func(a, b accounts.Group) int { return strings.Compare(a.Name, b.Name) })
	for _, g := range aws {
		add(g)
	}
	for _, r := range c.groupRefs {
		matched := false
		for _, ge := range entries {
			if !r.matches(ge.e, ge.sid) {
				continue
			}
			matched = true
			if ge.sid != "" {
				add(accounts.Group{Name: cmp.Or(ge.e.GetEqualFoldAttributeValue("cn"), r.raw), SID: ge.sid, DN: ge.e.DN, Source: accounts.SourceConfigured})
			}
		}
		if !matched {
			set.Missing = append(set.Missing, r.raw)
		}
	}
}

// matches reports whether the group entry e (with SID sid) is the one r
// names.
func (r groupRef) matches(e *ldap.Entry, sid string) bool {
	switch r.kind {
	case 's':
		return strings.EqualFold(sid, r.raw)
	case 'd':
		a, err1 := ldap.ParseDN(e.DN)
		b, err2 := ldap.ParseDN(r.raw)
		return err1 == nil && err2 == nil && a.EqualFold(b)
	}
	return strings.EqualFold(e.GetEqualFoldAttributeValue("cn"), r.raw) ||
		strings.EqualFold(e.GetEqualFoldAttributeValue("sAMAccountName"), r.raw)
}

// namingContextSID returns the objectSid of the naming context dn: the
// domain's SID. Errors: CodeLookupUnavailable, or CodeUncheckable when the
// answer has no SID.
func (c *Client) namingContextSID(ctx context.Context, dn string) (string, error) {
	e, err := c.readEntry(ctx, "read the domain SID", dn, "(objectClass=*)", "objectSid")
	if err != nil {
		return "", err
	}
	var sid string
	if e != nil {
		sid, _ = parseSID(e.GetEqualFoldRawAttributeValue("objectSid"))
	}
	if sid == "" {
		return "", workflow.Errorf(workflow.CodeUncheckable, "LDAP objectSid of the naming context %q on %s is not readable by LDAP_BIND_DN: the built-in privileged groups cannot be told by SID", dn, c.server)
	}
	return sid, nil
}

// ProtectedGroup returns the first protected group (in the order of
// ProtectedGroups.Groups) whose SID is in e's tokenGroups, read at base
// scope from the object with e's objectGUID (its DN when e has no GUID),
// so that the answer is about the very object e was read from. Errors are
// *workflow.Error: CodeUncheckable when e's tokenGroups are absent from
// the answer (every account has at least its primary group there, so an
// ACL hides them) or the protected groups did not all resolve;
// CodeLookupUnavailable when the directory could not be asked, or the
// object went away between the two reads.
func (c *Client) ProtectedGroup(ctx context.Context, e accounts.Entry) (accounts.Group, bool, error) {
	set, err := c.ProtectedGroups(ctx)
	if err != nil {
		return accounts.Group{}, false, err
	}
	if err := set.Err(); err != nil {
		return accounts.Group{}, false, err
	}
	base := e.DN
	if e.GUID != "" {
		base = guidDN(e.GUID)
	}
	if base == "" {
		return accounts.Group{}, false, workflow.Errorf(workflow.CodeUncheckable, "LDAP protected group check: the account %q has neither objectGUID nor DN", e.UserName)
	}
	found, err := c.readEntry(ctx, "read tokenGroups", base, "(objectClass=*)", "tokenGroups")
	switch {
	case err != nil:
		return accounts.Group{}, false, err
	case found == nil:
		return accounts.Group{}, false, c.unavailable(nil, "read tokenGroups of %q (%s) on %s: the object is gone (moved or deleted during the check); try again", e.UserName, e.DN, c.server)
	}
	values := found.GetEqualFoldRawAttributeValues("tokenGroups")
	if len(values) == 0 {
		return accounts.Group{}, false, workflow.Errorf(workflow.CodeUncheckable,
			"LDAP tokenGroups of %q (%s) are not readable by LDAP_BIND_DN on %s: its group memberships cannot be checked (grant the bind account read access to tokenGroups; on AD, membership of Windows Authorization Access Group)", e.UserName, e.DN, c.server)
	}
	tokens := make(map[string]bool, len(values))
	for _, v := range values {
		sid, _ := parseSID(v)
		if sid == "" {
			return accounts.Group{}, false, workflow.Errorf(workflow.CodeUncheckable, "LDAP tokenGroups of %q (%s) on %s hold a value that is not a SID", e.UserName, e.DN, c.server)
		}
		tokens[sid] = true
	}
	for _, g := range set.Groups {
		if tokens[g.SID] {
			return g, true, nil
		}
	}
	return accounts.Group{}, false, nil
}

// readEntry reads dn if it matches filter: nil when it does not or does
// not exist (noSuchObject, or a referral: dn is in another partition).
// Errors: *workflow.Error with code workflow.CodeLookupUnavailable.
func (c *Client) readEntry(ctx context.Context, step, dn, filter string, attrs ...string) (*ldap.Entry, error) {
	if len(attrs) == 0 {
		attrs = []string{"1.1"} // no attributes
	}
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
	found, err := c.search(ctx, step, req)
	switch {
	case ldap.IsErrorAnyOf(err, ldap.LDAPResultNoSuchObject, ldap.LDAPResultReferral):
		return nil, nil
	case err != nil:
		return nil, c.wrap(err, step)
	case len(found) == 0:
		return nil, nil
	}
	return found[0], nil
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

// sidBytes returns the binary form of the SID s (S-1-5-21-..., the S in
// either case).
func sidBytes(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || !strings.EqualFold(parts[0], "S") || parts[1] != "1" {
		return nil, fmt.Errorf("not S-1-...")
	}
	authority, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("identifier authority %q", parts[2])
	}
	subs := parts[3:]
	if len(subs) == 0 || len(subs) > 15 {
		return nil, fmt.Errorf("%d sub-authorities", len(subs))
	}
	b := []byte{1, byte(len(subs))}
	for i := 5; i >= 0; i-- {
		b = append(b, byte(authority>>(8*i)))
	}
	for _, p := range subs {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("sub-authority %q", p)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}

// escapeBytes writes b as a filter value: every byte escaped (\xx), which
// every server takes for binary attributes such as objectSid.
func escapeBytes(b []byte) string {
	var s strings.Builder
	for _, x := range b {
		fmt.Fprintf(&s, `\%02x`, x)
	}
	return s.String()
}

// hasPrefixFoldASCII reports whether s starts with prefix, ASCII letters
// compared case-insensitively.
func hasPrefixFoldASCII(s, prefix string) bool {
	return len(s) >= len(prefix) && accounts.EqualFoldASCII(s[:len(prefix)], prefix)
}
