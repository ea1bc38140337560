package accounts

import (
	"math"
	"time"

	"github.com/example/resetbot/workflow"
)

// Facts are what the directory says about an account's sign-in state, for
// the people who decide (an approver's card, the unlock action, helpdesk).
// Each one is read, never guessed: a fact the directory did not give (an
// ACL hides it, the value is malformed, a read it needs failed) is marked
// unknown and is to be left out of what people see. Facts are not guards:
// an unknown fact refuses nothing, and nothing here is in Entry.Unreadable.
type Facts struct {
	Lockout      Lockout
	BadPasswords BadPasswords
	PasswordSet  PasswordSet
}

// Lockout says whether the domain controller refuses the account's logons
// because of too many bad passwords.
type Lockout struct {
	// Known is false when the directory did not say whether the account
	// is locked (msDS-User-Account-Control-Computed is not readable); then
	// nothing else here means anything.
	Known bool
	// Locked is UF_LOCKOUT (0x10) in msDS-User-Account-Control-Computed,
	// which the DC computes for this very account from lockoutTime and the
	// lockout duration that applies to it. lockoutTime alone over-reports:
	// it stays set after the duration has run out, until the next good
	// logon.
	Locked bool
	// Since is lockoutTime: when the account was locked. Zero when it is
	// not locked, or when lockoutTime could not be read.
	Since time.Time
	// End is when the lockout ends by itself; set only for a locked
	// account.
	End LockEnd
}

// LockEnd is when a lockout ends without an unlock.
type LockEnd struct {
	// Known is false when lockoutTime or the lockout duration that applies
	// to the account could not be read; nothing else here then means
	// anything.
	Known bool
	// UntilUnlocked is true when the lockout never ends by itself: the
	// duration that applies is 0 ("until an administrator unlocks the
	// account"), or so long that its end is past what a FILETIME holds.
	UntilUnlocked bool
	// At is when the lockout ends, when Known and not UntilUnlocked.
	At time.Time
}

// BadPasswords is badPwdCount: the bad passwords since the last good logon
// or unlock, as counted by the domain controller that answered. The
// attribute is not replicated: every DC keeps its own count, so this is
// that DC's, which may be lower than the one that locked the account.
type BadPasswords struct {
	Known bool // false: badPwdCount is not readable
	Count int
}

// PasswordSet is pwdLastSet: when the password was last set.
type PasswordSet struct {
	Known      bool      // false: pwdLastSet is not readable (or malformed)
	MustChange bool      // pwdLastSet is 0: the user must change the password at the next logon
	At         time.Time // when it was set; zero with MustChange
}

// fileTimeEpoch is the Unix time of 1601-01-01 00:00 UTC, the FILETIME
// epoch.
const fileTimeEpoch = -11644473600

// FileTime converts a Windows FILETIME (lockoutTime, pwdLastSet: the
// number of 100-nanosecond intervals since 1601-01-01 UTC) to a time; ok
// is false for 0 and negative values, which mean "none" or are not times.
func FileTime(v int64) (t time.Time, ok bool) {
	if v <= 0 {
		return time.Time{}, false
	}
	return time.Unix(fileTimeEpoch+v/10_000_000, (v%10_000_000)*100).UTC(), true
}

// lockoutTicks returns the length of the lockout duration AD stores in
// lockoutDuration and msDS-LockoutDuration, in 100-nanosecond intervals;
// forever is true when the lockout never ends by itself. AD stores the
// duration as a negative number of intervals. Following MS-ADTS
// 3.1.1.4.5.17 (UF_LOCKOUT), every value that is not negative, 0 ("until
// an administrator unlocks") included, locks for good, and so does the
// most negative value, -2^63, whose length does not fit in an int64.
func lockoutTicks(duration int64) (ticks int64, forever bool) {
	if duration >= 0 || duration == math.MinInt64 {
		return 0, true
	}
	return -duration, false
}

// LockoutEnd returns when a lockout that began at lockoutTime (a FILETIME)
// ends under the lockout duration that applies to the account (the
// resultant PSO's msDS-LockoutDuration, else the domain's lockoutDuration,
// as stored: see lockoutTicks). The end is unknown when lockoutTime is not
// a time (0: not locked at all); UntilUnlocked when the duration never
// ends or the end does not fit in a FILETIME.
func LockoutEnd(lockoutTime, duration int64) LockEnd {
	if lockoutTime <= 0 {
		return LockEnd{}
	}
	ticks, forever := lockoutTicks(duration)
	if forever || ticks > math.MaxInt64-lockoutTime {
		return LockEnd{Known: true, UntilUnlocked: true}
	}
	at, _ := FileTime(lockoutTime + ticks)
	return LockEnd{Known: true, At: at}
}

// workflow is l in the workflow's terms: the start and end only when
// locked and known.
func (l Lockout) workflow() workflow.Lockout {
	out := workflow.Lockout{Known: l.Known, Locked: l.Known && l.Locked}
	if !out.Locked {
		return out
	}
	out.Since = l.Since
	if l.End.Known {
		out.Forever = l.End.UntilUnlocked
		if !out.Forever {
			out.Until = l.End.At
		}
	}
	return out
}

// SignIn returns the facts for the workflow, each unknown one nil. The
// lockout's start and end are given only when known.
func (f Facts) SignIn() workflow.SignIn {
	var in workflow.SignIn
	if f.Lockout.Known {
		l := f.Lockout.workflow()
		in.Lockout = &l
	}
	if f.BadPasswords.Known {
		n := f.BadPasswords.Count
		in.BadPasswords = &n
	}
	if p := f.PasswordSet; p.Known {
		in.PasswordSet = &workflow.PasswordSet{At: p.At, MustChange: p.MustChange}
	}
	return in
}
