// Package redact keeps secrets out of logs: it scrubs credentials and
// tokens from strings (URLs, error texts) and provides a slog option that
// applies the scrub to every attribute.
package redact

import (
	"log/slog"
	"regexp"
)

// secretParam matches the value of a query parameter that carries a secret.
var secretParam = regexp.MustCompile(`(?i)((?:access_token|client_secret|client_id|token|sig|key)=)[^&\s"'<>]*`)

// String returns s with the values of access_token, client_secret,
// client_id and similar parameters replaced by "REDACTED".
func String(s string) string {
	return secretParam.ReplaceAllString(s, "${1}REDACTED")
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that scrubs every
// string and error attribute.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(String(a.Value.String()))
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			a.Value = slog.StringValue(String(err.Error()))
		}
	}
	return a
}
