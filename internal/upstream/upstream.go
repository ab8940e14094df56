// Package upstream talks to an imagery upstream on behalf of one
// credential's token source: Hexagon's data services (WMTS, WMS), or
// the hosts of the provider profile a key names. A Call sends a request
// with the current token (Hexagon's in the access_token parameter, a
// provider's where its profile places it), retries once with a fresh
// token when the upstream refuses one, and turns upstream failures into
// failure.Errors that name the upstream.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/provider"
)

// HexagonTokenPath is Hexagon's token endpoint below its base URL.
const HexagonTokenPath = "/streaming/oauth/token"

// Tokens is what a credential's token source offers this package
// (token.Cached implements it). Implementations must be safe for
// concurrent use.
type Tokens interface {
	// TokenContext returns the current token.
	TokenContext(ctx context.Context) (*oauth2.Token, error)
	// Invalidate says that the upstream refused a request made with t
	// (401 or 403), and reports whether a retry with the token
	// TokenContext returns next can help: false when t is known to be
	// good, so the refusal is of the resource (a layer or area outside
	// the licence).
	Invalidate(t *oauth2.Token) (retry bool)
	// Vouch says that the upstream refused a request made with t although
	// t had just been fetched anew (the retry): the refusal is of the
	// resource, and for a while Invalidate(t) should answer false, so that
	// further refusals cost neither a token request nor a retry.
	Vouch(t *oauth2.Token)
}

// Call is one logical request to an upstream for one credential, and the
// request's state on its way: the token-less upstream URL (the wmts and
// wms packages build it from validated input), the token source, and, as
// they happen, the token used, the URL sent and the outcome. The handler
// and the log line read the same Call; Do fills it.
type Call struct {
	Tokens Tokens
	URL    string // the upstream URL without a token
	// Accept reports whether a response's media type (without
	// parameters, lower case) may be relayed to the client; nil accepts
	// anything.
	Accept func(mediaType string) bool
	// Place, if not nil, puts the token on the request in place of
	// Hexagon's access_token parameter: another provider's placements
	// (package provider), which may change the URL's query or path and
	// add headers. A call with Place is never redirected (Location
	// refuses): a static key in a Location would outlive everything.
	Place func(u *url.URL, h http.Header, tok *oauth2.Token)
	// Name is the upstream's name in messages to clients; "" is Hexagon.
	Name string
	// Relay are response headers passed to the client beside the usual
	// ones (a provider's X-Ratelimit-*).
	Relay []string
	// NotLicensed, if not 0, is the status the upstream answers for a
	// resource the credential may not see, beside 403 (a profile's
	// NotLicensed: Planet's 404): relayed as that status, saying so.
	NotLicensed int
	// Health, if not nil, is told how each Do went, judged by its final
	// answer (hexhealth.DataStatus), or how it failed to get one. A Do
	// that ends without a round trip (no token), or because ctx ended,
	// is not told.
	Health *hexhealth.Recorder

	// Set by Prepare (and again by Do's retry).
	Token  *oauth2.Token // the token in Target
	Target *url.URL      // URL with the token: what is sent
	placed http.Header   // the headers Place added

	// Outcome, set by Do.
	Status  int
	Latency time.Duration
	Retried bool
}

// WithToken returns the upstream URL u with an access token: the one
// place a token enters a URL. Hexagon takes it as the access_token query
// parameter, after whatever query u has (its REST URLs keep their path in
// the query: "wmts?/1.0.0/...").
func WithToken(u, token string) string {
	sep := "&"
	if !strings.Contains(u, "?") {
		sep = "?"
	}
	return u + sep + "access_token=" + url.QueryEscape(token)
}

// Location returns the call's URL with a current token, for a redirect.
// It does not parse the URL: the redirect's hot path need not.
func (c *Call) Location(ctx context.Context) (string, error) {
	if c.Place != nil {
		return "", failure.New(failure.Internal, "internal error", errors.New("upstream: a placed credential is never redirected"))
	}
	tok, err := c.Tokens.TokenContext(ctx)
	if err != nil {
		return "", failure.FromRoundTrip(err, "Hexagon")
	}
	c.Token = tok
	return WithToken(c.URL, tok.AccessToken), nil
}

// Prepare gets a current token for the call and sets Token and Target.
func (c *Call) Prepare(ctx context.Context) error {
	if c.Place != nil {
		tok, err := c.Tokens.TokenContext(ctx)
		if err != nil {
			return failure.FromRoundTrip(err, c.Upstream())
		}
		if c.Target, err = url.Parse(c.URL); err != nil {
			return failure.New(failure.Internal, "internal error", errors.New("upstream: bad upstream URL"))
		}
		c.Token, c.placed = tok, http.Header{}
		c.Place(c.Target, c.placed, tok)
		return nil
	}
	loc, err := c.Location(ctx)
	if err != nil {
		return err
	}
	if c.Target, err = url.Parse(loc); err != nil {
		return failure.New(failure.Internal, "internal error", errors.New("upstream: bad upstream URL"))
	}
	return nil
}

// Do sends the call through rt: a request of method (GET or HEAD) with
// header (nil: none) to the call's URL with a current token. Only the call's URL,
// which wmts and wms build from validated input, leaves through it.
//
// When the upstream answers 401 or 403, Do invalidates the token and, if
// the token source says a retry can help, sends the request once more with a
// fresh token; if that is refused too, it vouches for the fresh token (the
// refusal is the resource's) and returns the refusal. Otherwise the
// refusal is returned as it is: the caller maps it (StatusError).
//
// Errors are failure.Errors, or context.Canceled when ctx ended first; the
// caller closes the response's body.
func (c *Call) Do(ctx context.Context, rt http.RoundTripper, method string, header http.Header) (*http.Response, error) {
	if err := c.Prepare(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := c.send(ctx, rt, method, header)
	if err == nil && refusal(resp.StatusCode) && c.Tokens.Invalidate(c.Token) {
		// Refused: the token was revoked or expired early, or the resource
		// is outside the licence, and the token source cannot tell which.
		// A fresh token tells: try once more.
		Drain(resp.Body)
		c.Retried = true
		if err := c.Prepare(ctx); err != nil {
			c.Latency = time.Since(start)
			return nil, err // the token source records its own calls
		}
		if resp, err = c.send(ctx, rt, method, header); err == nil && refusal(resp.StatusCode) {
			c.Tokens.Vouch(c.Token)
		}
	}
	end := time.Now()
	c.Latency = end.Sub(start)
	if c.Health != nil {
		if o, ok := outcome(resp, err); ok {
			c.Health.Record(end, o)
		}
	}
	return resp, err
}

// outcome judges a round trip for Health; ok is false when there is
// nothing to judge: the caller went away (context.Canceled).
func outcome(resp *http.Response, err error) (o hexhealth.Outcome, ok bool) {
	if err == nil {
		return hexhealth.DataStatus(resp.StatusCode), true
	}
	fe, ok := errors.AsType[*failure.Error](err)
	if !ok {
		return o, false
	}
	o.Failure = hexhealth.Unreachable
	if fe.Kind == failure.UpstreamTimeout {
		o.Failure = hexhealth.Timeout
	}
	return o, true
}

// send makes one round trip to Target and notes its status.
func (c *Call) send(ctx context.Context, rt http.RoundTripper, method string, header http.Header) (*http.Response, error) {
	if header == nil {
		header = http.Header{}
	}
	if len(c.placed) > 0 {
		header = header.Clone()
		for k, v := range c.placed {
			header[k] = v
		}
	}
	req := &http.Request{
		Method:     method,
		URL:        c.Target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       c.Target.Host,
	}
	resp, err := rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		return nil, failure.FromRoundTrip(err, c.Upstream())
	}
	c.Status = resp.StatusCode
	return resp, nil
}

// refusal reports whether an upstream status refuses the token.
func refusal(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// Drain reads a little of a body that is not wanted (a refusal, an error
// answer), and closes it, so that a short one leaves its connection
// reusable.
func Drain(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	body.Close()
}

// Upstream is the call's upstream's name in messages: Name, or Hexagon.
func (c *Call) Upstream() string {
	if c.Name == "" {
		return "Hexagon"
	}
	return c.Name
}

// StatusError maps a non-2xx, non-304 status of the call's upstream to a
// failure, naming the upstream.
// Relayed headers (Retry-After, Relay) that show the call's token in any
// spelling are dropped.
func (c *Call) StatusError(resp *http.Response) *failure.Error {
	fe := statusError(c.Upstream(), c.Name == "", resp)
	if c.NotLicensed != 0 && resp.StatusCode == c.NotLicensed {
		fe = &failure.Error{Kind: failure.UpstreamStatus, Status: resp.StatusCode,
			Message: fmt.Sprintf("%s does not license this to the credential behind this key (HTTP %d): the licence may not cover this layer, area or service", c.Upstream(), resp.StatusCode)}
	}
	if fe.Kind == failure.Forbidden && c.Token != nil && c.Token.TokenType == provider.KeyTokenType {
		// Nothing proved a static key good: it may be the key.
		fe.Message = c.Upstream() + " refused this request: the provider's key behind this key may be revoked or expired, or the licence may not cover this layer, area or service"
	}
	if fe.Kind == failure.RateLimited {
		var cred string
		if c.Token != nil {
			cred = c.Token.AccessToken
		}
		if provider.RevealsAny([]string{fe.RetryAfter}, cred) {
			fe.RetryAfter = ""
		}
		for _, k := range c.Relay {
			if v := resp.Header.Get(k); v != "" && !provider.RevealsAny([]string{v}, cred) {
				if fe.Relayed == nil {
					fe.Relayed = map[string]string{}
				}
				fe.Relayed[http.CanonicalHeaderKey(k)] = v
			}
		}
	}
	return fe
}

func statusError(name string, hexagon bool, resp *http.Response) *failure.Error {
	s := resp.StatusCode
	switch {
	case s == http.StatusTooManyRequests:
		return &failure.Error{Kind: failure.RateLimited, Message: name + "'s rate limit was reached; retry later", RetryAfter: resp.Header.Get("Retry-After")}
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		what := "credential"
		if hexagon {
			what = "token"
		}
		return &failure.Error{Kind: failure.Forbidden, Message: name + " refused this request with a valid " + what + ": the licence may not cover this layer, area or service", Err: fmt.Errorf("upstream status %d", s)}
	case s == http.StatusNotFound:
		return &failure.Error{Kind: failure.UpstreamStatus, Status: s, Message: name + " has no such resource"}
	case s >= 400 && s < 500:
		return &failure.Error{Kind: failure.UpstreamStatus, Status: s, Message: fmt.Sprintf("%s rejected the request (HTTP %d): check the layer, tile matrix and indices", name, s)}
	default:
		return failure.New(failure.UpstreamFailed, fmt.Sprintf("%s answered HTTP %d", name, s), fmt.Errorf("upstream status %d", s))
	}
}

// Fetch GETs a whole document (capabilities) of at most max bytes through
// rt, with header (nil: none).
func Fetch(ctx context.Context, rt http.RoundTripper, c *Call, header http.Header, max int64) ([]byte, error) {
	resp, err := c.Do(ctx, rt, http.MethodGet, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		Drain(resp.Body)
		return nil, c.StatusError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, failure.FromRoundTrip(err, c.Upstream())
	}
	if int64(len(body)) > max {
		return nil, failure.New(failure.UpstreamFailed, fmt.Sprintf("%s's capabilities document is larger than %d bytes", c.Upstream(), max), errors.New("document too large"))
	}
	return body, nil
}

// NewHTTPTransport returns the transport for the upstreams (Hexagon and
// the providers): bounded dial, TLS and response-header waits
// (headerTimeout), enough idle connections for a
// map's worth of concurrent tiles, and a read buffer that takes a typical
// 20-30 KB tile in one or two reads rather than the default 4 KiB's six.
func NewHTTPTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		ReadBufferSize:        64 << 10,
	}
}
