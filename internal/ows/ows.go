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
	b.WriteString("\n  <Exception")
	attr(&b, "exceptionCode", code)
	attr(&b, "locator", locator)
	b.WriteString(">\n    <ExceptionText>")
	escape(&b, text)
	b.WriteString("</ExceptionText>\n  </Exception>\n</ExceptionReport>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// attr writes name="value", escaped, unless value is empty.
func attr(b *strings.Builder, name, value string) {
	if value == "" {
		return
	}
	b.WriteString(" " + name + `="`)
	escape(b, value)
	b.WriteByte('"')
}

func escape(b *strings.Builder, s string) {
	// EscapeText cannot fail on a strings.Builder.
	_ = xml.EscapeText(b, []byte(s))
}

// ServiceExceptionContentType returns the media type of a WMS
// ServiceExceptionReport of version ("1.1.1" or "1.3.0").
func ServiceExceptionContentType(version string) string {
	if version == "1.1.1" {
		return "application/vnd.ogc.se_xml; charset=utf-8"
	}
	return "text/xml; charset=utf-8"
}

// WriteServiceException writes a WMS ServiceExceptionReport in the shape
// of version "1.1.1" or "1.3.0" (the default). code may be empty.
func WriteServiceException(w io.Writer, version, code, locator, text string) error {
	var b strings.Builder
	b.WriteString(xml.Header)
	if version == "1.1.1" {
		b.WriteString(`<!DOCTYPE ServiceExceptionReport SYSTEM "http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">` + "\n")
		b.WriteString(`<ServiceExceptionReport version="1.1.1">`)
	} else {
		b.WriteString(`<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.opengis.net/ogc http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">`)
	}
	b.WriteString("\n  <ServiceException")
	attr(&b, "code", code)
	attr(&b, "locator", locator)
	b.WriteString(">")
	escape(&b, text)
	b.WriteString("</ServiceException>\n</ServiceExceptionReport>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
