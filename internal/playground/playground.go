// Package playground is the web page of `bot playground`: it shows what
// each person sees in a stand-in Slack (internal/slacktest) while the real
// bot talks to it, and lets a visitor act as any of them: type the slash
// command, click the buttons (real block_actions over Socket Mode), and make
// the stand-in directory (internal/dstest) answer with each of its errors.
//
// A person's screen holds what Slack would show them: the bot's messages
// in their DM, the answers only they see (ephemeral messages and answers to
// their own commands and clicks), the modal the bot opened for them (Deny's
// reason), and nothing of anyone else's; its Home tab is the view the bot
// publishes for them when they open it. The audit channel has a screen of
// its own. Every screen says that nothing real is touched.
package playground

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/example/resetbot/internal/dstest"
	"github.com/example/resetbot/internal/slacktest"
)

//go:embed page.html style.css app.js
var files embed.FS

var page = template.Must(template.ParseFS(files, "page.html"))

// Person is someone the visitor may act as.
type Person struct {
	ID, RealName, Email string
	Role                string // what the page says about them: "employee", "approver", ...
}

// Options describe the world the page shows.
type Options struct {
	Slack        *slacktest.Server
	Directory    *dstest.Server
	People       []Person
	AuditChannel string // its ID; its name is AuditName
	AuditName    string
	Accounts     []string // directory accounts the directory's error switch applies to
	Command      string   // the slash command, /reset-password
	Location     *time.Location
	Note         string // one more line for the banner, e.g. which directory guards run
}

// Exceptions are the answers the stand-in directory can be made to give to
// every reset (ResetUserPassword), in the order the page lists them.
var Exceptions = []string{
	"UserDoesNotExistException", "InvalidPasswordException", "DirectoryUnavailableException",
	"UnsupportedOperationException", "EntityDoesNotExistException", "ClientException",
	"ServiceException", "ThrottlingException", "AccessDeniedException",
}

// Server serves the page.
type Server struct {
	o Options

	mu      sync.Mutex
	sent    []sent                       // what the visitor sent, oldest first
	dirMode string                       // "" or the exception every reset answers
	closed  map[string]bool              // modals submitted or closed, by view ID
	refused map[string]map[string]string // a modal's inputs the bot asked to fix: block ID -> message
}

// sent is a command or click the visitor sent as someone.
type sent struct {
	envelope, user, text string
	command              bool
	at                   time.Time
}

// New returns the page's server.
func New(o Options) *Server {
	o.Location = cmp.Or(o.Location, time.Local)
	o.Command = cmp.Or(o.Command, slacktest.Command)
	return &Server{o: o, closed: map[string]bool{}, refused: map[string]map[string]string{}}
}

// Handler serves the page, its parts and the forms.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveScreen)
	mux.HandleFunc("GET /pane", s.servePane)
	mux.HandleFunc("POST /command", s.postCommand)
	mux.HandleFunc("POST /click", s.postClick)
	mux.HandleFunc("POST /view", s.postView)
	mux.HandleFunc("POST /directory", s.postDirectory)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	return localOnly(mux)
}

// localOnly refuses requests that name another host (DNS rebinding) and
// forms posted from another site.
func localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "the playground answers on 127.0.0.1 only", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodPost {
			if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
				http.Error(w, "forms come from the playground's own page only", http.StatusForbidden)
				return
			}
			if o := r.Header.Get("Origin"); o != "" {
				if u, err := url.Parse(o); err != nil || u.Host != r.Host {
					http.Error(w, "forms come from the playground's own page only", http.StatusForbidden)
					return
				}
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

// screen is what one screen shows.
type screen struct {
	View      string // person, audit, directory
	Tab       string // a person's: messages or home
	Who       Person
	Title     string
	Query     string
	People    []Person
	AuditName string
	Command   string
	Note      string
	Pane      template.HTML
	DirMode   string
	Errors    []string
}

func (s *Server) screenFor(r *http.Request) screen {
	q := r.URL.Query()
	sc := screen{View: cmp.Or(q.Get("view"), "person"), People: s.o.People, AuditName: s.o.AuditName,
		Command: s.o.Command, Note: s.o.Note, Errors: Exceptions}
	switch sc.View {
	case "audit":
		sc.Title = "#" + s.o.AuditName + ": the audit channel, as helpdesk sees it"
		sc.Query = "view=audit"
	case "directory":
		sc.Title = "The stand-in AWS Directory Service"
		sc.Query = "view=directory"
	default:
		sc.View = "person"
		sc.Who = s.person(q.Get("as"))
		sc.Tab = "messages"
		sc.Title = "What " + sc.Who.RealName + " (" + sc.Who.Role + ") sees in Slack"
		if q.Get("tab") == "home" {
			sc.Tab = "home"
			sc.Title = sc.Who.RealName + "'s Home tab of the app, as the bot publishes it"
		}
		sc.Query = personQuery(sc.Who.ID, sc.Tab)
	}
	s.mu.Lock()
	sc.DirMode = s.dirMode
	s.mu.Unlock()
	sc.Pane = s.pane(sc)
	return sc
}

func (s *Server) person(id string) Person {
	for _, p := range s.o.People {
		if p.ID == id {
			return p
		}
	}
	return s.o.People[0]
}

func (s *Server) serveScreen(w http.ResponseWriter, r *http.Request) {
	if q := r.URL.Query(); q.Get("tab") == "home" && cmp.Or(q.Get("view"), "person") == "person" {
		// Opening the tab is Slack's app_home_opened; the bot publishes
		// the view, which the pane shows once it is there.
		s.o.Slack.OpenHome(s.person(q.Get("as")).ID)
	}
	var b bytes.Buffer
	if err := page.ExecuteTemplate(&b, "page", s.screenFor(r)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes())
}

func (s *Server) servePane(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, s.screenFor(r).Pane)
}

// personQuery is the query of a person's screen: their messages, or with
// tab "home" their Home tab.
func personQuery(id, tab string) string {
	if tab == "home" {
		return "as=" + url.QueryEscape(id) + "&tab=home"
	}
	return "as=" + url.QueryEscape(id)
}

// back sends the browser to the screen a form was posted from.
func back(w http.ResponseWriter, r *http.Request, query string) {
	http.Redirect(w, r, "/?"+query, http.StatusSeeOther)
}

func (s *Server) postCommand(w http.ResponseWriter, r *http.Request) {
	who := s.person(r.FormValue("as"))
	text := strings.TrimSpace(r.FormValue("text"))
	env := s.o.Slack.SlashCommand(who.ID, text)
	s.remember(sent{envelope: env, user: who.ID, text: strings.TrimSpace(s.o.Command + " " + text), command: true, at: time.Now()})
	back(w, r, "as="+url.QueryEscape(who.ID))
}

func (s *Server) postClick(w http.ResponseWriter, r *http.Request) {
	who := s.person(r.FormValue("as"))
	if r.FormValue("surface") == "home" {
		env := s.o.Slack.ClickHome(who.ID, r.FormValue("action"), r.FormValue("value"))
		s.remember(sent{envelope: env, user: who.ID, at: time.Now()})
		back(w, r, personQuery(who.ID, "home"))
		return
	}
	env := s.o.Slack.Click(slacktest.Click{User: who.ID, ActionID: r.FormValue("action"), Value: r.FormValue("value"),
		Channel: r.FormValue("channel"), MessageTS: r.FormValue("ts")})
	s.remember(sent{envelope: env, user: who.ID, at: time.Now()})
	back(w, r, "as="+url.QueryEscape(who.ID))
}

// postView submits or closes the modal the bot opened for the visitor's
// person: a submission carries the modal's inputs (fields named
// "input.BLOCK.ACTION"); when the bot's ack asks to fix an input, the modal
// stays open and says what to fix, as Slack's does.
func (s *Server) postView(w http.ResponseWriter, r *http.Request) {
	who := s.person(r.FormValue("as"))
	query := personQuery(who.ID, r.FormValue("tab"))
	v, ok := s.openModal(who.ID)
	if !ok || v.ID != r.FormValue("view") {
		back(w, r, query) // closed meanwhile, or another modal is open now
		return
	}
	if r.FormValue("op") != "submit" {
		s.mu.Lock()
		s.closed[v.ID] = true
		s.mu.Unlock()
		back(w, r, query)
		return
	}
	values := map[string]map[string]string{}
	for name, vs := range r.PostForm {
		field, ok := strings.CutPrefix(name, "input.")
		block, action, ok2 := strings.Cut(field, ".")
		if !ok || !ok2 {
			continue
		}
		if values[block] == nil {
			values[block] = map[string]string{}
		}
		values[block][action] = vs[0]
	}
	env := s.o.Slack.SubmitView(v, values)
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	ack, err := s.o.Slack.WaitAck(ctx, env)
	var answer struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
	}
	if err == nil && len(ack) > 0 {
		_ = json.Unmarshal(ack, &answer)
	}
	s.mu.Lock()
	if answer.ResponseAction == "errors" && len(answer.Errors) > 0 {
		s.refused[v.ID] = answer.Errors
	} else {
		s.closed[v.ID] = true
	}
	s.mu.Unlock()
	s.remember(sent{envelope: env, user: who.ID, at: time.Now()})
	back(w, r, query)
}

// openModal returns the modal the bot opened last for user, unless the
// visitor submitted or closed it.
func (s *Server) openModal(user string) (slacktest.View, bool) {
	views := s.o.Slack.Views(user)
	for i := len(views) - 1; i >= 0; i-- {
		if views[i].Type != "modal" {
			continue
		}
		s.mu.Lock()
		closed := s.closed[views[i].ID]
		s.mu.Unlock()
		return views[i], !closed
	}
	return slacktest.View{}, false
}

func (s *Server) postDirectory(w http.ResponseWriter, r *http.Request) {
	mode := r.FormValue("answer")
	if mode != "" && !slices.Contains(Exceptions, mode) {
		http.Error(w, "unknown answer", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.dirMode = mode
	s.mu.Unlock()
	for _, a := range s.o.Accounts {
		s.o.Directory.FailUser(a, mode)
	}
	back(w, r, "view=directory")
}

func (s *Server) remember(x sent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, x)
}

// names returns the display name of a Slack user ID.
func (s *Server) names(id string) string {
	for _, p := range s.o.People {
		if p.ID == id {
			return p.RealName
		}
	}
	if id == slacktest.BotUserID {
		return "Password Reset"
	}
	return id
}

// item is one entry of a screen, in time order.
type item struct {
	at   time.Time
	html template.HTML
}

func (s *Server) pane(sc screen) template.HTML {
	switch sc.View {
	case "audit":
		return s.auditPane()
	case "directory":
		return s.directoryPane()
	}
	modal := s.modalPane(sc.Who, sc.Tab)
	if sc.Tab == "home" {
		return modal + s.homePane(sc.Who)
	}
	return modal + s.personPane(sc.Who)
}

// homePane is the Home view the bot published for who; its buttons click
// as who in that view.
func (s *Server) homePane(who Person) template.HTML {
	v, ok := s.o.Slack.Home(who.ID)
	if !ok {
		return `<p class="empty">The bot has not published a Home view for ` + template.HTML(template.HTMLEscapeString(who.RealName)) +
			` yet: it does when they open the tab (as now) and when their requests change.</p>`
	}
	r := renderer{names: s.names, loc: s.o.Location, button: func(bt Button) template.HTML {
		return s.button(who, bt, "surface", "home")
	}}
	return template.HTML(`<div class="home">` + string(r.blocks(v.Blocks, "")) + `</div>`)
}

// modalPane is the modal open for who, as a form that submits or closes
// it; "" when none is open.
func (s *Server) modalPane(who Person, tab string) template.HTML {
	v, ok := s.openModal(who.ID)
	if !ok {
		return ""
	}
	var view struct {
		Submit, Close *textObject
	}
	_ = json.Unmarshal(v.Raw, &view)
	s.mu.Lock()
	refused := s.refused[v.ID]
	s.mu.Unlock()
	r := renderer{names: s.names, loc: s.o.Location, refused: refused, button: func(bt Button) template.HTML {
		return s.button(Person{}, bt) // drawn, not clicked: the modals' buttons are Submit and Close
	}}
	e := template.HTMLEscapeString
	submit, closeText := "Submit", "Cancel"
	if view.Submit != nil {
		submit = view.Submit.Text
	}
	if view.Close != nil {
		closeText = view.Close.Text
	}
	return template.HTML(`<form method="post" action="/view" class="modal">` +
		`<input type="hidden" name="as" value="` + e(who.ID) + `"><input type="hidden" name="view" value="` + e(v.ID) + `">` +
		`<input type="hidden" name="tab" value="` + e(tab) + `">` +
		`<div class="title">` + e(v.Title) + `</div>` + string(r.blocks(v.Blocks, "")) +
		`<div class="buttons"><button type="submit" name="op" value="close" class="btn" id="modal-close">` + e(closeText) + `</button>` +
		`<button type="submit" name="op" value="submit" class="btn primary" id="modal-submit">` + e(submit) + `</button></div></form>`)
}

// personPane is what who sees: the bot's messages in their DM with it,
// their own commands, and the answers only they see.
func (s *Server) personPane(who Person) template.HTML {
	dm := slacktest.DMChannel(who.ID)
	var items []item
	for _, m := range s.o.Slack.Messages(dm) {
		items = append(items, item{m.PostedAt, s.message(who, m.Channel, m.TS, m.Blocks, m.Text, m.PostedAt, false)})
	}
	for _, m := range s.o.Slack.Ephemerals() {
		if m.User == who.ID {
			items = append(items, item{m.PostedAt, s.message(who, m.Channel, m.TS, m.Blocks, m.Text, m.PostedAt, true)})
		}
	}
	s.mu.Lock()
	mine := slices.Clone(s.sent)
	s.mu.Unlock()
	for _, x := range mine {
		if x.user != who.ID {
			continue
		}
		if x.command {
			items = append(items, item{x.at, template.HTML(`<div class="msg you"><div class="meta"><b>` + template.HTMLEscapeString(who.RealName) +
				`</b> <time>` + x.at.In(s.o.Location).Format("15:04:05") + `</time></div><div class="body"><code>` + template.HTMLEscapeString(x.text) + `</code></div></div>`)})
		}
		for _, p := range s.o.Slack.Replies(x.envelope) {
			if p.ReplaceOriginal || p.DeleteOriginal || p.ResponseType == "in_channel" {
				continue // those change or post messages the screens show already
			}
			items = append(items, item{p.At, s.message(who, dm, "", p.Blocks, p.Text, p.At, true)})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.at.Compare(b.at) })
	if len(items) == 0 {
		return template.HTML(`<p class="empty">Nothing here yet. Type <code>` + template.HTMLEscapeString(s.o.Command) +
			`</code> below as ` + template.HTMLEscapeString(who.RealName) + `, or pick someone else on the left.</p>`)
	}
	var b strings.Builder
	for _, it := range items {
		b.WriteString(string(it.html))
	}
	return template.HTML(b.String())
}

// message renders one message as who sees it; its buttons click as who.
func (s *Server) message(who Person, channel, ts string, blocks []byte, text string, at time.Time, onlyYou bool) template.HTML {
	r := renderer{names: s.names, loc: s.o.Location, button: func(bt Button) template.HTML {
		return s.button(who, bt, "channel", channel, "ts", ts)
	}}
	class, note := "msg", ""
	if onlyYou {
		class, note = "msg ephemeral", ` <span class="only">Only visible to you</span>`
	}
	return template.HTML(`<div class="` + class + `"><div class="meta"><b>Password Reset</b> <span class="app">APP</span> <time>` +
		at.In(s.o.Location).Format("15:04:05") + `</time>` + note + `</div><div class="body">` + string(r.blocks(blocks, text)) + `</div></div>`)
}

// button is a form that clicks bt as who where the hidden name/value
// pairs say (a message's channel and ts, or the Home surface); with no
// one to click as, bt is only drawn.
func (s *Server) button(who Person, bt Button, where ...string) template.HTML {
	e := template.HTMLEscapeString
	if who.ID == "" {
		return template.HTML(`<span class="btn ` + e(bt.Style) + `">` + e(bt.Text) + `</span>`)
	}
	var b strings.Builder
	b.WriteString(`<form method="post" action="/click" class="click"><input type="hidden" name="as" value="` + e(who.ID) + `">`)
	for i := 0; i+1 < len(where); i += 2 {
		b.WriteString(`<input type="hidden" name="` + e(where[i]) + `" value="` + e(where[i+1]) + `">`)
	}
	b.WriteString(`<input type="hidden" name="action" value="` + e(bt.ActionID) + `"><input type="hidden" name="value" value="` + e(bt.Value) + `">` +
		`<button type="submit" class="btn ` + e(bt.Style) + `" data-action="` + e(bt.ActionID) + `">` + e(bt.Text) + `</button></form>`)
	return template.HTML(b.String())
}

// auditPane is the audit channel: each request's parent message, with its
// thread under it.
func (s *Server) auditPane() template.HTML {
	msgs := s.o.Slack.Messages(s.o.AuditChannel)
	r := renderer{names: s.names, loc: s.o.Location, button: func(bt Button) template.HTML {
		return s.button(Person{}, bt)
	}}
	var b strings.Builder
	for _, p := range msgs {
		if p.ThreadTS != "" {
			continue
		}
		b.WriteString(`<div class="thread"><div class="msg"><div class="meta"><b>Password Reset</b> <span class="app">APP</span> <time>` +
			p.PostedAt.In(s.o.Location).Format("15:04:05") + `</time></div><div class="body">` + string(r.blocks(p.Blocks, p.Text)) + `</div></div>`)
		var replies []slacktest.Message
		for _, m := range msgs {
			if m.ThreadTS == p.TS {
				replies = append(replies, m)
			}
		}
		if len(replies) > 0 {
			fmt.Fprintf(&b, `<div class="replies"><div class="count">%d %s</div>`, len(replies), plural(len(replies), "reply", "replies"))
			for _, m := range replies {
				b.WriteString(`<div class="msg reply"><div class="meta"><b>Password Reset</b> <time>` + m.PostedAt.In(s.o.Location).Format("15:04:05") +
					`</time></div><div class="body">` + string(r.blocks(m.Blocks, m.Text)) + `</div></div>`)
			}
			b.WriteString(`</div>`)
		}
		b.WriteString(`</div>`)
	}
	if b.Len() == 0 {
		return `<p class="empty">No request yet: every request gets a message here, and each of its steps a reply in its thread.</p>`
	}
	return template.HTML(b.String())
}

// directoryPane lists the calls the stand-in directory received: the
// operation, the account and the answer, never the password.
func (s *Server) directoryPane() template.HTML {
	var b strings.Builder
	b.WriteString(`<table class="calls"><tr><th>time</th><th>call</th><th>account</th><th>answer</th></tr>`)
	calls := s.o.Directory.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		c := calls[i]
		answer := cmp.Or(c.Exception, "OK")
		if c.Status == 0 {
			answer = "(no answer)"
		}
		fmt.Fprintf(&b, `<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>`, c.At.In(s.o.Location).Format("15:04:05"),
			template.HTMLEscapeString(c.Target), template.HTMLEscapeString(c.UserName), template.HTMLEscapeString(answer))
	}
	if len(calls) == 0 {
		b.WriteString(`<tr><td colspan="4" class="empty">No call yet: the bot calls ResetUserPassword when an employee clicks Reveal.</td></tr>`)
	}
	b.WriteString(`</table>`)
	return template.HTML(b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
