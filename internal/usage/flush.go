package usage

import (
	"context"
	"fmt"
	"time"
)

func (c *Counter) loop() {
	defer close(c.done)
	t := time.NewTicker(c.o.Flush)
	defer t.Stop()
	tick := time.NewTicker(c.o.Tick)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			c.Tick()
		case <-t.C:
			c.Flush(context.Background())
		case <-c.kick:
			c.flushMu.Lock()
			c.refresh(context.Background(), c.now())
			c.flushMu.Unlock()
		}
	}
}

// Close stops the flush loop and flushes a last time (main calls it on
// SIGTERM, with a deadline). Counts added after Close stay in memory and
// are never written. It is safe to call more than once; later calls only
// flush again.
func (c *Counter) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		close(c.stop)
	})
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Flush(ctx)
}

type pending struct {
	b    *bucket
	snap Counts
}

// Flush writes every (subject, hour) total that changed since the last
// successful flush, then releases what is written and idle, then (if any
// subject has a daily quota) rereads today's totals of every instance.
// Each storage call is bounded by Options.FlushTimeout. On error nothing
// is lost: the same totals, grown, are written by a later flush. Flushes
// are serialised; requests are never held up by one.
func (c *Counter) Flush(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	now := c.now()
	c.setHour(unixHour(now))

	c.mu.Lock()
	c.seq++
	seq := c.seq
	var (
		rows []Row
		pend []pending
	)
	c.eachSubjectLocked(func(s *Subject) {
		for _, b := range s.buckets {
			snap := b.load()
			if snap == b.flushed {
				continue
			}
			rows = append(rows, Row{Hour: time.Unix(b.hour*3600, 0).UTC(), Instance: c.instance, SubjectID: s.id, Counts: snap})
			pend = append(pend, pending{b, snap})
		}
	})
	c.mu.Unlock()

	if len(rows) > 0 {
		wctx, cancel := context.WithTimeout(ctx, c.o.FlushTimeout)
		err := c.sink.Write(wctx, rows)
		cancel()
		if err != nil {
			c.mu.Lock()
			c.stats.FlushFailures++
			c.mu.Unlock()
			if !c.failing && c.o.Log != nil {
				c.o.Log.Warn("usage: flush failed; counts stay in memory and are written later", "rows", len(rows), "err", err.Error())
			}
			c.failing = true
			return fmt.Errorf("usage: flush: %w", err)
		}
	}
	if c.failing && c.o.Log != nil {
		c.o.Log.Info("usage: flush works again", "rows", len(rows))
	}
	c.failing = false

	c.mu.Lock()
	for _, p := range pend {
		p.b.flushed = p.snap
	}
	c.stats.Flushes++
	c.releaseLocked(seq, unixHour(now))
	c.mu.Unlock()

	if c.quotaWanted.Load() {
		c.refresh(ctx, now)
	}
	return nil
}

// releaseLocked drops written buckets that stopped being current before
// the previous flush began (sealLocked settles any Add still landing in
// one), and releases subjects idle for the whole current hour so far.
func (c *Counter) releaseLocked(seq uint64, nowHour int64) {
	drop := func(s *Subject) {
		keep := s.buckets[:0]
		for _, b := range s.buckets {
			if b.retiredSeq != 0 && seq > b.retiredSeq && c.sealLocked(b) {
				c.nbuckets--
				continue
			}
			keep = append(keep, b)
		}
		clear(s.buckets[len(keep):])
		s.buckets = keep
	}
	drop(c.other)
	for id, s := range c.subjects {
		drop(s)
		cur := s.cur.Load()
		if cur != nil && (cur.hour >= nowHour || len(s.buckets) != 1 || cur.load() != cur.flushed) {
			continue
		}
		s.retired.Store(true)
		delete(c.subjects, id)
		c.held.Delete(id)
		if cur != nil {
			cur.retiredSeq = seq + 1
			c.retiring = append(c.retiring, s)
		}
	}
	keep := c.retiring[:0]
	for _, s := range c.retiring {
		if drop(s); len(s.buckets) > 0 {
			keep = append(keep, s)
		}
	}
	clear(c.retiring[len(keep):])
	c.retiring = keep
}

// sealLocked decides whether b, no longer current, can be released: it
// seals each count (an Add landing after that sees a negative result and
// calls late), and releases b only if every count, as sealed, was written.
// Otherwise it lifts the seal and b waits for the next flush.
func (c *Counter) sealLocked(b *bucket) bool {
	written := true
	for k := range b.n {
		if b.n[k].Add(-sealOffset)+sealOffset != b.flushed[k] {
			written = false
		}
	}
	if written {
		b.dead = true
		return true
	}
	for k := range b.n {
		b.n[k].Add(sealOffset)
	}
	return false
}

// Usage is one subject's totals today and this month so far, UTC.
type Usage struct {
	Today, Month Counts
}

// storedUsage is what Usage last read of the Sink for a subject.
type storedUsage struct {
	rows  []Row
	month time.Time // the month they were read for
	at    time.Time
}

// Usage returns id's usage today and this month so far: every instance's
// last flush, with this instance's own rows replaced by its live counts.
// What it reads of the Sink is reused for Options.UsageTTL, so that a
// page asked for again and again costs one read of that subject's month,
// not one each; its own counts are always live. On a Sink error it
// returns this instance's counts alone, and the error.
func (c *Counter) Usage(ctx context.Context, id SubjectID) (Usage, error) {
	now := c.now().UTC()
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	to := now.Truncate(time.Hour).Add(time.Hour)
	rows, err := c.storedUsage(ctx, id, month, to, now)
	type rk struct {
		instance string
		hour     int64
	}
	merged := make(map[rk]Counts)
	for _, r := range rows {
		merged[rk{r.Instance, r.Hour.Unix()}] = r.Counts
	}
	for _, r := range c.liveRows(id, month, to) {
		merged[rk{r.Instance, r.Hour.Unix()}] = r.Counts
	}
	var u Usage
	for k, v := range merged {
		u.Month.Add(v)
		if k.hour >= day.Unix() {
			u.Today.Add(v)
		}
	}
	return u, err
}

// storedUsage returns id's rows of the month in the Sink, from the last
// read when it is younger than UsageTTL.
func (c *Counter) storedUsage(ctx context.Context, id SubjectID, month, to, now time.Time) ([]Row, error) {
	key := id.Org + "\x00" + id.Key
	c.readsMu.Lock()
	got, ok := c.reads.Get(key)
	c.readsMu.Unlock()
	if ok && got.month.Equal(month) && now.Sub(got.at) < c.o.UsageTTL && !now.Before(got.at) {
		return got.rows, nil
	}
	rows, err := c.sink.Read(ctx, Query{From: month, To: to, Only: &id})
	if err != nil {
		return nil, err
	}
	c.readsMu.Lock()
	c.reads.Put(key, storedUsage{rows: rows, month: month, at: now})
	c.readsMu.Unlock()
	return rows, nil
}

// liveRows are this instance's own rows of id between from and to: O(the
// subject's buckets), not of every subject's.
func (c *Counter) liveRows(id SubjectID, from, to time.Time) []Row {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := Query{From: from, To: to}
	var rows []Row
	add := func(s *Subject) {
		if s != nil && s.id == id {
			rows = c.appendRowsLocked(rows, s, q)
		}
	}
	if id == Other {
		add(c.other)
	}
	add(c.subjects[id])
	for _, s := range c.retiring {
		add(s)
	}
	return rows
}
