package ows

import (
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExceptionReportParsesAndEscapes(t *testing.T) {
	var b strings.Builder
	if err := WriteException(&b, ExceptionReport, "InvalidParameterValue", `TILE"ROW`, "bad <value> & more"); err != nil {
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
		if err := WriteException(&b, ServiceException(v), "InvalidFormat", "FORMAT", "no <gif> & no bmp"); err != nil {
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

// The documents are byte-for-byte those in testdata, which clients have
// parsed since before the writers were one function.
func TestWriteExceptionGolden(t *testing.T) {
	for _, tc := range []struct {
		golden              string
		r                   Report
		code, locator, text string
	}{
		{"exceptionreport.xml", ExceptionReport, "InvalidParameterValue", `TILE"ROW`, "bad <value> & more"},
		{"exceptionreport-bare.xml", ExceptionReport, "", "", "x"},
		{"exceptionreport-bare.xml", Report(99), "", "", "x"},
		{"serviceexception-1.1.1.xml", ServiceException("1.1.1"), "InvalidFormat", "FORMAT", "no <gif> & no bmp"},
		{"serviceexception-1.3.0.xml", ServiceException("1.3.0"), "InvalidFormat", "FORMAT", "no <gif> & no bmp"},
		{"serviceexception-1.3.0.xml", ServiceException(""), "InvalidFormat", "FORMAT", "no <gif> & no bmp"},
		{"serviceexception-1.1.1-bare.xml", ServiceException111, "", "", "x"},
	} {
		want, err := os.ReadFile(filepath.Join("testdata", tc.golden))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := WriteException(&b, tc.r, tc.code, tc.locator, tc.text); err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("report %d for %s:\ngot  %q\nwant %q", tc.r, tc.golden, b.String(), want)
		}
	}
}

type failingWriter struct{}

var errWrite = errors.New("write failed")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteExceptionReturnsWriterError(t *testing.T) {
	for _, r := range []Report{ExceptionReport, ServiceException111, ServiceException130} {
		if err := WriteException(failingWriter{}, r, "c", "l", "t"); !errors.Is(err, errWrite) {
			t.Fatalf("report %d: err %v, want the writer's", r, err)
		}
	}
}
