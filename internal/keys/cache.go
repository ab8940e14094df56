package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/hexprox/hexprox/internal/lru"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/redact"
)

// Defaults for the zero fields of CacheOptions. The configuration owns the
// operator-facing defaults (KEYS_REFRESH and the like) and passes them in;
// these only keep a zero CacheOptions safe.
const (
	DefaultRefresh     = 5 * time.Minute
	DefaultNegativeTTL = time.Minute
	DefaultStaleFor    = time.Hour
	DefaultRetry       = 10 * time.Second
	DefaultReloadEvery = 10 * time.Second
	DefaultMaxKeys     = 10000
	DefaultMissRate    = 20 // store calls per second for keys not in memory
	DefaultLoadTimeout = 10 * time.Second
	DefaultListEvery   = 10 * time.Second
)

// CacheOptions configures a Cache. Zero fields take the Default values.
type CacheOptions struct {
	// Refresh is how long a record is reused before the store is asked
	// again (KEYS_REFRESH). With a store that lists (see ListEvery) a
	// revocation or change reaches every instance sooner; without, within
	// Refresh.
	Refresh time.Duration
	// NegativeTTL is how long an unknown key is answered ErrNotFound from
	// memory, so that one key asked again and again reaches the store
	// once per NegativeTTL.
	NegativeTTL time.Duration
	// StaleFor is how long after its refresh fell due a key's last good
	// record keeps being served while the store cannot be reached.
	StaleFor time.Duration
	// Retry is how long after a failed store call the store is asked
	// again about that key (meanwhile: the stale record, or
	// ErrUnavailable).
	Retry time.Duration
	// ReloadEvery is the least time between two store calls that Reload
	// makes for one key.
	ReloadEvery time.Duration
	// MaxKeys caps the records kept, and separately the unknown keys
	// remembered; the least recently used go first.
	MaxKeys int
	// MissRate caps store calls per second (burst: twice as many) for
	// keys that are not in memory at all, so that a stream of random
	// keys, each new, cannot hammer the store. Beyond it such lookups get
	// ErrUnavailable; keys in memory are not affected.
	MissRate float64
	// LoadTimeout bounds one store call. Store calls are shared between
	// callers and do not end when the first caller's context does.
	LoadTimeout time.Duration
	// ListEvery is how often Watch lists the store's keys, for a store
	// that can (Lister): a key revoked, disabled, expired, deleted or
	// changed, whichever tool did it, is refused or reread within it, on
	// every instance; a key not in the listing is unknown without a store
	// call. Zero means DefaultListEvery; below zero, Watch does nothing.
	ListEvery time.Duration
	// HashKey keys the fingerprints in logs (see Fingerprint).
	HashKey string
	// ProviderTitle names a key's provider in messages to its holders
	// and in logs (an operator's profile's title); nil, or "" from it,
	// means a built-in profile's title, else the name the record gives.
	ProviderTitle func(name string) string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives warnings (store unreachable or not listing, a set
	// refused); nil means
	// slog.Default(). Lines carry fingerprints and organisations, never a
	// key or a credential.
	Log *slog.Logger
}

// title is provider name's title (CacheOptions.ProviderTitle).
func (c *Cache) title(name string) string {
	if name == "" {
		return "Hexagon"
	}
	if c.o.ProviderTitle != nil {
		if t := c.o.ProviderTitle(name); t != "" {
			return t
		}
	}
	if p, err := provider.Builtin(name, nil); err == nil {
		return p.Title
	}
	return name
}

// Cache is an in-memory cache of key records in front of a Store. It is
// safe for concurrent use.
type Cache struct {
	store Store
	o     CacheOptions
	sf    singleflight.Group
	miss  *rate.Limiter

	lister  Lister                 // the store's, or nil
	listing atomic.Pointer[listed] // the last good listing; nil: none yet

	mu       sync.Mutex
	known    *lru.Cache[*entry]
	unknown  *lru.Cache[time.Time] // until when the key is known not to exist
	reloaded *lru.Cache[time.Time] // when Reload last asked the store
}

// listed is a store's listing and when it was taken.
type listed struct {
	at    time.Time
	attrs map[string]Attrs
}

type entry struct {
	key     *Key
	version string    // the listing's version of the record, when it was read
	fetched time.Time // last good answer from the store
	retryAt time.Time // after a failure: the store is not asked before
	warned  bool      // the current outage is logged for this key
	// refreshing is set while a background refresh of a due record runs.
	refreshing bool
}

// NewCache returns a cache over store.
func NewCache(store Store, o CacheOptions) *Cache {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Refresh, DefaultRefresh)
	def(&o.NegativeTTL, DefaultNegativeTTL)
	def(&o.StaleFor, DefaultStaleFor)
	def(&o.Retry, DefaultRetry)
	def(&o.ReloadEvery, DefaultReloadEvery)
	def(&o.LoadTimeout, DefaultLoadTimeout)
	if o.ListEvery == 0 {
		o.ListEvery = DefaultListEvery
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.MissRate <= 0 {
		o.MissRate = DefaultMissRate
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	c := &Cache{store: store, o: o, miss: rate.NewLimiter(rate.Limit(o.MissRate), max(1, int(2*o.MissRate)))}
	if l, ok := store.(Lister); ok && o.ListEvery > 0 {
		c.lister = l
	}
	c.known = lru.New[*entry](o.MaxKeys)
	c.unknown = lru.New[time.Time](o.MaxKeys)
	c.reloaded = lru.New[time.Time](o.MaxKeys)
	return c
}

// Lookup returns the key's credentials for serving. Errors:
//   - ErrSyntax: not a key (the store is not asked);
//   - ErrNotFound: the store does not have it (remembered for NegativeTTL),
//     or a fresh listing does not show it;
//   - *LifecycleError (errors.Is ErrInactive): revoked, expired or not
//     yet valid, to be answered 403;
//   - ErrUnavailable: the store cannot be reached and there is no good
//     record young enough to serve.
//
// Errors never carry the key.
func (c *Cache) Lookup(ctx context.Context, key string) (*Key, error) {
	return c.lookup(ctx, key, false)
}

// Reload is Lookup after asking the store again, for the original's
// /v2/nokeycache route. It asks at most once per ReloadEvery per key and
// honours the negative cache, so the route cannot be used to hammer the
// store: within those bounds it answers as Lookup does.
func (c *Cache) Reload(ctx context.Context, key string) (*Key, error) {
	return c.lookup(ctx, key, true)
}

func (c *Cache) lookup(ctx context.Context, key string, reload bool) (*Key, error) {
	if err := Check(key); err != nil {
		return nil, ErrSyntax
	}
	key = Canonical(key)
	if k, ok, err := c.memory(key, reload); ok {
		return k, err
	}

	ch := c.sf.DoChan(key, func() (any, error) { return c.load(key) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Key).serve(c.o.Now())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// FromMemory answers a lookup of key when it needs no store call now (a
// record or a refusal in memory, or a syntax error); ok false means
// Lookup would ask the store.
func (c *Cache) FromMemory(key string) (k *Key, ok bool, err error) {
	if err := Check(key); err != nil {
		return nil, true, ErrSyntax
	}
	return c.memory(Canonical(key), false)
}

// memory is Lookup's answer from memory for a canonical key; ok false
// means the store must be asked (and a reload asks it, at most every
// ReloadEvery).
func (c *Cache) memory(key string, reload bool) (*Key, bool, error) {
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.listing.Load()
	if until, ok := c.unknown.Get(key); ok {
		if now.Before(until) && !l.listedAfter(key, until.Add(-c.o.NegativeTTL)) {
			return nil, true, ErrNotFound
		}
		c.unknown.Remove(key) // expired, or created since: a listing shows it
	}
	e, ok := c.known.Get(key)
	if l != nil {
		a, listed := l.attrs[key]
		switch {
		case listed && a.record("").Status(now) != Active:
			// Revoked, disabled or expired, by whatever tool: refused at
			// once, and never from a stale record during an outage. (The
			// record stays, for whom to contact; enabled again, its
			// version has changed and it is read again.)
			contact := ""
			if ok {
				contact = e.key.rec.Contact
			}
			return nil, true, lifecycle(a.record(contact), now)
		case !listed && ok && e.fetched.Before(l.at) && !reload:
			// Read before a listing without it: deleted. However old the
			// listing, it is never served again.
			c.known.Remove(key)
			return nil, true, ErrNotFound
		case !listed && !ok && now.Sub(l.at) < 3*c.o.ListEvery && !reload:
			// Not in a fresh listing: unknown, without a store call. (A key
			// just created is in the next listing; /v2/nokeycache reloads.)
			return nil, true, ErrNotFound
		case listed && ok && a.Version != e.version && !reload:
			// Changed since it was read: read again in the background, as
			// a due record is, serving the current one meanwhile; a store
			// that fails is asked again only after Retry.
			if !now.Before(e.retryAt) {
				c.refreshLater(key, e)
			}
			if c.stale(e, now) {
				k, err := e.key.serve(now)
				return k, true, err
			}
			ok = false
		}
	}
	if reload {
		if last, seen := c.reloaded.Get(key); !seen || now.Sub(last) >= c.o.ReloadEvery || now.Before(last) {
			c.reloaded.Put(key, now)
			ok = false // ask the store
		}
	}
	if !ok {
		return nil, false, nil
	}
	switch {
	case now.Sub(e.fetched) < c.o.Refresh, now.Before(e.retryAt) && c.stale(e, now):
		k, err := e.key.serve(now)
		return k, true, err
	case !reload && c.stale(e, now):
		// Due: refresh in the background and serve the current record
		// meanwhile, so that a slow or failing store never holds up a
		// request for a key that was valid. Without a listing a
		// revocation therefore takes effect within Refresh plus one store
		// call; with one, within ListEvery.
		c.refreshLater(key, e)
		k, err := e.key.serve(now)
		return k, true, err
	}
	return nil, false, nil
}

// refreshLater rereads e's record in the background, unless a reread is
// under way. Callers hold c.mu.
func (c *Cache) refreshLater(key string, e *entry) {
	if !e.refreshing {
		e.refreshing = true
		c.sf.DoChan(key, func() (any, error) { return c.load(key) })
	}
}

// Known reports whether key's record is in memory (valid or not), without
// asking the store: a lookup of it costs the store nothing now.
func (c *Cache) Known(key string) bool {
	if Check(key) != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.known.Get(Canonical(key))
	return ok
}

// stale reports whether e may be served at now although due for refresh.
func (c *Cache) stale(e *entry, now time.Time) bool {
	return now.Sub(e.fetched) < c.o.Refresh+c.o.StaleFor
}

// load asks the store about key and updates the cache. It runs once per
// key at a time (single-flighted).
func (c *Cache) load(key string) (*Key, error) {
	c.mu.Lock()
	e, known := c.known.Get(key)
	c.mu.Unlock()
	if !known && !c.miss.AllowN(c.o.Now(), 1) {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, ErrBusy)
	}

	// The listing's version as the record is read: a change listed while
	// the read runs then errs towards one more read, never a missed one.
	pre := c.listing.Load()
	ctx, cancel := context.WithTimeout(context.Background(), c.o.LoadTimeout)
	defer cancel()
	rec, err := c.store.Get(ctx, key)
	now := c.o.Now()
	fp := Fingerprint(key, c.o.HashKey)

	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		k := newKey(rec, fp, c.title(rec.Provider), c.o.Log, c.o.Now)
		if known && rec.Rate == e.key.rec.Rate && rec.Burst == e.key.rec.Burst && rec.DailyRequests == e.key.rec.DailyRequests {
			// The same limits: the allowance carries over a reload, so
			// that reloading (the nokeycache route) cannot refill a burst.
			k.limits = e.key.limits
		}
		if known {
			// The day an ending key was last warned of carries over too:
			// else the warning would come with every reload, not daily.
			for i := range min(len(k.warned), len(e.key.warned)) {
				k.warned[i].Store(e.key.warned[i].Load())
			}
		}
		if known && e.warned {
			c.o.Log.Info("key store reachable again", "key", fp, "org", rec.Org)
		}
		ne := &entry{key: k, fetched: now}
		if pre != nil {
			ne.version = pre.attrs[key].Version
		}
		c.known.Put(key, ne)
		return k, nil
	case errors.Is(err, ErrNotFound):
		c.known.Remove(key)
		c.unknown.Put(key, now.Add(c.o.NegativeTTL))
		return nil, ErrNotFound
	}
	// The store failed. Its error may name the key (a URL with the secret
	// name in it): scrub before logging.
	cause := redact.Values(err.Error(), fp, key) // every spelling of the key
	if known && c.stale(e, now) {
		e.retryAt = now.Add(c.o.Retry)
		e.refreshing = false
		if !e.warned {
			e.warned = true
			c.o.Log.Warn("key store unreachable; serving the key's last good record",
				"key", fp, "org", e.key.rec.Org, "fetched", e.fetched, "until", e.fetched.Add(c.o.Refresh+c.o.StaleFor), "error", cause)
		}
		return e.key, nil
	}
	if known {
		c.known.Remove(key) // too old to serve
	}
	c.o.Log.Warn("key store unreachable", "key", fp, "error", cause)
	return nil, &unavailableError{cause: cause}
}

type unavailableError struct{ cause string }

func (e *unavailableError) Error() string { return ErrUnavailable.Error() + ": " + e.cause }
func (e *unavailableError) Is(target error) bool {
	return target == ErrUnavailable
}

// Watch lists the store's keys every ListEvery until ctx ends, so that
// what changes in the store reaches this instance within that time (see
// CacheOptions.ListEvery). It returns at once for a store that cannot
// list. A listing that fails keeps the last good one, logged once per
// outage: keys it shows as revoked or expired stay refused, and unknown
// keys are asked of the store again once it is older than three periods.
func (c *Cache) Watch(ctx context.Context) {
	if c.lister == nil {
		return
	}
	t := time.NewTicker(c.o.ListEvery)
	defer t.Stop()
	failing := false
	for {
		attrs, err := c.listOnce(ctx)
		switch {
		case err == nil:
			c.listing.Store(&listed{at: c.o.Now(), attrs: attrs})
			if failing {
				c.o.Log.Info("key store listing works again")
			}
			failing = false
		case ctx.Err() != nil:
			return
		case !failing:
			failing = true
			c.o.Log.Warn("cannot list the key store; keys it listed as revoked stay refused", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// listedAfter reports whether l, taken after t, lists key. A nil listing
// lists nothing.
func (l *listed) listedAfter(key string, t time.Time) bool {
	if l == nil || !l.at.After(t) {
		return false
	}
	_, ok := l.attrs[key]
	return ok
}

// listOnce asks the store for its listing, within listTimeout; a panic in
// the store's client (a malformed answer) is an error, not a crash.
func (c *Cache) listOnce(ctx context.Context) (attrs map[string]Attrs, err error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			// Not the panic's text: a secret's name carries its key.
			attrs, err = nil, errors.New("listing the key store failed: the store's client panicked")
		}
	}()
	return c.lister.Listing(ctx)
}

// listTimeout bounds one listing of the store: a vault of several
// thousand secrets takes a request per 25 of them.
const listTimeout = 30 * time.Second
