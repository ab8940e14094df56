// Package failure defines the kinds of failure HexProx reports and the
// HTTP status each maps to. Handlers return *Error values; the server's one
// error handler turns them into a response in the client's format.
package failure

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Kind classifies a failure. The zero value is Internal.
type Kind int

const (
	Internal        Kind = iota // a bug or an unexpected condition: 500
	Invalid                     // bad parameters or path: 400
	NotFound                    // no such resource: 404
	Method                      // method not allowed: 405
	Forbidden                   // origin not allowed, or credential refused: 403
	RateLimited                 // upstream 429, passed through with Retry-After
	UpstreamStatus              // upstream answered a client error (e.g. outside the grid): its status
	UpstreamFailed              // upstream unreachable, 5xx or garbage: 502
	UpstreamTimeout             // upstream too slow: 504
)

var statuses = map[Kind]int{
	Internal:        http.StatusInternalServerError,
	Invalid:         http.StatusBadRequest,
	NotFound:        http.StatusNotFound,
	Method:          http.StatusMethodNotAllowed,
	Forbidden:       http.StatusForbidden,
	RateLimited:     http.StatusTooManyRequests,
	UpstreamStatus:  http.StatusBadGateway, // overridden by Error.Status
	UpstreamFailed:  http.StatusBadGateway,
	UpstreamTimeout: http.StatusGatewayTimeout,
}

// OGC exception codes (OWS 1.1 and WMTS 1.0).
const (
	CodeMissingParameter   = "MissingParameterValue"
	CodeInvalidParameter   = "InvalidParameterValue"
	CodeOperationNotSupp   = "OperationNotSupported"
	CodeTileOutOfRange     = "TileOutOfRange"
	CodeNoApplicableCode   = "NoApplicableCode"
	CodeInvalidFormat      = "InvalidFormat"
	CodeVersionNegotiation = "VersionNegotiationFailed"
)

// Error is a failure with everything the error handler needs to answer.
//
// Message is shown to the client: it must never contain a secret, a token
// or an upstream body.
type Error struct {
	Kind       Kind
	Code       string // OGC exceptionCode; NoApplicableCode when empty
	Locator    string // the offending parameter, if any
	Message    string
	Status     int    // for UpstreamStatus: the upstream's 4xx status
	RetryAfter string // for RateLimited: the upstream's Retry-After
	// Relayed, for RateLimited, are more of the upstream's rate-limit
	// headers to pass on (a provider's X-Ratelimit-*); nil: none.
	Relayed map[string]string
	Err     error // the cause, for logs only (never shown to clients)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// RetryAfter is a wait as a Retry-After value: whole seconds, rounded up
// (a client told to come back early is only refused again), at least 1.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// HTTPStatus returns the status to answer with.
func (e *Error) HTTPStatus() int {
	if e.Kind == UpstreamStatus && e.Status >= 400 && e.Status < 500 {
		return e.Status
	}
	return statuses[e.Kind]
}

// ExceptionCode returns the OGC exception code, defaulting by kind.
func (e *Error) ExceptionCode() string {
	if e.Code != "" {
		return e.Code
	}
	switch e.Kind {
	case Invalid:
		return CodeInvalidParameter
	case Method:
		return CodeOperationNotSupp
	}
	return CodeNoApplicableCode
}

// Invalidf returns an Invalid error for parameter locator.
func Invalidf(code, locator, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Code: code, Locator: locator, Message: fmt.Sprintf(format, args...)}
}

// New returns an error of kind with a client-safe message and a cause for
// the logs.
func New(kind Kind, msg string, cause error) *Error {
	return &Error{Kind: kind, Message: msg, Err: cause}
}

// As returns err as an *Error, or an Internal error wrapping it.
func As(err error) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	return &Error{Kind: Internal, Message: "internal error", Err: err}
}
