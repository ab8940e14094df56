// Package limit enforces a key's limits: requests per second per instance
// (rate and burst, golang.org/x/time/rate) and requests per UTC day across
// all instances (usage.Subject.OverDaily).
package limit

import (
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/hexprox/hexprox/internal/usage"
)

// Limits are a key's limits, or the global defaults for v1 credential
// URLs (RATE_LIMIT, DAILY_REQUEST_LIMIT). Zero values mean no limit.
type Limits struct {
	Rate  float64 // requests per second, per instance
	Burst int     // requests allowed at once; 0 with a Rate: max(1, ceil(Rate))
	Daily int64   // requests per UTC day, across all instances (usage.Counts.Quota)
}

// The names of the limits, as a 429's exception text should give them.
const (
	NameRate  = "rate"
	NameDaily = "daily_requests"
)

// Verdict is a Limiter's answer for one request.
type Verdict struct {
	OK         bool
	Limit      string        // NameRate or NameDaily when !OK
	RetryAfter time.Duration // when !OK: how long until a request can pass
}

// Limiter holds one key's limits on this instance. A nil *Limiter allows
// everything. It is safe for concurrent use; the server keeps one per key
// (or v1 credential) for as long as it keeps the key's usage.Subject.
type Limiter struct {
	daily int64
	rl    *rate.Limiter // nil: no rate limit
}

// New returns a Limiter for l, or nil when l sets no limit.
func New(l Limits) *Limiter {
	if l.Rate <= 0 && l.Daily <= 0 {
		return nil
	}
	lim := &Limiter{daily: l.Daily}
	if l.Rate > 0 {
		burst := l.Burst
		if burst <= 0 {
			burst = max(1, int(math.Ceil(l.Rate)))
		}
		lim.rl = rate.NewLimiter(rate.Limit(l.Rate), burst)
	}
	return lim
}

// Allow decides one request of s at now. The daily quota is checked first,
// so that a request refused for it takes no rate token. A request refused
// here should be answered 429 with Retry-After and counted under
// usage.RateLimited (which the daily quota does not count).
func (l *Limiter) Allow(s *usage.Subject, now time.Time) Verdict {
	if l == nil {
		return Verdict{OK: true}
	}
	if l.daily > 0 {
		if retry, over := s.OverDaily(l.daily); over {
			return Verdict{Limit: NameDaily, RetryAfter: retry}
		}
	}
	if l.rl != nil && !l.rl.AllowN(now, 1) {
		// Time until one token is back.
		missing := 1 - l.rl.TokensAt(now)
		return Verdict{Limit: NameRate, RetryAfter: time.Duration(missing / float64(l.rl.Limit()) * float64(time.Second))}
	}
	return Verdict{OK: true}
}
