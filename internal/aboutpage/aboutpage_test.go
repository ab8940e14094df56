package aboutpage

import (
	"crypto/sha256"
	"encoding/base64"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/landing/csp"
)

func sample() Data {
	return Data{
		Org:       "County of Example",
		Contact:   "gis@example.org",
		Status:    "active",
		Expires:   time.Date(2027, 3, 31, 23, 59, 0, 0, time.FixedZone("CEST", 2*3600)),
		NotBefore: time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC),
		WMTS:      "https://proxy.example/v2/wmts/hxpk-K3y/1.0.0/WMTSCapabilities.xml",
		WMS:       "https://proxy.example/v2/wms/hxpk-K3y",
		Version:   "v9.8.7",
		Usage: &Usage{
			Today: Counts{Requests: 1234, Tiles: 1200, Bytes: 1_500},
			Month: Counts{Requests: 9_876_543, Tiles: 9_000_001, Bytes: 12_345_678_901},
		},
	}
}

func TestRenderShowsTheKey(t *testing.T) {
	html, _ := Render(sample())
	s := string(html)
	for _, want := range []string{
		"<title>County of Example — HexProx API key</title>",
		`<dd id="org">County of Example</dd>`,
		`<dd id="contact">gis@example.org</dd>`,
		`<span id="status" class="badge ok">active</span>`,
		`<dd id="not-before">2 January 2026, 08:00 UTC</dd>`,
		`<dd id="expires">31 March 2027, 21:59 UTC</dd>`, // shown in UTC whatever the zone given
		`<input type="text" id="wmts-url" readonly value="https://proxy.example/v2/wmts/hxpk-K3y/1.0.0/WMTSCapabilities.xml">`,
		`<input type="text" id="wms-url" readonly value="https://proxy.example/v2/wms/hxpk-K3y">`,
		`<label for="wmts-url">`, `<label for="wms-url">`,
		`<button type="button" class="copy" data-target="wmts-url">Copy</button>`,
		`<tr id="usage-today"><th scope="row">Today</th><td>1,234</td><td>1,200</td><td>1.5 kB</td></tr>`,
		`<tr id="usage-month"><th scope="row">This month so far</th><td>9,876,543</td><td>9,000,001</td><td>12.3 GB</td></tr>`,
		"<footer>HexProx v9.8.7</footer>",
		`<dd id="tiles">served through this proxy: no Hexagon token ever reaches you</dd>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	d := sample()
	d.Redirect = true
	if html, _ := Render(d); !strings.Contains(string(html), "redirected to Hexagon with a Hexagon token") {
		t.Error("a redirecting key's page does not say what its holder receives")
	}
	for _, external := range []string{"<script src", `href="http`, `src="http`, "@import", "url(http", ` style="`} {
		if strings.Contains(s, external) {
			t.Errorf("the page must be self-contained and CSP-clean (%s)", external)
		}
	}
}

func TestRenderDefaultsAndProblems(t *testing.T) {
	d := sample()
	d.Org, d.Contact, d.Status, d.Expires, d.NotBefore, d.Usage = "", "", "revoked", time.Time{}, time.Time{}, nil
	html, _ := Render(d)
	s := string(html)
	for _, want := range []string{
		"<title>HexProx API key</title>", "<h1>API key</h1>",
		`<dd id="org">—</dd>`, `<dd id="contact">—</dd>`,
		`<span id="status" class="badge bad">revoked</span>`,
		`<dd id="expires">never</dd>`, `<dd id="not-before">since it was issued</dd>`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if strings.Contains(s, "usage") {
		t.Error("nil Usage must hide the usage section")
	}
	for _, st := range []string{"expired", "not yet valid", "Active", ""} {
		d.Status = st
		html, _ := Render(d)
		if !strings.Contains(string(html), `class="badge bad"`) {
			t.Errorf("status %q not shown as a problem", st)
		}
	}
}

func TestRenderEscapes(t *testing.T) {
	d := sample()
	d.Org = `<script>alert("org")</script>`
	d.Contact = `"><img src=x onerror=alert(1)>`
	d.Status = `<b>active</b>`
	d.WMTS = `https://p.example/v2/wmts/k" autofocus onfocus="alert(1)`
	d.WMS = "javascript:alert(1)"
	d.Version = "</footer><script>x()</script>"
	html, policy := Render(d)
	s := string(html)
	if n := strings.Count(s, "<script"); n != 1 {
		t.Errorf("%d script elements; only the page's own may exist:\n%s", n, s)
	}
	for _, bad := range []string{"<img", `" autofocus`, "<b>", "</footer><script>"} {
		if strings.Contains(s, bad) {
			t.Errorf("unescaped %q in the page", bad)
		}
	}
	if !strings.Contains(s, "&lt;script&gt;alert(&#34;org&#34;)&lt;/script&gt;") {
		t.Error("organisation not shown escaped")
	}
	// A hostile value cannot add a hash of its own: the policy still names exactly one script.
	if strings.Count(policy, "'sha256-") != 2 {
		t.Errorf("policy %q", policy)
	}
}

func TestPolicyMatchesInlineScriptAndStyle(t *testing.T) {
	html, policy := Render(sample())
	re := regexp.MustCompile(`(?s)<(script|style)>(.*?)</(?:script|style)>`)
	ms := re.FindAllStringSubmatch(string(html), -1)
	if len(ms) != 2 {
		t.Fatalf("want one inline script and one style, found %d", len(ms))
	}
	for _, m := range ms {
		sum := sha256.Sum256([]byte(m[2]))
		want := m[1] + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(policy, want) {
			t.Errorf("policy %q lacks %s", policy, want)
		}
	}
	// An active key's page loads its preview from this origin, and only from it.
	for _, want := range []string{"default-src 'none'", "connect-src 'self';", "img-src 'self' data:;", "frame-ancestors 'none'"} {
		if !strings.Contains(policy, want) {
			t.Errorf("policy %q lacks %s", policy, want)
		}
	}
	// The shared helper agrees.
	if len(csp.Inline(html, "script")) != 1 {
		t.Error("csp.Inline does not see the script")
	}
}

// TestPreviewOnlyForAnActiveKey: an active key's page loads a preview
// through its own addresses, allowed by its policy; any other key's page
// has none, and its policy allows no load at all.
func TestPreviewOnlyForAnActiveKey(t *testing.T) {
	d := sample()
	html, policy := Render(d, "http://127.0.0.1:9090/streaming", "https://h.example; script-src *", "h.example")
	s := string(html)
	for _, want := range []string{`<figure id="preview">`, `<div id="tiles" class="tiles"></div>`, "function previewTiles(", "function showPreview(", "loadPreview(", ".tiles img"} {
		if !strings.Contains(s, want) {
			t.Errorf("an active key's page lacks %s", want)
		}
	}
	if want := "img-src 'self' data: http://127.0.0.1:9090;"; !strings.Contains(policy, want) {
		t.Errorf("policy %q lacks %s: only the tile origins that are origins", policy, want)
	}
	if strings.Count(policy, "script-src") != 1 || !strings.Contains(policy, "connect-src 'self';") {
		t.Errorf("policy %q", policy)
	}
	// The script reads the key's address from the page: the key stands
	// only in the two addresses its holder already has.
	if n := strings.Count(s, "hxpk-K3y"); n != 2 {
		t.Errorf("the key appears %d times in the page, want 2 (the WMTS and WMS addresses)", n)
	}

	for _, st := range []string{"revoked", "expired", "not yet valid", ""} {
		d := sample()
		d.Status = st
		html, policy := Render(d, "http://127.0.0.1:9090")
		if s := string(html); strings.Contains(s, `id="preview"`) || strings.Contains(s, "fetch(") || strings.Contains(s, "showPreview") {
			t.Errorf("a %q key's page has a preview", st)
		}
		for _, want := range []string{"connect-src 'none';", "img-src data:;"} {
			if !strings.Contains(policy, want) {
				t.Errorf("a %q key's policy %q lacks %s", st, policy, want)
			}
		}
	}
	d.WMTS = ""
	if html, _ := Render(d); strings.Contains(string(html), `id="preview"`) {
		t.Error("a page without a WMTS address has a preview")
	}
}

// TestDataHoldsNoCredential: the page cannot show a client ID, secret or
// token, because Data has nowhere to put one. A new field must be a
// string, time, count, flag or the usage, and not named for a credential.
func TestDataHoldsNoCredential(t *testing.T) {
	forbidden := regexp.MustCompile(`(?i)secret|client|token|credential|password|sets?$|^key$`)
	allowed := map[reflect.Type]bool{
		reflect.TypeOf(""): true, reflect.TypeOf(time.Time{}): true, reflect.TypeOf(int64(0)): true, reflect.TypeOf(false): true,
		reflect.TypeOf(&Usage{}): true, reflect.TypeOf(Counts{}): true,
	}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for i := range ty.NumField() {
			f := ty.Field(i)
			if forbidden.MatchString(f.Name) {
				t.Errorf("%s.%s is named for a credential", ty.Name(), f.Name)
			}
			if !allowed[f.Type] {
				t.Errorf("%s.%s has type %s, which could carry anything", ty.Name(), f.Name, f.Type)
			}
			switch f.Type {
			case reflect.TypeOf(&Usage{}):
				walk(f.Type.Elem())
			case reflect.TypeOf(Counts{}):
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeOf(Data{}))
}
