package slacktest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const writeTimeout = 5 * time.Second

// frame is a text frame waiting for, or on its way to, a connection.
type frame struct {
	id     string // envelope id; "" for raw frames
	data   []byte
	target int // connection index; negative for any (round-robin)
}

// wsConn is one Socket Mode connection. All writes, pings included, are
// serialized by wmu.
type wsConn struct {
	ws   *websocket.Conn
	done chan struct{}
	once sync.Once

	wmu     sync.Mutex
	stopped bool // guarded by wmu: told to disconnect or failed; takes no envelopes
}

func (c *wsConn) writeLocked(data []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// tryWrite writes data unless the connection is stopped.
func (c *wsConn) tryWrite(data []byte) (sent bool, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.stopped {
		return false, nil
	}
	if err := c.writeLocked(data); err != nil {
		c.stopped = true
		return false, err
	}
	return true, nil
}

func (c *wsConn) ping() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
}

// kill closes the connection without a close frame.
func (c *wsConn) kill() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.NetConn().Close()
	})
}

// handleSocket serves a URL issued by apps.connections.open, once.
func (s *Server) handleSocket(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	id := strings.TrimPrefix(r.URL.Path, "/socket/")
	s.mu.Lock()
	if s.closed || !s.tickets[id] {
		s.recordLocked("websocket", r.URL.Query(), nil, http.StatusNotFound, at)
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, errObj("invalid_socket_url"))
		return
	}
	delete(s.tickets, id)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	status := http.StatusSwitchingProtocols
	if err != nil {
		status = http.StatusBadRequest // Upgrade has answered
	}
	s.mu.Lock()
	s.recordLocked("websocket", r.URL.Query(), nil, status, at)
	if err != nil || s.closed {
		s.mu.Unlock()
		if ws != nil {
			_ = ws.Close()
		}
		return
	}
	// Hold the new connection's write lock until hello and the queued
	// envelopes are written, so that concurrent sends come after them.
	c := &wsConn{ws: ws, done: make(chan struct{})}
	c.wmu.Lock()
	s.conns = append(s.conns, c)
	s.totalConns++
	pending := s.pending
	s.pending = nil
	now := time.Now()
	for _, f := range pending {
		s.markSentLocked(f.id, now)
	}
	interval := s.PingInterval
	if interval <= 0 {
		interval = DefaultPingInterval
	}
	hello, _ := json.Marshal(obj{"type": "hello", "num_connections": len(s.conns),
		"debug_info":      obj{"host": "slacktest", "approximate_connection_time": 3600},
		"connection_info": obj{"app_id": AppID}})
	s.mu.Unlock()

	err = c.writeLocked(hello)
	unsent := pending
	for err == nil && len(unsent) > 0 {
		if err = c.writeLocked(unsent[0].data); err == nil {
			unsent = unsent[1:]
		}
	}
	if err != nil {
		c.stopped = true
	}
	c.wmu.Unlock()
	if err != nil {
		s.dropConn(c)
		for _, f := range unsent {
			s.deliver(f)
		}
		return
	}

	s.wg.Go(func() { s.pingLoop(c, interval) })
	s.readLoop(c)
	s.dropConn(c)
}

// readLoop records acks until the connection fails.
func (s *Server) readLoop(c *wsConn) {
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if typ != websocket.TextMessage || json.Unmarshal(data, &a) != nil || a.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		if _, dup := s.acks[a.EnvelopeID]; !dup {
			s.acks[a.EnvelopeID] = ack{payload: a.Payload, at: time.Now()}
		}
		s.mu.Unlock()
	}
}

func (s *Server) pingLoop(c *wsConn, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.ping(); err != nil {
				s.dropConn(c)
				return
			}
		}
	}
}

// dropConn forgets c and closes it.
func (s *Server) dropConn(c *wsConn) {
	s.mu.Lock()
	isC := func(x *wsConn) bool { return x == c }
	s.conns = slices.DeleteFunc(s.conns, isC)
	s.draining = slices.DeleteFunc(s.draining, isC)
	s.mu.Unlock()
	c.kill()
}

// markSentLocked notes when envelope id was last written before its ack.
func (s *Server) markSentLocked(id string, at time.Time) {
	if _, acked := s.acks[id]; id != "" && !acked {
		s.sentAt[id] = at
	}
}

// pickLocked chooses the connection for a frame, or nil if none is open.
func (s *Server) pickLocked(target int) *wsConn {
	if len(s.conns) == 0 {
		return nil
	}
	if target >= 0 && target < len(s.conns) {
		return s.conns[target]
	}
	c := s.conns[s.rr%len(s.conns)]
	s.rr++
	return c
}

// deliver writes f to a connection, or queues it until one opens.
func (s *Server) deliver(f frame) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		c := s.pickLocked(f.target)
		if c == nil {
			s.pending = append(s.pending, f)
			s.mu.Unlock()
			return
		}
		s.markSentLocked(f.id, time.Now())
		s.mu.Unlock()
		sent, err := c.tryWrite(f.data)
		if sent {
			return
		}
		if err != nil {
			s.dropConn(c)
		}
		// c is no longer among s.conns: pick again.
	}
}

// Connections returns the number of open Socket Mode connections that
// have not been sent a disconnect: the ones envelopes go to.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// TotalConnections returns how many Socket Mode connections were ever
// accepted.
func (s *Server) TotalConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.totalConns
}

// WaitConnections waits until Connections() is at least n.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	return s.WaitFor(ctx, func() bool { return s.Connections() >= n })
}

// SlashCommand sends a slash_commands envelope for Command typed by user
// in the DM with the bot (channel DMChannel(user)), with a fresh
// response_url and trigger_id, and returns its envelope id. user_name is
// the directory Name of user, or user itself if unknown.
func (s *Server) SlashCommand(user, text string) string {
	s.mu.Lock()
	name := user
	if u, ok := s.users[user]; ok && u.Name != "" {
		name = u.Name
	}
	responseURL := s.newResponseURLLocked(DMChannel(user), "", user)
	payload := obj{"token": "verification-token", "team_id": TeamID, "team_domain": "slacktest",
		"channel_id": DMChannel(user), "channel_name": "directmessage", "user_id": user,
		"user_name": name, "command": Command, "text": text, "api_app_id": AppID,
		"is_enterprise_install": "false", "response_url": responseURL,
		"trigger_id": s.newTriggerLocked(user)}
	s.mu.Unlock()
	id := s.Send("slash_commands", payload)
	s.mu.Lock()
	s.envelopeResponse[id] = responseURL
	s.mu.Unlock()
	return id
}

// Click describes a button click on a message. An empty Channel means
// DMChannel(User).
type Click struct{ User, ActionID, Value, Channel, MessageTS string }

// Click sends an interactive block_actions envelope for one button action
// and returns its envelope id. If MessageTS names a message the server
// holds, the payload carries that message (text and blocks) and the
// block_id of the block holding ActionID; otherwise block_id is
// "slacktest_block". The response_url may replace or delete that message.
func (s *Server) Click(c Click) string { return s.ClickOn(-1, c) }

// ClickOn is Click sent to connection index conn (see SendTo), so that a
// test can make two people click on two different bot replicas.
func (s *Server) ClickOn(conn int, c Click) string {
	s.mu.Lock()
	ch := cmp.Or(c.Channel, DMChannel(c.User))
	name := c.User
	if u, ok := s.users[c.User]; ok && u.Name != "" {
		name = u.Name
	}
	var blocks json.RawMessage
	message, ephemeral := obj{"type": "message", "ts": c.MessageTS}, false
	if m := s.findLocked(ch, c.MessageTS); m != nil {
		message, blocks = messageObj(m), m.Blocks
	} else if i := slices.IndexFunc(s.ephemerals, func(m Message) bool {
		return m.Channel == ch && m.TS == c.MessageTS
	}); i >= 0 {
		message, blocks, ephemeral = nil, s.ephemerals[i].Blocks, true
	}
	responseURL := s.newResponseURLLocked(ch, c.MessageTS, c.User)
	payload := obj{"type": "block_actions", "api_app_id": AppID, "token": "verification-token",
		"user":         obj{"id": c.User, "username": name, "name": name, "team_id": TeamID},
		"team":         obj{"id": TeamID, "domain": "slacktest"},
		"channel":      obj{"id": ch, "name": "directmessage"},
		"container":    obj{"type": "message", "message_ts": c.MessageTS, "channel_id": ch, "is_ephemeral": ephemeral},
		"response_url": responseURL, "trigger_id": s.newTriggerLocked(c.User),
		"state": obj{"values": obj{}},
		"actions": []obj{{"action_id": c.ActionID, "block_id": cmp.Or(findBlockID(blocks, c.ActionID), "slacktest_block"),
			"type": "button", "value": c.Value, "action_ts": fmt.Sprintf("%.6f", float64(time.Now().UnixMicro())/1e6),
			"text": obj{"type": "plain_text", "text": c.ActionID}}}}
	if message != nil {
		payload["message"] = message
	}
	s.seqEnvelope++
	id := envelopeID(s.seqEnvelope)
	s.envelopeResponse[id] = responseURL
	s.mu.Unlock()
	s.SendTo(conn, id, "interactive", payload)
	return id
}

// findBlockID returns the block_id of the block in blocks whose elements
// or accessory has actionID, or "".
func findBlockID(blocks json.RawMessage, actionID string) string {
	type elem struct {
		ActionID string `json:"action_id"`
	}
	var bs []struct {
		BlockID   string          `json:"block_id"`
		Elements  json.RawMessage `json:"elements"`
		Accessory *elem           `json:"accessory"`
	}
	if json.Unmarshal(blocks, &bs) != nil {
		return ""
	}
	for _, b := range bs {
		var els []elem
		_ = json.Unmarshal(b.Elements, &els)
		if (b.Accessory != nil && b.Accessory.ActionID == actionID) ||
			slices.ContainsFunc(els, func(e elem) bool { return e.ActionID == actionID }) {
			return b.BlockID
		}
	}
	return ""
}

// Send sends an envelope of envelopeType (such as "slash_commands",
// "interactive" or "events_api") carrying payload to one connection,
// round-robin, and returns its new envelope id. With no connection open
// the envelope waits for the next one. payload is marshalled to JSON,
// except that json.RawMessage and []byte are used as they are.
func (s *Server) Send(envelopeType string, payload any) string {
	s.mu.Lock()
	s.seqEnvelope++
	id := envelopeID(s.seqEnvelope)
	s.mu.Unlock()
	s.SendTo(-1, id, envelopeType, payload)
	return id
}

func envelopeID(seq int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", seq) }

// SendTo sends an envelope with the given id to connection index conn (in
// the order the open connections were accepted; see Connections). A
// negative or absent index means any connection, as with Send. Sending an
// id again sets retry_attempt to the number of earlier sends and
// retry_reason to "timeout", like a Slack redelivery.
func (s *Server) SendTo(conn int, envelopeID, envelopeType string, payload any) {
	var raw json.RawMessage
	switch p := payload.(type) {
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		var err error
		if raw, err = json.Marshal(payload); err != nil {
			panic(fmt.Sprintf("slacktest: marshalling payload: %v", err))
		}
	}
	s.mu.Lock()
	attempt := s.sendCount[envelopeID]
	s.sendCount[envelopeID]++
	s.mu.Unlock()
	env := obj{"envelope_id": envelopeID, "type": envelopeType, "payload": raw,
		"accepts_response_payload": envelopeType == "slash_commands"}
	if attempt > 0 {
		env["retry_attempt"], env["retry_reason"] = attempt, "timeout"
	}
	data, err := json.Marshal(env)
	if err != nil {
		panic(fmt.Sprintf("slacktest: marshalling envelope: %v", err))
	}
	s.deliver(frame{id: envelopeID, data: data, target: conn})
}

// SendRaw sends data as a text frame to connection index conn (any
// connection if absent, queued if none is open), for malformed-input tests.
func (s *Server) SendRaw(conn int, data []byte) {
	s.deliver(frame{data: bytes.Clone(data), target: conn})
}

// Ack returns the payload the client acked envelopeID with (nil if the
// ack had none) and whether it has been acked. Only the first ack counts.
func (s *Server) Ack(envelopeID string) (payload json.RawMessage, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.acks[envelopeID]
	return bytes.Clone(a.payload), ok
}

// WaitAck waits for the ack of envelopeID and returns its payload.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (json.RawMessage, error) {
	var p json.RawMessage
	err := s.WaitFor(ctx, func() bool {
		var ok bool
		p, ok = s.Ack(envelopeID)
		return ok
	})
	return p, err
}

// AckedAt returns when the client acked envelopeID (its first ack), and
// whether it has.
func (s *Server) AckedAt(envelopeID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.acks[envelopeID]
	return a.at, ok
}

// AckDelay returns the time from the last write of envelopeID before its
// ack to the ack, and whether it has been acked.
func (s *Server) AckDelay(envelopeID string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, acked := s.acks[envelopeID]
	sent, ok := s.sentAt[envelopeID]
	if !acked || !ok {
		return 0, false
	}
	return a.at.Sub(sent), true
}

// Disconnect sends {"type":"disconnect","reason":reason} to every open
// connection. Those connections get no more envelopes; the client is
// expected to reconnect, and later envelopes wait for the new connection.
func (s *Server) Disconnect(reason string) {
	data, _ := json.Marshal(obj{"type": "disconnect", "reason": reason,
		"debug_info": obj{"host": "slacktest"}})
	s.mu.Lock()
	cs := s.conns
	s.conns = nil
	s.draining = append(s.draining, cs...)
	s.mu.Unlock()
	for _, c := range cs {
		c.wmu.Lock()
		var err error
		if !c.stopped {
			c.stopped = true
			err = c.writeLocked(data)
		}
		c.wmu.Unlock()
		if err != nil {
			s.dropConn(c)
		}
	}
}

// DropConnections closes every connection abruptly, without a close frame.
func (s *Server) DropConnections() {
	s.mu.Lock()
	cs := slices.Concat(s.conns, s.draining)
	s.conns, s.draining = nil, nil
	s.mu.Unlock()
	for _, c := range cs {
		c.kill()
	}
}

// newTriggerLocked returns a new trigger_id of user's, which views.open
// takes once within TriggerLife.
func (s *Server) newTriggerLocked(user string) string {
	s.seqTrigger++
	id := fmt.Sprintf("%d.%d.trigger", 1700000000+s.seqTrigger, s.seqTrigger)
	if s.triggers == nil {
		s.triggers = map[string]*trigger{}
	}
	s.triggers[id] = &trigger{user: user, at: s.clock()}
	return id
}
