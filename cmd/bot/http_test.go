package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
	"github.com/example/resetbot/store/seal"
)

// TestReadyzShowsNoErrorText: /readyz says what is wrong in a few fixed
// words (whoever reaches the listener reads it); the error itself, with
// the store's address, goes to the log.
func TestReadyzShowsNoErrorText(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	var logs syncBuffer
	b := &bot{store: redisstore.New(client, "readyz-test:", seal.Key{}), app: &slackapp.App{},
		log: slog.New(slog.NewJSONHandler(&logs, nil))}
	rec := httptest.NewRecorder()
	b.routes("health", false).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "store unavailable\nslack not connected\n" {
		t.Errorf("readyz: %d %q, want 503 \"store unavailable\\nslack not connected\\n\"", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logs.String(), "127.0.0.1:1") || !strings.Contains(logs.String(), "not ready: the store does not answer") {
		t.Errorf("the store's error is not in the log:\n%s", logs.String())
	}
}

// slowClient connects to addr, sends first, then trickles trickle one byte
// every 50ms (repeating it) while it waits; it returns what the server
// sent and how long the server kept the connection open, or fails the
// test when the server still holds it after within.
func slowClient(t *testing.T, addr, first, trickle string, within time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, first); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	if trickle != "" {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{trickle[i%len(trickle)]}); err != nil {
					return
				}
			}
		}()
	}
	conn.SetReadDeadline(start.Add(within))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still holds the connection after %v (it sent %q)", within, got)
	}
	return string(got), time.Since(start)
}

// TestHTTPServerCutsOffSlowClients: the listeners' server closes a
// connection that trickles its headers, never finishes its body, stays
// idle, or whose answer takes too long; each limit on its own.
func TestHTTPServerCutsOffSlowClients(t *testing.T) {
	// Go falls back on Read when ReadHeader or Idle is zero: Read is the
	// longest, so that each case shows its own limit at work.
	lim := httpLimits{ReadHeader: 300 * time.Millisecond, Read: 1200 * time.Millisecond, Write: 600 * time.Millisecond, Idle: 400 * time.Millisecond}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fast", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Second)
		io.WriteString(w, "late\n")
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpServer(mux, lim)
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	addr := lis.Addr().String()

	t.Run("headers byte by byte", func(t *testing.T) {
		t.Parallel()
		got, took := slowClient(t, addr, "GET /fast HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaa\r\n", 3*time.Second)
		if strings.Contains(got, "ok") || took < lim.ReadHeader || took >= lim.Read {
			t.Errorf("after %v the server answered %q; want the connection closed after the header limit %v", took, got, lim.ReadHeader)
		}
	})
	t.Run("a body that never ends", func(t *testing.T) {
		t.Parallel()
		got, took := slowClient(t, addr, "GET /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "b", 3*time.Second)
		if took < lim.Read-100*time.Millisecond {
			t.Errorf("closed after %v (%q), before the read limit", took, got)
		}
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		got, took := slowClient(t, addr, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n", "", 3*time.Second)
		if !strings.Contains(got, "200 OK") || took < lim.Idle-100*time.Millisecond || took >= lim.Read {
			t.Errorf("after %v: %q; want the answer, then the connection closed after the idle limit %v", took, got, lim.Idle)
		}
	})
	t.Run("an answer that takes too long", func(t *testing.T) {
		t.Parallel()
		got, _ := slowClient(t, addr, "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "", 3*time.Second)
		if strings.Contains(got, "late") {
			t.Errorf("the answer went out after the write limit: %q", got)
		}
	})
}

// TestHealthListenerCutsOffSlowClient: the running bot's health listener
// closes a connection that sends its headers a byte at a time within its
// header limit, and serves others meanwhile.
func TestHealthListenerCutsOffSlowClient(t *testing.T) {
	w := newWorld(t)
	bot := w.start()
	addr := regexp.MustCompile(`"msg":"health listening","addr":"([^"]+)"`).FindStringSubmatch(bot.logs.String())
	if addr == nil {
		t.Fatalf("no listening address in the logs:\n%s", bot.logs.String())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		got, took := slowClient(t, addr[1], "GET /healthz HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaa\r\n", defaultHTTPLimits.ReadHeader+3*time.Second)
		if strings.Contains(got, "ok") || took < defaultHTTPLimits.ReadHeader-100*time.Millisecond {
			t.Errorf("after %v the bot answered %q", took, got)
		}
	}()
	if code, body := getURL(t, bot, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz while a slow client holds a connection: %d %q", code, body)
	}
	<-done
}
