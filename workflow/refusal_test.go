package workflow

import "testing"

// TestWhichRefusalsCount: every audited refusal counts against the limit
// but the rate limit itself, a deployment without approvers, and the
// on-behalf refusals decided before the employee's account was looked at;
// nothing that is not an audited refusal counts.
func TestWhichRefusalsCount(t *testing.T) {
	uncounted := map[Code]bool{CodeRateLimited: true, CodeNoApprovers: true, CodeNotHelpdesk: true, CodeNotInChat: true}
	for _, c := range Codes {
		audited := false
		for _, r := range refusalCodes {
			audited = audited || r == c
		}
		if want := audited && !uncounted[c]; countsAgainstLimit(c) != want {
			t.Errorf("countsAgainstLimit(%s) = %v, want %v", c, !want, want)
		}
	}
	for _, c := range []Code{CodeProtectedAccount, CodeEmailDomain, CodeAccountDisabled, CodeProtectedGroup, CodeNoAccount, CodeNotLocked} {
		if !countsAgainstLimit(c) {
			t.Errorf("a refusal the employee caused (%s) does not count", c)
		}
	}
	for _, c := range []Code{CodeUnavailable, CodeLookupUnavailable, CodeInternal, CodeOpenRequest, CodeRateLimited} {
		if countsAgainstLimit(c) {
			t.Errorf("%s counts against the limit", c)
		}
	}
}
