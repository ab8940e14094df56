package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/publicurl"
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

// allowedMethods are the methods every route answers.
const allowedMethods = "GET, HEAD, OPTIONS"

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
