package ows

import (
	"net/url"
	"strings"

	"github.com/hexprox/hexprox/internal/failure"
)

// Params reads a KVP query with case-insensitive names (returned upper
// case). A name given more than once has its values joined with commas,
// exactly as the Azure Functions host does when it forwards a request, so
// a request means the same locally and on Azure. access_token is dropped:
// the proxy's own token always wins.
func Params(rawQuery string) (map[string]string, error) {
	p := map[string]string{}
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || strings.Contains(pair, ";") {
			return nil, failure.Invalidf(failure.CodeInvalidParameter, "", "the query string is not valid URL encoding")
		}
		k = strings.ToUpper(k)
		if old, seen := p[k]; seen {
			v = old + "," + v
		}
		p[k] = v
	}
	delete(p, "ACCESS_TOKEN")
	return p, nil
}

// Identifier reports whether s is a safe OGC identifier (a layer, style or
// tile matrix set name): 1-128 letters, digits, '_', '-', '.' or ':',
// without "..".
func Identifier(s string) bool {
	if s == "" || len(s) > 128 || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
