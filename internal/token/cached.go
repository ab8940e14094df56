package token

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Invalidator is implemented by sources that can drop a token the upstream
// no longer accepts, so that the next Token call fetches a fresh one.
type Invalidator interface {
	Invalidate(t *oauth2.Token)
}

// Cached is the in-memory top layer: it hands out the current token
// without I/O, refreshes it in the background once it is past its
// refresh point (just after half its lifetime, when Hexagon renews
// tokens), and makes concurrent callers of a cold source share one fetch.
// A refusal of the credential is remembered for RefusalTTL so that a bad
// URL does not hammer the token endpoint.
//
// A Cached is safe for concurrent use.
type Cached struct {
	base       oauth2.TokenSource
	now        func() time.Time
	refusalTTL time.Duration
	log        *slog.Logger

	fetches singleflight.Group

	mu         sync.Mutex
	tok        *oauth2.Token
	refreshAt  time.Time // ask base again from here on, in the background
	staleAt    time.Time // stop handing tok out from here on
	refreshing bool
	refused    error
	refusedTil time.Time
}

// refreshFraction is the share of a token's remaining lifetime after which
// it is refreshed. Hexagon renews a token only when less than half of its
// lifetime remains, so this must be above one half.
const refreshFraction = 0.55

// maxMargin bounds how long before expiry a token stops being handed out;
// a redirected client uses it within moments.
const maxMargin = 10 * time.Second

// minRecheck is the shortest wait before asking the layer below again.
const minRecheck = time.Second

// NewCached returns a Cached over base. now nil means time.Now; log nil
// means slog.Default().
func NewCached(base oauth2.TokenSource, refusalTTL time.Duration, now func() time.Time, log *slog.Logger) *Cached {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Cached{base: base, now: now, refusalTTL: refusalTTL, log: log}
}

// Token implements oauth2.TokenSource.
func (c *Cached) Token() (*oauth2.Token, error) { return c.TokenContext(context.Background()) }

// TokenContext returns a valid token. A cold or expired source fetches
// one; the wait ends early when ctx is done, but the shared fetch goes on
// for the other callers.
func (c *Cached) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	now := c.now()
	if t := c.tok; t != nil && now.Before(c.staleAt) {
		if !now.Before(c.refreshAt) && !c.refreshing {
			c.refreshing = true
			go c.refresh()
		}
		c.mu.Unlock()
		return t, nil
	}
	if c.refused != nil && now.Before(c.refusedTil) {
		err := c.refused
		c.mu.Unlock()
		return nil, err
	}
	c.mu.Unlock()

	ch := c.fetches.DoChan("", c.fetch)
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*oauth2.Token), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetch runs once for all concurrent cold callers.
func (c *Cached) fetch() (any, error) {
	c.mu.Lock()
	if t := c.tok; t != nil && c.now().Before(c.staleAt) {
		c.mu.Unlock()
		return t, nil // a fetch that finished just before this one began
	}
	c.mu.Unlock()
	t, err := c.base.Token()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.noteRefusal(err)
		return nil, err
	}
	c.store(t)
	return t, nil
}

// refresh asks base for a newer token while the current one is still
// being handed out.
func (c *Cached) refresh() {
	t, err := c.base.Token()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err != nil {
		if c.noteRefusal(err) {
			c.tok = nil // the credential was revoked: stop handing out its token
			return
		}
		// Keep the current token; try again after a tenth of what is left.
		backoff := c.staleAt.Sub(c.now()) / 10
		c.refreshAt = c.now().Add(max(backoff, time.Second))
		c.log.Warn("token refresh failed; still serving the current token", "err", err)
		return
	}
	c.store(t)
}

// store keeps t and schedules its refresh. Callers hold c.mu.
func (c *Cached) store(t *oauth2.Token) {
	now := c.now()
	left := t.Expiry.Sub(now)
	if t.Expiry.IsZero() {
		left = DefaultLifetime
	}
	c.tok = t
	c.refused = nil
	c.refreshAt = now.Add(time.Duration(float64(left) * refreshFraction))
	if at, ok := t.Extra(refreshAtKey).(time.Time); ok && at.Before(c.refreshAt) {
		// The shared layer's schedule, so all instances ask together; if it
		// is already due (another instance is refreshing), ask again soon.
		c.refreshAt = at
		if soonest := now.Add(minRecheck); at.Before(soonest) {
			c.refreshAt = soonest
		}
	}
	c.staleAt = now.Add(left - min(maxMargin, left/10))
}

// noteRefusal remembers a refusal of the credential. Callers hold c.mu.
func (c *Cached) noteRefusal(err error) bool {
	if !errors.Is(err, ErrRefused) {
		return false
	}
	c.refused = err
	c.refusedTil = c.now().Add(c.refusalTTL)
	return true
}

// Invalidate drops t if it is still the current token (the upstream
// answered 401/403 to it), so the next caller fetches a fresh one, and
// passes the news down to base.
func (c *Cached) Invalidate(t *oauth2.Token) {
	if t == nil {
		return
	}
	c.mu.Lock()
	if c.tok != nil && c.tok.AccessToken == t.AccessToken {
		c.tok = nil
	}
	c.mu.Unlock()
	if inv, ok := c.base.(Invalidator); ok {
		inv.Invalidate(t)
	}
}
