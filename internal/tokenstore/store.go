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
)

// Errors a Store returns; implementations map their own onto these.
var (
	ErrNotFound = errors.New("tokenstore: no such entity")
	ErrConflict = errors.New("tokenstore: entity changed or exists") // lost a race: normal, not a failure
)

// ETag identifies one version of an entity.
type ETag string

// Entity is what is stored per key. Data is opaque to the store (the
// token sealed by its reader); the lease fields coordinate refreshes.
type Entity struct {
	Data       []byte    // nil when no token is stored
	LeaseUntil time.Time // zero when no lease is held
	LeaseOwner string
}

// Store keeps Entities under keys (hex strings of at most 64 characters).
// Implementations must be safe for concurrent use by many processes.
type Store interface {
	// Get returns the entity and its version, or ErrNotFound.
	Get(ctx context.Context, key string) (Entity, ETag, error)
	// Create adds an entity, or returns ErrConflict if the key exists.
	Create(ctx context.Context, key string, e Entity) (ETag, error)
	// Update replaces the entity if it is still at version ifMatch;
	// ErrConflict if it changed, ErrNotFound if it is gone.
	Update(ctx context.Context, key string, e Entity, ifMatch ETag) (ETag, error)
}

// Memory is a Store in process memory: the default for a single instance,
// and the reference the Table store is tested against.
type Memory struct {
	mu      sync.Mutex
	version int
	m       map[string]memEntry
}

type memEntry struct {
	e    Entity
	etag ETag
}

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{m: map[string]memEntry{}} }

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

func (s *Memory) Get(_ context.Context, key string) (Entity, ETag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	me, ok := s.m[key]
	if !ok {
		return Entity{}, "", ErrNotFound
	}
	return clone(me.e), me.etag, nil
}

func (s *Memory) Create(_ context.Context, key string, e Entity) (ETag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; ok {
		return "", ErrConflict
	}
	me := memEntry{e: clone(e), etag: s.next()}
	s.m[key] = me
	return me.etag, nil
}

func (s *Memory) Update(_ context.Context, key string, e Entity, ifMatch ETag) (ETag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	me, ok := s.m[key]
	if !ok {
		return "", ErrNotFound
	}
	if me.etag != ifMatch {
		return "", ErrConflict
	}
	me = memEntry{e: clone(e), etag: s.next()}
	s.m[key] = me
	return me.etag, nil
}
