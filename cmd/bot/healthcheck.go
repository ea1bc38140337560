package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/example/resetbot/config"
)

// healthcheckTimeout bounds one `bot healthcheck`, connecting included.
const healthcheckTimeout = 3 * time.Second

// healthcheck asks the running bot's own health endpoint whether it serves:
// the distroless image has no shell or curl, so a container HEALTHCHECK runs
// the binary itself. It returns nil when the URL answers 200 and an error
// saying what failed otherwise, which main prints as one line before it
// exits non-zero. It needs only HTTP_ADDR, never the tokens.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("healthcheck", "bot healthcheck [--url URL]\nExits 0 when the bot's /healthz (or URL) answers 200 within 3s, 1 otherwise.", stdout)
	target := fs.String("url", "", "the URL to check, e.g. http://127.0.0.1:8080/readyz (default: /healthz on the port of HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	u := *target
	if u == "" {
		var err error
		if u, err = healthURL(getenv("HTTP_ADDR")); err != nil {
			return err
		}
	} else if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("--url %q is not an http:// or https:// URL", u)
	}
	if err := checkHealth(ctx, u, healthcheckTimeout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok: %s answered 200\n", u)
	return nil
}

// healthURL is the /healthz URL of a bot listening on addr (HTTP_ADDR, empty
// for the default 127.0.0.1:8080). A wildcard host (:8080, 0.0.0.0:8080, [::]:8080)
// is dialled on 127.0.0.1, which a wildcard listener also accepts; a
// specific host is dialled as it is, since the listener is only there.
func healthURL(addr string) (string, error) {
	if addr == "" {
		addr = config.DefaultHTTPAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("HTTP_ADDR %q must be host:port or :port, like :8080", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// checkHealth GETs u and wants 200 within timeout. Its errors name the URL
// and, for another status, the first line of the body (e.g. /readyz's
// "store: ..."), so that one line says what failed.
func checkHealth(ctx context.Context, u string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	// No proxy: the bot is local, and HTTPS_PROXY in the container's
	// environment is meant for Slack and AWS.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("no answer from %s within %s", u, timeout)
		}
		return fmt.Errorf("no answer from %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 200)).ReadString('\n')
	if line = strings.TrimSpace(line); line != "" {
		return fmt.Errorf("%s answered %s: %s", u, resp.Status, line)
	}
	return fmt.Errorf("%s answered %s", u, resp.Status)
}
