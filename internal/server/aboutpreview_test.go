package server_test

import (
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/landing/csp"
)

// TestAboutPagePreviewPolicy: the about page a browser is served allows
// its preview's loads and no more: its own inline script and style,
// connections and images of this origin, and images of Hexagon only where
// the proxy redirects the preview's tiles there (a key that opts in to
// redirects, unless TILE_MODE=proxy). The browser test shows that these
// loads succeed; this one pins the policy for every tile mode.
func TestAboutPagePreviewPolicy(t *testing.T) {
	for _, c := range []struct {
		name     string
		tileMode string // TILE_MODE; "" the default
		redirect bool   // the key's record opts in to redirects
		hexagon  bool   // the policy must allow Hexagon's images
	}{
		{"proxied key", "", false, false},
		{"proxied key, TILE_MODE=redirect", "redirect", false, false},
		{"redirecting key", "", true, true},
		{"redirecting key, TILE_MODE=redirect", "redirect", true, true},
		{"redirecting key, TILE_MODE=proxy", "proxy", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var env map[string]string
			if c.tileMode != "" {
				env = map[string]string{"TILE_MODE": c.tileMode}
			}
			h := newHarness(t, env)
			key := h.addKey(keys.Record{Org: "County GIS", Redirect: c.redirect})
			resp, body := h.get(h.proxy.URL+"/about/"+key, map[string]string{"Accept": "text/html"})
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("about page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			policy := resp.Header.Get("Content-Security-Policy")
			img := "img-src 'self' data:;"
			if c.hexagon {
				img = "img-src 'self' data: " + h.upstream.URL + ";"
			}
			for _, want := range []string{"default-src 'none';", "connect-src 'self';", img, "frame-ancestors 'none'"} {
				if !strings.Contains(policy, want) {
					t.Errorf("policy %q lacks %s", policy, want)
				}
			}
			scripts := csp.Inline(body, "script")
			if len(scripts) != 1 || !strings.Contains(policy, "script-src "+csp.Hash(scripts[0])+";") {
				t.Fatalf("policy %q does not allow exactly the page's script", policy)
			}
			for _, want := range []string{`<figure id="preview">`, "function showPreview("} {
				if !strings.Contains(string(body), want) {
					t.Errorf("the page lacks %s", want)
				}
			}
			// The key stands only in the two addresses its holder has.
			if n := strings.Count(string(body), key); n != 2 {
				t.Errorf("the key appears %d times in the page, want 2", n)
			}
			if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
}
