package redisstore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/example/resetbot/delivery"
	"github.com/example/resetbot/workflow"
)

// The delivery lanes (package delivery) live in these keys, after the
// tagged prefix:
//
//	lane:<lane>           the lane's record, sealed for the lane (seal.SealLane); expires after the retention
//	tampered-lane:<lane>  a record that failed verification, moved aside
//	lease:<lane>          the owner holding the lane, expiring with the lease
//	inbox:<lane>          set of the items marked for the lane and not yet handled
//	lanes-due             sorted set of lanes by due time (unix ms), written with each change (markLua)

// takeScript leases a lane unless another owner holds it, moves its due
// time to the lease's end when it was due, and answers the record, the due
// time, the inbox and the lane's request. It answers {0} when another
// owner holds it.
// KEYS: lease, lane, lanes-due, inbox, req (the lane's request; any key of the store for an
// approver's lane). ARGV: owner, lease ms, lane, until ms, now ms, "1" to read the request.
var takeScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local due = redis.call('ZSCORE', KEYS[3], ARGV[3])
if due and tonumber(due) <= tonumber(ARGV[5]) then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
  due = ARGV[4]
end
local req = false
if ARGV[6] == '1' then req = redis.call('GET', KEYS[5]) end
return {1, redis.call('GET', KEYS[2]), due or '', redis.call('SMEMBERS', KEYS[4]), req}
`)

// putScript saves a lane's record for its lease holder, removes the
// handled items, and sets the due time unless a change marked the lane
// since it was taken (its due time is then not the one Take left). It
// answers 0 when owner does not hold the lease.
// KEYS: lease, lane, lanes-due, inbox.
// ARGV: owner, record ("" to keep it), lane, due time at Take (ms, "" for none), next (ms, "" for
// none), "1" to release, retention ms ("" to keep for ever), then the handled items.
var putScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2])
  if ARGV[7] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[7]) end
end
for i = 8, #ARGV do redis.call('SREM', KEYS[4], ARGV[i]) end
local due = redis.call('ZSCORE', KEYS[3], ARGV[3])
local unchanged = (not due and ARGV[4] == '') or (due and ARGV[4] ~= '' and tonumber(due) == tonumber(ARGV[4]))
if unchanged then
  if ARGV[5] == '' then redis.call('ZREM', KEYS[3], ARGV[3]) else redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3]) end
end
if ARGV[6] == '1' then redis.call('DEL', KEYS[1]) end
return 1
`)

// quarantineLaneScript moves a lane record that failed verification aside,
// unless it changed since it was read. KEYS: lane, tampered-lane. ARGV: the
// record as read, retention ms ("" for none).
var quarantineLaneScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
if ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
`)

func (s *Store) laneKeys(l delivery.Lane) []string {
	n := l.String()
	return []string{s.key("lease:", n), s.key("lane:", n), s.key("lanes-due"), s.key("inbox:", n)}
}

// DueLanes implements delivery.Store. max <= 0 means no limit.
func (s *Store) DueLanes(ctx context.Context, now time.Time, limit int) ([]delivery.Lane, error) {
	names, err := s.rdb.ZRangeByScore(ctx, s.key("lanes-due"), &redis.ZRangeBy{
		Min: "-inf", Max: ms(now.UnixMilli()), Count: int64(max(limit, 0)),
	}).Result()
	if err != nil {
		return nil, unavailable("due lanes", err)
	}
	out := make([]delivery.Lane, 0, len(names))
	for _, n := range names {
		if l, ok := delivery.ParseLane(n); ok {
			out = append(out, l)
		}
	}
	return out, nil
}

// Take implements delivery.Store: one round trip, the lane's request
// included.
func (s *Store) Take(ctx context.Context, l delivery.Lane, owner string, now, until time.Time) (delivery.Taken, bool, error) {
	lease := max(until.Sub(now).Milliseconds(), 1)
	id, readReq := l.Request(), "0"
	keys := append(s.laneKeys(l), s.key("due"))
	if workflow.ValidID(id) {
		keys[4], readReq = s.key("req:", id), "1"
	}
	res, err := takeScript.Run(ctx, s.rdb, keys, owner, lease, l.String(), ms(until.UnixMilli()), ms(now.UnixMilli()), readReq).Slice()
	if err != nil {
		return delivery.Taken{}, false, unavailable("take lane", err)
	}
	if len(res) < 5 || res[0] != int64(1) {
		return delivery.Taken{}, false, nil
	}
	t := delivery.Taken{Lane: l}
	if v, ok := res[2].(string); ok && v != "" {
		msec, _ := strconv.ParseFloat(v, 64)
		t.Due = time.UnixMilli(int64(msec))
	}
	if items, ok := res[3].([]any); ok {
		for _, it := range items {
			if v, ok := it.(string); ok {
				t.Inbox = append(t.Inbox, v)
			}
		}
	}
	if sealed, ok := res[1].(string); ok {
		data, err := s.seal.OpenLane(l.String(), []byte(sealed))
		if workflow.ErrorCode(err) == workflow.CodeTampered {
			if qerr := quarantineLaneScript.Run(ctx, s.rdb, []string{s.key("lane:", l.String()), s.key("tampered-lane:", l.String())}, sealed, s.retentionArg()).Err(); qerr != nil {
				err = errors.Join(err, unavailable("move a tampered delivery record aside", qerr))
			}
			// The lease goes with the refusal: whoever takes the lane again starts afresh.
			s.rdb.Del(ctx, s.key("lease:", l.String()))
		}
		if err != nil {
			return delivery.Taken{}, false, err
		}
		t.Data = data
	}
	if req, ok := res[4].(string); ok {
		t.Request, _ = s.open(ctx, id, []byte(req)) // nil when refused (moved aside)
	}
	return t, true, nil
}

// Put implements delivery.Store: one round trip.
func (s *Store) Put(ctx context.Context, t delivery.Taken, owner string, data []byte, handled []string, next time.Time, release bool) error {
	record := ""
	if data != nil {
		sealed, err := s.seal.SealLane(t.Lane.String(), data)
		if err != nil {
			return err
		}
		record = string(sealed)
	}
	due, nextArg, rel := "", "", "0"
	if !t.Due.IsZero() {
		due = ms(t.Due.UnixMilli())
	}
	if !next.IsZero() {
		nextArg = ms(next.UnixMilli())
	}
	if release {
		rel = "1"
	}
	args := []any{owner, record, t.Lane.String(), due, nextArg, rel, s.retentionArg()}
	for _, h := range handled {
		args = append(args, h)
	}
	n, err := putScript.Run(ctx, s.rdb, s.laneKeys(t.Lane), args...).Int()
	switch {
	case err != nil:
		return unavailable("put lane", err)
	case n != 1:
		return delivery.LeaseLost(t.Lane)
	}
	return nil
}

// retentionArg is the retention in ms for a script, "" to keep for ever.
func (s *Store) retentionArg() string {
	if s.retention <= 0 {
		return ""
	}
	return ms(max(s.retention.Milliseconds(), 1))
}

// TamperLane rewrites the stored record of lane l with edit, behind the
// store's back, for the conformance suite's tampering tests.
func (s *Store) TamperLane(ctx context.Context, l delivery.Lane, edit func([]byte) []byte) error {
	k := s.key("lane:", l.String())
	b, err := s.rdb.Get(ctx, k).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return s.rdb.Set(ctx, k, edit(b), 0).Err()
}
