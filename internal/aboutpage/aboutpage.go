// Package aboutpage renders the browser page of /about/{key}: what an API
// key is for (organisation, contact, status, validity), its WMTS and WMS
// addresses with copy buttons, a preview of its imagery while it is
// active, optionally its own usage, and the version. The page is
// self-contained, like the landing page, and served with a hash-based
// CSP. It never shows a credential: Data has no field that could hold one.
package aboutpage

import (
	"bytes"
	_ "embed"
	"html/template"
	"time"

	"github.com/hexprox/hexprox/internal/humanize"
	"github.com/hexprox/hexprox/internal/landing/csp"
	"github.com/hexprox/hexprox/internal/landing/preview"
)

// Data is what the page shows. Every string is escaped by html/template,
// so any value (an organisation named "<script>…") is safe. The key
// itself appears only inside WMTS and WMS, the addresses its holder
// already has.
type Data struct {
	Org     string // the record's organisation; "" shows a generic title
	Contact string // the record's contact; "" shows a dash
	// Status is the key's lifecycle status as keys.Status.String gives it:
	// "active" is shown as good, anything else ("revoked", "expired",
	// "not yet valid") as a problem.
	Status    string
	Expires   time.Time // zero: never
	NotBefore time.Time // zero: valid since issued
	WMTS      string    // the key's WMTS capabilities address
	WMS       string    // the key's WMS address
	Version   string    // HexProx's version, in the footer
	// Origins are the web map origins the key alone serves, comma
	// separated; "" means the proxy's allowed origins.
	Origins string
	// Redirect says the key's desktop tiles are redirected to Hexagon
	// with its token (keys.Record.Redirect), which the page says plainly.
	Redirect bool
	// Orders says the key uses Hexagon's batch services (keys.Orders),
	// whose lower rate limit its holder must respect.
	Orders bool
	// Provider is the title of the key's provider when it is not Hexagon
	// ("Planet Basemaps"); "" is Hexagon.
	Provider string
	Usage    *Usage // nil hides the usage section
}

// Previewed reports whether the page shows a preview of the key's
// imagery: only for an active key with a WMTS address. The preview is the
// landing page's (package preview), loaded by the page's script through
// the WMTS address: its capabilities, then a few tiles of its first layer.
// An inactive key's page has no preview, and its policy allows no
// connection and no image but data:, so it loads nothing at all.
func (d Data) Previewed() bool { return d.Status == "active" && d.WMTS != "" }

// Usage is one key's own counts, in UTC calendar periods.
type Usage struct {
	Today Counts // since 00:00 UTC
	Month Counts // since the 1st of this month, 00:00 UTC, today included
}

// Counts are totals over a period. Tiles counts tiles and maps served,
// redirected or streamed; Bytes counts only streamed bytes (redirected
// tiles never pass through the proxy).
type Counts struct {
	Requests, Tiles, Bytes int64
}

//go:embed about.html
var source string

var page = template.Must(template.New("about").Funcs(preview.Funcs()).Funcs(template.FuncMap{
	"statusClass": func(s string) string {
		if s == "active" {
			return "ok"
		}
		return "bad"
	},
	"when":  func(t time.Time) string { return t.UTC().Format("2 January 2006, 15:04 UTC") },
	"count": humanize.Thousands,
	"size":  humanize.Bytes,
}).Parse(source))

// Render returns the page for d and the Content-Security-Policy it must
// be served with: only its own inline script and style (by hash) and a
// data: favicon; no framing; and, when d.Previewed, connections and images
// of this origin (the key's capabilities and tiles) and images of
// tileOrigins. Pass Hexagon's origin (HEXAGON_URL) as tileOrigins when
// the proxy answers the preview's tiles, plain <img> requests without an
// Origin header, with a redirect to Hexagon (a key whose record opts in
// to redirects, unless TILE_MODE=proxy); only each one's
// scheme://host[:port] is used, and one that is not an absolute http(s)
// URL is ignored (see csp.Origin). Without a preview the policy allows no
// connection and no image but data:, whatever tileOrigins says.
//
// Serve the page with Referrer-Policy: no-referrer and Cache-Control:
// no-store, since the addresses hold the key. Render is safe for
// concurrent use; it panics only on a bug in the embedded template.
func Render(d Data, tileOrigins ...string) (html []byte, policy string) {
	var b bytes.Buffer
	if err := page.Execute(&b, d); err != nil {
		panic(err) // the template is fixed; only a bug gets here
	}
	html = b.Bytes()
	src := csp.Sources{Img: []string{"data:"}}
	if d.Previewed() {
		src = csp.Sources{Connect: []string{"'self'"}, Img: []string{"'self'", "data:"}}
		for _, o := range tileOrigins {
			if o := csp.Origin(o); o != "" {
				src.Img = append(src.Img, o)
			}
		}
	}
	return html, csp.Policy(html, src)
}
