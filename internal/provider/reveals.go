package provider

import (
	"bytes"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Reveals reports whether doc shows cred in any spelling a reader could
// turn back into it: as it is, percent-escaped (as a path or a query
// escapes it, once or twice), behind XML character references, in any
// case. It is the last check on what the proxy serves of a provider's
// document: a key left anywhere, on a host or in a place no rule took it
// out of, stops the document. An empty cred reveals nothing.
func Reveals(doc []byte, cred string) bool {
	if cred == "" {
		return false
	}
	want := []byte(strings.ToLower(cred))
	text := bytes.ToLower(unescapeXML(doc))
	for range 3 { // as is, then decoded once and twice
		if bytes.Contains(text, want) {
			return true
		}
		d := bytes.ToLower(percentDecode(text)) // an escaped letter's case is the escape's: %4E is N
		if bytes.Equal(d, text) {
			break
		}
		text = d
	}
	return false
}

// RevealsAny reports whether any of values (a header's, say) shows cred
// in any spelling (Reveals). A value shorter than cred shows no spelling
// of it, so the usual short header values cost a length check.
func RevealsAny(values []string, cred string) bool {
	for _, v := range values {
		if len(v) >= len(cred) && Reveals([]byte(v), cred) {
			return true
		}
	}
	return false
}

var charRef = regexp.MustCompile(`&#(?:[xX][0-9a-fA-F]{1,6}|[0-9]{1,7});`)

// unescapeXML replaces character references and the predefined entities.
func unescapeXML(b []byte) []byte {
	b = charRef.ReplaceAllFunc(b, func(m []byte) []byte {
		s := string(m[2 : len(m)-1])
		base := 10
		if s[0] == 'x' || s[0] == 'X' {
			s, base = s[1:], 16
		}
		n, err := strconv.ParseUint(s, base, 32)
		if err != nil {
			return m
		}
		return []byte(string(rune(n)))
	})
	for _, e := range [][2]string{{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", `"`}, {"&apos;", "'"}, {"&amp;", "&"}} {
		b = bytes.ReplaceAll(b, []byte(e[0]), []byte(e[1]))
	}
	return b
}

// percentDecode decodes every well-formed %XX, and '+' as a space is
// left alone (a key may hold '+'); malformed escapes stay as they are.
func percentDecode(b []byte) []byte {
	if bytes.IndexByte(b, '%') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) {
			if v, err := url.PathUnescape(string(b[i : i+3])); err == nil {
				out = append(out, v...)
				i += 2
				continue
			}
		}
		out = append(out, b[i])
	}
	return out
}
