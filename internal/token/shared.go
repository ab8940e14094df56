package token

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/tokenstore"
)

// refreshAtKey is the oauth2.Token extra under which Shared tells the
// memory layer when the shared token is due for refresh, so that every
// instance asks the store at the same point.
const refreshAtKey = "hexprox_refresh_at"

// SharedOptions configure the shared layer. Zero values take defaults.
type SharedOptions struct {
	// HashKey keys the HMAC that names a credential's row. All instances
	// must share it; empty uses a fixed domain-separation string.
	HashKey string
	// Owner names this instance in leases; empty picks a random one.
	Owner string
	// Timeout bounds each store call (default 2s).
	Timeout time.Duration
	// LeaseTTL is how long a refresh lease lasts (default 30s): past it,
	// another instance may take over from one that died mid-refresh. All
	// instances must use the same value: a lease ending more than
	// LeaseTTL + LeaseSkew from now is taken for forged and ignored.
	LeaseTTL time.Duration
	// Wait bounds how long a cold instance waits for another's fetch
	// before fetching itself (default 10s).
	Wait time.Duration
	Now  func() time.Time
	Log  *slog.Logger
	// Health is shared by all credentials' layers over one store, so that
	// an outage is logged once and noticed by all. nil makes a new one.
	Health *StoreHealth
}

// StoreHealth remembers a store outage: while the store is down, the
// shared layer goes straight to Hexagon, and tries the store again after
// RetryAfter. Transitions are logged once.
type StoreHealth struct {
	RetryAfter time.Duration // default 30s
	Log        *slog.Logger

	mu        sync.Mutex
	downUntil time.Time
	down      bool
}

func (h *StoreHealth) up(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down || !now.Before(h.downUntil)
}

func (h *StoreHealth) fail(now time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	retry := h.RetryAfter
	if retry <= 0 {
		retry = 30 * time.Second
	}
	if !h.down && h.Log != nil {
		h.Log.Warn("token store unreachable; serving tokens from this instance's memory and Hexagon until it is back", "err", err, "retry_in", retry.String())
	}
	h.down, h.downUntil = true, now.Add(retry)
}

func (h *StoreHealth) ok() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down && h.Log != nil {
		h.Log.Info("token store reachable again; sharing tokens resumes")
	}
	h.down = false
}

// Shared is the layer between an instance's memory cache and Hexagon: it
// keeps one token per credential in a Store that every instance reads. A
// token is stored sealed (AES-256-GCM under a key derived from the
// credential with HKDF), in a row named by an HMAC of the credential, so a
// reader of the store who lacks the credential learns nothing usable.
//
// Rows exist only for credentials Hexagon accepted: a credential with no
// row is fetched from Hexagon first, and the row is created with the
// sealed token (refused credentials write nothing). N cold instances that
// see a never-seen credential at once may therefore make up to N token
// requests, once; after that at most one instance refreshes a
// credential's token per refresh window: it takes a lease with an
// ETag-conditional update, fetches, and writes; the others keep serving
// the current token and pick the new one up. A store that fails or is
// slow never fails a request: Shared logs once and goes to Hexagon
// directly until the store is back.
//
// Someone who can write the store but lacks the credential can delay
// sharing, but not make an instance hand out a token it should not: a
// lease further ahead than LeaseTTL + LeaseSkew is ignored; every write
// re-seals the token with its write time, and a sealed token is refused if
// it was sealed more than SealSkew before the store's own Modified time
// (a blob copied back into a row), or before the newest one this instance
// has read or written.
//
// A Shared is safe for concurrent use. Its Cached layer calls Token one
// at a time, which keeps an instance from racing itself for the lease;
// Invalidate may run at any time.
type Shared struct {
	ctx   context.Context
	base  oauth2.TokenSource
	store tokenstore.Store
	key   string
	aead  cipher.AEAD
	o     SharedOptions

	mu      sync.Mutex
	newest  time.Time // latest sealed write time read or written
	refused string    // a token value Hexagon refused: not taken from the row again
}

// LeaseSkew is how far ahead of LeaseTTL a lease may end and still be
// honoured (other instances' clocks differ a little). A lease that ends
// later was not written by an instance: it is treated as no lease.
const LeaseSkew = 5 * time.Second

// SealSkew is how much earlier than the store's own write time (Azure's
// Timestamp) a sealed token's write time may be and still be accepted:
// the clock difference between an instance and the store, plus the time
// a write takes. An older blob was copied back into the row.
const SealSkew = time.Minute

// NewShared returns the shared layer for cred over base (the Hexagon
// endpoint source). ctx must live as long as the server.
func NewShared(ctx context.Context, cred credential.Credential, base oauth2.TokenSource, store tokenstore.Store, o SharedOptions) *Shared {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Wait <= 0 {
		o.Wait = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Owner == "" {
		o.Owner = NewOwner()
	}
	if o.Health == nil {
		o.Health = &StoreHealth{Log: o.Log}
	}
	return &Shared{ctx: ctx, base: base, store: store, key: RowKey(cred, o.HashKey), aead: sealer(cred), o: o}
}

// NewOwner returns a random instance name for leases.
func NewOwner() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (r sealed) token() *oauth2.Token {
	t := &oauth2.Token{AccessToken: r.Token, TokenType: r.Type, Expiry: time.UnixMilli(r.Expiry)}
	return t.WithExtra(map[string]any{refreshAtKey: time.UnixMilli(r.RefreshAt)})
}

// usable reports whether a stored token can still be handed out: by the
// margin Cached keeps before a token's expiry (staleMargin of its
// lifetime as sealed).
func (r sealed) usable(now time.Time) bool {
	expiry := time.UnixMilli(r.Expiry)
	margin := maxMargin
	if r.Written > 0 {
		margin = staleMargin(expiry.Sub(time.UnixMilli(r.Written)))
	}
	return now.Before(expiry.Add(-margin))
}

func (s *Shared) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.o.Timeout)
}

// Token implements oauth2.TokenSource: the shared token if it is fresh,
// else a refresh (this instance's, if it wins the lease).
func (s *Shared) Token() (*oauth2.Token, error) {
	now := s.o.Now()
	if !s.o.Health.up(now) {
		return s.fromHexagon()
	}
	// Waiting is measured in real time, whatever clock the lease uses.
	giveUp := time.Now().Add(s.o.Wait)
	for {
		now = s.o.Now()
		ctx, cancel := s.call()
		ent, etag, err := s.store.Get(ctx, s.key)
		cancel()
		switch {
		case errors.Is(err, tokenstore.ErrNotFound):
			return s.create()
		case errors.Is(err, tokenstore.ErrUnreadable):
			ent = tokenstore.Entity{} // overwrite it
		case err != nil:
			return s.fallback(err)
		}
		s.o.Health.ok()
		rec, ok := s.open(ent)
		servable := ok && rec.usable(now) && rec.Token != s.refusedValue()
		if servable && now.Before(time.UnixMilli(rec.RefreshAt)) {
			return rec.token(), nil // fresh
		}
		if s.leased(ent, now) {
			// Another instance is refreshing.
			if servable {
				return rec.token(), nil // keep serving the current token
			}
			if time.Now().After(giveUp) {
				return s.fromHexagon()
			}
			time.Sleep(min(50*time.Millisecond, s.o.Wait/20))
			continue
		}
		// Due, and nobody is refreshing: take the lease. The current token
		// stays in the row, re-sealed for this write, for the others to
		// serve meanwhile; a row we cannot open is overwritten.
		lease := tokenstore.Entity{LeaseUntil: now.Add(s.o.LeaseTTL), LeaseOwner: s.o.Owner}
		var prev *sealed
		if ok {
			prev = &rec
			lease.Data = s.seal(rec, now)
		}
		ctx, cancel = s.call()
		etag, err = s.store.Update(ctx, s.key, lease, etag)
		cancel()
		switch {
		case err == nil:
			if prev != nil {
				s.saw(now) // a sealed token was written, not only a lease
			}
			return s.fetch(prev, etag)
		case errors.Is(err, tokenstore.ErrConflict), errors.Is(err, tokenstore.ErrNotFound):
			if time.Now().After(giveUp) {
				return s.fromHexagon()
			}
			continue // lost the race: read the winner's state
		default:
			return s.fallback(err)
		}
	}
}

// leased reports whether another instance holds a believable lease on ent.
func (s *Shared) leased(ent tokenstore.Entity, now time.Time) bool {
	return ent.LeaseOwner != "" && ent.LeaseOwner != s.o.Owner &&
		now.Before(ent.LeaseUntil) && !ent.LeaseUntil.After(now.Add(s.o.LeaseTTL+LeaseSkew))
}

// create serves a credential that has no row: Hexagon first, and a row
// only for a token it issued.
func (s *Shared) create() (*oauth2.Token, error) {
	t, err := s.fromHexagon()
	if err != nil {
		return nil, err // a refused credential leaves no row
	}
	now := s.o.Now()
	refreshAt := refreshPoint(now, t.Expiry.Sub(now))
	ctx, cancel := s.call()
	defer cancel()
	_, err = s.store.Create(ctx, s.key, tokenstore.Entity{Data: s.seal(record(t, refreshAt), now)})
	switch {
	case err == nil:
		s.saw(now)
		s.o.Health.ok()
	case errors.Is(err, tokenstore.ErrConflict):
		// Another instance created it first: serve its token, so that all
		// instances hand out the same one (with Hexagon's renewal rule it
		// is the same value anyway).
		ent, _, gerr := s.store.Get(ctx, s.key)
		if gerr == nil {
			if rec, ok := s.open(ent); ok && rec.usable(now) && rec.Token != s.refusedValue() {
				return rec.token(), nil
			}
		}
	default:
		s.o.Health.fail(now, err)
	}
	return t.WithExtra(map[string]any{refreshAtKey: refreshAt}), nil
}

// refreshPoint is when to ask for the next token after one issued now
// with left to live: just after half its lifetime, and never sooner than
// MinRefresh, so that a short lifetime makes no storm, on one instance or
// across them.
func refreshPoint(now time.Time, left time.Duration) time.Time {
	return now.Add(max(time.Duration(float64(left)*refreshFraction), MinRefresh))
}

// fromHexagon asks Hexagon; once it has answered, no value is refused any
// longer (it may hand out the same token again: then it is live).
func (s *Shared) fromHexagon() (*oauth2.Token, error) {
	t, err := s.base.Token()
	if err == nil {
		s.mu.Lock()
		s.refused = ""
		s.mu.Unlock()
	}
	return t, err
}

func (s *Shared) refusedValue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// fetch gets a token from Hexagon under the lease at etag and stores it.
// On failure it releases the lease, keeping the previous token.
func (s *Shared) fetch(prev *sealed, etag tokenstore.ETag) (*oauth2.Token, error) {
	t, err := s.fromHexagon()
	ctx, cancel := s.call()
	defer cancel()
	now := s.o.Now()
	if err != nil {
		var release tokenstore.Entity
		if prev != nil {
			release.Data = s.seal(*prev, now)
		}
		if _, uerr := s.store.Update(ctx, s.key, release, etag); uerr != nil {
			s.o.Log.Debug("releasing the refresh lease failed", "err", uerr)
		} else if prev != nil {
			s.saw(now) // the previous token, sealed again
		}
		return nil, err
	}
	refreshAt := refreshPoint(now, t.Expiry.Sub(now))
	if _, err := s.store.Update(ctx, s.key, tokenstore.Entity{Data: s.seal(record(t, refreshAt), now)}, etag); err != nil {
		if !errors.Is(err, tokenstore.ErrConflict) && !errors.Is(err, tokenstore.ErrNotFound) {
			s.o.Health.fail(now, err)
		}
	} else {
		s.saw(now)
	}
	return t.WithExtra(map[string]any{refreshAtKey: refreshAt}), nil
}

func (s *Shared) fallback(err error) (*oauth2.Token, error) {
	s.o.Health.fail(s.o.Now(), err)
	return s.fromHexagon()
}

// Invalidate records that Hexagon refused t: until Hexagon has been asked
// again, Token does not take t from the row. The row itself is replaced
// by the next refresh, under the lease and only if it still holds t
// (compare and swap by ETag), so other instances keep serving meanwhile.
// It does no I/O.
func (s *Shared) Invalidate(t *oauth2.Token) {
	if t == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused = t.AccessToken
}
