package token

import (
	"context"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
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
