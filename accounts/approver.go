package accounts

import (
	"context"

	"github.com/example/resetbot/workflow"
)

// Approver implements workflow.Accounts: with a directory, p may not
// decide while an account with p's email (mail or userPrincipalName) is
// disabled, or is a computer or service account. A manager who left the
// company is disabled in the directory before, or instead of, being
// deactivated in Slack. An approver with no account in this directory (a
// helpdesk member from another forest, say) is not refused for that: the
// directory says nothing against them, and Slack already said they are an
// active member. A directory that cannot be asked refuses the click
// (workflow.CodeLookupUnavailable).
func (a *Accounts) Approver(ctx context.Context, p workflow.Person) error {
	if a.lookup == nil {
		return nil
	}
	entries, err := a.lookup.ByEmail(ctx, p.Email)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch {
		case e.Disabled:
			return workflow.Errorf(workflow.CodeApproverInactive, "approver %s: their directory account %q (%s) is disabled", p.ID, e.UserName, e.DN)
		case e.Machine:
			return workflow.Errorf(workflow.CodeApproverInactive, "approver %s: the directory account with their email, %q (%s), is a computer or service account", p.ID, e.UserName, e.DN)
		}
	}
	return nil
}
