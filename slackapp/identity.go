package slackapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"

	"github.com/example/resetbot/workflow"
)

// Identity tells who a Slack user is, from users.info and
// users.lookupByEmail. It reuses what users.info said about a user for a
// minute.
//
// Only members of this workspace count: Team (and, on Enterprise Grid,
// Enterprise) as auth.test reports them for the bot. Until they are set,
// nobody is a member: Identity fails closed.
type Identity struct {
	API        *slack.Client
	Domains    []string // allowed email domains, lower case; empty allows nobody
	Gate       *Gate
	Team       string // this workspace's ID (auth.test team_id)
	Enterprise string // the Enterprise Grid organisation's ID (auth.test enterprise_id), "" outside Grid

	// RosterPages is how many pages of users.list (RosterPageSize members
	// each) the bot reads when users.info is rate-limited (a burst); 0
	// reads none. See readRoster.
	RosterPages    int
	RosterPageSize int // 0: 1000, the most Slack gives in one page
	Log            *slog.Logger

	users   cache[member] // by user ID
	byEmail cache[member] // by lower-case email

	rosterMu     sync.Mutex
	rosterAt     time.Time // when the roster was last read (or tried)
	rosterFlight singleflight.Group
}

// member is what the bot keeps of a Slack user: a few strings, not the
// whole profile, so that a burst of requests costs little memory.
type member struct {
	id, email, name     string
	team, enterprise    string
	deleted, bot, guest bool
	stranger, confirmed bool
	tz                  string // the user's time zone (an IANA name), "" when Slack gave none
	tzOffset            int    // its offset from UTC now, in seconds
}

func memberOf(u *slack.User) member {
	return member{id: u.ID, email: strings.TrimSpace(u.Profile.Email), name: displayName(u),
		team: u.TeamID, enterprise: u.Enterprise.EnterpriseID,
		deleted: u.Deleted, bot: u.IsBot || u.IsAppUser, guest: u.IsRestricted || u.IsUltraRestricted,
		stranger: u.IsStranger, confirmed: u.IsEmailConfirmed, tz: u.TZ, tzOffset: u.TZOffset}
}

var _ workflow.Identity = (*Identity)(nil)

// Person implements workflow.Identity. Its users.info waits behind a
// click's (PriorityNext): in a burst of commands, the approver's check at
// their first click clears the way for every request they decide, and
// must not queue behind the employees' lookups.
func (i *Identity) Person(ctx context.Context, userID string) (workflow.Person, error) {
	u, err := i.member(ctx, userID, PriorityNext)
	if err != nil {
		return workflow.Person{}, err
	}
	if err := i.email(u); err != nil {
		return workflow.Person{}, err
	}
	return workflow.Person{ID: u.id, Email: u.email, Name: u.name, TZ: u.tz, TZOffset: u.tzOffset}, nil
}

// email checks that u's email is one the bot may trust to name an
// account: present, well-formed, confirmed by Slack, in an allowed domain.
func (i *Identity) email(u member) error {
	email := u.email
	if email == "" {
		return workflow.Errorf(workflow.CodeNoEmail, "Slack user %s has no email in their profile (is the users:read.email scope granted?)", u.id)
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return workflow.Errorf(workflow.CodeNoEmail, "Slack user %s has a malformed email %q", u.id, email)
	}
	if !u.confirmed {
		return workflow.Errorf(workflow.CodeEmailUnconfirmed, "Slack has not confirmed the email %q of user %s", email, u.id)
	}
	if domain := strings.ToLower(email[at+1:]); !slices.Contains(i.Domains, domain) {
		return workflow.Errorf(workflow.CodeEmailDomain, "Slack user %s has email domain %q, not one of %v", u.id, domain, i.Domains)
	}
	return nil
}

// ours refuses users who may not use the bot or decide: deactivated
// users, bots and guests (eligible), and anyone who is not a member of
// this workspace or its Enterprise Grid organisation, such as a Slack
// Connect user of another organisation.
func (i *Identity) ours(u member) error {
	if err := eligible(u); err != nil {
		return err
	}
	switch {
	case i.Team == "":
		return workflow.Errorf(workflow.CodeInternal, "the bot does not know its own workspace yet (auth.test), so it cannot tell members from strangers")
	case u.stranger:
		return workflow.Errorf(workflow.CodeForeignUser, "Slack user %s is a Slack Connect stranger (another organisation)", u.id)
	case u.team == i.Team, i.Enterprise != "" && u.enterprise == i.Enterprise:
		return nil
	}
	return workflow.Errorf(workflow.CodeForeignUser, "Slack user %s belongs to workspace %q (organisation %q), not this one (%q, %q)", u.id, u.team, u.enterprise, i.Team, i.Enterprise)
}

// Approver implements workflow.Identity: at the click, whose answer the
// approver waits for (PriorityNow).
func (i *Identity) Approver(ctx context.Context, userID string) (workflow.Person, error) {
	u, err := i.member(ctx, userID, PriorityNow)
	if err != nil {
		return workflow.Person{}, err
	}
	return workflow.Person{ID: u.id, Email: u.email, Name: u.name}, nil
}

// member returns userID's users.info once it passed ours.
// Errors: CodeUnknownUser, CodeInternal (chat unreachable), and ours'.
func (i *Identity) member(ctx context.Context, userID string, prio Priority) (member, error) {
	u, err := i.user(ctx, userID, prio)
	if err != nil {
		if slackError(err, "user_not_found", "users_not_found") {
			return member{}, workflow.Errorf(workflow.CodeUnknownUser, "Slack does not know user %s", userID)
		}
		return member{}, workflow.Wrap(workflow.CodeInternal, err, "users.info for "+userID)
	}
	return u, i.ours(u)
}

// user returns users.info of userID, from the cache when fresh. When
// users.info is rate-limited (a burst) and the bot may read the roster,
// it reads it, and asks users.info only about someone the roster did not
// answer for.
func (i *Identity) user(ctx context.Context, userID string, prio Priority) (member, error) {
	info := func() (member, error) {
		u, err := i.API.GetUserInfoContext(ctx, userID)
		if err != nil {
			return member{}, err
		}
		return memberOf(u), nil
	}
	if i.RosterPages <= 0 {
		return lookup(ctx, &i.users, i.Gate, "users.info", prio, userID, info)
	}
	m, err := lookupWithin(ctx, &i.users, i.Gate, "users.info", prio, rosterAfter, userID, info)
	if !errors.Is(err, ErrThrottled) {
		return m, err
	}
	i.readRoster(ctx, prio)
	return lookup(ctx, &i.users, i.Gate, "users.info", prio, userID, info)
}

// RosterPages is how many pages of users.list the bot reads in a burst:
// up to 5,000 members, within Tier 2's first calls.
const RosterPages = 5

// rosterAfter is how long a users.info lookup may wait for its rate
// limit before the roster is read instead.
const rosterAfter = 500 * time.Millisecond

// rosterEvery is how often the roster is read at most: a long burst
// reads it again when what it read leaves the cache.
const rosterEvery = cacheTTL / 2

// readRoster reads up to RosterPages pages of the workspace's members
// with users.list into the cache users.info's answers go to. On a Monday
// morning users.info (Tier 4, one person a call) is the floor of every
// request: each employee's profile is needed before anything else. One
// page of users.list (Tier 2, another budget) answers for up to 1000
// people at once. The members read are kept, like users.info's answers,
// for cacheTTL, and pass the same checks (ours, email); a member whose
// email Slack's list does not say is confirmed is not kept, so that they
// are asked about with users.info rather than refused. A roster that
// cannot be read, or whose next page would wait for users.list's limit,
// leaves users.info to answer for the rest.
func (i *Identity) readRoster(ctx context.Context, prio Priority) {
	_, _, _ = i.rosterFlight.Do("roster", func() (any, error) {
		i.rosterMu.Lock()
		if time.Since(i.rosterAt) < rosterEvery {
			i.rosterMu.Unlock()
			return nil, nil
		}
		i.rosterAt = time.Now()
		i.rosterMu.Unlock()
		size := i.RosterPageSize
		if size <= 0 {
			size = 1000
		}
		opts := []slack.GetUsersOption{slack.GetUsersOptionLimit(size), slack.GetUsersOptionIncludeLocale(false)}
		if i.Enterprise != "" {
			opts = append(opts, slack.GetUsersOptionTeamID(i.Team))
		}
		p := i.API.GetUsersPaginated(opts...)
		kept := 0
		for range i.RosterPages {
			// Every lookup of the burst waits for this read: a page that
			// would wait for users.list's own limit is not read, and those
			// it would have answered are asked about with users.info.
			err := i.Gate.DoWithin(ctx, "users.list", prio, rosterAfter, func() error {
				var err error
				p, err = p.Next(ctx)
				return err
			})
			if p.Done(err) {
				break
			}
			if err != nil {
				if i.Log != nil && !errors.Is(err, ErrThrottled) {
					i.Log.Warn("could not read the workspace's members with users.list; users.info answers for the rest", "error", err)
				}
				break
			}
			for k := range p.Users {
				if m := memberOf(&p.Users[k]); m.id != "" && m.confirmed {
					i.users.put(m.id, m)
					kept++
				}
			}
			if p.Cursor == "" {
				break
			}
		}
		if i.Log != nil {
			i.Log.Info("users.info is rate-limited: read the workspace's members with users.list", "members", kept)
		}
		return nil, nil
	})
}

// ByEmail implements workflow.Identity with users.lookupByEmail.
func (i *Identity) ByEmail(ctx context.Context, email string) (workflow.Person, bool, error) {
	m, ok, err := i.byEmailMember(ctx, email)
	if err != nil || !ok {
		return workflow.Person{}, false, err
	}
	if i.ours(m) != nil || i.email(m) != nil {
		// Not asked: deactivated, a guest or bot, another organisation's,
		// or an email that is unconfirmed or outside the allowed domains.
		return workflow.Person{}, false, nil
	}
	return workflow.Person{ID: m.id, Email: m.email, Name: m.name}, true, nil
}

// Employee implements workflow.Identity: the member users.lookupByEmail
// finds for email (reused for a minute), checked as Person checks; ok is
// false when Slack has no member with it (users_not_found, which Slack
// also answers for a deactivated member). The email's domain is checked
// before Slack is asked.
func (i *Identity) Employee(ctx context.Context, email string) (workflow.Person, bool, error) {
	email = strings.TrimSpace(email)
	if err := i.email(member{id: "named by email", email: email, confirmed: true}); err != nil {
		return workflow.Person{}, false, err
	}
	m, ok, err := i.byEmailMember(ctx, email)
	if err != nil || !ok {
		return workflow.Person{}, false, err
	}
	if err := i.ours(m); err != nil {
		return workflow.Person{}, false, err
	}
	if err := i.email(m); err != nil {
		return workflow.Person{}, false, err
	}
	return workflow.Person{ID: m.id, Email: m.email, Name: m.name}, true, nil
}

// byEmailMember returns users.lookupByEmail of email, reused for a minute
// (Tier 3: a burst of employees asks about the same few managers); ok is
// false when Slack has no member with it.
// Errors: CodeInternal (chat unreachable).
func (i *Identity) byEmailMember(ctx context.Context, email string) (member, bool, error) {
	m, err := lookup(ctx, &i.byEmail, i.Gate, "users.lookupByEmail", PriorityNext, strings.ToLower(email), func() (member, error) {
		u, err := i.API.GetUserByEmailContext(ctx, email)
		if err != nil {
			return member{}, err
		}
		return memberOf(u), nil
	})
	switch {
	case slackError(err, "users_not_found", "user_not_found"):
		return member{}, false, nil
	case err != nil:
		return member{}, false, workflow.Wrap(workflow.CodeInternal, err, "users.lookupByEmail")
	}
	return m, true, nil
}

// eligible refuses deactivated users, bots and guests.
func eligible(u member) error {
	switch {
	case u.deleted:
		return workflow.Errorf(workflow.CodeIneligibleUser, "Slack user %s is deactivated", u.id)
	case u.bot:
		return workflow.Errorf(workflow.CodeIneligibleUser, "Slack user %s is a bot", u.id)
	case u.guest:
		return workflow.Errorf(workflow.CodeIneligibleUser, "Slack user %s is a guest", u.id)
	}
	return nil
}

// slackError reports whether err is a Slack error response with one of codes.
func slackError(err error, codes ...string) bool {
	var se slack.SlackErrorResponse
	return errors.As(err, &se) && slices.Contains(codes, se.Err)
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
// user groups, looked up at request time and reused for a minute. The
// helpdesk (HELPDESK) is such a list too (workflow.Helpdesk).
type StaticApprovers struct {
	API    *slack.Client
	Users  []string
	Groups []string
	Log    *slog.Logger
	Gate   *Gate

	members cache[[]string]
}

var (
	_ workflow.Approvers = (*StaticApprovers)(nil)
	_ workflow.Helpdesk  = (*StaticApprovers)(nil)
)

// Includes implements workflow.Helpdesk: whether user is one of the
// listed users or a member of one of the groups. A group Slack cannot
// list counts as no one, unless none could be listed (an error).
func (a *StaticApprovers) Includes(ctx context.Context, user string) (bool, error) {
	if slices.Contains(a.Users, user) {
		return true, nil
	}
	if len(a.Groups) == 0 {
		return false, nil
	}
	members, err := a.For(ctx, "", workflow.Account{})
	if err != nil {
		return false, err
	}
	return slices.Contains(members, user), nil
}

// For implements workflow.Approvers. A user group Slack cannot list is
// logged and left out while other approvers remain.
func (a *StaticApprovers) For(ctx context.Context, _ string, _ workflow.Account) ([]string, error) {
	out := slices.Clone(a.Users)
	var errs []error
	for _, g := range a.Groups {
		members, err := a.groupMembers(ctx, g)
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

// groupMembers returns the members of user group g, from the cache when
// fresh.
func (a *StaticApprovers) groupMembers(ctx context.Context, g string) ([]string, error) {
	return lookup(ctx, &a.members, a.Gate, "usergroups.users.list", PriorityNext, g, func() ([]string, error) {
		return a.API.GetUserGroupMembersContext(ctx, g)
	})
}

// Check looks every configured approver up as requests do and returns how
// many people can approve, and a problem per user who cannot (unknown,
// deactivated, a bot or a guest) and per group Slack cannot list or that is
// empty. For `bot doctor`.
func (a *StaticApprovers) Check(ctx context.Context, people *Identity) (int, []string) {
	var problems []string
	n := 0
	for _, u := range a.Users {
		usr, err := people.user(ctx, u, PriorityNow)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("user %s: %v", u, err))
		case people.ours(usr) != nil:
			problems = append(problems, fmt.Sprintf("user %s: %v", u, people.ours(usr)))
		default:
			n++
		}
	}
	for _, g := range a.Groups {
		members, err := a.groupMembers(ctx, g)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("group %s: %v", g, err))
		case len(members) == 0:
			problems = append(problems, fmt.Sprintf("group %s has no members", g))
		default:
			n += len(members)
		}
	}
	return n, problems
}
