package usagetable_test

import (
	"context"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/azuritetest"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/usage"
)

// Three instances serve one key with a daily_requests limit, each at a
// steady rate, flushing every F at staggered times. Together they
// overshoot by no more than the documented bound, (N-1) × r × 2F.
func TestDailyQuotaOvershootAcrossThreeInstances(t *testing.T) {
	az := azuritetest.Start(t)
	sink := sinkOn(t, az.Endpoint(), "quota")
	clk := testclock.New(t0)
	const (
		n      = 3
		limit  = 1000
		step   = 100 * time.Millisecond
		perSec = 10 // requests per second per instance
		flush  = 5 * time.Second
	)
	id := usage.SubjectID{Org: "Acme", Key: "0badf00d"}
	cs := make([]*usage.Counter, n)
	ss := make([]*usage.Subject, n)
	for i := range cs {
		cs[i] = usage.New(usage.Options{Sink: sink, Instance: string(rune('a' + i)), Now: clk.Now, NoLoop: true, Flush: flush})
		ss[i] = cs[i].Subject(id)
	}
	stepsPerFlush := int(flush / step)
	refusing := 0
	for k := 0; refusing < 300; k++ {
		clk.Advance(step)
		for i := range cs {
			cs[i].Tick()
			if (k+i*stepsPerFlush/n)%stepsPerFlush == 0 {
				if err := cs[i].Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if retry, over := ss[i].OverDaily(limit); over {
				if retry <= 0 {
					t.Fatalf("over with Retry-After %v", retry)
				}
				ss[i].Inc(usage.RateLimited)
				refusing++
			} else {
				ss[i].Inc(usage.TilesRedirected)
			}
		}
	}
	for _, c := range cs {
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	var served int64
	for _, r := range readAll(t, sink) {
		served += r.Counts.Quota()
	}
	overshoot := served - limit
	bound := int64((n - 1) * perSec * 2 * int(flush/time.Second))
	t.Logf("daily_requests %d, %d instances at %d/s, flush %v: served %d, overshoot %d (bound %d)", limit, n, perSec, flush, served, overshoot, bound)
	if served < limit {
		t.Fatalf("refused before the limit: served %d of %d", served, limit)
	}
	if overshoot > bound {
		t.Fatalf("overshoot %d above the documented bound %d", overshoot, bound)
	}
}
