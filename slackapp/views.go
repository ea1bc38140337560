package slackapp

import (
	"encoding/json"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// Stable callback IDs of the modals: a view_submission routes on them.
const (
	CallbackReason = "reason" // the employee's reason, before a request (REQUIRE_REASON)
	CallbackDeny   = "deny"   // the approver's optional reason for a denial
)

// The input of each modal: its block and action IDs.
const (
	inputReason  = "reason"
	actionReason = "reason"
)

// modalMeta is what a modal carries through Slack for its submission
// (private_metadata): where the command or click came from, so that the
// answer goes where an answer to it would have gone.
type modalMeta struct {
	URL     string `json:"u,omitempty"` // the command's or click's response_url
	Channel string `json:"c,omitempty"` // its channel
	ID      string `json:"r,omitempty"` // the request denied
	Message string `json:"m,omitempty"` // the clicked message, "channel/ts"
}

func (m modalMeta) encode() string {
	b, _ := json.Marshal(m) // plain strings
	return string(b)
}

// readMeta reads a modal's private_metadata; a value that is not ours
// reads as nothing.
func readMeta(s string) modalMeta {
	var m modalMeta
	_ = json.Unmarshal([]byte(s), &m)
	return m
}

func plain(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, text, false, false)
}

// reasonInput is a modal's input for a reason of at most
// workflow.MaxReason characters.
func reasonInput(label, hint string, optional bool) *slack.InputBlock {
	in := slack.NewPlainTextInputBlockElement(nil, actionReason)
	in.Multiline, in.MaxLength = true, workflow.MaxReason
	if !optional {
		in.MinLength = 3
	}
	b := slack.NewInputBlock(inputReason, plain(label), plain(hint), in)
	b.Optional = optional
	return b
}

// ReasonModal asks the employee why they need a reset (REQUIRE_REASON);
// its submission makes the request.
func ReasonModal(meta string) slack.ModalViewRequest {
	v := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: CallbackReason, PrivateMetadata: meta,
		Title: plain("Reset my password"), Submit: plain("Ask for approval"), Close: plain("Cancel")}
	v.Blocks.BlockSet = []slack.Block{
		section("An approver decides whether your password may be reset. Tell them in a few words why you need it, for example that you are locked out after a holiday."),
		reasonInput("Why do you need a reset?", "Your approver and helpdesk see this. Never write a password here.", false),
	}
	return v
}

// DenyModal asks the approver who pressed Deny to confirm, with an
// optional reason that the employee is shown; its submission denies.
func DenyModal(r *workflow.Request, meta string) slack.ModalViewRequest {
	v := slack.ModalViewRequest{Type: slack.VTModal, CallbackID: CallbackDeny, PrivateMetadata: meta,
		Title: plain("Deny the request"), Submit: plain("Deny"), Close: plain("Keep it open")}
	v.Blocks.BlockSet = []slack.Block{
		section(fmt.Sprintf(":no_entry: Deny %s's request to reset the password of %s? Their password stays as it is.", user(r.Requester), code(r.Account.UserName))),
		reasonInput("Reason (optional)", "The employee sees this, and helpdesk in the audit channel.", true),
	}
	return v
}

// reasonNeeded is what the reason modal says when its reason holds
// nothing but spaces and invisible characters.
const reasonNeeded = "Please say in a few words why you need a reset."
