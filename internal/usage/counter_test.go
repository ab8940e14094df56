package usage_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/usage"
)

var (
	t0    = time.Date(2026, 3, 14, 10, 15, 0, 0, time.UTC)
	acme  = usage.SubjectID{Org: "Acme Water", Key: "k1a2b3c4"}
	bravo = usage.SubjectID{Org: "Bravo Roads", Key: "k9f8e7d6"}
	v1    = usage.SubjectID{Key: "0a1b2c3d"}
)

// flakySink is a MemorySink that refuses writes and reads while down.
type flakySink struct {
	usage.MemorySink
	down   atomic.Bool
	writes atomic.Int64
}

var errDown = errors.New("storage down")

func (f *flakySink) Write(ctx context.Context, rows []usage.Row) error {
	f.writes.Add(1)
	if f.down.Load() {
		return errDown
	}
	return f.MemorySink.Write(ctx, rows)
}

func (f *flakySink) Read(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.MemorySink.Read(ctx, q)
}

func newCounter(t *testing.T, clk *testclock.Clock, sink usage.Sink, o usage.Options) *usage.Counter {
	t.Helper()
	o.Sink, o.Now, o.NoLoop = sink, clk.Now, true
	if o.Instance == "" {
		o.Instance = "inst-a"
	}
	return usage.New(o)
}

// totals sums rows per subject.
func totals(rows []usage.Row) map[usage.SubjectID]usage.Counts {
	m := make(map[usage.SubjectID]usage.Counts)
	for _, r := range rows {
		c := m[r.SubjectID]
		c.Add(r.Counts)
		m[r.SubjectID] = c
	}
	return m
}

func readAll(t *testing.T, s usage.Source) []usage.Row {
	t.Helper()
	rows, err := s.Read(context.Background(), usage.Query{From: t0.Add(-30 * 24 * time.Hour), To: t0.Add(60 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestCountsPerSubjectPerHour(t *testing.T) {
	clk := testclock.New(t0)
	sink := &usage.MemorySink{}
	c := newCounter(t, clk, sink, usage.Options{})
	a, b, v := c.Subject(acme), c.Subject(bravo), c.Subject(v1)
	if c.Subject(acme) != a {
		t.Fatal("the same subject must resolve to the same handle")
	}
	for range 7 {
		a.Inc(usage.TilesRedirected)
	}
	a.Inc(usage.TilesStreamed)
	a.Add(usage.BytesStreamed, 12345)
	b.Inc(usage.Capabilities)
	v.Inc(usage.Refused)
	clk.Advance(time.Hour) // 11:15
	c.Tick()
	a.Inc(usage.WMSGetMap)
	a.Inc(usage.RateLimited)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, sink)
	want := map[[2]any]usage.Counts{
		{acme, 10}:  {usage.TilesRedirected: 7, usage.TilesStreamed: 1, usage.BytesStreamed: 12345},
		{acme, 11}:  {usage.WMSGetMap: 1, usage.RateLimited: 1},
		{bravo, 10}: {usage.Capabilities: 1},
		{v1, 10}:    {usage.Refused: 1},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for _, r := range rows {
		if r.Instance != "inst-a" {
			t.Errorf("row instance %q", r.Instance)
		}
		w, ok := want[[2]any{r.SubjectID, r.Hour.Hour()}]
		if !ok || r.Counts != w {
			t.Errorf("row %v %v: got %v, want %v", r.SubjectID, r.Hour, r.Counts, w)
		}
	}
	if got := (usage.Counts{usage.TilesRedirected: 7, usage.BytesStreamed: 100, usage.RateLimited: 2}); got.Requests() != 9 || got.Quota() != 7 {
		t.Fatalf("Requests %d Quota %d", got.Requests(), got.Quota())
	}
}

func TestErrorKind(t *testing.T) {
	for status, want := range map[int]usage.Kind{403: usage.Refused, 429: usage.RateLimited, 400: usage.BadRequest, 404: usage.BadRequest, 500: usage.UpstreamFailed, 504: usage.UpstreamFailed} {
		if k, ok := usage.ErrorKind(status); !ok || k != want {
			t.Errorf("ErrorKind(%d) = %v %v, want %v", status, k, ok, want)
		}
	}
	for _, status := range []int{200, 302, 304} {
		if _, ok := usage.ErrorKind(status); ok {
			t.Errorf("ErrorKind(%d) claims an error", status)
		}
	}
}

// Many goroutines count while flushes run and hours turn: the flushed
// totals equal exactly what was counted.
func TestConcurrentCountingIsExact(t *testing.T) {
	clk := testclock.New(t0)
	sink := &usage.MemorySink{}
	c := newCounter(t, clk, sink, usage.Options{})
	ids := []usage.SubjectID{acme, bravo, v1}
	const workers, per = 8, 3000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				c.Flush(context.Background())
				if i < 400 { // about two days, inside readAll's window
					clk.Advance(7 * time.Minute)
				}
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := c.Subject(ids[w%len(ids)])
			for i := range per {
				s.Inc(usage.Kind(i % usage.NumKinds))
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-flushed
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := totals(readAll(t, sink))
	for i, id := range ids {
		nw := 0
		for w := range workers {
			if w%len(ids) == i {
				nw++
			}
		}
		var want usage.Counts
		for i := range per {
			want[i%usage.NumKinds] += int64(nw)
		}
		if got[id] != want {
			t.Errorf("%v: got %v, want %v", id, got[id], want)
		}
	}
}

func TestStorageDownKeepsCountsUntilItReturns(t *testing.T) {
	clk := testclock.New(t0)
	sink := &flakySink{}
	c := newCounter(t, clk, sink, usage.Options{})
	a := c.Subject(acme)
	a.Add(usage.TilesRedirected, 5)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink.down.Store(true)
	for range 5 { // five hours of outage, flushing every 30 minutes
		for range 2 {
			a.Add(usage.TilesRedirected, 3)
			if err := c.Flush(context.Background()); !errors.Is(err, errDown) {
				t.Fatalf("flush during an outage: %v", err)
			}
			clk.Advance(30 * time.Minute)
			c.Tick()
		}
	}
	if st := c.Stats(); st.FlushFailures != 10 || st.Buckets < 5 {
		t.Fatalf("stats during the outage: %+v", st)
	}
	sink.down.Store(false)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := totals(readAll(t, sink))[acme][usage.TilesRedirected]; got != 5+30 {
		t.Fatalf("after the outage: %d tiles written, want 35", got)
	}
	// Written buckets are released after two more flushes.
	c.Flush(context.Background())
	c.Flush(context.Background())
	if st := c.Stats(); st.Buckets > 1 {
		t.Fatalf("written buckets held: %+v", st)
	}
}

func TestSubjectCapFoldsIntoOther(t *testing.T) {
	clk := testclock.New(t0)
	sink := &usage.MemorySink{}
	c := newCounter(t, clk, sink, usage.Options{MaxSubjects: 2})
	c.Subject(acme).Inc(usage.Capabilities)
	c.Subject(bravo).Inc(usage.Capabilities)
	third := c.Subject(v1)
	if third.ID() != usage.Other {
		t.Fatalf("the third subject over a cap of 2 is %v, want Other", third.ID())
	}
	third.Add(usage.TilesRedirected, 4)
	if d, over := third.OverDaily(1); over {
		t.Fatalf("Other must never be over a quota (mixed subjects), got %v", d)
	}
	c.Flush(context.Background())
	got := totals(readAll(t, sink))
	if got[usage.Other][usage.TilesRedirected] != 4 || got[acme][usage.Capabilities] != 1 {
		t.Fatalf("totals %v", got)
	}
	if st := c.Stats(); st.FoldedSubjects != 1 {
		t.Fatalf("FoldedSubjects = %d, want 1", st.FoldedSubjects)
	}
}

func TestBucketCapCountsLateNotLost(t *testing.T) {
	clk := testclock.New(t0)
	sink := &flakySink{}
	sink.down.Store(true)
	c := newCounter(t, clk, sink, usage.Options{MaxBuckets: 4})
	a := c.Subject(acme)
	for range 10 {
		a.Inc(usage.TilesRedirected)
		c.Flush(context.Background())
		clk.Advance(time.Hour)
		c.Tick()
	}
	st := c.Stats()
	if st.Buckets > 4 || st.LateHours != 6 {
		t.Fatalf("at the cap: %+v", st)
	}
	sink.down.Store(false)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, sink)
	if got := totals(rows)[acme][usage.TilesRedirected]; got != 10 {
		t.Fatalf("%d tiles written, want 10", got)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want the 4 hours held", len(rows))
	}
}

func TestIdleSubjectReleasedAndItsHandleStillCounts(t *testing.T) {
	clk := testclock.New(t0)
	sink := &usage.MemorySink{}
	c := newCounter(t, clk, sink, usage.Options{})
	a := c.Subject(acme)
	a.Add(usage.TilesRedirected, 2)
	c.Flush(context.Background())
	clk.Advance(2 * time.Hour)
	c.Tick()
	for range 3 {
		c.Flush(context.Background())
	}
	if st := c.Stats(); st.Subjects != 1 || st.Buckets != 0 {
		t.Fatalf("an idle, written subject must be released: %+v", st)
	}
	a.Add(usage.TilesRedirected, 3) // the kept handle
	if c.Subject(acme) == a {
		t.Fatal("a released handle must not be handed out again")
	}
	c.Flush(context.Background())
	if got := totals(readAll(t, sink))[acme][usage.TilesRedirected]; got != 5 {
		t.Fatalf("%d tiles, want 5", got)
	}
}

func TestCloseFlushes(t *testing.T) {
	sink := &usage.MemorySink{}
	c := usage.New(usage.Options{Sink: sink, Flush: time.Hour, Instance: "x"})
	c.Subject(acme).Add(usage.WMSOther, 3)
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := totals(readAll2(t, sink))[acme][usage.WMSOther]; got != 3 {
		t.Fatalf("after Close: %d", got)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func readAll2(t *testing.T, s usage.Source) []usage.Row {
	t.Helper()
	now := time.Now()
	rows, err := s.Read(context.Background(), usage.Query{From: now.Add(-48 * time.Hour), To: now.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestLoopFlushesOnItsInterval(t *testing.T) {
	sink := &usage.MemorySink{}
	c := usage.New(usage.Options{Sink: sink, Flush: 20 * time.Millisecond})
	defer c.Close(context.Background())
	c.Subject(bravo).Inc(usage.TilesStreamed)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if totals(readAll2(t, sink))[bravo][usage.TilesStreamed] == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the loop never flushed")
}

func TestInstancesDefaultToRandom(t *testing.T) {
	a, b := usage.New(usage.Options{NoLoop: true}), usage.New(usage.Options{NoLoop: true})
	if a.Instance() == "" || a.Instance() == b.Instance() {
		t.Fatalf("instances %q and %q", a.Instance(), b.Instance())
	}
}
