// Package credstate holds this instance's state of each Hexagon
// credential in one entry: its token source, its limits and usage subject
// once Hexagon has accepted it, and the spellings of its URL that were
// decoded to it. One table and one eviction rule (least recently used): a
// credential dropped from the table loses all of these together, and
// comes back with a fresh entry (and a fresh look at the layers below its
// tokens).
//
// Credentials Hexagon has not accepted (guesses, and real ones before
// their first token) are held apart, in a trial tier of the same size, so
// that however many random credentials are tried, none of them pushes out
// a credential Hexagon accepted, with its token and its limits.
package credstate

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/lru"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/limit"
)

// DefaultMax is how many credentials a Table holds by default.
const DefaultMax = 10000

// maxSpellings bounds the URL spellings remembered per credential
// (standard or URL-safe base64, percent-encoded or not); beyond it the
// oldest is forgotten, and decoded again when it comes back.
const maxSpellings = 4

// Options configure a Table.
type Options struct {
	// Tokens builds each credential's token stack (token.NewStack); its
	// ctx is the table's. Required.
	Tokens token.Stack
	// Max is the most credentials held in each tier (accepted, and on
	// trial); zero or less means DefaultMax. Beyond it the tier's least
	// recently used is dropped.
	Max int
	// Limits apply to each credential Hexagon has accepted (RATE_LIMIT,
	// DAILY_REQUEST_LIMIT); the zero value limits nothing.
	Limits limit.Limits
	// Usage counts each accepted credential's requests; nil counts
	// nothing.
	Usage *usage.Counter
	// HashKey keys the credentials' fingerprints (TOKEN_HASH_KEY; see
	// credential.Fingerprint).
	HashKey string
}

// Table holds one Entry per credential, keyed by the credential's hash,
// never its values. It is safe for concurrent use.
type Table struct {
	ctx     context.Context
	o       Options
	limited bool // o.Limits sets a limit

	mu      sync.Mutex
	entries *lru.Cache[*Entry] // accepted credentials, by Key
	trial   *lru.Cache[*Entry] // credentials not accepted (yet), by Key
	spelled map[string]*Entry  // escaped "{id}/{secret}" → its accepted entry
}

// New returns a Table whose token sources fetch with ctx, which must live
// as long as the server.
func New(ctx context.Context, o Options) *Table {
	if o.Max <= 0 {
		o.Max = DefaultMax
	}
	return &Table{ctx: ctx, o: o, limited: limit.New(o.Limits) != nil, entries: lru.New[*Entry](o.Max), trial: lru.New[*Entry](o.Max), spelled: map[string]*Entry{}}
}

// Find returns cred's entry if the table holds one, without making one.
func (t *Table) Find(cred credential.Credential) (*Entry, bool) {
	key := cred.Key()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.held(key)
}

// held returns key's entry, marked used. Callers hold t.mu.
func (t *Table) held(key string) (*Entry, bool) {
	if e, ok := t.entries.Get(key); ok {
		return e, true
	}
	return t.trial.Get(key)
}

// Get returns cred's entry, making it on first use, on trial (and
// dropping the least recently used credential on trial if there is no
// room).
func (t *Table) Get(cred credential.Credential) *Entry {
	cred = cred.Keyed()
	key := cred.Key()
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.held(key); ok {
		return e
	}
	who := cred.Fingerprint(t.o.HashKey)
	e := &Entry{
		Cred:   cred,
		Who:    who,
		Tokens: t.o.Tokens(t.ctx, cred),
		table:  t,
	}
	t.trial.Put(key, e)
	return e
}

// promote moves e, which Hexagon has just accepted, from trial to the
// accepted tier (dropping the least recently used accepted credential,
// and its spellings, if there is no room). An entry dropped from trial
// meanwhile is promoted all the same, unless its credential has another
// entry there already.
func (t *Table) promote(e *Entry) {
	key := e.Cred.Key()
	t.mu.Lock()
	defer t.mu.Unlock()
	if held, ok := t.trial.Peek(key); ok && held == e {
		t.trial.Remove(key)
	}
	if _, ok := t.entries.Peek(key); ok {
		return
	}
	if dropped, evicted := t.entries.Put(key, e); evicted {
		for _, s := range dropped.spellings {
			delete(t.spelled, s)
		}
	}
}

// Spelled returns the entry of an accepted credential whose escaped
// "{id}/{secret}" path segments are segs, so that a known URL is neither
// decoded nor hashed again.
func (t *Table) Spelled(segs string) (*Entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.spelled[segs]
	if ok {
		t.entries.Get(e.Cred.Key()) // used
	}
	return e, ok
}

// Remember notes segs as a spelling of e's credential once Hexagon has
// accepted it: random URLs never fill the table's spellings.
func (t *Table) Remember(segs string, e *Entry) {
	if !e.Accepted() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if held, ok := t.entries.Peek(e.Cred.Key()); !ok || held != e {
		return // dropped meanwhile
	}
	if _, ok := t.spelled[segs]; ok {
		return
	}
	if len(e.spellings) == maxSpellings {
		delete(t.spelled, e.spellings[0])
		e.spellings = append(e.spellings[:0], e.spellings[1:]...)
	}
	segs = string([]byte(segs)) // not a slice of a request's path
	e.spellings = append(e.spellings, segs)
	t.spelled[segs] = e
}

// Fingerprint is cred's fingerprint, as its entry's Who says it.
func (t *Table) Fingerprint(cred credential.Credential) string {
	return cred.Fingerprint(t.o.HashKey)
}

// Len returns the number of credentials held, accepted and on trial.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.entries.Len() + t.trial.Len()
}

// Entry is this instance's state of one credential. Its methods are safe
// for concurrent use.
type Entry struct {
	Cred   credential.Credential // with its Key computed
	Who    string                // its fingerprint, for logs
	Tokens *token.Cached

	table     *Table
	accepted  atomic.Bool
	limiter   atomic.Pointer[limit.Limiter]
	subject   atomic.Pointer[usage.Subject]
	spellings []string // guarded by table.mu
}

// Accepted reports whether Hexagon has accepted the credential while this
// entry lived: a token of it was handed out. It is the one test of
// whether the credential is more than a guess: only then is it limited,
// counted and remembered by its spelling, so that random credentials
// cannot fill the limiters, the counters or the table's spellings. Once
// true it stays true for the entry's life, also when its token later
// expires or Hexagon refuses it (the refusal is then answered as such).
func (e *Entry) Accepted() bool {
	if e.accepted.Load() {
		return true
	}
	if e.Tokens.State() != token.Live {
		return false
	}
	if e.accepted.CompareAndSwap(false, true) {
		e.table.promote(e)
	}
	return true
}

// Guess reports whether a request with the credential now would be a
// guess that reaches Hexagon: it was never accepted, and no refusal of it
// is remembered. This is what the per-address guess limit gates.
func (e *Entry) Guess() bool {
	return !e.Accepted() && e.Tokens.State() == token.Unknown
}

// Limiter returns the credential's limits once Hexagon has accepted it;
// nil before, or when no limits are set.
func (e *Entry) Limiter() *limit.Limiter {
	if l := e.limiter.Load(); l != nil {
		return l
	}
	if !e.table.limited || !e.Accepted() {
		return nil
	}
	l := limit.New(e.table.o.Limits)
	if !e.limiter.CompareAndSwap(nil, l) {
		return e.limiter.Load()
	}
	return l
}

// Subject returns whom the credential's requests are counted under once
// Hexagon has accepted it (its fingerprint, with no organisation); nil
// before, or when nothing is counted.
func (e *Entry) Subject() *usage.Subject {
	if s := e.subject.Load(); s != nil {
		return s
	}
	if e.table.o.Usage == nil || !e.Accepted() {
		return nil
	}
	s := e.table.o.Usage.Subject(usage.SubjectID{Key: e.Who})
	if !s.Folded() { // Other stands in only while the counter is full
		e.subject.Store(s)
	}
	return s
}
