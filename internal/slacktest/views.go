package slacktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Views: modals opened with views.open on a trigger_id, their
// view_submission payloads (SubmitView), Home tabs published with
// views.publish, the app_home_opened event (OpenHome) and clicks on a
// Home view's buttons (ClickHome), modelled on Slack's documented
// payloads and limits (docs.slack.dev: surfaces/modals, surfaces/app-home,
// reference/methods/views.open and views.publish,
// reference/interaction-payloads).

// TriggerLife is how long a trigger_id may open a view: Slack's 3 seconds.
const TriggerLife = 3 * time.Second

// trigger is a trigger_id the server issued with a command or a click.
type trigger struct {
	user string
	at   time.Time
	used bool
}

// View is a view the bot opened (a modal) or published (a Home tab), as
// it was sent.
type View struct {
	ID              string
	Type            string // "modal" or "home"
	User            string // who sees it: the trigger's user, or views.publish's user_id
	CallbackID      string
	PrivateMetadata string
	Title           string // a modal's title text
	Blocks          json.RawMessage
	Raw             json.RawMessage // the view object as sent
	At              time.Time
}

// viewJSON is the part of a view object the server checks.
type viewJSON struct {
	Type            string `json:"type"`
	CallbackID      string `json:"callback_id"`
	PrivateMetadata string `json:"private_metadata"`
	Title           *struct {
		Text string `json:"text"`
	} `json:"title"`
	Submit *struct {
		Text string `json:"text"`
	} `json:"submit"`
	Close *struct {
		Text string `json:"text"`
	} `json:"close"`
	Blocks json.RawMessage `json:"blocks"`
}

// parseView checks a view as Slack's documented limits say: its type,
// at most 100 blocks with unique block IDs, private_metadata up to 3000
// characters, callback_id up to 255, and for a modal a title, submit and
// close up to 24 characters, a submit when it has an input block.
func parseView(raw, want string) (viewJSON, []map[string]any, string) {
	var v viewJSON
	if raw == "" || json.Unmarshal([]byte(raw), &v) != nil {
		return v, nil, "invalid_arguments"
	}
	var blocks []map[string]any
	if json.Unmarshal(v.Blocks, &blocks) != nil || len(blocks) > 100 {
		return v, nil, "invalid_blocks"
	}
	ids := map[string]bool{}
	inputs := 0
	for _, b := range blocks {
		if b["type"] == "input" {
			inputs++
		}
		if id, _ := b["block_id"].(string); id != "" {
			if ids[id] {
				return v, nil, "duplicate_block_id"
			}
			ids[id] = true
		}
	}
	switch {
	case v.Type != want:
		return v, nil, "invalid_arguments"
	case utf8.RuneCountInString(v.PrivateMetadata) > 3000, len(v.CallbackID) > 255:
		return v, nil, "invalid_arguments"
	case want == "modal" && (v.Title == nil || v.Title.Text == "" || utf8.RuneCountInString(v.Title.Text) > 24):
		return v, nil, "invalid_arguments"
	case want == "modal" && inputs > 0 && (v.Submit == nil || v.Submit.Text == ""):
		return v, nil, "invalid_arguments"
	case want == "modal" && (v.Submit != nil && utf8.RuneCountInString(v.Submit.Text) > 24 || v.Close != nil && utf8.RuneCountInString(v.Close.Text) > 24):
		return v, nil, "invalid_arguments"
	}
	return v, blocks, ""
}

func (s *Server) newViewLocked(v viewJSON, raw, user string, now time.Time) View {
	title := ""
	if v.Title != nil {
		title = v.Title.Text
	}
	view := View{ID: "V" + strconv.Itoa(len(s.views)+1), Type: v.Type, User: user, CallbackID: v.CallbackID,
		PrivateMetadata: v.PrivateMetadata, Title: title, Blocks: v.Blocks, Raw: json.RawMessage(raw), At: now}
	s.views = append(s.views, view)
	return view
}

func viewObj(v View) obj {
	return obj{"id": v.ID, "type": v.Type, "callback_id": v.CallbackID, "private_metadata": v.PrivateMetadata,
		"blocks": v.Blocks, "team_id": TeamID, "app_id": AppID, "bot_id": BotID}
}

// viewsOpen opens a modal on a trigger_id issued within TriggerLife and
// never used before.
func (s *Server) viewsOpen(p url.Values, now time.Time) obj {
	t, ok := s.triggers[p.Get("trigger_id")]
	switch {
	case !ok:
		return errObj("invalid_trigger_id")
	case t.used:
		return errObj("exchanged_trigger_id")
	case now.Sub(t.at) > TriggerLife:
		return errObj("expired_trigger_id")
	}
	v, _, problem := parseView(p.Get("view"), "modal")
	if problem != "" {
		return errObj(problem)
	}
	t.used = true
	return obj{"ok": true, "view": viewObj(s.newViewLocked(v, p.Get("view"), t.user, now))}
}

// viewsPublish publishes a user's Home tab.
func (s *Server) viewsPublish(p url.Values, now time.Time) obj {
	user := p.Get("user_id")
	if _, ok := s.users[user]; !ok {
		return errObj("invalid_arguments")
	}
	v, _, problem := parseView(p.Get("view"), "home")
	if problem != "" {
		return errObj(problem)
	}
	if len(p.Get("view")) > 250_000 {
		return errObj("view_too_large")
	}
	view := s.newViewLocked(v, p.Get("view"), user, now)
	if s.homes == nil {
		s.homes = map[string]View{}
	}
	s.homes[user] = view
	return obj{"ok": true, "view": viewObj(view)}
}

// Views returns every view opened or published, in order; with user set,
// only those user sees.
func (s *Server) Views(user string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, v := range s.views {
		if user == "" || v.User == user {
			out = append(out, v)
		}
	}
	return out
}

// Home returns the Home view last published for user.
func (s *Server) Home(user string) (View, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.homes[user]
	return v, ok
}

// SubmitView sends the view_submission of the modal v (as opened) by its
// user with the plain-text input values given as block_id -> action_id
// -> value, and returns the envelope id; the client's ack payload (a
// response_action) is what Slack would act on (Ack, WaitAck).
func (s *Server) SubmitView(v View, values map[string]map[string]string) string {
	state := obj{}
	for block, actions := range values {
		st := obj{}
		for action, value := range actions {
			st[action] = obj{"type": "plain_text_input", "value": value}
		}
		state[block] = st
	}
	s.mu.Lock()
	name := v.User
	if u, ok := s.users[v.User]; ok && u.Name != "" {
		name = u.Name
	}
	var view obj
	_ = json.Unmarshal(v.Raw, &view)
	view["id"], view["team_id"], view["app_id"], view["bot_id"] = v.ID, TeamID, AppID, BotID
	view["state"] = obj{"values": state}
	view["hash"] = "1700000000.abc"
	payload := obj{"type": "view_submission", "api_app_id": AppID, "token": "verification-token",
		"team": obj{"id": TeamID, "domain": "slacktest"},
		"user": obj{"id": v.User, "username": name, "name": name, "team_id": TeamID},
		"view": view, "trigger_id": s.newTriggerLocked(v.User), "response_urls": []obj{}}
	s.mu.Unlock()
	return s.Send("interactive", payload)
}

// OpenHome sends the app_home_opened event of user opening the app's
// Home tab (tab "home"), in its Events API wrapper, as Socket Mode
// delivers it; the event carries the view last published for user, if
// any. It returns the envelope id.
func (s *Server) OpenHome(user string) string {
	s.mu.Lock()
	event := obj{"type": "app_home_opened", "user": user, "channel": DMChannel(user), "tab": "home",
		"event_ts": fmt.Sprintf("%.6f", float64(s.clock().UnixMicro())/1e6)}
	if v, ok := s.homes[user]; ok {
		event["view"] = viewObj(v)
	}
	s.seqEnvelope++
	payload := obj{"token": "verification-token", "team_id": TeamID, "api_app_id": AppID, "type": "event_callback",
		"event_id": "Ev" + strconv.Itoa(s.seqEnvelope), "event_time": s.clock().Unix(), "event": event}
	id := envelopeID(s.seqEnvelope)
	s.mu.Unlock()
	s.SendTo(-1, id, "events_api", payload)
	return id
}

// ClickHome sends a click by user on the button actionID with value in
// their Home view, as Slack sends it: container type "view", the view,
// a trigger_id, and neither a channel nor a response_url. It returns the
// envelope id.
func (s *Server) ClickHome(user, actionID, value string) string {
	s.mu.Lock()
	v := s.homes[user]
	name := cmp.Or(s.users[user].Name, user)
	blockID := "slacktest_block"
	var blocks []map[string]any
	if json.Unmarshal(v.Blocks, &blocks) == nil {
		i := slices.IndexFunc(blocks, func(b map[string]any) bool {
			js, _ := json.Marshal(b["elements"])
			return b["type"] == "actions" && strings.Contains(string(js), `"action_id":"`+actionID+`"`) && strings.Contains(string(js), `"value":"`+value+`"`)
		})
		if i >= 0 {
			blockID, _ = blocks[i]["block_id"].(string)
		}
	}
	payload := obj{"type": "block_actions", "api_app_id": AppID, "token": "verification-token",
		"user":       obj{"id": user, "username": name, "name": name, "team_id": TeamID},
		"team":       obj{"id": TeamID, "domain": "slacktest"},
		"container":  obj{"type": "view", "view_id": v.ID},
		"view":       viewObj(v),
		"trigger_id": s.newTriggerLocked(user),
		"actions": []obj{{"action_id": actionID, "block_id": blockID, "type": "button", "value": value,
			"action_ts": fmt.Sprintf("%.6f", float64(time.Now().UnixMicro())/1e6), "text": obj{"type": "plain_text", "text": actionID}}}}
	s.mu.Unlock()
	return s.Send("interactive", payload)
}

// NewTrigger issues a trigger_id of user's, for a test that hands the
// client events of its own making rather than sending them.
func (s *Server) NewTrigger(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newTriggerLocked(user)
}
