package redact

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	in := `GET https://h/streaming/wmts?/1.0.0/a.jpg&access_token=abc123&x=1 and /token?client_id=me&CLIENT_SECRET=s%2B3 "access_token=q"`
	out := String(in)
	for _, s := range []string{"abc123", "s%2B3", "=me", "=q\""} {
		if strings.Contains(out, s) {
			t.Errorf("%q survived: %s", s, out)
		}
	}
	if !strings.Contains(out, "&x=1") || !strings.Contains(out, "access_token=REDACTED") {
		t.Errorf("scrubbed too much or wrongly: %s", out)
	}
}

func TestReplaceAttr(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}))
	log.Info("x", "url", "https://h/?access_token=tok1", "err", errors.New(`Get "https://h/?client_secret=sec1": EOF`))
	if strings.Contains(b.String(), "tok1") || strings.Contains(b.String(), "sec1") {
		t.Fatalf("leaked: %s", b.String())
	}
}
