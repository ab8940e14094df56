package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/capabilities"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/publicurl"
)

// deliver answers a tile or map request: streamed to allowed browsers (or
// to everyone with TILE_MODE=proxy), else a redirect.
func (s *Server) deliver(c echo.Context, call *hexagon.Call) error {
	if s.cfg.TileMode == config.ModeProxy || s.cfg.TileMode == config.ModeAuto && recordOf(c).browser {
		return s.stream(c, call)
	}
	return s.redirect(c, call)
}

// redirect answers with a 302 to Hexagon carrying a current token.
func (s *Server) redirect(c echo.Context, call *hexagon.Call) error {
	recordOf(c).mode = "redirect"
	loc, err := call.Location(c.Request().Context())
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h["Cache-Control"] = noStore // canonical keys, set directly: the hot path
	h["Location"] = []string{loc}
	c.Response().WriteHeader(http.StatusFound)
	return nil
}

// stream relays the upstream response body as it arrives. The call rides
// in the request's context to the transport (its token and retry) and to
// the ReverseProxy's hooks below (its URL, the response check, errors).
func (s *Server) stream(c echo.Context, call *hexagon.Call) error {
	rec := recordOf(c)
	rec.mode, rec.call = "stream", call
	if err := call.Prepare(c.Request().Context()); err != nil {
		return err
	}
	s.proxy.ServeHTTP(c.Response(), c.Request().WithContext(hexagon.WithCall(c.Request().Context(), call)))
	return call.Err
}

// forwardedRequestHeaders are the only client headers sent to Hexagon.
var forwardedRequestHeaders = []string{"Accept", "Accept-Encoding", "Accept-Language", "If-None-Match", "If-Modified-Since"}

// passedResponseHeaders are the only Hexagon headers passed to clients.
var passedResponseHeaders = []string{"Content-Type", "Content-Length", "Content-Encoding", "Cache-Control", "Etag", "Last-Modified", "Expires", "Retry-After", "Vary", "Age"}

func rewriteUpstream(version string) func(*httputil.ProxyRequest) {
	ua := "HexProx/" + version
	return func(pr *httputil.ProxyRequest) {
		pr.Out.URL = hexagon.CallFrom(pr.In.Context()).Target // prepared by stream, with its token
		pr.Out.Host = ""
		h := make(http.Header, len(forwardedRequestHeaders)+1)
		for _, k := range forwardedRequestHeaders {
			if v := pr.In.Header.Values(k); len(v) > 0 {
				h[k] = v
			}
		}
		h.Set("User-Agent", ua)
		pr.Out.Header = h
	}
}

// checkUpstreamResponse relays only what a browser may safely get under
// the proxy's origin: a 2xx or 304 of a media type the call accepts, with
// whitelisted headers, never sniffed and never run as a document.
func checkUpstreamResponse(resp *http.Response) error {
	switch s := resp.StatusCode; {
	case s >= 400:
		return hexagon.StatusError(resp)
	case s >= 300 && s != http.StatusNotModified:
		return failure.New(failure.UpstreamFailed, fmt.Sprintf("Hexagon answered with a redirect (HTTP %d) where it should have sent the data", s), fmt.Errorf("upstream status %d", s))
	}
	if call := hexagon.CallFrom(resp.Request.Context()); resp.StatusCode != http.StatusNotModified && call.Accept != nil {
		mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
		if mt = strings.ToLower(strings.TrimSpace(mt)); !call.Accept(mt) {
			return failure.New(failure.UpstreamFailed, fmt.Sprintf("Hexagon answered with %q, not the format asked for", capped(mt)), errors.New("unexpected upstream media type"))
		}
	}
	kept := make(http.Header, len(passedResponseHeaders)+2)
	for _, k := range passedResponseHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			kept[k] = v
		}
	}
	kept["X-Content-Type-Options"] = nosniff
	kept["Content-Security-Policy"] = sandboxed
	resp.Header = kept
	return nil
}

// Header values set on every redirect or proxied answer, shared:
// net/http and ReverseProxy copy them value by value, and nothing appends
// to them.
var (
	noStore   = []string{"no-store"}
	nosniff   = []string{"nosniff"}
	sandboxed = []string{"sandbox; default-src 'none'"}
)

// noteProxyError puts an error from ReverseProxy (the transport's, or
// checkUpstreamResponse's) on the call, for stream to return to the one
// error handler.
func noteProxyError(_ http.ResponseWriter, r *http.Request, err error) {
	hexagon.CallFrom(r.Context()).Err = failure.FromRoundTrip(err, "Hexagon")
}

// bufferPool lends ReverseProxy its copy buffers instead of it allocating
// 32 KiB per response.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

// acceptImages accepts any image, and the media types given (lower case).
func acceptImages(also ...string) func(string) bool {
	return func(mt string) bool { return anyImage(mt) || slices.Contains(also, mt) }
}

// anyImage accepts any image: a tile's Accept, without a closure per
// request.
func anyImage(mt string) bool { return strings.HasPrefix(mt, "image/") }

// acceptOnly accepts exactly the media types given (lower case).
func acceptOnly(types ...string) func(string) bool {
	return func(mt string) bool { return slices.Contains(types, mt) }
}

// wmsExceptionTypes are what a WMS answers an error with, which clients
// parse (EXCEPTIONS=XML, the default).
var wmsExceptionTypes = []string{"application/vnd.ogc.se_xml", "application/vnd.ogc.se+xml", "text/xml", "application/xml"}

// capsSpec says how to fetch and rewrite one service's capabilities.
type capsSpec struct {
	service     string // the route's first segment: "wmts" or "wms"
	cacheKey    string // per credential (and version)
	roots       []string
	match       capabilities.Matcher
	contentType string
	url         string // the upstream URL, without a token
}

// capabilities answers with the rewritten document, from the cache when
// it is fresh.
func (s *Server) capabilities(c echo.Context, spec capsSpec) error {
	r := c.Request()
	rec := recordOf(c)
	rec.mode = "capabilities"
	base, ok := publicurl.Base(r, s.cfg.PublicBaseURL)
	if !ok {
		return failure.Invalidf(failure.CodeInvalidParameter, "Host", "the Host or X-Forwarded-Host header is not a valid host name")
	}
	// A cached document is served only while the credential is not known
	// to be refused: asking the memory layer first costs nothing when its
	// token is live, and answers 403 once Hexagon has refused it.
	if _, err := rec.tokens.TokenContext(r.Context()); err != nil {
		return failure.FromRoundTrip(err, "Hexagon")
	}
	call := &hexagon.Call{Tokens: rec.tokens, URL: spec.url}
	doc, hit, err := s.caps.Get(r.Context(), spec.cacheKey, func(ctx context.Context) (*capabilities.Document, error) {
		body, err := hexagon.Fetch(ctx, s.fetcher, call, MaxCapabilities)
		if err != nil {
			return nil, err
		}
		// call.Token is the token the document was fetched with (after any retry).
		doc, err := capabilities.Rewrite(body, capabilities.Options{Match: spec.match, Roots: spec.roots, Secrets: []string{call.Token.AccessToken}})
		if err != nil {
			return nil, failure.New(failure.UpstreamFailed, "Hexagon answered with something that is not a "+strings.ToUpper(spec.service)+" capabilities document", err)
		}
		return doc, nil
	})
	if err != nil {
		return err
	}
	// The load's result came through a channel, so call is safe to read.
	rec.cacheHit, rec.call = hit, call
	body := doc.Bytes(base + rec.principal.ownPath())
	h := c.Response().Header()
	h.Set("Content-Type", spec.contentType)
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(int(s.cfg.CapabilitiesTTL.Seconds())))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if s.cfg.PublicBaseURL == "" {
		h.Add("Vary", publicurl.VaryHeaders)
	}
	c.Response().WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = c.Response().Write(body)
	return err
}
