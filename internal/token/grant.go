package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/provider"
)

// Grant returns the bottom of the stack of cred, a set of profile p: the
// source of p's grant (Login for Vexcel's login, Password for OAuth2's
// password grant, ClientCredentials for its client-credentials grant),
// with client (which must have a Timeout), ctx (which must outlive any
// request) and now, the clock a token's end is set on (nil: time.Now).
// It returns nil when cred is a static key, its own token; a source that
// fails with an internal error when p is nil or has no grant for cred's
// form (its secret is never sent as if it were a key).
//
// health, if not nil, is told how each of the grant's requests went (a
// provider's /healthz entry), as Endpoint.Health is of Hexagon's.
func Grant(ctx context.Context, p *provider.Profile, cred credential.Credential, client *http.Client, now func() time.Time, health *hexhealth.Recorder) oauth2.TokenSource {
	src := grant(ctx, p, cred, client, now)
	if src == nil || src == noGrant || health == nil {
		return src
	}
	return heard{src: src, ctx: ctx, health: health}
}

func grant(ctx context.Context, p *provider.Profile, cred credential.Credential, client *http.Client, now func() time.Time) oauth2.TokenSource {
	if cred.IsKey() {
		return nil
	}
	if p == nil || p.TokenEndpoint == nil || !p.Takes(cred) {
		return noGrant
	}
	host, _ := p.Host(p.TokenEndpoint.Role)
	u := host.Base + p.TokenEndpoint.Path
	switch p.Grant {
	case provider.GrantLogin:
		return (&Login{URL: u, Name: p.Title, Client: client, Now: now}).Source(ctx, cred)
	case provider.GrantPassword:
		return (&Password{URL: u, ClientID: p.ClientID, Name: p.Title, Client: client, Now: now}).Source(ctx, cred)
	case provider.GrantClient:
		style := StyleBasic
		if p.InBody {
			style = StyleBody
		}
		return (&ClientCredentials{URL: u, Style: style, Scopes: p.Scopes, Name: p.Title, Client: client, Now: now}).Source(ctx, cred)
	}
	return noGrant
}

// noGrant fails every Token: a set that is not a key, of a profile with
// no grant for it.
var noGrant = failing{failure.New(failure.Internal, "internal error", errors.New("token: no grant for a provider's login or client"))}

// heard tells health how each Token of src went.
type heard struct {
	src    oauth2.TokenSource
	ctx    context.Context
	health *hexhealth.Recorder
}

func (h heard) Token() (*oauth2.Token, error) {
	tok, err := h.src.Token()
	if !errors.Is(err, context.Canceled) && h.ctx.Err() == nil {
		h.health.Record(time.Now(), outcome(statusOf(err), err))
	}
	return tok, err
}

// httpStatus is the status a provider's token or login endpoint
// answered, in an error's chain (statusOf), for Health.
type httpStatus int

func (s httpStatus) Error() string { return "status " + strconv.Itoa(int(s)) }

// statusOf is the httpStatus in err's chain; 0 when none came back.
func statusOf(err error) int {
	if s, ok := errors.AsType[httpStatus](err); ok {
		return int(s)
	}
	return 0
}

// The helpers below serve every grant: Login, Password and
// ClientCredentials.

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
		return grantStatusError(re.Response.StatusCode, plainCode(re.ErrorCode), what, refusal)
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

// grantStatusError maps a grant's answer of status that is not a token
// (code its OAuth error code, plain or ""), named what in messages;
// refusal is the message of a refusal of the credential (400, 401, 403:
// ErrRefused). A 2xx is an error code in a 200 (which x/oauth2 reports
// as an error) or, from a login, a status it does not answer with.
func grantStatusError(status int, code, what, refusal string) error {
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &failure.Error{Kind: failure.Forbidden, Message: refusal,
			Err: fmt.Errorf("%w: token %w %s", ErrRefused, httpStatus(status), code)}
	case status == http.StatusTooManyRequests:
		return failure.New(failure.UpstreamFailed, what+" is rate limiting", fmt.Errorf("token %w", httpStatus(status)))
	case status >= 200 && status < 300:
		return failure.New(failure.UpstreamFailed, what+" answered something that is not a token", fmt.Errorf("%w: error %s with status %d", errNotAToken, code, status))
	}
	return failure.New(failure.UpstreamFailed, what+" is unavailable", fmt.Errorf("token %w %s", httpStatus(status), code))
}

// plainCode returns an OAuth error code if it is a short plain word (it
// goes into logs), else "".
func plainCode(code string) string {
	if len(code) > 40 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return ""
	}
	return code
}
