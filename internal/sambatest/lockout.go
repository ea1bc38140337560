package sambatest

import (
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Account lockout without touching the domain: the shared Samba's domain
// policy never locks (lockoutThreshold 0) and other tests rely on that, so
// a test that needs lockout creates its own fine-grained password policy
// (CreatePSO) applied to a group of its own, and locks its own users with
// LockOut. A test that needs the delegated rights the bot's write account
// has in production (Write lockoutTime, Write userAccountControl) grants
// them to an account of its own on an OU of its own (DelegateWrite), so
// that it does not depend on what the running Samba was seeded with.

// PasswordSettingsContainer is where PSOs live, under the domain's DN.
const PasswordSettingsContainer = "CN=Password Settings Container,CN=System"

// Schema names of the attributes the bot writes, for DelegateWrite, and
// their schemaIDGUIDs as the README's dsacl lines name them.
const (
	AttrLockoutTime        = "lockoutTime"        // 28630ebf-41d5-11d1-a9c1-0000f80367c1
	AttrUserAccountControl = "userAccountControl" // bf967a68-0de6-11d0-a285-00aa003049e2
	AttrPwdLastSet         = "pwdLastSet"         // bf967a0a-0de6-11d0-a285-00aa003049e2
)

// UACLockout is the UF_LOCKOUT bit of msDS-User-Account-Control-Computed.
const UACLockout = 0x10

// PSO describes a fine-grained password policy (an msDS-PasswordSettings
// object) for CreatePSO. Its password rules are the domain's defaults
// (complexity, at least 7 characters, 42 days) without history, so that
// the tests' passwords keep working.
type PSO struct {
	Name       string // CN; default a Unique name
	Precedence int    // msDS-PasswordSettingsPrecedence; default 10 (lower wins)
	// LockoutThreshold is the number of bad passwords that lock the
	// account; 0 never locks.
	LockoutThreshold int
	// LockoutDuration is how long a lockout lasts; 0 means until an
	// administrator unlocks the account.
	LockoutDuration time.Duration
	// ObservationWindow is how long a bad password counts; default
	// LockoutDuration, or 30 minutes when that is 0 (AD requires it to be
	// no longer than a non-zero LockoutDuration).
	ObservationWindow time.Duration
	// AppliesTo are the groups or users (sAMAccountNames or DNs) the
	// policy applies to: msDS-PSOAppliesTo.
	AppliesTo []string
}

// CreatePSO adds the password settings object p and returns its DN. A
// tb.Cleanup deletes it. Only the accounts in p.AppliesTo (and members of
// the groups there) are affected, never the rest of the shared domain.
func (a *Admin) CreatePSO(p PSO) string {
	a.tb.Helper()
	if p.Name == "" {
		p.Name = Unique("pso")
	}
	if p.Precedence == 0 {
		p.Precedence = 10
	}
	if p.ObservationWindow == 0 {
		p.ObservationWindow = p.LockoutDuration
		if p.ObservationWindow == 0 {
			p.ObservationWindow = 30 * time.Minute
		}
	}
	dn := "CN=" + ldap.EscapeDN(p.Name) + "," + PasswordSettingsContainer + "," + a.env.BaseDN
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "msDS-PasswordSettings"})
	for attr, v := range map[string]string{
		"msDS-PasswordSettingsPrecedence":          strconv.Itoa(p.Precedence),
		"msDS-PasswordReversibleEncryptionEnabled": "FALSE",
		"msDS-PasswordHistoryLength":               "0",
		"msDS-PasswordComplexityEnabled":           "TRUE",
		"msDS-MinimumPasswordLength":               "7",
		"msDS-MinimumPasswordAge":                  "0",
		"msDS-MaximumPasswordAge":                  strconv.FormatInt(Interval(42*24*time.Hour), 10),
		"msDS-LockoutThreshold":                    strconv.Itoa(p.LockoutThreshold),
		"msDS-LockoutObservationWindow":            strconv.FormatInt(Interval(p.ObservationWindow), 10),
		"msDS-LockoutDuration":                     strconv.FormatInt(Interval(p.LockoutDuration), 10),
	} {
		req.Attribute(attr, []string{v})
	}
	var targets []string
	for _, t := range p.AppliesTo {
		targets = append(targets, a.DN(t))
	}
	if len(targets) > 0 {
		req.Attribute("msDS-PSOAppliesTo", targets)
	}
	if err := a.conn.Add(req); err != nil {
		a.tb.Fatalf("sambatest: create PSO %s: %v", dn, err)
	}
	a.deleteOnCleanup(dn)
	return dn
}

// Interval returns d as AD stores a duration (lockoutDuration,
// msDS-LockoutDuration, maxPwdAge): a negative number of 100-nanosecond
// intervals; 0 stays 0.
func Interval(d time.Duration) int64 { return -int64(d / 100) }

// FileTime returns t as a Windows FILETIME: 100-nanosecond intervals since
// 1601-01-01 UTC (lockoutTime, pwdLastSet).
func FileTime(t time.Time) int64 {
	const epochDiff = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	return (t.Unix()+epochDiff)*10_000_000 + int64(t.Nanosecond()/100)
}

// LockOut binds as the user name (a sAMAccountName or DN) with a wrong
// password attempts times, as a phone with an old password would, and
// fails the test unless the account is then locked (UF_LOCKOUT in
// msDS-User-Account-Control-Computed). Give it the threshold of the PSO
// that applies to name. No bind is made after the last bad one, so
// badPwdCount is exactly attempts.
func (a *Admin) LockOut(name string, attempts int) {
	a.tb.Helper()
	dn := a.DN(name)
	for i := 1; i <= attempts; i++ {
		err := a.env.Bind(dn, "Wrong-Passw0rd-"+strconv.Itoa(i))
		if !IsInvalidCredentials(err) {
			a.tb.Fatalf("sambatest: bad bind %d of %d as %s: %v, want LDAP 49", i, attempts, dn, err)
		}
	}
	if !a.Locked(name) {
		a.tb.Fatalf("sambatest: %s is not locked after %d bad passwords (badPwdCount %d, lockoutTime %d): does a PSO with that threshold apply to it?",
			dn, attempts, a.BadPwdCount(name), a.LockoutTime(name))
	}
}

// Locked reports whether the DC refuses name's logons now: UF_LOCKOUT in
// msDS-User-Account-Control-Computed, read as Administrator.
func (a *Admin) Locked(name string) bool {
	a.tb.Helper()
	v, err := strconv.ParseInt(a.attr(name, "msDS-User-Account-Control-Computed"), 10, 64)
	if err != nil {
		a.tb.Fatalf("sambatest: msDS-User-Account-Control-Computed of %s: %v", name, err)
	}
	return v&UACLockout != 0
}

// LockoutTime returns the lockoutTime of name (a FILETIME; 0 when absent
// or unlocked), read as Administrator.
func (a *Admin) LockoutTime(name string) int64 {
	a.tb.Helper()
	s := a.attr(name, "lockoutTime")
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		a.tb.Fatalf("sambatest: lockoutTime of %s: %v", name, err)
	}
	return v
}

// BadPwdCount returns the badPwdCount of name, read as Administrator from
// this (the only) DC.
func (a *Admin) BadPwdCount(name string) int {
	a.tb.Helper()
	v, err := strconv.Atoi(a.attr(name, "badPwdCount"))
	if err != nil {
		a.tb.Fatalf("sambatest: badPwdCount of %s: %v", name, err)
	}
	return v
}

// ResultantPSO returns the DN of the PSO that applies to name ("" when
// none does), read as Administrator.
func (a *Admin) ResultantPSO(name string) string {
	a.tb.Helper()
	return a.attr(name, "msDS-ResultantPSO")
}

// DelegateWrite grants trustee (a sAMAccountName or DN) WriteProperty on
// the attribute attr (e.g. AttrLockoutTime) of every user object under the
// OU ou, inherited as ADUC's Delegate Control wizard ("User objects",
// "Write <attr>") and `samba-tool dsacl set` with
// (OA;CI;WP;<attr>;<user class>;<SID>) grant it. Use it on an OU the test
// created; objects created in it afterwards inherit it too.
func (a *Admin) DelegateWrite(ou, trustee, attr string) {
	a.tb.Helper()
	a.addACE(ou, objectACE(aceAccessAllowedObject, aceContainerInherit, dsWriteProperty,
		a.schemaIDGUID(attr), a.schemaIDGUID("user"), a.sidOf(trustee)))
}

// AllowRead grants trustee (a sAMAccountName or DN) ReadProperty on the
// attribute attr of the entry name itself (a sAMAccountName or DN, which
// the test created), e.g. msDS-LockoutDuration of a PSO, which Samba lets
// only administrators read by default.
func (a *Admin) AllowRead(name, trustee, attr string) {
	a.tb.Helper()
	a.addACE(name, objectACE(aceAccessAllowedObject, 0, dsReadProperty, a.schemaIDGUID(attr), nil, a.sidOf(trustee)))
}

// Rename gives the entry name (a sAMAccountName or DN) the new RDN
// newRDN (e.g. "CN=Other Name") and, when newParent is not "", moves it
// there; it returns the new DN. The objectGUID stays. The entry is deleted
// at cleanup under its new DN.
func (a *Admin) Rename(name, newRDN, newParent string) string {
	a.tb.Helper()
	dn := a.DN(name)
	parsed, err := ldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) < 2 {
		a.tb.Fatalf("sambatest: Rename: %q is not a DN with a parent", dn)
	}
	parent := newParent
	if parent == "" {
		_, parent, _ = strings.Cut(dn, ",")
	}
	if err := a.conn.ModifyDN(ldap.NewModifyDNRequest(dn, newRDN, true, newParent)); err != nil {
		a.tb.Fatalf("sambatest: rename %s to %s: %v", dn, newRDN, err)
	}
	newDN := newRDN + "," + parent
	a.deleteOnCleanup(newDN)
	return newDN
}

// LockoutOU is an OU of a test's own where accounts lock: see
// CreateLockoutOU.
type LockoutOU struct {
	DN    string // the OU
	Group string // DN of the group in it that the PSO applies to
	PSO   string // DN of the PSO
	// Operator is the DN of an account of the test's own (in OUCorpUsers,
	// password Env.SeedPassword) that may do what the bot's write account
	// does in production: Write lockoutTime and Write userAccountControl
	// on the users in DN, and read the PSO's msDS-LockoutDuration.
	Operator string
}

// CreateLockoutOU creates an OU, a group in it, the PSO p applied to that
// group (p.AppliesTo is ignored), and an operator account with the
// delegated rights (see LockoutOU). A tb.Cleanup removes them all.
func (a *Admin) CreateLockoutOU(p PSO) LockoutOU {
	a.tb.Helper()
	var o LockoutOU
	o.DN = a.CreateOU(Unique("lockou"), "")
	o.Group = a.CreateGroupIn(Group{Name: Unique("lockg"), OU: o.DN})
	p.AppliesTo = []string{o.Group}
	o.PSO = a.CreatePSO(p)
	o.Operator = a.CreateUser(User{Name: Unique("lockop")})
	a.DelegateWrite(o.DN, o.Operator, AttrLockoutTime)
	a.DelegateWrite(o.DN, o.Operator, AttrUserAccountControl)
	a.AllowRead(o.PSO, o.Operator, "msDS-LockoutDuration")
	return o
}

// CreateLockableUser creates u in the OU o and in its group, so that o's
// PSO applies to it, and returns its DN.
func (a *Admin) CreateLockableUser(o LockoutOU, u User) string {
	a.tb.Helper()
	u.OU = o.DN
	dn := a.CreateUser(u)
	a.AddToGroup(dn, o.Group)
	return dn
}
