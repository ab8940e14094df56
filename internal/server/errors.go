package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/ows"
)

// handleError is the one exit for failures: it maps an error to a status
// and writes it in the format the route's clients understand.
func (s *Server) handleError(err error, c echo.Context) {
	rec := recordOf(c)
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		rec.err = "client went away"
		return // nobody to answer
	}
	fe := asFailure(err)
	rec.err = fe.Error()
	if c.Response().Committed {
		return
	}
	status := fe.HTTPStatus()
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	if fe.Kind == failure.RateLimited && fe.RetryAfter != "" {
		h.Set("Retry-After", fe.RetryAfter)
	}
	if fe.Kind == failure.Method {
		h.Set("Allow", "GET, HEAD, OPTIONS")
	}
	if fe.Kind == failure.Internal {
		s.log.Error("internal error", "err", err)
	}
	if isOGCRoute(c.Request().URL.Path) {
		h.Set("Content-Type", ows.ContentType)
		c.Response().WriteHeader(status)
		if c.Request().Method != http.MethodHead {
			ows.WriteExceptionReport(c.Response(), fe.ExceptionCode(), fe.Locator, fe.Message)
		}
		return
	}
	c.JSON(status, map[string]string{"error": fe.Message})
}

// asFailure maps any error to a failure, including Echo's own (no route,
// method not allowed). Unknown errors become "internal error".
func asFailure(err error) *failure.Error {
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &failure.Error{Kind: failure.NotFound, Message: "no such route"}
		case http.StatusMethodNotAllowed:
			return &failure.Error{Kind: failure.Method, Message: "method not allowed; use GET, HEAD or OPTIONS"}
		}
		return &failure.Error{Kind: failure.Invalid, Message: http.StatusText(he.Code), Err: err}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failure.New(failure.UpstreamTimeout, "Hexagon did not answer in time", err)
	}
	return failure.As(err)
}

func isOGCRoute(path string) bool {
	return strings.HasPrefix(path, "/wmts/") || strings.HasPrefix(path, "/v1/wmts/") || path == "/wmts"
}
