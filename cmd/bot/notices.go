package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/example/resetbot/accounts"
	"github.com/example/resetbot/config"
	"github.com/example/resetbot/mailnotice"
	"github.com/example/resetbot/slackapp"
	"github.com/example/resetbot/workflow"
)

// ownerNotices emails an account's owner after the bot completed a
// reset (workflow.OwnerNotices): the replica that recorded the
// completion is the one told, once. Sending happens in the background
// (mailnotice queues and retries) and never holds up or undoes the
// reset; how it went is recorded on the request (Service.RecordNotice),
// which writes it to the audit log and the audit thread.
type ownerNotices struct {
	sender   *mailnotice.Sender
	accounts *accounts.Accounts // nil without LDAP: the Slack email is the only address
	identity *slackapp.Identity // names the approver
	svc      *workflow.Service  // set once built
	log      *slog.Logger

	wg   sync.WaitGroup // notices being prepared (their addresses read)
	base context.Context
	stop context.CancelFunc
}

// newOwnerNotices returns the notices of cfg, or nil when SMTP_URL is
// unset.
func newOwnerNotices(cfg *config.Config, accts *accounts.Accounts, withLDAP bool, identity *slackapp.Identity, log *slog.Logger) (*ownerNotices, error) {
	if cfg.SMTPURL == "" {
		return nil, nil
	}
	n := &ownerNotices{identity: identity, log: log}
	if withLDAP {
		n.accounts = accts
	}
	n.base, n.stop = context.WithCancel(context.Background())
	sender, err := mailnotice.New(mailnotice.Config{URL: cfg.SMTPURL, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword.Value(),
		From: cfg.SMTPFrom, CAFile: cfg.SMTPCAFile, Helpdesk: cfg.HelpdeskContact}, mailnotice.Options{OnResult: n.result, Log: log})
	if err != nil {
		return nil, fmt.Errorf("notice email: %w", err)
	}
	n.sender = sender
	return n, nil
}

var _ workflow.OwnerNotices = (*ownerNotices)(nil)

// noticeTimeout bounds the preparation of one notice (reading the
// account's addresses, the approver's name) and the recording of how
// it went.
const noticeTimeout = 30 * time.Second

// Completed implements workflow.OwnerNotices.
func (n *ownerNotices) Completed(r *workflow.Request) {
	kind, ok := noticeKind(r)
	if !ok {
		return
	}
	n.wg.Go(func() {
		ctx, cancel := context.WithTimeout(n.base, noticeTimeout)
		defer cancel()
		notice := mailnotice.Notice{Kind: kind, At: r.EndedAt, RequestID: r.ID, UserName: r.Account.UserName,
			DisplayName: r.Account.DisplayName, ApprovedBy: n.name(ctx, r.DecidedBy), Agent: n.name(ctx, r.Agent)}
		if err := n.addresses(ctx, r, &notice); err != nil {
			n.record(r.ID, workflow.CodeNoticeFailed, "the account's addresses could not be read, so no notice email was sent: "+err.Error())
			return
		}
		if err := n.sender.Notify(notice); err != nil {
			n.record(r.ID, workflow.CodeNoticeFailed, err.Error())
		}
	})
}

// noticeKind is the notice a completed request's owner gets, by what the
// request did: every kind of action that changes an account sends one.
func noticeKind(r *workflow.Request) (mailnotice.Kind, bool) {
	switch {
	case r.Status != workflow.StatusCompleted:
		return "", false
	case r.IsUnlock():
		return mailnotice.KindUnlock, true
	}
	return mailnotice.KindReset, true
}

// addresses sets where the notice goes: the account's mail and
// otherMailbox as the directory holds them now, or, without a directory
// (ALLOW_UNCHECKED_ACCOUNTS), the Slack email the account was found by.
func (n *ownerNotices) addresses(ctx context.Context, r *workflow.Request, notice *mailnotice.Notice) error {
	if n.accounts == nil {
		notice.Mail = r.Account.Email
		return nil
	}
	mail, other, err := n.accounts.Mailboxes(ctx, r.Account)
	notice.Mail, notice.OtherMailboxes = mail, other
	return err
}

// name names a person for the email (who approved, who asked on the
// owner's behalf): their Slack name, else
// their Slack ID.
func (n *ownerNotices) name(ctx context.Context, id string) string {
	if id == "" || n.identity == nil {
		return id
	}
	if p, err := n.identity.Approver(ctx, id); err == nil && p.Name != "" {
		return p.Name
	}
	return id
}

// result records how a notice went (mailnotice.Options.OnResult).
func (n *ownerNotices) result(res mailnotice.Result) {
	code, detail := workflow.Code(""), fmt.Sprintf("sent to %d address(es) of the account", len(res.Sent))
	if err := res.Err(); err != nil {
		code, detail = workflow.CodeNoticeFailed, err.Error()
	}
	if len(res.Skipped) > 0 {
		var skipped []string
		for _, k := range res.Skipped {
			skipped = append(skipped, k.Field+" "+k.Value+" ("+k.Reason+")")
		}
		detail += "; not an address, skipped: " + strings.Join(skipped, ", ")
	}
	n.record(res.RequestID, code, detail)
}

// record writes how the notice of request id went to the request.
func (n *ownerNotices) record(id string, code workflow.Code, detail string) {
	ctx, cancel := context.WithTimeout(context.Background(), noticeTimeout)
	defer cancel()
	if code != "" {
		n.log.Error("the owner's notice email was not sent", "request_id", id, "detail", detail)
	}
	if err := n.svc.RecordNotice(ctx, id, code, detail); err != nil {
		n.log.Error("could not record how the owner's notice email went", "request_id", id, "code", code, "detail", detail, "error", err)
	}
}

// close waits for the notices being prepared, then gives the queue until
// ctx ends to drain (mailnotice.Sender.Close), and reports what was left.
func (n *ownerNotices) close(ctx context.Context) {
	if n == nil {
		return
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.stop()
		<-done
	}
	if err := n.sender.Close(ctx); err != nil {
		n.log.Error("notice emails not sent at shutdown", "error", err)
	}
}
