// Package wmts parses the WMTS requests HexProx accepts (capabilities and
// tiles, in the REST and KVP forms) and builds the matching Hexagon URLs.
// Every value that reaches an upstream URL has been validated here; the
// upstream host is never taken from a request.
package wmts

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/ows"
)

// ServicePath is the WMTS endpoint below the Hexagon base URL, and
// OrdersPath its batch twin for bulk and machine-learning loads.
const (
	ServicePath = "/streaming/wmts"
	OrdersPath  = "/orders/wmts"
)

// Kind is what a request asks for.
type Kind int

const (
	Capabilities Kind = iota
	Tile
)

// Request is a parsed WMTS request.
type Request struct {
	Kind Kind
	KVP  bool     // the client used the KVP form
	Tile TileSpec // for Kind Tile
}

// TileSpec names one tile. All fields are validated identifiers or
// numbers, safe to place in a URL.
type TileSpec struct {
	Layer, Style, MatrixSet string
	Matrix, Row, Col        int
	Ext                     string // lower case: jpg, jpeg, png, txt, html, gml, xxx
}

// formats maps REST extensions to media types (for KVP FORMAT).
var formats = map[string]string{
	"jpg":  "image/jpeg",
	"jpeg": "image/jpeg",
	"png":  "image/png",
	// Feature-info style resources the original HexProx let through.
	"txt":  "text/plain",
	"html": "text/html",
	"gml":  "application/gml+xml",
	"xxx":  "application/octet-stream",
}

var extByFormat = map[string]string{
	"image/jpeg": "jpg",
	"image/jpg":  "jpg",
	"image/png":  "png",
}

// MaxMatrix is the deepest tile matrix accepted.
const MaxMatrix = 30

// Parse parses what follows the credential in a WMTS URL: rest is the
// escaped path ("" or starting with "/") and rawQuery the query string.
// Query parameter names are case-insensitive; access_token and unknown
// parameters are ignored (the proxy's own token always wins). The query is
// read (with ows.Params and its limits) only for the KVP form, the only
// one that uses it: a REST request's query is ignored whatever it holds.
func Parse(rest, rawQuery string) (Request, error) {
	return parse(rest, func() (ows.Query, error) { return ows.Params(rawQuery) })
}

// ParseQuery is Parse for a caller that has already parsed the query with
// ows.Params, giving its result: q (not modified; nil is an empty query)
// and qErr, which only the KVP form, the one that reads the query,
// returns.
func ParseQuery(rest string, q ows.Query, qErr error) (Request, error) {
	return parse(rest, func() (ows.Query, error) { return q, qErr })
}

func parse(rest string, query func() (ows.Query, error)) (Request, error) {
	var buf [maxSegments]string // a tile's segments, without a heap slice
	segs, err := segments(rest, buf[:0])
	if err != nil {
		return Request{}, err
	}
	switch {
	case len(segs) == 0, len(segs) == 1 && segs[0] == "1.0.0":
		p, err := query()
		if err != nil {
			return Request{}, err
		}
		return parseKVP(p)
	case len(segs) == 2 && segs[0] == "1.0.0" && strings.EqualFold(segs[1], "WMTSCapabilities.xml"):
		return Request{Kind: Capabilities}, nil
	case len(segs) == 7 && segs[0] == "1.0.0":
		t, err := parseRESTTile(segs[1:])
		return Request{Kind: Tile, Tile: t}, err
	}
	return Request{}, errNoResource()
}

// maxSegments is the most path segments any WMTS resource has (a tile).
const maxSegments = 7

func errNoResource() error {
	return &failure.Error{Kind: failure.NotFound, Message: "no such WMTS resource; expected /1.0.0/WMTSCapabilities.xml, a tile path /1.0.0/{layer}/{style}/{tileMatrixSet}/{tileMatrix}/{tileRow}/{tileCol}.{ext}, or KVP parameters"}
}

// segments splits and percent-decodes an escaped path into out, refusing
// anything that could change its meaning once decoded.
func segments(rest string, out []string) ([]string, error) {
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return nil, nil
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.Count(rest, "/") >= maxSegments {
		// Longer than any resource: refused before splitting, so a path
		// of many thousand segments costs one pass over its bytes.
		return nil, errNoResource()
	}
	for more := true; more; {
		var s string
		s, rest, more = strings.Cut(rest, "/")
		v, err := s, error(nil)
		if strings.IndexByte(s, '%') >= 0 { // most paths have nothing to unescape
			v, err = url.PathUnescape(s)
		}
		if err != nil || v == "" || v == "." || v == ".." || !plainSegment(v) {
			return nil, failure.Invalidf(failure.CodeInvalidParameter, "", "the path has an empty, encoded, dot or control-character segment")
		}
		out = append(out, v)
	}
	return out, nil
}

// plainSegment reports whether a decoded segment holds no slash,
// backslash or control character.
func plainSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '/' || c == '\\' {
			return false
		}
	}
	return true
}

func parseRESTTile(s []string) (TileSpec, error) {
	col, ext, ok := strings.Cut(s[5], ".")
	if !ok {
		return TileSpec{}, failure.Invalidf(failure.CodeInvalidParameter, "Format", "the tile path must end in {tileCol}.{extension}")
	}
	ext = strings.ToLower(ext)
	if _, ok := formats[ext]; !ok {
		return TileSpec{}, failure.Invalidf(failure.CodeInvalidFormat, "Format", "unsupported tile extension; use jpg, jpeg or png")
	}
	return tile(s[0], s[1], s[2], s[3], s[4], col, ext)
}

// tile validates the parts of a tile request.
func tile(layer, style, set, matrix, row, col, ext string) (TileSpec, error) {
	t := TileSpec{Layer: layer, Style: style, MatrixSet: set, Ext: ext}
	for _, p := range []struct{ name, v string }{{"Layer", layer}, {"Style", style}, {"TileMatrixSet", set}} {
		if !ows.Identifier(p.v) {
			return TileSpec{}, failure.Invalidf(failure.CodeInvalidParameter, p.name, "%s must be 1-128 letters, digits, '_', '-', '.' or ':'", p.name)
		}
	}
	var err error
	if t.Matrix, err = index("TileMatrix", matrix, MaxMatrix); err != nil {
		return TileSpec{}, err
	}
	if t.Row, err = index("TileRow", row, 1<<30); err != nil {
		return TileSpec{}, err
	}
	if t.Col, err = index("TileCol", col, 1<<30); err != nil {
		return TileSpec{}, err
	}
	if googleGrid(set) {
		n := 1 << t.Matrix
		if t.Row >= n {
			return TileSpec{}, failure.Invalidf(failure.CodeTileOutOfRange, "TileRow", "TileRow must be below %d at TileMatrix %d", n, t.Matrix)
		}
		if t.Col >= n {
			return TileSpec{}, failure.Invalidf(failure.CodeTileOutOfRange, "TileCol", "TileCol must be below %d at TileMatrix %d", n, t.Matrix)
		}
	}
	return t, nil
}

// googleGrid reports whether set is a Google-compatible quadtree, where
// row and column must stay below 2^matrix.
func googleGrid(set string) bool {
	for _, g := range googleGrids {
		if strings.EqualFold(set, g) {
			return true
		}
	}
	return false
}

var googleGrids = [...]string{"WebMercator", "GoogleMapsCompatible", "EPSG:3857", "EPSG:900913"}

func index(name, v string, limit int) (int, error) {
	if v == "" || len(v) > 10 || !digits(v) {
		return 0, failure.Invalidf(failure.CodeInvalidParameter, name, "%s must be a whole number of at least 0", name)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n > limit {
		return 0, failure.Invalidf(failure.CodeTileOutOfRange, name, "%s is out of range", name)
	}
	return n, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseKVP(p ows.Query) (Request, error) {
	if s, ok := p["SERVICE"]; ok && !strings.EqualFold(s, "WMTS") {
		return Request{}, failure.Invalidf(failure.CodeInvalidParameter, "SERVICE", "SERVICE must be WMTS")
	}
	req, ok := p["REQUEST"]
	switch {
	case !ok, strings.EqualFold(req, "GetCapabilities"):
		// A bare credential URL is a capabilities request: that is what
		// someone pasting it into a browser or a client expects.
		return Request{Kind: Capabilities, KVP: true}, nil
	case strings.EqualFold(req, "GetTile"):
	default:
		return Request{}, failure.Invalidf(failure.CodeOperationNotSupp, "REQUEST", "REQUEST must be GetCapabilities or GetTile")
	}
	if v, ok := p["VERSION"]; ok && v != "1.0.0" {
		return Request{}, failure.Invalidf(failure.CodeVersionNegotiation, "VERSION", "VERSION must be 1.0.0")
	}
	for _, name := range []string{"LAYER", "TILEMATRIXSET", "TILEMATRIX", "TILEROW", "TILECOL", "FORMAT"} {
		if p[name] == "" {
			return Request{}, failure.Invalidf(failure.CodeMissingParameter, name, "parameter %s is required for GetTile", name)
		}
	}
	ext, ok := extByFormat[strings.ToLower(p["FORMAT"])]
	if !ok {
		return Request{}, failure.Invalidf(failure.CodeInvalidFormat, "FORMAT", "FORMAT must be image/jpeg or image/png")
	}
	style := p["STYLE"]
	if style == "" {
		style = "default"
	}
	t, err := tile(p["LAYER"], style, p["TILEMATRIXSET"], p["TILEMATRIX"], p["TILEROW"], p["TILECOL"], ext)
	return Request{Kind: Tile, KVP: true, Tile: t}, err
}

// TileURL returns the Hexagon URL for the tile at service (the base URL
// and ServicePath or OrdersPath), without a token (package upstream adds
// it), in the form the client used: the REST form "wmts?/1.0.0/..." or
// KVP.
func (r Request) TileURL(service string) string {
	t := r.Tile
	var b strings.Builder
	b.Grow(len(service) + 160)
	b.WriteString(service)
	if r.KVP {
		b.WriteString("?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=")
		b.WriteString(url.QueryEscape(t.Layer))
		b.WriteString("&STYLE=")
		b.WriteString(url.QueryEscape(t.Style))
		b.WriteString("&TILEMATRIXSET=")
		b.WriteString(url.QueryEscape(t.MatrixSet))
		b.WriteString("&TILEMATRIX=")
		b.WriteString(strconv.Itoa(t.Matrix))
		b.WriteString("&TILEROW=")
		b.WriteString(strconv.Itoa(t.Row))
		b.WriteString("&TILECOL=")
		b.WriteString(strconv.Itoa(t.Col))
		b.WriteString("&FORMAT=")
		b.WriteString(url.QueryEscape(formats[t.Ext]))
	} else {
		b.WriteString("?/1.0.0/")
		for _, s := range []string{t.Layer, t.Style, t.MatrixSet} {
			b.WriteString(s)
			b.WriteByte('/')
		}
		b.WriteString(strconv.Itoa(t.Matrix))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(t.Row))
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(t.Col))
		b.WriteByte('.')
		b.WriteString(t.Ext)
	}
	return b.String()
}

// MediaType is the media type of the tile's format: what Hexagon's answer
// must be to be relayed.
func (t TileSpec) MediaType() string { return formats[t.Ext] }

// Accept returns what of Hexagon's answers to the tile may be relayed to
// the client (a media type without parameters, lower case): any image,
// or the declared format asked for. For an image format it is AnyImage
// itself, so that a tile costs no closure.
func (t TileSpec) Accept() func(mediaType string) bool {
	mt := t.MediaType()
	if AnyImage(mt) {
		return AnyImage
	}
	return func(m string) bool { return AnyImage(m) || m == mt }
}

// AnyImage accepts any image media type.
func AnyImage(mediaType string) bool { return strings.HasPrefix(mediaType, "image/") }

// CapabilitiesURL returns the Hexagon capabilities URL at service (as for
// TileURL), without a token.
func CapabilitiesURL(service string) string {
	return service + "?SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0"
}
