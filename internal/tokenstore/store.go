// Package tokenstore is the shared layer beneath each instance's token
// cache: a small key-value store with optimistic concurrency, in which all
// instances keep one sealed token per credential and take turns
// refreshing it. Implementations: Memory here, and Azure Table Storage in
// package azuretable.
package tokenstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/hexprox/hexprox/internal/lru"
)

// Errors a Store returns; implementations map their own onto these.
var (
	ErrNotFound = errors.New("tokenstore: no such entity")
	ErrConflict = errors.New("tokenstore: entity changed or exists") // lost a race: normal, not a failure
	// ErrUnreadable is returned by Get, together with the entity's ETag,
	// when an entity exists but cannot be decoded (written by something
	// else, or damaged). The caller may replace it with Update at that
	// ETag; it is not an outage.
	ErrUnreadable = errors.New("tokenstore: entity cannot be decoded")
)

// ETag identifies one version of an entity.
type ETag string

// Entity is what is stored per key. Data is opaque to the store (the
// token sealed by its reader); the lease fields coordinate refreshes.
type Entity struct {
	Data       []byte    // nil when no token is stored
	LeaseUntil time.Time // zero when no lease is held
	LeaseOwner string
	// Modified is when the store last wrote the entity, by the store's own
	// clock (Azure's server-set Timestamp; Memory's clock). Get fills it
	// in; Create and Update ignore it, so no writer can choose it.
	Modified time.Time
}

// Store keeps Entities under keys (hex strings of at most 64 characters).
// Implementations must be safe for concurrent use by many processes.
type Store interface {
	// Get returns the entity and its version, or ErrNotFound, or
	// ErrUnreadable with the version of an entity it cannot decode.
	Get(ctx context.Context, key string) (Entity, ETag, error)
	// Create adds an entity, or returns ErrConflict if the key exists.
	Create(ctx context.Context, key string, e Entity) (ETag, error)
	// Update replaces the entity if it is still at version ifMatch;
	// ErrConflict if it changed, ErrNotFound if it is gone.
	Update(ctx context.Context, key string, e Entity, ifMatch ETag) (ETag, error)
}

// DefaultMemoryMax is how many entities a Memory store keeps by default:
// as many credentials as the server keeps state for (credstate.DefaultMax).
const DefaultMemoryMax = 10000

// MemoryOptions configure NewMemoryWith. Zero values take the defaults.
type MemoryOptions struct {
	// Max is the most entities kept (default DefaultMemoryMax). Beyond it
	// the least recently used entity (by Get, Create or Update) is
	// dropped, as if another process had deleted it.
	Max int
	// Now is the store's clock for Entity.Modified (default time.Now).
	Now func() time.Time
}

// Memory is a Store in process memory: the reference the Table store is
// tested against, and a store for tests of the shared layer. It holds at most
// Max entities (least recently used go first); every operation is O(1).
// A Memory is safe for concurrent use.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	version int
	m       *lru.Cache[*memEntry]
}

type memEntry struct {
	e    Entity
	etag ETag
}

// NewMemory returns an empty Memory store with the default options.
func NewMemory() *Memory { return NewMemoryWith(MemoryOptions{}) }

// NewMemoryWith returns an empty Memory store configured by o.
func NewMemoryWith(o MemoryOptions) *Memory {
	if o.Max <= 0 {
		o.Max = DefaultMemoryMax
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Memory{now: o.Now, m: lru.New[*memEntry](o.Max)}
}

// Len returns the number of entities held.
func (s *Memory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Len()
}

func (s *Memory) next() ETag {
	s.version++
	return ETag("m" + strconv.Itoa(s.version))
}

func clone(e Entity) Entity {
	if e.Data != nil {
		e.Data = append([]byte(nil), e.Data...)
	}
	return e
}

// Get implements Store.
func (s *Memory) Get(_ context.Context, key string) (Entity, ETag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	me, ok := s.m.Get(key)
	if !ok {
		return Entity{}, "", ErrNotFound
	}
	return clone(me.e), me.etag, nil
}

// Create implements Store.
func (s *Memory) Create(_ context.Context, key string, e Entity) (ETag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m.Peek(key); ok {
		return "", ErrConflict
	}
	me := &memEntry{e: clone(e), etag: s.next()}
	me.e.Modified = s.now()
	s.m.Put(key, me) // the least recently used goes, if full
	return me.etag, nil
}

// Update implements Store.
func (s *Memory) Update(_ context.Context, key string, e Entity, ifMatch ETag) (ETag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	me, ok := s.m.Get(key)
	if !ok {
		return "", ErrNotFound
	}
	if me.etag != ifMatch {
		return "", ErrConflict
	}
	me.e, me.etag = clone(e), s.next()
	me.e.Modified = s.now()
	return me.etag, nil
}
