package redact

import (
	"errors"
	"log/slog"
	"regexp"
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

// reference is the plain statement of the rule: String must agree with it.
var reference = regexp.MustCompile(`(?i)((?:access_token|client_secret|client_id|token|sig|key)=)[^&\s"'<>]*`)

func FuzzStringMatchesReference(f *testing.F) {
	for _, s := range []string{"a=b", "x?access_token=abc&y=1", "TOKEN=", "keykey=v w", `"sig=1"`, "client_id=a&client_secret=b", "no equals"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Parameter names are ASCII; Go's (?i) also folds Unicode look-alikes
		// (the Kelvin sign matches k), which String deliberately does not.
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return
			}
		}
		want := reference.ReplaceAllString(s, "${1}REDACTED")
		if got := String(s); got != want {
			t.Fatalf("String(%q) = %q, reference %q", s, got, want)
		}
	})
}

func BenchmarkString(b *testing.B) {
	s := "SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=HxGN_Imagery&TILEROW=10&access_token=abc&FORMAT=image%2Fjpeg"
	b.ReportAllocs()
	for b.Loop() {
		String(s)
	}
}
