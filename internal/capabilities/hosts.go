package capabilities

import (
	"net/url"
	"strings"
)

// Host is one upstream host whose URLs a document sends back through the
// proxy, under "/~{Role}": a provider serving capabilities from one host
// and tiles from another (Planet) names both.
type Host struct {
	Role string // a short name, [a-z0-9]: "api", "tiles"
	// Base is the host's scheme, host and port, and the path below which
	// its services live ("https://tiles.planet.com"), without a trailing
	// slash. A URL matches when its scheme and host are the same (in any
	// case, the port as written; a protocol-relative URL matches either
	// scheme) and its path
	// is Base's path or below it.
	Base string
	// Allowed, if any, are the decoded path prefixes the host's URLs
	// must lie below to match: two roles on one host (a test's single
	// fake, a mirror) each take their own paths.
	Allowed []string
}

// Cleaner takes every spelling of a credential out of a matched URL's
// path and raw query (a path segment pair such as /apikey/KEY, a query
// parameter in any case), returning what may be shown to a key holder.
type Cleaner func(path, rawQuery string) (string, string)

// HostMatcher returns a Matcher for absolute and protocol-relative URLs
// on hosts: such a URL becomes "/~{role}{path}" and, when a query is
// left, "?{query}", with path and query cleaned by clean (nil: kept).
// The path is kept as written (escapes and a template's {TileMatrix}
// braces alike), and the fragment dropped. Path-only URLs name no host
// and do not match: a provider's document that writes them names its own
// host, which the caller knows as the document's.
func HostMatcher(hosts []Host, clean Cleaner) Matcher {
	type parsed struct {
		role, scheme, host, path string
		allowed                  []string
	}
	var hs []parsed
	for _, h := range hosts {
		u, err := url.Parse(h.Base)
		if err != nil || u.Host == "" {
			continue // settings are checked where they are read
		}
		hs = append(hs, parsed{h.Role, strings.ToLower(u.Scheme), strings.ToLower(u.Host), strings.TrimSuffix(u.EscapedPath(), "/"), h.Allowed})
	}
	return func(raw string) (string, bool) {
		scheme, rest, ok := strings.Cut(raw, "//")
		if !ok || scheme != "" && !strings.EqualFold(scheme, "http:") && !strings.EqualFold(scheme, "https:") {
			return "", false
		}
		rest, _, _ = strings.Cut(rest, "#")
		hostEnd := strings.IndexAny(rest, "/?")
		if hostEnd < 0 {
			hostEnd = len(rest)
		}
		host, pathQuery := strings.ToLower(rest[:hostEnd]), rest[hostEnd:]
		path, query, hasQuery := strings.Cut(pathQuery, "?")
		for _, h := range hs {
			if host != h.host || scheme != "" && !strings.EqualFold(strings.TrimSuffix(scheme, ":"), h.scheme) {
				continue
			}
			if path != h.path && !strings.HasPrefix(path, h.path+"/") || !below(path, h.allowed) {
				continue
			}
			if clean != nil {
				path, query = clean(path, query)
			}
			suffix := "/~" + h.role + path
			if hasQuery && query != "" {
				suffix += "?" + query
			}
			return suffix, true
		}
		return "", false
	}
}

// below reports whether path, decoded, lies at or below one of allowed
// (every path when there are none).
func below(path string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	if d, err := url.PathUnescape(path); err == nil {
		path = d
	}
	for _, a := range allowed {
		if path == a || strings.HasPrefix(path, strings.TrimSuffix(a, "/")+"/") {
			return true
		}
	}
	return false
}
