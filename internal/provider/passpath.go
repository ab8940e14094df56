package provider

import (
	"net/url"
	"strings"
)

// PassPath checks a path a client asks for on an upstream host through
// the pass-through form ("/v2/wmts/{key}/~tiles{path}") and returns it as
// it goes upstream. It accepts only a path that means one thing
// everywhere it could be read: it starts with "/", holds no empty, "." or
// ".." segment (escaped or not), no escaped "/" or "\", no "\", no
// control character and no escape that does not decode; and it is one of
// allowed, or below one at a segment boundary. The escapes it keeps are
// forwarded as the client wrote them.
func PassPath(escaped string, allowed []string) (string, bool) {
	if !strings.HasPrefix(escaped, "/") || strings.ContainsAny(escaped, "\\?#") {
		return "", false
	}
	lower := strings.ToLower(escaped)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(lower, "%00") {
		return "", false
	}
	decoded, err := url.PathUnescape(escaped)
	if err != nil {
		return "", false
	}
	for _, seg := range strings.Split(decoded[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", false
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return "", false
			}
		}
	}
	for _, a := range allowed {
		if decoded == a || strings.HasPrefix(decoded, strings.TrimSuffix(a, "/")+"/") {
			return escaped, true
		}
	}
	return "", false
}
