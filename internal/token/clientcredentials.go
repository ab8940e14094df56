package token

import (
	"context"
	"errors"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
)

// Where ClientCredentials puts the client id and secret (RFC 6749
// §2.3.1).
const (
	// StyleBasic sends them as HTTP Basic authentication, each
	// form-urlencoded first, as the RFC says: the one way every server
	// must support (EagleView's Okta wants it).
	StyleBasic = "basic"
	// StyleBody sends them as client_id and client_secret in the form.
	StyleBody = "body"
)

// ClientCredentials is a generic OAuth2 token endpoint that takes the
// client-credentials grant (RFC 6749 §4.4) in its standard form: a POST of
// grant_type=client_credentials (and scope, if any), the client
// authenticated as Style says. It is the bottom of such a credential's
// stack, as Endpoint is of Hexagon's (whose documented GET form this is
// not): each Token call asks the endpoint once, through
// golang.org/x/oauth2/clientcredentials, answers read up to its cap of
// 1 MB.
//
// The token handed out has AccessToken, TokenType, Expiry (on Now's
// clock, from expires_in: DefaultLifetime when it is missing, at most
// MaxLifetime) and ExpiresIn, and nothing else.
//
// Errors are *failure.Errors (or the context's error when ctx ends): a
// refusal (400 such as invalid_client, 401, 403) is failure.Forbidden
// wrapping ErrRefused; 429 and 5xx are failure.UpstreamFailed; a slow
// endpoint is failure.UpstreamTimeout; a Style other than the two is
// failure.Internal. They never hold the URL, the body (an
// *oauth2.RetrieveError's included), the client secret or a token; an
// OAuth error code is kept only when it is a short plain word.
//
// A ClientCredentials is safe for concurrent use; its fields must not
// change after first use.
type ClientCredentials struct {
	URL    string           // the token URL, e.g. https://apicenter.eagleview.com/oauth2/v1/token
	Style  string           // StyleBasic or StyleBody; "" means StyleBasic
	Scopes []string         // sent as scope, space-separated; none: no scope parameter
	Name   string           // the provider's name in messages: "EagleView"
	Client *http.Client     // must have a Timeout; nil means http.DefaultClient (tests only)
	Now    func() time.Time // the clock a token's Expiry is set on; nil means time.Now
}

// Source returns cred's source (cred.ID the client id, cred.Secret the
// client secret); its requests use ctx, which must outlive any request.
func (c *ClientCredentials) Source(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
	return ccSource{c: c, ctx: ctx, cred: cred}
}

type ccSource struct {
	c    *ClientCredentials
	ctx  context.Context
	cred credential.Credential
}

// errStyle is the cause of a ClientCredentials whose Style is neither.
var errStyle = errors.New("token: client credentials style is neither basic nor body")

func (s ccSource) Token() (*oauth2.Token, error) {
	var style oauth2.AuthStyle
	switch s.c.Style {
	case StyleBasic, "":
		style = oauth2.AuthStyleInHeader
	case StyleBody:
		style = oauth2.AuthStyleInParams
	default:
		return nil, failure.New(failure.Internal, "internal error", errStyle)
	}
	cc := clientcredentials.Config{
		ClientID:     s.cred.ID,
		ClientSecret: s.cred.Secret,
		TokenURL:     s.c.URL,
		Scopes:       s.c.Scopes,
		AuthStyle:    style,
	}
	tok, err := cc.Token(context.WithValue(s.ctx, oauth2.HTTPClient, httpClient(s.c.Client)))
	if err != nil {
		return nil, providerTokenError(s.ctx, err, s.c.Name+"'s token endpoint", s.c.Name+" refused the client id and secret behind this key")
	}
	return handOut(tok, s.c.Now), nil
}
