package wms

import "github.com/hexprox/hexprox/internal/ows"

// Test hooks: what the tests read and no caller needs.

// ExceptionVersion returns the ServiceExceptionReport version for a raw
// query: 1.1.1 for a 1.1.x or 1.0 request, else 1.3.0. It never fails; a
// query ows.Params refuses gets 1.3.0. It parses the query: a caller that
// has already parsed it should use QueryExceptionVersion.
func ExceptionVersion(rawQuery string) string {
	p, _ := ows.Params(rawQuery)
	return QueryExceptionVersion(p)
}
