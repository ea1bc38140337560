package slacktest

import (
	"maps"
	"math"
	"net/url"
	"time"
)

// Rate is a token bucket: Burst calls may be made at once, and the bucket
// earns one more call every Every, up to Burst.
type Rate struct {
	Every time.Duration // time to earn one call; zero: no limit
	Burst int           // the bucket's size; less than 1 means 1
}

// PerMinute returns the Rate of n calls a minute with bursts of burst.
func PerMinute(n, burst int) Rate {
	return Rate{Every: time.Minute / time.Duration(max(n, 1)), Burst: burst}
}

// Limits are the rate limits the server enforces once they are turned on
// with WithRateLimits or SetRateLimits.
//
// A call over a limit is not performed: it is answered HTTP 429 with
// {"ok":false,"error":"ratelimited"} and a Retry-After header in whole
// seconds, as Slack does, and its key (the channel for chat.postMessage,
// the method for the others) stays limited until that Retry-After has
// passed, whatever the bucket holds by then. Calls made before it passed
// are counted in RateStats.InWindow: a well-behaved client makes none.
type Limits struct {
	// PostPerChannel limits chat.postMessage to each channel.
	PostPerChannel Rate
	// Methods limits the listed methods workspace-wide, each on its own.
	Methods map[string]Rate
	// Scale runs the model's clock Scale times as fast as the real one, so
	// that a test can run the same shape in a fraction of the time: with
	// Scale 10 a bucket earns a call ten times as often, and a Retry-After
	// of 1 (second, in model time) ends after 100ms. Zero means 1. Retry-After
	// headers stay whole model seconds, so a client that waits them out
	// literally waits Scale times longer than it needs to.
	Scale float64
	// Rounding turns the wait until a bucket has a call into the
	// Retry-After header's whole seconds; the zero value rounds up.
	Rounding Rounding
}

// Rounding is how the model turns a wait into Retry-After seconds. Slack
// does not document its own; the benchmark varies it.
type Rounding int

// The roundings. Every one answers at least 1 second.
const (
	RoundUp      Rounding = iota // the wait rounded up: a client that waits it finds a call in the bucket
	RoundNearest                 // to the nearest second: a client that waits it may find the bucket still empty and get another 429
	RoundUpPlus1                 // rounded up, plus one second, as a server that pads its answers
)

// seconds returns d (model time) as the whole Retry-After seconds r gives.
func (r Rounding) seconds(d float64) int {
	var n int
	switch r {
	case RoundNearest:
		n = int(math.Round(d))
	case RoundUpPlus1:
		n = int(math.Ceil(d-1e-9)) + 1
	default:
		n = int(math.Ceil(d - 1e-9))
	}
	return max(1, n)
}

func (r Rounding) String() string {
	switch r {
	case RoundNearest:
		return "nearest"
	case RoundUpPlus1:
		return "up+1"
	}
	return "up"
}

// ParseRounding returns the Rounding named s ("up", "nearest" or "up+1").
func ParseRounding(s string) (Rounding, bool) {
	for _, r := range []Rounding{RoundUp, RoundNearest, RoundUpPlus1} {
		if r.String() == s {
			return r, true
		}
	}
	return RoundUp, false
}

// InFlightMargin is how long after a 429 was answered a call on its key
// may still arrive and count as sent before the client could know of it
// (RateStats.AfterAnswer leaves those out): on one machine, a call in
// flight arrives within microseconds, or a few milliseconds under load.
const InFlightMargin = 20 * time.Millisecond

// SlackLimits returns Slack's published limits: chat.postMessage about one
// message a second per channel, with bursts of about 25 (observed); Tier 2
// (20 a minute) usergroups.users.list and users.list; Tier 3 (50 a minute) chat.update,
// chat.delete, conversations.open, conversations.info and
// users.lookupByEmail; Tier 4 (100 a minute) chat.postEphemeral and
// users.info. Slack does not publish the
// bursts of the tiers; these allow about 12 seconds' worth at once (5, 10
// and 20 calls).
func SlackLimits() Limits {
	tier2, tier3, tier4 := PerMinute(20, 5), PerMinute(50, 10), PerMinute(100, 20)
	return Limits{
		PostPerChannel: Rate{Every: time.Second, Burst: 25},
		Methods: map[string]Rate{
			"usergroups.users.list": tier2,
			"users.list":            tier2,
			"chat.update":           tier3,
			"chat.delete":           tier3,
			"conversations.open":    tier3,
			"users.lookupByEmail":   tier3,
			"chat.postEphemeral":    tier4,
			"users.info":            tier4,
			"conversations.info":    tier3,
			"views.open":            tier4,
			"views.publish":         tier4,
		},
		Scale: 1,
	}
}

// WithRateLimits turns on rate limits from the start.
func WithRateLimits(l Limits) Option {
	return func(s *Server) { s.setLimitsLocked(l) }
}

// SetRateLimits replaces the rate limits; the zero Limits turns them off.
// Buckets start full, and Retry-After windows announced under the earlier
// limits are forgotten (those of Throttle are kept). RateStats keeps
// counting.
func (s *Server) SetRateLimits(l Limits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLimitsLocked(l)
}

func (s *Server) setLimitsLocked(l Limits) {
	l.Methods = maps.Clone(l.Methods)
	if l.Scale <= 0 {
		l.Scale = 1
	}
	s.limits = l
	s.buckets = map[string]*bucket{}
	s.windows = map[string]time.Time{}
	s.answered = map[string]time.Time{}
}

// ChannelKey is the rate-limit key of chat.postMessage to channel, as used
// in RateStats; the key of any other method is its name.
func ChannelKey(channel string) string { return "chat.postMessage " + channel }

// ThrottleChannel makes chat.postMessage to channel answer 429 for d from
// now, whether or not rate limits are on, as if Slack's bucket for the
// channel were empty: each 429 announces the time left (in whole seconds,
// at least 1) as Retry-After, and calls before that has passed count as
// InWindow. d <= 0 lifts it.
func (s *Server) ThrottleChannel(channel string, d time.Duration) {
	s.throttle(ChannelKey(normalizeChannel(channel)), d)
}

// ThrottleMethod is ThrottleChannel for every call of method.
func (s *Server) ThrottleMethod(method string, d time.Duration) { s.throttle(method, d) }

func (s *Server) throttle(key string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.throttles, key)
		return
	}
	s.throttles[key] = s.clock().Add(d)
}

// RateStats counts Web API calls and their rate limiting. Maps are by
// method ("chat.postMessage"), or by key for the ...ByKey maps (a method,
// or ChannelKey(channel) for chat.postMessage).
type RateStats struct {
	// Calls counts every call received, whatever the answer; posts to
	// response URLs count as "response_url".
	Calls map[string]int
	// Limited counts 429 answers: modelled, Throttle's and RateLimit's.
	Limited      map[string]int
	LimitedByKey map[string]int
	// InWindow counts calls made while a Retry-After the server had
	// announced for their key was still running (RateLimit's answers
	// announce no window). These calls are answered 429 too.
	InWindow      map[string]int
	InWindowByKey map[string]int
	// AfterAnswer counts the InWindow calls that arrived more than
	// InFlightMargin after the 429 that opened their window was answered:
	// calls the client sent although it had been told to wait (the others
	// were in flight when Slack answered).
	AfterAnswer map[string]int
	// Late is, by method, the longest time after its 429 was answered
	// that an AfterAnswer call arrived, over the server's whole life
	// (Since keeps it as it is): a few tens of milliseconds suggest a call
	// already on its way, a second one that was not.
	Late map[string]time.Duration
}

// RateStats returns the counts so far.
func (s *Server) RateStats() RateStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	return RateStats{Calls: maps.Clone(st.Calls), Limited: maps.Clone(st.Limited),
		LimitedByKey: maps.Clone(st.LimitedByKey), InWindow: maps.Clone(st.InWindow),
		InWindowByKey: maps.Clone(st.InWindowByKey), AfterAnswer: maps.Clone(st.AfterAnswer), Late: maps.Clone(st.Late)}
}

// Since returns the counts added after earlier was taken.
func (r RateStats) Since(earlier RateStats) RateStats {
	sub := func(a, b map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range a {
			if d := v - b[k]; d != 0 {
				out[k] = d
			}
		}
		return out
	}
	return RateStats{Calls: sub(r.Calls, earlier.Calls), Limited: sub(r.Limited, earlier.Limited),
		LimitedByKey: sub(r.LimitedByKey, earlier.LimitedByKey), InWindow: sub(r.InWindow, earlier.InWindow),
		InWindowByKey: sub(r.InWindowByKey, earlier.InWindowByKey), AfterAnswer: sub(r.AfterAnswer, earlier.AfterAnswer),
		Late: r.Late}
}

// Total returns the sum of the counts in m.
func Total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func newRateStats() RateStats {
	return RateStats{Calls: map[string]int{}, Limited: map[string]int{}, LimitedByKey: map[string]int{},
		InWindow: map[string]int{}, InWindowByKey: map[string]int{}, AfterAnswer: map[string]int{},
		Late: map[string]time.Duration{}}
}

// bucket is one key's token bucket.
type bucket struct {
	tokens float64
	at     time.Time // real time tokens was computed
}

// limitLocked decides whether a call of method at time at is over a limit
// or inside an announced window. It returns the Retry-After to answer in
// whole seconds, or 0 to perform the call (which then has used its
// buckets' tokens); opened names the key whose window this answer opens
// ("" when none), for answeredLocked.
func (s *Server) limitLocked(method string, p url.Values, at time.Time) (secs int, opened string) {
	keys := []string{method}
	if method == "chat.postMessage" {
		if ch := normalizeChannel(p.Get("channel")); ch != "" {
			keys = append(keys, ChannelKey(ch))
		}
	}
	scale := s.limits.Scale
	limit := func(key string, wait time.Duration) (int, string) {
		n := s.limits.Rounding.seconds(wait.Seconds() * scale)
		s.windows[key] = at.Add(time.Duration(float64(n) * float64(time.Second) / scale))
		s.answered[key] = time.Time{} // not answered yet: calls now are in flight
		s.stats.Limited[method]++
		s.stats.LimitedByKey[key]++
		return n, key
	}
	for _, k := range keys {
		if until, ok := s.windows[k]; ok && at.Before(until) {
			s.stats.InWindow[method]++
			s.stats.InWindowByKey[k]++
			if ans := s.answered[k]; !ans.IsZero() && at.Sub(ans) > InFlightMargin {
				s.stats.AfterAnswer[method]++
				s.stats.Late[method] = max(s.stats.Late[method], at.Sub(ans))
			}
			s.stats.Limited[method]++
			s.stats.LimitedByKey[k]++
			return max(1, int(math.Ceil(until.Sub(at).Seconds()*scale-1e-9))), ""
		}
	}
	for _, k := range keys {
		if until, ok := s.throttles[k]; ok {
			if at.Before(until) {
				return limit(k, until.Sub(at))
			}
			delete(s.throttles, k)
		}
	}
	var take []*bucket
	for _, k := range keys {
		rate, ok := s.rateLocked(method, k)
		if !ok {
			continue
		}
		b := s.buckets[k]
		burst := float64(max(rate.Burst, 1))
		if b == nil {
			b = &bucket{tokens: burst, at: at}
			s.buckets[k] = b
		}
		if at.After(b.at) {
			b.tokens = min(burst, b.tokens+float64(at.Sub(b.at))*scale/float64(rate.Every))
			b.at = at
		}
		if b.tokens < 1 {
			wait := time.Duration((1 - b.tokens) * float64(rate.Every) / scale)
			return limit(k, wait)
		}
		take = append(take, b)
	}
	for _, b := range take {
		b.tokens--
	}
	return 0, ""
}

// answeredLocked records that the 429 which opened key's window was
// answered at at: calls on key that arrive later than InFlightMargin after
// it, inside the window, were sent by a client that had been told to wait.
func (s *Server) answeredLocked(key string, at time.Time) {
	if key != "" && s.answered[key].IsZero() {
		s.answered[key] = at
	}
}

// rateLocked returns the Rate of key for a call of method, if limited.
func (s *Server) rateLocked(method, key string) (Rate, bool) {
	r, ok := s.limits.Methods[method]
	if key != method {
		r, ok = s.limits.PostPerChannel, true
	}
	return r, ok && r.Every > 0
}
