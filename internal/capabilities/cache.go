package capabilities

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cache keeps rewritten documents per key (a credential's hash) for a
// fixed time. Concurrent misses for one key share one load. It holds at
// most Max documents and drops the oldest beyond that.
//
// A Cache is safe for concurrent use.
type Cache struct {
	ttl   time.Duration
	max   int
	now   func() time.Time
	loads singleflight.Group

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	doc     *Document
	expires time.Time
}

// NewCache returns a cache. ttl 0 disables reuse (concurrent misses still
// share a load); max <= 0 means 1000; now nil means time.Now.
func NewCache(ttl time.Duration, max int, now func() time.Time) *Cache {
	if max <= 0 {
		max = 1000
	}
	if now == nil {
		now = time.Now
	}
	return &Cache{ttl: ttl, max: max, now: now, m: map[string]cached{}}
}

// Get returns the document for key, loading it on a miss. The load runs
// without ctx's cancellation (other callers may be waiting on it); the
// caller stops waiting when ctx is done. hit reports a cache hit.
func (c *Cache) Get(ctx context.Context, key string, load func(context.Context) (*Document, error)) (doc *Document, hit bool, err error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && c.now().Before(e.expires) {
		return e.doc, true, nil
	}
	ch := c.loads.DoChan(key, func() (any, error) {
		d, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		c.put(key, d)
		return d, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, false, r.Err
		}
		return r.Val.(*Document), false, nil
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

func (c *Cache) put(key string, d *Document) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.m) >= c.max {
		var oldest string
		var at time.Time
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
				continue
			}
			if oldest == "" || e.expires.Before(at) {
				oldest, at = k, e.expires
			}
		}
		if len(c.m) >= c.max {
			delete(c.m, oldest)
		}
	}
	c.m[key] = cached{doc: d, expires: now.Add(c.ttl)}
}
