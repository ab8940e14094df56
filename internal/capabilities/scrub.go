package capabilities

import (
	"bytes"
	"net/url"
	"strings"
)

// minContained is the length from which a secret is also found inside a
// longer word or value: a random string that long never occurs by
// accident, while a short one ("1", "0") is part of every version number
// and coordinate.
const minContained = 8

// scrubber replaces secrets in a capabilities document's attribute
// values, text, comments, directives and processing instructions (never
// in element or attribute names). A secret of at least minContained bytes
// is replaced wherever it occurs in them. A shorter one is looked for only
// in the query part of a URL (after '?', up to white space, '#', a quote,
// '<' or '>'), so that a token "1" cannot corrupt version="1.0.0" or a
// URL's path.
//
// In a query, each '&'-separated parameter's name and value (or the whole
// parameter if it has no '=') is checked as written and percent-decoded.
// It holds a secret if it equals the secret, if one of its words equals
// it (a word is a run of RFC 6750 b64token characters, A-Z a-z 0-9
// - . _ ~ + /, followed by any '='s), or, for a secret of at least
// minContained bytes, if it contains it. A part that holds a secret is
// replaced whole by "REDACTED".
type scrubber []string

// scrub returns s with its secrets replaced, and whether it changed
// anything.
func (sc scrubber) scrub(s string) (string, bool) {
	out, changed := sc.scrubQueries(s)
	for _, secret := range sc {
		if len(secret) >= minContained && strings.Contains(out, secret) {
			out, changed = strings.ReplaceAll(out, secret, "REDACTED"), true
		}
	}
	return out, changed
}

// scrubQueries returns s with secrets in URL queries replaced, and
// whether it changed anything. Without secrets or without a '?' it
// returns s.
func (sc scrubber) scrubQueries(s string) (string, bool) {
	if len(sc) == 0 || strings.IndexByte(s, '?') < 0 {
		return s, false
	}
	var b strings.Builder
	last := 0 // s[:last] is in b
	for i := 0; i < len(s); i++ {
		if s[i] != '?' {
			continue
		}
		end := i + 1
		for end < len(s) && !queryEnd(s[end]) {
			end++
		}
		// Parameters of s[i+1:end].
		for p := i + 1; p <= end; {
			q := strings.IndexByte(s[p:end], '&')
			if q < 0 {
				q = end - p
			}
			pairEnd := p + q
			parts := [][2]int{{p, pairEnd}}
			if eq := strings.IndexByte(s[p:pairEnd], '='); eq >= 0 {
				parts = [][2]int{{p, p + eq}, {p + eq + 1, pairEnd}}
			}
			for _, r := range parts {
				if sc.holds(s[r[0]:r[1]]) {
					b.WriteString(s[last:r[0]])
					b.WriteString("REDACTED")
					last = r[1]
				}
			}
			p = pairEnd + 1
		}
		i = end - 1 // the loop's i++ lands on the terminator, which is no '?'
	}
	if last == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// scrubBytes is scrub for raw token bytes; it allocates only for text
// with a '?' or a long secret.
func (sc scrubber) scrubBytes(b []byte) (string, bool) {
	if len(sc) == 0 || bytes.IndexByte(b, '?') < 0 && !sc.containsLong(b) {
		return "", false
	}
	return sc.scrub(string(b))
}

// containsLong reports whether b contains a secret of at least
// minContained bytes.
func (sc scrubber) containsLong(b []byte) bool {
	for _, secret := range sc {
		if len(secret) >= minContained && bytes.Contains(b, []byte(secret)) {
			return true
		}
	}
	return false
}

func queryEnd(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', '#', '"', '\'', '<', '>':
		return true
	}
	return false
}

// holds reports whether a query part holds a secret, as written or
// percent-decoded.
func (sc scrubber) holds(part string) bool {
	if part == "" {
		return false
	}
	if sc.holdsText(part) {
		return true
	}
	if strings.ContainsAny(part, "%+") {
		if dec, err := url.QueryUnescape(part); err == nil && sc.holdsText(dec) {
			return true
		}
	}
	return false
}

func (sc scrubber) holdsText(s string) bool {
	for _, secret := range sc {
		switch {
		case secret == "":
		case s == secret:
			return true
		case len(secret) >= minContained && strings.Contains(s, secret):
			return true
		case len(secret) <= len(s) && hasWord(s, secret):
			return true
		}
	}
	return false
}

// hasWord reports whether one of s's b64token words equals w.
func hasWord(s, w string) bool {
	for i := 0; i < len(s); {
		if !b64token(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && b64token(s[j]) {
			j++
		}
		for j < len(s) && s[j] == '=' {
			j++
		}
		if s[i:j] == w {
			return true
		}
		i = j
	}
	return false
}

func b64token(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}
