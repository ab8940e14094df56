package token

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	// another instance may take over from one that died mid-refresh.
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

// Down reports whether the store is considered down.
func (h *StoreHealth) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// Shared is the layer between an instance's memory cache and Hexagon: it
// keeps one token per credential in a Store that every instance reads. A
// token is stored sealed (AES-256-GCM under a key derived from the
// credential with HKDF), in a row named by an HMAC of the credential, so a
// reader of the store who lacks the credential learns nothing usable.
//
// At most one instance refreshes a credential's token per refresh window:
// it takes a lease with an ETag-conditional update, fetches, and writes;
// the others keep serving the current token and pick the new one up. A
// store that fails or is slow never fails a request: Shared logs once and
// goes to Hexagon directly until the store is back.
//
// A Shared is used by one Cached layer, which serialises calls.
type Shared struct {
	ctx   context.Context
	base  oauth2.TokenSource
	store tokenstore.Store
	key   string
	aead  cipher.AEAD
	o     SharedOptions
}

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

// RowKey names a credential's row: hex HMAC-SHA256 of the credential under
// hashKey (or a fixed domain-separation string).
func RowKey(cred credential.Credential, hashKey string) string {
	k := hashKey
	if k == "" {
		k = "hexprox token store row key v1"
	}
	m := hmac.New(sha256.New, []byte(k))
	fmt.Fprintf(m, "%d:%s\x00%d:%s", len(cred.ID), cred.ID, len(cred.Secret), cred.Secret)
	return hex.EncodeToString(m.Sum(nil))
}

// sealer derives the credential's AES-256-GCM key with HKDF-SHA256.
func sealer(cred credential.Credential) cipher.AEAD {
	secret := fmt.Sprintf("%d:%s\x00%d:%s", len(cred.ID), cred.ID, len(cred.Secret), cred.Secret)
	key, err := hkdf.Key(sha256.New, []byte(secret), []byte("hexprox token store v1"), "token sealing key", 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// sealed is the plaintext of a stored token.
type sealed struct {
	Token     string `json:"t"`
	Type      string `json:"y,omitempty"`
	Expiry    int64  `json:"e"` // Unix ms
	RefreshAt int64  `json:"r"` // Unix ms
}

func (s *Shared) seal(t *oauth2.Token, refreshAt time.Time) []byte {
	pt, _ := json.Marshal(sealed{Token: t.AccessToken, Type: t.TokenType, Expiry: t.Expiry.UnixMilli(), RefreshAt: refreshAt.UnixMilli()})
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(pt)+s.aead.Overhead())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, pt, []byte(s.key))
}

// open returns the stored token, or ok false for none or an entity it
// cannot open (corrupt, or sealed under another credential).
func (s *Shared) open(data []byte) (rec sealed, ok bool) {
	n := s.aead.NonceSize()
	if len(data) < n+s.aead.Overhead() {
		return sealed{}, false
	}
	pt, err := s.aead.Open(nil, data[:n], data[n:], []byte(s.key))
	if err != nil || json.Unmarshal(pt, &rec) != nil || rec.Token == "" {
		return sealed{}, false
	}
	return rec, true
}

func (r sealed) token() *oauth2.Token {
	t := &oauth2.Token{AccessToken: r.Token, TokenType: r.Type, Expiry: time.UnixMilli(r.Expiry)}
	return t.WithExtra(map[string]any{refreshAtKey: time.UnixMilli(r.RefreshAt)})
}

// usable reports whether a stored token can still be handed out.
func (r sealed) usable(now time.Time) bool {
	return now.Before(time.UnixMilli(r.Expiry).Add(-maxMargin))
}

func (s *Shared) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, s.o.Timeout)
}

// Token implements oauth2.TokenSource: the shared token if it is fresh,
// else a refresh (this instance's, if it wins the lease).
func (s *Shared) Token() (*oauth2.Token, error) {
	now := s.o.Now()
	if !s.o.Health.up(now) {
		return s.base.Token()
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
			ctx, cancel := s.call()
			etag, err = s.store.Create(ctx, s.key, tokenstore.Entity{LeaseUntil: now.Add(s.o.LeaseTTL), LeaseOwner: s.o.Owner})
			cancel()
			if err == nil {
				s.o.Health.ok()
				return s.fetch(nil, etag)
			}
			if errors.Is(err, tokenstore.ErrConflict) {
				continue // another instance created it first: read what it holds
			}
			return s.fallback(err)
		case err != nil:
			return s.fallback(err)
		}
		s.o.Health.ok()
		rec, ok := s.open(ent.Data)
		if ok && rec.usable(now) && now.Before(time.UnixMilli(rec.RefreshAt)) {
			return rec.token(), nil // fresh
		}
		if ent.LeaseOwner != "" && ent.LeaseOwner != s.o.Owner && now.Before(ent.LeaseUntil) {
			// Another instance is refreshing.
			if ok && rec.usable(now) {
				return rec.token(), nil // keep serving the current token
			}
			if time.Now().After(giveUp) {
				return s.base.Token()
			}
			time.Sleep(min(50*time.Millisecond, s.o.Wait/20))
			continue
		}
		// Due, and nobody is refreshing: take the lease.
		lease := tokenstore.Entity{Data: ent.Data, LeaseUntil: now.Add(s.o.LeaseTTL), LeaseOwner: s.o.Owner}
		if !ok {
			lease.Data = nil // corrupt or foreign: overwrite
		}
		ctx, cancel = s.call()
		etag, err = s.store.Update(ctx, s.key, lease, etag)
		cancel()
		switch {
		case err == nil:
			return s.fetch(lease.Data, etag)
		case errors.Is(err, tokenstore.ErrConflict), errors.Is(err, tokenstore.ErrNotFound):
			if time.Now().After(giveUp) {
				return s.base.Token()
			}
			continue // lost the race: read the winner's state
		default:
			return s.fallback(err)
		}
	}
}

// fetch gets a token from Hexagon under the lease at etag and stores it.
// On failure it releases the lease, keeping the previous data.
func (s *Shared) fetch(prev []byte, etag tokenstore.ETag) (*oauth2.Token, error) {
	t, err := s.base.Token()
	ctx, cancel := s.call()
	defer cancel()
	if err != nil {
		if _, uerr := s.store.Update(ctx, s.key, tokenstore.Entity{Data: prev}, etag); uerr != nil {
			s.o.Log.Debug("releasing the refresh lease failed", "err", uerr)
		}
		return nil, err
	}
	now := s.o.Now()
	refreshAt := now.Add(time.Duration(float64(t.Expiry.Sub(now)) * refreshFraction))
	if _, err := s.store.Update(ctx, s.key, tokenstore.Entity{Data: s.seal(t, refreshAt)}, etag); err != nil {
		if !errors.Is(err, tokenstore.ErrConflict) && !errors.Is(err, tokenstore.ErrNotFound) {
			s.o.Health.fail(now, err)
		}
	}
	return t.WithExtra(map[string]any{refreshAtKey: refreshAt}), nil
}

func (s *Shared) fallback(err error) (*oauth2.Token, error) {
	s.o.Health.fail(s.o.Now(), err)
	return s.base.Token()
}

// Invalidate removes t from the store if it is still the stored token, so
// that the next reader fetches a fresh one instead of the refused one.
func (s *Shared) Invalidate(t *oauth2.Token) {
	if !s.o.Health.up(s.o.Now()) {
		return
	}
	ctx, cancel := s.call()
	defer cancel()
	ent, etag, err := s.store.Get(ctx, s.key)
	if err != nil {
		return
	}
	if rec, ok := s.open(ent.Data); ok && rec.Token == t.AccessToken {
		ent.Data = nil
		s.store.Update(ctx, s.key, ent, etag) // a lost race means someone already replaced it
	}
}

// Layered returns a Registry's BaseFunc: each credential's Hexagon
// endpoint source beneath the shared store. All credentials share one
// StoreHealth and one lease owner name.
func Layered(ep *Endpoint, store tokenstore.Store, o SharedOptions) BaseFunc {
	if o.Owner == "" {
		o.Owner = NewOwner()
	}
	if o.Health == nil {
		o.Health = &StoreHealth{Log: o.Log}
	}
	return func(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
		return NewShared(ctx, cred, ep.Source(ctx, cred), store, o)
	}
}
