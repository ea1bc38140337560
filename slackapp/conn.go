package slackapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ConnWatch remembers why the latest Socket Mode connection ended, as far
// as this side can tell: slack-go reconnects on its own and tells its
// caller only that it is connecting again. Give its Dialer to
// socketmode.OptionDialer and the watch to App.Watch.
type ConnWatch struct {
	mu       sync.Mutex
	cause    string
	lastRead time.Time
}

// Dialer is the WebSocket dialer slack-go uses by default, with every
// connection watched.
func (w *ConnWatch) Dialer() *websocket.Dialer {
	nd := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: 10 * time.Second,
		WriteBufferSize:  1024,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			w.mu.Lock()
			w.cause, w.lastRead = "", time.Now()
			w.mu.Unlock()
			return &watchedConn{Conn: c, w: w}, nil
		},
	}
}

// Cause says why the latest connection ended, or "" when it is not known.
func (w *ConnWatch) Cause() string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cause
}

// ended records the first cause of a connection's end.
func (w *ConnWatch) ended(cause string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cause == "" {
		w.cause = cause
	}
}

// watchedConn tells its watch how it ended: a failed read (the network or
// Slack dropped it) or a close from this side (slack-go closes the
// connection when Slack sends a disconnect, or when Slack's pings stop).
type watchedConn struct {
	net.Conn
	w      *ConnWatch
	closed sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.w.mu.Lock()
		c.w.lastRead = time.Now()
		c.w.mu.Unlock()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.w.ended("the connection failed: " + err.Error())
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.closed.Do(func() {
		c.w.mu.Lock()
		quiet := time.Since(c.w.lastRead).Round(time.Second)
		c.w.mu.Unlock()
		if quiet >= 10*time.Second {
			c.w.ended(fmt.Sprintf("nothing came from Slack, not even a ping, for %s", quiet))
			return
		}
		c.w.ended("Slack asked the bot to reconnect (a disconnect message, as it sends every few hours)")
	})
	return c.Conn.Close()
}
