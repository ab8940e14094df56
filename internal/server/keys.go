package server

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/credstate"
	"github.com/hexprox/hexprox/internal/provider"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/keys"
)

// keyResolver resolves "/v2/{service}/{key}/rest": the key's record names
// the credential sets (Hexagon's, or one provider's), one of which the
// request uses. reload asks
// the store again first (the original's /v2/nokeycache route); the URLs
// the principal writes are always the cached route's, base.
func (s *Server) keyResolver(base string, reload bool) resolver {
	return func(r *http.Request, after string) (principal, string, error) {
		if after == "" {
			return principal{}, "", failure.Invalidf(failure.CodeInvalidParameter, "", "the URL must continue with /{API key}: %s/{key}/…", base)
		}
		key, rest, _ := strings.Cut(after[1:], "/")
		if rest != "" || strings.Count(after, "/") > 1 {
			rest = "/" + rest
		}
		k, err := s.lookupKey(r, key, reload)
		if err != nil {
			return principal{}, "", err
		}
		p := principal{who: k.Fingerprint(), org: k.Org(), prefix: base, keyName: key, key: k}
		if name := k.Provider(); name != "" {
			if p.profile = s.providers[name]; p.profile == nil || !takesAll(p.profile.Profile, k.Sets()) {
				// A record written for another proxy's PROVIDERS_FILE, or
				// edited by hand: never guess how to send its secrets.
				return principal{}, "", failure.New(failure.Internal, "this key's provider is not configured on this proxy as the key needs: tell the proxy's administrator",
					errors.New("a key names a provider this proxy does not serve, or sets its profile does not take"))
			}
		}
		return p, rest, nil
	}
}

// lookupKey finds a key's record and maps the reasons it may not serve
// to answers that never carry the key. A key not in memory may cost a
// store call: it passes the per-address guess limit first, and an
// unknown one counts as a refused guess, so that one client cannot spend
// the store's budget for everyone.
func (s *Server) lookupKey(r *http.Request, key string, reload bool) (*keys.Key, error) {
	if s.keys == nil {
		return nil, &failure.Error{Kind: failure.NotFound, Message: "this proxy has no API keys (KEY_STORE is none)"}
	}
	if !reload {
		if k, ok, err := s.keys.FromMemory(key); ok { // the hot path: one lock, no store
			if errors.Is(err, keys.ErrNotFound) && s.guesses != nil {
				// Unknown, from the listing or memory: a guess all the same,
				// charged to its address, though it cost the store nothing.
				if wait, ok := s.guesses.Take(guesslimit.ClientAddr(r, s.cfg.TrustedHops)); !ok {
					return nil, tooManyGuesses(wait)
				}
			}
			return s.keyAnswer(k, err)
		}
	}
	var addr netip.Addr
	gated := s.guesses != nil && !s.keys.Known(key)
	if gated {
		// Charged as it is asked for, given back unless the key is
		// unknown: keys asked for at once from one address cannot spend
		// the store's budget for everyone.
		addr = guesslimit.ClientAddr(r, s.cfg.TrustedHops)
		if wait, ok := s.guesses.Take(addr); !ok {
			return nil, tooManyGuesses(wait)
		}
	}
	lookup := s.keys.Lookup
	if reload {
		lookup = s.keys.Reload
	}
	k, err := lookup(r.Context(), key)
	if gated && !errors.Is(err, keys.ErrNotFound) && !errors.Is(err, keys.ErrSyntax) && !errors.Is(err, context.Canceled) {
		s.guesses.Refund(addr)
	}
	return s.keyAnswer(k, err)
}

// keyAnswer maps a lookup's outcome to the key or an answer that never
// carries the key.
func (s *Server) keyAnswer(k *keys.Key, err error) (*keys.Key, error) {
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, keys.ErrBusy):
		return nil, &failure.Error{Kind: failure.RateLimited, RetryAfter: "1", Message: "too many unknown API keys are being asked for; try again shortly", Err: errKeyStore}
	case errors.Is(err, keys.ErrSyntax), errors.Is(err, keys.ErrNotFound):
		return nil, &failure.Error{Kind: failure.Forbidden, Message: "this API key is not valid: check the URL, or ask your administrator for a new one", Err: errKeyUnknown}
	case errors.Is(err, keys.ErrInactive):
		return nil, &failure.Error{Kind: failure.Forbidden, Message: err.Error(), Err: errKeyInactive}
	case errors.Is(err, keys.ErrUnavailable):
		return nil, &failure.Error{Kind: failure.UpstreamFailed, Message: "the API key store cannot be reached; try again shortly", Err: errKeyStore}
	case errors.Is(err, context.Canceled):
		return nil, err
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return nil, err
	}
	return nil, failure.New(failure.Internal, "internal error", errors.New("key lookup failed"))
}

// Causes for logs; the key store's own errors may name the key, so they
// are replaced by these.
var (
	errKeyUnknown  = errors.New("unknown key")
	errKeyInactive = errors.New("key revoked, expired or not yet valid")
	errKeyStore    = errors.New("key store unreachable")
)

// keyTokens is a key's token source for one request: the token of the
// key's credential set in use and, when its upstream refuses that set,
// the next one's, the refused set marked on the key so that later requests
// skip it. Failing over thus retries the token, never the request: the
// key's limits and the origin policy see the request once. With every
// set refused it answers the key's "contact …" refusal.
//
// It lives in the request's record and is used by the request's own
// goroutine alone (a capabilities load, which may outlive the request,
// takes its tokens from the entry pinned for it): it takes no lock.
type keyTokens struct {
	creds *credstate.Table
	key   *keys.Key
	set   int              // which of the key's sets is in use
	entry *credstate.Entry // its credential's state; nil until a set is in use
	// gaveUp is the static key this request's refusal gave up (Invalidate),
	// taken back if the next set is refused too (Vouch); -1: none.
	gaveUp int
}

// start puts key k's first set that is not refused in use, or returns the
// key's refusal when every set was refused.
func (t *keyTokens) start(creds *credstate.Table, k *keys.Key) error {
	*t = keyTokens{creds: creds, key: k, gaveUp: -1}
	return t.next()
}

// next puts the key's next set in use, or returns the key's refusal when
// every set was refused (the set in use stays, for Invalidate and Vouch).
func (t *keyTokens) next() error {
	cred, set, err := t.key.Pick()
	if err != nil {
		return err
	}
	t.set, t.entry = set, t.creds.Get(cred)
	return nil
}

// TokenContext implements upstream.Tokens.
func (t *keyTokens) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	for {
		tok, err := t.entry.Tokens.TokenContext(ctx)
		if err == nil {
			t.entry.Accepted() // held among the accepted, which guesses cannot push out
		}
		if !refused(err) {
			return tok, err
		}
		t.key.Refused(t.set)
		if err := t.next(); err != nil {
			return nil, err
		}
	}
}

// Invalidate implements upstream.Tokens for the set in use. A provider's
// static key is its own token: nothing fresh can replace it. When another
// of the key's sets is left, the refusal moves the request to it, and the
// refused set is skipped until the record is next fetched (a dead key
// among two would otherwise fail every other request); with none left,
// the refusal is final (a retry would send the same key again), and the
// set stays in use: it may be the resource that was refused.
func (t *keyTokens) Invalidate(tok *oauth2.Token) bool {
	if tok != nil && tok.TokenType == provider.KeyTokenType {
		return t.giveUpKey()
	}
	return t.entry.Tokens.Invalidate(tok)
}

// giveUpKey marks the static key in use refused and puts the next set in
// use, when another is left (Invalidate); it reports whether it did.
func (t *keyTokens) giveUpKey() bool {
	if !t.key.RefusedUnlessLast(t.set) {
		return false
	}
	t.gaveUp = t.set
	return t.next() == nil
}

// Vouch implements upstream.Tokens for the set in use. When the set a
// static key's refusal moved this request to is refused too, the
// refusal was of the resource (a layer outside the licence), not of the
// key given up: it is taken back, so that one request for what no set
// may see gives up no good set for every user of the key.
func (t *keyTokens) Vouch(tok *oauth2.Token) {
	if t.gaveUp >= 0 { // whatever the next set is: a key, or a login's token
		t.key.Unrefuse(t.gaveUp)
		t.gaveUp = -1
	}
	t.entry.Tokens.Vouch(tok)
}

// takesAll reports whether every set is of a form profile p takes.
func takesAll(p *provider.Profile, sets []credential.Credential) bool {
	for _, c := range sets {
		if !p.Takes(c) {
			return false
		}
	}
	return true
}
