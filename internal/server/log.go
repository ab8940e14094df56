package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/redact"
)

// record collects what one request's log line says. Handlers fill it;
// it never holds a credential, secret or token (cred is a fingerprint,
// path is what follows the credential).
type record struct {
	route, mode, cred, path, err string
	cacheHit                     bool
	call                         *hexagon.Call
}

const recordKey = "hexprox.record"

func recordOf(c echo.Context) *record {
	if r, ok := c.Get(recordKey).(*record); ok {
		return r
	}
	r := &record{}
	c.Set(recordKey, r)
	return r
}

// logRequests writes one JSON line per request.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		rec := recordOf(c)
		aborted := true
		defer func() {
			if aborted {
				rec.err = "response aborted"
			}
			s.logLine(c, rec, start)
		}()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		aborted = false
		return nil
	}
}

func (s *Server) logLine(c echo.Context, rec *record, start time.Time) {
	r := c.Request()
	route := rec.route
	if route == "" {
		route = c.Path()
	}
	attrs := []any{
		"method", r.Method,
		"route", route,
		"status", c.Response().Status,
		"latency_ms", float64(time.Since(start).Microseconds()) / 1000,
		"bytes", c.Response().Size,
	}
	if rec.cred != "" {
		attrs = append(attrs, "cred", rec.cred, "path", redact.String(rec.path), "query", redact.String(r.URL.RawQuery))
	}
	if rec.mode != "" {
		attrs = append(attrs, "mode", rec.mode)
	}
	if rec.mode == "capabilities" {
		attrs = append(attrs, "cache_hit", rec.cacheHit)
	}
	if rec.call != nil && rec.call.Status != 0 {
		attrs = append(attrs, "upstream_status", rec.call.Status, "upstream_ms", float64(rec.call.Latency.Microseconds())/1000, "retried", rec.call.Retried)
	}
	level := s.logLevel(c.Response().Status)
	if rec.err != "" {
		attrs = append(attrs, "err", redact.String(rec.err))
	}
	s.log.Log(r.Context(), level, "request", attrs...)
}

func (s *Server) logLevel(status int) slog.Level {
	if status >= http.StatusInternalServerError {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
