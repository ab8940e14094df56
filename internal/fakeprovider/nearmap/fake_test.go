package nearmap_test

import (
	"bytes"
	"encoding/xml"
	"image"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "image/jpeg"
	_ "image/png"

	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/nearmap"
	"github.com/hexprox/hexprox/internal/testclock"
)

const key = "NMKEY-test-4711"

func server(t *testing.T, o nearmap.Options) (*nearmap.Fake, string) {
	t.Helper()
	f := nearmap.New(o)
	f.AddKey(key)
	return f, faketest.Serve(t, f)
}

// Every URL in the WMTS capabilities carries the key in its path, below
// the base the request reached (or Options.Base, a regional host), from
// both the RESTful and the KVP capabilities request; a ResourceURL
// template, filled in, fetches a JPEG tile.
func TestWMTSCapabilitiesCarryTheKeyInThePath(t *testing.T) {
	f, base := server(t, nearmap.Options{})
	svc := base + nearmap.WMTSPrefix + key
	for _, u := range []string{svc + "/1.0.0/WMTSCapabilities.xml", svc + "?SERVICE=WMTS&REQUEST=GetCapabilities"} {
		resp, body := faketest.Get(t, u, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
		}
		urls := faketest.URLs(t, body)
		if len(urls) != 6 {
			t.Errorf("%d URLs in the capabilities, want 6: %q", len(urls), urls)
		}
		for _, h := range urls {
			if !strings.HasPrefix(h, svc+"/") && !strings.HasPrefix(h, svc+"?") {
				t.Errorf("URL %q is not below %q", h, svc)
			}
		}
		if !bytes.Contains(body, []byte("<ows:Identifier>nearmap.com</ows:Identifier>")) {
			t.Errorf("no layer nearmap.com")
		}
	}
	_, body := faketest.Get(t, svc+"/1.0.0/WMTSCapabilities.xml", nil)
	var tmpl string
	for _, h := range faketest.URLs(t, body) {
		if strings.Contains(h, "{TileMatrix}") {
			tmpl = h
		}
	}
	u := strings.NewReplacer("{TileMatrix}", "18", "{TileRow}", "100", "{TileCol}", "200").Replace(tmpl)
	resp, tile := faketest.Get(t, u, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(tile, f.JPEG()) {
		t.Fatalf("tile from %s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	kvp := svc + "?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=nearmap.com&STYLE=default&TILEMATRIXSET=GoogleMapsCompatible&TILEMATRIX=3&TILEROW=1&TILECOL=2&FORMAT=image/jpeg"
	if resp, _ := faketest.Get(t, kvp, nil); resp.StatusCode != 200 {
		t.Errorf("KVP GetTile: %d", resp.StatusCode)
	}
	if f.CapabilitiesRequests.Load() != 3 || f.TileRequests.Load() != 2 {
		t.Errorf("counters: capabilities %d, tiles %d", f.CapabilitiesRequests.Load(), f.TileRequests.Load())
	}

	_, regional := server(t, nearmap.Options{Base: "https://us0.nearmap.com"})
	_, body = faketest.Get(t, regional+nearmap.WMTSPrefix+key+"/1.0.0/WMTSCapabilities.xml", nil)
	for _, h := range faketest.URLs(t, body) {
		if !strings.HasPrefix(h, "https://us0.nearmap.com"+nearmap.WMTSPrefix+key) {
			t.Errorf("regional base: URL %q", h)
		}
	}
}

// The key is accepted in the path, as apikey, and as "Authorization:
// Apikey" with exactly that case; anything else is 401.
func TestKeyPlacements(t *testing.T) {
	f, base := server(t, nearmap.Options{})
	caps := "/1.0.0/WMTSCapabilities.xml"
	for _, c := range []struct {
		name, path string
		h          map[string]string
		want       int
	}{
		{"path", nearmap.WMTSPrefix + key + caps, nil, 200},
		{"query", nearmap.WMTSPrefix + "-" + caps + "?apikey=" + key, nil, 200},
		{"header", nearmap.WMTSPrefix + "-" + caps, map[string]string{"Authorization": "Apikey " + key}, 200},
		{"wms path", nearmap.WMSPrefix + key + "?SERVICE=WMS&REQUEST=GetCapabilities", nil, 200},
		{"lower-case scheme", nearmap.WMTSPrefix + "-" + caps, map[string]string{"Authorization": "apikey " + key}, 401},
		{"upper-case scheme", nearmap.WMTSPrefix + "-" + caps, map[string]string{"Authorization": "APIKEY " + key}, 401},
		{"bearer", nearmap.WMTSPrefix + "-" + caps, map[string]string{"Authorization": "Bearer " + key}, 401},
		{"query in another case", nearmap.WMTSPrefix + "-" + caps + "?APIKEY=" + key, nil, 401},
		{"wrong path key", nearmap.WMTSPrefix + "wrong" + caps, nil, 401},
		{"wrong wms key", nearmap.WMSPrefix + "wrong?SERVICE=WMS&REQUEST=GetCapabilities", nil, 401},
	} {
		resp, body := faketest.Get(t, base+c.path, c.h)
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if c.want == 401 && bytes.Contains(body, []byte(key)) {
			t.Errorf("%s: refusal echoes the key", c.name)
		}
	}
	if f.Refused.Load() != 6 {
		t.Errorf("Refused %d, want 6", f.Refused.Load())
	}
	f.RevokeKey(key)
	if resp, _ := faketest.Get(t, base+nearmap.WMTSPrefix+key+caps, nil); resp.StatusCode != 401 {
		t.Errorf("revoked key: %d", resp.StatusCode)
	}
}

type wmsCaps struct {
	Version string   `xml:"version,attr"`
	SRS     []string `xml:"Capability>Layer>SRS"`
	Names   []string `xml:"Capability>Layer>Layer>Name"`
}

// The WMS speaks 1.1.1 with the key in the OnlineResource paths, draws
// maps of the requested size, and answers its errors 200 with a
// ServiceExceptionReport.
func TestWMS111(t *testing.T) {
	f, base := server(t, nearmap.Options{})
	svc := base + nearmap.WMSPrefix + key
	resp, body := faketest.Get(t, svc+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("capabilities: %d", resp.StatusCode)
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	var c wmsCaps
	if err := d.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Version != "1.1.1" || len(c.SRS) == 0 || len(c.Names) != 1 || c.Names[0] != nearmap.WMSLayer {
		t.Errorf("capabilities %+v", c)
	}
	for _, h := range faketest.URLs(t, body) {
		if !strings.HasPrefix(h, svc) {
			t.Errorf("OnlineResource %q is not below %q", h, svc)
		}
	}
	q := url.Values{"SERVICE": {"WMS"}, "VERSION": {"1.1.1"}, "REQUEST": {"GetMap"}, "LAYERS": {nearmap.WMSLayer}, "STYLES": {""},
		"SRS": {"EPSG:3857"}, "BBOX": {"0,0,1000,500"}, "WIDTH": {"300"}, "HEIGHT": {"150"}, "FORMAT": {"image/png"}}
	resp, body = faketest.Get(t, svc+"?"+q.Encode(), nil)
	cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
	if resp.StatusCode != 200 || err != nil || format != "png" || cfg.Width != 300 || cfg.Height != 150 {
		t.Fatalf("GetMap: %d %v %s %dx%d", resp.StatusCode, err, format, cfg.Width, cfg.Height)
	}
	for name, change := range map[string]func(url.Values){
		"LayerNotDefined": func(v url.Values) { v.Set("LAYERS", "nope") },
		"InvalidSRS":      func(v url.Values) { v.Del("SRS"); v.Set("CRS", "EPSG:3857"); v.Set("VERSION", "1.3.0") },
		"InvalidFormat":   func(v url.Values) { v.Set("FORMAT", "image/gif") },
	} {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		change(v)
		resp, body := faketest.Get(t, svc+"?"+v.Encode(), nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.ogc.se_xml" ||
			!bytes.Contains(body, []byte("<ServiceExceptionReport")) || !bytes.Contains(body, []byte(`code="`+name+`"`)) {
			t.Errorf("%s: %d %s %s", name, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	}
	if f.MapRequests.Load() != 1 {
		t.Errorf("MapRequests %d", f.MapRequests.Load())
	}
	f.Set(nearmap.Switches{KeyExceptions: true})
	resp, body = faketest.Get(t, base+nearmap.WMSPrefix+"wrong?"+q.Encode(), nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<ServiceExceptionReport")) {
		t.Errorf("KeyExceptions: %d %s", resp.StatusCode, body)
	}
}

// Every answer carries X-Ratelimit-*; past the limit the answer is 429
// with Retry-After until the window ends.
func TestRateLimit(t *testing.T) {
	c := testclock.New(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	_, base := server(t, nearmap.Options{RateLimit: 2, RateWindow: time.Minute, Now: c.Now})
	caps := base + nearmap.WMTSPrefix + key + "/1.0.0/WMTSCapabilities.xml"
	check := func(name, u string, status int, remaining, reset string) *http.Response {
		t.Helper()
		resp, _ := faketest.Get(t, u, nil)
		h := resp.Header
		if resp.StatusCode != status || h.Get("X-Ratelimit-Limit") != "2" || h.Get("X-Ratelimit-Remaining") != remaining || h.Get("X-Ratelimit-Reset") != reset {
			t.Errorf("%s: %d limit %q remaining %q reset %q; want %d, 2, %s, %s", name, resp.StatusCode,
				h.Get("X-Ratelimit-Limit"), h.Get("X-Ratelimit-Remaining"), h.Get("X-Ratelimit-Reset"), status, remaining, reset)
		}
		return resp
	}
	check("first", caps, 200, "1", "60")
	c.Advance(20 * time.Second)
	check("refused key", base+nearmap.WMTSPrefix+"wrong/1.0.0/WMTSCapabilities.xml", 401, "0", "40")
	resp := check("over", caps, 429, "0", "40")
	if resp.Header.Get("Retry-After") != "40" {
		t.Errorf("Retry-After %q, want 40", resp.Header.Get("Retry-After"))
	}
	c.Advance(40 * time.Second)
	check("next window", caps, 200, "1", "60")
}

// A forced 429 carries Retry-After and the X-Ratelimit headers.
func TestForced429(t *testing.T) {
	f, base := server(t, nearmap.Options{})
	f.Set(nearmap.Switches{Status: 429, RetryAfter: "12"})
	resp, _ := faketest.Get(t, base+nearmap.WMSPrefix+key+"?REQUEST=GetCapabilities", nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "12" || resp.Header.Get("X-Ratelimit-Limit") == "" {
		t.Errorf("%d %v", resp.StatusCode, resp.Header)
	}
}
