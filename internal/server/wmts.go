package server

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/capabilities"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/publicurl"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/wmts"
)

// credentialPath splits a credential route's escaped path into the
// credential and the rest: "/wmts/{id}/{secret}/rest" and the original
// HexProx's "/v1/wmts/{anything}/{id}/{secret}/rest".
func credentialPath(escaped, service string) (credential.Credential, string, error) {
	after, ok := strings.CutPrefix(escaped, "/"+service+"/")
	if !ok {
		after, ok = strings.CutPrefix(escaped, "/v1/"+service+"/")
		if !ok {
			return credential.Credential{}, "", failure.New(failure.NotFound, "no such route", nil)
		}
		if _, after, ok = strings.Cut(after, "/"); !ok {
			return credential.Credential{}, "", failure.Invalidf(failure.CodeInvalidParameter, "", "%v", credential.ErrPath)
		}
	}
	cred, rest, err := credential.FromPath(after)
	if err != nil {
		return cred, "", &failure.Error{Kind: failure.Invalid, Message: "the credential in the URL is malformed: " + err.Error() +
			"; encode the client id and secret with base64 (URL-safe or standard)"}
	}
	return cred, rest, nil
}

// credentialRoute does what every credential route does first: read the
// credential, apply the origin policy, answer preflights. done reports
// that the request has been answered.
func (s *Server) credentialRoute(c echo.Context, service string) (cred credential.Credential, rest string, browser, done bool, err error) {
	r := c.Request()
	rec := recordOf(c)
	rec.route = service
	cred, rest, err = credentialPath(r.URL.EscapedPath(), service)
	if err != nil {
		return cred, "", false, true, err
	}
	rec.cred = cred.Fingerprint()
	rec.path = rest
	if browser, err = s.applyOriginPolicy(c); err != nil {
		return cred, "", false, true, err
	}
	if r.Method == http.MethodOptions {
		return cred, rest, browser, true, s.preflight(c)
	}
	return cred, rest, browser, false, nil
}

// wmts answers every /wmts/... request.
func (s *Server) wmts(c echo.Context) error {
	cred, rest, browser, done, err := s.credentialRoute(c, "wmts")
	if done {
		return err
	}
	req, err := wmts.Parse(rest, c.Request().URL.RawQuery)
	if err != nil {
		return err
	}
	tokens := s.tokens.Source(cred)
	if req.Kind == wmts.Capabilities {
		return s.capabilities(c, cred, tokens, capsSpec{
			service:     "wmts",
			cacheKey:    "wmts:" + cred.Key(),
			roots:       []string{"Capabilities"},
			match:       s.wmtsMatch,
			contentType: "application/xml; charset=utf-8",
			url:         func(tok string) string { return wmts.CapabilitiesURL(s.cfg.HexagonURL, tok) },
		})
	}
	return s.deliver(c, browser, &hexagon.Call{Tokens: tokens, URL: func(tok string) string { return req.TileURL(s.cfg.HexagonURL, tok) }})
}

// deliver answers a tile or map request: streamed to allowed browsers (or
// to everyone with TILE_MODE=proxy), else a redirect.
func (s *Server) deliver(c echo.Context, browser bool, call *hexagon.Call) error {
	if s.cfg.TileMode == config.ModeProxy || s.cfg.TileMode == config.ModeAuto && browser {
		return s.stream(c, call)
	}
	return s.redirect(c, call)
}

// redirect answers with a 302 to Hexagon carrying a current token.
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
func (s *Server) capabilities(c echo.Context, cred credential.Credential, tokens *token.Cached, spec capsSpec) error {
	r := c.Request()
	rec := recordOf(c)
	rec.mode = "capabilities"
	base, ok := publicurl.Base(r, s.cfg.PublicBaseURL)
	if !ok {
		return failure.Invalidf(failure.CodeInvalidParameter, "Host", "the Host or X-Forwarded-Host header is not a valid host name")
	}
	call := &hexagon.Call{Tokens: tokens, URL: spec.url}
	doc, hit, err := s.caps.Get(r.Context(), spec.cacheKey, func(ctx context.Context) (*capabilities.Document, error) {
		rec.call = call
		body, err := hexagon.Fetch(ctx, s.fetcher, call, MaxCapabilities)
		if err != nil {
			return nil, err
		}
		var secrets []string
		if tok, _ := tokens.TokenContext(ctx); tok != nil {
			secrets = []string{tok.AccessToken}
		}
		doc, err := capabilities.Rewrite(body, capabilities.Options{Match: spec.match, Roots: spec.roots, Secrets: secrets})
		if err != nil {
			return nil, failure.New(failure.UpstreamFailed, "Hexagon answered with something that is not a "+strings.ToUpper(spec.service)+" capabilities document", err)
		}
		return doc, nil
	})
	if err != nil {
		return err
	}
	rec.cacheHit = hit
	id, secret := cred.PathSegments()
	var b bytes.Buffer
	b.Grow(doc.Size() + 128*doc.Insertions())
	if err := doc.Render(&b, base+"/"+spec.service+"/"+id+"/"+secret); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", spec.contentType)
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(int(s.cfg.CapabilitiesTTL.Seconds())))
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	if s.cfg.PublicBaseURL == "" {
		h.Add("Vary", publicurl.VaryHeaders)
	}
	c.Response().WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = c.Response().Write(b.Bytes())
	return err
}

// applyOriginPolicy refuses browsers from origins that are not allowed and
// adds CORS headers for the ones that are. browser reports an allowed
// cross-origin browser request.
func (s *Server) applyOriginPolicy(c echo.Context) (browser bool, err error) {
	r := c.Request()
	h := c.Response().Header()
	h.Add("Vary", "Origin")
	o := r.Header.Get("Origin")
	if o == "" {
		return false, nil
	}
	if !s.cfg.AllowedOrigins.Allowed(o) && !s.sameOrigin(r, o) {
		return false, &failure.Error{Kind: failure.Forbidden, Message: "this proxy does not serve pages from your site's origin; ask its operator to add it to ALLOWED_ORIGINS"}
	}
	if s.cfg.CORSHeaders {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Expose-Headers", "ETag, Retry-After")
	}
	return true, nil
}

func (s *Server) sameOrigin(r *http.Request, o string) bool {
	base, ok := publicurl.Base(r, s.cfg.PublicBaseURL)
	return ok && strings.EqualFold(originOf(base), o)
}

// preflight answers OPTIONS.
func (s *Server) preflight(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Allow", "GET, HEAD, OPTIONS")
	if s.cfg.CORSHeaders && c.Request().Header.Get("Origin") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		if rh := c.Request().Header.Get("Access-Control-Request-Headers"); rh != "" && headerList(rh) {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", "7200")
	}
	return c.NoContent(http.StatusNoContent)
}

// headerList accepts a comma-separated list of header names.
func headerList(v string) bool {
	if len(v) > 512 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == ',' || c == ' ') {
			return false
		}
	}
	return true
}
