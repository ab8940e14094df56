package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/server"
)

// The request line's string encoder gives what encoding/json reads back
// as the string encoding/json itself would have written (each byte of
// invalid UTF-8 as U+FFFD).
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote\back`, "line\nfeed\ttab\r", "\x00\x1f\x7f", "é – 🗺", "bad\xffutf8", "\u2028\u2029", "</script>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := server.AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as %s: not a JSON string: %v", s, b, err)
		}
		ref, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%q came back as %q, encoding/json's as %q", s, got, want)
		}
		if strings.ContainsAny(string(b[1:len(b)-1]), "\n\r") {
			t.Fatalf("a raw line break in %s", b)
		}
	})
}

// Written directly, a request line honours LOG_SAMPLE and LOG_LEVEL as
// the slog path does, and is one JSON object per line.
func TestRequestLinesHonourSampleAndLevel(t *testing.T) {
	h := newHarness(t, map[string]string{"LOG_SAMPLE": "0.25"})
	for i := 0; i < 8; i++ {
		h.get(h.credURL()+tilePath, nil)
	}
	h.get(h.credURL()+"/1.0.0/nothing", nil) // a 404: never sampled away
	waitForLines(t, h, `"status":404`, 1)
	var ok302, lines int
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %s", l)
		}
		if m["msg"] == "request" {
			lines++
			if m["status"] == 302.0 {
				ok302++
			}
		}
	}
	if ok302 != 2 || lines != 3 {
		t.Fatalf("LOG_SAMPLE=0.25 over 8 redirects and a 404: %d redirect lines, %d in all (want 2 and 3)", ok302, lines)
	}
	quiet := newHarness(t, map[string]string{"LOG_LEVEL": "warn"})
	quiet.get(quiet.credURL()+tilePath, nil)
	if strings.Contains(quiet.logs.String(), `"msg":"request"`) {
		t.Fatalf("LOG_LEVEL=warn logged a successful request:\n%s", quiet.logs.String())
	}
}
