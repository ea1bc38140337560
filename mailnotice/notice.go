// Package mailnotice tells an account's owner by email, after every
// password reset and every unlock the bot made, what happened, when, who
// approved it and whom to call if it was not them. A stolen Slack session
// and a busy approver are one click away from a password; this notice, on
// another channel, is how the real owner finds out.
//
// Render makes the message: a pure function of a Notice and the helpdesk
// contact. A Notice has no field for a password, the temporary password
// exists only in the directory call and the employee's ephemeral Slack
// message. Sender delivers notices over SMTP with TLS (STARTTLS required,
// or TLS from the start) in the background: Notify never blocks, retries
// go on with backoff, and every accepted notice ends in exactly one
// Result for the audit.
package mailnotice

import (
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/example/resetbot/workflow"
)

// Kind is what happened to the account.
type Kind string

// The kinds of notice.
const (
	KindReset  Kind = "reset"  // the password was reset (which also unlocks the account)
	KindUnlock Kind = "unlock" // the lockout was cleared; the password did not change
)

// Notice is what an account's owner is told after a reset or an unlock.
// It holds nothing secret, and no field is meant for a password:
// TestNoticeHoldsNoSecret keeps it that way.
type Notice struct {
	Kind      Kind
	At        time.Time // when the reset or unlock was made; shown in UTC
	RequestID string    // the bot's request ID, which helpdesk finds in the audit channel

	UserName    string // the account (sAMAccountName)
	DisplayName string // the account's display name; "" when unknown

	// The owner's addresses, as the directory holds them: the account's
	// mail attribute and its otherMailbox values. Each valid single
	// address gets one message of its own; anything else is skipped
	// (Result.Skipped), never used.
	Mail           string
	OtherMailboxes []string

	ApprovedBy string // who approved: a name, or a Slack user ID as given; "" when no approval was needed
	Agent      string // who asked on the owner's behalf (helpdesk): a name or Slack user ID; "" when the owner asked
}

// Validate checks the parts of n that the message states as facts.
func (n Notice) Validate() error {
	var problems []string
	if n.Kind != KindReset && n.Kind != KindUnlock {
		problems = append(problems, fmt.Sprintf("kind %q is neither %q nor %q", n.Kind, KindReset, KindUnlock))
	}
	if n.At.IsZero() {
		problems = append(problems, "no time")
	}
	if err := workflow.ValidateUserName(n.UserName); err != nil {
		problems = append(problems, "account name: "+err.Error())
	}
	if len(problems) > 0 {
		return workflow.Errorf(workflow.CodeInternal, "notice for request %q: %s", n.RequestID, strings.Join(problems, "; "))
	}
	return nil
}

// Skipped is an address of the owner that was not used.
type Skipped struct {
	Field  string // "mail" or "otherMailbox"
	Value  string // the value as the directory holds it, quoted in Go syntax and cut to 100 bytes: for operators (escape it for chat), never for a header
	Reason string
}

// Recipients returns the addresses n goes to: Mail, then each of
// OtherMailboxes, each address once (compared ignoring ASCII case), and
// the values that were not used with why. Only what ParseMailbox accepts
// is used.
func (n Notice) Recipients() (to []string, skipped []Skipped) {
	seen := map[string]bool{}
	add := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			return
		}
		addr, err := ParseMailbox(v)
		if err != nil {
			skipped = append(skipped, Skipped{Field: field, Value: quoteCut(v, 100), Reason: err.Error()})
			return
		}
		if key := strings.ToLower(addr); !seen[key] {
			seen[key] = true
			to = append(to, addr)
		}
	}
	add("mail", n.Mail)
	for _, v := range n.OtherMailboxes {
		add("otherMailbox", v)
	}
	return to, skipped
}

// maxAddress is the longest address SMTP carries (RFC 5321: a path of 256
// octets, angle brackets included).
const maxAddress = 254

// ParseMailbox returns v, without surrounding spaces, when it is exactly
// one bare address (local@domain): no display name, angle brackets,
// comments, groups, lists, spaces or control characters, no domain
// literal, at most 254 bytes. Anything else is an error; so nothing in v
// can become another header or another recipient.
func ParseMailbox(v string) (string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return "", fmt.Errorf("empty")
	case len(v) > maxAddress:
		return "", fmt.Errorf("longer than %d bytes", maxAddress)
	case !utf8.ValidString(v):
		return "", fmt.Errorf("not UTF-8")
	case strings.ContainsFunc(v, unsafeInAddress):
		return "", fmt.Errorf("has spaces, line breaks or other control characters")
	case strings.ContainsAny(v, "<>()[],;\"\\"):
		return "", fmt.Errorf("not a single bare address (it has one of < > ( ) [ ] , ; \" \\)")
	}
	a, err := mail.ParseAddress(v)
	if err != nil || a.Name != "" || a.Address != v {
		return "", fmt.Errorf("not a single address like name@example.com")
	}
	local, domain, _ := strings.Cut(v, "@")
	if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", fmt.Errorf("not an address like name@example.com")
	}
	return v, nil
}

// ParseFrom checks the sender address (SMTP_FROM): one address, bare or
// with a display name ("Password reset <resetbot@example.com>"), without
// line breaks or control characters. It returns the bare address.
func ParseFrom(v string) (string, error) {
	if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
		return "", fmt.Errorf("has line breaks or other control characters")
	}
	a, err := mail.ParseAddress(v)
	if err != nil {
		return "", fmt.Errorf("not one address like resetbot@example.com or Password reset <resetbot@example.com>")
	}
	if _, err := ParseMailbox(a.Address); err != nil {
		return "", fmt.Errorf("address %q is %v", a.Address, err)
	}
	return a.Address, nil
}

// unsafeInAddress reports whether r may not appear in an address.
func unsafeInAddress(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError
}

// quoteCut quotes v in Go syntax (ASCII only, every control character
// escaped), first cutting it to max bytes.
func quoteCut(v string, max int) string {
	if len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		return strconv.QuoteToASCII(v[:cut]) + "..."
	}
	return strconv.QuoteToASCII(v)
}
