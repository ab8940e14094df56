package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/provider"
)

// Password is a provider's OAuth2 token endpoint that takes the resource
// owner password grant (RFC 6749 §4.3) and hands out refresh tokens
// (§6): Maxar's Keycloak, account.maxar.com/auth/realms/mds/protocol/
// openid-connect/token with client_id=mgp, whose access tokens live two
// hours and whose refresh tokens twelve. It is the bottom of such a
// credential's stack, as Endpoint is of Hexagon's.
//
// Each Token call returns a token fetched for that call: the layers above
// ask only when theirs is near its end or was refused upstream
// (Cached.Invalidate), so handing back an earlier token would be wrong.
// The first call logs in with the username and password; later calls
// redeem the refresh token the last answer carried, and log in again
// when the endpoint refuses the refresh (an expired refresh token or an
// ended session is 400 invalid_grant). A refresh that fails for another
// reason (5xx, a timeout) keeps the refresh token for the next call.
// Requests are POSTed forms made by golang.org/x/oauth2, the client id
// in the form (Keycloak's public client: no secret), answers read up to
// its cap of 1 MB.
//
// The token handed out has AccessToken, TokenType, Expiry (on Now's
// clock, from expires_in: DefaultLifetime when it is missing, at most
// MaxLifetime) and ExpiresIn, and nothing else: the refresh token never
// leaves the source, so the shared layer does not store it and no other
// instance can use it.
//
// Errors are *failure.Errors (or the context's error when ctx ends): a
// refusal (400, 401, 403) is failure.Forbidden wrapping ErrRefused; 429
// and 5xx are failure.UpstreamFailed; a slow endpoint is
// failure.UpstreamTimeout. They never hold the URL, the body (an
// *oauth2.RetrieveError's included), the username, the password or a
// token; an OAuth error code is kept only when it is a short plain word.
//
// A Password's fields must not change after first use. Its sources are
// safe for concurrent use: calls to one source take turns, so that a
// refresh token is redeemed once.
type Password struct {
	URL      string           // the token URL, e.g. https://account.maxar.com/auth/realms/mds/protocol/openid-connect/token
	ClientID string           // the OAuth client the form names: "mgp" for Maxar
	Name     string           // the provider's name in messages: "Maxar"
	Client   *http.Client     // must have a Timeout; nil means http.DefaultClient (tests only)
	Now      func() time.Time // the clock a token's Expiry is set on; nil means time.Now
}

// Source returns cred's source (cred.ID the username, cred.Secret the
// password); its requests use ctx, which must outlive any request.
func (p *Password) Source(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
	return &passwordSource{p: p, ctx: ctx, cred: cred}
}

type passwordSource struct {
	p    *Password
	ctx  context.Context
	cred credential.Credential

	mu      sync.Mutex // held for a whole Token call
	refresh string     // the refresh token of the last answer; "" none
}

func (s *passwordSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conf := &oauth2.Config{ClientID: s.p.ClientID, Endpoint: oauth2.Endpoint{TokenURL: s.p.URL, AuthStyle: oauth2.AuthStyleInParams}}
	ctx := context.WithValue(s.ctx, oauth2.HTTPClient, httpClient(s.p.Client))
	what := s.p.Name + "'s token endpoint"
	if s.refresh != "" {
		tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: s.refresh}).Token()
		if err == nil {
			return s.keep(tok), nil
		}
		if !refusedStatus(err) {
			return nil, providerTokenError(ctx, err, what, "")
		}
		s.refresh = "" // expired, or its session ended: log in again
	}
	tok, err := conf.PasswordCredentialsToken(ctx, s.cred.ID, s.cred.Secret)
	if err != nil {
		return nil, providerTokenError(ctx, err, what, s.p.Name+" refused the username and password behind this key")
	}
	return s.keep(tok), nil
}

// keep remembers tok's refresh token and returns the token to hand out.
// Callers hold s.mu.
func (s *passwordSource) keep(tok *oauth2.Token) *oauth2.Token {
	s.refresh = tok.RefreshToken // x/oauth2 keeps the old one if the answer has none
	return handOut(tok, s.p.Now)
}

// httpClient returns c (nil: http.DefaultClient) made to follow no
// redirect: a provider's password, client secret or login goes to the
// token URL the profile names and nowhere else, and a 307 or 308 would
// send the form again, secrets and all, to whatever host its Location
// names (and a Basic header along to any port of the same host). A
// redirect is the endpoint's answer, and not a token.
func httpClient(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	cp := *c
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// handOut returns what the layers above see of tok, a token x/oauth2
// read: issue's token, with the time left from the Expiry x/oauth2 set on
// the real clock from expires_in (DefaultLifetime when there was none).
func handOut(tok *oauth2.Token, now func() time.Time) *oauth2.Token {
	left := DefaultLifetime
	if !tok.Expiry.IsZero() {
		left = untilExpiry(tok)
	}
	return issue(tok.AccessToken, tok.TokenType, left, orNow(now)())
}

// issue returns a grant's token as the layers above see it: the access
// token, its type and its end, left after now: at most MaxLifetime, none
// left when negative, and ExpiresIn to match. A type the endpoint names
// provider.KeyTokenType is handed out as Bearer.
func issue(access, typ string, left time.Duration, now time.Time) *oauth2.Token {
	left = min(max(left, 0), MaxLifetime)
	if typ == provider.KeyTokenType {
		// The endpoint's word, not the proxy's: a grant's token is never
		// placed, or given up, as a static key.
		typ = "Bearer"
	}
	return &oauth2.Token{
		AccessToken: access,
		TokenType:   typ,
		Expiry:      now.Add(left),
		ExpiresIn:   int64(left / time.Second),
	}
}

// orNow returns now, or time.Now when it is nil.
func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// refusedStatus reports whether err is a token endpoint's refusal (400,
// 401, 403).
func refusedStatus(err error) bool {
	status := retrieveStatus(err)
	return status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
}

// providerTokenError maps what x/oauth2 returned from another provider's
// token endpoint, named what in messages; refusal is the message of a
// refusal of the credential. The result never wraps err: an
// *oauth2.RetrieveError holds the endpoint's body, and x/oauth2's parse
// errors may quote it.
func providerTokenError(ctx context.Context, err error, what, refusal string) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		status, code := re.Response.StatusCode, plainCode(re.ErrorCode)
		switch {
		case refusedStatus(err):
			return &failure.Error{Kind: failure.Forbidden, Message: refusal,
				Err: fmt.Errorf("%w: token %w %s", ErrRefused, httpStatus(status), code)}
		case status == http.StatusTooManyRequests:
			return failure.New(failure.UpstreamFailed, what+" is rate limiting", fmt.Errorf("token %w", httpStatus(status)))
		case status >= 200 && status < 300:
			// An error code in a 200, which x/oauth2 reports as an error.
			return failure.New(failure.UpstreamFailed, what+" answered something that is not a token", fmt.Errorf("%w: error %s with status %d", errNotAToken, code, status))
		}
		return failure.New(failure.UpstreamFailed, what+" is unavailable", fmt.Errorf("token %w %s", httpStatus(status), code))
	}
	if ctx.Err() != nil {
		return failure.FromRoundTrip(ctx.Err(), what)
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return failure.FromRoundTrip(err, what) // which drops the URL
	}
	if strings.HasPrefix(err.Error(), "oauth2: cannot fetch token:") {
		return failure.New(failure.UpstreamFailed, what+" is unreachable", errors.New("token response body unreadable"))
	}
	return failure.New(failure.UpstreamFailed, what+" answered something that is not a token", errNotAToken)
}

// plainCode returns an OAuth error code if it is a short plain word (it
// goes into logs), else "".
func plainCode(code string) string {
	if len(code) > 40 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return ""
	}
	return code
}
