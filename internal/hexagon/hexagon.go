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

// Tokens is what a credential's token source offers this package.
type Tokens interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
	Invalidate(t *oauth2.Token)
}

// Call describes one logical request to Hexagon: which credential's
// tokens to use and how to build the URL for a token. The transport
// fills in the outcome for logs.
type Call struct {
	Tokens Tokens
	URL    func(token string) string
	Token  *oauth2.Token // the token to use first; nil fetches one

	// Outcome, set by the transport.
	Status  int
	Latency time.Duration
	Retried bool
}

type callKey struct{}

// WithCall attaches c to ctx for Transport.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// Transport sends requests that carry a Call. The request's URL is
// replaced by Call.URL(token); when Hexagon answers 401 or 403 the token
// is invalidated and the request is sent once more with a fresh one.
// Requests without a Call are refused, so nothing but Hexagon URLs built
// from validated input can leave through it.
type Transport struct {
	Base http.RoundTripper // nil means http.DefaultTransport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, _ := req.Context().Value(callKey{}).(*Call)
	if c == nil {
		return nil, errors.New("hexagon: request without a Call")
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	start := time.Now()
	defer func() { c.Latency = time.Since(start) }()
	tok := c.Token
	if tok == nil {
		var err error
		if tok, err = c.Tokens.TokenContext(req.Context()); err != nil {
			return nil, err
		}
	}
	resp, err := send(base, req, c.URL(tok.AccessToken))
	if err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		if resp != nil {
			c.Status = resp.StatusCode
		}
		return resp, err
	}
	// The token was refused: revoked or expired early. Get a fresh one
	// and try once more.
	drain(resp.Body)
	c.Tokens.Invalidate(tok)
	c.Retried = true
	if tok, err = c.Tokens.TokenContext(req.Context()); err != nil {
		return nil, err
	}
	resp, err = send(base, req, c.URL(tok.AccessToken))
	if resp != nil {
		c.Status = resp.StatusCode
	}
	return resp, err
}

func send(base http.RoundTripper, req *http.Request, rawURL string) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("hexagon: bad upstream URL")
	}
	out := req.Clone(req.Context())
	out.URL = u
	out.Host = ""
	return base.RoundTrip(out)
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
	req, err := http.NewRequestWithContext(WithCall(ctx, c), http.MethodGet, "http://hexagon.invalid/", nil)
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
