package server

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/ows"
	"github.com/hexprox/hexprox/internal/redact"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/usage"
)

// record is one request's state: what the credentials step resolved, for
// the handler, and what the request's log line says. The middleware and
// handlers fill it; it is reached only through recordOf.
//
// Only who (a fingerprint) and path (set once the rest of the path has
// been validated) reach the log; the principal's credential never does.
type record struct {
	// Resolved by the credentials step.
	format    errFormat
	query     ows.Query // the query, parsed once
	queryErr  error     // why it could not be
	principal principal
	tokens    *token.Cached  // the principal's credential's
	known     token.State    // what tokens knew as the request began (credential URLs)
	rest      string         // the escaped path after the credential or key
	browser   bool           // an allowed cross-origin browser
	subject   *usage.Subject // whom the request is counted under; nil: nobody
	wmsMap    bool           // a WMS GetMap (counted as a map, not "other WMS")

	// For the log line.
	route, mode, who, path, err string
	cacheHit                    bool
	call                        *hexagon.Call
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

// maxLogged caps what a log line carries of a path or a query.
const maxLogged = 512

// capped cuts s to maxLogged bytes, saying so.
func capped(s string) string {
	if len(s) <= maxLogged {
		return s
	}
	return s[:maxLogged] + "…(truncated)"
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
		if c.Request().Method != http.MethodOptions {
			s.count(rec, c.Response().Status, c.Response().Size)
		}
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
	if rec.who != "" {
		if rec.principal.key != nil {
			attrs = append(attrs, slog.String("key", rec.who), slog.String("org", rec.principal.org))
		} else {
			attrs = append(attrs, slog.String("cred", rec.who))
		}
		if rec.path != "" {
			attrs = append(attrs, slog.String("path", redact.String(capped(rec.path))))
		}
		if r.URL.RawQuery != "" {
			attrs = append(attrs, slog.String("query", redact.String(capped(r.URL.RawQuery))))
		}
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
		attrs = append(attrs, slog.String("err", redact.String(capped(rec.err))))
	}
	s.log.LogAttrs(r.Context(), s.logLevel(status), "request", attrs...)
}

func (s *Server) logLevel(status int) slog.Level {
	if status >= http.StatusInternalServerError {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
