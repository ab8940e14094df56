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

func TestServiceExceptionBothVersions(t *testing.T) {
	for _, v := range []string{"1.1.1", "1.3.0"} {
		var b strings.Builder
		if err := WriteServiceException(&b, v, "InvalidFormat", "FORMAT", "no <gif> & no bmp"); err != nil {
			t.Fatal(err)
		}
		var rep struct {
			XMLName   xml.Name
			Version   string `xml:"version,attr"`
			Exception struct {
				Code    string `xml:"code,attr"`
				Locator string `xml:"locator,attr"`
				Text    string `xml:",chardata"`
			} `xml:"ServiceException"`
		}
		d := xml.NewDecoder(strings.NewReader(b.String()))
		if err := d.Decode(&rep); err != nil {
			t.Fatalf("%s: %v\n%s", v, err, b.String())
		}
		if rep.XMLName.Local != "ServiceExceptionReport" || rep.Version != v || rep.Exception.Code != "InvalidFormat" || rep.Exception.Locator != "FORMAT" || rep.Exception.Text != "no <gif> & no bmp" {
			t.Fatalf("%s: %+v", v, rep)
		}
		if wantNS := map[string]string{"1.1.1": "", "1.3.0": "http://www.opengis.net/ogc"}[v]; rep.XMLName.Space != wantNS {
			t.Fatalf("%s: namespace %q", v, rep.XMLName.Space)
		}
	}
	if ServiceExceptionContentType("1.1.1") == ServiceExceptionContentType("1.3.0") {
		t.Fatal("1.1.1 has its own media type")
	}
}
