// Package hexhealth remembers how the last call to an upstream (Hexagon,
// or one provider: a Recorder each) went, so that /healthz can say
// whether it answers while the proxy itself is alive: a monitor alerts on
// it, a restart would not help.
//
// A call is one token request (the token endpoint), or one tile, map or
// capabilities request to the upstream's data services, judged by its
// final answer (after any retry with a fresh token). It failed when it
// answered 5xx or 429, did not answer in time, could not be reached, or,
// for a token request, refused the credentials (400, 401, 403), answered
// any other status, or answered something that is not a token. Any other
// answer of the data services, a 4xx included (a tile outside coverage, a
// layer outside the licence), is the client's request judged, and counts
// as the upstream answering. A call the client (or the server's shutdown)
// abandoned is not recorded.
package hexhealth

import (
	"sync/atomic"
	"time"
)

// Endpoint names which of the upstream's services a call went to.
type Endpoint uint8

const (
	Data  Endpoint = iota // WMTS and WMS: tiles, maps, capabilities
	Token                 // the token endpoint
)

func (e Endpoint) String() string {
	if e == Token {
		return "token"
	}
	return "data"
}

// Failure says how a call failed; None, the zero value, that it did not.
type Failure uint8

const (
	None        Failure = iota
	Status              // the upstream answered a failing status (Outcome.Status)
	Timeout             // no answer in time
	Unreachable         // no connection, or it broke before the answer
	Refused             // the token endpoint refused the credentials (Outcome.Status)
	Invalid             // the token endpoint answered something that is not a token
)

var failureNames = [...]string{None: "", Status: "status", Timeout: "timeout", Unreachable: "unreachable", Refused: "refused", Invalid: "invalid"}

func (f Failure) String() string {
	if int(f) < len(failureNames) {
		return failureNames[f]
	}
	return "unknown"
}

// Outcome is how one call went.
type Outcome struct {
	Endpoint Endpoint
	Failure  Failure
	// Status is the upstream's HTTP status for a Status or Refused failure;
	// it is not kept for a success.
	Status int
}

// DataStatus judges a data service's answer: 5xx and 429 are the
// upstream failing; any other status is the upstream answering.
func DataStatus(status int) Outcome {
	if status >= 500 || status == 429 {
		return Outcome{Endpoint: Data, Failure: Status, Status: status}
	}
	return Outcome{Endpoint: Data}
}

// Recorder remembers the last call's outcome and the last success and
// failure, to the second. Record is made for the hot path: lock-free,
// no allocation, and, while calls keep the same outcome within a second,
// a load without a store, so that concurrent calls do not contend for the
// cache line. A nil *Recorder records nothing. A Recorder is safe for
// concurrent use; its zero value has seen no call.
type Recorder struct {
	// last packs the last call: its Unix second << 24, then its endpoint
	// (4 bits), failure (4 bits) and status (16 bits). 0: no call yet.
	last    atomic.Uint64
	success atomic.Int64 // Unix second of the last success; 0: none
	failure atomic.Int64 // Unix second of the last failure; 0: none
}

// Record notes a call that ended at at.
func (r *Recorder) Record(at time.Time, o Outcome) {
	if r == nil {
		return
	}
	sec := at.Unix()
	status := uint64(uint16(o.Status))
	if o.Failure == None {
		status = 0
	}
	v := uint64(sec)<<24 | uint64(o.Endpoint&0xf)<<20 | uint64(o.Failure&0xf)<<16 | status
	if r.last.Load() != v {
		r.last.Store(v)
	}
	mark := &r.success
	if o.Failure != None {
		mark = &r.failure
	}
	if mark.Load() != sec {
		mark.Store(sec)
	}
}

// State is what a Recorder knows, as /healthz shows it (the JSON names
// are a contract with monitors). A field that is not known is left out:
// before the first call, State is {}.
type State struct {
	LastCall    *time.Time `json:"last_call,omitempty"` // when the last call ended, UTC, to the second
	Endpoint    string     `json:"endpoint,omitempty"`  // "token" or "data"
	OK          *bool      `json:"ok,omitempty"`        // whether it succeeded
	Failure     string     `json:"failure,omitempty"`   // how it failed: status, timeout, unreachable, refused or invalid
	Status      int        `json:"status,omitempty"`    // the upstream's HTTP status, for status and refused
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastFailure *time.Time `json:"last_failure,omitempty"`
}

// State returns what r knows. A nil *Recorder knows nothing.
func (r *Recorder) State() State {
	var s State
	if r == nil {
		return s
	}
	if v := r.last.Load(); v != 0 {
		at := unix(int64(v >> 24))
		f := Failure(v >> 16 & 0xf)
		ok := f == None
		s.LastCall, s.OK = at, &ok
		s.Endpoint = Endpoint(v >> 20 & 0xf).String()
		s.Failure = f.String()
		s.Status = int(v & 0xffff)
	}
	if sec := r.success.Load(); sec != 0 {
		s.LastSuccess = unix(sec)
	}
	if sec := r.failure.Load(); sec != 0 {
		s.LastFailure = unix(sec)
	}
	return s
}

func unix(sec int64) *time.Time {
	t := time.Unix(sec, 0).UTC()
	return &t
}
