package usage_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/usage"
)

func TestOverDailyCountsEveryInstanceAfterTheirFlush(t *testing.T) {
	clk := testclock.New(t0) // 10:15 UTC
	sink := &usage.MemorySink{}
	a := newCounter(t, clk, sink, usage.Options{Instance: "a"})
	b := newCounter(t, clk, sink, usage.Options{Instance: "b"})
	sa, sb := a.Subject(acme), b.Subject(acme)
	const limit = 10
	if _, over := sb.OverDaily(limit); over {
		t.Fatal("over before any request")
	}
	sa.Add(usage.TilesRedirected, 6)
	sa.Add(usage.RateLimited, 50) // refusals of ours cost no quota
	sb.Add(usage.Capabilities, 3)
	if _, over := sb.OverDaily(limit); over {
		t.Fatal("b cannot know a's unflushed counts yet")
	}
	a.Flush(context.Background())
	b.Flush(context.Background()) // b rereads today's rows
	retry, over := sb.OverDaily(limit - 1)
	if !over {
		t.Fatal("6 (a, flushed) + 3 (b) must be over a limit of 9")
	}
	if want := 13*time.Hour + 45*time.Minute; retry != want {
		t.Fatalf("Retry-After %v, want %v (until midnight UTC)", retry, want)
	}
	if _, over := sb.OverDaily(limit); over {
		t.Fatal("9 is not over 10")
	}
	sb.Inc(usage.WMSGetMap) // own counts are exact at once
	if _, over := sb.OverDaily(limit); !over {
		t.Fatal("10 of 10 must be over")
	}
	// a sees b's counts once b flushed and a refreshed.
	if _, over := sa.OverDaily(limit); over {
		t.Fatal("a cannot know b's counts before its refresh")
	}
	b.Flush(context.Background())
	a.Flush(context.Background())
	if _, over := sa.OverDaily(limit); !over {
		t.Fatal("a after refresh must see 10")
	}
	// A new UTC day starts from zero.
	clk.Advance(14 * time.Hour)
	a.Tick()
	if _, over := sa.OverDaily(limit); over {
		t.Fatal("a new day must reset the quota")
	}
	a.Flush(context.Background())
	if _, over := sa.OverDaily(limit); over {
		t.Fatal("yesterday's rows must not count today")
	}
}

// A subject released while idle and counted again the same day keeps its
// day's usage.
func TestOverDailySurvivesRelease(t *testing.T) {
	clk := testclock.New(t0)
	sink := &usage.MemorySink{}
	c := newCounter(t, clk, sink, usage.Options{})
	s := c.Subject(acme)
	s.OverDaily(5)
	s.Add(usage.TilesRedirected, 5)
	c.Flush(context.Background())
	clk.Advance(2 * time.Hour)
	c.Tick()
	for range 3 {
		c.Flush(context.Background())
	}
	if st := c.Stats(); st.Buckets != 0 {
		t.Fatalf("not released: %+v", st)
	}
	if _, over := s.OverDaily(5); !over {
		t.Fatal("a released subject's day must still count")
	}
}

func TestUsageMergesLiveCountsWithEveryInstance(t *testing.T) {
	clk := testclock.New(t0) // March 14
	sink := &usage.MemorySink{}
	a := newCounter(t, clk, sink, usage.Options{Instance: "a"})
	b := newCounter(t, clk, sink, usage.Options{Instance: "b"})
	// Earlier this month, from another instance, and last month.
	sink.Write(context.Background(), []usage.Row{
		{Hour: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), Instance: "old", SubjectID: acme, Counts: usage.Counts{usage.TilesRedirected: 100}},
		{Hour: time.Date(2026, 2, 28, 8, 0, 0, 0, time.UTC), Instance: "old", SubjectID: acme, Counts: usage.Counts{usage.TilesRedirected: 1000}},
		{Hour: time.Date(2026, 3, 14, 1, 0, 0, 0, time.UTC), Instance: "old", SubjectID: bravo, Counts: usage.Counts{usage.TilesRedirected: 7}},
	})
	b.Subject(acme).Add(usage.TilesRedirected, 20)
	b.Flush(context.Background())
	sa := a.Subject(acme)
	sa.Add(usage.TilesRedirected, 3)
	a.Flush(context.Background())
	sa.Add(usage.TilesRedirected, 2) // unflushed: the page still shows it
	u, err := a.Usage(context.Background(), acme)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Today[usage.TilesRedirected]; got != 25 {
		t.Errorf("today %d, want 25", got)
	}
	if got := u.Month[usage.TilesRedirected]; got != 125 {
		t.Errorf("month %d, want 125", got)
	}
	// The sink down: own counts, and the error.
	flaky := &flakySink{}
	c := newCounter(t, clk, flaky, usage.Options{})
	c.Subject(acme).Add(usage.Capabilities, 4)
	flaky.down.Store(true)
	u, err = c.Usage(context.Background(), acme)
	if err == nil || u.Today[usage.Capabilities] != 4 {
		t.Fatalf("with storage down: %+v, %v", u, err)
	}
}

// readCounting counts the Sink's reads.
type readCounting struct {
	usage.Sink
	reads atomic.Int64
}

func (s *readCounting) Read(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	s.reads.Add(1)
	return s.Sink.Read(ctx, q)
}

// A key's page asked for again and again reads the Sink once per
// UsageTTL, not once per request, and still shows its own live counts.
func TestUsageReusesItsReadBriefly(t *testing.T) {
	clk := testclock.New(t0)
	sink := &readCounting{Sink: &usage.MemorySink{}}
	c := newCounter(t, clk, sink, usage.Options{Instance: "a", UsageTTL: 30 * time.Second})
	s := c.Subject(acme)
	for i := range 100 {
		s.Add(usage.TilesRedirected, 1)
		u, err := c.Usage(context.Background(), acme)
		if err != nil || u.Today[usage.TilesRedirected] != int64(i+1) {
			t.Fatalf("request %d: %+v %v", i, u, err)
		}
	}
	if n := sink.reads.Load(); n != 1 {
		t.Fatalf("100 pages read the sink %d times, want 1", n)
	}
	clk.Advance(31 * time.Second)
	c.Usage(context.Background(), acme)
	if n := sink.reads.Load(); n != 2 {
		t.Fatalf("after UsageTTL: %d reads, want 2", n)
	}
	c.Usage(context.Background(), bravo) // another subject reads its own
	if n := sink.reads.Load(); n != 3 {
		t.Fatalf("another subject: %d reads, want 3", n)
	}
}

// readDown fails only the Sink's reads.
type readDown struct{ usage.MemorySink }

func (*readDown) Read(context.Context, usage.Query) ([]usage.Row, error) { return nil, errDown }

// A quota refresh that cannot read the other instances' totals says so,
// once per cause, since daily quotas then count this instance alone.
func TestFailedRefreshIsLoggedOnce(t *testing.T) {
	clk := testclock.New(t0)
	var logs bytes.Buffer
	c := newCounter(t, clk, &readDown{}, usage.Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	s := c.Subject(acme)
	s.OverDaily(100) // a subject with a quota: flushes refresh today's totals
	for range 3 {
		s.Inc(usage.TilesRedirected)
		c.Flush(context.Background())
	}
	if n := strings.Count(logs.String(), "cannot read today's totals"); n != 1 {
		t.Fatalf("%d warnings for one cause, want 1:\n%s", n, logs.String())
	}
}
