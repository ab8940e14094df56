// Package csp builds the Content-Security-Policy of a self-contained HTML
// page: one whose only script and style are inline <script> and <style>
// elements, allowed by their SHA-256 hashes, so that no other script (an
// injected one included) can run. The landing page and the about page
// share it.
package csp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
)

// Sources are what a page may load besides its inline script and style.
// Each is a list of CSP source expressions ("'self'", "data:",
// "https://services.hxgncontent.com"); an empty list means 'none'.
type Sources struct {
	Connect []string // connect-src: fetch() and XMLHttpRequest
	Img     []string // img-src; checked on every redirect hop too
}

var (
	scriptRE = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	styleRE  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// Policy returns a policy that allows exactly the inline <script> and
// <style> elements of html (by hash; an element with attributes, such as
// <script src>, is not matched and so not allowed), the loads s names, and
// nothing else: default-src, base-uri and form-action are 'none', and the
// page may not be framed. A page without a script or style gets
// script-src or style-src 'none'. Policy is a pure function, safe for
// concurrent use; a page changes its policy whenever its script or style
// changes, so it is computed from the rendered HTML, never by hand.
func Policy(html []byte, s Sources) string {
	var b strings.Builder
	b.WriteString("default-src 'none'")
	directive(&b, "connect-src", s.Connect)
	directive(&b, "img-src", s.Img)
	directive(&b, "script-src", hashes(scriptRE, html))
	directive(&b, "style-src", hashes(styleRE, html))
	b.WriteString("; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	return b.String()
}

func directive(b *strings.Builder, name string, sources []string) {
	b.WriteString("; " + name)
	if len(sources) == 0 {
		b.WriteString(" 'none'")
	}
	for _, s := range sources {
		b.WriteString(" " + s)
	}
}

func hashes(re *regexp.Regexp, html []byte) []string {
	var out []string
	for _, m := range re.FindAllSubmatch(html, -1) {
		out = append(out, Hash(m[1]))
	}
	return out
}

// Hash returns the CSP hash source of an inline element's content:
// 'sha256-<base64>', with the quotes.
func Hash(content []byte) string {
	sum := sha256.Sum256(content)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Inline returns the contents of html's inline elements named tag
// ("script" or "style"), in order: what Policy hashes. Tests use it to
// check a policy against the page actually served.
func Inline(html []byte, tag string) [][]byte {
	re := scriptRE
	if tag == "style" {
		re = styleRE
	}
	var out [][]byte
	for _, m := range re.FindAllSubmatch(html, -1) {
		out = append(out, bytes.Clone(m[1]))
	}
	return out
}

// Origin returns u's scheme://host[:port] as a source expression, or ""
// unless u is an absolute http(s) URL, without user information, whose
// host is plain enough to write into a policy (no spaces, quotes or
// semicolons that could add a directive).
func Origin(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil {
		return ""
	}
	for _, c := range p.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return ""
		}
	}
	return p.Scheme + "://" + p.Host
}
