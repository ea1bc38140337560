package slackapp

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// HomeData is what one person's Home tab shows.
type HomeData struct {
	User    string
	Mine    []*workflow.Request // their own requests, newest first
	Open    []*workflow.Request // the requests waiting for their decision, oldest first
	Decided []*workflow.Request // the requests they decided, newest first
	Latest  []*workflow.Request // for helpdesk: the latest requests, newest first; nil for others
}

// Limits of the Home view: Slack takes 100 blocks, 3000 characters a
// section.
const (
	maxHomeOpen  = 20 // decision rows (2 blocks each)
	maxHomeLines = 12 // lines of a list
	maxSection   = 2900
)

// HomeView is a person's Home tab: their own request and recent ones;
// for an approver, the requests waiting for their decision, with the same
// buttons as their DMs, and their recent decisions; for helpdesk, the
// latest requests. It holds no password, ever: none of the requests
// shown has one.
func HomeView(d HomeData) slack.HomeTabViewRequest {
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, ":key: Password resets", true, false)), // emoji: the key, not ":key:"
		contextLine("Type `/reset-password` in any channel, or in the Messages tab here, to reset the password of your own directory account."),
	}
	blocks = append(blocks, homeMine(d.Mine)...)
	if len(d.Open) > 0 || len(d.Decided) > 0 {
		blocks = append(blocks, slack.NewDividerBlock())
		blocks = append(blocks, homeOpen(d.User, d.Open)...)
		if len(d.Decided) > 0 {
			blocks = append(blocks, section("*Your recent decisions*\n"+lines(d.Decided, decisionLine)))
		}
	}
	if d.Latest != nil {
		blocks = append(blocks, slack.NewDividerBlock())
		latest := "*Latest requests* (you are helpdesk)\n" + lines(d.Latest, latestLine)
		if len(d.Latest) == 0 {
			latest = "*Latest requests* (you are helpdesk)\nNone yet."
		}
		blocks = append(blocks, section(latest))
	}
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

// homeMine is the employee's part: their open request, then the others.
func homeMine(mine []*workflow.Request) []slack.Block {
	if len(mine) == 0 {
		return []slack.Block{section("You have not asked for a password reset yet.")}
	}
	var out []slack.Block
	var past []*workflow.Request
	for _, r := range mine {
		if !r.Status.Terminal() && len(out) == 0 {
			out = append(out, section("*Your open request*\n"+openLine(r)))
			continue
		}
		past = append(past, r)
	}
	if len(past) > 0 {
		out = append(out, section("*Your recent requests*\n"+lines(past, mineLine)))
	}
	return out
}

// openLine says where the employee's open request stands.
func openLine(r *workflow.Request) string {
	switch r.Status {
	case workflow.StatusPending:
		return fmt.Sprintf(":hourglass_flowing_sand: %s to reset %s waits for %s; it expires at %s.", code(r.ID), code(r.Account.UserName), users(r.Approvers), when(r.DecideBy))
	case workflow.StatusApproved:
		return fmt.Sprintf(":white_check_mark: %s to reset %s was approved by %s. Use *Reveal my temporary password* in the Messages tab before %s.", code(r.ID), code(r.Account.UserName), user(r.DecidedBy), when(r.RevealBy))
	}
	return fmt.Sprintf(":hourglass_flowing_sand: %s: the password of %s is being reset right now.", code(r.ID), code(r.Account.UserName))
}

// homeOpen lists the requests waiting for approver's decision, each as
// its queue row with Approve and Deny.
func homeOpen(approver string, open []*workflow.Request) []slack.Block {
	if len(open) == 0 {
		return []slack.Block{section("*Waiting for your decision*\nNothing right now.")}
	}
	out := []slack.Block{section(fmt.Sprintf("*Waiting for your decision* (%d)\nApprove only the requests you know are genuine, for example because the person asked you in person or on a call.", len(open)))}
	for i, r := range open {
		if i == maxHomeOpen {
			out = append(out, contextLine(fmt.Sprintf("%d more: see your DMs with me.", len(open)-maxHomeOpen)))
			break
		}
		out = append(out, section(queueRow(approver, r)), slack.NewActionBlock("home:"+r.ID,
			button(ActionApprove, "Approve", r.ID, slack.StylePrimary),
			button(ActionDeny, "Deny", r.ID, slack.StyleDanger)))
	}
	return out
}

// lines lists rs, one line each, at most maxHomeLines and maxSection
// characters.
func lines(rs []*workflow.Request, line func(*workflow.Request) string) string {
	var b strings.Builder
	for i, r := range rs {
		l := "• " + line(r)
		if i == maxHomeLines || b.Len()+len(l)+1 > maxSection {
			fmt.Fprintf(&b, "… and %d more", len(rs)-i)
			break
		}
		b.WriteString(l + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func mineLine(r *workflow.Request) string {
	return fmt.Sprintf("%s · %s · %s", when(r.CreatedAt), code(r.Account.UserName), homeStatus(r))
}

func decisionLine(r *workflow.Request) string {
	verb := "approved"
	if r.Status == workflow.StatusDenied {
		verb = "denied"
	}
	return fmt.Sprintf("%s · %s · %s · you %s it", when(r.DecidedAt), user(r.Requester), code(r.Account.UserName), verb)
}

func latestLine(r *workflow.Request) string {
	s := fmt.Sprintf("%s · %s · %s · %s", when(r.CreatedAt), user(r.Requester), code(r.Account.UserName), homeStatus(r))
	if r.Reported() {
		s += " · :rotating_light: reported by the owner"
	}
	return s
}

// homeStatus is a request's state in a list.
func homeStatus(r *workflow.Request) string {
	s := statusLabel(r.Status)
	switch {
	case r.DecidedBy != "" && r.Status == workflow.StatusDenied:
		s += " by " + user(r.DecidedBy)
	case r.DecidedBy != "":
		s += ", approved by " + user(r.DecidedBy)
	}
	return s
}
