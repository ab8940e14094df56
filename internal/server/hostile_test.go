package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/server"
)

// hostileCase is one request from someone who means harm or knows no
// better. upstream says whether it may reach Hexagon at all.
type hostileCase struct {
	name     string
	method   string
	path     string // raw, escapes kept as written
	header   map[string]string
	status   int
	upstream bool
	// byHTTP marks requests so malformed that net/http answers them
	// itself (plain text) before any handler runs.
	byHTTP bool
}

func hostileCases(evil string) []hostileCase {
	id, sec := credential.Encode(clientID), credential.Encode(clientSecret)
	w := "/wmts/" + id + "/" + sec
	m := "/wms/" + id + "/" + sec
	tile := w + "/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg"
	kvp := w + "?SERVICE=WMTS&REQUEST=GetTile&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=12&FORMAT=image/jpeg"
	gm := m + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	get := func(name, path string, status int) hostileCase {
		return hostileCase{name: name, method: "GET", path: path, status: status}
	}
	cs := []hostileCase{
		// Credentials.
		get("base64 garbage id", "/wmts/!!!!/"+sec+"/1.0.0/WMTSCapabilities.xml", 400),
		get("base64 garbage secret", "/wmts/"+id+"/@@@@/1.0.0/WMTSCapabilities.xml", 400),
		get("one segment only", "/wmts/"+id, 400),
		get("empty segments", "/wmts//"+sec+"/1.0.0/WMTSCapabilities.xml", 400),
		get("oversized id", "/wmts/"+strings.Repeat("QUJD", 200)+"/"+sec+"/1.0.0/WMTSCapabilities.xml", 400),
		get("oversized secret", "/wmts/"+id+"/"+strings.Repeat("QUJD", 5000)+"/1.0.0/WMTSCapabilities.xml", 400),
		get("single base64 char", "/wmts/A/"+sec+tilePath, 400),
		get("id decodes to binary", "/wmts/"+credential.Encode("\x01\x02")+"/"+sec+tilePath, 400),
		get("id decodes to invalid utf-8", "/wmts/__8/"+sec+tilePath, 400),
		get("wms bad credential", "/wms/!!/"+sec, 400),
		// Paths.
		get("huge path", w+"/1.0.0/"+strings.Repeat("a/", 4000)+"x.jpg", 404),
		get("huge query", w+"?SERVICE=WMTS&REQUEST=GetTile&LAYER="+strings.Repeat("A", 60000), 400),
		get("encoded dot-dot", w+"/1.0.0/%2e%2e/%2e%2e/WebMercator/5/10/12.jpg", 400),
		get("encoded slash in layer", w+"/1.0.0/Hx%2FGN/default/WebMercator/5/10/12.jpg", 400),
		get("backslash traversal", w+"/1.0.0/..%5c..%5cetc/default/WebMercator/5/10/12.jpg", 400),
		{name: "bad percent escape", method: "GET", path: w + "/1.0.0/%zz/default/WebMercator/5/10/12.jpg", status: 400, byHTTP: true},
		get("bad percent escape in query", kvp+"&X=%zz", 400),
		get("negative row", w+"/1.0.0/HxGN_Imagery/default/WebMercator/5/-1/12.jpg", 400),
		get("float col", w+"/1.0.0/HxGN_Imagery/default/WebMercator/5/1/1.5.jpg", 400),
		get("hex index", w+"/1.0.0/HxGN_Imagery/default/WebMercator/0x5/1/1.jpg", 400),
		get("overflowing index", w+"/1.0.0/HxGN_Imagery/default/WebMercator/5/1/99999999999999999999.jpg", 400),
		get("row outside the grid", w+"/1.0.0/HxGN_Imagery/default/WebMercator/3/8/1.jpg", 400),
		get("executable extension", w+"/1.0.0/HxGN_Imagery/default/WebMercator/5/1/1.php", 400),
		get("no extension", w+"/1.0.0/HxGN_Imagery/default/WebMercator/5/1/1", 400),
		get("unknown resource", w+"/1.0.0/secrets.txt", 404),
		get("other version", w+"/2.0.0/WMTSCapabilities.xml", 404),
		get("wms extra path", m+"/../../etc/passwd", 404),
		get("unknown route", "/admin", 404),
		get("unknown route with credential shape", "/wmtsx/"+id+"/"+sec, 404),
		get("v1 without credential", "/v1/wmts/key", 400),
		// Host override attempts.
		get("userinfo in layer", w+"/1.0.0/@"+strings.TrimPrefix(evil, "http://")+"/default/WebMercator/5/1/1.jpg", 400),
		get("double slash host", "//"+strings.TrimPrefix(evil, "http://")+"/x", 404),
		get("absolute URL in LAYER", kvp+"&LAYER="+url.QueryEscape(evil+"/"), 400),
		get("absolute URL in FORMAT", strings.Replace(kvp, "image/jpeg", url.QueryEscape(evil), 1), 400),
		get("absolute URL in WMS LAYERS", strings.Replace(gm, "LAYERS=HxGN_Imagery", "LAYERS="+url.QueryEscape(evil), 1), 400),
		get("absolute URL in WMS CRS", strings.Replace(gm, "CRS=EPSG:3857", "CRS="+url.QueryEscape(evil), 1), 400),
		get("WMS BBOX injection", strings.Replace(gm, "BBOX=0,0,10,10", "BBOX=0,0,10,10%26access_token%3Dx", 1), 400),
		get("SERVICE override", w+"?SERVICE="+url.QueryEscape(evil)+"&REQUEST=GetCapabilities", 400),
		// Operations and versions.
		get("unknown WMTS request", w+"?SERVICE=WMTS&REQUEST=GetFeatureInfo", 400),
		get("unknown WMS request", m+"?SERVICE=WMS&REQUEST=Transaction", 400),
		get("WMS map too large", strings.Replace(gm, "WIDTH=64", "WIDTH=100000", 1), 400),
		get("WMS zero height", strings.Replace(gm, "HEIGHT=64", "HEIGHT=0", 1), 400),
		get("WMS missing BBOX", strings.Replace(gm, "&BBOX=0,0,10,10", "", 1), 400),
		get("WMS inverted BBOX", strings.Replace(gm, "BBOX=0,0,10,10", "BBOX=10,10,0,0", 1), 400),
		get("WMS infinite BBOX", strings.Replace(gm, "BBOX=0,0,10,10", "BBOX=-Inf,0,10,10", 1), 400),
		get("WMS version 9", strings.Replace(gm, "1.3.0", "9.0", 1), 400),
		get("semicolon query separator", kvp+";TILEROW=1", 400),
		// Methods and content types.
		{name: "POST", method: "POST", path: tile, status: 405},
		{name: "PUT", method: "PUT", path: tile, status: 405},
		{name: "DELETE", method: "DELETE", path: w, status: 405},
		{name: "PATCH wms", method: "PATCH", path: gm, status: 405},
		{name: "POST xml body", method: "POST", path: w, header: map[string]string{"Content-Type": "text/xml"}, status: 405},
		{name: "TRACE", method: "TRACE", path: "/healthz", status: 405},
		// Origins.
		{name: "foreign origin", method: "GET", path: tile, header: map[string]string{"Origin": evil}, status: 403},
		{name: "null origin", method: "GET", path: tile, header: map[string]string{"Origin": "null"}, status: 403},
		{name: "origin suffix trick", method: "GET", path: tile, header: map[string]string{"Origin": "https://arcgis.com.evil.example"}, status: 403},
		{name: "foreign preflight", method: "OPTIONS", path: gm, header: map[string]string{"Origin": evil, "Access-Control-Request-Method": "GET"}, status: 403},
		// Accepted, but only on the proxy's terms: the client's token is dropped.
		{name: "client access_token on REST tile", method: "GET", path: tile + "?access_token=stolen-token", status: 302, upstream: true},
		{name: "client access_token on KVP tile", method: "GET", path: kvp + "&access_token=stolen-token&ACCESS_TOKEN=x", status: 302, upstream: true},
		{name: "client access_token on WMS", method: "GET", path: gm + "&access_token=stolen-token", status: 302, upstream: true},
		{name: "spoofed X-Forwarded-Host with PUBLIC_BASE_URL", method: "GET", path: w + "/1.0.0/WMTSCapabilities.xml", header: map[string]string{"X-Forwarded-Host": strings.TrimPrefix(evil, "http://"), "X-Forwarded-Proto": "http"}, status: 200, upstream: true},
	}
	// CR, LF and NUL, percent-encoded, in every position they can reach.
	for _, c := range []string{"%0d", "%0a", "%00"} {
		cs = append(cs,
			get("control "+c+" in id", "/wmts/"+id+c+"/"+sec+tilePath, 400),
			get("control "+c+" in secret", "/wmts/"+id+"/"+c+sec+tilePath, 400),
			get("control "+c+" in layer", w+"/1.0.0/HxGN"+c+"_Imagery/default/WebMercator/5/10/12.jpg", 400),
			get("control "+c+" in style", w+"/1.0.0/HxGN_Imagery/def"+c+"ault/WebMercator/5/10/12.jpg", 400),
			get("control "+c+" in matrix", w+"/1.0.0/HxGN_Imagery/default/WebMercator/5"+c+"/10/12.jpg", 400),
			get("control "+c+" in extension", w+"/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg"+c, 400),
			get("control "+c+" in KVP value", strings.Replace(kvp, "TILEROW=10", "TILEROW=10"+c, 1), 400),
			get("control "+c+" in WMS value", strings.Replace(gm, "FORMAT=image/png", "FORMAT=image/png"+c+"Set-Cookie:x", 1), 400),
		)
	}
	return cs
}

func TestHostileInput(t *testing.T) {
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evilHits.Add(1) }))
	defer evil.Close()
	h := newHarness(t, map[string]string{"PUBLIC_BASE_URL": "https://maps.example.org"})
	cases := hostileCases(evil.URL)
	if len(cases) < 60 {
		t.Fatalf("only %d hostile cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.fake.TokenRequests.Load() + h.fake.WMTSRequests.Load() + h.fake.WMSRequests.Load()
			req, err := http.NewRequest(tc.method, h.proxy.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			// Send the path exactly as written, escapes and all.
			req.URL.Opaque, req.URL.RawQuery, _ = strings.Cut(tc.path, "?")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			h.noteToken()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%.400s", resp.StatusCode, tc.status, body.String())
			}
			if !tc.byHTTP {
				assertClientFormat(t, tc, resp, body.Bytes())
			}
			h.assertNoSecrets(body.Bytes())
			for _, v := range resp.Header {
				for _, s := range v {
					if strings.Contains(s, "stolen-token") || strings.Contains(s, "maps.example.org") && tc.status != 200 {
						t.Fatalf("header carries %q", s)
					}
				}
			}
			after := h.fake.TokenRequests.Load() + h.fake.WMTSRequests.Load() + h.fake.WMSRequests.Load()
			if !tc.upstream && after != before {
				t.Fatalf("rejected input reached Hexagon (%d requests)", after-before)
			}
			if tc.status == 302 {
				loc, _ := url.Parse(resp.Header.Get("Location"))
				live, _, _ := h.fake.CurrentToken(clientID)
				if loc.Host != strings.TrimPrefix(h.upstream.URL, "http://") || strings.Count(loc.RawQuery, "access_token=") != 1 || !strings.Contains(loc.RawQuery, url.QueryEscape(live)) {
					t.Fatalf("redirect %s must go to the upstream with exactly the proxy's token", loc)
				}
			}
			if tc.status == 200 && (bytes.Contains(body.Bytes(), []byte(evil.URL[len("http://"):])) || !bytes.Contains(body.Bytes(), []byte("https://maps.example.org/wmts/"))) {
				t.Fatal("X-Forwarded-Host reached the capabilities despite PUBLIC_BASE_URL")
			}
		})
	}
	if evilHits.Load() != 0 {
		t.Fatalf("the proxy sent %d requests to a host other than the upstream", evilHits.Load())
	}
	t.Logf("hostile input: %d requests, %d answered before Hexagon, 0 to other hosts, no secret in bodies or logs", len(cases), countRejected(cases))
}

func countRejected(cs []hostileCase) int {
	n := 0
	for _, c := range cs {
		if !c.upstream {
			n++
		}
	}
	return n
}

// expectedFormat names the error format a path's clients parse, written
// out here independently of the server's routing.
func expectedFormat(path string) string {
	switch {
	case strings.HasPrefix(path, "/wmts/"), strings.HasPrefix(path, "/v1/wmts/"), path == "/wmts":
		return "wmts"
	case strings.HasPrefix(path, "/wms/"), path == "/wms":
		return "wms"
	}
	return "json"
}

// assertClientFormat checks the error body is what the route's clients
// parse: an OWS ExceptionReport for WMTS, a ServiceExceptionReport for
// WMS, JSON elsewhere.
func assertClientFormat(t *testing.T, tc hostileCase, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode < 400 {
		return
	}
	ct := resp.Header.Get("Content-Type")
	path := tc.path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch expectedFormat(path) {
	case "wmts":
		var rep exceptionReport
		if !strings.HasPrefix(ct, "application/xml") || xml.Unmarshal(body, &rep) != nil || rep.Exception.Text == "" {
			t.Fatalf("want an ExceptionReport, got %s:\n%s", ct, body)
		}
	case "wms":
		d := xml.NewDecoder(bytes.NewReader(body))
		d.Strict = false
		var rep serviceExceptionReport
		if d.Decode(&rep) != nil || rep.XMLName.Local != "ServiceExceptionReport" || strings.TrimSpace(rep.Exception.Text) == "" {
			t.Fatalf("want a ServiceExceptionReport, got %s:\n%s", ct, body)
		}
	default:
		var v map[string]string
		if !strings.HasPrefix(ct, "application/json") || json.Unmarshal(body, &v) != nil || v["error"] == "" {
			t.Fatalf("want a JSON error, got %s:\n%s", ct, body)
		}
	}
}

func TestHostileUpstream(t *testing.T) {
	bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]><Capabilities>&lol2;</Capabilities>`
	external := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]><Capabilities>&ext;</Capabilities>`
	huge := append([]byte(`<?xml version="1.0"?><Capabilities><x>`), bytes.Repeat([]byte("A"), server.MaxCapabilities)...)
	huge = append(huge, []byte(`</x></Capabilities>`)...)
	cases := map[string][]byte{
		"entity expansion":       []byte(bomb),
		"external entity":        []byte(external),
		"gigantic document":      huge,
		"not XML":                []byte("\x89PNG\r\n\x1a\n binary"),
		"HTML error page":        []byte("<html><body><h1>502 Bad Gateway</h1></body></html>"),
		"exception report":       []byte(`<ExceptionReport><Exception exceptionCode="NoApplicableCode"/></ExceptionReport>`),
		"truncated capabilities": []byte(`<?xml version="1.0"?><Capabilities><Contents><Layer>`),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.fake.Set(fakehexagon.Switches{Capabilities: doc})
			for _, u := range []string{h.credURL(), h.wmsURL()} {
				resp, body := h.get(u, nil)
				if resp.StatusCode != 502 {
					t.Fatalf("%s: status %d, want 502:\n%.300s", u, resp.StatusCode, body)
				}
				if bytes.Contains(body, []byte("root:")) || len(body) > 4096 {
					t.Fatalf("%s: upstream content leaked into the error (%d bytes)", u, len(body))
				}
			}
		})
	}
}

// countingStore is a keys.Store that counts the lookups reaching it, so
// that tests can show malformed keys never do.
type countingStore struct {
	keys.Store
	gets  atomic.Int64
	delay time.Duration // each Get takes this long: a slow store
}

func (s *countingStore) Get(ctx context.Context, key string) (keys.Record, error) {
	s.gets.Add(1)
	time.Sleep(s.delay)
	return s.Store.Get(ctx, key)
}

// Listing lists like the store it wraps (every store here can).
func (s *countingStore) Listing(ctx context.Context) (map[string]keys.Attrs, error) {
	return s.Store.(keys.Lister).Listing(ctx)
}

// newCountingKeyHarness is newKeyHarness with the cache's store wrapped
// in a countingStore.
func newCountingKeyHarness(t *testing.T, env map[string]string) (*harness, *countingStore) {
	t.Helper()
	var counting *countingStore
	kh := newKeyHarnessOver(t, env, keys.CacheOptions{Refresh: time.Minute, NegativeTTL: time.Minute}, func(s keys.Store) keys.Store {
		counting = &countingStore{Store: s}
		return counting
	})
	return kh, counting
}

// hostileKeyCase is a hostile request on a /v2 or /about route.
type hostileKeyCase struct {
	hostileCase
	// store says whether the key store may be asked (at most once): only
	// for keys of valid syntax.
	store bool
	// says is a phrase the error must hold.
	says string
}

// hostileKeyCases returns the cases for a proxy holding valid (active)
// and revoked (revoked, contact "keys@example.org"); unknown has valid
// syntax and is in no store; evil is a server the proxy must never call.
func hostileKeyCases(valid, revoked, unknown, evil string) []hostileKeyCase {
	id, sec := credential.Encode(clientID), credential.Encode(clientSecret)
	caps := "/1.0.0/WMTSCapabilities.xml"
	wmsCaps := "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0"
	v := "/v2/wmts/" + valid
	c := func(name, path string, status int, store bool) hostileKeyCase {
		return hostileKeyCase{hostileCase: hostileCase{name: name, method: "GET", path: path, status: status}, store: store}
	}
	// A key route's errors speak of keys: a path with no key segment still
	// answers as a credential route would.
	noKey := func(name, path string) hostileKeyCase {
		k := c(name, path, 400, false)
		k.says = "API key"
		return k
	}
	var cs []hostileKeyCase
	// Malformed keys: refused as not valid, before the store is asked,
	// on every route that takes a key.
	bad := map[string]string{
		"underscore":        "hxpk_" + valid[len(keys.Prefix):],
		"dot":               valid[:20] + "." + valid[21:],
		"encoded slash":     valid[:20] + "%2F" + valid[20:],
		"encoded backslash": valid[:20] + "%5C" + valid[20:],
		"NUL":               valid + "%00",
		"CR LF":             valid + "%0d%0aSet-Cookie:%20x=1",
		"space":             valid[:20] + "%20" + valid[20:],
		"plus":              valid[:20] + "+" + valid[20:],
		"unicode escaped":   "hxpk-%C3%BC" + valid[6:],
		"unicode raw":       "hxpk-ü" + valid[6:],
		"fullwidth digit":   "hxpk-%EF%BC%91" + valid[6:],
		"113 characters":    strings.Repeat("a", keys.MaxLen+1),
		"4000 characters":   strings.Repeat("k", 4000),
		"dot-dot":           "..",
		"encoded dot-dot":   "%2e%2e",
		"percent":           "%25",
		"semicolon":         valid + ";jsessionid=1",
		"at sign":           "user@" + strings.TrimPrefix(evil, "http://"),
		"colon":             "hxpk-a:b",
		"equals padding":    valid + "==",
	}
	for what, k := range bad {
		cs = append(cs,
			c("wmts key with "+what, "/v2/wmts/"+k+caps, 403, false),
			c("wmts tile key with "+what, "/v2/wmts/"+k+tilePath, 403, false),
			c("wms key with "+what, "/v2/wms/"+k+wmsCaps, 403, false),
			c("nokeycache key with "+what, "/v2/nokeycache/wmts/"+k+caps, 403, false),
			c("about key with "+what, "/about/"+k, 403, false),
		)
	}
	cs = append(cs,
		// Keys of valid syntax that do not serve.
		c("unknown key", "/v2/wmts/"+unknown+caps, 403, true),
		c("unknown key on WMS", "/v2/wms/"+unknown+wmsCaps, 403, true),
		c("unknown key on nokeycache", "/v2/nokeycache/wmts/"+unknown+caps, 403, true),
		c("unknown key on about", "/about/"+unknown, 403, true),
		c("112 characters, unknown", "/v2/wmts/"+strings.Repeat("a", keys.MaxLen)+caps, 403, true),
		c("original-style unknown key", "/v2/wmts/0f9e8d7c-b6a5-4f32-9e1d-0c9b8a7f6e5d"+tilePath, 403, true),
		hostileKeyCase{hostileCase: hostileCase{name: "revoked key", method: "GET", path: "/v2/wmts/" + revoked + tilePath, status: 403}, store: true, says: "keys@example.org"},
		c("revoked key on WMS", "/v2/wms/"+revoked+wmsCaps, 403, true),
		c("revoked key on nokeycache", "/v2/nokeycache/wmts/"+revoked+caps, 403, true),
		c("revoked key on about", "/about/"+revoked, 403, true),
		// An empty key is a key of bad syntax.
		c("empty key segment", "/v2/wmts//1.0.0/WMTSCapabilities.xml", 403, false),
		c("empty key segment on WMS", "/v2/wms/"+wmsCaps, 403, false),
		c("empty key segment on nokeycache", "/v2/nokeycache/wmts//1.0.0/WMTSCapabilities.xml", 403, false),
		c("about with a path after the key", "/about/"+valid+"/"+id+"/"+sec, 403, false),
		// No key segment at all: a malformed path, or no such route.
		noKey("no key at all", "/v2/wmts"),
		noKey("no key at all on WMS", "/v2/wms"),
		noKey("key in the query string only", "/v2/wmts?key="+valid+"&SERVICE=WMTS&REQUEST=GetCapabilities"),
		noKey("key in the query string of a WMS route", "/v2/wms?key="+valid+"&SERVICE=WMS&REQUEST=GetCapabilities"),
		c("key in the query, version in the path", "/v2/wmts/1.0.0/WMTSCapabilities.xml?key="+valid, 403, false),
		c("key in the query of about", "/about?key="+valid, 404, false),
		c("empty about", "/about/", 404, false),
		// After a valid key: the resource rules of every WMTS/WMS URL.
		c("credential after a key", v+"/"+id+"/"+sec+caps, 404, true),
		c("credential after a key on WMS", "/v2/wms/"+valid+"/"+id+"/"+sec, 404, true),
		c("second key after a key", v+"/"+revoked+caps, 404, true),
		c("dot-dot after a key", v+"/../../wmts/"+id+"/"+sec+caps, 400, true),
		c("encoded dot-dot after a key", v+"/1.0.0/%2e%2e/%2e%2e/WebMercator/5/10/12.jpg", 400, true),
		c("encoded slash after a key", v+"/1.0.0/Hx%2FGN/default/WebMercator/5/10/12.jpg", 400, true),
		c("backslash traversal after a key", v+"/1.0.0/..%5c..%5cetc/default/WebMercator/5/10/12.jpg", 400, true),
		c("WMS path after a key", "/v2/wms/"+valid+"/../../etc/passwd", 404, true),
		c("unknown resource after a key", v+"/1.0.0/secrets.txt", 404, true),
		c("NUL in the layer after a key", v+"/1.0.0/HxGN%00_Imagery/default/WebMercator/5/10/12.jpg", 400, true),
		c("row outside the grid after a key", v+"/1.0.0/HxGN_Imagery/default/WebMercator/3/8/1.jpg", 400, true),
		c("absolute URL in LAYER after a key", v+kvpTile+"&LAYER="+url.QueryEscape(evil+"/"), 400, true),
		hostileKeyCase{hostileCase: hostileCase{name: "POST to a key", method: "POST", path: v + tilePath, status: 405}},
		hostileKeyCase{hostileCase: hostileCase{name: "foreign origin on a key", method: "GET", path: v + tilePath, header: map[string]string{"Origin": evil}, status: 403}, store: true},
		// Accepted on the proxy's terms: the client's token is dropped.
		hostileKeyCase{hostileCase: hostileCase{name: "client access_token after a key", method: "GET", path: v + tilePath + "?access_token=stolen-token", status: 200, upstream: true}, store: true},
	)
	return cs
}

// keyFormat is the error format a key route's clients parse, written out
// here independently of the server's routing.
func keyFormat(path string) string {
	path, _, _ = strings.Cut(path, "?")
	switch {
	case strings.HasPrefix(path, "/v2/wmts/"), strings.HasPrefix(path, "/v2/nokeycache/wmts/"), path == "/v2/wmts":
		return "wmts"
	case strings.HasPrefix(path, "/v2/wms/"), path == "/v2/wms":
		return "wms"
	}
	return "json"
}

func TestHostileKeys(t *testing.T) {
	var evilHits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { evilHits.Add(1) }))
	defer evil.Close()
	kh, store := newCountingKeyHarness(t, map[string]string{"PUBLIC_BASE_URL": "https://maps.example.org"})
	ctx := context.Background()
	valid := kh.addKey(keys.Record{Org: "Hostile County", Contact: "gis@example.org"})
	revoked := kh.addKey(keys.Record{Org: "Gone County", Contact: "keys@example.org"})
	rec, err := kh.store.Get(ctx, revoked)
	if err != nil {
		t.Fatal(err)
	}
	rec.Enabled = false
	if err := kh.store.Update(ctx, revoked, rec); err != nil {
		t.Fatal(err)
	}
	unknown, err := keys.New()
	if err != nil {
		t.Fatal(err)
	}
	kh.noteKey(unknown)
	// Warm the valid key, so that what follows counts only hostile lookups.
	if resp, body := kh.get(kh.keyURL(valid)+tilePath, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("valid key: %d %s", resp.StatusCode, body)
	}
	cases := hostileKeyCases(valid, revoked, unknown, evil.URL)
	if len(cases) < 100 {
		t.Fatalf("only %d hostile key cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			upstreamBefore := kh.fake.TokenRequests.Load() + kh.fake.WMTSRequests.Load() + kh.fake.WMSRequests.Load()
			storeBefore := store.gets.Load()
			req, err := http.NewRequest(tc.method, kh.proxy.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque, req.URL.RawQuery, _ = strings.Cut(tc.path, "?")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := kh.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			kh.noteToken()
			// No key, secret or token in the body (the encoded credential
			// either: a body that echoes the path would carry it) or headers.
			kh.assertNoSecrets(body.Bytes())
			leaks := append(kh.secrets(), kh.keysNoted()...)
			leaks = append(leaks, credential.Encode(clientID), credential.Encode(clientSecret), "stolen-token")
			for _, s := range leaks {
				if tc.status < 300 && s == valid {
					continue // a key's own capabilities carry its URL
				}
				if strings.Contains(body.String(), s) {
					t.Fatalf("the body carries %q:\n%s", s, body.String())
				}
				for name, vs := range resp.Header {
					for _, h := range vs {
						if strings.Contains(h, s) && !(name == "Location" && tc.status == 302) {
							t.Fatalf("header %s carries %q", name, s)
						}
					}
				}
			}
			upstreamAfter := kh.fake.TokenRequests.Load() + kh.fake.WMTSRequests.Load() + kh.fake.WMSRequests.Load()
			if !tc.upstream && upstreamAfter != upstreamBefore {
				t.Fatalf("refused input reached Hexagon (%d requests)", upstreamAfter-upstreamBefore)
			}
			if n := store.gets.Load() - storeBefore; !tc.store && n != 0 || n > 1 {
				t.Fatalf("the key store was asked %d times (may be asked: %v)", n, tc.store)
			}
			credWords := resp.StatusCode >= 400 && keyFormat(tc.path) != "json" && strings.Contains(strings.ToLower(body.String()), "base64")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d\n%.400s", resp.StatusCode, tc.status, body.String())
			}
			if credWords {
				t.Fatalf("a key route's error speaks of base64 credentials:\n%s", body.String())
			}
			if !tc.byHTTP {
				assertKeyClientFormat(t, tc, resp, body.Bytes())
			}
			if tc.says != "" && !strings.Contains(body.String(), tc.says) {
				t.Fatalf("the answer should say %q:\n%s", tc.says, body.String())
			}
			if tc.status == 302 {
				loc, _ := url.Parse(resp.Header.Get("Location"))
				live, _, _ := kh.fake.CurrentToken(clientID)
				if loc.Host != strings.TrimPrefix(kh.upstream.URL, "http://") || strings.Count(loc.RawQuery, "access_token=") != 1 || !strings.Contains(loc.RawQuery, url.QueryEscape(live)) {
					t.Fatalf("redirect %s must go to the upstream with exactly the proxy's token", loc)
				}
			}
		})
	}
	if evilHits.Load() != 0 {
		t.Fatalf("the proxy sent %d requests to a host other than the upstream", evilHits.Load())
	}
	// The logs hold no hostile key either: a malformed key is often a
	// real one mistyped or mangled.
	logs := kh.logs.String()
	for _, tc := range cases {
		k, _, _ := strings.Cut(tc.path, "?")
		for _, p := range []string{"/about/", "/v2/wmts/", "/v2/wms/", "/v2/nokeycache/wmts/"} {
			k = strings.TrimPrefix(k, p)
		}
		k, _, _ = strings.Cut(k, "/")
		plain, _ := url.PathUnescape(k)
		if len(k) >= 8 && (strings.Contains(logs, k) || strings.Contains(logs, plain)) {
			t.Errorf("%s: the logs carry the key %q", tc.name, k)
		}
	}
	t.Logf("hostile keys: %d requests, %d store lookups in all (after one warm-up), 0 to other hosts", len(cases), store.gets.Load()-1)
}

// assertKeyClientFormat is assertClientFormat for key routes.
func assertKeyClientFormat(t *testing.T, tc hostileKeyCase, resp *http.Response, body []byte) {
	t.Helper()
	path, _, _ := strings.Cut(tc.path, "?")
	c := tc.hostileCase
	switch keyFormat(path) {
	case "wmts":
		c.path = "/wmts/" + strings.TrimPrefix(strings.TrimPrefix(path, "/v2/nokeycache/wmts/"), "/v2/wmts/")
	case "wms":
		c.path = "/wms/" + strings.TrimPrefix(path, "/v2/wms/")
	default:
		c.path = "/about"
	}
	assertClientFormat(t, c, resp, body)
}
