package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/credstate"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/ows"
	"github.com/hexprox/hexprox/internal/token"
)

// A resolver finds whom a request acts for in the escaped path after its
// route's prefix ("" or starting with "/"), and returns the escaped rest
// of the path ("" or starting with "/"). Credential URLs and API keys are
// its two kinds.
type resolver func(r *http.Request, after string) (principal, string, error)

// principal is whom a request acts for, and what its log line and
// policies need: a credential URL's Hexagon credential, or an API key
// (whose sets its token source, keyTokens, picks from).
type principal struct {
	cred credential.Credential // a credential URL's; zero for a key
	who  string                // a fingerprint for logs: the credential's, or the key's
	// prefix is the route prefix of the principal's own URLs ("/wmts",
	// "/v2/wmts"); keyName, for an API key, the key. See ownPath.
	prefix, keyName string

	// For credential URLs: the credential's state on this instance (nil
	// until the credentials step holds one for it), and, when this request
	// decoded it, its escaped "{id}/{secret}" (remembered once Hexagon
	// accepts it).
	entry     *credstate.Entry
	decodedAs string

	// For API keys (nil and "" for credential URLs).
	key *keys.Key
	org string
	// profile is the provider of a key's sets when it is not Hexagon:
	// its requests take the pass-through form (passthrough.go).
	profile *passProfile
}

// endpoint is the family of Hexagon's services the principal's requests
// go to: a key's choice; streaming for credential URLs.
func (p principal) endpoint() keys.Endpoint {
	if p.key != nil {
		return p.key.Endpoint()
	}
	return keys.Streaming
}

// ownPath is the escaped path, below the proxy's base URL, that the
// principal's own URLs start with: "/wmts/{id}/{secret}" in canonical
// encoding, or "/v2/wmts/{key}". It is built only when a document needs
// it, not on every request.
func (p principal) ownPath() string {
	if p.key != nil {
		return p.prefix + "/" + p.keyName
	}
	id, secret := p.cred.PathSegments()
	return p.prefix + "/" + id + "/" + secret
}

// credentials is the credentials step of every service route: it parses
// the query once, resolves whom the request acts for with find, fills
// record.in (principal, token source, the rest of the path) for the
// handler, admits a guess under the per-address guess limit and enforces
// the principal's limits, all once; then it calls the rest of the chain
// once. prefix is the route's prefix, without a trailing slash.
func (s *Server) credentials(prefix string, find resolver) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			rec := recordOf(c)
			r := c.Request()
			// The query is parsed once, here; a malformed one is an error
			// only where it is read (WMS, WMTS KVP), not on a REST tile.
			rec.in.query, rec.in.queryErr = ows.Params(r.URL.RawQuery)
			// The escaped path, not c.Param("*"): Echo unescapes a
			// parameter only when the request has a RawPath, so "%2F"
			// inside a base64 segment would sometimes split it.
			// After the prefix: "" for the bare prefix (find says what is
			// missing), else "/" and what follows.
			after, _ := strings.CutPrefix(r.URL.EscapedPath(), prefix)
			p, rest, err := find(r, after)
			if err != nil {
				return err
			}
			rec.in.principal, rec.in.rest = p, rest
			if p.key != nil {
				// A key fails over between its credential sets where Hexagon
				// refuses one: in its token source, not by running the
				// request again. With every set refused, the refusal says
				// whom to contact, and the request is still the key's.
				if err := rec.in.keySets.start(s.creds, p.key); err != nil {
					rec.in.subject = s.subjectOf(rec)
					return err
				}
				rec.in.tokens = &rec.in.keySets
			} else {
				// A credential this instance holds nothing of is a guess too;
				// it is admitted before anything is held for it, so that
				// guesses answered 429 cost no memory.
				rec.in.guess = s.guesses != nil && (p.entry == nil || p.entry.Guess())
			}
			ticket, err := s.admit(rec, r)
			if err != nil {
				return err
			}
			if p.key == nil {
				if p.entry == nil {
					p.entry = s.creds.Get(p.cred)
					rec.in.principal.entry = p.entry
				}
				rec.in.tokens = p.entry.Tokens
			}
			rec.in.subject = s.subjectOf(rec)
			if err := s.enforce(rec); err != nil {
				return err
			}
			err = next(c)
			s.done(ticket, p.entry, err)
			if p.entry != nil {
				// Accepted promotes the entry, however the request ended.
				if p.entry.Accepted() && err == nil && p.decodedAs != "" {
					s.creds.Remember(p.decodedAs, p.entry)
				}
			}
			return err
		}
	}
}

// credentialInPath resolves "{id}/{secret}/rest" for a service ("wmts"
// or "wms"). A credential Hexagon has accepted is not decoded again.
func (s *Server) credentialInPath(service string) resolver {
	route := "/" + service
	return func(_ *http.Request, after string) (principal, string, error) {
		after = strings.TrimPrefix(after, "/")
		segs, rest := after, ""
		if i := strings.IndexByte(after, '/'); i >= 0 {
			if j := strings.IndexByte(after[i+1:], '/'); j >= 0 {
				segs, rest = after[:i+1+j], after[i+1+j:]
			}
		}
		if e, ok := s.creds.Spelled(segs); ok {
			if err := slashInBase64(service, rest); err != nil {
				return principal{}, "", err
			}
			return principal{cred: e.Cred, who: e.Who, prefix: route, entry: e}, rest, nil
		}
		cred, rest, err := credential.FromPath(after) // hashed once: Key is kept
		if err != nil {
			return principal{}, "", &failure.Error{Kind: failure.Invalid, Message: "the credential in the URL is malformed: " + err.Error() +
				"; encode the client id and secret with base64 (URL-safe or standard)"}
		}
		if err := slashInBase64(service, rest); err != nil {
			return principal{}, "", err
		}
		// The credentials step makes its entry once the guess limit has
		// admitted it.
		p := principal{cred: cred, prefix: route, decodedAs: segs}
		if p.entry, _ = s.creds.Find(cred); p.entry != nil {
			p.who = p.entry.Who // fingerprinted when it was made
		} else {
			p.who = s.creds.Fingerprint(cred)
		}
		return p, rest, nil
	}
}

// credentialAfterKey resolves the original HexProx's
// "{anything}/{id}/{secret}/rest" (its /v1 routes; the first segment was
// an API key it did not check, and is ignored here too).
func (s *Server) credentialAfterKey(service string) resolver {
	inPath := s.credentialInPath(service)
	return func(r *http.Request, after string) (principal, string, error) {
		_, after, ok := strings.Cut(strings.TrimPrefix(after, "/"), "/")
		if !ok {
			return principal{}, "", failure.Invalidf(failure.CodeInvalidParameter, "", "%v", credential.ErrPath)
		}
		return inPath(r, "/"+after)
	}
}

// errSlash is the answer to a credential whose standard base64 held a '/'
// that split it into two path segments.
var errSlash = &failure.Error{Kind: failure.Invalid, Message: "the client id or secret contains a '/' that splits the URL path: " +
	"encode it with URL-safe base64 (- and _ instead of + and /) or write / as %2F; the page at / of this proxy builds the address for you"}

// slashInBase64 recognises the btoa mistake: a standard-base64 id or
// secret with an unencoded '/' shifts every segment by one, so the rest of
// the path starts with a segment of base64 characters where the service
// expects "1.0.0" (WMTS) or nothing (WMS). Such a segment holds part of a
// secret: it is answered 400 and never logged.
func slashInBase64(service, rest string) error {
	seg, _, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	if seg == "" || seg == "1.0.0" && service == "wmts" {
		return nil
	}
	if _, err := credential.DecodeSegment(strings.NewReplacer("%2B", "+", "%2b", "+", "%3D", "=", "%3d", "=").Replace(seg)); err != nil {
		return nil // not base64: an ordinary unknown resource
	}
	return errSlash
}

// refused reports whether err is Hexagon refusing a credential.
func refused(err error) bool { return errors.Is(err, token.ErrRefused) }
