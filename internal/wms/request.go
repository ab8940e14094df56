// Package wms parses the WMS requests HexProx accepts (GetCapabilities,
// GetMap, GetFeatureInfo, GetLegendGraphic; versions 1.1.1 and 1.3.0) and
// builds the matching Hexagon URLs. Only known parameters with validated
// values reach the upstream; the upstream host never comes from a request.
package wms

import (
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/ows"
)

// ServicePath is the WMS endpoint below the Hexagon base URL, and
// OrdersPath its batch twin for bulk and machine-learning loads.
const (
	ServicePath = "/streaming/wms"
	OrdersPath  = "/orders/wms"
)

// MaxSize is the largest WIDTH or HEIGHT Hexagon serves in real time.
const MaxSize = 3500

// Kind is the operation requested.
type Kind int

const (
	Capabilities Kind = iota
	Map
	FeatureInfo
	Legend
)

var operations = map[string]Kind{
	"getcapabilities":  Capabilities,
	"capabilities":     Capabilities, // WMS 1.0 name some clients still send
	"getmap":           Map,
	"map":              Map,
	"getfeatureinfo":   FeatureInfo,
	"getlegendgraphic": Legend,
}

var names = map[Kind]string{Capabilities: "GetCapabilities", Map: "GetMap", FeatureInfo: "GetFeatureInfo", Legend: "GetLegendGraphic"}

// Request is a parsed WMS request.
type Request struct {
	Kind    Kind
	Version string      // "1.1.1" or "1.3.0"; "" for GetCapabilities without VERSION
	params  [][2]string // validated parameters, in upstream order
}

// check validates one parameter value.
type check func(v string) bool

type param struct {
	name     string
	check    check
	required bool
}

var (
	mapParams = []param{
		{"LAYERS", identList(false), true},
		{"STYLES", identList(true), false},
		{"CRS", crs, true}, // SRS in 1.1.1: renamed by Parse
		{"BBOX", bbox, true},
		{"WIDTH", size, true},
		{"HEIGHT", size, true},
		{"FORMAT", mediaType, true},
		{"TRANSPARENT", boolean, false},
		{"BGCOLOR", color, false},
		{"EXCEPTIONS", mediaType, false},
		{"TIME", dimension, false},
		{"ELEVATION", dimension, false},
		{"DPI", smallInt(1, 1200), false},
		{"MAP_RESOLUTION", smallInt(1, 1200), false},
		{"FORMAT_OPTIONS", dimension, false},
	}
	featureInfoParams = append(append([]param{}, mapParams...),
		param{"QUERY_LAYERS", identList(false), true},
		param{"INFO_FORMAT", mediaType, false},
		param{"FEATURE_COUNT", smallInt(1, 1000), false},
		param{"I", smallInt(0, MaxSize-1), true}, // X in 1.1.1
		param{"J", smallInt(0, MaxSize-1), true}, // Y in 1.1.1
	)
	legendParams = []param{
		{"LAYER", ows.Identifier, true},
		{"STYLE", func(v string) bool { return v == "" || ows.Identifier(v) }, false},
		{"FORMAT", mediaType, true},
		{"WIDTH", size, false},
		{"HEIGHT", size, false},
		{"SLD_VERSION", dimension, false},
		{"RULE", ows.Identifier, false},
		{"SCALE", number, false},
		{"EXCEPTIONS", mediaType, false},
	}
)

// Parse parses a WMS KVP query: ows.Params, then ParseQuery. A query
// over ows.MaxQueryBytes or ows.MaxParams is refused before it is read.
func Parse(rawQuery string) (Request, error) {
	p, err := ows.Params(rawQuery)
	if err != nil {
		return Request{}, err
	}
	return ParseQuery(p)
}

// ParseQuery parses a request's already-parsed parameters (from
// ows.Params). A query without REQUEST is a capabilities request (what
// pasting the bare URL into a client or browser means). p is not
// modified.
func ParseQuery(p ows.Query) (Request, error) {
	if s, ok := p["SERVICE"]; ok && !strings.EqualFold(s, "WMS") {
		return Request{}, failure.Invalidf(failure.CodeInvalidParameter, "SERVICE", "SERVICE must be WMS")
	}
	r := Request{Kind: Capabilities}
	if op, ok := p["REQUEST"]; ok {
		if r.Kind, ok = operations[strings.ToLower(op)]; !ok {
			return Request{}, failure.Invalidf(failure.CodeOperationNotSupp, "REQUEST", "REQUEST must be GetCapabilities, GetMap, GetFeatureInfo or GetLegendGraphic")
		}
	}
	var err error
	if r.Version, err = negotiate(requestedVersion(p), r.Kind); err != nil {
		return Request{}, err
	}
	var spec []param
	switch r.Kind {
	case Capabilities:
		return r, nil
	case Map:
		spec = mapParams
	case FeatureInfo:
		spec = featureInfoParams
	case Legend:
		spec = legendParams
	}
	for _, sp := range spec {
		// Accept either version's names; send the requested version's.
		name := sp.name
		v, ok := p[name]
		if old := v111Names[name]; r.Version == "1.1.1" && old != "" {
			if !ok {
				v, ok = p[old]
			}
			name = old
		}
		if !ok && name == "STYLES" {
			ok = true // required by the spec, omitted by some clients
		}
		if !ok || v == "" && sp.required {
			if sp.required {
				return Request{}, failure.Invalidf(failure.CodeMissingParameter, sp.name, "parameter %s is required for %s", sp.name, names[r.Kind])
			}
			continue
		}
		if !sp.check(v) {
			return Request{}, invalid(sp.name, v)
		}
		r.params = append(r.params, [2]string{name, v})
	}
	if r.Kind == FeatureInfo {
		if err := r.checkPoint(); err != nil {
			return Request{}, err
		}
	}
	return r, nil
}

// v111Names maps the 1.3.0 names of the spec tables to their 1.1.1 names.
var v111Names = map[string]string{"CRS": "SRS", "I": "X", "J": "Y"}

// requestedVersion returns VERSION, or WMTVER (the WMS 1.0 name).
func requestedVersion(p ows.Query) string {
	if v := p["VERSION"]; v != "" {
		return v
	}
	return p["WMTVER"]
}

func negotiate(v string, k Kind) (string, error) {
	switch {
	case v == "" && k == Capabilities:
		return "", nil
	case v == "", v == "1.3.0", v == "1.3":
		return "1.3.0", nil
	case v == "1.1.1", v == "1.1.0", v == "1.1":
		return "1.1.1", nil
	case k == Capabilities && strings.HasPrefix(v, "1."):
		// Negotiation: an older client gets the lower version we speak.
		if v < "1.3" {
			return "1.1.1", nil
		}
		return "1.3.0", nil
	}
	return "", failure.Invalidf(failure.CodeVersionNegotiation, "VERSION", "VERSION must be 1.1.1 or 1.3.0")
}

func invalid(name, v string) error {
	switch name {
	case "WIDTH", "HEIGHT":
		if n, err := strconv.Atoi(v); err == nil && n > MaxSize {
			return failure.Invalidf(failure.CodeInvalidParameter, name, "%s must be at most %d pixels; request a smaller image or tile it", name, MaxSize)
		}
	case "FORMAT", "INFO_FORMAT":
		return failure.Invalidf(failure.CodeInvalidFormat, name, "%s is not a media type", name)
	case "CRS":
		return failure.Invalidf("InvalidCRS", name, "CRS is not a coordinate reference system identifier such as EPSG:3857")
	}
	return failure.Invalidf(failure.CodeInvalidParameter, name, "parameter %s has an invalid value", name)
}

func (r Request) get(name string) string {
	for _, p := range r.params {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

func (r Request) checkPoint() error {
	x, y, w, h := "I", "J", r.get("WIDTH"), r.get("HEIGHT")
	if r.Version == "1.1.1" {
		x, y = "X", "Y"
	}
	xi, _ := strconv.Atoi(r.get(x))
	yi, _ := strconv.Atoi(r.get(y))
	wi, _ := strconv.Atoi(w)
	hi, _ := strconv.Atoi(h)
	if xi >= wi || yi >= hi {
		return failure.Invalidf("InvalidPoint", x, "%s and %s must lie inside the %s×%s map", x, y, w, h)
	}
	return nil
}

// URL returns the Hexagon URL for the request at service (the base URL
// and ServicePath or OrdersPath), without a token (package upstream adds
// it).
func (r Request) URL(service string) string {
	var b strings.Builder
	b.WriteString(service)
	b.WriteString("?SERVICE=WMS&REQUEST=")
	b.WriteString(names[r.Kind])
	if r.Version != "" {
		b.WriteString("&VERSION=")
		b.WriteString(r.Version)
	}
	for _, p := range r.params {
		b.WriteByte('&')
		b.WriteString(p[0])
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p[1]))
	}
	return b.String()
}

// Formats returns the media types the request asked for (FORMAT and
// INFO_FORMAT, lower case, parameters dropped): what Hexagon's answer may
// be, besides a WMS exception.
func (r Request) Formats() []string { return r.formats("FORMAT", "INFO_FORMAT") }

// formats returns the media types of the parameters named.
func (r Request) formats(names ...string) []string {
	var out []string
	for _, p := range r.params {
		if slices.Contains(names, p[0]) {
			mt, _, _ := strings.Cut(strings.ToLower(p[1]), ";")
			out = append(out, strings.TrimSpace(mt))
		}
	}
	return out
}

// exceptionTypes are what a WMS answers an error with, which clients
// parse (EXCEPTIONS=XML, the default).
var exceptionTypes = []string{"application/vnd.ogc.se_xml", "application/vnd.ogc.se+xml", "text/xml", "application/xml"}

// infoTypes are what GetFeatureInfo may answer when INFO_FORMAT leaves it
// to the server.
var infoTypes = []string{"text/plain", "text/html", "application/json", "application/geo+json", "application/vnd.ogc.gml"}

// Accept returns what of Hexagon's answers to the request may be relayed
// to the client (a media type without parameters, lower case), never a
// page of Hexagon's choice: for GetFeatureInfo, exactly the INFO_FORMAT
// asked for (or the usual ones when none was); for maps and legends, any
// image or the format asked for; and a WMS exception always.
func (r Request) Accept() func(mediaType string) bool {
	if r.Kind == FeatureInfo {
		// FORMAT is the map's the point was picked on, not the answer's.
		types := r.formats("INFO_FORMAT")
		if len(types) == 0 {
			types = infoTypes
		}
		types = append(types[:len(types):len(types)], exceptionTypes...)
		return func(mt string) bool { return slices.Contains(types, mt) }
	}
	types := append(r.Formats(), exceptionTypes...)
	return func(mt string) bool { return strings.HasPrefix(mt, "image/") || slices.Contains(types, mt) }
}

// QueryExceptionVersion returns the ServiceExceptionReport version for
// already-parsed parameters: 1.1.1 for a 1.1.x or 1.0 request, else 1.3.0
// (also for a nil Query, i.e. a query that could not be parsed).
func QueryExceptionVersion(p ows.Query) string {
	v := requestedVersion(p)
	if strings.HasPrefix(v, "1.1") || strings.HasPrefix(v, "1.0") {
		return "1.1.1"
	}
	return "1.3.0"
}

// Validators.

func identList(emptyOK bool) check {
	return func(v string) bool {
		if strings.Count(v, ",") >= 50 || v == "" && !emptyOK {
			return false // at most 50 names; counted before splitting
		}
		parts := strings.Split(v, ",")
		for _, s := range parts {
			if s == "" && emptyOK {
				continue
			}
			if !ows.Identifier(s) {
				return false
			}
		}
		return true
	}
}

func charset(v string, max int, extra string) bool {
	if v == "" || len(v) > max {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

func crs(v string) bool { return charset(v, 64, ":._-,") }

func mediaType(v string) bool { return charset(v, 64, "/+.;= _-") }

func dimension(v string) bool { return charset(v, 256, ":.,/+-_;") }

func boolean(v string) bool { return strings.EqualFold(v, "true") || strings.EqualFold(v, "false") }

func color(v string) bool {
	return len(v) == 8 && (v[:2] == "0x" || v[:2] == "0X") && strings.Trim(strings.ToLower(v[2:]), "0123456789abcdef") == ""
}

func size(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 1 && n <= MaxSize && !strings.HasPrefix(v, "+")
}

func smallInt(lo, hi int) check {
	return func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && n >= lo && n <= hi && !strings.HasPrefix(v, "+")
	}
}

func number(v string) bool {
	f, err := strconv.ParseFloat(v, 64)
	return err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && len(v) <= 40
}

func bbox(v string) bool {
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		return false
	}
	var f [4]float64
	for i, s := range parts {
		if !number(s) {
			return false
		}
		f[i], _ = strconv.ParseFloat(s, 64)
	}
	return f[0] < f[2] && f[1] < f[3]
}
