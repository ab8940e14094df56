// Package faketest holds the HTTP plumbing the provider fakes' tests
// share: starting a fake behind httptest, making a request to it with
// the body read, and reading a capabilities document. It belongs to
// tests only.
package faketest

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Serve starts h behind an httptest server that closes when the test
// ends, and returns the server's URL.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// Do sends a request with the given headers and returns the answer with
// its body read and closed; it fails the test if the request cannot be
// made or sent.
func Do(t testing.TB, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s %s: %v", method, url, err)
	}
	return resp, b
}

// Get is Do with GET.
func Get(t testing.TB, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return Do(t, http.MethodGet, url, header)
}

// URLs returns every href and template attribute of a capabilities
// document, in order (a WMS 1.1.1 DOCTYPE is read leniently). It fails
// the test when the document does not parse or names no URL at all, so
// that a loop over them always checks something.
func URLs(t testing.TB, doc []byte) []string {
	t.Helper()
	var out []string
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("capabilities do not parse: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "href" || a.Name.Local == "template" {
					out = append(out, a.Value)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("the capabilities name no URL:\n%.600s", doc)
	}
	return out
}

// WMTS is what tests read of a WMTS capabilities document: its
// operations' GET hrefs, its layers with their ResourceURLs, its tile
// matrix sets and its ServiceMetadataURL.
type WMTS struct {
	Ops []struct {
		Name string `xml:"name,attr"`
		Get  struct {
			Href string `xml:"href,attr"`
		} `xml:"DCP>HTTP>Get"`
	} `xml:"OperationsMetadata>Operation"`
	Layers []struct {
		ID        string   `xml:"Identifier"`
		Style     string   `xml:"Style>Identifier"`
		Set       string   `xml:"TileMatrixSetLink>TileMatrixSet"`
		Formats   []string `xml:"Format"`
		Resources []struct {
			Format   string `xml:"format,attr"`
			Template string `xml:"template,attr"`
		} `xml:"ResourceURL"`
	} `xml:"Contents>Layer"`
	Sets []struct {
		ID       string   `xml:"Identifier"`
		Matrices []string `xml:"TileMatrix>Identifier"`
	} `xml:"Contents>TileMatrixSet"`
	Metadata struct {
		Href string `xml:"href,attr"`
	} `xml:"ServiceMetadataURL"`
}

// ParseWMTS reads doc as WMTS capabilities, failing the test if it does
// not parse.
func ParseWMTS(t testing.TB, doc []byte) WMTS {
	t.Helper()
	var c WMTS
	if err := xml.Unmarshal(doc, &c); err != nil {
		t.Fatalf("capabilities do not parse: %v\n%.600s", err, doc)
	}
	return c
}
