package server_test

// OpenLayers, the web-map library, drawing provider keys in Chromium
// from a page on another origin than the proxy's, as a web-map
// developer's site would: the capabilities read with fetch, the layer
// built from them, the tiles drawn in an ol.Map. The page and its script
// are in testdata/openlayers; OpenLayers' full build (dist/ol.js) comes
// from tools/node_modules, which scripts/test installs.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/fakeprovider"
	"github.com/hexprox/hexprox/internal/requiretools"
)

// newMapSite serves the web map: its page and script from
// testdata/openlayers, OpenLayers' full build and style sheet from
// tools/node_modules/ol. It is an origin of its own, so every request
// the map makes to the proxy is a cross-origin one.
func newMapSite(t *testing.T, root string) *httptest.Server {
	t.Helper()
	ol := filepath.Join(root, "tools", "node_modules", "ol")
	if _, err := os.Stat(filepath.Join(ol, "dist", "ol.js")); err != nil {
		requiretools.Missing(t, "the OpenLayers test needs tools/node_modules/ol (%v); ./scripts/test installs it", err)
	}
	files := map[string]string{
		"/":       filepath.Join("testdata", "openlayers", "index.html"),
		"/map.js": filepath.Join("testdata", "openlayers", "map.js"),
		"/ol.js":  filepath.Join(ol, "dist", "ol.js"),
		"/ol.css": filepath.Join(ol, "ol.css"),
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" { // asked for by Chromium, not the page
			w.WriteHeader(http.StatusNoContent)
			return
		}
		path, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, path)
	}))
	t.Cleanup(site.Close)
	return site
}

// allowOrigin gives key the browser origin o, as the operator's `keys
// set --origin` does: the key then serves pages from o (and only o).
func allowOrigin(t *testing.T, h *harness, key, o string) {
	t.Helper()
	ctx := context.Background()
	rec, err := h.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	rec.Origins = []string{o}
	if err := h.store.Update(ctx, key, rec); err != nil {
		t.Fatal(err)
	}
}

// mapPage is what tools/openlayers.mjs saw of one page.
type mapPage struct {
	Drawn struct {
		Tiles         struct{ Start, End, Error int }
		Canvas        string // data:image/png;base64,...
		Width, Height int
		Error         string
	}
	Requests, ConsoleErrors []string
	Responses               []struct {
		URL, Headers, BodyError string
		Status                  int
		Body                    []byte
	}
}

// drawMaps opens the pages (name → URL) in Chromium and returns what it
// saw of each.
func drawMaps(t *testing.T, root, chromium string, pages map[string]string) map[string]mapPage {
	t.Helper()
	var r struct{ Pages map[string]mapPage }
	driveChromium(t, root, chromium, "openlayers.mjs", map[string]any{"pages": pages}, &r)
	return r.Pages
}

// driveChromium runs a browser driver (runDriver) with args and "shots",
// the directory test/artifacts its screenshots go to, and decodes what it
// printed into out; the test ends if that does not decode or is the
// driver's {"error": …}.
func driveChromium(t *testing.T, root, chromium, script string, args map[string]any, out any) {
	t.Helper()
	shots := filepath.Join(root, "test", "artifacts")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	args["shots"] = shots
	b := runDriver(t, root, chromium, script, args)
	var failed struct{ Error string }
	if err := json.Unmarshal(b, &failed); err != nil {
		t.Fatalf("driver output %.2000s: %v", b, err)
	}
	if failed.Error != "" {
		t.Fatalf("in the browser: %s", failed.Error)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("driver output %.2000s: %v", b, err)
	}
	t.Logf("screenshots in %s", shots)
}

// checkMap checks one map the page drew from h's proxy: at least minTiles
// tiles loaded and none failed; the canvas, readable only because the
// proxy answered CORS, shows the provider's tile (want, repeated over
// the map); the page asked only its own site and the proxy for
// anything; no console errors; and nothing the browser received from the
// proxy (bodies, headers, URLs) carries a secret h knows of.
func checkMap(t *testing.T, h *harness, site, name string, p mapPage, want image.Image, minTiles int) {
	t.Helper()
	d := p.Drawn
	if d.Error != "" {
		t.Errorf("%s: the map was not drawn: %s", name, d.Error)
	}
	if d.Tiles.End < minTiles || d.Tiles.Error != 0 || d.Tiles.Start != d.Tiles.End {
		t.Errorf("%s: %d tiles started, %d loaded, %d failed; want at least %d loaded and none failed",
			name, d.Tiles.Start, d.Tiles.End, d.Tiles.Error, minTiles)
	}
	for _, e := range p.ConsoleErrors {
		t.Errorf("%s: in the browser: %s", name, tokenInURL.ReplaceAllString(e, "access_token=…"))
	}
	toProxy := 0
	for _, u := range p.Requests {
		switch {
		case strings.HasPrefix(u, h.proxy.URL+"/"):
			toProxy++
		case !strings.HasPrefix(u, site+"/"):
			t.Errorf("%s: the page asked for %s, neither its own site's nor the proxy's", name, u)
		}
	}
	if toProxy < minTiles+1 {
		t.Errorf("%s: %d requests to the proxy, want the capabilities and at least %d tiles", name, toProxy, minTiles)
	}
	fromProxy := 0
	for _, resp := range p.Responses {
		if !strings.HasPrefix(resp.URL, site+"/") {
			fromProxy++
			if resp.BodyError != "" || len(resp.Body) == 0 {
				t.Errorf("%s: no body of %s (%d) to look for secrets in: %s", name, resp.URL, resp.Status, resp.BodyError)
			}
		}
		h.assertNoSecrets([]byte(resp.URL + "\n" + resp.Headers + "\n" + string(resp.Body)))
	}
	if fromProxy != toProxy {
		t.Errorf("%s: %d answers from the proxy seen for %d requests", name, fromProxy, toProxy)
	}
	if d.Error == "" {
		compareWithTiles(t, name, d.Canvas, want)
	}
}

// compareWithTiles decodes the map's canvas and compares each pixel with
// want's at the same place within its tile: the map is centred on the
// origin at a whole zoom level, so tile edges fall on multiples of 256
// pixels. The mean difference per channel (alpha included, 0 to 255)
// must be within tileTolerance; a blank canvas, another image or tiles drawn
// a pixel out of place are far outside it.
func compareWithTiles(t *testing.T, name, dataURL string, want image.Image) {
	t.Helper()
	b64, ok := strings.CutPrefix(dataURL, "data:image/png;base64,")
	if !ok {
		t.Errorf("%s: the canvas is not a PNG data URL: %.40s", name, dataURL)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Errorf("%s: canvas: %v", name, err)
		return
	}
	got, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Errorf("%s: canvas: %v", name, err)
		return
	}
	gb, wb := got.Bounds(), want.Bounds()
	if gb.Dx() < 512 || gb.Dy() < 512 || wb.Dx() != 256 || wb.Dy() != 256 {
		t.Errorf("%s: canvas %v, tile %v; want a canvas of at least 512×512 and a 256×256 tile", name, gb, wb)
		return
	}
	var sum, n float64
	for y := gb.Min.Y; y < gb.Max.Y; y++ {
		for x := gb.Min.X; x < gb.Max.X; x++ {
			g := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA)
			w := color.NRGBAModel.Convert(want.At(wb.Min.X+(x-gb.Min.X)%256, wb.Min.Y+(y-gb.Min.Y)%256)).(color.NRGBA)
			if w.A == 0 && g.A == 0 {
				n += 4 // transparent in both: colour means nothing
				continue
			}
			sum += absDiff(g.R, w.R) + absDiff(g.G, w.G) + absDiff(g.B, w.B) + absDiff(g.A, w.A)
			n += 4
		}
	}
	mean := sum / n
	t.Logf("%s: the canvas (%v) differs from the provider's tile by %.2f per channel on average", name, gb, mean)
	if mean > tileTolerance {
		t.Errorf("%s: the canvas differs from the provider's tile by %.2f per channel on average, want at most %.1f", name, mean, tileTolerance)
	}
}

// tileTolerance is the mean difference per channel allowed between the
// map and the provider's tile: Chromium's and Go's JPEG decoders differ
// by a fraction of a level (0.16 measured for Vexcel's JPEG; PNG tiles
// match exactly), while a tile drawn one pixel out of place differs by
// about 10, and a blank canvas by over 60.
const tileTolerance = 2.0

func absDiff(a, b uint8) float64 {
	if a > b {
		return float64(a - b)
	}
	return float64(b - a)
}

func decodeImage(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// A web map made with OpenLayers draws a Planet key (a static upstream
// key), a Vexcel key (a login) and a Nearmap key's WMS from its own site,
// through the proxy: the capabilities, fetched across origins, lead
// every tile back to the proxy; every tile loads and the canvas shows
// the provider's imagery (readable, so CORS was answered); the browser
// never asks a provider's host, and nothing it receives holds a
// provider's key, password or token.
func TestOpenLayersDrawsProviderKeysInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	site := newMapSite(t, root).URL

	pw := newPlanetWorld(t)
	pk := pw.addPlanetKey("Forestry")
	allowOrigin(t, pw.harness, pk, site)

	vh, vf, vk := newVexcelWorld(t)
	allowOrigin(t, vh, vk, site)

	nh, nf := newNearmapWorld(t, nil)
	nk := nh.addNearmapKey("Water Board")
	allowOrigin(t, nh.harness, nk, site)

	page := func(param, caps string) string { return site + "/?" + param + "=" + url.QueryEscape(caps) }
	pages := drawMaps(t, root, chromium, map[string]string{
		"planet":      page("wmts", pw.keyURL(pk)+"/1.0.0/WMTSCapabilities.xml"),
		"vexcel":      page("wmts", vh.keyURL(vk)+"/1.0.0/WMTSCapabilities.xml"),
		"nearmap-wms": page("wms", nh.proxy.URL+"/v2/wms/"+nk+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1"),
	})

	// The login's token, which the browser must never have seen. (No
	// token: no tile from Vexcel, which the last check reports.)
	if tok := vf.LastToken(); tok != "" {
		vh.noteSecret(tok)
	}

	nearmapTile, _ := fakeprovider.Image("image/png", 256, 256)
	checkMap(t, pw.harness, site, "planet", pages["planet"], decodeImage(t, pw.fake.PNG()), 4)
	checkMap(t, vh, site, "vexcel", pages["vexcel"], decodeImage(t, vf.JPEG()), 4)
	checkMap(t, nh.harness, site, "nearmap-wms", pages["nearmap-wms"], decodeImage(t, nearmapTile), 4)

	if pw.fake.TilesServed.Load() < 4 || vf.TileRequests.Load() < 4 || nf.MapRequests.Load() < 4 {
		t.Errorf("the providers served %d (Planet), %d (Vexcel) tiles and %d (Nearmap) maps; want at least 4 each",
			pw.fake.TilesServed.Load(), vf.TileRequests.Load(), nf.MapRequests.Load())
	}
}
