package capabilities

import (
	"encoding/xml"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/fakehexagon"
)

var update = flag.Bool("update", false, "rewrite golden files")

const token = "hxtok-SECRET-TOKEN-0123"

// shortToken is a degenerate token the fuzz targets also scrub: it occurs
// in every document by accident and must only go where a token could be.
const shortToken = "0"

func fakeDoc(t testing.TB, sw fakehexagon.Switches) []byte {
	t.Helper()
	return fakeDocToken(t, sw, token)
}

// fakeDocToken is the fake's WMTS capabilities fetched with tok.
func fakeDocToken(t testing.TB, sw fakehexagon.Switches, tok string) []byte {
	t.Helper()
	f := fakehexagon.New(fakehexagon.Options{})
	r := httptest.NewRequest("GET", "http://127.0.0.1:39999/streaming/wmts?/1.0.0/WMTSCapabilities.xml", nil)
	return f.CapabilitiesDocument(r, sw, tok)
}

func wmtsOptions() Options {
	return Options{Match: ServiceMatcher("/streaming/wmts"), Roots: []string{"Capabilities"}, Secrets: []string{token}}
}

func render(t testing.TB, d *Document, base string) string {
	t.Helper()
	return string(d.Bytes(base))
}

func TestRewriteWMTSGolden(t *testing.T) {
	const base = "https://proxy.example/wmts/aWQ/c2VjcmV0"
	var outputs []string
	for _, sw := range []fakehexagon.Switches{
		{TokenInCapabilities: true},
		{CapabilitiesBase: "request"},
		{},
	} {
		d, err := Rewrite(fakeDoc(t, sw), wmtsOptions())
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, render(t, d, base))
	}
	// Whatever host the upstream wrote and whether it echoed the token,
	// the result is the same.
	for i, o := range outputs[1:] {
		if o != outputs[0] {
			t.Fatalf("output %d differs from output 0", i+1)
		}
	}
	got := outputs[0]
	golden := "testdata/wmts-rewritten.xml"
	if *update {
		os.WriteFile(golden, []byte(got), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("rewritten document differs from %s (run with -update after checking)", golden)
	}
	for _, bad := range []string{token, "access_token", "hxgncontent", "127.0.0.1", "wmts?/"} {
		if strings.Contains(got, bad) {
			t.Errorf("output still contains %q", bad)
		}
	}
	if !strings.Contains(got, `xlink:href="https://hexagon.com/"`) {
		t.Error("the provider's site must be left alone")
	}
	wantTemplate := `template="` + base + `/1.0.0/HxGN_Imagery/default/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.jpg"`
	if !strings.Contains(got, wantTemplate) {
		t.Errorf("missing clean REST template %s", wantTemplate)
	}
	assertWellFormed(t, got)
}

func TestRewriteKeepsUntouchedBytes(t *testing.T) {
	in := `<?xml version="1.0"?>
<!-- comment with https://services.hxgncontent.com/streaming/wmts? -->
<Capabilities xmlns:xlink="http://www.w3.org/1999/xlink" a='single'>
  <x:Thing xmlns:x="urn:x"   spaced = "1"/>
  <Get xlink:href="https://services.hxgncontent.com/streaming/wmts?" other="&lt;&amp;"/>
  <![CDATA[ raw <stuff> ]]>
</Capabilities>`
	d, err := Rewrite([]byte(in), wmtsOptions())
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, d, "http://p/wmts/a/b")
	want := strings.Replace(in, `<Get xlink:href="https://services.hxgncontent.com/streaming/wmts?" other="&lt;&amp;"/>`,
		`<Get xlink:href="http://p/wmts/a/b?" other="&lt;&amp;"/>`, 1)
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if d.Insertions() != 1 {
		t.Fatalf("insertions %d", d.Insertions())
	}
}

func TestRewriteEscapesBase(t *testing.T) {
	d, err := Rewrite([]byte(`<Capabilities><R template="/streaming/wmts?/1.0.0/a.jpg"/></Capabilities>`), wmtsOptions())
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, d, `http://p/"&<`)
	if !strings.Contains(got, `template="http://p/&#34;&amp;&lt;/1.0.0/a.jpg"`) {
		t.Fatalf("base not escaped: %s", got)
	}
}

func TestRewriteRefuses(t *testing.T) {
	cases := map[string]string{
		"not xml":           "<html><body>down",
		"empty":             "",
		"exception report":  `<ExceptionReport><Exception/></ExceptionReport>`,
		"entity expansion":  `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><Capabilities>&lol2;</Capabilities>`,
		"undeclared entity": `<Capabilities>&boom;</Capabilities>`,
		"mismatched":        `<Capabilities><a></b></Capabilities>`,
		"unclosed":          `<Capabilities><a>`,
		"two roots":         `<Capabilities/><Capabilities/>`,
		"latin1":            `<?xml version="1.0" encoding="ISO-8859-1"?><Capabilities/>`,
	}
	for name, in := range cases {
		if _, err := Rewrite([]byte(in), wmtsOptions()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestServiceMatcher(t *testing.T) {
	m := ServiceMatcher("/streaming/wmts")
	cases := map[string]string{
		"https://services.hxgncontent.com/streaming/wmts?":                                "?",
		"http://other.host:8080/streaming/wmts?/1.0.0/WMTSCapabilities.xml":               "/1.0.0/WMTSCapabilities.xml",
		"//services.hxgncontent.com/streaming/wmts?/1.0.0/a/{TileRow}.jpg&access_token=x": "/1.0.0/a/{TileRow}.jpg",
		"/streaming/wmts?SERVICE=WMTS&access_token=x&":                                    "?SERVICE=WMTS&",
		"HTTPS://H/Streaming/WMTS/1.0.0/WMTSCapabilities.xml":                             "/1.0.0/WMTSCapabilities.xml",
		"https://h/streaming/wmts":                                                        "",
		"https://h/streaming/wmts?access_token=abc":                                       "?",
	}
	for in, want := range cases {
		if got, ok := m(in); !ok || got != want {
			t.Errorf("m(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"https://hexagon.com/", "https://h/streaming/wmtsx", "https://h/streaming/wms?", "streaming/wmts", "https://h", "mailto:x", "https://h?/streaming/wmts"} {
		if got, ok := m(in); ok {
			t.Errorf("m(%q) matched: %q", in, got)
		}
	}
}

// One matcher for both of Hexagon's families: either's URLs come back.
func TestServiceMatcherOfSeveralPaths(t *testing.T) {
	m := ServiceMatcher("/streaming/wmts", "/orders/wmts")
	for in, want := range map[string]string{
		"https://h/streaming/wmts?/1.0.0/a.jpg&access_token=x": "/1.0.0/a.jpg",
		"https://h/orders/wmts?/1.0.0/a.jpg&access_token=x":    "/1.0.0/a.jpg",
		"/ORDERS/wmts?SERVICE=WMTS":                            "?SERVICE=WMTS",
	} {
		if got, ok := m(in); !ok || got != want {
			t.Errorf("m(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"https://h/orders/wms?", "https://h/ordersx/wmts?", "https://h/other/wmts?"} {
		if got, ok := m(in); ok {
			t.Errorf("m(%q) matched: %q", in, got)
		}
	}
}

func assertWellFormed(t testing.TB, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("output is not well-formed: %v", err)
		}
	}
}

func FuzzRewrite(f *testing.F) {
	// Small seeds: the full document (covered by the golden test) makes
	// the fuzzer spend its time minimising.
	f.Add([]byte(`<?xml version="1.0"?><Capabilities xmlns:ows="urn:ows" xmlns:xlink="http://www.w3.org/1999/xlink"><ows:Get xlink:href="https://h/streaming/wmts?/1.0.0/WMTSCapabilities.xml&amp;access_token=` + token + `"/><ResourceURL format="image/png" template="https://h/streaming/wmts?/1.0.0/L/default/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.png"/><!-- c --><x a='1'>t&amp;</x></Capabilities>`))
	f.Add([]byte(`<Capabilities><a xlink:href="/streaming/wmts?x=1&amp;access_token=` + token + `"/></Capabilities>`))
	f.Add([]byte(`<Capabilities><R template="//h/streaming/wmts?/1.0.0/{a}.png"/><![CDATA[x]]></Capabilities>`))
	f.Add([]byte(`<Capabilities version="1.0.0"><!-- ?access_token=0 --><x a="https://o/?b=0,0,1&amp;c=%30">?t=0 <![CDATA[?u=0]]></x></Capabilities>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := Rewrite(in, Options{Match: ServiceMatcher("/streaming/wmts"), Secrets: []string{token, shortToken}})
		if err != nil {
			return
		}
		out := render(t, d, "http://p/wmts/a/b")
		assertWellFormed(t, out)
		assertNoSecretInQueries(t, out, token)
		assertNoSecretInQueries(t, out, shortToken)
	})
}

func FuzzRewriteWMS(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><WMS_Capabilities version="1.3.0" xmlns:xlink="http://www.w3.org/1999/xlink"><Service><OnlineResource xlink:href="https://h/streaming/wms?"/></Service><Capability><Request><GetMap><DCPType><HTTP><Get><OnlineResource xlink:type="simple" xlink:href="https://h/streaming/wms?access_token=` + token + `&amp;"/></Get></HTTP></DCPType></GetMap></Request><Layer><Style><LegendURL><OnlineResource xlink:href="//h/streaming/wms?SERVICE=WMS&amp;REQUEST=GetLegendGraphic&amp;LAYER=x&amp;access_token=` + token + `"/></LegendURL></Style></Layer></Capability></WMS_Capabilities>`))
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE WMT_MS_Capabilities SYSTEM "x.dtd" [ <!ELEMENT V EMPTY> ]><WMT_MS_Capabilities version="1.1.1"><Service><OnlineResource xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="http://h/streaming/wms?"/></Service></WMT_MS_Capabilities>`))
	m := ServiceMatcher("/streaming/wms")
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := Rewrite(in, Options{Match: m, Roots: []string{"WMS_Capabilities", "WMT_MS_Capabilities"}, Secrets: []string{token, shortToken}})
		if err != nil {
			return
		}
		out := render(t, d, "http://p/wms/a/b")
		assertNoSecretInQueries(t, out, token)
		assertNoSecretInQueries(t, out, shortToken)
		dec := xml.NewDecoder(strings.NewReader(out))
		dec.Strict = false
		for {
			if _, err := dec.RawToken(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("output is not well-formed: %v", err)
			}
		}
	})
}
