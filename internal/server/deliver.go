package server

import (
	"context"
	"net/http"
	"strconv"
	"strings"

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

// redirect answers with a 302 to Hexagon carrying a current token. It does
// not use call.Prepare: the Location is a string, and the hot path need not
// parse it into a URL.
func (s *Server) redirect(c echo.Context, call *hexagon.Call) error {
	recordOf(c).mode = "redirect"
	tok, err := call.Tokens.TokenContext(c.Request().Context())
	if err != nil {
		return hexagon.TransportError(err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Location", call.URL(tok.AccessToken))
	c.Response().WriteHeader(http.StatusFound)
	return nil
}

// stream relays the upstream response body as it arrives.
func (s *Server) stream(c echo.Context, call *hexagon.Call) error {
	rec := recordOf(c)
	rec.mode, rec.call = "stream", call
	u, err := call.Prepare(c.Request().Context())
	if err != nil {
		return err
	}
	pe := &proxyError{}
	ctx := context.WithValue(hexagon.WithCall(c.Request().Context(), call), proxyErrorKey{}, pe)
	ctx = context.WithValue(ctx, upstreamURLKey{}, u)
	s.proxy.ServeHTTP(c.Response(), c.Request().WithContext(ctx))
	return pe.err
}

// capsSpec says how to fetch and rewrite one service's capabilities.
type capsSpec struct {
	service     string // the route's first segment: "wmts" or "wms"
	cacheKey    string // per credential (and version)
	roots       []string
	match       capabilities.Matcher
	contentType string
	url         func(token string) string
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
		return hexagon.TransportError(err)
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
	body := doc.Bytes(base + rec.principal.base)
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
