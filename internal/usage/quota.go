package usage

import (
	"context"
	"time"
)

// refresh rereads today's totals of every instance from the Sink and
// recomputes each live subject's quota base. On error the old view stays,
// and the error is logged once per cause: daily quotas then count this
// instance's requests alone. The caller holds flushMu.
func (c *Counter) refresh(ctx context.Context, now time.Time) {
	day := dayOf(unixHour(now))
	from := time.Unix(day*86400, 0).UTC()
	rctx, cancel := context.WithTimeout(ctx, c.o.FlushTimeout)
	rows, err := c.sink.Read(rctx, Query{From: from, To: from.Add(24 * time.Hour)})
	cancel()
	if err != nil {
		if cause := err.Error(); cause != c.refreshErr && c.o.Log != nil {
			c.o.Log.Warn("usage: cannot read today's totals of the other instances; daily quotas count this instance's requests alone until it can", "err", cause)
		}
		c.refreshErr = err.Error()
		return
	}
	if c.refreshErr != "" && c.o.Log != nil {
		c.o.Log.Info("usage: today's totals of every instance read again")
	}
	c.refreshErr = ""
	shared := make(map[SubjectID]int64)
	for _, r := range rows {
		shared[r.SubjectID] += r.Counts.Quota()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shared, c.sharedDay = shared, day
	set := func(s *Subject) {
		base := shared[s.id]
		cur := s.cur.Load()
		for _, b := range s.buckets {
			if dayOf(b.hour) != day {
				continue
			}
			// The Sink holds b.flushed; the current bucket's live count
			// is added by OverDaily, the others' here.
			base -= b.flushed.Quota()
			if b != cur {
				base += b.quota()
			}
		}
		s.base.Store(base)
		s.baseDay.Store(day)
	}
	for _, s := range c.subjects {
		set(s)
	}
}

// OverDaily reports whether this subject has used limit requests (Counts.
// Quota) today, UTC, across all instances, and if so how long until the
// quota resets at midnight UTC. limit <= 0 means no limit. It costs a few
// atomic loads and never touches storage.
//
// It is eventually consistent: it sees every instance's last flush as of
// this instance's last refresh (after each flush, at most Options.Flush
// apart) plus this instance's own counts exactly. N instances serving a
// subject at r requests per second each can therefore overshoot together
// by about (N-1) × r × 2 × (Flush + one write and one read of the table),
// plus the requests in flight when the quota is reached: each other
// instance's unflushed counts plus the time until this one rereads them.
// At a Flush of a second or more, the table's part is a few percent. The
// first call with a limit
// asks for an immediate refresh, so a new instance learns today's totals
// at once rather than after a flush interval. Other, which mixes many
// subjects, is never over.
func (s *Subject) OverDaily(limit int64) (retryAfter time.Duration, over bool) {
	if s == nil || limit <= 0 || s.other {
		return 0, false
	}
	c := s.c
	if !c.quotaWanted.Load() && c.quotaWanted.CompareAndSwap(false, true) {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	if s.retired.Load() {
		s = c.Subject(s.id)
		if s.other {
			return 0, false
		}
	}
	day := dayOf(c.hour.Load())
	var used int64
	if s.baseDay.Load() == day {
		used = s.base.Load()
	}
	if b := s.cur.Load(); b != nil && dayOf(b.hour) == day {
		used += b.quota()
	}
	if used < limit {
		return 0, false
	}
	return time.Unix((day+1)*86400, 0).Sub(c.now()), true
}
