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
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
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
