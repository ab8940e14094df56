package token

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/provider"
)

// Invalidator is implemented by the sources beneath a Cached layer that
// keep tokens of their own (Shared): Invalidate tells them that Hexagon
// refused t, so that they do not hand t out again without asking Hexagon.
// It may be called concurrently with Token.
type Invalidator interface {
	Invalidate(t *oauth2.Token)
}

// VouchTTL is how long a token stays vouched for after Hexagon refused a
// request made with it although the token had just been fetched anew:
// such a refusal is of the resource (a layer or area outside the
// licence), not of the token, and while the token is vouched for,
// Cached.Invalidate neither drops it nor asks for a retry. The price: a
// token revoked within this window is handed out until it ends (or until
// the next refresh).
const VouchTTL = time.Minute

// Cached is the in-memory top layer: it hands out the current token
// without I/O, refreshes it in the background once it is past its
// refresh point (just after half its lifetime, when Hexagon renews
// tokens), and makes concurrent callers of a cold source share one fetch.
// Calls to the source beneath never overlap: the background refresh and
// a fetch by cold callers are one flight. A refusal of the credential is
// remembered for RefusalTTL so that a bad URL does not hammer the token
// endpoint.
//
// A Cached is safe for concurrent use.
type Cached struct {
	base       oauth2.TokenSource
	now        func() time.Time
	refusalTTL time.Duration
	log        *slog.Logger

	fetches singleflight.Group // key "": every call to base

	mu         sync.Mutex
	tok        *oauth2.Token
	fetched    time.Time // when base last gave a token
	refreshAt  time.Time // ask base again from here on, in the background
	staleAt    time.Time // stop handing tok out from here on
	refreshing bool
	refused    error
	refusedTil time.Time

	gen        uint64 // counts tokens dropped by Invalidate
	dropped    string // the value Invalidate dropped last
	vouched    string // a token value whose refusals are the resource's
	vouchedTil time.Time
}

// refreshFraction is the share of a token's remaining lifetime after which
// it is refreshed. Hexagon renews a token only when less than half of its
// lifetime remains, so this must be above one half.
const refreshFraction = 0.55

// maxMargin bounds how long before expiry a token stops being handed out;
// a redirected client uses it within moments.
const maxMargin = 10 * time.Second

// staleMargin is how long before its expiry a token with lifetime left
// stops being handed out: a tenth of it, at most maxMargin.
func staleMargin(lifetime time.Duration) time.Duration { return min(maxMargin, lifetime/10) }

// minRecheck is the shortest wait before asking the layer below again
// for a token another instance is refreshing.
const minRecheck = time.Second

// MinRefresh is the least time between two tokens asked of the layer
// below for one credential, unless Hexagon refused the token in between
// (Invalidate). Lifetimes are honoured however short (see
// ShortLifetime): this is what keeps an absurd one (a second, or none)
// from turning every request into a token request. A token that dies
// before MinRefresh has passed leaves its credential's callers with
// errShortLived until it has.
const MinRefresh = 10 * time.Second

// errShortLived answers callers of a credential whose token died of its
// own lifetime sooner than MinRefresh after it was issued.
var errShortLived = failure.New(failure.UpstreamFailed,
	"Hexagon's token for this credential expired within seconds of being issued; try again shortly",
	errors.New("token lifetime below the minimum refresh interval"))

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

// State is what a Cached knows of its credential without asking anyone.
type State int

const (
	Unknown State = iota // no live token and no remembered refusal: the next caller asks Hexagon
	Live                 // a token is being handed out: Hexagon accepted the credential
	Refused              // Hexagon's refusal is remembered: callers get it without a request
)

// State reports what c knows now, without I/O.
func (c *Cached) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	switch {
	case c.tok != nil && now.Before(c.staleAt):
		return Live
	case c.refused != nil && now.Before(c.refusedTil):
		return Refused
	}
	return Unknown
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

	ch := c.fetches.DoChan("", func() (any, error) { return c.fetch(true) })
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

// refresh asks base for a newer token while the current one is still
// being handed out.
func (c *Cached) refresh() {
	c.fetches.Do("", func() (any, error) { return c.fetch(false) })
	c.mu.Lock()
	c.refreshing = false // also when it joined a flight of cold callers
	c.mu.Unlock()
}

// fetch is the one flight that calls base, for cold callers (cold) or
// the background refresh. Cold callers that arrive during a refresh
// share its result.
func (c *Cached) fetch(cold bool) (any, error) {
	c.mu.Lock()
	if t := c.tok; cold && t != nil && c.now().Before(c.staleAt) {
		c.mu.Unlock()
		return t, nil // a fetch that finished just before this one began
	}
	if cold && c.tok != nil && c.now().Before(c.fetched.Add(MinRefresh)) {
		// The token died of its own short lifetime (a refused one is
		// dropped, tok nil): asking again this soon would make every
		// request a token request.
		c.mu.Unlock()
		return nil, errShortLived
	}
	c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		gen := c.gen
		c.mu.Unlock()
		t, err := c.base.Token()
		c.mu.Lock()
		if err != nil {
			defer c.mu.Unlock()
			if c.noteRefusal(err) {
				c.tok = nil // the credential was revoked: stop handing out its token
				return nil, err
			}
			if !cold && c.tok != nil {
				// Keep the current token; try again after a tenth of what is left.
				backoff := c.staleAt.Sub(c.now()) / 10
				c.refreshAt = c.now().Add(max(backoff, time.Second))
				c.log.Warn("token refresh failed; still serving the current token", "err", err)
			}
			return nil, err
		}
		if t.AccessToken == c.dropped && c.gen != gen && attempt == 0 {
			// Dropped while this fetch ran, which began before: ask again,
			// so that what comes back was asked for after the refusal.
			c.mu.Unlock()
			continue
		}
		defer c.mu.Unlock()
		if c.dropped != "" && c.gen == gen {
			// Asked for after Invalidate dropped it, Hexagon handed out the
			// same token: it is live, so its refusal was the resource's.
			if t.AccessToken == c.dropped {
				c.vouch(t.AccessToken)
			}
			c.dropped = ""
		}
		c.store(t)
		if !c.now().Before(c.staleAt) {
			return nil, errShortLived // dead on arrival: never handed out
		}
		return t, nil
	}
}

// store keeps t and schedules its refresh. Callers hold c.mu.
func (c *Cached) store(t *oauth2.Token) {
	now := c.now()
	left := t.Expiry.Sub(now)
	if t.Expiry.IsZero() {
		left = DefaultLifetime
	}
	c.tok, c.fetched = t, now
	c.refused = nil
	c.refreshAt = refreshPoint(now, left)
	if at, ok := t.Extra(refreshAtKey).(time.Time); ok && at.Before(c.refreshAt) {
		// The shared layer's schedule, so all instances ask together; if it
		// is already due (another instance is refreshing), ask again soon.
		c.refreshAt = at
		if soonest := now.Add(minRecheck); at.Before(soonest) {
			c.refreshAt = soonest
		}
	}
	c.staleAt = now.Add(left - staleMargin(left))
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

// Invalidate tells c that Hexagon refused a request made with t (401 or
// 403), and reports whether a retry with the token TokenContext returns
// next can help. If t is still the current token (by value) it is
// dropped, the source beneath is told (if it is an Invalidator), and the
// next caller fetches anew; if it was replaced already, it is left alone.
// Either way the answer is true, unless t is vouched for (see Vouch,
// VouchTTL), or is a provider's static key (provider.KeyTokenType), which
// nothing fresh can replace: then nothing is dropped and the answer is
// false.
func (c *Cached) Invalidate(t *oauth2.Token) bool {
	if t == nil || t.TokenType == provider.KeyTokenType {
		return false
	}
	c.mu.Lock()
	if t.AccessToken == c.vouched && c.now().Before(c.vouchedTil) {
		c.mu.Unlock()
		return false
	}
	if c.tok == nil || c.tok.AccessToken != t.AccessToken {
		c.mu.Unlock()
		return true // replaced already, or being fetched
	}
	c.tok = nil
	c.gen++
	c.dropped = t.AccessToken
	c.mu.Unlock()
	if inv, ok := c.base.(Invalidator); ok {
		inv.Invalidate(t)
	}
	return true
}

// Vouch tells c that Hexagon refused a request made with t although t
// had just been fetched anew (the retry after Invalidate): the refusal is
// of the resource, so for VouchTTL Invalidate(t) keeps t and answers
// false.
func (c *Cached) Vouch(t *oauth2.Token) {
	if t == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vouch(t.AccessToken)
}

// vouch records a vouched token value. Callers hold c.mu.
func (c *Cached) vouch(value string) {
	c.vouched, c.vouchedTil = value, c.now().Add(VouchTTL)
}
