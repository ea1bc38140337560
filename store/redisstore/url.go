package redisstore

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Dial returns a client for rawURL, which names one of three kinds of
// deployment:
//
//	redis://[user:password@]host[:port][/db][?option=value&...]
//	rediss://...            a standalone server (or a managed primary endpoint); see ParseURL
//
//	redis+sentinel://[user:password@]host[:port][,host[:port]...]/master[/db][?option=value&...]
//	rediss+sentinel://...   a primary and its replicas watched by Sentinels; see ParseSentinelURL
//
//	redis+cluster://[user:password@]host[:port][,host[:port]...][?option=value&...]
//	rediss+cluster://...    a Redis Cluster; see ParseClusterURL
//
// The client is a *redis.Client for the first two and a
// *redis.ClusterClient for the third; the Store takes any of them. Dial does
// not connect; use Store.Ping to check the server. Its errors never contain
// the password.
func Dial(rawURL string) (redis.UniversalClient, error) {
	switch scheme(rawURL) {
	case "redis+sentinel", "rediss+sentinel":
		opt, err := ParseSentinelURL(rawURL)
		if err != nil {
			return nil, err
		}
		return redis.NewFailoverClient(opt), nil
	case "redis+cluster", "rediss+cluster":
		opt, err := ParseClusterURL(rawURL)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(opt), nil
	}
	opt, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}

// ValidateURL reports what is wrong with rawURL for Dial, or nil. It checks
// the syntax only and does not connect. The error never contains the
// password.
func ValidateURL(rawURL string) error {
	var err error
	switch scheme(rawURL) {
	case "redis+sentinel", "rediss+sentinel":
		_, err = ParseSentinelURL(rawURL)
	case "redis+cluster", "rediss+cluster":
		_, err = ParseClusterURL(rawURL)
	default:
		_, err = ParseURL(rawURL)
	}
	return err
}

// Defaults of every kind of client: an outage is reported within seconds
// instead of hanging a Slack handler, and callers' context deadlines bound
// their Redis calls. Options given in the URL's query win.
const (
	defaultTimeout = 2 * time.Second
	defaultRetries = 1
)

func setDefaults(dial, read, write *time.Duration, retries, dialerRetries *int, contextTimeout *bool) {
	for _, d := range []*time.Duration{dial, read, write} {
		if *d == 0 {
			*d = defaultTimeout
		}
	}
	if *retries == 0 {
		*retries = defaultRetries
	}
	if *dialerRetries == 0 {
		*dialerRetries = defaultRetries
	}
	*contextTimeout = true
}

// ParseURL parses a redis:// or rediss:// (TLS) URL into client options
// with short timeouts (2 s) and one retry, so that an outage is reported
// within seconds instead of hanging a Slack handler; callers' context
// deadlines are honoured too. The query takes go-redis's options
// (redis.ParseURL: dial_timeout, read_timeout, max_retries, skip_verify,
// ...), which win over these defaults. The error never contains the URL,
// which may hold a password.
func ParseURL(rawURL string) (*redis.Options, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var (
			uerr   *url.Error
			escape url.EscapeError
		)
		switch {
		case errors.As(err, &escape): // its text quotes a piece of the URL
			return nil, invalid("a character is not properly percent-encoded")
		case errors.As(err, &uerr):
			err = uerr.Err // without the URL
		}
		return nil, invalid(err.Error())
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, invalid("the scheme must be one of " + schemes)
	}
	if strings.Contains(u.Host, ",") {
		return nil, invalid("a list of hosts needs redis+sentinel:// or redis+cluster://")
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, redisError(err, u.User)
	}
	setDefaults(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.DialerRetries, &opt.ContextTimeoutEnabled)
	return opt, nil
}

// ParseSentinelURL parses a Sentinel URL:
//
//	redis+sentinel://[user:password@]host[:port][,host[:port]...]/master[/db][?option=value&...]
//
// The hosts are the Sentinels (port 26379 unless given; IPv6 in brackets),
// master is the name they monitor, db the database (default 0). The user
// and password, if any, authenticate to the primary and replicas; the
// Sentinels' own credentials, if they require one, are the query's
// sentinel_username and sentinel_password (percent-encoded). The other
// options are go-redis's (redis.ParseFailoverURL: dial_timeout,
// read_timeout, max_retries, skip_verify, ...); master_name, addr, db,
// username and password are refused there because the URL's path, host
// list and user info give them. The defaults are ParseURL's.
//
// With rediss+sentinel:// every connection, to the Sentinels and to the
// servers they point at, uses TLS 1.2 or newer and checks the certificate
// against the address it dials: the Sentinels' host names as written, and
// the primary's address as the Sentinels announce it (an IP address unless
// they run with announce-hostnames). skip_verify=true turns the check off.
func ParseSentinelURL(rawURL string) (*redis.FailoverOptions, error) {
	p, err := split(rawURL, 26379, "redis+sentinel", "rediss+sentinel")
	if err != nil {
		return nil, err
	}
	path := strings.Split(strings.TrimPrefix(p.rawPath, "/"), "/")
	if len(path) > 0 && path[len(path)-1] == "" {
		path = path[:len(path)-1] // a trailing slash
	}
	if len(path) == 0 || path[0] == "" {
		return nil, invalid("a Sentinel URL names the master after the hosts, as in redis+sentinel://host1:26379,host2:26379/mymaster")
	}
	if len(path) > 2 {
		return nil, invalid("a Sentinel URL's path is /master or /master/db")
	}
	master, err := url.PathUnescape(path[0])
	if err != nil {
		return nil, invalid("the master name is not properly percent-encoded")
	}
	db := "0"
	if len(path) == 2 {
		db = path[1]
	}
	if n, err := strconv.Atoi(db); err != nil || n < 0 {
		return nil, invalid("the database number after the master name must be a number >= 0")
	}
	if err := p.refuse("master_name", "addr", "db", "username", "password"); err != nil {
		return nil, err
	}
	if err := p.refuseReplicaReads("route_by_latency", "route_randomly", "replica_only", "use_disconnected_replicas"); err != nil {
		return nil, err
	}
	sentinelUser, sentinelPassword := p.take("sentinel_username"), p.take("sentinel_password")
	p.query.Set("master_name", master)
	for _, h := range p.hosts[1:] {
		p.query.Add("addr", h)
	}
	// go-redis reads the Sentinels' credentials from the user info and
	// the servers' from the query; this URL does it the other way round,
	// like redis+sentinel:// URLs elsewhere, so they are set below.
	forRedis := url.URL{Scheme: p.base, Host: p.hosts[0], Path: "/" + db, RawQuery: p.query.Encode()}
	opt, err := redis.ParseFailoverURL(forRedis.String())
	if err != nil {
		return nil, redisError(err, p.user, url.UserPassword(sentinelUser, sentinelPassword))
	}
	if p.user != nil {
		opt.Username = p.user.Username()
		opt.Password, _ = p.user.Password()
	}
	opt.SentinelUsername, opt.SentinelPassword = sentinelUser, sentinelPassword
	if opt.TLSConfig != nil {
		opt.TLSConfig.ServerName = "" // each connection checks the address it dials
	}
	setDefaults(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.DialerRetries, &opt.ContextTimeoutEnabled)
	return opt, nil
}

// ParseClusterURL parses a Redis Cluster URL:
//
//	redis+cluster://[user:password@]host[:port][,host[:port]...][?option=value&...]
//
// The hosts are some of the cluster's nodes (port 6379 unless given; IPv6
// in brackets): the client learns the others from them. A cluster has only
// database 0, so the URL has no path. The user and password, if any,
// authenticate to every node. The options are go-redis's
// (redis.ParseClusterURL: dial_timeout, read_timeout, max_retries,
// max_redirects, ...) and skip_verify; addr, username and password are
// refused there. The defaults are ParseURL's.
//
// With rediss+cluster:// every connection uses TLS 1.2 or newer and checks
// the certificate against the address it dials, as the nodes announce it
// (ElastiCache announces host names its wildcard certificate covers).
// skip_verify=true turns the check off.
func ParseClusterURL(rawURL string) (*redis.ClusterOptions, error) {
	p, err := split(rawURL, 6379, "redis+cluster", "rediss+cluster")
	if err != nil {
		return nil, err
	}
	if p.rawPath != "" && p.rawPath != "/" {
		return nil, invalid("a Redis Cluster has only database 0: the cluster URL has no path")
	}
	if err := p.refuse("addr", "username", "password"); err != nil {
		return nil, err
	}
	if err := p.refuseReplicaReads("read_only", "route_by_latency", "route_randomly"); err != nil {
		return nil, err
	}
	skipVerify := false
	if p.query.Has("skip_verify") {
		if p.base != "rediss" {
			return nil, invalid("skip_verify is for rediss+cluster:// (TLS) only")
		}
		if skipVerify, err = strconv.ParseBool(p.take("skip_verify")); err != nil {
			return nil, invalid("skip_verify must be true or false")
		}
	}
	for _, h := range p.hosts[1:] {
		p.query.Add("addr", h)
	}
	forRedis := url.URL{Scheme: p.base, Host: p.hosts[0], RawQuery: p.query.Encode()}
	opt, err := redis.ParseClusterURL(forRedis.String())
	if err != nil {
		return nil, redisError(err, p.user)
	}
	if p.user != nil {
		opt.Username = p.user.Username()
		opt.Password, _ = p.user.Password()
	}
	if opt.TLSConfig != nil {
		opt.TLSConfig.ServerName = "" // each connection checks the address it dials
		opt.TLSConfig.MinVersion = tls.VersionTLS12
		opt.TLSConfig.InsecureSkipVerify = skipVerify
	}
	setDefaults(&opt.DialTimeout, &opt.ReadTimeout, &opt.WriteTimeout, &opt.MaxRetries, &opt.DialerRetries, &opt.ContextTimeoutEnabled)
	return opt, nil
}

const schemes = "redis://, rediss:// (TLS), redis+sentinel://, rediss+sentinel://, redis+cluster:// or rediss+cluster://"

// scheme returns rawURL's scheme in lower case, or "".
func scheme(rawURL string) string {
	s, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return ""
	}
	return strings.ToLower(s)
}

// urlParts is a multi-host URL taken apart.
type urlParts struct {
	base    string        // "redis" or "rediss"
	user    *url.Userinfo // nil without user info
	hosts   []string      // host:port, with the default port filled in
	rawPath string        // still percent-encoded
	query   url.Values
}

// split takes apart a URL of the form scheme://[userinfo@]host[:port][,host[:port]...][/path][?query]
// whose scheme is one of the two given (plain, then TLS). url.Parse does
// not support host lists (it rejects "[::1]:1,[::1]:2"), so the authority
// is split here and each part checked on its own; its errors never hold the
// user info.
func split(rawURL string, defaultPort int, plain, tlsScheme string) (*urlParts, error) {
	p := &urlParts{}
	switch scheme(rawURL) {
	case plain:
		p.base = "redis"
	case tlsScheme:
		p.base = "rediss"
	default:
		return nil, invalid("the scheme must be one of " + schemes)
	}
	_, rest, _ := strings.Cut(rawURL, "://")
	if strings.Contains(rest, "#") {
		return nil, invalid("a '#' must be percent-encoded (%23)")
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		u, err := url.Parse("redis://" + authority[:i] + "@host")
		if err != nil || u.User == nil || u.Host != "host" {
			return nil, invalid("the user name or password is malformed (percent-encode characters such as @ : / ? # %)")
		}
		p.user, authority = u.User, authority[i+1:]
	}
	if authority == "" {
		return nil, invalid("no host: list one or more as host:port,host:port")
	}
	for _, h := range strings.Split(authority, ",") {
		u, err := url.Parse("redis://" + h)
		if err != nil || u.Host != h || u.Hostname() == "" || strings.Contains(u.Hostname(), ":") && !strings.HasPrefix(h, "[") {
			return nil, invalid("the host " + strconv.Quote(h) + " is not host, host:port or [IPv6]:port")
		}
		port := u.Port()
		if port == "" {
			port = strconv.Itoa(defaultPort)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, invalid("the port of " + strconv.Quote(h) + " is not between 1 and 65535")
		}
		p.hosts = append(p.hosts, net.JoinHostPort(u.Hostname(), port))
	}
	var rawQuery string
	var err error
	p.rawPath, rawQuery, _ = strings.Cut(tail, "?")
	if p.query, err = url.ParseQuery(rawQuery); err != nil {
		return nil, invalid("the query is malformed (percent-encode special characters in its values)")
	}
	return p, nil
}

// refuse reports query options that the rest of the URL sets.
func (p *urlParts) refuse(names ...string) error {
	for _, n := range names {
		if p.query.Has(n) {
			return invalid("the option " + n + " is not allowed in the query: the URL's user info, hosts or path set it")
		}
	}
	return nil
}

// refuseReplicaReads reports query options that send reads to replicas:
// the store must read its own writes, so it reads from the primary.
func (p *urlParts) refuseReplicaReads(names ...string) error {
	for _, n := range names {
		if p.query.Has(n) {
			return invalid("the option " + n + " is not supported: the store reads from the primary, to see its own writes")
		}
	}
	return nil
}

// take removes the query option name and returns its last value.
func (p *urlParts) take(name string) string {
	vs := p.query[name]
	p.query.Del(name)
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func invalid(msg string) error { return errors.New("invalid Redis URL: " + msg) }

// redisError is an error of go-redis's URL parsers, with any password of
// users replaced in case it found its way into the message.
func redisError(err error, users ...*url.Userinfo) error {
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	for _, u := range users {
		if u == nil {
			continue
		}
		if pw, ok := u.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return invalid(msg)
}

// RedactURL returns rawURL for logs: the password of the user info and
// the values of the query's sentinel_password and password replaced by
// "xxxxx". Unlike url.URL.Redacted it handles host lists and passwords in
// the query; what follows a '#' is dropped.
func RedactURL(rawURL string) string {
	rawURL, _, _ = strings.Cut(rawURL, "#")
	sch, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		if rawURL == "" {
			return ""
		}
		return "[not a URL]"
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		if user, _, hasPassword := strings.Cut(authority[:i], ":"); hasPassword {
			authority = user + ":xxxxx" + authority[i:]
		}
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if hasQuery {
		params := strings.Split(query, "&")
		for i, p := range params {
			k, _, _ := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(k); err != nil || name == "sentinel_password" || name == "password" {
				params[i] = k + "=xxxxx"
			}
		}
		path += "?" + strings.Join(params, "&")
	}
	return sch + "://" + authority + path
}
