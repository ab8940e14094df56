// Package landing is the page at "/": a self-contained form that builds a
// user's WMTS and WMS addresses in the browser, from a Hexagon client ID
// and secret or from an API key, checks them through the proxy, and shows
// a few tiles of the imagery. It is embedded in the binary and rendered
// once, at start.
package landing

import (
	"bytes"
	_ "embed"
	"html/template"

	"github.com/hexprox/hexprox/internal/landing/csp"
	"github.com/hexprox/hexprox/internal/landing/preview"
)

//go:embed index.html
var source string

var page = template.Must(template.New("landing").Funcs(preview.Funcs()).Parse(source))

// Page is the rendered landing page and the headers it must be served with.
type Page struct {
	HTML []byte
	// CSP allows exactly the page's own inline script and style (by hash),
	// fetches from this origin, and images from this origin and the
	// imageOrigins given to Render; nothing else.
	CSP string
}

// Render renders the page for version. It panics only on a bug in the
// embedded template.
//
// imageOrigins are the origins the preview's tiles may come from besides
// this one: pass Hexagon's (scheme://host[:port] of HEXAGON_URL). The
// preview is a set of plain <img> elements pointing at the proxy's own
// tile URLs. An <img> GET carries no Origin header, so the proxy treats it
// as a desktop client and answers with a 302 to Hexagon, and the CSP
// checks img-src on every redirect hop: without Hexagon's origin here the
// browser blocks the tiles (with TILE_MODE=proxy they come from this
// origin and need nothing). A fetch() could not do better: a same-origin
// GET fetch carries no Origin either, follows the same 302, and then
// fails CORS at Hexagon, which sends no CORS headers. The image path
// keeps imagery off the proxy, as for every desktop client; the page's
// Referrer-Policy (no-referrer) keeps the proxy URL, which holds the
// credential, out of Hexagon's logs. Each entry may be a whole URL
// (HEXAGON_URL as configured): only its scheme://host[:port] is used, and
// an entry that is not an absolute http(s) URL is ignored. No origins means img-src 'self'
// data:, and the preview reports that its tiles did not load.
func Render(version string, imageOrigins ...string) Page {
	var b bytes.Buffer
	if err := page.Execute(&b, struct{ Version string }{version}); err != nil {
		panic(err) // the template is fixed; only a bug gets here
	}
	html := b.Bytes()
	img := []string{"'self'", "data:"}
	for _, o := range imageOrigins {
		if o := csp.Origin(o); o != "" {
			img = append(img, o)
		}
	}
	return Page{HTML: html, CSP: csp.Policy(html, csp.Sources{Connect: []string{"'self'"}, Img: img})}
}

func section(startMark, endMark string) string {
	start := bytes.Index([]byte(source), []byte(startMark))
	end := bytes.Index([]byte(source), []byte(endMark))
	if start < 0 || end < start {
		return ""
	}
	return source[start:end]
}
