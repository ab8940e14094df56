package provider

import (
	"net/url"
	"strings"
)

// PassPath checks a path a client asks for on an upstream host through
// the pass-through form ("/v2/wmts/{key}/~tiles{path}") and returns it as
// it goes upstream. It accepts only a path that means one thing
// wherever it could be read, by any server or framework behind the
// provider's front: it starts with "/"; each segment, decoded, is
// non-empty, not made of dots and spaces alone, and holds only ASCII
// letters, digits and -._~!$'()*+,=:@{} (so no ';' for a path parameter,
// no '\', no control or non-ASCII character, no escaped '/'); every
// escape decodes; and it is one of allowed, or below one at a segment
// boundary. The escapes it keeps are forwarded as the client wrote them.
func PassPath(escaped string, allowed []string) (string, bool) {
	if !strings.HasPrefix(escaped, "/") {
		return "", false
	}
	var segs []string
	for _, raw := range strings.Split(escaped[1:], "/") {
		seg, err := url.PathUnescape(raw)
		if err != nil || strings.Trim(seg, ". ") == "" {
			return "", false
		}
		for i := 0; i < len(seg); i++ {
			if !segmentChar(seg[i]) {
				return "", false
			}
		}
		segs = append(segs, seg)
	}
	decoded := "/" + strings.Join(segs, "/")
	for _, a := range allowed {
		if decoded == a || strings.HasPrefix(decoded, strings.TrimSuffix(a, "/")+"/") {
			return escaped, true
		}
	}
	return "", false
}

// segmentChar reports whether c may stand in a pass-through path segment.
func segmentChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~!$'()*+,=:@{}", c) >= 0
}
