package slackapp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// The messages of the oversight steps: what the approvers are shown to
// decide (the facts), the reminder, the escalation, the owner's "This
// wasn't me" and what followed it. Pure functions of the request, like
// every message; reasons people wrote are shown as plain text, or as
// inline code on one line, never as mrkdwn.

// historyDays is the reset history's window in days, as people read it.
var historyDays = int(workflow.ResetHistoryWindow.Hours() / 24)

// factLines are the facts of a request for the approver's card, one line
// each; a fact the bot could not read has no line.
func factLines(f *workflow.Facts) []string {
	if f == nil {
		return nil
	}
	var out []string
	if l := f.Lockout; l != nil {
		s := ":unlock: *Not locked out*"
		if l.Locked {
			s = ":lock: *Locked out*"
			if !l.Since.IsZero() {
				s += " since " + when(l.Since)
			}
			switch {
			case l.Forever:
				s += ", until someone unlocks it"
			case !l.Until.IsZero():
				s += ", until " + when(l.Until)
			}
		}
		out = append(out, s)
	}
	if n := f.BadPasswords; n != nil {
		out = append(out, fmt.Sprintf("*Bad passwords:* %d since the last good sign-in (one domain controller's count)", *n))
	}
	if p := f.PasswordSet; p != nil {
		switch {
		case p.MustChange:
			out = append(out, "*Password:* must be changed at the next sign-in")
		case !p.At.IsZero():
			out = append(out, "*Password last set:* "+when(p.At))
		}
	}
	if h := f.Resets; h != nil {
		if h.Count == 0 {
			out = append(out, fmt.Sprintf("*Reset by this bot:* not in the last %d days", historyDays))
		} else {
			out = append(out, fmt.Sprintf("*Reset by this bot:* %s in the last %d days, last %s", times(h.Count), historyDays, when(h.Last)))
		}
	}
	if t := f.Hours; t != nil {
		if t.Outside {
			out = append(out, fmt.Sprintf(":crescent_moon: *Outside working hours:* asked at %s their time (%s)", escape(t.Clock), escape(t.Zone)))
		} else {
			out = append(out, fmt.Sprintf("*Their time:* %s (%s)", escape(t.Clock), escape(t.Zone)))
		}
	}
	return out
}

// factsInBrief is the facts on one line, for a queue row and the audit
// thread; "" when none is known.
func factsInBrief(f *workflow.Facts) string {
	if f == nil {
		return ""
	}
	var parts []string
	if l := f.Lockout; l != nil {
		parts = append(parts, map[bool]string{true: ":lock: locked out", false: "not locked out"}[l.Locked])
	}
	if n := f.BadPasswords; n != nil {
		parts = append(parts, fmt.Sprintf("%d bad passwords", *n))
	}
	if p := f.PasswordSet; p != nil {
		switch {
		case p.MustChange:
			parts = append(parts, "password must be changed")
		case !p.At.IsZero():
			parts = append(parts, "password set "+when(p.At))
		}
	}
	if h := f.Resets; h != nil {
		if h.Count == 0 {
			parts = append(parts, fmt.Sprintf("not reset by the bot in %d days", historyDays))
		} else {
			parts = append(parts, fmt.Sprintf("reset by the bot %s in %d days, last %s", times(h.Count), historyDays, when(h.Last)))
		}
	}
	if t := f.Hours; t != nil {
		if t.Outside {
			parts = append(parts, fmt.Sprintf(":crescent_moon: outside working hours (%s their time)", escape(t.Clock)))
		} else {
			parts = append(parts, fmt.Sprintf("%s their time", escape(t.Clock)))
		}
	}
	return strings.Join(parts, " · ")
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// minutes says d in whole minutes.
func minutes(d time.Duration) string {
	m := int(d.Round(time.Minute).Minutes())
	if m == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}

// eventOf returns r's first event of kind.
func eventOf(r *workflow.Request, kind workflow.EventKind) (workflow.Event, bool) {
	i := slices.IndexFunc(r.Events, func(ev workflow.Event) bool { return ev.Kind == kind })
	if i < 0 {
		return workflow.Event{}, false
	}
	return r.Events[i], true
}

// firstAsked are the approvers asked when r was made: all but those its
// escalation added.
func firstAsked(r *workflow.Request) []string {
	return slices.DeleteFunc(slices.Clone(r.Approvers), func(a string) bool { return slices.Contains(r.Escalated, a) })
}

// escalatedNote tells approver (any approver when "") about r's
// escalation: why a fallback approver was asked, or, to the others, who
// was asked as well. "" when there is nothing to tell.
func escalatedNote(approver string, r *workflow.Request) string {
	ev, ok := eventOf(r, workflow.EventEscalated)
	if !ok || len(r.Escalated) == 0 {
		return ""
	}
	waited := minutes(ev.At.Sub(r.CreatedAt))
	if slices.Contains(r.Escalated, approver) {
		return fmt.Sprintf(":arrow_up: You were asked as well because %s (%s's manager in the directory) did not decide within %s.", users(firstAsked(r)), user(r.Requester), waited)
	}
	return fmt.Sprintf(":arrow_up: Nobody had decided after %s, so %s were asked as well.", waited, users(r.Escalated))
}

// escalatedNotice is the employee's DM about the escalation of r.
func escalatedNotice(r *workflow.Request) string {
	if len(r.Escalated) == 0 {
		return fmt.Sprintf(":hourglass_flowing_sand: %s has not answered your request to reset %s yet, and there is nobody else I can ask. It expires at %s.",
			users(firstAsked(r)), code(r.Account.UserName), when(r.DecideBy))
	}
	return fmt.Sprintf(":hourglass_flowing_sand: %s has not answered your request to reset %s yet, so I also asked %s to approve it. It expires at %s.",
		users(firstAsked(r)), code(r.Account.UserName), users(r.Escalated), when(r.DecideBy))
}

// ReminderMessage is the reminder to an approver of the requests rows
// that still wait for their decision: the queue (or the single request)
// under a heading that says how long they have waited. It is posted as a
// new message, so that Slack notifies the approver, and redrawn like the
// queue afterwards. It holds at most maxQueueRows-1 rows (its heading
// takes a block).
func ReminderMessage(approver string, rows []*workflow.Request) Msg {
	m := QueueMessage(approver, rows)
	var open []*workflow.Request
	for _, r := range rows {
		if r.Status == workflow.StatusPending {
			open = append(open, r)
		}
	}
	if len(open) == 0 {
		return m
	}
	head := fmt.Sprintf(":alarm_clock: *Reminder:* %d password reset requests still wait for your decision; the oldest since %s.", len(open), when(open[0].CreatedAt))
	if len(open) == 1 {
		waited := "a while"
		if ev, ok := eventOf(open[0], workflow.EventReminded); ok {
			waited = minutes(ev.At.Sub(open[0].CreatedAt))
		}
		head = fmt.Sprintf(":alarm_clock: *Reminder:* %s has waited %s for your decision on their password reset.", user(open[0].Requester), waited)
	}
	return Msg{Text: "Reminder: " + m.Text, Blocks: append([]slack.Block{section(head)}, m.Blocks...)}
}

// reportBlocks are the employee's completed-reset DM's last blocks: the
// "This wasn't me" button, or, once pressed, what it did.
func reportBlocks(r *workflow.Request) []slack.Block {
	ev, reported := eventOf(r, workflow.EventReported)
	if !reported {
		return []slack.Block{
			contextLine("Did you not ask for this reset? Press *This wasn't me*: helpdesk is alerted at once."),
			slack.NewActionBlock("report", button(ActionReport, "This wasn't me", r.ID, slack.StyleDanger)),
		}
	}
	s := fmt.Sprintf(":rotating_light: You reported this reset at %s: helpdesk was alerted and will contact you.", when(ev.At))
	if d, ok := eventOf(r, workflow.EventDisabled); ok && d.Code == "" {
		s += " Your directory account was disabled, so that nobody can sign in with it; helpdesk will help you get it back."
	}
	return []slack.Block{section(s)}
}

// oversightAudit is the audit thread's words for an oversight event, ""
// for another kind.
func oversightAudit(r *workflow.Request, ev workflow.Event) string {
	switch ev.Kind {
	case workflow.EventReminded:
		asked := r.Approvers
		if esc, ok := eventOf(r, workflow.EventEscalated); !ok || esc.At.After(ev.At) {
			asked = firstAsked(r)
		}
		return fmt.Sprintf("Reminded %s: nobody had decided after %s.", users(asked), minutes(ev.At.Sub(r.CreatedAt)))
	case workflow.EventEscalated:
		if len(r.Escalated) == 0 {
			return fmt.Sprintf("%s had not decided after %s; nobody else could be asked.", users(firstAsked(r)), minutes(ev.At.Sub(r.CreatedAt)))
		}
		return fmt.Sprintf("%s had not decided after %s: also asked %s.", users(firstAsked(r)), minutes(ev.At.Sub(r.CreatedAt)), users(r.Escalated))
	case workflow.EventReported:
		return fmt.Sprintf(":rotating_light: %s pressed *This wasn't me*: they say they did not ask for this reset. Call them at a number you already know, and check the account.", user(ev.Actor))
	case workflow.EventDisabled:
		if ev.Code == "" {
			return ":no_entry: " + escape(ev.Detail) + "."
		}
		s := fmt.Sprintf(":warning: %s: %s", code(string(ev.Code)), escape(ev.Detail))
		if ev.Code == workflow.CodeDirectoryMisconfigured {
			s += "\nHelpdesk: disable the account by hand; to have the bot do it, delegate Write userAccountControl to its LDAP account (README, LDAP permissions)."
		}
		return s
	case workflow.EventNotified:
		if ev.Code == "" {
			return ":email: Notice email: " + escape(ev.Detail) + "."
		}
		return fmt.Sprintf(":warning: %s: %s\n%s", code(string(ev.Code)), escape(ev.Detail), helpdeskHint(ev.Code))
	}
	return ""
}

// mention mentions a Slack user or user group.
func mention(id string) string {
	if strings.HasPrefix(id, "S") {
		return "<!subteam^" + id + ">"
	}
	return user(id)
}

// ReportAlert is the audit channel's own message (not in a thread) when
// the owner of an account reports a reset they did not ask for: it
// mentions helpdesk, so that someone is notified at once.
func ReportAlert(r *workflow.Request, helpdesk []string) Msg {
	who := "Helpdesk"
	if len(helpdesk) > 0 {
		ms := make([]string, len(helpdesk))
		for i, id := range helpdesk {
			ms[i] = mention(id)
		}
		who = strings.Join(ms, " ")
	}
	ev, _ := eventOf(r, workflow.EventReported)
	s := fmt.Sprintf(":rotating_light: %s: %s says they did *not* ask for the password reset of %s completed at %s (request %s, approved by %s). Call them at a number you already know before anything else; the request's thread in this channel has every step.",
		who, user(r.Requester), code(r.Account.UserName), when(r.EndedAt), code(r.ID), user(r.DecidedBy))
	if !ev.At.IsZero() {
		s = when(ev.At) + " · " + s
	}
	return Msg{Text: s, Blocks: []slack.Block{section(s)}}
}

// reportedMark follows the audit parent's status once the owner reported
// the reset.
func reportedMark(r *workflow.Request) string {
	if !r.Reported() {
		return ""
	}
	return " · :rotating_light: *the owner says it was not them*"
}
