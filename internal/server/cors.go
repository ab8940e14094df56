package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/publicurl"
)

// originPolicy refuses browsers from origins that are not allowed, adds
// CORS headers for the ones that are, records whether the request is an
// allowed cross-origin browser's, and answers preflights (OPTIONS).
//
// An allowed origin may send credentials (fetch's credentials: 'include',
// which the ArcGIS Maps SDK uses for a server on its trustedServers list):
// the answer names the exact origin, never "*", and allows credentials.
// That gives such a request nothing a plain one lacks, since the proxy
// reads no cookie and no ambient authentication: the credential or key is
// in the path.
func (s *Server) originPolicy(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		h := c.Response().Header()
		h["Vary"] = varyOrigin // shared: appending to a one-element slice copies it
		if o := r.Header.Get("Origin"); o != "" {
			if p := recordOf(c).in.principal; !s.originAllowed(r, p, o) {
				msg := "this proxy does not serve pages from your site's origin; ask its operator to add it to ALLOWED_ORIGINS"
				switch {
				case p.key != nil && p.key.HasOrigins():
					msg = "this key serves pages only from its own origins, and yours is not one of them; ask the proxy's operator to add it to the key (handler keys set --origin)"
				case p.key != nil:
					msg = "this proxy does not serve pages from your site's origin with this key; ask its operator to give the key its origins (handler keys set --origin) or to add yours to ALLOWED_ORIGINS"
				}
				return &failure.Error{Kind: failure.Forbidden, Message: msg}
			}
			s.allowCORS(h, o)
			recordOf(c).in.browser = true
		}
		if r.Method == http.MethodOptions {
			return s.preflight(c)
		}
		return next(c)
	}
}

var varyOrigin = []string{"Origin"}

// originAllowed reports whether a page from origin o may use what p
// serves: the proxy's own pages always; for a key with origins of its
// own, those alone; else ALLOWED_ORIGINS. (A key's origins restrict it:
// one organisation's key does not serve another's portal because both are
// under *.arcgis.com.)
func (s *Server) originAllowed(r *http.Request, p principal, o string) bool {
	switch {
	case s.sameOrigin(r, o):
		return true
	case p.key != nil && p.key.HasOrigins():
		return p.key.AllowsOrigin(o)
	}
	return s.cfg.AllowedOrigins.Allowed(o)
}

// allowCORS adds the CORS headers of an answer to the allowed browser
// origin o, unless the platform adds them (CORS_HEADERS=off).
func (s *Server) allowCORS(h http.Header, o string) {
	if !s.cfg.CORSHeaders {
		return
	}
	h["Access-Control-Allow-Origin"] = []string{o}
	h["Access-Control-Allow-Credentials"] = allowCredentials
	h["Access-Control-Expose-Headers"] = exposeHeaders
}

// Header values of every CORS answer, shared: net/http copies them.
var (
	allowCredentials = []string{"true"}
	exposeHeaders    = []string{"ETag, Retry-After"}
)

// errorCORS lets a browser read an error that came before the origin
// policy ran (a malformed URL, an unknown key, a limit), by the same rule
// as the policy's: for whom the request acts, when that is known, else
// ALLOWED_ORIGINS.
func (s *Server) errorCORS(r *http.Request, p principal, h http.Header) {
	o := r.Header.Get("Origin")
	if o == "" || h.Get("Access-Control-Allow-Origin") != "" || !s.originAllowed(r, p, o) {
		return
	}
	if _, ok := h["Vary"]; !ok {
		h["Vary"] = varyOrigin
	}
	s.allowCORS(h, o)
}

func (s *Server) sameOrigin(r *http.Request, o string) bool {
	base, ok := publicurl.Base(r, s.cfg.PublicBaseURL)
	return ok && strings.EqualFold(originOf(base), o)
}

// originOf returns scheme://host of a base URL.
func originOf(base string) string {
	if i := strings.Index(base, "://"); i >= 0 {
		if j := strings.IndexByte(base[i+3:], '/'); j >= 0 {
			return base[:i+3+j]
		}
	}
	return base
}

// preflight answers OPTIONS.
func (s *Server) preflight(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Allow", allowedMethods)
	if s.cfg.CORSHeaders && c.Request().Header.Get("Origin") != "" {
		h.Set("Access-Control-Allow-Methods", allowedMethods)
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
