package ows

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestExceptionReportParsesAndEscapes(t *testing.T) {
	var b strings.Builder
	if err := WriteExceptionReport(&b, "InvalidParameterValue", `TILE"ROW`, "bad <value> & more"); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		XMLName   xml.Name `xml:"http://www.opengis.net/ows/1.1 ExceptionReport"`
		Version   string   `xml:"version,attr"`
		Exception []struct {
			Code    string `xml:"exceptionCode,attr"`
			Locator string `xml:"locator,attr"`
			Text    string `xml:"ExceptionText"`
		} `xml:"Exception"`
	}
	if err := xml.Unmarshal([]byte(b.String()), &rep); err != nil {
		t.Fatalf("not XML: %v\n%s", err, b.String())
	}
	if rep.Version != "1.0.0" || len(rep.Exception) != 1 {
		t.Fatalf("unexpected report %+v", rep)
	}
	e := rep.Exception[0]
	if e.Code != "InvalidParameterValue" || e.Locator != `TILE"ROW` || e.Text != "bad <value> & more" {
		t.Fatalf("round trip lost data: %+v", e)
	}
}
