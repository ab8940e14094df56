package server

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/limit"
)

// guessTicket remembers, for one request, whether its credential was
// unknown when the request began and from which address it came.
type guessTicket struct {
	addr    netip.Addr
	counted bool
}

// admit asks the limiter before a credential whose state is unknown can
// reach Hexagon; it answers 429 once the client's address has used up its
// allowance.
func (s *Server) admit(rec *record, r *http.Request) (guessTicket, error) {
	if s.guesses == nil || rec.in.principal.key != nil || rec.in.known != token.Unknown {
		return guessTicket{}, nil
	}
	t := guessTicket{addr: guesslimit.ClientAddr(r, s.cfg.TrustedHops), counted: true}
	if wait, ok := s.guesses.Check(t.addr); !ok {
		return t, tooManyGuesses(wait)
	}
	return t, nil
}

// done records a refusal that Hexagon was asked for.
func (s *Server) done(t guessTicket, err error) {
	if t.counted && refused(err) {
		s.guesses.Refused(t.addr)
	}
}

func tooManyGuesses(wait time.Duration) error {
	return &failure.Error{Kind: failure.RateLimited, RetryAfter: failure.RetryAfter(wait),
		Message: "too many refused credentials from your address; check the URL, and try again later"}
}

// subjectOf is who the request is counted under: a key's organisation and
// fingerprint, or a v1 credential's fingerprint once Hexagon has accepted
// it (known is Live; so that random credentials cannot fill the
// counters). nil when nothing is counted.
func (s *Server) subjectOf(rec *record, known token.State) *usage.Subject {
	if s.usage == nil || rec.in.principal.who == "" {
		return nil
	}
	if rec.in.principal.key == nil && (rec.in.cached == nil || known != token.Live) {
		return nil
	}
	return s.usage.Subject(usageID(rec.in.principal.org, rec.in.principal.who))
}

// limiterOf returns the limits that apply to the request: the key's own,
// or RATE_LIMIT and DAILY_REQUEST_LIMIT for a v1 credential Hexagon has
// accepted.
func (s *Server) limiterOf(rec *record) *limit.Limiter {
	if rec.in.principal.key != nil {
		return rec.in.principal.key.Limiter()
	}
	if s.v1Limits == nil || rec.in.known != token.Live {
		return nil
	}
	return s.v1Limits.get(rec.in.principal.cred.Key())
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

// v1Limiters holds one limiter per v1 credential that Hexagon accepted,
// so that RATE_LIMIT counts per credential. Real credentials are few; the
// map is capped all the same.
type v1Limiters struct {
	limits limit.Limits
	mu     sync.Mutex
	m      map[string]*limit.Limiter
}

const maxV1Limiters = 10000

func newV1Limiters(l limit.Limits) *v1Limiters {
	if limit.New(l) == nil {
		return nil
	}
	return &v1Limiters{limits: l, m: map[string]*limit.Limiter{}}
}

func (v *v1Limiters) get(credKey string) *limit.Limiter {
	v.mu.Lock()
	defer v.mu.Unlock()
	if l, ok := v.m[credKey]; ok {
		return l
	}
	if len(v.m) >= maxV1Limiters {
		clear(v.m) // only accepted credentials get here; starting afresh is safe
	}
	l := limit.New(v.limits)
	v.m[credKey] = l
	return l
}

// count adds the request to its subject's counters once it is answered.
func (s *Server) count(rec *record, status int, size int64) {
	if rec.in.subject == nil && s.usage != nil && rec.in.cached != nil {
		rec.in.subject = s.subjectOf(rec, rec.in.cached.State()) // a v1 credential accepted by this very request
	}
	subj := rec.in.subject
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
