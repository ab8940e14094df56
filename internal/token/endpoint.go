// Package token obtains and caches Hexagon access tokens.
//
// Sources are layered as oauth2.TokenSources: an Endpoint source at the
// bottom (the client-credentials grant against Hexagon), optionally a
// shared store above it, and a Cached source on top that each request
// reads. NewStack composes them, in one place; the server holds one
// stack per credential (internal/credstate).
package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexhealth"
)

// ErrRefused marks a token request that the endpoint refused because of the
// credential (400/401/403). Errors wrapping it map to 403 at the proxy.
var ErrRefused = errors.New("token endpoint refused the credential")

// Token lifetimes. A response without expires_in (or with 0) is taken to
// live DefaultLifetime; a longer one than MaxLifetime is cut to it, a
// negative one taken as none left, and one below ShortLifetime honoured;
// each of these is logged as a warning.
//
// Hexagon documents 12 hours (the original proxy's notes say "up to a
// day"). DefaultLifetime is shorter so that a wrong guess is cheap: an
// early refresh returns the same token. MaxLifetime is a day: believing a
// token lives longer than it does serves expired tokens, while believing
// it lives shorter costs one extra token request per half-life. A short
// lifetime is honoured, never lengthened, so that no token is handed out
// after it died (in a redirect the client could not recover); what keeps
// an absurd one from turning every request into a token request is
// Cached's MinRefresh between two token requests.
const (
	DefaultLifetime = time.Hour
	ShortLifetime   = time.Minute
	MaxLifetime     = 24 * time.Hour
)

// maxFormBody caps what the GET-form transport reads of x/oauth2's own
// request body (a few short parameters).
const maxFormBody = 64 << 10

// endpointName names the token endpoint in messages shown to clients.
const endpointName = "Hexagon's token endpoint"

// Endpoint is Hexagon's token endpoint. Hexagon documents the
// client-credentials grant as a GET with the credentials in the query
// string; whether it takes the standard POST form is not documented. An
// Endpoint starts with GET and switches to POST for good (per process)
// when the endpoint answers GET with 405 or 501, and back likewise.
//
// Both forms are made and parsed by golang.org/x/oauth2's
// clientcredentials (credentials in the parameters, never Basic
// authentication); for the GET form its request is turned into a GET on
// the way out. Response bodies are read up to x/oauth2's cap of 1 MB.
//
// Errors are *failure.Error values (or the context's error when the
// fetch's context ends): a refusal of the credential (400, 401, 403) is
// failure.Forbidden wrapping ErrRefused; 429 and 5xx are
// failure.UpstreamFailed; a slow endpoint is failure.UpstreamTimeout.
// They never hold the client secret, the request URL or the response
// body; an OAuth error code is kept for the logs only when it is a short
// plain word.
//
// An Endpoint is safe for concurrent use; its fields must not change
// after first use.
type Endpoint struct {
	URL    string           // the token URL, e.g. https://services.hxgncontent.com/streaming/oauth/token
	Client *http.Client     // must have a Timeout; nil means http.DefaultClient (tests only)
	Now    func() time.Time // the clock a token's Expiry is set on; nil means time.Now
	Log    *slog.Logger     // receives a warning when a lifetime is clamped; nil means slog.Default()
	// HashKey keys the credential fingerprints in its log lines
	// (TOKEN_HASH_KEY; see credential.Fingerprint).
	HashKey string
	// Health, if not nil, is told how each token request went (after
	// any switch between GET and POST): a token, a refusal of the
	// credentials, another status, a timeout, no connection, or an answer
	// that is not a token. A request whose context ended is not told.
	Health *hexhealth.Recorder

	usePost atomic.Bool
}

// Source returns the client-credentials source for cred. Its requests use
// ctx, which must outlive any single HTTP request (it is the server's).
//
// Each Token call asks the endpoint (nothing is cached at this layer).
// The token has AccessToken, TokenType, Expiry on the Endpoint's clock and
// ExpiresIn (the lifetime used, in seconds), and no extra fields.
func (e *Endpoint) Source(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
	return &endpointSource{e: e, ctx: ctx, cred: cred}
}

type endpointSource struct {
	e    *Endpoint
	ctx  context.Context
	cred credential.Credential
}

func (s *endpointSource) Token() (*oauth2.Token, error) { return s.e.fetch(s.ctx, s.cred) }

func (e *Endpoint) fetch(ctx context.Context, cred credential.Credential) (*oauth2.Token, error) {
	post := e.usePost.Load()
	tok, status, err := e.fetchWith(ctx, cred, post)
	if status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented {
		tok, status, err = e.fetchWith(ctx, cred, !post)
		if err == nil || status != http.StatusMethodNotAllowed && status != http.StatusNotImplemented {
			e.usePost.Store(!post)
		}
	}
	if e.Health != nil && !errors.Is(err, context.Canceled) {
		e.Health.Record(time.Now(), outcome(status, err))
	}
	return tok, err
}

// outcome judges a token request for Health from its HTTP status (0: none
// came back) and the error fetchWith returned.
func outcome(status int, err error) hexhealth.Outcome {
	o := hexhealth.Outcome{Endpoint: hexhealth.Token, Status: status}
	switch fe, _ := errors.AsType[*failure.Error](err); {
	case err == nil:
	case errors.Is(err, ErrRefused):
		o.Failure = hexhealth.Refused
	case status != 0:
		o.Failure = hexhealth.Status
	case fe != nil && fe.Kind == failure.UpstreamTimeout:
		o.Failure = hexhealth.Timeout
	case errors.Is(err, errNotAToken):
		o.Failure = hexhealth.Invalid
	default:
		o.Failure = hexhealth.Unreachable
	}
	return o
}

// fetchWith makes one token request, in the POST form or in Hexagon's
// documented GET form. status is the HTTP status when one came back.
func (e *Endpoint) fetchWith(ctx context.Context, cred credential.Credential, post bool) (*oauth2.Token, int, error) {
	client := e.Client
	if client == nil {
		client = http.DefaultClient
	}
	if !post {
		client = getFormClient(client)
	}
	cc := clientcredentials.Config{
		ClientID:     cred.ID,
		ClientSecret: cred.Secret,
		TokenURL:     e.URL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return nil, retrieveStatus(err), fetchError(ctx, err)
	}
	lifetime := e.lifetime(tok, cred)
	return &oauth2.Token{
		AccessToken: tok.AccessToken,
		TokenType:   tok.TokenType,
		Expiry:      e.now().Add(lifetime),
		ExpiresIn:   int64(lifetime / time.Second),
	}, http.StatusOK, nil
}

// lifetime returns how long tok lives, from the Expiry x/oauth2 set on
// the real clock from expires_in (an integer number of seconds, or a
// string holding one; x/oauth2 rejects any other value as unparseable).
func (e *Endpoint) lifetime(tok *oauth2.Token, cred credential.Credential) time.Duration {
	if tok.Expiry.IsZero() {
		// expires_in missing, null or 0.
		if tok.Extra("expires_in") != nil {
			e.logClamp(cred, 0, DefaultLifetime)
		}
		return DefaultLifetime
	}
	d := untilExpiry(tok)
	switch {
	case d < 0:
		e.logClamp(cred, d, 0)
		return 0
	case d < ShortLifetime:
		e.logClamp(cred, d, d)
		return d
	case d > MaxLifetime:
		e.logClamp(cred, d, MaxLifetime)
		return MaxLifetime
	}
	return d
}

// untilExpiry is the time left until tok's Expiry, in whole seconds,
// rounded up over the moments since x/oauth2 set it.
func untilExpiry(tok *oauth2.Token) time.Duration {
	d := time.Until(tok.Expiry)
	if r := d % time.Second; r > 0 {
		d += time.Second - r
	}
	return d
}

func (e *Endpoint) logClamp(cred credential.Credential, announced, used time.Duration) {
	log := e.Log
	if log == nil {
		log = slog.Default()
	}
	log.Warn("token lifetime out of range",
		slog.String("cred", cred.Fingerprint(e.HashKey)),
		slog.Int64("expires_in", int64(announced/time.Second)),
		slog.Duration("using", used))
}

func (e *Endpoint) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// retrieveStatus returns the HTTP status of a failed token request, or 0
// when no response came back.
func retrieveStatus(err error) int {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.StatusCode
	}
	return 0
}

// fetchError maps what x/oauth2 returned. The result never wraps it:
// an *oauth2.RetrieveError holds the upstream's body, a *url.Error the
// request URL (for the GET form, the client secret), and a parse error
// may quote the response.
func fetchError(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return statusError(re.Response.StatusCode, re.ErrorCode)
	}
	if ctx.Err() != nil {
		return failure.FromRoundTrip(ctx.Err(), endpointName)
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return failure.FromRoundTrip(err, endpointName)
	}
	// x/oauth2's own errors, by the only thing that tells them apart.
	cause := fmt.Errorf("%w: unparseable", errNotAToken)
	switch msg := err.Error(); {
	case strings.HasPrefix(msg, "oauth2: cannot fetch token:"):
		return failure.New(failure.UpstreamFailed, endpointName+" is unreachable", errors.New("token response body unreadable"))
	case strings.Contains(msg, "missing access_token"):
		cause = fmt.Errorf("%w: without access_token", errNotAToken)
	}
	return failure.New(failure.UpstreamFailed, endpointName+" answered something that is not a token", cause)
}

// errNotAToken is the cause of an answer that is not a token.
var errNotAToken = errors.New("token response")

// statusError maps a non-200 token response. code is the OAuth error code,
// kept only if it is a short plain word (it goes into logs).
func statusError(status int, code string) error {
	code = plainCode(code)
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &failure.Error{
			Kind:    failure.Forbidden,
			Message: "Hexagon refused the client id and secret in this URL",
			Err:     fmt.Errorf("%w: status %d %s", ErrRefused, status, code),
		}
	case status == http.StatusTooManyRequests:
		return &failure.Error{Kind: failure.UpstreamFailed, Message: endpointName + " is rate limiting", Err: fmt.Errorf("token status %d", status)}
	default:
		return failure.New(failure.UpstreamFailed, endpointName+" is unavailable", fmt.Errorf("token status %d %s", status, code))
	}
}

// getFormClient returns a copy of c whose transport sends x/oauth2's
// form-encoded POST as Hexagon's documented GET.
func getFormClient(c *http.Client) *http.Client {
	gc := *c
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	gc.Transport = getForm{next: next}
	return &gc
}

// getForm turns a form-encoded POST into a GET with the same parameters
// appended to the URL's query and no body. Other requests (a redirect
// the client already turned into a GET) pass unchanged.
type getForm struct{ next http.RoundTripper }

func (g getForm) RoundTrip(req *http.Request) (*http.Response, error) {
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if req.Method != http.MethodPost || ct != "application/x-www-form-urlencoded" || req.Body == nil {
		return g.next.RoundTrip(req)
	}
	form, err := io.ReadAll(io.LimitReader(req.Body, maxFormBody+1))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(form) > maxFormBody {
		return nil, errors.New("token request parameters too long")
	}
	out := req.Clone(req.Context())
	u := *req.URL
	if req.Response == nil {
		// The first request. One that follows a 307 or 308 goes to the
		// Location as it is, as Hexagon's GET would: the credentials are
		// not sent on to wherever the endpoint points.
		if u.RawQuery != "" {
			u.RawQuery += "&"
		}
		u.RawQuery += string(form)
	}
	out.URL = &u
	out.Method = http.MethodGet
	out.Body, out.GetBody, out.ContentLength = nil, nil, 0
	out.Header.Del("Content-Type")
	out.Header.Set("Accept", "application/json")
	return g.next.RoundTrip(out)
}
