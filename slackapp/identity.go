package slackapp

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/example/resetbot/workflow"
)

// Identity resolves a Slack user to their own directory account from the
// Slack profile email: the email's local part is the account name
// (sAMAccountName).
type Identity struct {
	API     *slack.Client
	Domains []string // allowed email domains, lower case; empty allows any
}

var _ workflow.Identity = (*Identity)(nil)

// Account implements workflow.Identity.
func (i *Identity) Account(ctx context.Context, userID string) (workflow.Account, error) {
	u, err := i.API.GetUserInfoContext(ctx, userID)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && (se.Err == "user_not_found" || se.Err == "users_not_found") {
			return workflow.Account{}, workflow.Errorf(workflow.CodeUnknownUser, "Slack does not know user %s", userID)
		}
		return workflow.Account{}, workflow.Wrap(workflow.CodeInternal, err, "users.info for "+userID)
	}
	switch {
	case u.Deleted:
		return workflow.Account{}, workflow.Errorf(workflow.CodeIneligibleUser, "Slack user %s is deactivated", userID)
	case u.IsBot || u.IsAppUser:
		return workflow.Account{}, workflow.Errorf(workflow.CodeIneligibleUser, "Slack user %s is a bot", userID)
	case u.IsRestricted || u.IsUltraRestricted:
		return workflow.Account{}, workflow.Errorf(workflow.CodeIneligibleUser, "Slack user %s is a guest", userID)
	}
	email := strings.TrimSpace(u.Profile.Email)
	if email == "" {
		return workflow.Account{}, workflow.Errorf(workflow.CodeNoEmail, "Slack user %s has no email in their profile (is the users:read.email scope granted?)", userID)
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return workflow.Account{}, workflow.Errorf(workflow.CodeNoEmail, "Slack user %s has a malformed email %q", userID, email)
	}
	local, domain := email[:at], strings.ToLower(email[at+1:])
	if len(i.Domains) > 0 && !slices.Contains(i.Domains, domain) {
		return workflow.Account{}, workflow.Errorf(workflow.CodeEmailDomain, "Slack user %s has email domain %q, not one of %v", userID, domain, i.Domains)
	}
	if err := workflow.ValidateUserName(local); err != nil {
		return workflow.Account{}, err
	}
	return workflow.Account{UserName: local, Email: email, DisplayName: displayName(u)}, nil
}

func displayName(u *slack.User) string {
	for _, s := range []string{u.RealName, u.Profile.RealName, u.Profile.DisplayName} {
		if s != "" {
			return s
		}
	}
	return ""
}

// StaticApprovers are the approvers of APPROVERS: user IDs and the members of
// user groups, looked up at request time.
type StaticApprovers struct {
	API    *slack.Client
	Users  []string
	Groups []string
	Log    *slog.Logger
}

var _ workflow.Approvers = (*StaticApprovers)(nil)

// For implements workflow.Approvers. A user group Slack cannot list is
// logged and left out while other approvers remain.
func (a *StaticApprovers) For(ctx context.Context, _ string, _ workflow.Account) ([]string, error) {
	out := slices.Clone(a.Users)
	var errs []error
	for _, g := range a.Groups {
		members, err := a.API.GetUserGroupMembersContext(ctx, g)
		if err != nil {
			errs = append(errs, workflow.Wrap(workflow.CodeInternal, err, "usergroups.users.list for "+g))
			continue
		}
		out = append(out, members...)
	}
	if len(errs) > 0 {
		if len(out) == 0 {
			return nil, errors.Join(errs...)
		}
		a.Log.Warn("leaving out approver groups Slack could not list", "error", errors.Join(errs...))
	}
	return out, nil
}
