package mailnotice

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/example/resetbot/workflow"
)

// Message is the content of a notice email. The headers that carry it
// (From, To, Date, Message-ID) are the Sender's; Subject is one of two
// fixed lines and nothing else from the notice reaches a header.
type Message struct {
	Subject string
	Text    string // plain text, lines ending in \n
}

// The subjects: fixed, so that no value of a notice reaches a header.
const (
	SubjectReset  = "Your password was reset"
	SubjectUnlock = "Your account was unlocked"
)

// Limits on what a notice shows of each free-text value.
const (
	maxName     = 80  // a display name, an approver or an agent
	maxHelpdesk = 200 // HELPDESK_CONTACT
)

// Render returns the message for n. It is a pure function of n and
// helpdesk (how to reach helpdesk: HELPDESK_CONTACT), with every time in
// UTC. Names are shown on one line of their own: line breaks, control
// and invisible format characters (bidirectional overrides, zero-width
// spaces) are removed, and each is cut to a bounded length, so that no
// value can forge another line of the message. Errors: those of Validate.
func Render(n Notice, helpdesk string) (Message, error) {
	if err := n.Validate(); err != nil {
		return Message{}, err
	}
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	field := func(label, value string) { line("  %-13s %s", label+":", value) }

	at, account := n.At.UTC(), oneLine(n.UserName, 64)
	if name := oneLine(n.DisplayName, maxName); name != "" {
		line("Hello %s,", name)
	} else {
		line("Hello,")
	}
	line("")
	subject, what := SubjectReset, "password reset (this also unlocks the account)"
	if n.Kind == KindReset {
		line("The password of your account %s was reset on %s at %s UTC", account, at.Format("2 January 2006"), at.Format("15:04"))
	} else {
		subject, what = SubjectUnlock, "account unlocked (the password did not change)"
		line("Your account %s was unlocked on %s at %s UTC", account, at.Format("2 January 2006"), at.Format("15:04"))
	}
	line("through the password-reset bot in Slack.")
	line("")
	field("What", what)
	field("When", at.Format("Monday 2 January 2006, 15:04:05 UTC"))
	field("Account", account)
	if agent := oneLine(n.Agent, maxName); agent != "" {
		field("Asked by", agent+", from helpdesk, on your behalf")
	} else {
		field("Asked by", "you, from your Slack account")
	}
	if approver := oneLine(n.ApprovedBy, maxName); approver != "" {
		field("Approved by", approver)
	} else {
		field("Approved by", "nobody: this needed no approval")
	}
	if id := oneLine(n.RequestID, maxName); id != "" {
		field("Request", id)
	}
	line("")
	line("If this was you, there is nothing more to do.")
	line("")
	if contact := oneLine(helpdesk, maxHelpdesk); contact != "" {
		line("If this was NOT you, call helpdesk now: %s", contact)
	} else {
		line("If this was NOT you, call your helpdesk now.")
	}
	line("Someone else may be using your Slack account. Do not reply to this")
	line("email: nobody reads the replies.")
	line("")
	line("This email never contains a password, and helpdesk will never ask")
	line("you for yours.")
	return Message{Subject: subject, Text: b.String()}, nil
}

// oneLine returns v on one line (workflow.OneLine), cut to max
// characters with "..." when it was longer.
func oneLine(v string, max int) string {
	s := workflow.OneLine(v, max+1)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "..."
	}
	return s
}
