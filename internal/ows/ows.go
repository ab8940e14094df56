// Package ows writes OGC exception documents: the OWS 1.1 ExceptionReport
// that WMTS clients parse, and the WMS ServiceExceptionReport.
package ows

import (
	"encoding/xml"
	"io"
	"strings"
)

// ContentType is the media type of an OWS ExceptionReport.
const ContentType = "application/xml; charset=utf-8"

// WriteExceptionReport writes an OWS 1.1 ExceptionReport (version 1.0.0 of
// the report, as WMTS 1.0.0 requires) with one exception.
func WriteExceptionReport(w io.Writer, code, locator, text string) error {
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString(`<ExceptionReport xmlns="http://www.opengis.net/ows/1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.opengis.net/ows/1.1 http://schemas.opengis.net/ows/1.1.0/owsExceptionReport.xsd" version="1.0.0" xml:lang="en">`)
	b.WriteString("\n  <Exception exceptionCode=\"")
	escape(&b, code)
	b.WriteString(`"`)
	if locator != "" {
		b.WriteString(` locator="`)
		escape(&b, locator)
		b.WriteString(`"`)
	}
	b.WriteString(">\n    <ExceptionText>")
	escape(&b, text)
	b.WriteString("</ExceptionText>\n  </Exception>\n</ExceptionReport>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func escape(b *strings.Builder, s string) {
	// EscapeText cannot fail on a strings.Builder.
	_ = xml.EscapeText(b, []byte(s))
}
