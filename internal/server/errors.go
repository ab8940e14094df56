package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/ows"
	"github.com/hexprox/hexprox/internal/wms"
)

// handleError is the one exit for failures: it maps an error to a status
// and writes it in the format the route's clients understand.
func (s *Server) handleError(err error, c echo.Context) {
	rec := recordOf(c)
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		rec.out.err = "client went away"
		if !c.Response().Committed {
			c.Response().Status = statusClientClosed // for the log; nothing is sent
		}
		return // nobody to answer
	}
	fe := asFailure(err)
	rec.out.err = fe.Error()
	if c.Response().Committed {
		return
	}
	status := fe.HTTPStatus()
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	if rec.format != formatJSON {
		s.errorCORS(c.Request(), rec.in.principal, h)
	}
	if fe.Kind == failure.RateLimited && fe.RetryAfter != "" {
		h.Set("Retry-After", fe.RetryAfter)
	}
	if fe.Kind == failure.RateLimited {
		for k, v := range fe.Relayed {
			h.Set(k, v)
		}
	}
	if fe.Kind == failure.Method {
		h.Set("Allow", allowedMethods)
	}
	if fe.Kind == failure.Internal {
		s.log.Error("internal error", "err", err)
	}
	r := c.Request()
	switch rec.format {
	case formatWMTS:
		h.Set("Content-Type", ows.ContentType)
		c.Response().WriteHeader(status)
		if r.Method != http.MethodHead {
			ows.WriteException(c.Response(), ows.ExceptionReport, fe.ExceptionCode(), fe.Locator, fe.Message)
		}
	case formatWMS:
		version := wms.QueryExceptionVersion(rec.in.query)
		code := fe.ExceptionCode()
		if code == failure.CodeNoApplicableCode {
			code = "" // WMS has no such code; no code means a generic error
		}
		h.Set("Content-Type", ows.ServiceExceptionContentType(version))
		c.Response().WriteHeader(status)
		if r.Method != http.MethodHead {
			ows.WriteException(c.Response(), ows.ServiceException(version), code, fe.Locator, fe.Message)
		}
	default:
		c.JSON(status, map[string]string{"error": fe.Message})
	}
}

// statusClientClosed is logged for requests whose client left before the
// answer (nginx's 499); it is never sent.
const statusClientClosed = 499

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

// errFormat is the error document a route's clients understand. The
// credentials step sets it on the record; other routes answer JSON.
type errFormat int

const (
	formatJSON errFormat = iota
	formatWMTS           // OWS 1.1 ExceptionReport
	formatWMS            // WMS ServiceExceptionReport of the request's version
)
