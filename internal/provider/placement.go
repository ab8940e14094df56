// Package provider describes the imagery services HexProx fronts beside
// Hexagon: each one's Profile (its hosts, entry points, grant and
// answers), the built-in ones and an operator's (ParseProfiles) in a
// Catalog, where a credential goes on a request (a Placement), and how
// every spelling of it is taken out of what comes back or what a client
// sends (StripPath, DropParams, PassPath, Reveals).
// docs/provider-profiles.md has the design.
package provider

import (
	"net/http"
	"net/url"
	"strings"
)

// Location is where a Placement puts a credential.
type Location uint8

const (
	InQuery  Location = iota // a query parameter: api_key=KEY (Planet), apikey=KEY (Nearmap)
	InHeader                 // a header: "Authorization: Apikey KEY" (Nearmap), "Bearer TOKEN"
	InPath                   // a path segment pair: /apikey/KEY (Nearmap's v1 services)
)

// Placement is one place a credential goes upstream.
type Placement struct {
	In Location
	// Name is the query parameter, the header, or the path segment that
	// precedes the credential ("apikey" in /apikey/KEY).
	Name string
	// Template, for a header, is its value with {} where the credential
	// goes ("Bearer {}", "Apikey {}"); "" means the credential alone.
	Template string
	// After, for a path, is the prefix the segment pair follows
	// ("/maps/api/wmts/v1"): a path that does not start with it is left
	// as it is.
	After string
}

// Apply puts cred on a request to u with header h: u's query or path,
// or h. u and h are changed in place; the caller owns both.
func (p Placement) Apply(u *url.URL, h http.Header, cred string) {
	switch p.In {
	case InQuery:
		q := DropParams(u.RawQuery, []string{p.Name})
		if q != "" {
			q += "&"
		}
		u.RawQuery = q + url.QueryEscape(p.Name) + "=" + url.QueryEscape(cred)
	case InHeader:
		v := cred
		if p.Template != "" {
			v = strings.Replace(p.Template, "{}", cred, 1)
		}
		h.Set(p.Name, v)
	case InPath:
		if !strings.HasPrefix(u.Path, p.After) {
			return
		}
		ins := "/" + p.Name + "/"
		escaped := u.EscapedPath()
		if !strings.HasPrefix(escaped, p.After) {
			return // After is plain ASCII: a path that starts with it escaped does too
		}
		// The escaped form is set too, so that a credential holding '/'
		// stays one segment.
		u.Path = p.After + ins + cred + u.Path[len(p.After):]
		u.RawPath = p.After + ins + url.PathEscape(cred) + escaped[len(p.After):]
	}
}

// StripPath removes every "/{Name}/{anything}" segment pair of an InPath
// placement from path, in any case of Name, wherever it stands: what a
// capabilities document or a client writes may not follow After. Other
// placements leave path as it is.
func (p Placement) StripPath(path string) string {
	if p.In != InPath || p.Name == "" {
		return path
	}
	segs := strings.Split(path, "/")
	out := segs[:0]
	for i := 0; i < len(segs); i++ {
		name := segs[i]
		if d, err := url.PathUnescape(name); err == nil {
			name = d
		}
		if i > 0 && strings.EqualFold(name, p.Name) && i+1 < len(segs) {
			i++ // the credential after it
			continue
		}
		out = append(out, segs[i])
	}
	return strings.Join(out, "/")
}

// DropParams removes from a raw query every parameter whose name,
// percent-decoded, is one of names in any case, keeping the others as
// written and in order. A name that does not decode is compared as
// written. It is how a client's own copy of a credential is dropped
// (api_key, APIKEY, api%5Fkey alike) and how a document's is removed
// before its URL is rewritten.
func DropParams(rawQuery string, names []string) string {
	if rawQuery == "" || len(names) == 0 {
		return rawQuery
	}
	var kept []string
	for _, p := range strings.Split(rawQuery, "&") {
		k, _, _ := strings.Cut(p, "=")
		if !isOneOf(paramName(k), names) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "&")
}

// paramName is how a parameter name may be read by some server: decoded
// until it no longer changes (api%255Fkey is api_key to a server that
// decodes twice), without NULs, array brackets or surrounding spaces.
func paramName(k string) string {
	for range 4 {
		d, err := url.QueryUnescape(k)
		if err != nil || d == k {
			break
		}
		k = d
	}
	k = strings.ReplaceAll(k, "\x00", "")
	k = strings.TrimSuffix(strings.TrimSpace(k), "[]")
	return strings.TrimSpace(k)
}

func isOneOf(k string, names []string) bool {
	for _, n := range names {
		if strings.EqualFold(k, n) {
			return true
		}
	}
	return false
}
