package playground

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/example/resetbot/internal/dstest"
	"github.com/example/resetbot/internal/slacktest"
)

// TestLocalOnly: the page answers requests for 127.0.0.1 or localhost only
// (DNS rebinding), and forms posted from its own page only.
func TestLocalOnly(t *testing.T) {
	sl, ds := slacktest.New(), dstest.New("d-0a0a0a0a0a")
	t.Cleanup(sl.Close)
	t.Cleanup(ds.Close)
	h := New(Options{Slack: sl, Directory: ds, People: []Person{{ID: "UA", RealName: "A", Role: "employee"}}, AuditChannel: "C1", AuditName: "audit"}).Handler()
	do := func(method, host, target string, header map[string]string, form url.Values) int {
		var r *http.Request
		if form != nil {
			r = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest(method, target, nil)
		}
		r.Host = host
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := do("GET", "127.0.0.1:8088", "/", nil, nil); c != 200 {
		t.Errorf("own page: %d", c)
	}
	if c := do("GET", "evil.example:8088", "/", nil, nil); c != http.StatusForbidden {
		t.Errorf("another host name: %d", c)
	}
	form := url.Values{"as": {"UA"}, "text": {"status"}}
	if c := do("POST", "127.0.0.1:8088", "/command", map[string]string{"Origin": "http://127.0.0.1:8088", "Sec-Fetch-Site": "same-origin"}, form); c != http.StatusSeeOther {
		t.Errorf("own form: %d", c)
	}
	if c := do("POST", "127.0.0.1:8088", "/command", map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, form); c != http.StatusForbidden {
		t.Errorf("a form from another site: %d", c)
	}
	if c := do("POST", "127.0.0.1:8088", "/view", map[string]string{"Sec-Fetch-Site": "cross-site"}, url.Values{"as": {"UA"}, "op": {"submit"}}); c != http.StatusForbidden {
		t.Errorf("a modal submitted from another site: %d", c)
	}
	if c := do("POST", "127.0.0.1:8088", "/view", nil, url.Values{"as": {"UA"}, "view": {"V-none"}, "op": {"submit"}}); c != http.StatusSeeOther {
		t.Errorf("a modal that is not open: %d, want the screen again", c)
	}
	if c := do("POST", "127.0.0.1:8088", "/directory", nil, url.Values{"answer": {"NotAnException"}}); c != http.StatusBadRequest {
		t.Errorf("an unknown directory answer: %d", c)
	}
}
