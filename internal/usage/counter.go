// Package usage counts requests per subject (an organisation's API key, or
// a v1 credential) per UTC hour, flushes the totals to a shared Sink, and
// answers daily quotas from what every instance flushed.
//
// # Counting
//
// The request path resolves a *Subject (Counter.Subject, a lock-free
// lookup for a subject already held) and counts with it; Subject.Add is
// two atomic loads and an atomic add into the current hour's bucket: no
// clock read, no lock, no allocation, never an error, never a wait on
// storage. A new hour costs one short lock and one small allocation per
// subject. The current hour is reread from the clock every Options.Tick
// (one second) by the Counter's loop.
//
// # Flushing and what a crash loses
//
// Every Options.Flush (and on Close) the Counter writes, for each subject
// and hour it holds, this instance's absolute totals to the Sink, one row
// per (instance, subject, hour). Rows are upserted, never incremented, so
// instances never contend for a row and a failed or partial flush is
// simply repeated later with newer totals: while storage is down or slow,
// counts stay in memory (bounded, see Options) and nothing counted is lost
// once it is back. A process that dies without Close (kill -9, a crash, an
// instance the platform removes without SIGTERM) loses what it counted
// since its last successful flush: at most one flush interval, and more
// only if storage was also unreachable at the time.
//
// # Memory
//
// A Counter holds at most Options.MaxSubjects subjects and
// Options.MaxBuckets hour buckets (about 200 bytes each). Buckets are
// released once written; a subject idle for a whole hour is released
// after its last write, and comes back on its next request. At the
// subject cap new subjects count under Other; at the bucket cap (storage
// unreachable for many hours) a subject whose hour changes keeps counting
// into the last hour it has. In both cases totals stay exact and Stats
// counts what was folded.
package usage

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hexprox/hexprox/internal/lru"
)

// Defaults for Options' zero values.
const (
	DefaultFlush       = 60 * time.Second
	DefaultMaxSubjects = 10000
	DefaultMaxBuckets  = 100000
	DefaultTick        = time.Second
	DefaultUsageTTL    = 30 * time.Second
)

// Options configure a Counter. Zero values take the defaults.
type Options struct {
	// Sink receives the flushed totals. nil: a new MemorySink.
	Sink Sink
	// Instance names this process's rows, and no other process's (see
	// ProcessInstance). "": a random id, new for every process.
	Instance string
	// Flush is the interval between flushes. <= 0: DefaultFlush.
	Flush time.Duration
	// FlushTimeout bounds each flush's (and each quota refresh's) storage
	// calls. <= 0: the flush interval.
	FlushTimeout time.Duration
	// MaxSubjects caps the subjects held. <= 0: DefaultMaxSubjects.
	MaxSubjects int
	// MaxBuckets caps the (subject, hour) buckets held. <= 0:
	// DefaultMaxBuckets; at least 2×MaxSubjects+1 is wise.
	MaxBuckets int
	// Now is the clock. nil: time.Now.
	Now func() time.Time
	// Log receives flush failures (once per outage) and recoveries. nil:
	// nothing is logged. Rows hold no secret, so neither do these lines.
	Log *slog.Logger
	// UsageTTL is how long Usage reuses what it read of the Sink for a
	// subject (other instances' flushed rows, which change only at their
	// flushes); its own counts are always live. <= 0: the smaller of Flush
	// and DefaultUsageTTL.
	UsageTTL time.Duration
	// Tick is how often the loop rereads the clock for the current hour:
	// counts made up to Tick after an hour begins go to the hour before.
	// <= 0: DefaultTick.
	Tick time.Duration
	// NoLoop: no background loop; the owner calls Tick and Flush (tests).
	NoLoop bool
}

// Stats describe a Counter's memory and its folds.
type Stats struct {
	Subjects       int   // held, including Other and released ones awaiting a last write
	Buckets        int   // (subject, hour) buckets held
	FoldedSubjects int64 // lookups answered with Other because of MaxSubjects or MaxBuckets
	LateHours      int64 // hour changes that kept counting into an earlier hour (MaxBuckets)
	FlushFailures  int64 // flushes the Sink refused or timed out
	Flushes        int64 // flushes that succeeded
}

// Counter counts requests per subject and hour and flushes them to a Sink.
// Its methods are safe for concurrent use.
type Counter struct {
	o        Options
	sink     Sink
	now      func() time.Time
	instance string

	mu        sync.Mutex
	subjects  map[SubjectID]*Subject
	held      sync.Map   // SubjectID → *Subject: subjects, for lookups without mu
	retiring  []*Subject // released, awaiting their buckets' last write
	other     *Subject
	nbuckets  int
	seq       uint64 // flushes started
	stats     Stats
	shared    map[SubjectID]int64 // quota: today's flushed totals of every instance
	sharedDay int64

	// hour is the current Unix hour, as of the last Tick: Add reads it
	// instead of the clock (a clock read can cost more than all the rest
	// of Add). It never goes back.
	hour atomic.Int64

	quotaWanted atomic.Bool
	flushMu     sync.Mutex // one flush at a time, and guards:
	failing     bool       // the last flush failed
	refreshErr  string     // the cause of the last failed quota refresh

	readsMu sync.Mutex
	reads   *lru.Cache[storedUsage] // Usage's reads of the Sink, per subject, briefly

	kick      chan struct{} // asks the loop for a quota refresh
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a Counter and, unless o.NoLoop, starts its flush loop; call
// Close to stop it and flush a last time.
func New(o Options) *Counter {
	if o.Sink == nil {
		o.Sink = &MemorySink{}
	}
	if o.Instance == "" {
		o.Instance = RandomInstance()
	}
	if o.Flush <= 0 {
		o.Flush = DefaultFlush
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = o.Flush
	}
	if o.UsageTTL <= 0 {
		o.UsageTTL = min(o.Flush, DefaultUsageTTL)
	}
	if o.MaxSubjects <= 0 {
		o.MaxSubjects = DefaultMaxSubjects
	}
	if o.MaxBuckets <= 0 {
		o.MaxBuckets = DefaultMaxBuckets
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	c := &Counter{
		o: o, sink: o.Sink, now: o.Now, instance: o.Instance,
		subjects: make(map[SubjectID]*Subject),
		reads:    lru.New[storedUsage](o.MaxSubjects),
		kick:     make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	c.other = &Subject{c: c, id: Other, other: true}
	c.Tick()
	if o.NoLoop {
		close(c.done)
	} else {
		go c.loop()
	}
	return c
}

// ProcessInstance names one process's rows: host (WEBSITE_INSTANCE_ID,
// which names the machine and outlives a restart), then a random part.
// Rows hold a process's totals and are overwritten at each flush, so a
// restarted process under the host's name alone would overwrite the
// hour its predecessor counted.
func ProcessInstance(host string) string {
	if host == "" {
		return RandomInstance()
	}
	return host + "-" + RandomInstance()
}

// RandomInstance returns a random instance id (16 hex digits).
func RandomInstance() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Tick rereads the clock for the hour that counts go to. The loop calls
// it every Options.Tick, and Flush calls it; with NoLoop, call it after
// moving a test clock.
func (c *Counter) Tick() { c.setHour(unixHour(c.now())) }

func (c *Counter) setHour(h int64) {
	for {
		old := c.hour.Load()
		if h <= old || c.hour.CompareAndSwap(old, h) {
			return
		}
	}
}

// Subject is a Subject's handle: one per organisation and key (or
// credential fingerprint). Callers may keep it or look it up again; a
// handle stays valid for the Counter's life (a released subject
// re-resolves itself on its next Add). A nil *Subject counts nothing.
type Subject struct {
	c       *Counter
	id      SubjectID
	other   bool
	cur     atomic.Pointer[bucket]
	retired atomic.Bool

	// base + the current bucket's Quota is this subject's daily_requests
	// usage on baseDay (see OverDaily).
	base    atomic.Int64
	baseDay atomic.Int64

	buckets []*bucket // guarded by c.mu; oldest first, the current one last
}

type bucket struct {
	hour       int64 // Unix hours
	n          [numKinds]atomic.Int64
	flushed    Counts // guarded by c.mu: what the Sink last accepted
	retiredSeq uint64 // guarded by c.mu: c.seq when it stopped being current; 0 while current
	dead       bool   // guarded by c.mu: released; its counts are written and it is never read again
}

func (b *bucket) load() (out Counts) {
	for k := range b.n {
		out[k] = b.n[k].Load()
	}
	return out
}

func (b *bucket) quota() int64 {
	var n int64
	for k := range b.n {
		if v := b.n[k].Load(); v > 0 && Kind(k) != BytesStreamed && Kind(k) != RateLimited {
			n += v
		}
	}
	return n
}

func unixHour(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return (s - 3599) / 3600
	}
	return s / 3600
}

func dayOf(hour int64) int64 {
	if hour < 0 {
		return (hour - 23) / 24
	}
	return hour / 24
}

// Folded reports whether s is the Other subject that stands in for
// subjects past the caps: a handle not to keep, since the subject it was
// asked for may get a handle of its own once there is room.
func (s *Subject) Folded() bool { return s != nil && s.other }

// Subject returns the handle of id, creating it if needed. At the
// MaxSubjects or MaxBuckets cap it returns the Other subject's handle. A
// subject already held is found without a lock, so it may be called per
// request; creating one takes the Counter's lock.
func (c *Counter) Subject(id SubjectID) *Subject {
	if s, ok := c.held.Load(id); ok {
		// Possibly released since: a released handle re-resolves itself
		// on its next Add, as any kept handle does.
		return s.(*Subject)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subjectLocked(id)
}

func (c *Counter) subjectLocked(id SubjectID) *Subject {
	if s, ok := c.subjects[id]; ok {
		return s
	}
	if id == Other {
		return c.other
	}
	if len(c.subjects) >= c.o.MaxSubjects || c.nbuckets >= c.o.MaxBuckets {
		c.stats.FoldedSubjects++
		return c.other
	}
	s := &Subject{c: c, id: id}
	if c.shared != nil {
		// Released earlier today and back: start from what was flushed.
		s.base.Store(c.shared[id])
		s.baseDay.Store(c.sharedDay)
	}
	c.subjects[id] = s
	c.held.Store(id, s)
	return s
}

// Add counts n of kind k for this hour. It never blocks on storage, never
// fails, and allocates only on the first count of an hour. Kinds out of
// range are ignored.
func (s *Subject) Add(k Kind, n int64) {
	if s == nil || k >= numKinds {
		return
	}
	h := s.c.hour.Load()
	b := s.cur.Load()
	if b == nil || b.hour != h {
		b = s.c.rotate(s, h)
	}
	if b.n[k].Add(n) < 0 {
		// b is sealed: a flush is releasing it (see releaseLocked).
		s.c.late(s, b, k, n)
	}
}

// late settles a count that landed in a sealed bucket: once the flush
// that sealed b has decided (it holds c.mu throughout), either b was kept
// and the count stays in it, or b is dead and the count moves to s (or its
// replacement) in the current hour.
func (c *Counter) late(s *Subject, b *bucket, k Kind, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !b.dead {
		return
	}
	if s.retired.Load() {
		s = c.subjectLocked(s.id)
	}
	c.bucketLocked(s, c.hour.Load()).n[k].Add(n)
}

// sealOffset is subtracted from every count of a bucket while a flush
// decides whether to release it, so that an Add's result tells it that
// the bucket is sealed without another atomic operation.
const sealOffset = 1 << 62

// Inc counts one of kind k.
func (s *Subject) Inc(k Kind) { s.Add(k, 1) }

// rotate returns the bucket for hour h of s, or of the subject that
// replaced s if s was released.
func (c *Counter) rotate(s *Subject, h int64) *bucket {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.retired.Load() {
		s = c.subjectLocked(s.id)
		// h may have been read before s was released; the replacement
		// must not count into an hour the released subject holds (their
		// rows would overwrite each other). Released subjects end before
		// the hour the releasing flush set, and c.hour never goes back.
		h = max(h, c.hour.Load())
	}
	return c.bucketLocked(s, h)
}

func (c *Counter) bucketLocked(s *Subject, h int64) *bucket {
	old := s.cur.Load()
	if old != nil && old.hour >= h {
		return old // another caller rotated first, or the clock stepped back
	}
	if old != nil && c.nbuckets >= c.o.MaxBuckets {
		c.stats.LateHours++
		return old
	}
	nb := &bucket{hour: h}
	c.nbuckets++
	s.buckets = append(s.buckets, nb)
	day := dayOf(h)
	if old != nil {
		old.retiredSeq = c.seq + 1
		if dayOf(old.hour) == day && s.baseDay.Load() == day {
			s.base.Add(old.quota())
		}
	}
	if s.baseDay.Load() != day {
		s.base.Store(0)
		s.baseDay.Store(day)
	}
	s.cur.Store(nb)
	return nb
}

// Stats returns the Counter's current figures.
func (c *Counter) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Subjects = len(c.subjects) + len(c.retiring) + 1
	st.Buckets = c.nbuckets
	return st
}

// Snapshot returns this instance's current totals as rows (written or
// not), for the hours in [from, to): what a flush now would write, and
// what it already wrote for hours still held.
func (c *Counter) Snapshot(from, to time.Time) []Row {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := Query{From: from, To: to}
	var rows []Row
	c.eachSubjectLocked(func(s *Subject) { rows = c.appendRowsLocked(rows, s, q) })
	return rows
}

// appendRowsLocked appends s's rows that q matches. Callers hold c.mu.
func (c *Counter) appendRowsLocked(rows []Row, s *Subject, q Query) []Row {
	for _, b := range s.buckets {
		r := Row{Hour: time.Unix(b.hour*3600, 0).UTC(), Instance: c.instance, SubjectID: s.id, Counts: b.load()}
		if q.Matches(r) {
			rows = append(rows, r)
		}
	}
	return rows
}

func (c *Counter) eachSubjectLocked(f func(*Subject)) {
	f(c.other)
	for _, s := range c.subjects {
		f(s)
	}
	for _, s := range c.retiring {
		f(s)
	}
}
