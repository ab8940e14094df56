package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// allowedMethods are what every service route answers, as an Allow
// header; OPTIONS is for CORS preflights.
const allowedMethods = "GET, HEAD, OPTIONS"

// routes registers every route. A service route is an Echo group whose
// every path and method reach one chain: the service (its error format and
// methods), the credentials step (whom the request acts for), the origin
// policy (and preflights), then the handler, which receives the resolved
// request in the record.
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.logRequests)
	get := []string{http.MethodGet, http.MethodHead}
	e.Match(get, "/", s.home)
	e.Match(get, "/healthz", s.health)

	serviceRoutes(e.Group("/wmts"), s.wmts, service(formatWMTS), s.credentials("/wmts", s.credentialInPath("wmts")), s.originPolicy)
	serviceRoutes(e.Group("/v1/wmts"), s.wmts, service(formatWMTS), s.credentials("/v1/wmts", s.credentialAfterKey("wmts")), s.originPolicy)
	serviceRoutes(e.Group("/wms"), s.wms, service(formatWMS), s.credentials("/wms", s.credentialInPath("wms")), s.originPolicy)

	// API keys: the record behind the key names the credentials.
	serviceRoutes(e.Group("/v2/wmts"), s.wmts, service(formatWMTS), s.credentials("/v2/wmts", s.keyResolver("/v2/wmts", false)), s.originPolicy)
	serviceRoutes(e.Group("/v2/nokeycache/wmts"), s.wmts, service(formatWMTS), s.credentials("/v2/nokeycache/wmts", s.keyResolver("/v2/wmts", true)), s.originPolicy)
	serviceRoutes(e.Group("/v2/wms"), s.wms, service(formatWMS), s.credentials("/v2/wms", s.keyResolver("/v2/wms", false)), s.originPolicy)
	e.Match(get, "/about/:key", s.about)
}

// serviceRoutes sends every method and path of group g through mw, then
// h. The chain is built here, once: Echo applies a group's or a route's
// own middleware anew on every request, a closure per middleware per
// request on the hot path.
func serviceRoutes(g *echo.Group, h echo.HandlerFunc, mw ...echo.MiddlewareFunc) {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	g.Any("", h)
	g.Any("/*", h)
}

// service starts every service route: it sets the error format its
// clients understand and refuses methods other than GET, HEAD and OPTIONS
// before anything else is read.
func service(format errFormat) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			recordOf(c).format = format
			switch c.Request().Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			return echo.ErrMethodNotAllowed
		}
	}
}
