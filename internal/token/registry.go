package token

import (
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
// drops the least recently used beyond that.
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
	sources map[string]*entry
}

type entry struct {
	src      *Cached
	lastUsed time.Time
}

// RegistryOptions configure a Registry. Zero values take the defaults.
type RegistryOptions struct {
	Max        int              // default 10000
	RefusalTTL time.Duration    // default 30s
	Now        func() time.Time // default time.Now
	Log        *slog.Logger     // default slog.Default()
}

// NewRegistry returns a Registry whose sources fetch with ctx, which must
// live as long as the server.
func NewRegistry(ctx context.Context, base BaseFunc, o RegistryOptions) *Registry {
	if o.Max <= 0 {
		o.Max = 10000
	}
	if o.RefusalTTL <= 0 {
		o.RefusalTTL = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Registry{ctx: ctx, base: base, max: o.Max, refusalTTL: o.RefusalTTL, now: o.Now, log: o.Log, sources: map[string]*entry{}}
}

// Source returns the credential's Cached source, creating it on first use.
func (r *Registry) Source(cred credential.Credential) *Cached {
	key := cred.Key()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if e, ok := r.sources[key]; ok {
		e.lastUsed = now
		return e.src
	}
	if len(r.sources) >= r.max {
		r.evictOldest()
	}
	src := NewCached(r.base(r.ctx, cred), r.refusalTTL, r.now, r.log.With("cred", cred.Fingerprint()))
	r.sources[key] = &entry{src: src, lastUsed: now}
	return src
}

// Len returns the number of sources held.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sources)
}

func (r *Registry) evictOldest() {
	var oldest string
	var at time.Time
	for k, e := range r.sources {
		if oldest == "" || e.lastUsed.Before(at) {
			oldest, at = k, e.lastUsed
		}
	}
	delete(r.sources, oldest)
}
