package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/failure"
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
// It wraps the request's Echo context and is what logRequests passes down
// the chain, so that recordOf is a type assertion rather than a lookup in
// a map that Echo would allocate for every request.
//
// Only the principal's who (a fingerprint) and path (set once the rest of
// the path has been validated) reach the log; the principal's credential
// never does.
type record struct {
	echo.Context

	// Resolved by the credentials step.
	format    errFormat
	query     ows.Query // the query, parsed once
	queryErr  error     // why it could not be
	principal principal
	// tokens are what the request's upstream calls take their token
	// from: cached, for a credential URL; keySets, for an API key.
	tokens  hexagon.Tokens
	cached  *token.Cached  // a credential URL's credential's source
	keySets keyTokens      // an API key's sets
	known   token.State    // what cached knew as the request began
	rest    string         // the escaped path after the credential or key
	browser bool           // an allowed cross-origin browser
	subject *usage.Subject // whom the request is counted under; nil: nobody
	// tile is the call of a tile or map request, kept here rather than
	// allocated apart (a capabilities fetch, which may outlive the
	// request in the cache's loader, has its own).
	tile   hexagon.Call
	wmsMap bool // a WMS GetMap (counted as a map, not "other WMS")

	// A streamed answer's copy to the client, and whether it broke off at
	// Hexagon's end rather than the client's.
	relay       relayWriter
	upstreamCut bool
	// abortedAs, for an answer cut off after its status went, is the
	// status it is counted and logged as (0: the status that went).
	abortedAs int

	// For the log line.
	start                  time.Time
	returned               bool // the chain returned rather than panicked
	route, mode, path, err string
	cacheHit               bool
	call                   *hexagon.Call
}

// Error sends err to the one error handler with the record, not the
// context it wraps (whose own Error would pass itself).
func (r *record) Error(err error) { r.Echo().HTTPErrorHandler(err, r) }

// recordOf is the request's record: below logRequests, which every route
// goes through, c itself. Any other context gets a record nothing else
// sees.
func recordOf(c echo.Context) *record {
	if r, ok := c.(*record); ok {
		return r
	}
	return &record{Context: c}
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

// logRequests starts every request's record and, through finish, ends
// every request: one count and one JSON line each.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rec := &record{Context: c, start: time.Now()}
		defer s.finish(rec)
		if err := next(rec); err != nil {
			rec.Error(err)
		}
		rec.returned = true
		return nil
	}
}

// finish counts the request and writes its line. A panic below becomes a
// 500 in the client's format, its value (without the request's secrets)
// and stack logged. Once part of the answer has gone, a panic can only
// cut the connection, so that the client sees the answer is short: it
// goes on up to net/http as http.ErrAbortHandler (a response cut off on
// purpose, which net/http ends quietly), and the line says aborted; see
// countAborted for how it is counted.
func (s *Server) finish(rec *record) {
	if !rec.returned {
		if p := recover(); !s.answeredPanic(rec, p) {
			rec.err = "response aborted"
			s.countAborted(rec, p)
			s.logLine(rec)
			if p != nil {
				panic(http.ErrAbortHandler)
			}
			return // nil: the goroutine is exiting (runtime.Goexit)
		}
	}
	if rec.Request().Method != http.MethodOptions {
		s.count(rec, rec.Response().Status, rec.Response().Size)
	}
	s.logLine(rec)
}

// countAborted counts an answer cut off after it had started: a stream
// the client left is counted as served, with the bytes relayed until
// then (Hexagon served it all the same); one whose body broke at
// Hexagon's end, or that our own code cut, as a failure. An answer that
// had not started (runtime.Goexit) is not counted.
func (s *Server) countAborted(rec *record, p any) {
	w := rec.Response()
	switch {
	case p == nil || !w.Committed || rec.Request().Method == http.MethodOptions:
	case p == http.ErrAbortHandler && rec.upstreamCut:
		rec.err, rec.abortedAs = "response aborted: Hexagon's answer broke off", http.StatusBadGateway
		s.count(rec, rec.abortedAs, 0)
	case p == http.ErrAbortHandler:
		rec.err = "response aborted: the client left"
		s.count(rec, w.Status, w.Size)
	default:
		rec.abortedAs = http.StatusInternalServerError
		s.count(rec, rec.abortedAs, 0)
	}
}

// answeredPanic answers a recovered panic p with a 500 while nothing of
// the response has gone, and reports whether it did. Any other panic but
// http.ErrAbortHandler is logged either way.
func (s *Server) answeredPanic(rec *record, p any) bool {
	if p == nil || p == http.ErrAbortHandler {
		return false
	}
	err := failure.New(failure.Internal, "internal error", fmt.Errorf("panic: %s\n%s", rec.scrub(fmt.Sprint(p)), debug.Stack()))
	if rec.Response().Committed {
		s.log.Error("internal error", "err", err)
		return false
	}
	rec.Error(err) // logs it too
	return true
}

// scrub removes the secrets the request holds (its tokens, its
// credential, raw and as its URL carries it, and its key) from s, for
// text such as a panic's value, which the log's scrubber would not
// recognise.
func (r *record) scrub(s string) string {
	u := r.Request().URL
	inUse := r.principal.cred
	if r.principal.key != nil {
		inUse = r.keySets.credential()
	}
	secrets := []string{u.RequestURI(), u.EscapedPath(), u.Path, r.principal.cred.ID, r.principal.cred.Secret, inUse.ID, inUse.Secret, r.principal.keyName}
	if r.principal.key == nil && r.principal.cred.ID != "" {
		id, secret := r.principal.cred.PathSegments()
		secrets = append(secrets, id, secret)
	}
	for _, c := range []*hexagon.Call{&r.tile, r.call} {
		if c != nil && c.Token != nil {
			secrets = append(secrets, c.Token.AccessToken)
		}
	}
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "REDACTED")
		}
	}
	return s
}

// logLine writes the request's line, unless LOG_SAMPLE leaves out a
// successful one (errors and refusals are never sampled away).
func (s *Server) logLine(rec *record) {
	r := rec.Request()
	status := rec.Response().Status
	if rec.abortedAs != 0 {
		status = rec.abortedAs // as it is counted, not the 200 that went before the cut
	}
	level := s.logLevel(status)
	if level < slog.LevelWarn && status < http.StatusBadRequest && rec.err == "" && !s.sample.Keep() {
		return
	}
	if s.lines == nil {
		a := make(attrs, 0, 16)
		s.requestFields(&a, rec, status)
		s.log.LogAttrs(r.Context(), level, "request", a...)
		return
	}
	l, ok := s.lines.begin(level)
	if !ok {
		return
	}
	s.requestFields(l, rec, status)
	s.lines.end(l)
}

// requestFields are what a request's log line says.
func (s *Server) requestFields(f fields, rec *record, status int) {
	r := rec.Request()
	route := rec.route
	if route == "" {
		route = rec.Context.Path() // the route pattern Echo matched
	}
	f.str("method", r.Method)
	f.str("route", route)
	f.int("status", int64(status))
	f.ms("latency_ms", time.Since(rec.start))
	f.int("bytes", rec.Response().Size)
	if rec.principal.who != "" {
		if rec.principal.key != nil {
			f.str("key", rec.principal.who)
			f.str("org", redact.String(capped(rec.principal.org)))
		} else {
			f.str("cred", rec.principal.who)
		}
		if rec.path != "" {
			f.str("path", redact.String(capped(rec.path)))
		}
		if r.URL.RawQuery != "" {
			f.str("query", redact.String(capped(r.URL.RawQuery)))
		}
	}
	if rec.mode != "" {
		f.str("mode", rec.mode)
	}
	if rec.mode == "capabilities" {
		f.bool("cache_hit", rec.cacheHit)
	}
	if rec.call != nil && rec.call.Status != 0 {
		f.int("upstream_status", int64(rec.call.Status))
		f.ms("upstream_ms", rec.call.Latency)
		f.bool("retried", rec.call.Retried)
	}
	if rec.err != "" {
		f.str("err", redact.String(capped(rec.err)))
	}
}

func (s *Server) logLevel(status int) slog.Level {
	if status >= http.StatusInternalServerError {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// credKey is the Key of the credential the request's upstream calls use:
// for an API key, the set in use (which a refusal may have changed).
func (r *record) credKey() string {
	if r.principal.key != nil {
		return r.keySets.credential().Key()
	}
	return r.principal.cred.Key()
}
