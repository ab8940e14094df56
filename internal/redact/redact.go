// Package redact keeps secrets out of logs: it scrubs credentials and
// tokens from strings (URLs, error texts) and provides a slog option that
// applies the scrub to every attribute.
package redact

import (
	"log/slog"
	"strings"
)

// secretNames are parameter-name endings whose values are secrets
// (compared case-insensitively): access_token, client_secret, client_id,
// token, sig, key — and anything ending in them.
var secretNames = []string{"token", "client_secret", "client_id", "sig", "key"}

const replacement = "REDACTED"

// String returns s with the value of every secret pair replaced by
// "REDACTED". A secret pair is a name ending in a secret name (see
// secretNames), then either '=' or, JSON style, a closing quote, optional
// spaces, ':' and optional spaces; then the value:
//
//   - quoted, '…' or "…", as in PartitionKey='…' (OData) or key="…" (%q):
//     the value runs to the closing quote; a backslash escapes the next
//     byte and a doubled quote stands for one. The quotes are kept:
//     key='REDACTED'. An unclosed value runs to the end of s.
//   - quoted with escaped quotes, key=\"…\" (a quoted string inside an
//     error text): the value runs to the next \" (or \'), kept likewise.
//   - after '=' only, bare: the value ends at '&', white space (as RE2's
//     \s: space, \t, \n, \f, \r — not \v), a quote or '<'/'>'.
//
// Strings without '=' or ':' are returned as they are, and strings without
// a secret pair are returned without allocating: this runs on every log
// attribute. String is safe for concurrent use.
func String(s string) string {
	if strings.IndexByte(s, '=') < 0 && strings.IndexByte(s, ':') < 0 {
		return s
	}
	var b strings.Builder
	last := 0 // s[:last] has been written to b (when b is in use)
	for i := 0; i < len(s); i++ {
		var open, end, close int // the value is s[open:end]; s[end:close] its closing quote
		switch s[i] {
		case '=':
			if !secretBefore(s[last:i]) { // a name never reaches into a scrubbed value
				continue
			}
			open, end, close = value(s, i+1)
		case ':':
			j, ok := jsonName(s[last:i])
			if !ok || !secretBefore(s[last:last+j]) {
				continue
			}
			k := i + 1
			for k < len(s) && s[k] == ' ' {
				k++
			}
			if k == len(s) || s[k] != '"' && s[k] != '\'' {
				continue
			}
			open, end, close = value(s, k)
		default:
			continue
		}
		if last == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:open])
		b.WriteString(replacement)
		b.WriteString(s[end:close])
		last = close
		i = close - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// jsonName reports whether prefix (what precedes a ':') ends in a quoted
// name's closing quote and optional spaces, and returns where that quote
// is: the name ends there.
func jsonName(prefix string) (int, bool) {
	j := len(prefix)
	for j > 0 && prefix[j-1] == ' ' {
		j--
	}
	if j == 0 || prefix[j-1] != '"' && prefix[j-1] != '\'' {
		return 0, false
	}
	return j - 1, true
}

// value finds the value starting at s[i]: its bytes are s[open:end] and
// its closing quote (if any) s[end:close].
func value(s string, i int) (open, end, close int) {
	switch {
	case i < len(s) && (s[i] == '"' || s[i] == '\''):
		q := s[i]
		k := i + 1
		for k < len(s) {
			switch {
			case s[k] == '\\' && k+1 < len(s):
				k += 2
				continue
			case s[k] == '\\':
				return i + 1, k, k // a lone trailing backslash is not part of it
			case s[k] == q && k+1 < len(s) && s[k+1] == q:
				k += 2
				continue
			case s[k] == q:
				return i + 1, k, k + 1
			}
			k++
		}
		return i + 1, len(s), len(s)
	case i+1 < len(s) && s[i] == '\\' && (s[i+1] == '"' || s[i+1] == '\''):
		q := s[i+1]
		k := i + 2
		for k < len(s) {
			if s[k] == '\\' {
				switch {
				case k+1 < len(s) && s[k+1] == q:
					return i + 2, k, k + 2
				case k+1 < len(s):
					k += 2
					continue
				}
				return i + 2, k, k
			}
			k++
		}
		return i + 2, len(s), len(s)
	}
	k := i
	for k < len(s) && !stop(s[k]) {
		k++
	}
	return i, k, k
}

// secretBefore reports whether the name just before a '=' ends in a
// secret name.
func secretBefore(prefix string) bool {
	for _, n := range secretNames {
		if len(prefix) >= len(n) && strings.EqualFold(prefix[len(prefix)-len(n):], n) {
			return true
		}
	}
	return false
}

func stop(c byte) bool {
	switch c {
	case '&', ' ', '\t', '\n', '\r', '\f', '"', '\'', '<', '>':
		return true
	}
	return false
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that scrubs every
// string and error attribute with String.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.IndexByte(s, '=') >= 0 || strings.IndexByte(s, ':') >= 0 {
			a.Value = slog.StringValue(String(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.StringValue(String(err.Error()))
		}
	}
	return a
}

// Values returns s with every occurrence of each of values, in any case
// (API keys are case-insensitive, and over-redacting a token costs
// nothing), replaced by with, for text that carries a known secret
// outside a name=value pair: a panic's value, a store's error naming a
// key. Empty values are skipped; values are replaced in the order given,
// so a longer one that holds a shorter should come first. It is the one
// scrubber for known secrets in text; String is the one for unknown ones
// (capabilities documents have their own, which knows XML).
func Values(s, with string, values ...string) string {
	for _, v := range values {
		if v == "" {
			continue
		}
		i := indexFold(s, v)
		if i < 0 {
			continue
		}
		var b strings.Builder
		for i >= 0 {
			b.WriteString(s[:i])
			b.WriteString(with)
			s = s[i+len(v):]
			i = indexFold(s, v)
		}
		b.WriteString(s)
		s = b.String()
	}
	return s
}

// indexFold is strings.Index under case folding.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
