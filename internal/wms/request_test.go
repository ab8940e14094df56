package wms

import (
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/ows"
	"github.com/hexprox/hexprox/internal/upstream"
)

const getMap13 = "SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=-20037508,-20037508,20037508,20037508&WIDTH=512&HEIGHT=256&FORMAT=image/png&TRANSPARENT=TRUE"

func TestParseAndURL(t *testing.T) {
	cases := []struct {
		query, want string
	}{
		{"", "SERVICE=WMS&REQUEST=GetCapabilities&access_token=T"},
		{"service=wms&request=getcapabilities", "SERVICE=WMS&REQUEST=GetCapabilities&access_token=T"},
		{"SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1", "SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1&access_token=T"},
		{"SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.0.0", "SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1&access_token=T"},
		{getMap13 + "&access_token=mine&evil=http://x", "SERVICE=WMS&REQUEST=GetMap&VERSION=1.3.0&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG%3A3857&BBOX=-20037508%2C-20037508%2C20037508%2C20037508&WIDTH=512&HEIGHT=256&FORMAT=image%2Fpng&TRANSPARENT=TRUE&access_token=T"},
		// 1.1.1 names, and a 1.3.0 name in a 1.1.1 request, come out as 1.1.1.
		{"SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap&LAYERS=HxGN_Imagery&SRS=EPSG:4326&BBOX=-10,-5,10,5&WIDTH=20&HEIGHT=10&FORMAT=image/jpeg", "SERVICE=WMS&REQUEST=GetMap&VERSION=1.1.1&LAYERS=HxGN_Imagery&STYLES=&SRS=EPSG%3A4326&BBOX=-10%2C-5%2C10%2C5&WIDTH=20&HEIGHT=10&FORMAT=image%2Fjpeg&access_token=T"},
		{"SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap&LAYERS=HxGN_Imagery&CRS=EPSG:4326&BBOX=-10,-5,10,5&WIDTH=20&HEIGHT=10&FORMAT=image/jpeg", "SERVICE=WMS&REQUEST=GetMap&VERSION=1.1.1&LAYERS=HxGN_Imagery&STYLES=&SRS=EPSG%3A4326&BBOX=-10%2C-5%2C10%2C5&WIDTH=20&HEIGHT=10&FORMAT=image%2Fjpeg&access_token=T"},
		{"SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=HxGN_Imagery&QUERY_LAYERS=HxGN_Imagery&SRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=10&HEIGHT=10&FORMAT=image/png&INFO_FORMAT=text/plain&X=3&Y=4", "SERVICE=WMS&REQUEST=GetFeatureInfo&VERSION=1.1.1&LAYERS=HxGN_Imagery&STYLES=&SRS=EPSG%3A3857&BBOX=0%2C0%2C10%2C10&WIDTH=10&HEIGHT=10&FORMAT=image%2Fpng&QUERY_LAYERS=HxGN_Imagery&INFO_FORMAT=text%2Fplain&X=3&Y=4&access_token=T"},
		{"SERVICE=WMS&REQUEST=GetLegendGraphic&VERSION=1.3.0&LAYER=HxGN_Imagery&FORMAT=image/png&SLD_VERSION=1.1.0", "SERVICE=WMS&REQUEST=GetLegendGraphic&VERSION=1.3.0&LAYER=HxGN_Imagery&FORMAT=image%2Fpng&SLD_VERSION=1.1.0&access_token=T"},
	}
	for _, tc := range cases {
		r, err := Parse(tc.query)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.query, err)
			continue
		}
		got := strings.TrimPrefix(upstream.WithToken(r.URL("https://up"+ServicePath), "T"), "https://up"+ServicePath+"?")
		if got != tc.want {
			t.Errorf("Parse(%q).URL:\n got %s\nwant %s", tc.query, got, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct {
		query, code, locator string
	}{
		{"SERVICE=WMTS&REQUEST=GetCapabilities", failure.CodeInvalidParameter, "SERVICE"},
		{"REQUEST=DescribeLayer", failure.CodeOperationNotSupp, "REQUEST"},
		{"REQUEST=GetMap&VERSION=2.0.0", failure.CodeVersionNegotiation, "VERSION"},
		{strings.Replace(getMap13, "WIDTH=512", "WIDTH=3501", 1), failure.CodeInvalidParameter, "WIDTH"},
		{strings.Replace(getMap13, "HEIGHT=256", "HEIGHT=100000", 1), failure.CodeInvalidParameter, "HEIGHT"},
		{strings.Replace(getMap13, "WIDTH=512", "WIDTH=-5", 1), failure.CodeInvalidParameter, "WIDTH"},
		{strings.Replace(getMap13, "WIDTH=512&", "", 1), failure.CodeMissingParameter, "WIDTH"},
		{strings.Replace(getMap13, "LAYERS=HxGN_Imagery", "LAYERS=", 1), failure.CodeMissingParameter, "LAYERS"},
		{strings.Replace(getMap13, "LAYERS=HxGN_Imagery", "LAYERS=a/../b", 1), failure.CodeInvalidParameter, "LAYERS"},
		{strings.Replace(getMap13, "BBOX=-20037508,-20037508,20037508,20037508", "BBOX=1,2,3", 1), failure.CodeInvalidParameter, "BBOX"},
		{strings.Replace(getMap13, "BBOX=-20037508,-20037508,20037508,20037508", "BBOX=5,0,1,1", 1), failure.CodeInvalidParameter, "BBOX"},
		{strings.Replace(getMap13, "BBOX=-20037508,-20037508,20037508,20037508", "BBOX=NaN,0,1,1", 1), failure.CodeInvalidParameter, "BBOX"},
		{strings.Replace(getMap13, "FORMAT=image/png", "FORMAT=image/png%0d%0aX:1", 1), failure.CodeInvalidFormat, "FORMAT"},
		{strings.Replace(getMap13, "CRS=EPSG:3857", "CRS=http://evil/", 1), "InvalidCRS", "CRS"},
		{getMap13 + "&LAYERS=Other", "", ""}, // joined "HxGN_Imagery,Other" is a valid list: accepted
		{getMap13 + "&WIDTH=100", failure.CodeInvalidParameter, "WIDTH"},
		{strings.Replace(getMap13, "GetMap", "GetFeatureInfo", 1) + "&QUERY_LAYERS=HxGN_Imagery&I=600&J=1", "InvalidPoint", "I"},
		{strings.Replace(getMap13, "GetMap", "GetFeatureInfo", 1) + "&QUERY_LAYERS=HxGN_Imagery", failure.CodeMissingParameter, "I"},
		{"REQUEST=GetLegendGraphic&FORMAT=image/png", failure.CodeMissingParameter, "LAYER"},
	}
	for _, tc := range cases {
		_, err := Parse(tc.query)
		if tc.code == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", tc.query, err)
			}
			continue
		}
		fe := failure.As(err)
		if err == nil || fe.Kind != failure.Invalid || fe.ExceptionCode() != tc.code || fe.Locator != tc.locator {
			t.Errorf("Parse(%q) = %v (code %s locator %s), want %s %s", tc.query, err, fe.ExceptionCode(), fe.Locator, tc.code, tc.locator)
		}
	}
}

func TestExceptionVersion(t *testing.T) {
	for q, want := range map[string]string{"": "1.3.0", "VERSION=1.1.1": "1.1.1", "version=1.3.0": "1.3.0", "WMTVER=1.0.0": "1.1.1", "%zz": "1.3.0"} {
		if got := ExceptionVersion(q); got != want {
			t.Errorf("ExceptionVersion(%q) = %s, want %s", q, got, want)
		}
	}
}

func TestParseQuery(t *testing.T) {
	q111 := "SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=a&QUERY_LAYERS=a&SRS=EPSG:4326&BBOX=0,0,10,10&WIDTH=10&HEIGHT=10&FORMAT=image/png&X=3&Y=4"
	p, err := ows.Params(q111)
	if err != nil {
		t.Fatal(err)
	}
	before := maps.Clone(p)
	r, err := ParseQuery(p)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(p, before) {
		t.Fatalf("ParseQuery modified its Query:\n got %v\nwant %v", p, before)
	}
	viaRaw, err := Parse(q111)
	if err != nil || upstream.WithToken(r.URL("https://up"+ServicePath), "T") != upstream.WithToken(viaRaw.URL("https://up"+ServicePath), "T") {
		t.Fatalf("ParseQuery and Parse differ: %v", err)
	}
	if QueryExceptionVersion(p) != "1.1.1" || QueryExceptionVersion(nil) != "1.3.0" {
		t.Fatal("QueryExceptionVersion")
	}
	// Both names in a 1.1.1 request: the 1.3.0 name wins, sent as SRS.
	both, err := Parse(strings.Replace(q111, "SRS=EPSG:4326", "SRS=EPSG:4326&CRS=EPSG:3857", 1))
	if err != nil || !strings.Contains(upstream.WithToken(both.URL("https://up"+ServicePath), "T"), "&SRS=EPSG%3A3857&") {
		t.Fatalf("CRS and SRS: %v %v", upstream.WithToken(both.URL("https://up"+ServicePath), "T"), err)
	}
}

// TestParseRefusesHugeQueries: ~330,000 repeated pairs fit under Go's 1 MB
// request line and once cost 17 s of CPU; they are refused by the query
// limits before any parsing, and the error page's version lookup does not
// parse them either.
func TestParseRefusesHugeQueries(t *testing.T) {
	huge := getMap13 + strings.Repeat("&LAYERS=", 330_000)
	many := getMap13 + strings.Repeat("&X=1", ows.MaxParams)
	for name, q := range map[string]string{"1 MB": huge, "too many": many} {
		_, err := Parse(q)
		if fe := failure.As(err); err == nil || fe.HTTPStatus() != 400 || fe.ExceptionCode() != failure.CodeInvalidParameter {
			t.Errorf("%s: Parse = %v, want a 400 InvalidParameterValue", name, err)
		}
		// Parsing would allocate per parameter (65 to 330,000 times); the
		// refusal a handful, a few more when a GC has just emptied fmt's
		// pools (which made a bound of 4 flaky).
		if allocs := testing.AllocsPerRun(5, func() { ExceptionVersion(q) }); allocs > 16 {
			t.Errorf("%s: ExceptionVersion allocated %.0f times; want the query refused unparsed", name, allocs)
		}
		if ExceptionVersion(q) != "1.3.0" {
			t.Errorf("%s: ExceptionVersion not the default", name)
		}
	}
}

func TestIdentListBounded(t *testing.T) {
	for n, want := range map[int]bool{50: true, 51: false} {
		v := strings.TrimSuffix(strings.Repeat("a,", n), ",")
		if got := identList(false)(v); got != want {
			t.Errorf("%d layers: %v, want %v", n, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(getMap13)
	f.Add("SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=a&QUERY_LAYERS=a&SRS=EPSG:4326&BBOX=0,0,1,1&WIDTH=2&HEIGHT=2&FORMAT=image/png&X=1&Y=1")
	f.Add("REQUEST=GetLegendGraphic&LAYER=a&FORMAT=image/png")
	f.Fuzz(func(t *testing.T, q string) {
		r, err := Parse(q)
		if err != nil {
			return
		}
		u, err := url.Parse(upstream.WithToken(r.URL("https://up.example"+ServicePath), "tok"))
		if err != nil {
			t.Fatalf("unparseable upstream URL: %v", err)
		}
		if u.Host != "up.example" || u.Path != ServicePath || u.User != nil || u.Fragment != "" {
			t.Fatalf("upstream URL escapes the service: %s", u)
		}
		vals := u.Query()
		if got := vals["access_token"]; len(got) != 1 || got[0] != "tok" {
			t.Fatalf("token not exactly once: %v", got)
		}
		for k, vs := range vals {
			if len(vs) != 1 {
				t.Fatalf("parameter %s repeated upstream", k)
			}
			if w := vals.Get("WIDTH"); w != "" && len(w) > 4 {
				t.Fatalf("WIDTH %s passed", w)
			}
		}
	})
}

// What of Hexagon's answer may reach the client: never a page of its
// choice, always a WMS exception.
func TestAccept(t *testing.T) {
	gfi := "SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=HxGN_Imagery&QUERY_LAYERS=HxGN_Imagery&SRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=10&HEIGHT=10&FORMAT=image/png&X=3&Y=4"
	for _, tc := range []struct {
		query   string
		yes, no []string
	}{
		{getMap13, []string{"image/png", "image/jpeg", "application/vnd.ogc.se_xml", "text/xml"}, []string{"text/html", "application/json"}},
		// FORMAT is the map's the point was picked on, not the answer's.
		{gfi + "&INFO_FORMAT=application/json", []string{"application/json", "application/vnd.ogc.se_xml"}, []string{"text/html", "image/png"}},
		{gfi, []string{"text/plain", "text/html", "application/json", "application/vnd.ogc.se_xml"}, []string{"image/png", "application/javascript"}},
	} {
		r, err := Parse(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		accept := r.Accept()
		for _, mt := range tc.yes {
			if !accept(mt) {
				t.Errorf("%s: %s refused", tc.query, mt)
			}
		}
		for _, mt := range tc.no {
			if accept(mt) {
				t.Errorf("%s: %s accepted", tc.query, mt)
			}
		}
	}
}
