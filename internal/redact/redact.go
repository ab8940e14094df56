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

// String returns s with the value of every name=value pair whose name ends
// in a secret name replaced by "REDACTED". A value ends at '&', white
// space (as RE2's \s: space, \t, \n, \f, \r — not \v), a quote or '<'/'>'. Strings without '=' are returned as they are,
// without allocating: this runs on every log attribute.
func String(s string) string {
	if strings.IndexByte(s, '=') < 0 {
		return s
	}
	var b strings.Builder
	last := 0 // s[:last] has been written to b (when b is in use)
	for i := 0; i < len(s); i++ {
		if s[i] != '=' || !secretBefore(s[:i]) {
			continue
		}
		end := i + 1
		for end < len(s) && !stop(s[end]) {
			end++
		}
		if b.Len() == 0 && last == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last : i+1])
		b.WriteString(replacement)
		last = end
		i = end - 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
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
// string and error attribute.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.IndexByte(s, '=') >= 0 {
			a.Value = slog.StringValue(String(s))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.StringValue(String(err.Error()))
		}
	}
	return a
}
