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

// ServiceExceptionContentType returns the media type of a WMS
// ServiceExceptionReport of version ("1.1.1" or "1.3.0").
func ServiceExceptionContentType(version string) string {
	if version == "1.1.1" {
		return "application/vnd.ogc.se_xml; charset=utf-8"
	}
	return "text/xml; charset=utf-8"
}

// Report is the shape of an exception document: which root element,
// namespace and version, and how the one exception inside is written.
// The zero value is ExceptionReport.
type Report int

const (
	// ExceptionReport is the OWS 1.1 ExceptionReport (version 1.0.0 of the
	// report, as WMTS 1.0.0 requires), media type ContentType.
	ExceptionReport Report = iota
	// ServiceException111 is the WMS 1.1.1 ServiceExceptionReport, with
	// its DOCTYPE and no namespace.
	ServiceException111
	// ServiceException130 is the WMS 1.3.0 ServiceExceptionReport, in the
	// http://www.opengis.net/ogc namespace.
	ServiceException130
)

// ServiceException returns the WMS report of version: ServiceException111
// for "1.1.1", ServiceException130 for anything else (the default).
func ServiceException(version string) Report {
	if version == "1.1.1" {
		return ServiceException111
	}
	return ServiceException130
}

// shape is what differs between the reports: the text before the
// exception element, the root and exception elements' names, the code
// attribute's name, and whether the text sits in an ExceptionText child.
type shape struct {
	head, root, element, codeAttr string
	textChild                     bool
}

var shapes = [...]shape{
	ExceptionReport: {
		head:      `<ExceptionReport xmlns="http://www.opengis.net/ows/1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.opengis.net/ows/1.1 http://schemas.opengis.net/ows/1.1.0/owsExceptionReport.xsd" version="1.0.0" xml:lang="en">`,
		root:      "ExceptionReport",
		element:   "Exception",
		codeAttr:  "exceptionCode",
		textChild: true,
	},
	ServiceException111: {
		head:     `<!DOCTYPE ServiceExceptionReport SYSTEM "http://schemas.opengis.net/wms/1.1.1/exception_1_1_1.dtd">` + "\n" + `<ServiceExceptionReport version="1.1.1">`,
		root:     "ServiceExceptionReport",
		element:  "ServiceException",
		codeAttr: "code",
	},
	ServiceException130: {
		head:     `<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.opengis.net/ogc http://schemas.opengis.net/wms/1.3.0/exceptions_1_3_0.xsd">`,
		root:     "ServiceExceptionReport",
		element:  "ServiceException",
		codeAttr: "code",
	},
}

// WriteException writes a report of shape r with one exception. code and
// locator are left out when empty; all three strings are XML-escaped. An
// unknown r is written as ExceptionReport. The only error is w's.
func WriteException(w io.Writer, r Report, code, locator, text string) error {
	if int(r) < 0 || int(r) >= len(shapes) {
		r = ExceptionReport
	}
	s := shapes[r]
	var b strings.Builder
	b.WriteString(xml.Header)
	b.WriteString(s.head)
	b.WriteString("\n  <" + s.element)
	attr(&b, s.codeAttr, code)
	attr(&b, "locator", locator)
	b.WriteString(">")
	if s.textChild {
		b.WriteString("\n    <ExceptionText>")
		escape(&b, text)
		b.WriteString("</ExceptionText>\n  ")
	} else {
		escape(&b, text)
	}
	b.WriteString("</" + s.element + ">\n</" + s.root + ">\n")
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
