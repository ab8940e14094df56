package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// methods are what every service route answers; OPTIONS is for CORS
// preflights.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodOptions}

// allowedMethods is methods as an Allow header.
const allowedMethods = "GET, HEAD, OPTIONS"

// routes registers every route. A service route is an Echo group whose
// middleware names the service (its error format and methods), resolves
// whom the request acts for (the credentials step), then applies the
// origin policy and answers preflights; its handler receives the resolved
// request in the record.
func (s *Server) routes(e *echo.Echo) {
	e.Use(s.logRequests, middleware.Recover())
	get := []string{http.MethodGet, http.MethodHead}
	e.Match(get, "/", s.home)
	e.Match(get, "/healthz", s.health)

	e.Group("/wmts", service(formatWMTS), s.credentials("/wmts", credentialInPath("wmts")), s.originPolicy).Match(methods, "/*", s.wmts)
	e.Group("/v1/wmts", service(formatWMTS), s.credentials("/v1/wmts", credentialAfterKey("wmts")), s.originPolicy).Match(methods, "/*", s.wmts)
	e.Group("/wms", service(formatWMS), s.credentials("/wms", credentialInPath("wms")), s.originPolicy).Match(methods, "/*", s.wms)

	// API keys: the record behind the key names the credentials.
	e.Group("/v2/wmts", service(formatWMTS), s.credentials("/v2/wmts", s.keyResolver("/v2/wmts", false)), s.originPolicy).Match(methods, "/*", s.wmts)
	e.Group("/v2/nokeycache/wmts", service(formatWMTS), s.credentials("/v2/nokeycache/wmts", s.keyResolver("/v2/wmts", true)), s.originPolicy).Match(methods, "/*", s.wmts)
	e.Group("/v2/wms", service(formatWMS), s.credentials("/v2/wms", s.keyResolver("/v2/wms", false)), s.originPolicy).Match(methods, "/*", s.wms)
	e.Match([]string{http.MethodGet, http.MethodHead}, "/about/:key", s.about)
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
