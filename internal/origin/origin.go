// Package origin matches browser Origin headers against an allow-list.
package origin

import (
	"fmt"
	"strings"
)

// List is an allow-list of origins. The zero value allows nothing.
// A List is immutable and safe for concurrent use.
type List struct {
	any      bool
	patterns []pattern
}

type pattern struct {
	scheme string
	suffix string // for a wildcard: ".arcgis.com"; else the whole host
	wild   bool
	port   string
}

// Parse parses a comma-separated allow-list. Each entry is an origin
// (scheme://host[:port]); the host's leftmost part may be "*", which
// matches one or more DNS labels ("https://*.arcgis.com" matches
// https://myorg.maps.arcgis.com but not https://arcgis.com). A lone "*"
// allows every origin. Empty entries are ignored.
func Parse(s string) (List, error) {
	var l List
	var bad []string
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			continue
		case e == "*":
			l.any = true
			continue
		}
		p, ok := parsePattern(e)
		if !ok {
			bad = append(bad, e)
			continue
		}
		l.patterns = append(l.patterns, p)
	}
	if len(bad) > 0 {
		return List{}, fmt.Errorf("not an origin (scheme://host[:port], host may start with '*.'): %q", bad)
	}
	return l, nil
}

func parsePattern(e string) (pattern, bool) {
	scheme, host, port, ok := split(strings.ToLower(e))
	if !ok {
		return pattern{}, false
	}
	p := pattern{scheme: scheme, port: port, suffix: host}
	if rest, found := strings.CutPrefix(host, "*."); found {
		p.wild, p.suffix = true, "."+rest
		host = rest
	}
	if !validHost(host) {
		return pattern{}, false
	}
	return p, true
}

// Allowed reports whether the Origin header value is on the list.
func (l List) Allowed(origin string) bool {
	if origin == "" || origin == "null" {
		return false
	}
	scheme, host, port, ok := split(strings.ToLower(origin))
	if !ok || !validHost(host) {
		return false
	}
	if l.any {
		return true
	}
	for _, p := range l.patterns {
		if p.scheme != scheme || p.port != port {
			continue
		}
		if !p.wild {
			if host == p.suffix {
				return true
			}
			continue
		}
		if len(host) > len(p.suffix) && strings.HasSuffix(host, p.suffix) {
			return true
		}
	}
	return false
}

// split parses scheme://host[:port] with nothing after it.
func split(s string) (scheme, host, port string, ok bool) {
	scheme, rest, found := strings.Cut(s, "://")
	if !found || (scheme != "http" && scheme != "https") {
		return "", "", "", false
	}
	host = rest
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return "", "", "", false
		}
	}
	return scheme, host, port, host != ""
}

// validHost accepts DNS names (letters, digits, '-', '.'), an optional
// leading "*." already removed by the caller, and bracketless IPv4.
func validHost(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '.' || h[len(h)-1] == '.' || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
