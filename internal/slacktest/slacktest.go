// Package slacktest is a small, real Slack server for end-to-end tests.
//
// It serves the Web API methods the reset bot uses over HTTP and Slack's
// Socket Mode over WebSocket, so the unmodified slack-go clients can talk to
// it:
//
//	srv := slacktest.New()
//	defer srv.Close()
//	api := slack.New(slacktest.BotToken, slack.OptionAPIURL(srv.APIURL()))
//	sm := socketmode.New(slack.New(slacktest.BotToken,
//		slack.OptionAppLevelToken(slacktest.AppToken),
//		slack.OptionAPIURL(srv.APIURL())))
//
// Every request, message, ephemeral message, response_url post and ack is
// recorded for assertions, and every change to a message is journalled with
// its time (Changes, History). Slack's rate limits can be turned on
// (WithRateLimits(SlackLimits()), see Limits); RateStats counts the calls,
// the 429 answers and the calls made inside an announced Retry-After. All
// methods are safe for concurrent use.
package slacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Tokens and identities the server accepts and reports.
const (
	// BotToken is the only bot token the Web API methods accept.
	BotToken = "xoxb-test-bot-token"
	// AppToken is the only app-level token apps.connections.open accepts.
	AppToken = "xapp-test-app-token"
	// TeamID is the workspace id reported by auth.test and put in payloads.
	TeamID = "T1"
	// BotUserID is the bot's user id: auth.test's user_id and the User of
	// every message posted with chat.postMessage.
	BotUserID = "UBOT"
	// BotID is the bot id reported by auth.test.
	BotID = "B1"
	// AppID is the api_app_id put in payloads.
	AppID = "A1"
	// Command is the slash command SlashCommand sends.
	Command = "/reset-password"
	// DefaultPingInterval is how often each socket connection is pinged
	// unless Server.PingInterval or WithPingInterval says otherwise.
	DefaultPingInterval = 5 * time.Second
)

// User is a workspace member known to users.info, users.lookupByEmail and
// conversations.open. An empty TeamID means TeamID. Emails are confirmed
// unless Unconfirmed; EnterpriseID, when set, makes the user an Enterprise
// Grid member (enterprise_user); IsStranger marks a Slack Connect user of
// another organisation who shares no channel with the app.
type User struct {
	ID, Name, RealName, Email, TeamID               string
	Deleted, IsBot, IsRestricted, IsUltraRestricted bool
	Unconfirmed, IsStranger                         bool
	EnterpriseID                                    string
	// TZ is the user's time zone (an IANA name; users.info's tz, with
	// tz_label and tz_offset as Slack computes them for now); "" sends
	// none.
	TZ string
}

// Channel is a conversation conversations.info knows, other than the DMs
// (which it always knows). Member says whether the bot is in it: a
// private channel the bot is not in does not exist for the bot, and
// chat.postMessage to a known channel the bot is not in answers
// not_in_channel, as Slack does without chat:write.public. ExtShared is a
// Slack Connect channel, shared with another organization.
type Channel struct {
	ID, Name                                       string
	Private, Archived, Member, ReadOnly, ExtShared bool
}

// Call is one HTTP request the server received, whatever its outcome.
//
// Method is the Web API method ("chat.postMessage"), "response_url" for a
// post to a response URL, "websocket" for a Socket Mode upgrade request, or
// the request path for anything else. Params holds the form values, or the
// top-level string fields of a JSON body.
type Call struct {
	Method string
	Params url.Values
	Body   []byte
	Status int
	At     time.Time
}

// Message is a message posted with chat.postMessage or chat.postEphemeral.
//
// User is BotUserID for ordinary messages and the recipient for ephemeral
// ones. Updates counts chat.update calls and replace_original response_url
// posts applied to the message; UpdatedAt is the time of the latest.
type Message struct {
	Channel, TS, ThreadTS, Text, User string
	Blocks                            json.RawMessage
	Ephemeral                         bool
	Updates                           int
	PostedAt, UpdatedAt               time.Time
}

// ResponsePost is one accepted POST to a response_url the server issued.
// Blocks is nil when the body had no blocks (or "blocks":null); Raw is the
// body as received. ResponseType is as sent ("" when absent).
type ResponsePost struct {
	URL string
	// Channel and User are where the response URL came from: the channel
	// of the command or click, and who typed or clicked.
	Channel, User   string
	Text            string
	Blocks          json.RawMessage
	ResponseType    string
	ReplaceOriginal bool
	DeleteOriginal  bool
	Raw             []byte
	At              time.Time // when the post arrived
}

// Option configures a Server in New.
type Option func(*Server)

// WithPingInterval sets how often the server sends a WebSocket PING on each
// Socket Mode connection.
func WithPingInterval(d time.Duration) Option {
	return func(s *Server) { s.PingInterval = d }
}

type fault struct {
	n          int
	retryAfter time.Duration // rate limits
	slackError string        // failures
}

type ack struct {
	payload json.RawMessage
	at      time.Time
}

// responseTarget is the message a response URL can replace or delete, and
// who it answers.
type responseTarget struct {
	channel, ts, user string
	uses              int // posts accepted so far
}

// MaxResponsePosts is how many posts a response URL accepts, as Slack
// documents; later ones are answered 404 used_url.
const MaxResponsePosts = 5

// Server is a running fake Slack. Create it with New and stop it with Close.
type Server struct {
	// PingInterval is how often each socket connection gets a WebSocket
	// PING. Set it before the first connection; zero means
	// DefaultPingInterval.
	PingInterval time.Duration

	srv      *httptest.Server
	upgrader websocket.Upgrader
	clock    func() time.Time // when Web API calls arrive; time.Now but in tests of the rate model
	wg       sync.WaitGroup   // socket handlers and pingers

	mu               sync.Mutex
	closed           bool
	users            map[string]User
	channels         map[string]Channel
	userOrder        []string
	groups           map[string][]string
	openedDMs        map[string]bool
	calls            []Call
	msgs             []*Message // non-ephemeral, post order
	ephemerals       []Message
	responses        []ResponsePost
	responseURLs     map[string]*responseTarget // by path id
	responseFaults   []responseFault            // the next response URL posts' failures, in order
	scopes           []string                   // X-OAuth-Scopes of bot-token answers
	refused          map[string]string          // channel -> the error every chat.postMessage there gets
	envelopeResponse map[string]string          // envelope id -> the response_url it carried
	rateLimits       map[string]*fault
	failures         map[string]*fault
	tickets          map[string]bool // socket URL ids issued and not yet used
	conns            []*wsConn       // open and not told to disconnect
	draining         []*wsConn       // open, sent a disconnect
	totalConns       int
	rr               int
	pending          []frame
	sendCount        map[string]int // envelope id -> times written
	sentAt           map[string]time.Time
	acks             map[string]ack
	changes          []Change
	triggers         map[string]*trigger // trigger_id -> who got it, when, whether used (views.go)
	views            []View              // every view opened or published, in order
	homes            map[string]View     // user -> the Home view published last

	// Rate limits: see ratelimit.go.
	limits    Limits
	buckets   map[string]*bucket   // by key
	windows   map[string]time.Time // by key: when the announced Retry-After ends
	answered  map[string]time.Time // by key: when the 429 that opened the window was answered
	throttles map[string]time.Time // by key: when Throttle* ends
	stats     RateStats

	seqTS       int
	seqEnvelope int
	seqResponse int
	seqTrigger  int
	seqSocket   int
}

// New starts a server on a local port. Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		PingInterval:     DefaultPingInterval,
		clock:            time.Now,
		upgrader:         websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		users:            map[string]User{},
		channels:         map[string]Channel{},
		groups:           map[string][]string{},
		openedDMs:        map[string]bool{},
		responseURLs:     map[string]*responseTarget{},
		envelopeResponse: map[string]string{},
		scopes:           slices.Clone(DefaultScopes),
		refused:          map[string]string{},
		rateLimits:       map[string]*fault{},
		failures:         map[string]*fault{},
		tickets:          map[string]bool{},
		sendCount:        map[string]int{},
		sentAt:           map[string]time.Time{},
		acks:             map[string]ack{},
		throttles:        map[string]time.Time{},
		stats:            newRateStats(),
	}
	s.setLimitsLocked(Limits{})
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/response/", s.handleResponseURL)
	mux.HandleFunc("/socket/", s.handleSocket)
	mux.HandleFunc("/", s.handleOther)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL returns the server's base URL, like "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.srv.URL }

// APIURL returns the Web API base URL ending in "/api/", for
// slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Close closes every socket connection abruptly, stops the HTTP server and
// waits for the server's goroutines. Clients should be stopped first, or
// they will keep trying to reconnect.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := slices.Concat(s.conns, s.draining)
	s.conns, s.draining = nil, nil
	s.mu.Unlock()
	for _, c := range conns {
		c.kill()
	}
	s.srv.Close()
	s.wg.Wait()
}

// AddUser adds u to the directory, replacing any user with the same ID.
func (s *Server) AddUser(u User) {
	if u.TeamID == "" {
		u.TeamID = TeamID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; !ok {
		s.userOrder = append(s.userOrder, u.ID)
	}
	s.users[u.ID] = u
}

// AddChannel adds c for conversations.info and chat.postMessage, replacing
// any channel with the same ID. Channels never added accept every post, as
// if the bot were in them, but conversations.info does not know them.
func (s *Server) AddChannel(c Channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[c.ID] = c
}

// AddUserGroup sets the members of user group id (an "S..." id).
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(members)
}

// DefaultScopes are the bot scopes the server reports (X-OAuth-Scopes) until
// SetScopes changes them: those of the repository's manifest.yaml.
var DefaultScopes = []string{"commands", "chat:write", "im:write", "users:read", "users:read.email", "usergroups:read", "channels:read", "groups:read"}

// RefuseChannel makes every chat.postMessage to channel fail with
// slackError (such as "not_in_channel"); "" lifts it.
func (s *Server) RefuseChannel(channel, slackError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[channel] = slackError
}

// SetScopes sets the bot token's scopes the server reports.
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = slices.Clone(scopes)
}

// DMChannel returns the id of the bot's DM channel with user, as
// conversations.open returns it: "D" + user.
func DMChannel(user string) string { return "D" + user }

// Calls returns the requests received for method, or all of them when
// method is "", in the order they were answered.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			c.Params = cloneValues(c.Params)
			c.Body = bytes.Clone(c.Body)
			out = append(out, c)
		}
	}
	return out
}

// Messages returns the current state of the non-ephemeral messages in
// channel (all channels when channel is ""), in post order.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if channel == "" || m.Channel == channel {
			out = append(out, copyMessage(*m))
		}
	}
	return out
}

// Message returns the current state of the non-ephemeral message ts in
// channel.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.findLocked(channel, ts); m != nil {
		return copyMessage(*m), true
	}
	return Message{}, false
}

// Ephemerals returns every ephemeral message posted, in post order.
func (s *Server) Ephemerals() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.ephemerals))
	for _, m := range s.ephemerals {
		out = append(out, copyMessage(m))
	}
	return out
}

// ResponsePosts returns every accepted response_url post, in order.
func (s *Server) ResponsePosts() []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ResponsePost, 0, len(s.responses))
	for _, p := range s.responses {
		p.Blocks = bytes.Clone(p.Blocks)
		p.Raw = bytes.Clone(p.Raw)
		out = append(out, p)
	}
	return out
}

// Replies returns the posts to the response_url of the envelope (a slash
// command or click sent by SlashCommand or Click), in order.
func (s *Server) Replies(envelopeID string) []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	url := s.envelopeResponse[envelopeID]
	var out []ResponsePost
	for _, r := range s.responses {
		if url != "" && r.URL == url {
			out = append(out, r)
		}
	}
	return out
}

// WaitReply waits for the first post to the envelope's response_url.
func (s *Server) WaitReply(ctx context.Context, envelopeID string) (ResponsePost, error) {
	var r ResponsePost
	err := s.WaitFor(ctx, func() bool {
		rs := s.Replies(envelopeID)
		if len(rs) > 0 {
			r = rs[0]
		}
		return len(rs) > 0
	})
	return r, err
}

// WaitFor calls cond every 10ms until it returns true or ctx is done.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("slacktest: condition not met: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// RateLimit makes the next n calls of method answer HTTP 429 with
// Retry-After set to retryAfter in whole seconds, rounded up, at least 1.
// It replaces any rate limit pending for method. These answers come before
// the modelled limits (see Limits) and announce no window: the call after
// the n-th is answered as usual, whenever it comes. For a key that stays
// limited for a while, see ThrottleChannel and ThrottleMethod.
func (s *Server) RateLimit(method string, n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimits[method] = &fault{n: n, retryAfter: retryAfter}
}

// FailNext makes the next n calls of method answer
// {"ok":false,"error":slackError}. It replaces any failure pending for
// method. Rate limits set with RateLimit are served first.
func (s *Server) FailNext(method, slackError string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = &fault{n: n, slackError: slackError}
}

func (s *Server) findLocked(channel, ts string) *Message {
	for _, m := range s.msgs {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

func (s *Server) deleteLocked(channel, ts string, at time.Time) bool {
	for i, m := range s.msgs {
		if m.Channel == channel && m.TS == ts {
			s.changedLocked(ChangeDeleted, *m, at)
			s.msgs = slices.Delete(s.msgs, i, i+1)
			return true
		}
	}
	return false
}

// nextTSLocked returns a new message timestamp, greater than all before.
func (s *Server) nextTSLocked() string {
	s.seqTS++
	return fmt.Sprintf("%d.%06d", 1700000000+s.seqTS/1000000, s.seqTS%1000000)
}

// newResponseURLLocked issues a response URL for user's command or click
// in channel that may replace or delete the message ts there (if that
// message exists when it is used).
func (s *Server) newResponseURLLocked(channel, ts, user string) string {
	s.seqResponse++
	id := fmt.Sprint(s.seqResponse)
	s.responseURLs[id] = &responseTarget{channel: channel, ts: ts, user: user}
	return s.srv.URL + "/response/" + id
}

func (s *Server) recordLocked(method string, params url.Values, body []byte, status int, at time.Time) {
	s.calls = append(s.calls, Call{Method: method, Params: params, Body: body, Status: status, At: at})
}

func copyMessage(m Message) Message {
	m.Blocks = bytes.Clone(m.Blocks)
	return m
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := maps.Clone(v)
	for k, vs := range out {
		out[k] = slices.Clone(vs)
	}
	return out
}

// ChangeKind says what happened to a message.
type ChangeKind string

// The kinds of Change.
const (
	ChangePosted    ChangeKind = "posted"    // chat.postMessage
	ChangeEphemeral ChangeKind = "ephemeral" // chat.postEphemeral
	ChangeResponded ChangeKind = "responded" // a new ephemeral message through a response URL (neither replace nor delete): Message.User is who it answers
	ChangeUpdated   ChangeKind = "updated"   // chat.update, or replace_original through a response URL
	ChangeDeleted   ChangeKind = "deleted"   // chat.delete, or delete_original through a response URL
)

// Change is one change to the messages the server holds. Message is the
// message as it was right after the change (for a deletion, as it was
// before), and At the time the call that made it arrived.
type Change struct {
	Seq     int // 1 for the first change, then 2, 3, ...
	Kind    ChangeKind
	At      time.Time
	Message Message
}

// Changes returns the changes with Seq greater than after, oldest first, so
// that a test can follow every post and update as it happens by passing
// the Seq of the last change it saw (0 at first).
func (s *Server) Changes(after int) []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	after = max(0, min(after, len(s.changes)))
	out := make([]Change, 0, len(s.changes)-after)
	for _, c := range s.changes[after:] {
		c.Message = copyMessage(c.Message)
		out = append(out, c)
	}
	return out
}

// History returns the changes of the message ts in channel (ephemeral or
// not), oldest first: when it was posted and every update since.
func (s *Server) History(channel, ts string) []Change {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Change
	for _, c := range s.changes {
		if c.Message.Channel == channel && c.Message.TS == ts {
			c.Message = copyMessage(c.Message)
			out = append(out, c)
		}
	}
	return out
}

func (s *Server) changedLocked(kind ChangeKind, m Message, at time.Time) {
	s.changes = append(s.changes, Change{Seq: len(s.changes) + 1, Kind: kind, At: at, Message: copyMessage(m)})
}

// ResponseURL returns the response URL the envelope envelopeID carried
// (a slash command or a click), "" if none.
func (s *Server) ResponseURL(envelopeID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.envelopeResponse[envelopeID]
}
