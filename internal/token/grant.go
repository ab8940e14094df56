package token

import (
	"context"
	"errors"
	"net/http"
	"strconv"
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
