// Package hexagon talks to Hexagon's data services (WMTS, WMS) on behalf
// of one credential's token source: it sends requests with the current
// token, retries once with a fresh token when the upstream refuses one,
// and turns upstream failures into failure.Errors.
package hexagon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/failure"
)

// Tokens is what a credential's token source offers this package
// (token.Cached implements it). Implementations must be safe for
// concurrent use.
type Tokens interface {
	// TokenContext returns the current token.
	TokenContext(ctx context.Context) (*oauth2.Token, error)
	// Invalidate says that Hexagon refused a request made with t (401 or
	// 403), and reports whether a retry with the token TokenContext
	// returns next can help: false when t is known to be good, so the
	// refusal is of the resource (a layer or area outside the licence).
	Invalidate(t *oauth2.Token) (retry bool)
	// Vouch says that Hexagon refused a request made with t although t
	// had just been fetched anew (the retry): the refusal is of the
	// resource, and for a while Invalidate(t) should answer false, so that
	// further refusals cost neither a token request nor a retry.
	Vouch(t *oauth2.Token)
}

// Call describes one logical request to Hexagon: which credential's
// tokens to use and how to build the URL for a token. The transport
// fills in the outcome for logs.
type Call struct {
	Tokens Tokens
	URL    func(token string) string
	Token  *oauth2.Token // the token in the request's URL; set by Prepare

	// Outcome, set by the transport.
	Status  int
	Latency time.Duration
	Retried bool
}

// Prepare gets a current token for the call and returns the URL to send.
func (c *Call) Prepare(ctx context.Context) (*url.URL, error) {
	tok, err := c.Tokens.TokenContext(ctx)
	if err != nil {
		return nil, TransportError(err)
	}
	c.Token = tok
	u, err := url.Parse(c.URL(tok.AccessToken))
	if err != nil {
		return nil, failure.New(failure.Internal, "internal error", errors.New("hexagon: bad upstream URL"))
	}
	return u, nil
}

type callKey struct{}

// WithCall attaches c to ctx for Transport.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the Call attached to ctx, or nil.
func CallFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// Transport sends requests that carry a prepared Call. When Hexagon answers
// 401 or 403 it invalidates the call's token and, if the token source says
// a retry can help, sends the request once more, to the URL built for a
// fresh token; if that is refused too, it vouches for the fresh token (the
// refusal is the resource's) and passes the refusal on. Otherwise the
// refusal goes to the caller as it is. Requests without a prepared Call
// are refused, so only URLs built by Call.URL from validated input leave
// through it.
type Transport struct {
	Base http.RoundTripper // nil means http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := CallFrom(req.Context())
	if c == nil || c.Token == nil {
		return nil, errors.New("hexagon: request without a prepared Call")
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	start := time.Now()
	defer func() { c.Latency = time.Since(start) }()
	resp, err := base.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		if resp != nil {
			c.Status = resp.StatusCode
		}
		return resp, err
	}
	// Refused: the token was revoked or expired early, or the resource is
	// outside the licence. Unless the token source knows the token to be
	// good, get a fresh one and try once more.
	if !c.Tokens.Invalidate(c.Token) {
		c.Status = resp.StatusCode
		return resp, nil
	}
	drain(resp.Body)
	c.Retried = true
	u, err := c.Prepare(req.Context())
	if err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.URL, out.Host = u, ""
	resp, err = base.RoundTrip(out)
	if resp != nil {
		c.Status = resp.StatusCode
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			c.Tokens.Vouch(c.Token)
		}
	}
	return resp, err
}

// drain reads a little of a refused body so the connection can be reused.
func drain(body io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	body.Close()
}

// StatusError maps a non-2xx, non-304 upstream status to a failure.
func StatusError(resp *http.Response) *failure.Error {
	s := resp.StatusCode
	switch {
	case s == http.StatusTooManyRequests:
		return &failure.Error{Kind: failure.RateLimited, Message: "Hexagon's rate limit was reached; retry later", RetryAfter: resp.Header.Get("Retry-After")}
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return &failure.Error{Kind: failure.Forbidden, Message: "Hexagon refused a fresh token for this credential; check its licence for this service", Err: fmt.Errorf("upstream status %d after retry", s)}
	case s == http.StatusNotFound:
		return &failure.Error{Kind: failure.UpstreamStatus, Status: s, Message: "Hexagon has no such resource"}
	case s >= 400 && s < 500:
		return &failure.Error{Kind: failure.UpstreamStatus, Status: s, Message: fmt.Sprintf("Hexagon rejected the request (HTTP %d): check the layer, tile matrix and indices", s)}
	default:
		return failure.New(failure.UpstreamFailed, fmt.Sprintf("Hexagon answered HTTP %d", s), fmt.Errorf("upstream status %d", s))
	}
}

// TransportError classifies a failed round trip. The result never carries
// the request URL (it holds the token).
func TransportError(err error) error {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe // from the token source
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.Canceled) {
		return err // the client went away; nothing to answer
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return failure.New(failure.UpstreamTimeout, "Hexagon did not answer in time", err)
	}
	return failure.New(failure.UpstreamFailed, "Hexagon is unreachable", err)
}

// Fetch GETs a whole document (capabilities) of at most max bytes.
func Fetch(ctx context.Context, client *http.Client, c *Call, max int64) ([]byte, error) {
	u, err := c.Prepare(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(WithCall(ctx, c), http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, TransportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		drain(resp.Body)
		return nil, StatusError(resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, TransportError(err)
	}
	if int64(len(body)) > max {
		return nil, failure.New(failure.UpstreamFailed, fmt.Sprintf("Hexagon's capabilities document is larger than %d bytes", max), errors.New("document too large"))
	}
	return body, nil
}

// NewHTTPTransport returns the transport for Hexagon: bounded dial, TLS
// and response-header waits (headerTimeout), and enough idle connections
// for a map's worth of concurrent tiles.
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
	}
}
