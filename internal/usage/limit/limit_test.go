package limit_test

import (
	"context"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/limit"
)

var now = time.Date(2026, 3, 14, 23, 59, 0, 0, time.UTC)

func TestNoLimitsIsNil(t *testing.T) {
	l := limit.New(limit.Limits{})
	if l != nil {
		t.Fatal("no limits must give a nil Limiter")
	}
	if v := l.Allow(nil, now); !v.OK {
		t.Fatal("a nil Limiter must allow")
	}
}

func TestRateAndBurst(t *testing.T) {
	c := usage.New(usage.Options{NoLoop: true})
	s := c.Subject(usage.SubjectID{Org: "o", Key: "k"})
	l := limit.New(limit.Limits{Rate: 2, Burst: 3})
	for i := range 3 {
		if v := l.Allow(s, now); !v.OK {
			t.Fatalf("request %d within the burst refused: %+v", i, v)
		}
	}
	v := l.Allow(s, now)
	if v.OK || v.Limit != limit.NameRate {
		t.Fatalf("the 4th request at once: %+v", v)
	}
	if v.RetryAfter <= 0 || v.RetryAfter > 500*time.Millisecond {
		t.Fatalf("Retry-After %v, want (0, 500ms] at 2/s", v.RetryAfter)
	}
	if v := l.Allow(s, now.Add(500*time.Millisecond)); !v.OK {
		t.Fatalf("after 500ms at 2/s one request must pass: %+v", v)
	}
}

func TestDefaultBurst(t *testing.T) {
	l := limit.New(limit.Limits{Rate: 0.5})
	if !l.Allow(nil, now).OK || l.Allow(nil, now).OK {
		t.Fatal("a rate of 0.5/s without a burst must allow exactly one at once")
	}
}

func TestDailyIsCheckedFirstAndNamed(t *testing.T) {
	c := usage.New(usage.Options{NoLoop: true, Now: func() time.Time { return now }})
	s := c.Subject(usage.SubjectID{Org: "o", Key: "k"})
	l := limit.New(limit.Limits{Rate: 1, Burst: 1, Daily: 2})
	s.Add(usage.TilesRedirected, 2)
	v := l.Allow(s, now)
	if v.OK || v.Limit != limit.NameDaily || v.RetryAfter != time.Minute {
		t.Fatalf("over the daily quota at 23:59: %+v", v)
	}
	c.Close(context.Background())
}
