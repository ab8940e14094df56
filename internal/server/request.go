package server

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/credstate"
	"github.com/hexprox/hexprox/internal/ows"
	"github.com/hexprox/hexprox/internal/upstream"
	"github.com/hexprox/hexprox/internal/usage"
)

// record is one request's state, in two parts, each written by the step
// that decides it: in, what the steps before the handler resolved (the
// credentials step, once; the origin policy's browser flag; the about
// page's own key lookup); out, what the handler chose to answer and how
// it went. The log line and the usage count read both; nothing re-derives
// them. It is reached only through recordOf.
//
// It wraps the request's Echo context and is what logRequests passes down
// the chain, so that recordOf is a type assertion rather than a lookup in
// a map that Echo would allocate for every request.
type record struct {
	echo.Context

	start    time.Time
	returned bool      // the chain returned rather than panicked
	format   errFormat // set by the route's service step

	in  resolved
	out outcome

	// relay is a streamed answer's copy to the client.
	relay relayWriter
}

// resolved is whom a request acts for and what it asks, as the
// credentials step found it. Only the principal's who (a fingerprint)
// reaches the log; its credential never does.
type resolved struct {
	principal principal
	rest      string    // the escaped path after the credential or key
	query     ows.Query // the query, parsed once
	queryErr  error     // why it could not be

	// tokens are what the request's upstream calls take their token
	// from: the principal's entry's, for a credential URL; keySets, for
	// an API key.
	tokens  upstream.Tokens
	keySets keyTokens // an API key's sets
	guess   bool      // a credential URL nobody has asked Hexagon about yet

	browser bool           // an allowed cross-origin browser: set by the origin policy
	subject *usage.Subject // whom the request is counted under; nil: nobody
}

// outcome is what the handler chose and what came of it.
type outcome struct {
	service string // "wmts", "wms" or "about": the log's route
	mode    mode
	// kind is what a successful answer is counted as; it means something
	// only when mode is set.
	kind     usage.Kind
	path     string // the validated rest of the path, for the log
	cacheHit bool   // a capabilities document came from the cache
	// call is the upstream call the answer came from; upstream holds a
	// tile's or map's, kept here rather than allocated apart (a
	// capabilities fetch, which may outlive the request in the cache's
	// loader, has its own).
	call     *upstream.Call
	upstream upstream.Call
	err      string // why the request failed, for the log

	// upstreamCut: a streamed body broke off at Hexagon's end rather than
	// the client's. abortedAs, for an answer cut off after its status
	// went, is the status it is counted and logged as (0: the status that
	// went).
	upstreamCut bool
	abortedAs   int
}

// mode is how a request was answered.
type mode uint8

const (
	modeNone         mode = iota // nothing of Hexagon's: an error, a preflight, a page
	modeCapabilities             // a rewritten capabilities document
	modeRedirect                 // a 302 to Hexagon with a token
	modeStream                   // Hexagon's answer relayed through the proxy
	modeAbout                    // a key's about page
)

var modeNames = [...]string{"", "capabilities", "redirect", "stream", "about"}

func (m mode) String() string { return modeNames[m] }

// answer sets how the request is answered and what it counts as.
func (o *outcome) answer(m mode, k usage.Kind) { o.mode, o.kind = m, k }

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

// pinned is the entry of the credential the request's upstream calls use
// now: for an API key, the set in use (which a refusal may have changed
// before, and may change after). A load that must use one credential from
// start to end (a capabilities document, cached under that credential)
// takes its tokens from here rather than from in.tokens.
func (r *record) pinned() *credstate.Entry {
	if r.in.principal.key != nil {
		return r.in.keySets.entry
	}
	return r.in.principal.entry
}
