package ows

import (
	"net/url"
	"strings"

	"github.com/hexprox/hexprox/internal/failure"
)

// Limits on what one request's query may carry. Both are checked before
// anything is decoded or allocated, so an oversized query costs one pass
// over its bytes and is refused as InvalidParameterValue (HTTP 400).
const (
	// MaxQueryBytes is the longest raw query accepted: 8 KiB. Azure
	// Functions refuses URLs over 4 KB before they reach the handler, so
	// no client that works on Azure sends more; the longest real request,
	// a GetFeatureInfo with long layer lists, BBOX, TIME and percent
	// encoding, stays under 2 KiB. Go's server would otherwise hand us up
	// to 1 MB.
	MaxQueryBytes = 8 << 10
	// MaxParams is the most '&'-separated pairs accepted (empty pairs
	// included): 64. A WMS GetFeatureInfo, the largest request, has 23
	// known parameters; 64 leaves room for the vendor parameters QGIS and
	// ArcGIS add, while keeping per-request map work small.
	MaxParams = 64
)

// Query is a request's KVP parameters as Params returns them: upper-case
// names mapped to their percent-decoded values, access_token removed. A
// nil Query is an empty one. Parse a request's query once and pass the
// Query on (wms.ParseQuery, wmts.ParseQuery, wms.QueryExceptionVersion);
// a Query is a map, so it is not safe for concurrent writes, and none of
// this module's functions modify one they are given.
type Query map[string]string

// Params reads a KVP query with case-insensitive names (returned upper
// case). A name given more than once has its values joined with commas,
// exactly as the Azure Functions host does when it forwards a request, so
// a request means the same locally and on Azure. access_token is dropped:
// the proxy's own token always wins.
//
// A query longer than MaxQueryBytes or with more than MaxParams pairs, a
// ';' (a separator some servers honour and Go does not), or a bad escape
// is refused with a failure.Invalid. Time and memory are linear in the
// query's length.
func Params(rawQuery string) (Query, error) {
	if rawQuery == "" {
		return nil, nil // nil reads as empty
	}
	if len(rawQuery) > MaxQueryBytes {
		return nil, failure.Invalidf(failure.CodeInvalidParameter, "", "the query string is longer than %d bytes", MaxQueryBytes)
	}
	n := strings.Count(rawQuery, "&") + 1
	if n > MaxParams {
		return nil, failure.Invalidf(failure.CodeInvalidParameter, "", "the query string has more than %d parameters", MaxParams)
	}
	if strings.IndexByte(rawQuery, ';') >= 0 {
		return nil, badEncoding()
	}
	p := make(Query, n)
	var repeated map[string][]string // values of names seen more than once, in order
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, badEncoding()
		}
		k = strings.ToUpper(k)
		if old, seen := p[k]; seen {
			if repeated == nil {
				repeated = map[string][]string{}
			}
			if repeated[k] == nil {
				repeated[k] = []string{old}
			}
			repeated[k] = append(repeated[k], v)
			continue
		}
		p[k] = v
	}
	// Join each repeated name once: joining as values arrive copies the
	// growing string every time, which is quadratic in the repeats.
	for k, vs := range repeated {
		p[k] = strings.Join(vs, ",")
	}
	delete(p, "ACCESS_TOKEN")
	return p, nil
}

// badEncoding returns a new error each time: callers may annotate it.
func badEncoding() error {
	return failure.Invalidf(failure.CodeInvalidParameter, "", "the query string is not valid URL encoding")
}

// Identifier reports whether s is a safe OGC identifier (a layer, style or
// tile matrix set name): 1-128 letters, digits, '_', '-', '.' or ':',
// without "..".
func Identifier(s string) bool {
	if s == "" || len(s) > 128 || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
