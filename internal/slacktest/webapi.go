package slacktest

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

type obj = map[string]any

func errObj(slackError string) obj { return obj{"ok": false, "error": slackError} }

// apiMethod is a Web API method: the token it requires and its handler,
// which runs with s.mu held.
type apiMethod struct {
	token string
	fn    func(s *Server, p url.Values, now time.Time) obj
}

var apiMethods = map[string]apiMethod{
	"auth.test":             {BotToken, (*Server).authTest},
	"apps.connections.open": {AppToken, (*Server).appsConnectionsOpen},
	"chat.postMessage":      {BotToken, (*Server).chatPostMessage},
	"chat.postEphemeral":    {BotToken, (*Server).chatPostEphemeral},
	"chat.update":           {BotToken, (*Server).chatUpdate},
	"chat.delete":           {BotToken, (*Server).chatDelete},
	"conversations.open":    {BotToken, (*Server).conversationsOpen},
	"conversations.info":    {BotToken, (*Server).conversationsInfo},
	"users.info":            {BotToken, (*Server).usersInfo},
	"users.lookupByEmail":   {BotToken, (*Server).usersLookupByEmail},
	"users.list":            {BotToken, (*Server).usersList},
	"usergroups.users.list": {BotToken, (*Server).usergroupsUsersList},
	"views.open":            {BotToken, (*Server).viewsOpen},
	"views.publish":         {BotToken, (*Server).viewsPublish},
}

func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	at := s.clock()
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, _ := io.ReadAll(r.Body)
	params := parseParams(r, body)
	token := params.Get("token")
	if token == "" {
		token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}

	s.mu.Lock()
	s.stats.Calls[method]++
	status, retryAfter, opened, resp := s.dispatchLocked(method, token, params, at)
	s.recordLocked(method, params, body, status, at)
	// The 429 counts as answered now, before it is written: once the
	// client has it, any call it makes is one it was told to hold back
	// (recording it after the write raced with the client's next call).
	s.answeredLocked(opened, s.clock())
	s.mu.Unlock()

	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	if token == BotToken {
		s.mu.Lock()
		w.Header().Set("X-OAuth-Scopes", strings.Join(s.scopes, ","))
		s.mu.Unlock()
	}
	writeJSON(w, status, resp)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// dispatchLocked answers one Web API call: injected rate limits first, then
// modelled ones (see Limits), then injected failures, then unknown
// methods, then authentication, then the method itself.
// opened names the key whose Retry-After window a 429 answer opens.
func (s *Server) dispatchLocked(method, token string, p url.Values, now time.Time) (status int, retryAfter, opened string, resp obj) {
	if f := s.rateLimits[method]; f != nil && f.n > 0 {
		f.n--
		secs := max(1, int(math.Ceil(f.retryAfter.Seconds())))
		s.stats.Limited[method]++
		s.stats.LimitedByKey[method]++
		return http.StatusTooManyRequests, strconv.Itoa(secs), "", errObj("ratelimited")
	}
	if secs, key := s.limitLocked(method, p, now); secs > 0 {
		return http.StatusTooManyRequests, strconv.Itoa(secs), key, errObj("ratelimited")
	}
	if f := s.failures[method]; f != nil && f.n > 0 {
		f.n--
		return http.StatusOK, "", "", errObj(f.slackError)
	}
	m, ok := apiMethods[method]
	if !ok {
		return http.StatusOK, "", "", errObj("unknown_method")
	}
	if token != m.token {
		return http.StatusOK, "", "", errObj("invalid_auth")
	}
	return http.StatusOK, "", "", m.fn(s, p, now)
}

func (s *Server) authTest(url.Values, time.Time) obj {
	return obj{"ok": true, "url": "https://slacktest.slack.com/", "team": "Slack Test",
		"user": "resetbot", "team_id": TeamID, "user_id": BotUserID, "bot_id": BotID}
}

func (s *Server) appsConnectionsOpen(url.Values, time.Time) obj {
	s.seqSocket++
	id := strconv.Itoa(s.seqSocket)
	s.tickets[id] = true
	return obj{"ok": true, "url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/socket/" + id}
}

func (s *Server) chatPostMessage(p url.Values, now time.Time) obj {
	ch := normalizeChannel(p.Get("channel"))
	if ch == "" {
		return errObj("channel_not_found")
	}
	if e := s.refused[ch]; e != "" {
		return errObj(e)
	}
	if c, ok := s.channels[ch]; ok {
		switch {
		case c.Private && !c.Member:
			return errObj("channel_not_found")
		case c.Archived:
			return errObj("is_archived")
		case !c.Member:
			return errObj("not_in_channel")
		case c.ReadOnly:
			return errObj("restricted_action")
		}
	}
	blocks, ok := blocksParam(p)
	if !ok {
		return errObj("invalid_blocks")
	}
	text := p.Get("text")
	if text == "" && !hasBlocks(blocks) && p.Get("attachments") == "" {
		return errObj("no_text")
	}
	m := &Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: p.Get("thread_ts"), Text: text,
		User: BotUserID, Blocks: blocks, PostedAt: now}
	s.msgs = append(s.msgs, m)
	s.changedLocked(ChangePosted, *m, now)
	return obj{"ok": true, "channel": ch, "ts": m.TS, "message": messageObj(m)}
}

func (s *Server) chatPostEphemeral(p url.Values, now time.Time) obj {
	ch := normalizeChannel(p.Get("channel"))
	if ch == "" {
		return errObj("channel_not_found")
	}
	user := p.Get("user")
	if user == "" {
		return errObj("user_not_found")
	}
	blocks, ok := blocksParam(p)
	if !ok {
		return errObj("invalid_blocks")
	}
	text := p.Get("text")
	if text == "" && !hasBlocks(blocks) && p.Get("attachments") == "" {
		return errObj("no_text")
	}
	m := Message{Channel: ch, TS: s.nextTSLocked(), ThreadTS: p.Get("thread_ts"), Text: text,
		User: user, Blocks: blocks, Ephemeral: true, PostedAt: now}
	s.ephemerals = append(s.ephemerals, m)
	s.changedLocked(ChangeEphemeral, m, now)
	return obj{"ok": true, "message_ts": m.TS}
}

// chatUpdate replaces the text if "text" is sent and the blocks if
// "blocks" is sent, as Slack keeps omitted blocks.
func (s *Server) chatUpdate(p url.Values, now time.Time) obj {
	ch := normalizeChannel(p.Get("channel"))
	m := s.findLocked(ch, p.Get("ts"))
	if m == nil {
		return errObj("message_not_found")
	}
	blocks, ok := blocksParam(p)
	if !ok {
		return errObj("invalid_blocks")
	}
	if p.Has("text") {
		m.Text = p.Get("text")
	}
	if p.Has("blocks") {
		m.Blocks = blocks
	}
	m.Updates++
	m.UpdatedAt = now
	s.changedLocked(ChangeUpdated, *m, now)
	return obj{"ok": true, "channel": ch, "ts": m.TS, "text": m.Text, "message": messageObj(m)}
}

func (s *Server) chatDelete(p url.Values, now time.Time) obj {
	ch, ts := normalizeChannel(p.Get("channel")), p.Get("ts")
	if !s.deleteLocked(ch, ts, now) {
		return errObj("message_not_found")
	}
	return obj{"ok": true, "channel": ch, "ts": ts}
}

// conversationsOpen opens the DM DMChannel(user) for one user, or a
// multi-person DM "G"+ids joined by "-" for several.
func (s *Server) conversationsOpen(p url.Values, _ time.Time) obj {
	var users []string
	for u := range strings.SplitSeq(p.Get("users"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			users = append(users, u)
		}
	}
	if len(users) == 0 {
		if ch := p.Get("channel"); ch != "" {
			return obj{"ok": true, "channel": obj{"id": ch}, "no_op": true, "already_open": true}
		}
		return errObj("users_list_not_supplied")
	}
	for _, u := range users {
		if _, ok := s.users[u]; !ok {
			return errObj("user_not_found")
		}
	}
	ch := obj{"id": "G" + strings.Join(users, "-"), "is_mpim": true}
	if len(users) == 1 {
		ch = obj{"id": DMChannel(users[0]), "is_im": true, "user": users[0]}
	}
	id := ch["id"].(string)
	already := s.openedDMs[id]
	s.openedDMs[id] = true
	return obj{"ok": true, "channel": ch, "no_op": already, "already_open": already}
}

// conversationsInfo answers for the DMs and the channels added with
// AddChannel. Like Slack, it wants channels:read for a public channel and
// groups:read for a private one, and hides a private channel the bot is
// not in.
func (s *Server) conversationsInfo(p url.Values, _ time.Time) obj {
	id := p.Get("channel")
	if user, ok := strings.CutPrefix(id, "D"); ok {
		if _, known := s.users[user]; known {
			return obj{"ok": true, "channel": obj{"id": id, "is_im": true, "user": user, "is_open": s.openedDMs[id]}}
		}
	}
	c, ok := s.channels[id]
	if !ok || c.Private && !c.Member {
		return errObj("channel_not_found")
	}
	scope := "channels:read"
	if c.Private {
		scope = "groups:read"
	}
	if !slices.Contains(s.scopes, scope) {
		return obj{"ok": false, "error": "missing_scope", "needed": scope, "provided": strings.Join(s.scopes, ",")}
	}
	return obj{"ok": true, "channel": obj{"id": c.ID, "name": c.Name, "name_normalized": c.Name,
		"is_channel": !c.Private, "is_group": c.Private, "is_private": c.Private, "is_archived": c.Archived,
		"is_member": c.Member, "is_read_only": c.ReadOnly, "is_ext_shared": c.ExtShared, "is_shared": c.ExtShared}}
}

func (s *Server) usersInfo(p url.Values, _ time.Time) obj {
	u, ok := s.users[p.Get("user")]
	if !ok {
		return errObj("user_not_found")
	}
	return obj{"ok": true, "user": userObj(u)}
}

// usersLookupByEmail matches the address case-insensitively; the user added
// first wins.
func (s *Server) usersLookupByEmail(p url.Values, _ time.Time) obj {
	email := p.Get("email")
	for _, id := range s.userOrder {
		if u := s.users[id]; email != "" && strings.EqualFold(u.Email, email) {
			return obj{"ok": true, "user": userObj(u)}
		}
	}
	return errObj("users_not_found")
}

// usersList pages through the users in the order they were added: limit
// a page (Slack's default 100 when absent, at most 1000), the cursor an
// opaque position.
func (s *Server) usersList(p url.Values, _ time.Time) obj {
	limit, err := strconv.Atoi(p.Get("limit"))
	if p.Get("limit") == "" {
		limit, err = 100, nil
	}
	if err != nil || limit < 1 {
		return errObj("invalid_limit")
	}
	limit = min(limit, 1000)
	from := 0
	if c := p.Get("cursor"); c != "" {
		n, ok := strings.CutPrefix(c, "dXNlcjo")
		if from, err = strconv.Atoi(n); !ok || err != nil || from < 0 || from > len(s.userOrder) {
			return errObj("invalid_cursor")
		}
	}
	end := min(from+limit, len(s.userOrder))
	members := []obj{}
	for _, id := range s.userOrder[from:end] {
		members = append(members, userObj(s.users[id]))
	}
	next := ""
	if end < len(s.userOrder) {
		next = "dXNlcjo" + strconv.Itoa(end)
	}
	return obj{"ok": true, "members": members, "cache_ts": 0, "response_metadata": obj{"next_cursor": next}}
}

func (s *Server) usergroupsUsersList(p url.Values, _ time.Time) obj {
	members, ok := s.groups[p.Get("usergroup")]
	if !ok {
		return errObj("no_such_subteam")
	}
	return obj{"ok": true, "users": append([]string{}, members...)}
}

func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	params := parseParams(r, body)
	s.mu.Lock()
	status, resp := s.responseLocked(r, body, at)
	s.stats.Calls["response_url"]++
	s.recordLocked("response_url", params, body, status, at)
	s.mu.Unlock()
	writeJSON(w, status, resp)
}

// responseLocked handles a post to a response URL. replace_original
// replaces the text and blocks of the message the URL came with (a Click's
// message), delete_original deletes it.
func (s *Server) responseLocked(r *http.Request, body []byte, at time.Time) (int, obj) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, errObj("method_not_allowed")
	}
	target, ok := s.responseURLs[strings.TrimPrefix(r.URL.Path, "/response/")]
	if !ok {
		return http.StatusNotFound, errObj("invalid_response_url")
	}
	if len(s.responseFaults) > 0 {
		f := s.responseFaults[0]
		s.responseFaults = s.responseFaults[1:]
		return f.status, errObj(f.slackError)
	}
	if target.uses >= MaxResponsePosts {
		return http.StatusNotFound, errObj("used_url")
	}
	var in struct {
		Text            string          `json:"text"`
		Blocks          json.RawMessage `json:"blocks"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		DeleteOriginal  bool            `json:"delete_original"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return http.StatusBadRequest, errObj("invalid_payload")
	}
	if string(in.Blocks) == "null" {
		in.Blocks = nil
	}
	target.uses++
	s.responses = append(s.responses, ResponsePost{URL: s.srv.URL + r.URL.Path, Channel: target.channel, User: target.user,
		Text: in.Text, Blocks: in.Blocks, ResponseType: in.ResponseType, ReplaceOriginal: in.ReplaceOriginal,
		DeleteOriginal: in.DeleteOriginal, Raw: body, At: at})
	switch m := s.findLocked(target.channel, target.ts); {
	case !in.ReplaceOriginal && !in.DeleteOriginal:
		// A new message, shown to whoever the URL answers: ephemeral,
		// unless in_channel.
		s.changedLocked(ChangeResponded, Message{Channel: target.channel, TS: s.nextTSLocked(), Text: in.Text,
			User: target.user, Blocks: in.Blocks, Ephemeral: in.ResponseType != "in_channel", PostedAt: at}, at)
	case m == nil:
	case in.DeleteOriginal:
		s.deleteLocked(target.channel, target.ts, at)
	case in.ReplaceOriginal:
		m.Text, m.Blocks = in.Text, in.Blocks
		m.Updates++
		m.UpdatedAt = at
		s.changedLocked(ChangeUpdated, *m, at)
	}
	return http.StatusOK, obj{"ok": true}
}

// responseFault is how a response URL post is to fail.
type responseFault struct {
	status     int
	slackError string
}

// FailResponses makes the next n posts to any response URL fail without
// effect: answered with HTTP status and {"ok":false,"error":slackError}
// (status 200 with an error is what Slack answers some failures with;
// 404 what it answers an expired or used-up URL with).
func (s *Server) FailResponses(status int, slackError string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.responseFaults = append(s.responseFaults, responseFault{status, slackError})
	}
}

func (s *Server) handleOther(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.recordLocked(r.URL.Path, parseParams(r, body), body, http.StatusNotFound, at)
	s.mu.Unlock()
	writeJSON(w, http.StatusNotFound, errObj("not_found"))
}

// parseParams returns the query values plus the form values of a
// form-encoded body or the top-level fields of a JSON body (an object or
// array field as its JSON, as Slack takes "view" in either form).
func parseParams(r *http.Request, body []byte) url.Values {
	p := r.URL.Query()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			for k, v := range m {
				switch v := v.(type) {
				case string:
					p.Add(k, v)
				case map[string]any, []any:
					b, _ := json.Marshal(v)
					p.Add(k, string(b))
				}
			}
		}
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		for k, vs := range form {
			p[k] = append(p[k], vs...)
		}
	}
	return p
}

// blocksParam returns the "blocks" parameter; ok is false if it is present
// but not a JSON array.
func blocksParam(p url.Values) (blocks json.RawMessage, ok bool) {
	b := p.Get("blocks")
	if b == "" {
		return nil, true
	}
	var arr []json.RawMessage
	if json.Unmarshal([]byte(b), &arr) != nil || arr == nil {
		return nil, false
	}
	return json.RawMessage(b), true
}

func hasBlocks(b json.RawMessage) bool {
	var arr []json.RawMessage
	return json.Unmarshal(b, &arr) == nil && len(arr) > 0
}

// normalizeChannel maps a user id used as a channel to the DM with the user.
func normalizeChannel(ch string) string {
	if len(ch) > 1 && (ch[0] == 'U' || ch[0] == 'W') {
		return DMChannel(ch)
	}
	return ch
}

func messageObj(m *Message) obj {
	o := obj{"type": "message", "user": m.User, "bot_id": BotID, "text": m.Text, "ts": m.TS}
	if m.ThreadTS != "" {
		o["thread_ts"] = m.ThreadTS
	}
	if m.Blocks != nil {
		o["blocks"] = m.Blocks
	}
	return o
}

func userObj(u User) obj {
	o := obj{"id": u.ID, "team_id": u.TeamID, "name": u.Name, "real_name": u.RealName,
		"deleted": u.Deleted, "is_bot": u.IsBot, "is_restricted": u.IsRestricted,
		"is_ultra_restricted": u.IsUltraRestricted, "is_stranger": u.IsStranger,
		"is_email_confirmed": !u.Unconfirmed,
		"profile": obj{"email": u.Email, "real_name": u.RealName, "real_name_normalized": u.RealName,
			"display_name": u.Name, "display_name_normalized": u.Name}}
	if u.TZ != "" {
		if loc, err := time.LoadLocation(u.TZ); err == nil {
			name, off := time.Now().In(loc).Zone()
			o["tz"], o["tz_label"], o["tz_offset"] = u.TZ, name, off
		}
	}
	if u.EnterpriseID != "" {
		o["enterprise_user"] = obj{"id": u.ID, "enterprise_id": u.EnterpriseID, "enterprise_name": "Test Org", "teams": []string{u.TeamID}}
	}
	return o
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
