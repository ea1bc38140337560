package ldapdir

import (
	"context"
	"strconv"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/workflow"
)

// The facts of an accounts.Entry (accounts.Facts): whether the account is
// locked and until when, its bad password count, when its password was
// set. Each is read, never guessed: an attribute that is absent or
// malformed, or a read that fails, leaves its fact unknown. None of them
// is in Entry.Unreadable: they inform people, the guards do not use them.
//
// Locked is UF_LOCKOUT in msDS-User-Account-Control-Computed, which the DC
// computes per account; a filter on it silently matches nothing on Samba,
// and lockoutTime alone over-reports (it stays after the lockout has run
// out), so it is read for each account. Until when is lockoutTime plus the
// lockout duration that applies to the account (MS-SAMR 3.1.1.5,
// Effective-LockoutDuration): msDS-LockoutDuration of the account's
// msDS-ResultantPSO when it has one, else the domain object's
// lockoutDuration (read once and kept policyCacheTTL).

// attrUACComputed is the constructed attribute whose UF_LOCKOUT bit says
// whether the account is locked now.
const attrUACComputed = "msDS-User-Account-Control-Computed"

// uacLockout is UF_LOCKOUT in msDS-User-Account-Control-Computed (never
// kept in userAccountControl itself since Windows 2003).
const uacLockout = 0x10

// policyCacheTTL is how long the domain's lockout policy is reused before
// it is read again.
const policyCacheTTL = 5 * time.Minute

// clockSkew is how far the DC's clock and this host's may differ before a
// lockout that should have ended by the domain's policy, yet is still
// reported, shows that the policy is not the one that applies.
const clockSkew = time.Minute

// lockoutPolicy is the domain object's own lockout policy, which applies
// to every account no PSO applies to.
type lockoutPolicy struct {
	known     bool  // lockoutThreshold and lockoutDuration were both readable
	threshold int64 // bad passwords that lock; 0 never locks
	duration  int64 // as stored: negative 100-ns intervals, 0 = until an administrator unlocks
}

// facts reads the facts of the user entry e (whose objectGUID is guid, ""
// when unreadable).
func (c *Client) facts(ctx context.Context, e *ldap.Entry, guid string) accounts.Facts {
	get := e.GetEqualFoldAttributeValue
	var f accounts.Facts
	if n, err := strconv.ParseInt(get("badPwdCount"), 10, 32); err == nil && n >= 0 {
		f.BadPasswords = accounts.BadPasswords{Known: true, Count: int(n)}
	}
	if v, err := strconv.ParseInt(get("pwdLastSet"), 10, 64); err == nil {
		if v == 0 {
			f.PasswordSet = accounts.PasswordSet{Known: true, MustChange: true}
		} else if at, ok := accounts.FileTime(v); ok {
			f.PasswordSet = accounts.PasswordSet{Known: true, At: at}
		}
	}
	f.Lockout = c.lockout(ctx, e, guid)
	return f
}

// lockout reads whether e is locked and, when it is, since and until when.
func (c *Client) lockout(ctx context.Context, e *ldap.Entry, guid string) accounts.Lockout {
	computed, ok := parseUAC(e.GetEqualFoldAttributeValue(attrUACComputed))
	if !ok {
		return accounts.Lockout{}
	}
	l := accounts.Lockout{Known: true, Locked: computed&uacLockout != 0}
	if !l.Locked {
		return l
	}
	// Locked: lockoutTime is set, so one that is absent or not a time is
	// hidden (or malformed), and so are since and until when.
	lockoutTime, err := strconv.ParseInt(e.GetEqualFoldAttributeValue("lockoutTime"), 10, 64)
	since, ok := accounts.FileTime(lockoutTime)
	if err != nil || !ok {
		c.notice("lockoutTime", "ldap: lockoutTime of a locked account is not readable by LDAP_BIND_DN: when its lockout ends is left out", "dn", e.DN)
		return l
	}
	l.Since = since
	if duration, ok := c.lockoutDuration(ctx, e, guid, lockoutTime); ok {
		l.End = accounts.LockoutEnd(lockoutTime, duration)
	}
	return l
}

// lockoutDuration returns the lockout duration that applies to the locked
// account e, as stored; ok is false when it cannot be known.
func (c *Client) lockoutDuration(ctx context.Context, e *ldap.Entry, guid string, lockoutTime int64) (int64, bool) {
	pso := e.GetEqualFoldAttributeValue("msDS-ResultantPSO")
	if pso == "" && guid != "" {
		// Not every server returns every constructed attribute to a
		// subtree search: ask the object itself before concluding that no
		// PSO applies.
		re, err := c.readEntry(ctx, "read msDS-ResultantPSO", guidDN(guid), "(objectClass=user)", "msDS-ResultantPSO")
		if err != nil {
			c.log.Debug("ldap: msDS-ResultantPSO not read; the end of the lockout is left out", "dn", e.DN, "error", err)
			return 0, false
		}
		if re != nil {
			pso = re.GetEqualFoldAttributeValue("msDS-ResultantPSO")
		}
	}
	if pso != "" {
		// (objectClass=*): the PSO's own ACL may hide its objectClass, and
		// an equality filter on a hidden attribute matches nothing.
		p, err := c.readEntry(ctx, "read the lockout duration of "+strconv.Quote(pso), pso, "(objectClass=*)", "msDS-LockoutDuration")
		if err != nil {
			c.log.Debug("ldap: the PSO's lockout duration not read; the end of the lockout is left out", "pso", pso, "error", err)
			return 0, false
		}
		var v int64
		if p != nil {
			v, err = strconv.ParseInt(p.GetEqualFoldAttributeValue("msDS-LockoutDuration"), 10, 64)
		}
		if p == nil || err != nil {
			c.notice("pso "+pso, "ldap: msDS-LockoutDuration of a password settings object is not readable by LDAP_BIND_DN: when lockouts under it end is left out (grant the bind account read access to it to show it)", "pso", pso)
			return 0, false
		}
		return v, true
	}
	policy, err := c.domainLockoutPolicy(ctx)
	if err != nil {
		c.log.Debug("ldap: the domain's lockout policy not read; the end of the lockout is left out", "error", err)
		return 0, false
	}
	d, ok := domainDuration(policy, lockoutTime, c.now())
	if !ok {
		c.notice("hidden pso", "ldap: a locked account has no readable msDS-ResultantPSO, and the domain's lockout policy cannot be what locked it: a password settings object LDAP_BIND_DN may not see applies; when its lockout ends is left out", "dn", e.DN)
	}
	return d, ok
}

// domainDuration returns the domain's lockout duration for an account
// that the DC says is locked since lockoutTime and whose msDS-ResultantPSO
// is absent. Absent means "no PSO applies", unless an ACL hides it, which
// no read can tell apart; so the domain's policy is taken only when it
// could have locked the account: ok is false when the policy is not
// known, never locks (threshold 0), or would have ended the lockout
// before now (beyond clockSkew) while the DC still says it holds.
func domainDuration(p lockoutPolicy, lockoutTime int64, now time.Time) (int64, bool) {
	if !p.known || p.threshold == 0 {
		return 0, false
	}
	end := accounts.LockoutEnd(lockoutTime, p.duration)
	if !end.Known || (!end.UntilUnlocked && now.After(end.At.Add(clockSkew))) {
		return 0, false
	}
	return p.duration, true
}

// domainLockoutPolicy returns the domain object's lockoutThreshold and
// lockoutDuration, from the cache (policyCacheTTL) or the directory (the
// RootDSE's defaultNamingContext, then that object). Attributes the bind
// account may not read give a policy that is not known, not an error.
// Errors: *workflow.Error with code workflow.CodeLookupUnavailable, or
// CodeUncheckable when the RootDSE names no domain.
func (c *Client) domainLockoutPolicy(ctx context.Context) (lockoutPolicy, error) {
	c.policyMu.Lock()
	if c.now().Before(c.policyExpiry) {
		p := c.policy
		c.policyMu.Unlock()
		return p, nil
	}
	c.policyMu.Unlock()
	nc, err := c.defaultNamingContext(ctx)
	if err != nil {
		return lockoutPolicy{}, err
	}
	d, err := c.readEntry(ctx, "read the domain's lockout policy", nc, "(objectClass=*)", "lockoutThreshold", "lockoutDuration")
	if err != nil {
		return lockoutPolicy{}, err
	}
	var p lockoutPolicy
	if d != nil {
		threshold, err1 := strconv.ParseInt(d.GetEqualFoldAttributeValue("lockoutThreshold"), 10, 64)
		duration, err2 := strconv.ParseInt(d.GetEqualFoldAttributeValue("lockoutDuration"), 10, 64)
		p = lockoutPolicy{known: err1 == nil && err2 == nil, threshold: threshold, duration: duration}
	}
	if !p.known {
		c.notice("domain policy", "ldap: the domain's lockoutThreshold and lockoutDuration are not readable by LDAP_BIND_DN: when lockouts end is left out", "domain", nc)
	}
	c.policyMu.Lock()
	c.policy, c.policyExpiry = p, c.now().Add(policyCacheTTL)
	c.policyMu.Unlock()
	return p, nil
}

// defaultNamingContext returns the domain's DN from the RootDSE. Errors:
// *workflow.Error with code workflow.CodeLookupUnavailable, or
// CodeUncheckable when the RootDSE has none.
func (c *Client) defaultNamingContext(ctx context.Context) (string, error) {
	root, err := c.readEntry(ctx, "read the RootDSE", "", "(objectClass=*)", "defaultNamingContext")
	if err != nil {
		return "", err
	}
	var nc string
	if root != nil {
		nc = root.GetEqualFoldAttributeValue("defaultNamingContext")
	}
	if nc == "" {
		return "", workflow.Errorf(workflow.CodeUncheckable, "LDAP RootDSE of %s has no defaultNamingContext", c.server)
	}
	return nc, nil
}

// notice logs msg at warning level the first time key is seen by this
// client, so that a fact that stays hidden is reported once, not at every
// lookup.
func (c *Client) notice(key, msg string, args ...any) {
	c.noticeMu.Lock()
	first := !c.noticed[key]
	c.noticed[key] = true
	c.noticeMu.Unlock()
	if first {
		c.log.Warn(msg, args...)
	}
}
