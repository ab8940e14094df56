package keys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/lru"
	"github.com/hexprox/hexprox/internal/origin"
	"github.com/hexprox/hexprox/internal/usage/limit"
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
)

// CacheOptions configures a Cache. Zero fields take the Default values.
type CacheOptions struct {
	// Refresh is how long a record is reused before the store is asked
	// again (KEYS_REFRESH): revocation reaches every instance within it.
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
	// HashKey keys the fingerprints in logs (see Fingerprint).
	HashKey string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives warnings (store unreachable, a set refused); nil means
	// slog.Default(). Lines carry fingerprints and organisations, never a
	// key or a credential.
	Log *slog.Logger
}

// Cache is an in-memory cache of key records in front of a Store. It is
// safe for concurrent use.
type Cache struct {
	store Store
	o     CacheOptions
	sf    singleflight.Group
	miss  *rate.Limiter

	mu       sync.Mutex
	known    *lru.Cache[*entry]
	unknown  *lru.Cache[time.Time] // until when the key is known not to exist
	reloaded *lru.Cache[time.Time] // when Reload last asked the store
}

type entry struct {
	key     *Key
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
	c.known = lru.New[*entry](o.MaxKeys)
	c.unknown = lru.New[time.Time](o.MaxKeys)
	c.reloaded = lru.New[time.Time](o.MaxKeys)
	return c
}

// Lookup returns the key's credentials for serving. Errors:
//   - ErrSyntax: not a key (the store is not asked);
//   - ErrNotFound: the store does not have it (remembered for NegativeTTL);
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
	if until, ok := c.unknown.Get(key); ok {
		if now.Before(until) {
			return nil, true, ErrNotFound
		}
		c.unknown.Remove(key)
	}
	e, ok := c.known.Get(key)
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
		// request for a key that was valid. A revocation therefore takes
		// effect within Refresh plus one store call.
		if !e.refreshing {
			e.refreshing = true
			c.sf.DoChan(key, func() (any, error) { return c.load(key) })
		}
		k, err := e.key.serve(now)
		return k, true, err
	}
	return nil, false, nil
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

	ctx, cancel := context.WithTimeout(context.Background(), c.o.LoadTimeout)
	defer cancel()
	rec, err := c.store.Get(ctx, key)
	now := c.o.Now()
	fp := Fingerprint(key, c.o.HashKey)

	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		k := newKey(rec, fp, c.o.Log)
		if known && rec.Rate == e.key.rec.Rate && rec.Burst == e.key.rec.Burst && rec.DailyRequests == e.key.rec.DailyRequests {
			// The same limits: the allowance carries over a reload, so
			// that reloading (the nokeycache route) cannot refill a burst.
			k.limits = e.key.limits
		}
		if known && e.warned {
			c.o.Log.Info("key store reachable again", "key", fp, "org", rec.Org)
		}
		c.known.Put(key, &entry{key: k, fetched: now})
		return k, nil
	case errors.Is(err, ErrNotFound):
		c.known.Remove(key)
		c.unknown.Put(key, now.Add(c.o.NegativeTTL))
		return nil, ErrNotFound
	}
	// The store failed. Its error may name the key (a URL with the secret
	// name in it): scrub before logging.
	cause := scrubKey(err.Error(), key, fp)
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

// ErrInactive is matched (errors.Is) by every *LifecycleError.
var ErrInactive = errors.New("keys: the key does not serve")

// LifecycleError says why a key that exists does not serve: it is revoked,
// expired or not yet valid. The server answers it with 403 and Error's
// text, which is safe to show the key holder.
type LifecycleError struct {
	Status  Status    // Revoked, Expired or NotYetValid
	At      time.Time // Expires or NotBefore, for those
	Contact string    // the record's contact, if known
}

func (e *LifecycleError) Error() string {
	var b strings.Builder
	b.WriteString("this API key ")
	switch e.Status {
	case Revoked:
		b.WriteString("has been revoked")
	case Expired:
		b.WriteString("expired on " + e.At.UTC().Format("2006-01-02 15:04 MST"))
	case NotYetValid:
		b.WriteString("is not valid before " + e.At.UTC().Format("2006-01-02 15:04 MST"))
	default:
		b.WriteString("does not serve")
	}
	if e.Contact != "" {
		b.WriteString("; contact " + e.Contact)
	}
	return b.String()
}

// Is reports whether target is ErrInactive.
func (e *LifecycleError) Is(target error) bool { return target == ErrInactive }

// Key is a key's record as Lookup serves it, with the state of its
// credential sets (which Hexagon refused). Lookup returns the same *Key
// until the record is next fetched; refusals are forgotten then. A Key is
// safe for concurrent use.
type Key struct {
	rec     Record
	fp      string
	log     *slog.Logger
	origins origin.List    // rec.Origins, parsed once
	limits  *limit.Limiter // rec's rate, burst and daily_requests; nil: none
	next    atomic.Uint64
	refused []atomic.Bool
}

func newKey(rec Record, fp string, log *slog.Logger) *Key {
	// The sets hashed once, not per request: a copy, as the store may
	// share the record's slice with other readers.
	sets := make([]credential.Credential, len(rec.Sets))
	for i, c := range rec.Sets {
		sets[i] = c.Keyed()
	}
	rec.Sets = sets
	k := &Key{rec: rec, fp: fp, log: log, refused: make([]atomic.Bool, len(rec.Sets)),
		limits: limit.New(limit.Limits{Rate: rec.Rate, Burst: rec.Burst, Daily: rec.DailyRequests})}
	if len(rec.Origins) > 0 {
		var err error
		if k.origins, err = origin.Parse(strings.Join(rec.Origins, ",")); err != nil {
			// An origin the record gets wrong allows nothing; the rest of
			// the key still works.
			log.Warn("the key's origins are not valid ALLOWED_ORIGINS entries; none of them is allowed", "key", fp, "org", rec.Org, "err", err)
			k.origins = origin.List{}
		}
	}
	return k
}

// Limiter returns the key's limits on this instance (nil: none). Its rate
// allowance carries over when the record is fetched again, unless the
// record's limits changed.
func (k *Key) Limiter() *limit.Limiter { return k.limits }

// AllowsOrigin reports whether the key's own origins allow a browser
// origin (the global ALLOWED_ORIGINS are the server's to check).
func (k *Key) AllowsOrigin(o string) bool { return k.origins.Allowed(o) }

func (k *Key) serve(now time.Time) (*Key, error) {
	switch s := k.rec.Status(now); s {
	case Active:
		return k, nil
	case Expired:
		return nil, &LifecycleError{Status: s, At: k.rec.Expires, Contact: k.rec.Contact}
	case NotYetValid:
		return nil, &LifecycleError{Status: s, At: k.rec.NotBefore, Contact: k.rec.Contact}
	default:
		return nil, &LifecycleError{Status: s, Contact: k.rec.Contact}
	}
}

// Record returns a copy of the key's record. It holds the credential
// sets: never log or show it whole.
func (k *Key) Record() Record {
	r := k.rec
	r.Sets = append([]credential.Credential(nil), r.Sets...)
	r.Origins = append([]string(nil), r.Origins...)
	return r
}

// Org returns the record's organisation, for logs.
func (k *Key) Org() string { return k.rec.Org }

// Fingerprint returns the key's fingerprint, for logs.
func (k *Key) Fingerprint() string { return k.fp }

// LogValue implements slog.LogValuer: the fingerprint and organisation.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", k.fp), slog.String("org", k.rec.Org))
}

// Pick returns the credential set to use for a request and its index,
// going round the sets Hexagon has not refused, so that requests (and the
// token sources the server keeps per credential) spread evenly over them.
// When every set was refused it returns a failure.Forbidden whose message
// tells the key holder whom to contact.
func (k *Key) Pick() (credential.Credential, int, error) {
	// Count the sets left, then take the r-th of them: even shares
	// whichever sets were refused (sets are few; this is O(sets)).
	left := uint64(0)
	for i := range k.refused {
		if !k.refused[i].Load() {
			left++
		}
	}
	if left > 0 {
		r := (k.next.Add(1) - 1) % left
		for i := range k.refused {
			if k.refused[i].Load() {
				continue
			}
			if r == 0 {
				return k.rec.Sets[i], i, nil
			}
			r--
		}
		// A set was refused between the count and the walk: take any left.
		for i := range k.refused {
			if !k.refused[i].Load() {
				return k.rec.Sets[i], i, nil
			}
		}
	}
	who := k.rec.Contact
	if who == "" {
		who = "the administrator of this proxy"
	}
	return credential.Credential{}, -1, failure.New(failure.Forbidden,
		"every Hexagon credential behind this key was refused; contact "+who, nil)
}

// Refused marks set (an index Pick returned) as refused by Hexagon: Pick
// skips it until the record is next fetched. The first refusal of a set
// is logged with the organisation and the set's index. Out-of-range
// indexes are ignored.
func (k *Key) Refused(set int) {
	if set < 0 || set >= len(k.refused) {
		return
	}
	if !k.refused[set].Swap(true) {
		left := 0
		for i := range k.refused {
			if !k.refused[i].Load() {
				left++
			}
		}
		k.log.Warn("Hexagon refused a credential set of a key; skipping it until the key is next refreshed",
			"key", k.fp, "org", k.rec.Org, "set", set, "sets_left", left)
	}
}

// scrubKey replaces every spelling of key in s (keys are case-insensitive)
// with fp, so that a store's error never carries the key to a log line.
func scrubKey(s, key, fp string) string {
	var b strings.Builder
	for {
		i := indexFold(s, key)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(fp)
		s = s[i+len(key):]
	}
}

// indexFold is strings.Index for ASCII case-insensitive matching (keys are
// ASCII).
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
