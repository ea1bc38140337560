package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// healthServer answers /healthz with 200 and /readyz with status, like the
// bot's own routes.
func healthServer(t *testing.T, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/readyz":
			w.WriteHeader(status)
			w.Write([]byte("store unavailable\nslack not connected\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runHealthcheck(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), append([]string{"bot", "healthcheck"}, args...), func(k string) string { return env[k] }, &out)
	return out.String(), err
}

// oneLine wants err to be a single line that names each of want.
func oneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("healthcheck passed")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%q does not say %q", msg, w)
		}
	}
}

func TestHealthcheckURL(t *testing.T) {
	srv := healthServer(t, http.StatusServiceUnavailable)

	out, err := runHealthcheck(t, nil, "--url", srv.URL+"/healthz")
	if err != nil {
		t.Fatalf("200: %v", err)
	}
	if !strings.Contains(out, "ok") {
		t.Errorf("output %q", out)
	}

	_, err = runHealthcheck(t, nil, "--url", srv.URL+"/readyz")
	oneLine(t, err, srv.URL+"/readyz", "503", "store unavailable")

	_, err = runHealthcheck(t, nil, "--url", srv.URL+"/nothing")
	oneLine(t, err, "404")

	for _, bad := range []string{"127.0.0.1:8080/healthz", "ftp://127.0.0.1/healthz", "http://"} {
		_, err = runHealthcheck(t, nil, "--url", bad)
		oneLine(t, err, "--url", "not an http")
	}
	_, err = runHealthcheck(t, nil, "extra")
	oneLine(t, err, "unexpected argument")
}

func TestHealthcheckNothingListening(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	_, err = runHealthcheck(t, map[string]string{"HTTP_ADDR": addr})
	oneLine(t, err, "no answer from http://"+addr+"/healthz", "refused")
}

func TestHealthcheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	err := checkHealth(t.Context(), srv.URL+"/healthz", 200*time.Millisecond)
	oneLine(t, err, "no answer from "+srv.URL+"/healthz within 200ms")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

// TestHealthcheckHTTPAddr dials the port of HTTP_ADDR, on 127.0.0.1 when the
// bot listens on every interface.
func TestHealthcheckHTTPAddr(t *testing.T) {
	srv := healthServer(t, http.StatusOK) // listens on 127.0.0.1
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, addr := range []string{":" + port, "127.0.0.1:" + port, "0.0.0.0:" + port, "[::]:" + port} {
		if _, err := runHealthcheck(t, map[string]string{"HTTP_ADDR": addr}); err != nil {
			t.Errorf("HTTP_ADDR=%s: %v", addr, err)
		}
	}

	for _, tc := range []struct{ addr, want string }{
		{"", "http://127.0.0.1:8080/healthz"},
		{":8080", "http://127.0.0.1:8080/healthz"},
		{"127.0.0.1:9000", "http://127.0.0.1:9000/healthz"},
		{"0.0.0.0:8080", "http://127.0.0.1:8080/healthz"},
		{"[::]:8080", "http://127.0.0.1:8080/healthz"},
		{"[::1]:8080", "http://[::1]:8080/healthz"},
		{"localhost:8081", "http://localhost:8081/healthz"},
		{"10.1.2.3:8080", "http://10.1.2.3:8080/healthz"},
	} {
		got, err := healthURL(tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("healthURL(%q) = %q, %v; want %q", tc.addr, got, err, tc.want)
		}
	}
	for _, bad := range []string{"8080", "127.0.0.1", "127.0.0.1:", "[::1"} {
		if got, err := healthURL(bad); err == nil {
			t.Errorf("healthURL(%q) = %q, want an error", bad, got)
		} else {
			oneLine(t, err, "HTTP_ADDR", bad)
		}
	}
}
