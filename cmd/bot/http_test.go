package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/example/resetbot/slackapp"
	redisstore "github.com/example/resetbot/store/redisstore"
)

// TestReadyzShowsNoErrorText: /readyz says what is wrong in a few fixed
// words (whoever reaches the listener reads it); the error itself, with
// the store's address, goes to the log.
func TestReadyzShowsNoErrorText(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	var logs syncBuffer
	b := &bot{store: redisstore.New(client, "readyz-test:"), app: &slackapp.App{},
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
