package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/fakeprovider/nearmap"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/server"
	"github.com/hexprox/hexprox/internal/usage"
)

// planetHosts is a fake Planet holding planetKey, its API and tiles
// hosts on two servers.
type planetHosts struct {
	fake       *planet.Fake
	api, tiles string      // the hosts' URLs
	seen       chan string // the query of every request the tiles host received (the first 100)
}

// servePlanet starts a fake Planet's two hosts, each behind wrap (nil:
// as they are), for as long as the test runs.
func servePlanet(t *testing.T, wrap func(http.Handler) http.Handler) planetHosts {
	t.Helper()
	if wrap == nil {
		wrap = func(h http.Handler) http.Handler { return h }
	}
	tilesSrv := httptest.NewUnstartedServer(nil)
	p := planetHosts{tiles: "http://" + tilesSrv.Listener.Addr().String(), seen: make(chan string, 100)}
	p.fake = planet.New(planet.Options{TilesBase: p.tiles, APIBase: "request"})
	tiles := wrap(p.fake.Tiles)
	tilesSrv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case p.seen <- r.URL.RawQuery:
		default:
		}
		tiles.ServeHTTP(rw, r)
	})
	tilesSrv.Start()
	t.Cleanup(tilesSrv.Close)
	p.api = faketest.Serve(t, wrap(p.fake.API))
	p.fake.AddKey(planetKey)
	return p
}

// planetWorld is a proxy beside a fake Planet, its two hosts named by
// the PROVIDER_PLANET_* settings.
type planetWorld struct {
	*harness
	fake *planet.Fake
	seen chan string // as planetHosts.seen
}

const planetKey = "PLAK-0123456789abcdef-secret"

func newPlanetWorld(t *testing.T) planetWorld {
	t.Helper()
	p := servePlanet(t, nil)
	h := newKeyHarness(t, map[string]string{"PROVIDER_PLANET_API_URL": p.api, "PROVIDER_PLANET_TILES_URL": p.tiles}, time.Minute)
	h.noteSecret(planetKey)
	return planetWorld{harness: h, fake: p.fake, seen: p.seen}
}

func (w planetWorld) addPlanetKey(org string) string {
	return w.addKey(keys.Record{Org: org, Contact: "gis@" + strings.ToLower(org) + ".example", Provider: "planet",
		Sets: []credential.Credential{{Provider: "planet", Secret: planetKey}}})
}

// A Planet key's capabilities come back through the proxy: the API host's
// and the tiles host's URLs alike, without the Planet key, templates
// intact; its tiles stream through the key's own URLs, never redirected.
func TestPlanetKeyServesThroughTheProxy(t *testing.T) {
	w := newPlanetWorld(t)
	key := w.addPlanetKey("Forestry")
	resp, body := w.get(w.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil)
	if resp.StatusCode != http.StatusOK || w.fake.CapabilitiesRequests.Load() != 1 {
		t.Fatalf("capabilities: %d\n%s", resp.StatusCode, body)
	}
	w.assertNoSecrets(body)
	templates := regexp.MustCompile(`template="([^"]+)"`).FindAllSubmatch(body, -1)
	if len(templates) == 0 {
		t.Fatalf("no tile templates:\n%s", body)
	}
	for _, m := range templates {
		tpl := string(m[1])
		if !strings.HasPrefix(tpl, w.keyURL(key)+"/~tiles"+planet.TilesPath+"/") || !strings.Contains(tpl, "{TileMatrix}") {
			t.Fatalf("template not the key's own, or its braces lost: %s", tpl)
		}
	}
	// Every link, on the API host (operations, ServiceMetadataURL) or the
	// tiles host (GetTile), is the key's own.
	hrefs := regexp.MustCompile(`xlink:href="([^"]+)"`).FindAllSubmatch(body, -1)
	if len(hrefs) < 3 {
		t.Fatalf("%d links in Planet's capabilities, want its operations and metadata:\n%s", len(hrefs), body)
	}
	for _, m := range hrefs {
		if href := string(m[1]); !strings.HasPrefix(href, w.keyURL(key)+"/~") {
			t.Errorf("a link is not the key's own: %s", href)
		}
	}

	// A tile, by the template, as a GIS client fills it in.
	tile := strings.NewReplacer("{TileMatrix}", "3", "{TileCol}", "2", "{TileRow}", "1").Replace(html(string(templates[0][1])))
	for _, hdr := range []map[string]string{nil, {"Origin": allowed}} {
		resp, body := w.get(tile, hdr)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !bytes.Equal(body, w.fake.PNG()) {
			t.Fatalf("tile %s (%v): %d %q", tile, hdr, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if n := w.fake.TilesServed.Load(); n != 2 {
		t.Fatalf("Planet served %d tiles, want 2", n)
	}

	// The GetCapabilities href a document names serves the rewritten
	// document again, never Planet's own (which holds the key).
	found := false
	for _, op := range faketest.ParseWMTS(t, body).Ops {
		if op.Name == "GetCapabilities" {
			found = true
			resp, again := w.get(op.Get.Href, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(again, []byte("/~tiles/")) {
				t.Fatalf("GetCapabilities href %s: %d\n%.400s", op.Get.Href, resp.StatusCode, again)
			}
			w.assertNoSecrets(again)
		}
	}
	if !found {
		t.Fatal("the capabilities name no GetCapabilities operation")
	}

	// The about page names the provider, and never its key.
	resp, page := w.get(w.proxy.URL+"/about/"+key, map[string]string{"Accept": "text/html"})
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("Planet Basemaps, every request through this proxy")) || !bytes.Contains(page, []byte("API key for Planet Basemaps imagery")) {
		t.Fatalf("about page: %d\n%s", resp.StatusCode, page)
	}
	w.assertNoSecrets(page)

	// Counted as the organisation's.
	if got := w.countedOf("Forestry", key); got[usage.TilesStreamed] != 2 || got[usage.Capabilities] < 1 {
		t.Fatalf("counted %v", got)
	}
}

// What a client sends cannot reach Planet with a credential of its own,
// nor reach anything but the profile's paths; Planet's refusals and 429s
// come back in the client's format, with nothing of the key.
func TestPlanetKeyHostileAndRefused(t *testing.T) {
	w := newPlanetWorld(t)
	key := w.addPlanetKey("Forestry")
	base := w.keyURL(key) + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[1] + "/gmap/3/2/1.png"

	// A client's own api_key (any case, encoded or not) is dropped: the
	// proxy's key is the only one Planet sees, so the tile still works.
	for _, q := range []string{"?api_key=attacker", "?API_KEY=attacker&x=1", "?api%5Fkey=attacker", "?token=attacker&apikey=attacker"} {
		resp, body := w.get(base+q, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, w.fake.PNG()) {
			t.Fatalf("%s: %d %s", q, resp.StatusCode, body)
		}
		if got := <-w.seen; strings.Contains(got, "attacker") || !strings.Contains(got, "api_key=") {
			t.Fatalf("%s reached Planet as %q", q, got)
		}
	}
	// Paths outside the profile, or that could be read two ways: refused
	// by the proxy, never asked of Planet.
	asked := w.fake.Requests.Load()
	for _, p := range []string{
		"/~tiles/basemaps/v1/mosaics/wmts",                            // not below the tiles host's prefix
		"/~tiles" + planet.TilesPath + "/../mosaics/wmts",             // climbs out
		"/~tiles" + planet.TilesPath + "/%2e%2e/mosaics",              // climbs out, escaped
		"/~tiles" + planet.TilesPath + "/a%2Fb/gmap/1/1/1.png",        // an escaped slash
		"/~evil" + planet.TilesPath + "/x",                            // no such host role
		"/~api/basemaps/v1/mosaics/wmtsX",                             // not at a segment boundary
		"/1.0.0/" + planet.DefaultMosaics[1] + "/Default/x/1/2/3.png", // Hexagon's form: not Planet's
	} {
		resp, body := w.get(w.keyURL(key)+p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
			continue
		}
		w.assertException(resp, body, http.StatusNotFound, "")
	}
	if n := w.fake.Requests.Load() - asked; n != 0 {
		t.Fatalf("%d refused paths reached Planet", n)
	}
	// A mosaic the key may not see: Planet's 404, passed on as such.
	resp, body := w.get(w.keyURL(key)+"/~tiles"+planet.TilesPath+"/no_such_mosaic/gmap/3/2/1.png", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "Planet") {
		t.Fatalf("a mosaic outside the licence: %d %s", resp.StatusCode, body)
	}
	// Planet refusing the key: 403, saying who refused.
	w.fake.RevokeKey(planetKey)
	resp, body = w.get(base, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Planet") || !strings.Contains(string(body), "may be revoked or expired") {
		t.Fatalf("a refused key: %d %s (nothing proved a static key good: it may be the key)", resp.StatusCode, body)
	}
	w.assertException(resp, body, http.StatusForbidden, "")
	w.fake.AddKey(planetKey)
	// Planet's 429 and its Retry-After reach the client.
	w.fake.Set(planet.Switches{Status: http.StatusTooManyRequests, RetryAfter: "7"})
	resp, body = w.get(base, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("429: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	w.fake.Set(planet.Switches{})
	// Planet has no WMS.
	resp, body = w.get(w.proxy.URL+"/v2/wms/"+key+"?SERVICE=WMS&REQUEST=GetCapabilities", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "no WMS") {
		t.Fatalf("WMS of a Planet key: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(w.logs.String(), planetKey) {
		t.Fatal("the Planet key is in a log line")
	}
}

// secondPlanetKey is the live key of twoPlanetKeysOneDead.
const secondPlanetKey = "PLAK-second-key-0000-secret"

// twoPlanetKeysOneDead is a Planet world with a key whose two sets are
// planetKey, which Planet no longer takes, and secondPlanetKey.
func twoPlanetKeysOneDead(t *testing.T) (planetWorld, string) {
	w := newPlanetWorld(t)
	w.noteSecret(secondPlanetKey)
	w.fake.AddKey(secondPlanetKey)
	key := w.addKey(keys.Record{Org: "Forestry", Contact: "gis@forestry.example", Provider: "planet",
		Sets: []credential.Credential{{Provider: "planet", Secret: planetKey}, {Provider: "planet", Secret: secondPlanetKey}}})
	w.fake.RevokeKey(planetKey)
	return w, key
}

// A key with two Planet keys, one of them dead: the refusal moves each
// request to the live key, and the dead one is skipped from then on, so
// no map fails every other tile. With one key left, a refusal is final
// and the key stays in use (it may be the mosaic that was refused).
func TestPlanetKeyFailsOverFromADeadSet(t *testing.T) {
	w, key := twoPlanetKeysOneDead(t)
	tile := w.keyURL(key) + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[1] + "/gmap/3/2/1.png"
	asked := w.fake.Requests.Load()
	for i := range 6 {
		if resp, body := w.get(tile, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, w.fake.PNG()) {
			t.Fatalf("tile %d: %d %.200s", i, resp.StatusCode, body)
		}
	}
	// At most one request with the dead key, then only the live one.
	if n := w.fake.Requests.Load() - asked; n > 7 {
		t.Errorf("%d requests reached Planet for 6 tiles: the dead key is not skipped", n)
	}
	// The last key left is never given up: its refusals are answered,
	// and it serves again as soon as Planet takes it.
	w.fake.RevokeKey(secondPlanetKey)
	if resp, body := w.get(tile, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Planet") {
		t.Fatalf("both keys dead: %d %.300s", resp.StatusCode, body)
	}
	w.fake.AddKey(secondPlanetKey)
	if resp, body := w.get(tile, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the live key back: %d %.300s", resp.StatusCode, body)
	}
}

// The same for the capabilities document, which a load fetches with one
// set pinned: its refusal moves the request to the live key too, rather
// than failing every other GetCapabilities.
func TestPlanetKeyCapabilitiesFailOverFromADeadSet(t *testing.T) {
	w, key := twoPlanetKeysOneDead(t)
	asked := w.fake.Requests.Load()
	for i := range 6 {
		if resp, body := w.get(w.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("capabilities %d: %d %.300s", i, resp.StatusCode, body)
		}
	}
	if n := w.fake.Requests.Load() - asked; n > 7 {
		t.Errorf("%d requests reached Planet for 6 documents: the dead key is not skipped", n)
	}
	// A key whose last set is refused: a 403 after one request, the same
	// key not sent again (nothing fresh can replace a static key).
	const dead = "PLAK-dead-key-0000-secret"
	w.noteSecret(dead)
	one := w.addKey(keys.Record{Org: "Forestry", Contact: "gis@forestry.example", Provider: "planet",
		Sets: []credential.Credential{{Provider: "planet", Secret: dead}}})
	asked = w.fake.Requests.Load()
	if resp, body := w.get(w.keyURL(one)+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != http.StatusForbidden || w.fake.Requests.Load()-asked != 1 {
		t.Fatalf("a dead key: %d after %d requests to Planet, want a 403 after 1\n%.300s", resp.StatusCode, w.fake.Requests.Load()-asked, body)
	}
}

// html undoes the XML escaping of an attribute value.
func html(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }

const nearmapKey = "NMKEY-fedcba9876543210"

// nearmapWorld is a proxy beside a fake Nearmap (or, given, another
// upstream in its place), both of its host roles on one server.
type nearmapWorld struct{ *harness }

func newNearmapWorld(t *testing.T, upstream *httptest.Server) (nearmapWorld, *nearmap.Fake) {
	t.Helper()
	fake := nearmap.New(nearmap.Options{})
	fake.AddKey(nearmapKey)
	if upstream == nil {
		upstream = httptest.NewServer(fake)
		t.Cleanup(upstream.Close)
	}
	h := newKeyHarness(t, map[string]string{"PROVIDER_NEARMAP_WMTS_URL": upstream.URL, "PROVIDER_NEARMAP_API_URL": upstream.URL}, time.Minute)
	h.noteSecret(nearmapKey)
	return nearmapWorld{h}, fake
}

func (w nearmapWorld) addNearmapKey(org string) string {
	return w.addKey(keys.Record{Org: org, Contact: "gis@example.org", Provider: "nearmap",
		Sets: []credential.Credential{{Provider: "nearmap", Secret: nearmapKey}}})
}

// A Nearmap key: its key travels in the path upstream and is taken out
// of every path the capabilities show; WMTS tiles and WMS maps come back
// through the key's URLs with Nearmap's X-Ratelimit-* headers; its 429
// keeps Retry-After.
func TestNearmapKeyServesThroughTheProxy(t *testing.T) {
	h, fake := newNearmapWorld(t, nil)
	key := h.addNearmapKey("Water Board")

	resp, body := h.get(h.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil)
	if resp.StatusCode != http.StatusOK || fake.CapabilitiesRequests.Load() != 1 {
		t.Fatalf("WMTS capabilities: %d\n%s", resp.StatusCode, body)
	}
	h.assertNoSecrets(body)
	m := regexp.MustCompile(`template="([^"]+)"`).FindSubmatch(body)
	if m == nil || !strings.HasPrefix(string(m[1]), h.keyURL(key)+"/~wmts/maps/api/wmts/v1/1.0.0/") {
		t.Fatalf("template not the key's own:\n%s", body)
	}
	tile := strings.NewReplacer("{TileMatrix}", "5", "{TileRow}", "10", "{TileCol}", "12").Replace(html(string(m[1])))
	resp, body = h.get(tile, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, fake.JPEG()) || resp.Header.Get("X-Ratelimit-Limit") == "" {
		t.Fatalf("tile %s: %d %v", tile, resp.StatusCode, resp.Header)
	}

	wmsBase := h.proxy.URL + "/v2/wms/" + key
	resp, body = h.get(wmsBase+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`xlink:href="`+wmsBase+`/~api/wms/v1/latest"`)) {
		t.Fatalf("WMS capabilities: %d\n%s", resp.StatusCode, body)
	}
	h.assertNoSecrets(body)
	gm := wmsBase + "/~api/wms/v1/latest?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap&LAYERS=" + url.QueryEscape(nearmap.WMSLayer) +
		"&STYLES=&SRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	if resp, body := h.get(gm, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || len(body) == 0 {
		t.Fatalf("GetMap: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	// Nearmap's error as a 200 with a ServiceExceptionReport is the
	// client's 400 in its own format, naming Nearmap, its text not relayed.
	resp, body = h.get(strings.Replace(gm, url.QueryEscape(nearmap.WMSLayer), "NoSuchLayer", 1), nil)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("Nearmap answered with an OGC exception")) || bytes.Contains(body, []byte("NoSuchLayer")) {
		t.Fatalf("a 200 exception: %d %s", resp.StatusCode, body)
	}
	// A client's key in the path goes no further than the proxy.
	if resp, _ := h.get(h.keyURL(key)+"/~wmts/maps/api/wmts/v1/apikey/attacker/1.0.0/nearmap.com/default/GoogleMapsCompatible/5/10/12.jpg", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a client's path key was not stripped: %d", resp.StatusCode)
	}

	fake.Set(nearmap.Switches{Status: http.StatusTooManyRequests, RetryAfter: "30"})
	resp, body = h.get(tile, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" || resp.Header.Get("X-Ratelimit-Limit") == "" {
		t.Fatalf("429: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

// GDAL (the engine inside QGIS) draws a Planet key's WMTS, a Nearmap
// key's WMTS and WMS, and a Vexcel key's (a login's) WMTS through the
// proxy, never seeing a key or token.
func TestGDALDrawsOtherProviders(t *testing.T) {
	w := newPlanetWorld(t)
	planetKeyURL := w.keyURL(w.addPlanetKey("Forestry")) + "/1.0.0/WMTSCapabilities.xml"
	out := filepath.Join(t.TempDir(), "planet.png")
	served := w.fake.TilesServed.Load()
	// Two mosaics: GDAL lists them, and draws the first.
	info := string(gdal(t, "gdalinfo", "WMTS:"+planetKeyURL))
	sub := regexp.MustCompile(`SUBDATASET_1_NAME=(WMTS:\S+)`).FindStringSubmatch(info)
	if sub == nil || strings.Contains(info, planetKey) {
		t.Fatalf("GDAL found no Planet mosaic behind the proxy:\n%s", info)
	}
	gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "256", "256", "-projwin", "-2000000", "2000000", "2000000", "-2000000", sub[1], out)
	decodePNG(t, out, 256, 256)
	if w.fake.TilesServed.Load() == served {
		t.Fatal("no Planet tile was served")
	}

	h, nm := newNearmapWorld(t, nil)
	key := h.addNearmapKey("Water Board")
	out = filepath.Join(t.TempDir(), "nearmap.png")
	gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "256", "256", "-projwin", "-2000000", "2000000", "2000000", "-2000000",
		"WMTS:"+h.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", out)
	decodePNG(t, out, 256, 256)
	info = string(gdal(t, "gdalinfo", "WMS:"+h.proxy.URL+"/v2/wms/"+key+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1"))
	m := regexp.MustCompile(`SUBDATASET_1_NAME=(WMS:\S+)`).FindStringSubmatch(info)
	if m == nil || !strings.HasPrefix(m[1], "WMS:"+h.proxy.URL+"/v2/wms/"+key) {
		t.Fatalf("GDAL found no Nearmap layer behind the proxy:\n%s", info)
	}
	out = filepath.Join(t.TempDir(), "nearmap-wms.png")
	gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "300", "200", m[1], out)
	decodePNG(t, out, 300, 200)
	if nm.TileRequests.Load() == 0 || nm.MapRequests.Load() == 0 {
		t.Fatalf("Nearmap served %d tiles and %d maps", nm.TileRequests.Load(), nm.MapRequests.Load())
	}

	// Vexcel: a login behind the key, KVP tiles; GDAL lists its layers
	// and draws the first through the key's own addresses.
	vh, vf, vkey := newVexcelWorld(t)
	info = string(gdal(t, "gdalinfo", "WMTS:"+vh.keyURL(vkey)+"/1.0.0/WMTSCapabilities.xml"))
	vsub := regexp.MustCompile(`SUBDATASET_1_NAME=(WMTS:\S+)`).FindStringSubmatch(info)
	if vsub == nil || !strings.Contains(vsub[1], vh.keyURL(vkey)) {
		t.Fatalf("GDAL found no Vexcel layer behind the proxy:\n%s", info)
	}
	out = filepath.Join(t.TempDir(), "vexcel.png")
	gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "256", "256", "-projwin", "-2000000", "2000000", "2000000", "-2000000", vsub[1], out)
	decodePNG(t, out, 256, 256)
	vh.noteSecret(vf.LastToken())
	if vf.TileRequests.Load() == 0 || vf.Logins.Load() != 1 {
		t.Fatalf("Vexcel served %d tiles after %d logins, want tiles after one login", vf.TileRequests.Load(), vf.Logins.Load())
	}
}

// From the security review: a provider's capabilities are always its own
// entry point's (never a document fetched from a path or host a client
// chose, which the cache would then serve to every key of the
// credential); feature information that echoes a key placed in the path
// is not relayed; and a document that shows the key in any spelling is
// not served.
func TestProviderDocumentsCannotBeSteered(t *testing.T) {
	h, nm := newNearmapWorld(t, nil)
	k1, k2 := h.addNearmapKey("Alpha"), h.addNearmapKey("Beta")

	// K1 asks for "capabilities" of the WMTS host on the WMS route: what
	// comes back is the WMS entry point's document, and so is K2's.
	resp, body := h.get(h.proxy.URL+"/v2/wms/"+k1+"/~wmts/maps/api/wmts/v1/1.0.0/WMTSCapabilities.xml?REQUEST=GetCapabilities&VERSION=1.1.1&evil=1", nil)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("WMT_MS_Capabilities")) {
		t.Fatalf("steered capabilities: %d\n%.300s", resp.StatusCode, body)
	}
	if _, body := h.get(h.proxy.URL+"/v2/wms/"+k2+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1", nil); !bytes.Contains(body, []byte("WMT_MS_Capabilities")) || bytes.Contains(body, []byte("<Capabilities")) {
		t.Fatalf("K2 was served another document:\n%.300s", body)
	}

	// GetFeatureInfo reaches Nearmap, whose 200 exception (its layers are
	// not queryable) is the client's 400, its text not relayed.
	gfi := "?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=x&QUERY_LAYERS=x&X=1&Y=1&WIDTH=2&HEIGHT=2&SRS=EPSG:3857&BBOX=0,0,1,1&INFO_FORMAT=text/plain"
	before := nm.Requests.Load()
	resp, body = h.get(h.proxy.URL+"/v2/wms/"+k1+gfi, nil)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("Nearmap answered with an OGC exception")) || nm.Requests.Load() != before+1 {
		t.Fatalf("GetFeatureInfo: %d %s", resp.StatusCode, body)
	}
	h.assertNoSecrets(body)

	// A hostile or careless upstream that writes the key where no rule
	// takes it out (escaped, in a text node): the document is refused.
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0"?><Capabilities xmlns="http://www.opengis.net/wmts/1.0"><Note>key: %s</Note></Capabilities>`, url.PathEscape(strings.ToLower(nearmapKey)))
	}))
	t.Cleanup(leaky.Close)
	lh, _ := newNearmapWorld(t, leaky)
	lk := lh.addNearmapKey("Gamma")
	resp, body = lh.get(lh.keyURL(lk)+"/1.0.0/WMTSCapabilities.xml", nil)
	lh.assertException(resp, body, http.StatusBadGateway, "")
	if bytes.Contains(bytes.ToLower(body), []byte(strings.ToLower(nearmapKey))) {
		t.Fatalf("the refusal shows the key:\n%s", body)
	}

	// Feature information that echoes the request, and with it the key
	// placed in its path, is not relayed; plain feature information is.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if strings.Contains(r.URL.RawQuery, "echo") {
			fmt.Fprintf(w, "no feature at %s", r.URL.EscapedPath())
			return
		}
		fmt.Fprint(w, "parcel 42")
	}))
	t.Cleanup(echo.Close)
	eh, _ := newNearmapWorld(t, echo)
	ek := eh.addNearmapKey("Delta")
	resp, body = eh.get(eh.proxy.URL+"/v2/wms/"+ek+gfi+"&echo=1", nil)
	if resp.StatusCode != http.StatusBadGateway || bytes.Contains(body, []byte("NMKEY")) {
		t.Fatalf("echoed feature info: %d %s", resp.StatusCode, body)
	}
	resp, body = eh.get(eh.proxy.URL+"/v2/wms/"+ek+gfi, nil)
	if resp.StatusCode != http.StatusOK || string(body) != "parcel 42" || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("feature info: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

const vexcelUser, vexcelPassword = "gis@county.example", "Vx-pass/word+1"

// vexcelUpstream is a fake Vexcel on clock now (nil: time.Now) with one
// user, served until the test ends; it returns the fake and its URL.
func vexcelUpstream(t *testing.T, now func() time.Time) (*vexcel.Fake, string) {
	t.Helper()
	fake := vexcel.New(vexcel.Options{Base: "request", Now: now})
	fake.AddUser(vexcel.User{Username: vexcelUser, Password: vexcelPassword})
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	return fake, up.URL
}

// addVexcelKey adds a key of organisation "County" holding the Vexcel
// user's login, whose password the leak checks look for.
func (h *harness) addVexcelKey() string {
	h.noteSecret(vexcelPassword)
	return h.addKey(keys.Record{Org: "County", Contact: "gis@county.example", Provider: "vexcel",
		Sets: []credential.Credential{{Provider: "vexcel", ID: vexcelUser, Secret: vexcelPassword}}})
}

// newVexcelWorld is a proxy beside a fake Vexcel, and a Vexcel key.
func newVexcelWorld(t *testing.T) (*harness, *vexcel.Fake, string) {
	t.Helper()
	fake, up := vexcelUpstream(t, nil)
	h := newKeyHarness(t, map[string]string{"PROVIDER_VEXCEL_API_URL": up}, time.Minute)
	return h, fake, h.addVexcelKey()
}

// A Vexcel key: the proxy logs in with the username and password behind
// the key (once for many requests), sends the token as Bearer, and logs
// in again when Vexcel refuses a token; the KVP tiles its capabilities
// name come back through the key. Neither password nor token reaches
// the key holder or a log line.
func TestVexcelKeyLogsInAndServes(t *testing.T) {
	h, fake, key := newVexcelWorld(t)

	resp, body := h.get(h.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil)
	if resp.StatusCode != http.StatusOK || fake.CapabilitiesRequests.Load() != 1 {
		t.Fatalf("capabilities: %d\n%s", resp.StatusCode, body)
	}
	tok := fake.LastToken()
	h.noteSecret(tok)
	h.assertNoSecrets(body)
	m := regexp.MustCompile(`template="([^"]+)"`).FindSubmatch(body)
	if m == nil || !strings.HasPrefix(string(m[1]), h.keyURL(key)+"/~api/v2/ortho/wmts?") {
		t.Fatalf("template not the key's own:\n%s", body)
	}
	tile := strings.NewReplacer("{TileMatrix}", "5", "{TileRow}", "10", "{TileCol}", "12").Replace(html(string(m[1])))
	for range 3 {
		if resp, body := h.get(tile, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, fake.JPEG()) {
			t.Fatalf("tile %s: %d %s", tile, resp.StatusCode, body)
		}
	}
	if n := fake.Logins.Load(); n != 1 {
		t.Fatalf("%d logins for a document and three tiles, want 1", n)
	}

	// Vexcel drops the token: the proxy logs in again, once, and the
	// tile is served.
	fake.Revoke(tok)
	if resp, body := h.get(tile, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the token was revoked: %d %s", resp.StatusCode, body)
	}
	if n := fake.Logins.Load(); n != 2 {
		t.Fatalf("%d logins after a revoked token, want 2", n)
	}
	h.noteSecret(fake.LastToken())

	// A password Vexcel refuses: 403 naming Vexcel.
	bad := h.addKey(keys.Record{Org: "Other", Contact: "x@example.org", Provider: "vexcel",
		Sets: []credential.Credential{{Provider: "vexcel", ID: vexcelUser, Secret: "wrong-password"}}})
	resp, body = h.get(h.keyURL(bad)+"/1.0.0/WMTSCapabilities.xml", nil)
	h.assertException(resp, body, http.StatusForbidden, "")
	if !strings.Contains(string(body), "Vexcel") {
		t.Fatalf("refusal: %s", body)
	}
}

// A Planet key's about page shows its imagery in Chromium, as a Hexagon
// key's does: the preview's tiles load through the key's own pass-through
// addresses, with no CSP violation, and nothing goes to Planet from the
// browser.
func TestAboutPagePreviewOfAProviderInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	w := newPlanetWorld(t)
	key := w.addPlanetKey("Forestry")
	var r struct {
		Pages map[string]struct {
			Status  int
			Caption string
			Tiles   []struct {
				Src          string
				NaturalWidth int
			}
			Violations, ConsoleErrors, Requests []string
		}
	}
	driveChromium(t, root, chromium, "about-preview.mjs", map[string]any{"pages": map[string]string{"planet": w.proxy.URL + "/about/" + key}}, &r)
	p := r.Pages["planet"]
	if p.Status != http.StatusOK || len(p.Tiles) < 4 {
		t.Fatalf("status %d, %d tiles, caption %q", p.Status, len(p.Tiles), p.Caption)
	}
	for _, tile := range p.Tiles {
		if tile.NaturalWidth <= 0 || !strings.HasPrefix(tile.Src, w.keyURL(key)+"/~tiles"+planet.TilesPath+"/") {
			t.Errorf("tile %s (naturalWidth %d); caption %q", tile.Src, tile.NaturalWidth, p.Caption)
		}
	}
	for _, v := range append(p.Violations, p.ConsoleErrors...) {
		t.Errorf("in the browser: %s", v)
	}
	for _, u := range p.Requests {
		if !strings.HasPrefix(u, w.proxy.URL+"/") {
			t.Errorf("the page asked for %s", u)
		}
	}
}

// /healthz says how each provider's data services answer, by name,
// beside Hexagon's: a Planet tile served, then Planet failing, show in
// "providers", and Hexagon's "upstream" knows nothing of them.
func TestHealthReportsEachProvider(t *testing.T) {
	w := newPlanetWorld(t)
	key := w.addPlanetKey("Forestry")
	tile := w.keyURL(key) + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[1] + "/gmap/3/2/1.png"
	health := func() (out struct {
		Upstream  map[string]any
		Providers map[string]struct {
			Endpoint, Failure string
			OK                *bool
			Status            int
		}
	}) {
		t.Helper()
		_, body := w.get(w.proxy.URL+"/healthz", nil)
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return out
	}
	if h := health(); len(h.Providers) != 0 {
		t.Fatalf("providers before any call: %+v", h.Providers)
	}
	// A capabilities document is a data call too.
	if resp, _ := w.get(w.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("capabilities: %d", resp.StatusCode)
	}
	if h := health(); h.Providers["planet"].OK == nil || len(h.Upstream) != 0 {
		t.Fatalf("after capabilities: %+v, upstream %v", h.Providers, h.Upstream)
	}
	if resp, _ := w.get(tile, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("tile: %d", resp.StatusCode)
	}
	h := health()
	if p, ok := h.Providers["planet"]; !ok || p.OK == nil || !*p.OK || p.Endpoint != "data" || len(h.Upstream) != 0 {
		t.Fatalf("after a tile: %+v, upstream %v", h.Providers, h.Upstream)
	}
	w.fake.Set(planet.Switches{Status: http.StatusServiceUnavailable})
	if resp, _ := w.get(tile, nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("tile while Planet fails: %d", resp.StatusCode)
	}
	if p := health().Providers["planet"]; p.OK == nil || *p.OK || p.Failure != "status" || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("after Planet failed: %+v", p)
	}
	// A Hexagon call is Hexagon's alone: "upstream" hears of its success,
	// Planet's entry still says Planet failed.
	if resp, _ := w.get(w.credURL()+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("Hexagon's capabilities: %d", resp.StatusCode)
	}
	h = health()
	if p := h.Providers["planet"]; h.Upstream["ok"] != true || len(h.Providers) != 1 || p.OK == nil || *p.OK || p.Failure != "status" {
		t.Fatalf("after a Hexagon call: %+v, upstream %v", h.Providers, h.Upstream)
	}
}

// A provider's login is heard too: Vexcel's login failing shows under
// its /healthz entry as a token-endpoint failure, then the login and the
// tile that follow it as a data call that worked.
func TestHealthHearsAProvidersLogin(t *testing.T) {
	h, fake, key := newVexcelWorld(t)
	vexcelHealth := func() (p struct {
		Endpoint, Failure string
		OK                *bool
		Status            int
	}) {
		t.Helper()
		var out struct {
			Providers map[string]json.RawMessage
		}
		_, body := h.get(h.proxy.URL+"/healthz", nil)
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if err := json.Unmarshal(out.Providers["vexcel"], &p); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return p
	}
	fake.Set(vexcel.Switches{LoginStatus: http.StatusServiceUnavailable})
	if resp, _ := h.get(h.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("capabilities while the login fails: %d", resp.StatusCode)
	}
	if p := vexcelHealth(); p.Endpoint != "token" || p.OK == nil || *p.OK || p.Failure != "status" || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("after the login failed: %+v", p)
	}
	fake.Set(vexcel.Switches{})
	if resp, _ := h.get(h.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("capabilities once the login works: %d", resp.StatusCode)
	}
	if p := vexcelHealth(); p.OK == nil || !*p.OK || p.Endpoint != "data" {
		t.Fatalf("after the login and the document: %+v", p)
	}
}

// countedOf returns what the harness's proxy counted for key of org.
func (h *harness) countedOf(org, key string) usage.Counts {
	h.t.Helper()
	id := server.UsageID(org, keys.Fingerprint(key, ""))
	var got usage.Counts
	for _, r := range h.app.Usage.Snapshot(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)) {
		if r.SubjectID == id {
			got.Add(r.Counts)
		}
	}
	return got
}

// Usage, limits and revocation are the same for a key of every provider:
// a key over its own rate is refused by the proxy (the provider never
// asked); the provider's 429 reaches the client with its Retry-After,
// counted as rate-limited for that key's organisation alone; a key
// revoked in the store is refused, naming whom to ask, before the
// provider hears of it.
func TestEveryProvidersKeyIsLimitedCountedAndRevokedAlike(t *testing.T) {
	type world struct {
		h        *harness
		set      credential.Credential
		asked    func() int64       // requests that reached the provider
		throttle func(retry string) // the provider answers 429 with Retry-After retry; "" mends it
		matrix   string             // a tile matrix of its capabilities' first layer
	}
	worlds := map[string]func(t *testing.T) world{
		"planet": func(t *testing.T) world {
			w := newPlanetWorld(t)
			return world{w.harness, credential.Credential{Secret: planetKey}, w.fake.Requests.Load,
				func(r string) { w.fake.Set(planet.Switches{Status: statusFor(r), RetryAfter: r}) }, "5"}
		},
		"nearmap": func(t *testing.T) world {
			w, f := newNearmapWorld(t, nil)
			return world{w.harness, credential.Credential{Secret: nearmapKey}, f.Requests.Load,
				func(r string) { f.Set(nearmap.Switches{Status: statusFor(r), RetryAfter: r}) }, "5"}
		},
		"vexcel": func(t *testing.T) world {
			h, f, _ := newVexcelWorld(t)
			return world{h, credential.Credential{ID: vexcelUser, Secret: vexcelPassword}, f.Requests.Load,
				func(r string) { f.Set(vexcel.Switches{Status: statusFor(r), RetryAfter: r}) }, "5"}
		},
		"maxar": func(t *testing.T) world {
			w := newMaxarWorld(t)
			w.fake.AddKey(maxarKey, 0)
			return world{w.harness, credential.Credential{Secret: maxarKey}, w.fake.Requests.Load,
				func(r string) { w.fake.Set(maxar.Switches{Status: statusFor(r), RetryAfter: r}) }, "EPSG:3857:5"}
		},
	}
	for name, start := range worlds {
		t.Run(name, func(t *testing.T) {
			w := start(t)
			w.set.Provider = name
			rec := func(org string, rate float64) keys.Record {
				return keys.Record{Org: org, Contact: "gis@" + name + ".example", Provider: name, Sets: []credential.Credential{w.set}, Rate: rate, Burst: int(rate)}
			}
			open, tight := w.h.addKey(rec("Open", 0)), w.h.addKey(rec("Tight", 1))
			// A tile by the open key's capabilities, and the tight key's.
			resp, doc := w.h.get(w.h.keyURL(open)+"/1.0.0/WMTSCapabilities.xml", nil)
			m := regexp.MustCompile(`template="([^"]+)"`).FindSubmatch(doc)
			if resp.StatusCode != http.StatusOK || m == nil {
				t.Fatalf("capabilities: %d\n%.600s", resp.StatusCode, doc)
			}
			tile := func(key string) string {
				return strings.NewReplacer("{TileMatrix}", w.matrix, "{TileRow}", "10", "{TileCol}", "12", open, key).Replace(html(string(m[1])))
			}

			// Over the tight key's own rate: the proxy's 429, Hexagon's
			// words for it, and the provider not asked.
			if resp, body := w.h.get(tile(tight), nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("the tight key's first tile: %d %.300s", resp.StatusCode, body)
			}
			asked := w.asked()
			resp, body := w.h.get(tile(tight), nil)
			if rep := w.h.assertException(resp, body, http.StatusTooManyRequests, ""); !strings.Contains(rep.Exception.Text, "limit: rate") || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("over the key's rate: %v %s", resp.Header, body)
			}
			if n := w.asked() - asked; n != 0 {
				t.Fatalf("a request over the key's rate reached %s %d times", name, n)
			}

			// The provider's 429: its Retry-After, counted for Open alone.
			w.throttle("9")
			resp, body = w.h.get(tile(open), nil)
			w.throttle("")
			w.h.assertException(resp, body, http.StatusTooManyRequests, "")
			if resp.Header.Get("Retry-After") != "9" {
				t.Fatalf("the provider's 429 lost its Retry-After: %v", resp.Header)
			}
			if got := w.h.countedOf("Open", open); got[usage.RateLimited] != 1 || got[usage.Capabilities] != 1 {
				t.Errorf("Open counted %v, want its capabilities and 1 rate_limited", got)
			}
			if got := w.h.countedOf("Tight", tight); got[usage.RateLimited] != 1 || got[usage.TilesStreamed] != 1 {
				t.Errorf("Tight counted %v, want 1 tile streamed and 1 rate_limited", got)
			}

			// Revoked in the store: refused, naming the contact; the
			// provider never asked.
			gone := revokedCopy(t, w.h, rec("Gone", 0))
			asked = w.asked()
			for _, u := range []string{tile(gone), w.h.keyURL(gone) + "/1.0.0/WMTSCapabilities.xml"} {
				resp, body := w.h.get(u, nil)
				if rep := w.h.assertException(resp, body, http.StatusForbidden, ""); !strings.Contains(rep.Exception.Text, "revoked") || !strings.Contains(rep.Exception.Text, "gis@"+name+".example") {
					t.Fatalf("a revoked key: %s", body)
				}
			}
			if resp, body := w.h.get(w.h.proxy.URL+"/about/"+gone, nil); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("the about page of a revoked key: %d %.300s", resp.StatusCode, body)
			}
			if n := w.asked() - asked; n != 0 {
				t.Fatalf("a revoked key's requests reached %s %d times", name, n)
			}
			w.h.assertNoSecrets([]byte(w.h.logs.String()))
		})
	}
}

// statusFor is a fake's Status switch: 429 with a Retry-After, none without.
func statusFor(retryAfter string) int {
	if retryAfter == "" {
		return 0
	}
	return http.StatusTooManyRequests
}
