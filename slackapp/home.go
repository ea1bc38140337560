package slackapp

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/workflow"
)

// A person's Home tab is a delivery lane (delivery.KindHome) like their
// queue: every change that concerns them puts the request in its inbox;
// its record keeps the lists the view shows (the requests waiting for
// their decision, their recent decisions, their own requests), so that no
// store index is needed, and the digest of the view last published.
//
// views.publish has a budget of its own (Tier 4, about 100 a minute for
// the workspace), so a view is published only for people who opened
// their Home tab at least once (app_home_opened), at most once per
// HomeWindow for the changes that follow, and never when it would show
// the same thing. Opening the tab publishes at once: that is when helpdesk's
// list of the latest requests is refreshed (it changes with every request
// anyone makes, too often to follow).

// HomeWindow is how long after publishing a person's Home view the next
// changes wait, so that a burst of them costs one views.publish.
const HomeWindow = 2 * time.Second

// homeOpened is the reply that tells a Home lane its person just opened
// the tab (App, app_home_opened).
const homeOpened = "home:opened"

// HomeOpened is what the App hands a Home lane when its person opens the
// tab.
func HomeOpened(now time.Time) delivery.Reply {
	return delivery.Reply{Message: homeOpened, Expires: now.Add(time.Minute)}
}

// maxHomeHistory bounds the recent decisions and own requests a Home
// keeps.
const maxHomeHistory = 10

// maxHomeLatest is how many of the latest requests helpdesk sees.
const maxHomeLatest = 12

// homeRecord is what a Home lane told, and the lists its view shows.
type homeRecord struct {
	Open      []string  `json:"open,omitempty"`    // requests waiting for the person's decision, oldest first
	Decided   []string  `json:"decided,omitempty"` // requests they decided, newest first
	Mine      []string  `json:"mine,omitempty"`    // their own requests, newest first
	Seen      bool      `json:"seen,omitempty"`    // they opened the tab: keep it current
	Hash      string    `json:"hash,omitempty"`    // digest of the view last published
	Published time.Time `json:"published,omitzero"`
}

// front puts id first in list, once, keeping at most maxHomeHistory.
func front(list []string, id string) []string {
	list = slices.Insert(slices.DeleteFunc(list, func(x string) bool { return x == id }), 0, id)
	return list[:min(len(list), maxHomeHistory)]
}

// home brings a person's Home up to date: the lists from the requests in
// the inbox, then, if they ever opened the tab, the view.
func (s *send) home(ctx context.Context) error {
	var rec homeRecord
	if err := s.decode(&rec); err != nil {
		return err
	}
	defer s.encode(&rec)
	person := s.w.Lane.Subject
	opened := false
	for _, r := range s.w.Replies {
		if r.Message == homeOpened {
			opened, rec.Seen = true, true
			s.res.UsedReplies = append(s.res.UsedReplies, r)
		}
	}
	var ids []string
	for _, item := range s.w.Inbox {
		if id := delivery.ItemRequest(item); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	got, err := s.many(ctx, ids)
	if err != nil {
		return err
	}
	s.res.Handled = s.w.Inbox
	for _, id := range ids {
		r := got[id]
		if r == nil {
			continue
		}
		if r.Requester == person {
			rec.Mine = front(rec.Mine, id)
		}
		if r.IsApprover(person) {
			rec.Open = slices.DeleteFunc(rec.Open, func(x string) bool { return x == id })
			if r.Status == workflow.StatusPending {
				rec.Open = append(rec.Open, id)
			}
			if r.DecidedBy == person {
				rec.Decided = front(rec.Decided, id)
			}
		}
	}
	if !rec.Seen {
		return nil
	}
	if next := rec.Published.Add(HomeWindow); !opened && time.Now().Before(next) {
		s.res.Next = next
		return nil
	}
	view, err := s.homeView(ctx, person, &rec)
	if err != nil {
		return err
	}
	h := digest(Msg{Blocks: view.Blocks.BlockSet})
	if h == rec.Hash {
		return nil
	}
	prio := PriorityOthers
	if opened {
		prio = PriorityNow // they are looking at it
	}
	err = s.call(ctx, "views.publish", prio, func() error {
		_, err := s.n.API.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: person, View: view})
		return err
	})
	if err := s.tolerate(err, "publish the Home of "+person); err != nil {
		return err
	}
	rec.Hash, rec.Published = h, time.Now()
	return nil
}

// homeView reads the requests rec lists (dropping those gone or no
// longer waiting) and, for helpdesk, the latest ones, and draws the view.
func (s *send) homeView(ctx context.Context, person string, rec *homeRecord) (slack.HomeTabViewRequest, error) {
	helpdesk := false
	if s.n.IsHelpdesk != nil {
		var err error
		if helpdesk, err = s.n.IsHelpdesk(ctx, person); err != nil {
			s.n.Log.Warn("could not tell whether a person is helpdesk; their Home shows no latest requests this time", "user", person, "error", err)
		}
	}
	var latest []string
	if helpdesk {
		var err error
		if latest, err = s.n.Recent.Recent(ctx, maxHomeLatest); err != nil {
			return slack.HomeTabViewRequest{}, err
		}
	}
	got, err := s.many(ctx, slices.Concat(rec.Open, rec.Decided, rec.Mine, latest))
	if err != nil {
		return slack.HomeTabViewRequest{}, err
	}
	pick := func(ids []string, keep func(*workflow.Request) bool) ([]string, []*workflow.Request) {
		var kept []string
		var rs []*workflow.Request
		for _, id := range ids {
			if r := got[id]; r != nil && keep(r) {
				kept, rs = append(kept, id), append(rs, r)
			}
		}
		return kept, rs
	}
	all := func(*workflow.Request) bool { return true }
	d := HomeData{User: person}
	rec.Open, d.Open = pick(rec.Open, func(r *workflow.Request) bool { return r.Status == workflow.StatusPending && r.IsApprover(person) })
	rec.Decided, d.Decided = pick(rec.Decided, all)
	rec.Mine, d.Mine = pick(rec.Mine, all)
	if helpdesk {
		_, d.Latest = pick(latest, all)
		if d.Latest == nil {
			d.Latest = []*workflow.Request{}
		}
	}
	return HomeView(d), nil
}

// onHomeOpened runs the Home lane of whoever opened the app's Home tab,
// which publishes their view at once.
func (a *App) onHomeOpened(_ context.Context, log *slog.Logger, evt *socketmode.Event) {
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok {
		log.Warn("ignoring a malformed event")
		return
	}
	opened, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || opened.User == "" || opened.Tab != "home" || a.Homes == nil {
		return
	}
	l := delivery.Home(opened.User)
	a.Homes.Expect(l, HomeOpened(time.Now()))
	a.Homes.Wake(l)
}
