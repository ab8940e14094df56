package planet_test

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
)

const key = "PLAK-test-0123456789"

// servers runs the fake's two hosts and returns the fake and both URLs.
func servers(t *testing.T, mosaics ...string) (f *planet.Fake, api, tiles string) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	f = planet.New(planet.Options{APIBase: "request", TilesBase: "http://" + ts.Listener.Addr().String(), Mosaics: mosaics})
	ts.Config.Handler = f.Tiles
	ts.Start()
	t.Cleanup(ts.Close)
	return f, faketest.Serve(t, f.API), ts.URL
}

// The capabilities name the API host (with the key) for GetCapabilities,
// the tiles host (without the key) for GetTile, and the tiles host with
// the key in every ResourceURL, as the recorded Planet answer does.
func TestCapabilitiesPutTemplatesOnTheTilesHostWithTheKey(t *testing.T) {
	f, api, tiles := servers(t)
	f.AddKey(key)
	resp, body := faketest.Get(t, api+planet.CapabilitiesPath+"?api_key="+key, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	c := faketest.ParseWMTS(t, body)
	hrefs := map[string]string{}
	for _, op := range c.Ops {
		hrefs[op.Name] = op.Get.Href
	}
	if want := api + planet.CapabilitiesPath + "?api_key=" + key; hrefs["GetCapabilities"] != want || c.Metadata.Href != want {
		t.Errorf("GetCapabilities href %q, ServiceMetadataURL %q; want %q", hrefs["GetCapabilities"], c.Metadata.Href, want)
	}
	if want := tiles + planet.TilesPath; hrefs["GetTile"] != want {
		t.Errorf("GetTile href %q, want %q (tiles host, no key)", hrefs["GetTile"], want)
	}
	if len(c.Layers) != len(planet.DefaultMosaics) {
		t.Fatalf("%d layers, want %d", len(c.Layers), len(planet.DefaultMosaics))
	}
	for i, l := range c.Layers {
		if l.ID != planet.DefaultMosaics[i] || l.Style != "Default" || l.Set != "GoogleMapsCompatible15" || len(l.Resources) != 1 {
			t.Errorf("layer %+v", l)
			continue
		}
		want := tiles + planet.TilesPath + "/" + l.ID + "/gmap/{TileMatrix}/{TileCol}/{TileRow}.png?api_key=" + key
		if l.Resources[0].Template != want {
			t.Errorf("template %q\nwant     %q", l.Resources[0].Template, want)
		}
	}
	if len(c.Sets) != 1 || c.Sets[0].ID != "GoogleMapsCompatible15" || len(c.Sets[0].Matrices) != 16 || c.Sets[0].Matrices[15] != "15" {
		t.Errorf("tile matrix sets %+v, want GoogleMapsCompatible15 with levels 0 to 15", c.Sets)
	}
	if f.CapabilitiesRequests.Load() != 1 || f.Requests.Load() != 1 {
		t.Errorf("counters: capabilities %d, requests %d", f.CapabilitiesRequests.Load(), f.Requests.Load())
	}
}

// A template from the capabilities, filled in, fetches a 256 px PNG with
// alpha from the tiles host.
func TestTemplateFetchesPNGWithAlphaFromTheTilesHost(t *testing.T) {
	f, api, _ := servers(t)
	f.AddKey(key)
	_, body := faketest.Get(t, api+planet.CapabilitiesPath+"?api_key="+key, nil)
	tmpl := faketest.ParseWMTS(t, body).Layers[0].Resources[0].Template
	u := strings.NewReplacer("{TileMatrix}", "3", "{TileCol}", "5", "{TileRow}", "2").Replace(tmpl)
	resp, tile := faketest.Get(t, u, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("tile: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(tile))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds() != image.Rect(0, 0, 256, 256) {
		t.Errorf("tile bounds %v", img.Bounds())
	}
	if _, _, _, a := img.At(255, 0).RGBA(); a != 0 {
		t.Errorf("no transparent pixel: alpha %d", a)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a == 0 {
		t.Errorf("no opaque pixel")
	}
	if f.TilesServed.Load() != 1 {
		t.Errorf("TilesServed %d", f.TilesServed.Load())
	}
}

// The key is accepted in each of the three documented places.
func TestKeyPlacements(t *testing.T) {
	f, api, tiles := servers(t)
	f.AddKey(key)
	tile := tiles + planet.TilesPath + "/" + planet.DefaultMosaics[0] + "/gmap/1/0/1.png"
	basic := "Basic " + basicAuth(key, "")
	for name, c := range map[string]struct {
		u string
		h map[string]string
	}{
		"query":          {tile + "?api_key=" + key, nil},
		"api-key header": {tile, map[string]string{"Authorization": "api-key " + key}},
		"basic":          {tile, map[string]string{"Authorization": basic}},
		"caps by header": {api + planet.CapabilitiesPath, map[string]string{"Authorization": "api-key " + key}},
	} {
		if resp, body := faketest.Get(t, c.u, c.h); resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
}

func basicAuth(user, pass string) string {
	r, _ := http.NewRequest("GET", "http://x", nil)
	r.SetBasicAuth(user, pass)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// A wrong or missing key is refused 401 on both hosts (or BadKeyStatus),
// and the refusal does not echo the key.
func TestWrongKeyIsRefused(t *testing.T) {
	f, api, tiles := servers(t)
	f.AddKey(key)
	tile := tiles + planet.TilesPath + "/" + planet.DefaultMosaics[0] + "/gmap/1/0/1.png"
	for _, u := range []string{api + planet.CapabilitiesPath, api + planet.CapabilitiesPath + "?api_key=wrong", tile, tile + "?api_key=wrong"} {
		resp, body := faketest.Get(t, u, nil)
		if resp.StatusCode != 401 || bytes.Contains(body, []byte("wrong")) {
			t.Errorf("%s: %d %s", u, resp.StatusCode, body)
		}
	}
	if resp, _ := faketest.Get(t, tile, map[string]string{"Authorization": "api-key wrong"}); resp.StatusCode != 401 {
		t.Errorf("wrong header key: %d", resp.StatusCode)
	}
	f.RevokeKey(key)
	if resp, _ := faketest.Get(t, tile+"?api_key="+key, nil); resp.StatusCode != 401 {
		t.Errorf("revoked key: %d", resp.StatusCode)
	}
	f.Set(planet.Switches{BadKeyStatus: 404})
	if resp, _ := faketest.Get(t, tile+"?api_key=wrong", nil); resp.StatusCode != 404 {
		t.Errorf("BadKeyStatus 404: %d", resp.StatusCode)
	}
	if f.Refused.Load() != 7 {
		t.Errorf("Refused %d, want 7", f.Refused.Load())
	}
}

// A mosaic the key may not see is 404, Planet's documented "no
// permission", and is not listed in the key's capabilities.
func TestMosaicWithoutPermissionIs404(t *testing.T) {
	f, api, tiles := servers(t, "open_mosaic", "closed_mosaic")
	f.AddKey(key, "open_mosaic")
	resp, body := faketest.Get(t, tiles+planet.TilesPath+"/closed_mosaic/gmap/0/0/0.png?api_key="+key, nil)
	if resp.StatusCode != 404 {
		t.Errorf("closed mosaic: %d %.80q", resp.StatusCode, body)
	}
	if resp, _ := faketest.Get(t, tiles+planet.TilesPath+"/open_mosaic/gmap/0/0/0.png?api_key="+key, nil); resp.StatusCode != 200 {
		t.Errorf("open mosaic: %d", resp.StatusCode)
	}
	if resp, _ := faketest.Get(t, tiles+planet.TilesPath+"/open_mosaic/gmap/16/0/0.png?api_key="+key, nil); resp.StatusCode != 404 {
		t.Errorf("zoom 16: %d, want 404", resp.StatusCode)
	}
	_, body = faketest.Get(t, api+planet.CapabilitiesPath+"?api_key="+key, nil)
	c := faketest.ParseWMTS(t, body)
	if len(c.Layers) != 1 || c.Layers[0].ID != "open_mosaic" {
		t.Errorf("layers %+v, want only open_mosaic", c.Layers)
	}
	if f.NotPermitted.Load() != 1 {
		t.Errorf("NotPermitted %d", f.NotPermitted.Load())
	}
}

// A forced 429 carries Retry-After on both hosts.
func Test429CarriesRetryAfter(t *testing.T) {
	f, api, tiles := servers(t)
	f.AddKey(key)
	f.Set(planet.Switches{Status: 429, RetryAfter: "7"})
	for _, u := range []string{api + planet.CapabilitiesPath + "?api_key=" + key, tiles + planet.TilesPath + "/" + url.PathEscape(planet.DefaultMosaics[0]) + "/gmap/0/0/0.png?api_key=" + key} {
		resp, _ := faketest.Get(t, u, nil)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
			t.Errorf("%s: %d Retry-After %q", u, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}
