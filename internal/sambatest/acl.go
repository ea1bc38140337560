package sambatest

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Group describes a group for CreateGroupIn. Only Name is required.
type Group struct {
	Name        string // sAMAccountName and CN
	OU          string // DN of the parent; default OUCorp under Env.BaseDN
	DomainLocal bool   // a domain-local security group (like AWS's delegated groups) instead of a global one
}

// groupType values (security groups).
const (
	groupTypeGlobalSecurity      = -2147483646 // 0x80000002
	groupTypeDomainLocalSecurity = -2147483644 // 0x80000004
)

// CreateGroupIn adds the security group g and returns its DN
// (CN=<Name>,<OU>). A tb.Cleanup deletes it.
func (a *Admin) CreateGroupIn(g Group) string {
	a.tb.Helper()
	if g.Name == "" {
		a.tb.Fatal("sambatest: CreateGroupIn: Name is empty")
	}
	if g.OU == "" {
		g.OU = "OU=CORP," + a.env.BaseDN
	}
	gt := groupTypeGlobalSecurity
	if g.DomainLocal {
		gt = groupTypeDomainLocalSecurity
	}
	dn := "CN=" + ldap.EscapeDN(g.Name) + "," + g.OU
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "group"})
	req.Attribute("sAMAccountName", []string{g.Name})
	req.Attribute("groupType", []string{strconv.Itoa(gt)})
	if err := a.conn.Add(req); err != nil {
		a.tb.Fatalf("sambatest: create group %s: %v", dn, err)
	}
	a.deleteOnCleanup(dn)
	return dn
}

// CreateOU adds the organizational unit OU=<name>,<parent> (parent "" is
// Env.BaseDN) and returns its DN. A tb.Cleanup deletes it; create what goes
// in it afterwards, so that it is deleted first.
func (a *Admin) CreateOU(name, parent string) string {
	a.tb.Helper()
	if parent == "" {
		parent = a.env.BaseDN
	}
	dn := "OU=" + ldap.EscapeDN(name) + "," + parent
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	if err := a.conn.Add(req); err != nil {
		a.tb.Fatalf("sambatest: create OU %s: %v", dn, err)
	}
	a.deleteOnCleanup(dn)
	return dn
}

// Replace replaces the attribute attr of the entry name (a sAMAccountName
// or a DN) with values; no values removes it. For attributes the other
// helpers do not cover (adminCount, primaryGroupID, ...) on entries the
// test created.
func (a *Admin) Replace(name, attr string, values ...string) {
	a.tb.Helper()
	a.modify(a.DN(name), "replace "+attr, func(r *ldap.ModifyRequest) { r.Replace(attr, values) })
}

// SID returns the objectSid of the entry name (a sAMAccountName or a DN)
// as S-1-5-21-....
func (a *Admin) SID(name string) string {
	a.tb.Helper()
	dn := a.DN(name)
	res, err := a.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject,
		ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		a.tb.Fatalf("sambatest: read objectSid of %s: %v", dn, err)
	}
	sid, err := sidString(res.Entries[0].GetRawAttributeValue("objectSid"))
	if err != nil {
		a.tb.Fatalf("sambatest: objectSid of %s: %v", dn, err)
	}
	return sid
}

// DenyRead adds an explicit ACE to the security descriptor of the entry
// name (a sAMAccountName or a DN, which the test created) that denies
// trustee (a sAMAccountName or DN, e.g. Env.BindDN) reading the attribute
// attr (its lDAPDisplayName, e.g. "userAccountControl"). The ACE goes
// first in the DACL, as deny ACEs do; the rest of the DACL is kept. To
// the trustee the attribute is then absent from every answer, which is
// how an ACL looks from LDAP.
func (a *Admin) DenyRead(name, trustee, attr string) {
	a.tb.Helper()
	a.addACE(name, objectACE(aceAccessDeniedObject, 0, dsReadProperty, a.schemaIDGUID(attr), nil, a.sidOf(trustee)))
}

// sidOf returns the binary objectSid of the entry name.
func (a *Admin) sidOf(name string) []byte {
	a.tb.Helper()
	sid, err := sidBytes(a.SID(name))
	if err != nil {
		a.tb.Fatalf("sambatest: objectSid of %s: %v", name, err)
	}
	return sid
}

// addACE puts ace first in the DACL of the entry name (a sAMAccountName or
// a DN) and keeps the rest.
func (a *Admin) addACE(name string, ace []byte) {
	a.tb.Helper()
	dn := a.DN(name)
	sdFlags := []ldap.Control{&ldap.ControlMicrosoftSDFlags{Criticality: true, ControlValue: 4}} // DACL only
	res, err := a.conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"nTSecurityDescriptor"}, sdFlags))
	if err != nil || len(res.Entries) != 1 {
		a.tb.Fatalf("sambatest: read nTSecurityDescriptor of %s: %v", dn, err)
	}
	sd, err := prependACE(res.Entries[0].GetRawAttributeValue("nTSecurityDescriptor"), ace)
	if err != nil {
		a.tb.Fatalf("sambatest: add an ACE to %s: %v", dn, err)
	}
	req := ldap.NewModifyRequest(dn, sdFlags)
	req.Replace("nTSecurityDescriptor", []string{string(sd)})
	if err := a.conn.Modify(req); err != nil {
		a.tb.Fatalf("sambatest: write nTSecurityDescriptor of %s: %v", dn, err)
	}
}

// schemaIDGUID returns the schemaIDGUID (16 bytes, as stored) of the
// attribute or class whose lDAPDisplayName is name.
func (a *Admin) schemaIDGUID(name string) []byte {
	a.tb.Helper()
	res, err := a.conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"schemaNamingContext"}, nil))
	if err != nil || len(res.Entries) != 1 {
		a.tb.Fatalf("sambatest: read the RootDSE: %v", err)
	}
	schema := res.Entries[0].GetAttributeValue("schemaNamingContext")
	res, err = a.conn.Search(ldap.NewSearchRequest(schema, ldap.ScopeSingleLevel, ldap.NeverDerefAliases,
		2, 0, false, "(&(|(objectClass=attributeSchema)(objectClass=classSchema))(lDAPDisplayName="+ldap.EscapeFilter(name)+"))",
		[]string{"schemaIDGUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		a.tb.Fatalf("sambatest: schemaIDGUID of %s: %v", name, err)
	}
	g := res.Entries[0].GetRawAttributeValue("schemaIDGUID")
	if len(g) != 16 {
		a.tb.Fatalf("sambatest: schemaIDGUID of %s has %d bytes", name, len(g))
	}
	return g
}

// ACE types, flags and rights (MS-DTYP 2.4.4.1, 2.4.4.3, 2.4.4.4;
// ADS_RIGHTS_ENUM).
const (
	aceAccessAllowedObject = 0x05
	aceAccessDeniedObject  = 0x06
	aceContainerInherit    = 0x02 // CI: inherited by the objects below
	dsReadProperty         = 0x10 // RP
	dsWriteProperty        = 0x20 // WP
)

// objectACE is an ACCESS_ALLOWED_OBJECT_ACE or ACCESS_DENIED_OBJECT_ACE
// (MS-DTYP 2.4.4.3, 2.4.4.4) of type aceType with flags, granting or
// denying mask on the property objectType (a schemaIDGUID) to the SID sid
// (binary); inheritedType, when not nil, is the class (a schemaIDGUID) of
// the objects that inherit it.
func objectACE(aceType, flags byte, mask uint32, objectType, inheritedType, sid []byte) []byte {
	const objectTypePresent, inheritedObjectTypePresent = 0x1, 0x2
	present := uint32(objectTypePresent)
	size := 4 + 4 + 4 + 16 + len(sid)
	if inheritedType != nil {
		present |= inheritedObjectTypePresent
		size += 16
	}
	ace := make([]byte, 0, size)
	ace = append(ace, aceType, flags)
	ace = binary.LittleEndian.AppendUint16(ace, uint16(size))
	ace = binary.LittleEndian.AppendUint32(ace, mask)
	ace = binary.LittleEndian.AppendUint32(ace, present)
	ace = append(ace, objectType...)
	ace = append(ace, inheritedType...)
	return append(ace, sid...)
}

// prependACE returns a self-relative security descriptor holding only the
// DACL of sd with ace put first (MS-DTYP 2.4.6, 2.4.5): what a modify under
// the SD flags control for the DACL writes.
func prependACE(sd, ace []byte) ([]byte, error) {
	if len(sd) < 20 || sd[0] != 1 {
		return nil, fmt.Errorf("not a self-relative security descriptor (%d bytes)", len(sd))
	}
	control := binary.LittleEndian.Uint16(sd[2:])
	off := int(binary.LittleEndian.Uint32(sd[16:]))
	const daclPresent, saclPresent, selfRelative = 0x0004, 0x0010, 0x8000
	if control&daclPresent == 0 || off == 0 || off+8 > len(sd) {
		return nil, fmt.Errorf("the security descriptor has no DACL")
	}
	acl := sd[off:]
	size := int(binary.LittleEndian.Uint16(acl[2:]))
	count := binary.LittleEndian.Uint16(acl[4:])
	if size < 8 || size > len(acl) {
		return nil, fmt.Errorf("DACL size %d out of range", size)
	}
	out := make([]byte, 20, 20+size+len(ace))
	out[0] = 1
	binary.LittleEndian.PutUint16(out[2:], (control&^saclPresent)|daclPresent|selfRelative)
	binary.LittleEndian.PutUint32(out[16:], 20)
	newACL := make([]byte, 8, size+len(ace))
	copy(newACL, acl[:8])
	newACL[0] = max(newACL[0], 4) // ACL_REVISION_DS: object ACEs
	binary.LittleEndian.PutUint16(newACL[2:], uint16(size+len(ace)))
	binary.LittleEndian.PutUint16(newACL[4:], count+1)
	newACL = append(newACL, ace...)
	newACL = append(newACL, acl[8:size]...)
	return append(out, newACL...), nil
}

// sidString returns the string form of a binary SID.
func sidString(b []byte) (string, error) {
	if len(b) < 8 || b[0] != 1 || len(b) != 8+4*int(b[1]) {
		return "", fmt.Errorf("not a SID (%d bytes)", len(b))
	}
	var authority uint64
	for _, x := range b[2:8] {
		authority = authority<<8 | uint64(x)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "S-1-%d", authority)
	for i := range int(b[1]) {
		fmt.Fprintf(&s, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return s.String(), nil
}

// sidBytes returns the binary form of the SID s (S-1-5-21-...).
func sidBytes(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) < 3 || parts[0] != "S" || parts[1] != "1" {
		return nil, fmt.Errorf("%q is not a SID", s)
	}
	authority, err := strconv.ParseUint(parts[2], 10, 48)
	if err != nil {
		return nil, fmt.Errorf("%q is not a SID: %v", s, err)
	}
	subs := parts[3:]
	b := []byte{1, byte(len(subs))}
	for i := 5; i >= 0; i-- {
		b = append(b, byte(authority>>(8*i)))
	}
	for _, p := range subs {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a SID: %v", s, err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b, nil
}
