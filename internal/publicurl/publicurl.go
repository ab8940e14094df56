// Package publicurl works out the URL clients use to reach the proxy, for
// the links written into capabilities documents.
package publicurl

import (
	"net/http"
	"strings"
)

// VaryHeaders are the request headers Base depends on when no base URL
// is configured; responses built from it must list them in Vary.
const VaryHeaders = "X-Forwarded-Proto, X-Forwarded-Host, X-Arr-Ssl"

// Base returns the external base URL (scheme://host[/path], no trailing
// slash). A configured URL wins and the request's headers are ignored, so
// a spoofed X-Forwarded-Host cannot reach a document. Otherwise the host
// is the first X-Forwarded-Host value, else the Host header; the scheme is
// https when the request came over TLS, carries Azure's X-ARR-SSL, or the
// first X-Forwarded-Proto says so. ok is false when the host is not a
// plain host[:port].
func Base(r *http.Request, configured string) (base string, ok bool) {
	if configured != "" {
		return configured, true
	}
	host := first(r.Header.Get("X-Forwarded-Host"))
	if host == "" {
		host = r.Host
	}
	if !validHost(host) {
		return "", false
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Arr-Ssl") != "" || strings.EqualFold(first(r.Header.Get("X-Forwarded-Proto")), "https") {
		scheme = "https"
	}
	return scheme + "://" + strings.ToLower(host), true
}

func first(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// validHost accepts a DNS name or IPv4 address with an optional port, or a
// bracketed IPv6 literal with an optional port.
func validHost(h string) bool {
	if h == "" || len(h) > 261 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.:[]", c) >= 0) {
			return false
		}
	}
	return h[0] != '.' && h[0] != ':' && h[0] != '-'
}
