// Package redisstore keeps workflow requests in Redis, so that several
// replicas of the bot share them. Every change is one Lua script: Create
// checks and writes in one step, Update is a compare-and-set on the stored
// JSON.
//
// Redis may be a standalone server, a primary watched by Sentinels, or a
// Redis Cluster (see Dial for the URLs). In a cluster a script may only
// touch keys of one hash slot, so every key of a Store carries the same hash
// tag, derived from the prefix given to New (see KeyPrefix):
//
//	prefix "resetbot:"      keys "{resetbot}:req:<id>", "{resetbot}:due", ...
//	prefix "app:resetbot:"  keys "{app:resetbot}:req:<id>", ...
//	prefix "{rb}:x:"        keys "{rb}:x:req:<id>", ... (a prefix with a tag is kept)
//
// All of a deployment's keys thus live on one cluster shard: Cluster gives
// the bot availability and lets it share a managed cluster (ElastiCache in
// cluster mode), not more throughput, which it does not need. Two
// deployments with different prefixes land in different slots.
//
// Keys, after the tagged prefix:
//
//	req:<id>            the request, sealed (package seal: its JSON with an HMAC of a key Redis
//	                    never holds); expires after the retention once ended
//	tampered:<id>       a record that failed verification, moved aside for the operator (kept for
//	                    the retention); no index points at it
//	open:<requester>    ID of the requester's open request
//	due                 sorted set of request IDs by NextDeadline (unix ms)
//	rate:<counter>      sorted set of a requester's attempts of one action that count against its limit
//	                    (workflow.Counter: the requester for resets, "unlock:<requester>" for unlocks), by
//	                    time (unix ms): request IDs of creations, "refused:<id>" of refusals they caused
//	claim:<key>         claims of Claim, with their ttl
//	audit               stream of the audit log (workflow.AuditRecord JSON in field "r"),
//	                    written in the same script as the change; trimmed to the audit retention
//	recent              sorted set of the latest workflow.RecentKept request IDs, by creation (unix ms)
//	resets:<account>    sorted set of the bot's completed resets of an account (workflow.Account.AccountKey):
//	                    request IDs by completion time (unix ms), written in the same script as the
//	                    completion; entries older than workflow.ResetHistoryWindow dropped then, and
//	                    the key expires that long after the last
//	slack-throttle      hash of Slack keys -> end of their Retry-After (unix ms), shared by replicas;
//	                    also the Pub/Sub channel on which Throttle announces each (Watch)
//
// Keys written before the hash tag (prefix+"req:<id>", ...) are not read.
// Upgrade by stopping every replica before starting the new version (a
// rolling update would run old and new replicas that do not see each
// other's requests). Requests open at that moment are orphaned: their
// buttons answer that the request is gone, and the employee asks again,
// with a fresh rate-limit window. Ended requests expire on their own; list
// the other old keys with redis-cli --scan --pattern 'resetbot:*' (the
// prefix, then *: the new keys begin with "{") and delete them.
//
// What holds across a failover: each script runs atomically on the
// primary, so among the writes a primary acknowledged, a state change
// happens once and two writers never both win a compare-and-set.
// Replication is asynchronous, though: when the primary dies and Sentinel
// (or the cluster) promotes a replica, the writes the replica had not
// received yet (typically those of the last moment) are gone, and the
// requests they changed are back at an earlier version. A lost Create is a
// request never made; a lost decision leaves the request pending again; a
// lost step of a reset leaves it approved or resetting, so that, as after a
// replica crash mid-reset, the employee's next Reveal sets a new password
// and the last one shown is the valid one. Chat messages are sent at least
// once anyway. During a failover, calls fail with workflow.CodeUnavailable
// for a few seconds and then succeed again through the same client. To
// keep an isolated old primary from accepting writes that will be
// discarded, run it with min-replicas-to-write 1.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/store/seal"
	"github.com/example/resetbot/workflow"
	"github.com/redis/go-redis/v9"
)

var (
	_ workflow.Store = (*Store)(nil)
	_ delivery.Store = (*Store)(nil)
)

// Store is a workflow.Store in Redis.
type Store struct {
	rdb       redis.UniversalClient
	prefix    string
	seal      seal.Key
	retention time.Duration
	auditKeep time.Duration
}

// Option configures a Store.
type Option func(*Store)

// WithRetention sets how long an ended request is kept (default 30 days);
// d <= 0 keeps it forever.
func WithRetention(d time.Duration) Option { return func(s *Store) { s.retention = d } }

// DefaultAuditRetention is how long audit records are kept by default.
const DefaultAuditRetention = 400 * 24 * time.Hour

// WithAuditRetention sets how long the audit log keeps records (default
// DefaultAuditRetention).
func WithAuditRetention(d time.Duration) Option { return func(s *Store) { s.auditKeep = d } }

// New returns a Store that keeps its keys under prefix (e.g. "resetbot:"),
// made into a hash tag by KeyPrefix, and seals every request with key.
// client may be any client of Dial: a standalone or Sentinel (failover)
// *redis.Client or a *redis.ClusterClient. A Store with the zero key reads
// and writes no request (workflow.CodeInternal), only the audit log.
func New(client redis.UniversalClient, prefix string, key seal.Key, opts ...Option) *Store {
	s := &Store{rdb: client, prefix: KeyPrefix(prefix), seal: key, retention: 30 * 24 * time.Hour, auditKeep: DefaultAuditRetention}
	for _, o := range opts {
		o(s)
	}
	return s
}

// KeyPrefix returns the beginning of every key of New(client, prefix): the
// prefix as a Redis Cluster hash tag, so that all the keys share one slot.
// A prefix that already holds a hash tag (a "{", later a "}", something
// between) is returned as it is; otherwise the prefix without one trailing
// ":" goes inside braces ("resetbot:" -> "{resetbot}:", "rb" -> "{rb}"),
// and an empty one becomes "{resetbot}:". Tests and tools that scan a
// Store's keys match KeyPrefix(prefix)+"*".
func KeyPrefix(prefix string) string {
	if hasHashTag(prefix) {
		return prefix
	}
	tag := strings.TrimSuffix(prefix, ":")
	if tag == "" {
		return "{resetbot}:"
	}
	return "{" + tag + "}" + prefix[len(tag):]
}

// hasHashTag tells whether Redis Cluster hashes only part of key: the part
// between the first "{" and the first "}" after it, when that is not empty.
func hasHashTag(key string) bool {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return false
	}
	return strings.IndexByte(key[open+1:], '}') > 0
}

// markLua writes a change's delivery marks (delivery.Marks): each lane
// due at the change's time unless due earlier (ZADD LT), and its item in
// its inbox. Its caller sets: d, the lanes-due key; first, the KEYS index
// of the first mark's inbox; a, the ARGV index of the change's time (ms),
// followed by lane/item pairs.
const markLua = `
local m = 0
for i = a + 1, #ARGV, 2 do
  redis.call('ZADD', d, 'LT', ARGV[a], ARGV[i])
  if ARGV[i + 1] ~= '' then redis.call('SADD', KEYS[first + m], ARGV[i + 1]) end
  m = m + 1
end
`

// createScript is Create's atomic step.
// KEYS: req, open, rate, due, audit, lanes-due, recent, then one inbox per mark.
// ARGV: json, id, created ms, rate cutoff ms ("" for no limit), max, window ms, deadline ms ("" for none),
// audit cutoff id, the number n of audit records, n audit record JSONs, the time (ms), then the marks
// (lane, item) of markLua.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 'open' end
if redis.call('EXISTS', KEYS[1]) == 1 then return 'exists' end
if ARGV[4] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return 'rate' end
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[4], ARGV[7], ARGV[2]) end
local n = tonumber(ARGV[9])
for i = 10, 9 + n do redis.call('XADD', KEYS[5], 'MINID', '~', ARGV[8], '*', 'r', ARGV[i]) end
redis.call('ZADD', KEYS[7], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -` + strconv.Itoa(workflow.RecentKept+1) + `)
local d, first, a = KEYS[6], 8, 10 + n
` + markLua + `
return 'ok'
`)

// updateScript is Update's compare-and-set: it writes only if the request
// is byte-identical to what was read, and keeps the indexes in step and
// writes the change's audit records and delivery marks. It answers 1 when
// it wrote, the stored JSON when that differs (so that a retry needs no
// GET), and nil when the request is gone.
// A change that completes a reset also adds it to the account's reset
// history.
// KEYS: req, due, open, audit, lanes-due, resets, then one inbox per mark.
// ARGV: old json, new json, id, deadline ms ("" for none), "1" if ended, retention ms ("" for none),
// audit cutoff id, completion ms ("" when the change completes no reset), history window ms,
// the number n of audit records, n audit record JSONs, the time (ms), then the marks
// (lane, item) of markLua.
var updateScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return cur end
if ARGV[8] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. (tonumber(ARGV[8]) - tonumber(ARGV[9])))
  redis.call('ZADD', KEYS[6], ARGV[8], ARGV[3])
  redis.call('PEXPIRE', KEYS[6], ARGV[9])
end
local n = tonumber(ARGV[10])
for i = 11, 10 + n do redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[7], '*', 'r', ARGV[i]) end
local d, first, a = KEYS[5], 7, 11 + n
` + markLua + `
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
if ARGV[5] == '1' then
  if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
  if ARGV[6] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
end
return 1
`)

// maxAttempts bounds Update's compare-and-set retries.
const maxAttempts = 50

func (s *Store) key(parts ...string) string {
	k := s.prefix
	for _, p := range parts {
		k += p
	}
	return k
}

// Create implements workflow.Store. A Limit with Max or Window <= 0 means no limit.
func (s *Store) Create(ctx context.Context, r *workflow.Request, limit workflow.Limit) error {
	if !workflow.ValidID(r.ID) || r.Requester == "" || r.Status.Terminal() || r.Status == "" {
		return workflow.Errorf(workflow.CodeInvalidInput, "only a new open request with an ID and a requester can be created")
	}
	data, err := s.seal.Seal(r)
	if err != nil {
		return err
	}
	created := r.CreatedAt.UnixMilli()
	cutoff, window := "", ""
	if limit.Max > 0 && limit.Window > 0 {
		cutoff = ms(created - limit.Window.Milliseconds())
		window = ms(max(limit.Window.Milliseconds(), 1))
	}
	keys := []string{s.key("req:", r.ID), s.key("open:", r.Requester), s.key("rate:", workflow.Counter(r.Requester, r.Action)), s.key("due"), s.key("audit"), s.key("lanes-due"), s.key("recent")}
	args := []any{data, r.ID, ms(created), cutoff, limit.Max, window, deadline(r), s.auditCutoff()}
	keys, args = s.changeArgs(keys, args, r, 0)
	res, err := createScript.Run(ctx, s.rdb, keys, args...).Text()
	if err == nil && res == "open" && s.dropStaleOpen(ctx, r.Requester) {
		res, err = createScript.Run(ctx, s.rdb, keys, args...).Text()
	}
	if err != nil {
		return unavailable("create", err)
	}
	switch res {
	case "ok":
		return nil
	case "open":
		return workflow.Errorf(workflow.CodeOpenRequest, "%s already has an open request", r.Requester)
	case "rate":
		return workflow.Errorf(workflow.CodeRateLimited, "%s made %d %s attempts in the last %s", r.Requester, limit.Max, r.Action.Name(), limit.Window)
	case "exists":
		return workflow.Errorf(workflow.CodeConflict, "request %s already exists", r.ID)
	}
	return workflow.Errorf(workflow.CodeInternal, "create script answered %q", res)
}

// dropStaleScript deletes an open-request index entry whose request is
// gone. KEYS: open, req (of the ID it held). ARGV: that ID.
var dropStaleScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// dropStaleOpen deletes requester's open-request entry when it points at a
// request that is gone (a record moved aside as tampered, under another
// requester's name), and reports whether it did.
func (s *Store) dropStaleOpen(ctx context.Context, requester string) bool {
	id, err := s.rdb.Get(ctx, s.key("open:", requester)).Result()
	if err != nil {
		return false
	}
	n, err := dropStaleScript.Run(ctx, s.rdb, []string{s.key("open:", requester), s.key("req:", id)}, id).Int()
	return err == nil && n == 1
}

// Watched implements workflow.Store.
func (s *Store) Watched(ctx context.Context) (int, error) {
	n, err := s.rdb.ZCard(ctx, s.key("due")).Result()
	if err != nil {
		return 0, unavailable("watched", err)
	}
	return int(n), nil
}

// Standing implements workflow.Store: one round trip (a pipeline of the
// open-request index and the rate count), and one more to read an open
// request.
func (s *Store) Standing(ctx context.Context, requester string, action workflow.Action, since time.Time) (*workflow.Request, int, error) {
	var id *redis.StringCmd
	var n *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		id = p.Get(ctx, s.key("open:", requester))
		n = p.ZCount(ctx, s.key("rate:", workflow.Counter(requester, action)), "("+ms(since.UnixMilli()), "+inf")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, unavailable("standing", err)
	}
	if err := n.Err(); err != nil { // the pipeline reports only its first error
		return nil, 0, unavailable("standing", err)
	}
	if errors.Is(id.Err(), redis.Nil) {
		return nil, int(n.Val()), nil
	}
	open, err := s.openRequest(ctx, requester, id.Val())
	if workflow.ErrorCode(err) == workflow.CodeNoOpenRequest {
		return nil, int(n.Val()), nil
	}
	return open, int(n.Val()), err
}

// Get implements workflow.Store.
func (s *Store) Get(ctx context.Context, id string) (*workflow.Request, error) {
	r, _, err := s.get(ctx, id)
	return r, err
}

// GetMany returns the requests ids in one round trip (MGET), in order,
// nil for each that is gone or failed verification (moved aside, as by
// Get). Errors: CodeUnavailable.
func (s *Store) GetMany(ctx context.Context, ids []string) ([]*workflow.Request, error) {
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		if !workflow.ValidID(id) {
			return nil, workflow.Errorf(workflow.CodeNotFound, "%q is not a request ID", id)
		}
		keys = append(keys, s.key("req:", id))
	}
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable("get many", err)
	}
	out := make([]*workflow.Request, len(ids))
	for i, v := range vals {
		data, ok := v.(string)
		if !ok {
			continue
		}
		if r, err := s.open(ctx, ids[i], []byte(data)); err == nil {
			out[i] = r
		}
	}
	return out, nil
}

// get returns request id and its stored JSON.
func (s *Store) get(ctx context.Context, id string) (*workflow.Request, []byte, error) {
	if !workflow.ValidID(id) {
		return nil, nil, workflow.Errorf(workflow.CodeNotFound, "%q is not a request ID", id)
	}
	data, err := s.rdb.Get(ctx, s.key("req:", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil, workflow.Errorf(workflow.CodeNotFound, "no request %s", id)
	}
	if err != nil {
		return nil, nil, unavailable("get", err)
	}
	r, err := s.open(ctx, id, data)
	if err != nil {
		return nil, nil, err
	}
	return r, data, nil
}

// quarantineScript moves a record that failed verification aside, out of
// every index, unless it changed since it was read.
// KEYS: req, tampered, due, open (of the requester it claims).
// ARGV: the record as read, id, retention ms ("" for none).
var quarantineScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
if ARGV[3] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
redis.call('ZREM', KEYS[3], ARGV[2])
if redis.call('GET', KEYS[4]) == ARGV[2] then redis.call('DEL', KEYS[4]) end
return 1
`)

// open verifies data, the stored record of request id. A record that
// fails verification is moved aside (tampered:<id>) so that no index leads
// to it again, and CodeTampered is returned: the bot never acts on it.
func (s *Store) open(ctx context.Context, id string, data []byte) (*workflow.Request, error) {
	r, err := s.seal.Open(id, data)
	if workflow.ErrorCode(err) != workflow.CodeTampered {
		return r, err
	}
	retention := ""
	if s.retention > 0 {
		retention = ms(max(s.retention.Milliseconds(), 1))
	}
	keys := []string{s.key("req:", id), s.key("tampered:", id), s.key("due"), s.key("open:", seal.Requester(data))}
	if qerr := quarantineScript.Run(ctx, s.rdb, keys, data, id, retention).Err(); qerr != nil {
		return nil, errors.Join(err, unavailable("move a tampered request aside", qerr))
	}
	return nil, err
}

// Open implements workflow.Store.
func (s *Store) Open(ctx context.Context, requester string) (*workflow.Request, error) {
	id, err := s.rdb.Get(ctx, s.key("open:", requester)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, workflow.Errorf(workflow.CodeNoOpenRequest, "%s has no open request", requester)
	}
	if err != nil {
		return nil, unavailable("open", err)
	}
	return s.openRequest(ctx, requester, id)
}

// openRequest returns request id if it is requester's and open.
func (s *Store) openRequest(ctx context.Context, requester, id string) (*workflow.Request, error) {
	r, err := s.Get(ctx, id)
	if workflow.ErrorCode(err) == workflow.CodeNotFound || err == nil && (r.Status.Terminal() || r.Requester != requester) {
		return nil, workflow.Errorf(workflow.CodeNoOpenRequest, "%s has no open request", requester)
	}
	return r, err
}

// Update implements workflow.Store. fn may run several times; it must not
// call the store. It costs two round trips (GET, then the compare-and-set),
// and one more for each writer that came first.
func (s *Store) Update(ctx context.Context, id string, fn func(*workflow.Request) error) (*workflow.Request, error) {
	return s.update(ctx, id, nil, fn)
}

// update is Update's compare-and-set loop, starting from old, the stored
// JSON of request id when known (nil: read it first): a failed
// compare-and-set answers the stored version, so that a retry needs no
// read.
func (s *Store) update(ctx context.Context, id string, old []byte, fn func(*workflow.Request) error) (*workflow.Request, error) {
	if !workflow.ValidID(id) {
		return nil, workflow.Errorf(workflow.CodeNotFound, "%q is not a request ID", id)
	}
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return nil, unavailable("update", err)
			}
		}
		var r *workflow.Request
		var err error
		if r, old, err = s.current(ctx, id, old); err != nil {
			return nil, err
		}
		requester, before := r.Requester, len(r.Events)
		if err := fn(r); err != nil {
			return nil, err
		}
		if r.ID != id || r.Requester != requester {
			return nil, workflow.Errorf(workflow.CodeInternal, "an update of %s changed its ID or requester", id)
		}
		data, err := s.seal.Seal(r)
		if err != nil {
			return nil, err
		}
		ended, retention := "", ""
		if r.Status.Terminal() {
			ended = "1"
			if s.retention > 0 {
				retention = ms(max(s.retention.Milliseconds(), 1))
			}
		}
		completed := ""
		if at, ok := workflow.CompletedAt(r, before); ok {
			completed = ms(at.UnixMilli())
		}
		keys := []string{s.key("req:", id), s.key("due"), s.key("open:", requester), s.key("audit"), s.key("lanes-due"),
			s.key("resets:", r.Account.AccountKey())}
		args := []any{old, data, id, deadline(r), ended, retention, s.auditCutoff(), completed, ms(workflow.ResetHistoryWindow.Milliseconds())}
		keys, args = s.changeArgs(keys, args, r, before)
		res, err := updateScript.Run(ctx, s.rdb, keys, args...).Result()
		switch cur, stored := res.(string); {
		case errors.Is(err, redis.Nil):
			old = nil // gone meanwhile: current says so
		case err != nil:
			return nil, unavailable("update", err)
		case res == int64(1):
			return r, nil
		case stored:
			old = []byte(cur)
		default:
			return nil, workflow.Errorf(workflow.CodeInternal, "update script answered %v", res)
		}
	}
	return nil, workflow.Errorf(workflow.CodeConflict, "request %s changed %d times while updating it", id, maxAttempts)
}

// current decodes old, the stored JSON of request id, or reads it when old
// is nil; it returns the request and its stored JSON.
func (s *Store) current(ctx context.Context, id string, old []byte) (*workflow.Request, []byte, error) {
	if old != nil {
		r, err := s.open(ctx, id, old)
		if err != nil {
			return nil, nil, err
		}
		return r, old, nil
	}
	r, old, err := s.get(ctx, id)
	if workflow.ErrorCode(err) == workflow.CodeNotFound {
		// An ended request expired; drop a deadline it may have left.
		s.rdb.ZRem(ctx, s.key("due"), id)
	}
	return r, old, err
}

// Due implements workflow.Store. limit <= 0 means no limit.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.key("due"), &redis.ZRangeBy{
		Min: "-inf", Max: ms(now.UnixMilli()), Count: int64(max(limit, 0)),
	}).Result()
	if err != nil {
		return nil, unavailable("due", err)
	}
	return ids, nil
}

// Claim implements workflow.Store. ttl is rounded up to a millisecond.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if key == "" {
		return false, workflow.Errorf(workflow.CodeInvalidInput, "empty claim key")
	}
	ok, err := s.rdb.SetNX(ctx, s.key("claim:", key), 1, max(ttl, time.Millisecond)).Result()
	if err != nil {
		return false, unavailable("claim", err)
	}
	return ok, nil
}

// Ping implements workflow.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// deadline returns r's NextDeadline in unix ms, or "" when it has none.
func deadline(r *workflow.Request) string {
	t, ok := r.NextDeadline()
	if !ok {
		return ""
	}
	return ms(t.UnixMilli())
}

func ms(v int64) string { return strconv.FormatInt(v, 10) }

// unavailable wraps a Redis or network error.
func unavailable(op string, err error) error {
	return workflow.Wrap(workflow.CodeUnavailable, err, "redis "+op)
}

// pause waits a few random milliseconds before a compare-and-set retry, so
// that competing writers spread out.
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(rand.N(time.Duration(min(attempt, 10)) * time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SetLogger sends go-redis's own messages (such as failed dials during an
// outage) to log at warn level instead of its default stderr logger.
// go-redis keeps its logger in a global, so call this once, from main.
func SetLogger(log *slog.Logger) { redis.SetLogger(slogAdapter{log}) }

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// throttleTTL bounds how long the shared Retry-After windows are kept
// after the last one was recorded.
const throttleTTL = 10 * time.Minute

// Throttle records that the Slack key must not be called before until, for
// the other replicas (slackapp.Throttles).
func (s *Store) Throttle(ctx context.Context, key string, until time.Time) error {
	k := s.key("slack-throttle")
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, key, until.UnixMilli())
		p.PExpire(ctx, k, throttleTTL)
		p.Publish(ctx, k, ms(until.UnixMilli())+" "+key)
		return nil
	})
	if err != nil {
		return unavailable("throttle", err)
	}
	return nil
}

// Throttled returns the Slack keys that must not be called yet, with the
// end of their windows (slackapp.Throttles).
func (s *Store) Throttled(ctx context.Context) (map[string]time.Time, error) {
	all, err := s.rdb.HGetAll(ctx, s.key("slack-throttle")).Result()
	if err != nil {
		return nil, unavailable("throttled", err)
	}
	now := time.Now()
	out := map[string]time.Time{}
	for k, v := range all {
		msec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		if until := time.UnixMilli(msec); until.After(now) {
			out[k] = until
		}
	}
	return out, nil
}

// Watch calls learn with each window Throttle announces (Redis Pub/Sub on
// the channel named like the hash) until ctx ends (slackapp.Throttles). It
// calls subscribed once Redis has confirmed the subscription (or could not:
// then go-redis keeps trying), so that a read of the hash after it misses
// nothing announced before. A subscriber costs no round trip while nothing
// happens; go-redis resubscribes after a reconnection, and what was
// announced meanwhile is in the hash.
func (s *Store) Watch(ctx context.Context, subscribed func(), learn func(key string, until time.Time)) {
	ps := s.rdb.Subscribe(ctx, s.key("slack-throttle"))
	defer ps.Close()
	ps.Receive(ctx) // the confirmation; an error is retried by Channel
	subscribed()
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			at, key, found := strings.Cut(m.Payload, " ")
			msec, err := strconv.ParseInt(at, 10, 64)
			if found && err == nil {
				learn(key, time.UnixMilli(msec))
			}
		}
	}
}

// changeArgs appends to a change script's keys and arguments what the
// change of r that added r.Events[before:] writes besides the request: its
// audit records, and its delivery marks with their inboxes (markLua).
func (s *Store) changeArgs(keys []string, args []any, r *workflow.Request, before int) ([]string, []any) {
	recs := auditArgs(workflow.AuditRecords(r, before))
	args = append(append(args, len(recs)), recs...)
	args = append(args, ms(time.Now().UnixMilli()))
	for _, m := range delivery.Marks(r, before) {
		keys = append(keys, s.key("inbox:", m.Lane.String()))
		args = append(args, m.Lane.String(), m.Item)
	}
	return keys, args
}

// auditCutoff is the stream ID before which audit records are trimmed.
func (s *Store) auditCutoff() string {
	return ms(max(time.Now().Add(-s.auditKeep).UnixMilli(), 0))
}

// auditArgs encodes audit records as script arguments.
func auditArgs(recs []workflow.AuditRecord) []any {
	out := make([]any, 0, len(recs))
	for _, rec := range recs {
		b, err := json.Marshal(rec)
		if err != nil { // AuditRecord always encodes
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

// Refused implements workflow.Store: one MULTI/EXEC, which adds the
// record to the audit stream and, with a limit, the attempt to the
// requester's rate set (as a member of its own, "refused:<id>"), where
// Create's script and Standing count it.
func (s *Store) Refused(ctx context.Context, rec workflow.AuditRecord, limit workflow.Limit) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return workflow.Wrap(workflow.CodeInternal, err, "encode audit record")
	}
	counted := limit.Max > 0 && limit.Window > 0
	if counted && rec.User == "" {
		return workflow.Errorf(workflow.CodeInvalidInput, "a refusal that counts against the limit needs the user")
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.key("audit"), MinID: s.auditCutoff(), Approx: true, Values: []any{"r", b}})
		if counted {
			rate, at := s.key("rate:", workflow.Counter(rec.User, rec.Action)), rec.At.UnixMilli()
			p.ZRemRangeByScore(ctx, rate, "-inf", ms(at-limit.Window.Milliseconds()))
			p.ZAdd(ctx, rate, redis.Z{Score: float64(at), Member: "refused:" + workflow.NewID()})
			p.PExpire(ctx, rate, max(limit.Window, time.Millisecond))
		}
		return nil
	})
	if err != nil {
		return unavailable("audit", err)
	}
	return nil
}

// auditPage is how many stream entries Audit reads per round trip.
const auditPage = 1000

// Audit implements workflow.Store. It reads the whole stream, a page at a
// time (XRANGE with COUNT), and hands each record q.Match selects to each
// before it reads the next page: the stream's IDs are Redis's clock, the
// records' times the replicas', so the IDs are not used to narrow.
func (s *Store) Audit(ctx context.Context, q workflow.AuditQuery, each func(workflow.AuditRecord) error) error {
	start := "-"
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.key("audit"), start, "+", auditPage).Result()
		if err != nil {
			return unavailable("audit", err)
		}
		for _, m := range msgs {
			raw, _ := m.Values["r"].(string)
			var rec workflow.AuditRecord
			if json.Unmarshal([]byte(raw), &rec) != nil || !q.Match(rec) {
				continue
			}
			if err := each(rec); err != nil {
				return err
			}
		}
		if len(msgs) < auditPage {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// Resets implements workflow.Store: one ZRANGE.
func (s *Store) Resets(ctx context.Context, acct workflow.Account, since time.Time) (workflow.ResetHistory, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.key("resets:", acct.AccountKey()),
		&redis.ZRangeBy{Min: ms(since.UnixMilli()), Max: "+inf"}).Result()
	if err != nil {
		return workflow.ResetHistory{}, unavailable("resets", err)
	}
	done := make([]time.Time, len(zs))
	for i, z := range zs {
		done[i] = time.UnixMilli(int64(z.Score)).UTC()
	}
	return workflow.Tally(done, since), nil
}

// Recent implements workflow.Store: one ZREVRANGE.
func (s *Store) Recent(ctx context.Context, max int) ([]string, error) {
	if max <= 0 {
		return nil, nil
	}
	ids, err := s.rdb.ZRevRange(ctx, s.key("recent"), 0, int64(max-1)).Result()
	if err != nil {
		return nil, unavailable("recent", err)
	}
	return ids, nil
}
