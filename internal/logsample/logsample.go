// Package logsample keeps a fraction of the log lines of successful
// requests, so that a busy proxy's stdout (which Azure Functions ships to
// Application Insights, billed per GB) carries errors and refusals in full
// and only a sample of the rest.
//
// Sampling is deterministic: at rate 0.1 exactly every tenth successful
// request line is kept, so the kept lines times 1/rate is the number of
// successful requests, to within one line.
package logsample

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
)

// What a request line is: the server logs every request with this message
// and an int "status" attribute.
const (
	RequestMessage = "request"
	StatusKey      = "status"
	ErrKey         = "err"
)

// perMillion is the rate's resolution.
const perMillion = 1_000_000

// ParseRate reads the LOG_SAMPLE setting: the fraction of successful
// request lines to keep.
//
//   - "" (unset) is 1: every line is kept.
//   - a decimal fraction from 0 to 1: "0.1" keeps one in ten, "1" all,
//     "0" none (errors, refusals and other lines are still all written).
//   - a percentage from 0% to 100%: "10%" is 0.1.
//
// Only digits and one decimal point are read (no signs, exponents, hex).
// Surrounding spaces are ignored. Anything else is an error, as is a rate
// above 0 below 0.000001 (the resolution). The error quotes the value,
// which is not a secret.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 1, nil
	}
	text, scale := s, 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		text, scale = strings.TrimSpace(t), 100
	}
	v, err := strconv.ParseFloat(text, 64)
	if strings.Trim(text, "0123456789.") != "" || err != nil || math.IsNaN(v) || v < 0 || v > scale {
		return 0, fmt.Errorf("%q is not a fraction from 0 to 1 (0.1) or a percentage (10%%)", s)
	}
	v /= scale
	if v > 0 && v < 1.0/perMillion {
		return 0, fmt.Errorf("%q is below the smallest rate, 0.000001", s)
	}
	return v, nil
}

// Handler passes every record to the next handler except successful
// request lines, of which it keeps a fraction. A record is a successful
// request line when its message is RequestMessage, its level is below
// WARN, it has an int StatusKey attribute from 1 to 399 and no non-empty
// ErrKey attribute; every other record (errors, 4xx refusals, 5xx,
// aborted responses, start-up and store messages) is always passed on.
//
// Handler is safe for concurrent use; handlers derived with WithAttrs and
// WithGroup share its count.
type Handler struct {
	next slog.Handler
	s    *Sampler
}

// New returns next wrapped to keep the fraction rate (0 to 1) of
// successful request lines. A rate of 1 or more returns next itself.
func New(next slog.Handler, rate float64) slog.Handler {
	if rate >= 1 || math.IsNaN(rate) {
		return next
	}
	return &Handler{next: next, s: NewSampler(rate)}
}

// Sampler decides which successful request lines are kept, for a server
// that writes its request lines itself. A nil *Sampler keeps every line.
// It is safe for concurrent use.
type Sampler struct {
	ppm uint64
	n   atomic.Uint64
}

// NewSampler keeps the fraction rate (0 to 1) of the lines it is asked
// about; nil (keep all) for a rate of 1 or more.
func NewSampler(rate float64) *Sampler {
	if rate >= 1 || math.IsNaN(rate) {
		return nil
	}
	s := &Sampler{}
	if rate > 0 {
		s.ppm = uint64(math.Round(rate * perMillion))
	}
	return s
}

// Keep reports whether the next successful request line is in the
// sample: the n-th is kept when floor(n·rate) steps up, which keeps
// exactly floor(n·rate) of the first n. Ask only about successful lines
// (below WARN, status 1-399, no error).
func (s *Sampler) Keep() bool {
	if s == nil {
		return true
	}
	if s.ppm == 0 {
		return false
	}
	n := s.n.Add(1)
	return n*s.ppm/perMillion != (n-1)*s.ppm/perMillion
}

// Enabled reports whether the next handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on unless it is a successful request line that the
// sample leaves out.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if successfulRequest(r) && !h.s.Keep() {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func successfulRequest(r slog.Record) bool {
	if r.Message != RequestMessage || r.Level >= slog.LevelWarn {
		return false
	}
	ok, failed := false, false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case StatusKey:
			if a.Value.Kind() == slog.KindInt64 {
				s := a.Value.Int64()
				ok = s > 0 && s < 400
			}
		case ErrKey:
			failed = a.Value.Kind() != slog.KindString || a.Value.String() != ""
		}
		return !failed
	})
	return ok && !failed
}

// WithAttrs returns a Handler over next.WithAttrs(attrs) sharing h's
// count.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), s: h.s}
}

// WithGroup returns a Handler over next.WithGroup(name) sharing h's count.
// A record's own attributes are looked at whatever group they are then
// written under.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), s: h.s}
}
