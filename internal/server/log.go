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
	status := c.Response().Status
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Int64("bytes", c.Response().Size),
	)
	if rec.cred != "" {
		attrs = append(attrs, slog.String("cred", rec.cred), slog.String("path", redact.String(rec.path)), slog.String("query", redact.String(r.URL.RawQuery)))
	}
	if rec.mode != "" {
		attrs = append(attrs, slog.String("mode", rec.mode))
	}
	if rec.mode == "capabilities" {
		attrs = append(attrs, slog.Bool("cache_hit", rec.cacheHit))
	}
	if rec.call != nil && rec.call.Status != 0 {
		attrs = append(attrs, slog.Int("upstream_status", rec.call.Status), slog.Float64("upstream_ms", float64(rec.call.Latency.Microseconds())/1000), slog.Bool("retried", rec.call.Retried))
	}
	if rec.err != "" {
		attrs = append(attrs, slog.String("err", redact.String(rec.err)))
	}
	s.log.LogAttrs(r.Context(), s.logLevel(status), "request", attrs...)
}

func (s *Server) logLevel(status int) slog.Level {
	if status >= http.StatusInternalServerError {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
