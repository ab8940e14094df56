// Package landing is the page at "/": a self-contained form that builds a
// user's WMTS and WMS addresses in the browser and checks them through the
// proxy. It is embedded in the binary and rendered once, at start.
package landing

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"regexp"
)

//go:embed index.html
var source string

var page = template.Must(template.New("landing").Parse(source))

// Page is the rendered landing page and the headers it must be served with.
type Page struct {
	HTML []byte
	// CSP allows exactly the page's own inline script and style (by hash)
	// and requests to this origin; nothing from elsewhere.
	CSP string
}

var (
	scriptRE = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	styleRE  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// Render renders the page for version.
func Render(version string) Page {
	var b bytes.Buffer
	if err := page.Execute(&b, struct{ Version string }{version}); err != nil {
		panic(err) // the template is fixed; only a bug gets here
	}
	html := b.Bytes()
	csp := "default-src 'none'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	for _, m := range scriptRE.FindAllSubmatch(html, -1) {
		csp += "; script-src " + hash(m[1])
	}
	for _, m := range styleRE.FindAllSubmatch(html, -1) {
		csp += "; style-src " + hash(m[1])
	}
	return Page{HTML: html, CSP: csp}
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// EncodingScript returns the page's credential-encoding function, for
// tests that run it outside a browser.
func EncodingScript() string {
	start := bytes.Index([]byte(source), []byte("// --- encoding:"))
	end := bytes.Index([]byte(source), []byte("// --- end encoding ---"))
	if start < 0 || end < start {
		return ""
	}
	return source[start:end]
}
