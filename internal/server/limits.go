package server

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/hexprox/hexprox/internal/credstate"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/limit"
)

// guessTicket remembers, for one request, whether it was a guess (its
// credential unknown when the request began) and from which address it
// came.
type guessTicket struct {
	addr    netip.Addr
	counted bool
}

// admit charges a guess to the client's address before a credential
// whose state is unknown can reach Hexagon, and answers 429 once the
// address has used up its allowance. The charge is taken as the guess is
// admitted, not when Hexagon answers: guesses sent at once cost what the
// same guesses one after another do.
func (s *Server) admit(rec *record, r *http.Request) (guessTicket, error) {
	if !rec.in.guess {
		return guessTicket{}, nil
	}
	t := guessTicket{addr: guesslimit.ClientAddr(r, s.cfg.TrustedHops)}
	if wait, ok := s.guesses.Take(t.addr); !ok {
		return t, tooManyGuesses(wait)
	}
	t.counted = true
	return t, nil
}

// done settles a guess's charge: it stays when Hexagon refused the
// credential, or when the client left before Hexagon had accepted it (the
// token request goes on without it, and leaving must not make a guess
// free); otherwise (accepted, or Hexagon could not answer) it is given
// back.
func (s *Server) done(t guessTicket, e *credstate.Entry, err error) {
	switch {
	case !t.counted:
	case refused(err), errors.Is(err, context.Canceled) && !e.Accepted():
	default:
		s.guesses.Refund(t.addr)
	}
}

func tooManyGuesses(wait time.Duration) error {
	return &failure.Error{Kind: failure.RateLimited, RetryAfter: failure.RetryAfter(wait),
		Message: "too many refused credentials from your address; check the URL, and try again later"}
}

// subjectOf is who the request is counted under: a key's organisation
// and fingerprint, or a v1 credential's fingerprint once Hexagon has
// accepted it (so that random credentials cannot fill the counters). nil
// when nothing is counted.
func (s *Server) subjectOf(rec *record) *usage.Subject {
	switch p := rec.in.principal; {
	case p.key != nil && s.usage != nil:
		return s.usage.Subject(usageID(p.org, p.who))
	case p.entry != nil:
		return p.entry.Subject()
	}
	return nil
}

// limiterOf returns the limits that apply to the request: the key's own,
// or RATE_LIMIT and DAILY_REQUEST_LIMIT for a v1 credential Hexagon has
// accepted.
func (s *Server) limiterOf(rec *record) *limit.Limiter {
	switch p := rec.in.principal; {
	case p.key != nil:
		return p.key.Limiter()
	case p.entry != nil:
		return p.entry.Limiter()
	}
	return nil
}

// enforce answers 429, naming the limit, for a request over its limits.
func (s *Server) enforce(rec *record) error {
	lim := s.limiterOf(rec)
	if lim == nil { // a nil subject (no counter) is never over its daily quota; the rate still applies
		return nil
	}
	v := lim.Allow(rec.in.subject, s.now())
	if v.OK {
		return nil
	}
	msg := "this URL's limit of requests per second was reached; slow down"
	if v.Limit == limit.NameDaily {
		msg = "this URL's daily request quota is used up; it resets at midnight UTC"
	}
	return &failure.Error{Kind: failure.RateLimited, RetryAfter: failure.RetryAfter(v.RetryAfter), Message: msg + " (limit: " + v.Limit + ")"}
}

// count adds the request to its subject's counters once it is answered.
func (s *Server) count(rec *record, status int, size int64) {
	subj := rec.in.subject
	if e := rec.in.principal.entry; subj == nil && e != nil {
		subj = e.Subject() // a v1 credential accepted by this very request
	}
	if subj == nil {
		return
	}
	if k, ok := usage.ErrorKind(status); ok {
		subj.Inc(k)
		return
	}
	if rec.out.mode == modeNone {
		return // nothing was served: a page, a preflight
	}
	subj.Inc(rec.out.kind)
	if rec.out.mode == modeStream && size > 0 {
		subj.Add(usage.BytesStreamed, size)
	}
}

// maxUsageOrg caps the organisation name usage is counted under: it is
// part of a table row's key (at most 1 KiB, escaped), and a long name in a
// record must not stop every instance's flushes.
const maxUsageOrg = 64

// usageID is whom usage is counted under: an organisation (cut to
// maxUsageOrg characters) and a fingerprint.
func usageID(org, who string) usage.SubjectID {
	if utf8.RuneCountInString(org) > maxUsageOrg {
		org = string([]rune(org)[:maxUsageOrg])
	}
	return usage.SubjectID{Org: org, Key: who}
}
