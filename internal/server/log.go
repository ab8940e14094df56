package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/redact"
	"github.com/hexprox/hexprox/internal/upstream"
)

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
			rec.out.err = "response aborted"
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
// then (the upstream served it all the same); one whose body broke at
// the upstream's end, or that our own code cut, as a failure. An answer that
// had not started (runtime.Goexit) is not counted.
func (s *Server) countAborted(rec *record, p any) {
	w := rec.Response()
	switch {
	case p == nil || !w.Committed || rec.Request().Method == http.MethodOptions:
	case p == http.ErrAbortHandler && rec.out.upstreamCut:
		upstream := "Hexagon"
		if rec.out.call != nil {
			upstream = rec.out.call.Upstream()
		}
		rec.out.err, rec.out.abortedAs = "response aborted: "+upstream+"'s answer broke off", http.StatusBadGateway
		s.count(rec, rec.out.abortedAs, 0)
	case p == http.ErrAbortHandler:
		rec.out.err = "response aborted: the client left"
		s.count(rec, w.Status, w.Size)
	default:
		rec.out.abortedAs = http.StatusInternalServerError
		s.count(rec, rec.out.abortedAs, 0)
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
// credential, raw and as its URL carries it, its key and every credential
// set behind the key) from s, for text such as a panic's value, which the
// log's scrubber would not recognise.
func (r *record) scrub(s string) string {
	u := r.Request().URL
	p := r.in.principal
	secrets := []string{u.RequestURI(), u.EscapedPath(), u.Path, p.keyName}
	creds := []credential.Credential{p.cred}
	if p.key != nil {
		creds = p.key.Record().Sets
	}
	for _, c := range creds {
		switch {
		case c.Provider != "" && c.Secret != "": // another provider's key, password or client secret
			secrets = append(secrets, c.Secret)
		case c.ID != "":
			id, secret := c.PathSegments()
			secrets = append(secrets, c.ID, c.Secret, id, secret)
		}
	}
	for _, c := range []*upstream.Call{&r.out.upstream, r.out.call} {
		if c != nil && c.Token != nil {
			secrets = append(secrets, c.Token.AccessToken)
		}
	}
	return redact.Values(s, "REDACTED", secrets...)
}

// logLine writes the request's line, unless LOG_SAMPLE leaves out a
// successful one (errors and refusals are never sampled away).
func (s *Server) logLine(rec *record) {
	status := rec.Response().Status
	if rec.out.abortedAs != 0 {
		status = rec.out.abortedAs // as it is counted, not the 200 that went before the cut
	}
	level := s.logLevel(status)
	if level < slog.LevelWarn && status < http.StatusBadRequest && rec.out.err == "" && !s.sample.Keep() {
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
func (s *Server) requestFields(f *line, rec *record, status int) {
	r := rec.Request()
	route := rec.out.service
	if route == "" {
		route = rec.Context.Path() // the route pattern Echo matched
	}
	f.str("method", r.Method)
	f.str("route", route)
	f.int("status", int64(status))
	f.ms("latency_ms", time.Since(rec.start))
	f.int("bytes", rec.Response().Size)
	if rec.in.principal.who != "" {
		if rec.in.principal.key != nil {
			f.str("key", rec.in.principal.who)
			f.str("org", redact.String(capped(rec.in.principal.org)))
		} else {
			f.str("cred", rec.in.principal.who)
		}
		if rec.out.path != "" {
			f.str("path", redact.String(capped(rec.out.path)))
		}
		if r.URL.RawQuery != "" {
			f.str("query", redact.String(capped(r.URL.RawQuery)))
		}
	}
	if rec.out.mode != modeNone {
		f.str("mode", rec.out.mode.String())
	}
	if rec.out.mode == modeCapabilities {
		f.bool("cache_hit", rec.out.cacheHit)
	}
	if rec.out.call != nil && rec.out.call.Status != 0 {
		f.int("upstream_status", int64(rec.out.call.Status))
		f.ms("upstream_ms", rec.out.call.Latency)
		f.bool("retried", rec.out.call.Retried)
	}
	if rec.out.err != "" {
		f.str("err", redact.String(capped(rec.out.err)))
	}
}

func (s *Server) logLevel(status int) slog.Level {
	if status >= http.StatusInternalServerError {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
