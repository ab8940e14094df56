package provider

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	for _, c := range []struct {
		name       string
		p          Placement
		in         string
		wantURL    string
		wantHeader [2]string
	}{
		{"Planet's query parameter, a client's copy replaced", Placement{In: InQuery, Name: "api_key"},
			"https://tiles.example/basemaps/v1/planet-tiles/m/gmap/3/1/2.png?API_KEY=theirs&x=1",
			"https://tiles.example/basemaps/v1/planet-tiles/m/gmap/3/1/2.png?x=1&api_key=K%2B1", [2]string{}},
		{"Nearmap's header, capital A", Placement{In: InHeader, Name: "Authorization", Template: "Apikey {}"},
			"https://api.example/wms/v1/latest?SERVICE=WMS", "https://api.example/wms/v1/latest?SERVICE=WMS", [2]string{"Authorization", "Apikey K+1"}},
		{"Nearmap's path segment", Placement{In: InPath, Name: "apikey", After: "/maps/api/wmts/v1"},
			"https://us0.example/maps/api/wmts/v1/tile/3/1/2.jpg", "https://us0.example/maps/api/wmts/v1/apikey/K+1/tile/3/1/2.jpg", [2]string{}},
		{"a path segment keeps a '/' in the credential escaped", Placement{In: InPath, Name: "apikey", After: "/m"},
			"https://h.example/m/a%2Fb/x", "https://h.example/m/apikey/K+1/a%2Fb/x", [2]string{}},
		{"a path outside the placement's prefix is left", Placement{In: InPath, Name: "apikey", After: "/maps/api/wmts/v1"},
			"https://us0.example/other/tile", "https://us0.example/other/tile", [2]string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, err := url.Parse(c.in)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			c.p.Apply(u, h, "K+1")
			if u.String() != c.wantURL {
				t.Errorf("URL %s, want %s", u, c.wantURL)
			}
			if c.wantHeader[0] != "" && h.Get(c.wantHeader[0]) != c.wantHeader[1] {
				t.Errorf("header %v, want %v", h, c.wantHeader)
			}
			if c.wantHeader[0] == "" && len(h) != 0 {
				t.Errorf("header set: %v", h)
			}
		})
	}
}

func TestStripPath(t *testing.T) {
	p := Placement{In: InPath, Name: "apikey", After: "/maps/api/wmts/v1"}
	for in, want := range map[string]string{
		"/maps/api/wmts/v1/apikey/SECRET/tile/1/2/3.jpg":       "/maps/api/wmts/v1/tile/1/2/3.jpg",
		"/wms/v1/places/P1/APIKEY/SECRET":                      "/wms/v1/places/P1",
		"/maps/api/wmts/v1/apikey/A/x/apikey/B/y":              "/maps/api/wmts/v1/x/y",
		"/maps/api/wmts/v1/tile/1/2/3.jpg":                     "/maps/api/wmts/v1/tile/1/2/3.jpg",
		"/maps/api/wmts/v1/apikey":                             "/maps/api/wmts/v1/apikey", // no credential follows
		"/maps/api/wmts/v1/apikey/SECRET/WMTSCapabilities.xml": "/maps/api/wmts/v1/WMTSCapabilities.xml",
		"/maps/api/wmts/v1/%61pikey/THEIRS/tile":               "/maps/api/wmts/v1/tile",
	} {
		if got := p.StripPath(in); got != want {
			t.Errorf("StripPath(%q) = %q, want %q", in, got, want)
		}
	}
	if got := (Placement{In: InQuery, Name: "apikey"}).StripPath("/a/apikey/b"); got != "/a/apikey/b" {
		t.Errorf("a query placement changed a path: %q", got)
	}
}

func TestDropParams(t *testing.T) {
	names := []string{"api_key", "apikey", "token", "maxar_api_key", "access_token"}
	for in, want := range map[string]string{
		"SERVICE=WMTS&api_key=SECRET&REQUEST=GetCapabilities": "SERVICE=WMTS&REQUEST=GetCapabilities",
		"APIKEY=1&Token=2&Maxar_Api_Key=3&x=%2F":              "x=%2F",
		"api%5Fkey=SECRET&y=1":                                "y=1",
		"apikeyx=1&xapikey=2":                                 "apikeyx=1&xapikey=2",
		"":                                                    "",
		"access_token&keep":                                   "keep",
		"%ZZ=1&token=2":                                       "%ZZ=1",
	} {
		if got := DropParams(in, names); got != want {
			t.Errorf("DropParams(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzDropParams: whatever the query, no parameter that names a
// credential survives, in any case or percent-encoding, and what is
// dropped is only such parameters: the output is the input's parameters
// in order, as written, less those.
func FuzzDropParams(f *testing.F) {
	for _, s := range []string{"api_key=1&x=2", "API%5FKEY=1", "a=1&&b=2", "token", "%zz&token=1", "x=1&APIKEY=%41"} {
		f.Add(s)
	}
	names := []string{"api_key", "apikey", "token"}
	credential := func(p string) bool {
		k, _, _ := strings.Cut(p, "=")
		return isOneOf(paramName(k), names)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := DropParams(q, names)
		var kept []string
		if out != "" {
			kept = strings.Split(out, "&")
		}
		j := 0
		for _, p := range strings.Split(q, "&") {
			switch {
			case j < len(kept) && p == kept[j] && !credential(p):
				j++
			case !credential(p) && p != "": // an empty parameter may go with its "&"
				t.Fatalf("DropParams(%q) = %q dropped %q", q, out, p)
			}
		}
		if j != len(kept) {
			t.Fatalf("DropParams(%q) = %q: not the input's parameters in order", q, out)
		}
	})
}

// A credential holding '/' stays one path segment upstream.
func TestApplyEscapesAPathCredential(t *testing.T) {
	u, _ := url.Parse("https://h.example/wms/v1/latest?SERVICE=WMS")
	Placement{In: InPath, Name: "apikey", After: "/wms/v1/latest"}.Apply(u, http.Header{}, "NM+fed/cba=")
	if got := u.String(); got != "https://h.example/wms/v1/latest/apikey/NM+fed%2Fcba=?SERVICE=WMS" {
		t.Fatalf("%s", got)
	}
}
