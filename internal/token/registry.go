package token

import (
	"container/list"
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
)

// BaseFunc builds the source beneath a credential's Cached layer. ctx is
// the registry's long-lived context.
type BaseFunc func(ctx context.Context, cred credential.Credential) oauth2.TokenSource

// Registry holds one Cached source per credential, keyed by the
// credential's hash, never its values. It keeps at most Max sources and
// drops the least recently used beyond that; finding, adding and
// dropping a source each take constant time.
//
// A Registry is safe for concurrent use.
type Registry struct {
	ctx        context.Context
	base       BaseFunc
	max        int
	refusalTTL time.Duration
	now        func() time.Time
	log        *slog.Logger

	mu      sync.Mutex
	sources map[string]*list.Element // key → element of lru
	lru     list.List                // of *entry, most recently used at the front
}

type entry struct {
	key string
	src *Cached
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// Max is the most sources held; zero or less means 10000.
	Max int
	// RefusalTTL is how long each source remembers that the token
	// endpoint refused its credential, and answers the refusal without
	// asking again. It is used as given and should be positive (the
	// configuration has the default); zero or less means refusals are
	// not remembered, so every request with a refused credential asks
	// the token endpoint.
	RefusalTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the sources' log records; nil means slog.Default().
	Log *slog.Logger
}

// NewRegistry returns a Registry whose sources fetch with ctx, which must
// live as long as the server.
func NewRegistry(ctx context.Context, base BaseFunc, o RegistryOptions) *Registry {
	if o.Max <= 0 {
		o.Max = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Registry{ctx: ctx, base: base, max: o.Max, refusalTTL: o.RefusalTTL, now: o.Now, log: o.Log, sources: map[string]*list.Element{}}
}

// Source returns the credential's Cached source, creating it on first use
// and dropping the least recently used source if the registry is full.
// A dropped source's token is forgotten here, not revoked: its credential
// gets a new source (and asks the layers below) when it comes back.
func (r *Registry) Source(cred credential.Credential) *Cached {
	key := cred.Key()
	r.mu.Lock()
	defer r.mu.Unlock()
	if el, ok := r.sources[key]; ok {
		r.lru.MoveToFront(el)
		return el.Value.(*entry).src
	}
	if r.lru.Len() >= r.max {
		oldest := r.lru.Back()
		r.lru.Remove(oldest)
		delete(r.sources, oldest.Value.(*entry).key)
	}
	src := NewCached(r.base(r.ctx, cred), r.refusalTTL, r.now, r.log.With("cred", cred.Fingerprint()))
	r.sources[key] = r.lru.PushFront(&entry{key: key, src: src})
	return src
}
