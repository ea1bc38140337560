package workflow

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Facts are what the bot knew, when a request was made, that helps an
// approver decide: the account's sign-in state, the bot's earlier resets
// of it, and whether the employee asked outside their working hours. They
// are read once and stored (sealed) with the request, so that every
// message shows the same thing and a redraw costs no lookup. Each fact
// is nil when the bot could not read it: it is left out, never guessed.
// Facts inform people; no rule decides on them.
type Facts struct {
	SignIn
	Resets *ResetHistory `json:"resets,omitempty"`
	Hours  *LocalTime    `json:"hours,omitempty"`
}

// SignIn is what the directory says about an account's sign-in state.
type SignIn struct {
	Lockout      *Lockout     `json:"lockout,omitempty"`
	BadPasswords *int         `json:"bad_passwords,omitempty"` // badPwdCount, as the answering domain controller counts it
	PasswordSet  *PasswordSet `json:"password_set,omitempty"`
}

// PasswordSet is when the account's password was last set.
type PasswordSet struct {
	At         time.Time `json:"at,omitzero"`
	MustChange bool      `json:"must_change,omitempty"` // the user must change it at the next logon (At is zero)
}

// ResetHistory is the bot's completed resets of one account in the
// ResetHistoryWindow before a request.
type ResetHistory struct {
	Count int       `json:"count"`
	Last  time.Time `json:"last,omitzero"` // zero when Count is 0
}

// ResetHistoryWindow is how far back the reset history of an account
// goes.
const ResetHistoryWindow = 30 * 24 * time.Hour

// LocalTime is when a request was made in the employee's own time zone.
type LocalTime struct {
	Zone    string `json:"zone"`    // as the chat profile names it, e.g. Europe/Berlin
	Clock   string `json:"clock"`   // the local day and time, e.g. "Sat 22:14"
	Outside bool   `json:"outside"` // outside WORK_HOURS
}

// Empty reports whether f holds no fact at all.
func (f Facts) Empty() bool {
	return f.Lockout == nil && f.BadPasswords == nil && f.PasswordSet == nil && f.Resets == nil && f.Hours == nil
}

// AccountKey names the directory object acct is, for what the stores keep
// per account (its reset history): the objectGUID when known, which
// survives a rename, else the account name in lower case.
func (a Account) AccountKey() string {
	if a.GUID != "" {
		return "guid:" + strings.ToLower(a.GUID)
	}
	return "name:" + strings.ToLower(a.UserName)
}

// MaxReason is the longest reason a person may give, in characters.
const MaxReason = 300

// CleanReason returns s as it may be stored and shown: OneLine, cut to
// MaxReason characters. Messages still escape it: it is untrusted text.
func CleanReason(s string) string { return OneLine(s, MaxReason) }

// OneLine returns s on one line (runs of spaces, line breaks and control
// characters become one space), without invisible format characters
// (Unicode Cf: bidirectional overrides, zero-width spaces, soft hyphens)
// or invalid bytes, trimmed, and cut to max characters.
func OneLine(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		switch {
		case r == utf8.RuneError || unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r) || unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			space = true
			continue
		}
		if n == max {
			break
		}
		if space && b.Len() > 0 {
			if n+1 == max {
				break
			}
			b.WriteByte(' ')
			n++
		}
		space = false
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Reason is the reason the employee gave for r, "" when none.
func (r *Request) Reason() string { return r.reasonOf(EventRequested) }

// DenialReason is the reason the approver gave for denying r, "" when none.
func (r *Request) DenialReason() string { return r.reasonOf(EventDenied) }

func (r *Request) reasonOf(kind EventKind) string {
	for _, ev := range r.Events {
		if ev.Kind == kind {
			return ev.Reason
		}
	}
	return ""
}

// CompletedAt returns when the change of r that added r.Events[before:]
// completed a reset, for the stores to add to the account's reset
// history in the same atomic step; ok is false when it did not (an
// unlock completes no reset: it is not in the history).
func CompletedAt(r *Request, before int) (at time.Time, ok bool) {
	if r.IsUnlock() {
		return time.Time{}, false
	}
	for _, ev := range r.Events[min(max(before, 0), len(r.Events)):] {
		if ev.Kind == EventCompleted {
			return ev.At, true
		}
	}
	return time.Time{}, false
}

// Tally returns the reset history of completion times (any order) since
// since.
func Tally(completions []time.Time, since time.Time) ResetHistory {
	var h ResetHistory
	for _, at := range completions {
		if at.Before(since) {
			continue
		}
		h.Count++
		if at.After(h.Last) {
			h.Last = at
		}
	}
	return h
}
