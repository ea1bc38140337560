package accounts

import (
	"math"
	"testing"
	"time"

	"github.com/example/resetbot/workflow"
)

// ft is the FILETIME of t.
func ft(t time.Time) int64 { return (t.Unix()+11644473600)*10_000_000 + int64(t.Nanosecond()/100) }

func TestFileTime(t *testing.T) {
	for _, tc := range []struct {
		v    int64
		want time.Time
		ok   bool
	}{
		{116444736000000000, time.Unix(0, 0).UTC(), true},                                   // the Unix epoch
		{1, time.Date(1601, 1, 1, 0, 0, 0, 100, time.UTC), true},                            // the first tick
		{134407844117425050, time.Date(2026, 12, 3, 15, 13, 31, 742505000, time.UTC), true}, // a lockoutTime Samba wrote (checked with Python's datetime)
		{0, time.Time{}, false},  // pwdLastSet 0, lockoutTime 0: no time
		{-1, time.Time{}, false}, // not a time
		{math.MaxInt64, time.Date(30828, 9, 14, 2, 48, 5, 477580700, time.UTC), true},
	} {
		got, ok := FileTime(tc.v)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("FileTime(%d) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
	now := time.Now().UTC().Truncate(100 * time.Nanosecond)
	if got, _ := FileTime(ft(now)); !got.Equal(now) {
		t.Errorf("round trip of %v: %v", now, got)
	}
}

func TestLockoutTicks(t *testing.T) {
	for _, tc := range []struct {
		duration int64
		ticks    int64
		forever  bool
	}{
		{-18000000000, 18000000000, false}, // 30 minutes, as the domain stores it
		{-1, 1, false},
		{0, 0, true},                              // "until an administrator unlocks"
		{math.MinInt64, 0, true},                  // -2^63: "never" (its length does not fit)
		{math.MinInt64 + 1, math.MaxInt64, false}, // the longest finite one
		{18000000000, 0, true},                    // positive: AD reads it as "never ends" (MS-ADTS)
		{math.MaxInt64, 0, true},
	} {
		ticks, forever := lockoutTicks(tc.duration)
		if ticks != tc.ticks || forever != tc.forever {
			t.Errorf("lockoutTicks(%d) = %d, %v; want %d, %v", tc.duration, ticks, forever, tc.ticks, tc.forever)
		}
	}
}

func TestLockoutEnd(t *testing.T) {
	since := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	lt := ft(since)
	for _, tc := range []struct {
		name        string
		lockoutTime int64
		duration    int64
		want        LockEnd
	}{
		{"30 minutes", lt, -18000000000, LockEnd{Known: true, At: since.Add(30 * time.Minute)}},
		{"5 seconds", lt, -50000000, LockEnd{Known: true, At: since.Add(5 * time.Second)}},
		{"0: until unlocked", lt, 0, LockEnd{Known: true, UntilUnlocked: true}},
		{"never (-2^63)", lt, math.MinInt64, LockEnd{Known: true, UntilUnlocked: true}},
		{"past the end of FILETIME", lt, math.MinInt64 + 1, LockEnd{Known: true, UntilUnlocked: true}},
		{"not locked (lockoutTime 0)", 0, -18000000000, LockEnd{}},
		{"lockoutTime not a time", -5, -18000000000, LockEnd{}},
	} {
		if got := LockoutEnd(tc.lockoutTime, tc.duration); got != tc.want {
			t.Errorf("%s: LockoutEnd(%d, %d) = %+v, want %+v", tc.name, tc.lockoutTime, tc.duration, got, tc.want)
		}
	}
}

// TestSignInLeavesOutWhatIsUnknown: the workflow gets a fact only when it
// was read; a lockout's start and end only when locked and known.
func TestSignInLeavesOutWhatIsUnknown(t *testing.T) {
	since, until := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	set := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	if in := (Facts{}).SignIn(); in.Lockout != nil || in.BadPasswords != nil || in.PasswordSet != nil {
		t.Errorf("nothing known: %+v", in)
	}
	in := Facts{
		Lockout:      Lockout{Known: true, Locked: true, Since: since, End: LockEnd{Known: true, At: until}},
		BadPasswords: BadPasswords{Known: true, Count: 0},
		PasswordSet:  PasswordSet{Known: true, At: set},
	}.SignIn()
	if *in.Lockout != (workflow.Lockout{Known: true, Locked: true, Since: since, Until: until}) || in.BadPasswords == nil || *in.BadPasswords != 0 ||
		*in.PasswordSet != (workflow.PasswordSet{At: set}) {
		t.Errorf("all known: %+v %+v %+v", in.Lockout, in.BadPasswords, in.PasswordSet)
	}
	in = Facts{Lockout: Lockout{Known: true, Locked: true, Since: since, End: LockEnd{Known: true, UntilUnlocked: true}}}.SignIn()
	if *in.Lockout != (workflow.Lockout{Known: true, Locked: true, Since: since, Forever: true}) {
		t.Errorf("locked for good: %+v", in.Lockout)
	}
	in = Facts{Lockout: Lockout{Known: true, Locked: true}, PasswordSet: PasswordSet{Known: true, MustChange: true}}.SignIn()
	if *in.Lockout != (workflow.Lockout{Known: true, Locked: true}) || *in.PasswordSet != (workflow.PasswordSet{MustChange: true}) {
		t.Errorf("locked, since and end unknown; must change: %+v %+v", in.Lockout, in.PasswordSet)
	}
	// Not locked: a stale lockoutTime is not shown.
	in = Facts{Lockout: Lockout{Known: true, Since: since}}.SignIn()
	if *in.Lockout != (workflow.Lockout{Known: true}) {
		t.Errorf("not locked: %+v", in.Lockout)
	}
}
