package wmts

import (
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/ows"
	"github.com/hexprox/hexprox/internal/upstream"
)

func TestParseAccepts(t *testing.T) {
	rest := TileSpec{Layer: "HxGN_Imagery", Style: "default", MatrixSet: "WebMercator", Matrix: 5, Row: 10, Col: 31, Ext: "jpg"}
	cases := []struct {
		path, query string
		want        Request
	}{
		{"", "", Request{Kind: Capabilities, KVP: true}},
		{"/", "SERVICE=WMTS&REQUEST=GetCapabilities", Request{Kind: Capabilities, KVP: true}},
		{"", "service=wmts&request=getcapabilities&version=1.0.0", Request{Kind: Capabilities, KVP: true}},
		{"", "Service=WMTS&Request=GetCapabilities&AcceptVersions=1.0.0", Request{Kind: Capabilities, KVP: true}},
		{"/1.0.0/WMTSCapabilities.xml", "", Request{Kind: Capabilities}},
		{"/1.0.0/WMTSCapabilities.xml", "request=GetCapabilities&service=WMTS", Request{Kind: Capabilities}},
		{"/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.jpg", "", Request{Kind: Tile, Tile: rest}},
		{"/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.jpg", "access_token=mine", Request{Kind: Tile, Tile: rest}},
		{"/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.JPG", "", Request{Kind: Tile, Tile: rest}},
		{"", "SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=31&FORMAT=image%2Fjpeg", Request{Kind: Tile, KVP: true, Tile: rest}},
		{"/", "service=WMTS&request=GetTile&layer=HxGN_Imagery&style=&tilematrixset=WebMercator&tilematrix=5&tilerow=10&tilecol=31&format=image/jpeg&ACCESS_TOKEN=x", Request{Kind: Tile, KVP: true, Tile: rest}},
	}
	for _, tc := range cases {
		got, err := Parse(tc.path, tc.query)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q, %q) = %+v, %v; want %+v", tc.path, tc.query, got, err, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tilePath := func(z, r, c, ext string) string {
		return "/1.0.0/HxGN_Imagery/default/WebMercator/" + z + "/" + r + "/" + c + "." + ext
	}
	kvp := "SERVICE=WMTS&REQUEST=GetTile&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=31&FORMAT=image/jpeg"
	cases := []struct {
		path, query string
		kind        failure.Kind
		code        string
		locator     string
	}{
		{tilePath("5", "-1", "3", "jpg"), "", failure.Invalid, failure.CodeInvalidParameter, "TileRow"},
		{tilePath("5", "1", "x", "jpg"), "", failure.Invalid, failure.CodeInvalidParameter, "TileCol"},
		{tilePath("a", "1", "1", "jpg"), "", failure.Invalid, failure.CodeInvalidParameter, "TileMatrix"},
		{tilePath("31", "1", "1", "jpg"), "", failure.Invalid, failure.CodeTileOutOfRange, "TileMatrix"},
		{tilePath("2", "4", "1", "jpg"), "", failure.Invalid, failure.CodeTileOutOfRange, "TileRow"},
		{tilePath("2", "1", "4", "jpg"), "", failure.Invalid, failure.CodeTileOutOfRange, "TileCol"},
		{tilePath("5", "1", "1", "exe"), "", failure.Invalid, failure.CodeInvalidFormat, "Format"},
		{tilePath("5", "1", "1", "jpg%00"), "", failure.Invalid, failure.CodeInvalidParameter, ""},
		{tilePath("5", "1", "1%0d%0a", "jpg"), "", failure.Invalid, failure.CodeInvalidParameter, ""},
		{tilePath("5", "1", "99999999999", "jpg"), "", failure.Invalid, failure.CodeInvalidParameter, "TileCol"},
		{"/1.0.0/%2e%2e/default/WebMercator/5/1/1.jpg", "", failure.Invalid, failure.CodeInvalidParameter, ""},
		{"/1.0.0/a%2Fb/default/WebMercator/5/1/1.jpg", "", failure.Invalid, failure.CodeInvalidParameter, ""},
		{"/1.0.0/a..b/default/WebMercator/5/1/1.jpg", "", failure.Invalid, failure.CodeInvalidParameter, "Layer"},
		{"/1.0.0/@evil.com/default/WebMercator/5/1/1.jpg", "", failure.Invalid, failure.CodeInvalidParameter, "Layer"},
		{"/1.0.0/HxGN_Imagery//WebMercator/5/1/1.jpg", "", failure.Invalid, failure.CodeInvalidParameter, ""},
		{"/1.0.0/other.xml", "", failure.NotFound, failure.CodeNoApplicableCode, ""},
		{"/2.0.0/WMTSCapabilities.xml", "", failure.NotFound, failure.CodeNoApplicableCode, ""},
		{"", "SERVICE=WMS&REQUEST=GetCapabilities", failure.Invalid, failure.CodeInvalidParameter, "SERVICE"},
		{"", "REQUEST=GetFeatureInfo", failure.Invalid, failure.CodeOperationNotSupp, "REQUEST"},
		{"", "REQUEST=GetCapabilities&x=%zz", failure.Invalid, failure.CodeInvalidParameter, ""},
		{"", strings.Replace(kvp, "&LAYER=HxGN_Imagery", "", 1), failure.Invalid, failure.CodeMissingParameter, "LAYER"},
		{"", strings.Replace(kvp, "image/jpeg", "image/gif", 1), failure.Invalid, failure.CodeInvalidFormat, "FORMAT"},
		{"", kvp + "&VERSION=2.0.0", failure.Invalid, failure.CodeVersionNegotiation, "VERSION"},
		{"", kvp + "&TILEROW=11", failure.Invalid, failure.CodeInvalidParameter, "TileRow"},
		{"", kvp + "&LAYER=HxGN_Imagery", failure.Invalid, failure.CodeInvalidParameter, "Layer"},
		{"", strings.Replace(kvp, "HxGN_Imagery", "x,y", 1), failure.Invalid, failure.CodeInvalidParameter, "Layer"},
		{"", strings.Replace(kvp, "HxGN_Imagery", "http://evil.com/", 1), failure.Invalid, failure.CodeInvalidParameter, "Layer"},
	}
	for _, tc := range cases {
		_, err := Parse(tc.path, tc.query)
		fe := failure.As(err)
		if err == nil || fe.Kind != tc.kind || fe.ExceptionCode() != tc.code || fe.Locator != tc.locator {
			t.Errorf("Parse(%q, %q) = %v (kind %v code %s locator %q); want kind %v code %s locator %q",
				tc.path, tc.query, err, fe.Kind, fe.ExceptionCode(), fe.Locator, tc.kind, tc.code, tc.locator)
		}
	}
}

func TestUpstreamURLs(t *testing.T) {
	const base = "https://services.hxgncontent.com"
	r, _ := Parse("/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.png", "access_token=client-token")
	got := upstream.WithToken(r.TileURL(base+ServicePath), "tok+/=")
	want := base + "/streaming/wmts?/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.png&access_token=tok%2B%2F%3D"
	if got != want {
		t.Fatalf("REST:\n got %s\nwant %s", got, want)
	}
	k, _ := Parse("", "REQUEST=GetTile&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=31&FORMAT=image/jpeg&access_token=client-token")
	u, err := url.Parse(upstream.WithToken(k.TileURL(base+ServicePath), "tok"))
	if err != nil || u.Host != "services.hxgncontent.com" {
		t.Fatalf("KVP url %v %v", u, err)
	}
	q := u.Query()
	if q.Get("access_token") != "tok" || len(q["access_token"]) != 1 || q.Get("TILECOL") != "31" || q.Get("FORMAT") != "image/jpeg" {
		t.Fatalf("KVP query %v", q)
	}
	if got := upstream.WithToken(CapabilitiesURL(base+ServicePath), "t"); got != base+"/streaming/wmts?SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0&access_token=t" {
		t.Fatal(got)
	}
}

func TestParseQuery(t *testing.T) {
	const kvp = "SERVICE=WMTS&REQUEST=GetTile&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=31&FORMAT=image/png"
	q, err := ows.Params(kvp)
	if err != nil {
		t.Fatal(err)
	}
	before := maps.Clone(q)
	got, err := ParseQuery("", q, nil)
	want, _ := Parse("", kvp)
	if err != nil || got != want || got.Kind != Tile || !maps.Equal(q, before) {
		t.Fatalf("ParseQuery = %+v, %v; want %+v and q unchanged", got, err, want)
	}
	if got, err := ParseQuery("/", nil, nil); err != nil || got != (Request{Kind: Capabilities, KVP: true}) {
		t.Fatalf("nil Query: %+v %v", got, err)
	}
	// The query's own error is the KVP form's, and only its.
	_, qErr := ows.Params("SERVICE=WMTS&LAYER=%zz")
	if qErr == nil {
		t.Fatal("a query with bad encoding parsed")
	}
	if _, err := ParseQuery("", nil, qErr); err != qErr {
		t.Fatalf("KVP with a malformed query: %v, want the query's error", err)
	}
	tile := "/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.jpg"
	if got, err := ParseQuery(tile, nil, qErr); err != nil || got.Kind != Tile {
		t.Fatalf("a REST tile with a malformed query: %+v %v, want the tile", got, err)
	}
}

// TestParseBounded: a 1 MB query or path is refused in one pass, without
// splitting or decoding it; a REST request's query is never read.
func TestParseBounded(t *testing.T) {
	const tilePath = "/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.jpg"
	huge := strings.Repeat("x=&", 330_000)
	if r, err := Parse(tilePath, huge); err != nil || r.Kind != Tile {
		t.Errorf("REST tile with a huge query: %+v, %v", r, err)
	}
	_, err := Parse("", huge)
	if fe := failure.As(err); err == nil || fe.HTTPStatus() != 400 {
		t.Errorf("KVP with a 1 MB query: %v, want 400", err)
	}
	deep := strings.Repeat("/a", 500_000)
	_, err = Parse(deep, "")
	if fe := failure.As(err); err == nil || fe.Kind != failure.NotFound {
		t.Errorf("500,000 path segments: %v, want not found", err)
	}
	// Splitting or parsing would allocate per segment or parameter (over
	// 300,000 times); the refusal itself allocates a handful, a few more
	// when a GC has just emptied fmt's pools (which made a bound of 4 flaky).
	const refusalAllocs = 16
	if a := testing.AllocsPerRun(5, func() { Parse(deep, "") }); a > refusalAllocs {
		t.Errorf("a deep path allocated %.0f times; want it refused before splitting", a)
	}
	if a := testing.AllocsPerRun(5, func() { Parse("", huge) }); a > refusalAllocs {
		t.Errorf("a huge query allocated %.0f times; want it refused before parsing", a)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("/1.0.0/HxGN_Imagery/default/WebMercator/5/10/31.jpg", "")
	f.Add("", "SERVICE=WMTS&REQUEST=GetTile&LAYER=a&STYLE=b&TILEMATRIXSET=c&TILEMATRIX=1&TILEROW=0&TILECOL=1&FORMAT=image/png")
	f.Add("/1.0.0/WMTSCapabilities.xml", "request=GetCapabilities")
	f.Fuzz(func(t *testing.T, path, query string) {
		r, err := Parse(path, query)
		if err != nil || r.Kind != Tile {
			return
		}
		u, err := url.Parse(upstream.WithToken(r.TileURL("https://up.example"+ServicePath), "tok"))
		if err != nil {
			t.Fatalf("built an unparseable URL: %v", err)
		}
		if u.Host != "up.example" || u.Path != ServicePath || u.User != nil || u.Fragment != "" {
			t.Fatalf("tile URL escapes the upstream: %s", u)
		}
		if got := u.Query()["access_token"]; len(got) != 1 || got[0] != "tok" {
			t.Fatalf("token not exactly once: %v", got)
		}
	})
}

// The builders know nothing of tokens: a client's access_token never
// reaches the upstream URL, and the token is added in one place.
func TestUpstreamURLsCarryNoToken(t *testing.T) {
	r, _ := Parse("", "REQUEST=GetTile&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=31&FORMAT=image/jpeg&access_token=client-token")
	for _, u := range []string{r.TileURL("https://up" + ServicePath), CapabilitiesURL("https://up" + ServicePath)} {
		if strings.Contains(strings.ToLower(u), "access_token") {
			t.Fatalf("a token-less builder wrote a token: %s", u)
		}
	}
	if r.Tile.MediaType() != "image/jpeg" {
		t.Fatalf("media type %q", r.Tile.MediaType())
	}
}

// A tile is relayed only as an image, or the declared format asked for.
func TestAccept(t *testing.T) {
	jpg, err := Parse("/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg", "")
	if err != nil {
		t.Fatal(err)
	}
	if a := jpg.Tile.Accept(); !a("image/png") || a("text/html") || a("text/plain") {
		t.Fatal("an image tile relays images alone")
	}
	txt, err := Parse("/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.txt", "")
	if err != nil {
		t.Skipf("no text tiles here: %v", err)
	}
	if a := txt.Tile.Accept(); !a("text/plain") || !a("image/png") || a("text/html") {
		t.Fatal("a text tile relays its own format and images alone")
	}
}
