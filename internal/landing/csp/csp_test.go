package csp

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestPolicyHashesEachInlineElement(t *testing.T) {
	html := []byte("<style>a{}</style><p>x</p><script>one()</script><script src=\"/evil.js\"></script><script>two()</script>")
	p := Policy(html, Sources{Connect: []string{"'self'"}, Img: []string{"'self'", "data:", "https://tiles.example"}})
	sum := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
	}
	for _, want := range []string{
		"default-src 'none'",
		"connect-src 'self';",
		"img-src 'self' data: https://tiles.example;",
		"script-src " + sum("one()") + " " + sum("two()") + ";",
		"style-src " + sum("a{}") + ";",
		"base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("policy %q lacks %q", p, want)
		}
	}
	// One directive per name: browsers ignore a repeated one.
	for _, d := range []string{"script-src", "style-src", "img-src", "connect-src"} {
		if n := strings.Count(p, d); n != 1 {
			t.Errorf("%s appears %d times in %q", d, n, p)
		}
	}
	if strings.Contains(p, "evil") {
		t.Errorf("an external script leaked into the policy: %q", p)
	}
}

func TestPolicyWithNothingAllowed(t *testing.T) {
	p := Policy([]byte("<p>static</p>"), Sources{})
	for _, want := range []string{"connect-src 'none'", "img-src 'none'", "script-src 'none'", "style-src 'none'"} {
		if !strings.Contains(p, want) {
			t.Errorf("policy %q lacks %q", p, want)
		}
	}
}

func TestInline(t *testing.T) {
	html := []byte("<script>a</script><style>b</style><script>c</script>")
	got := Inline(html, "script")
	if len(got) != 2 || string(got[0]) != "a" || string(got[1]) != "c" {
		t.Fatalf("scripts %q", got)
	}
	if s := Inline(html, "style"); len(s) != 1 || string(s[0]) != "b" {
		t.Fatalf("styles %q", s)
	}
	if Hash([]byte("a")) != "'sha256-ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs='" {
		t.Fatalf("Hash(a) = %s", Hash([]byte("a")))
	}
}
