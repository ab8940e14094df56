package server

import (
	"net/http"

	"github.com/hexprox/hexprox/internal/credstate"
	"github.com/hexprox/hexprox/internal/usage"
)

// Test hooks: what the tests (package server_test) read and no caller
// needs.

// Creds is the server's table of credentials.
func (s *Server) Creds() *credstate.Table { return s.creds }

// RedirectCounter returns a func that counts one redirect of e's
// credential as the request path does, from finding the subject on.
func (s *Server) RedirectCounter(e *credstate.Entry) func() {
	rec := &record{in: resolved{principal: principal{cred: e.Cred, who: e.Who, entry: e}, tokens: e.Tokens}}
	rec.out.answer(modeRedirect, usage.TilesRedirected)
	return func() {
		rec.in.subject = nil
		s.count(rec, http.StatusFound, 0)
	}
}

var (
	UsageID          = usageID
	AppendJSONString = appendJSONString
)

const MaxUsageOrg = maxUsageOrg
