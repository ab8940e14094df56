package server_test

// OWSLib, the Python OGC client (Debian's python3-owslib), reads the
// proxy's capabilities and fetches a tile and a map the way it does for
// any server: KVP GetTile wherever KVP is advertised. It does so through a
// credential URL and a /v2 key URL, in redirect and stream modes.
// scripts/test installs it; elsewhere the test skips without it.

import (
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/requiretools"
)

const owslibScript = `
import json, sys
from owslib.wmts import WebMapTileService
from owslib.wms import WebMapService
wmts_url, wms_url = sys.argv[1], sys.argv[2]
w = WebMapTileService(wmts_url)
tile = w.gettile(layer="HxGN_Imagery", tilematrixset="WebMercator", tilematrix="5", row=10, column=12, format="image/jpeg").read()
m = WebMapService(wms_url, version="1.3.0")
img = m.getmap(layers=["HxGN_Imagery"], styles=[""], srs="EPSG:3857", bbox=(-1e6, -1e6, 1e6, 1e6), size=(256, 128), format="image/png").read()
print(json.dumps({"layers": list(w.contents), "tile": len(tile), "tile_jpeg": tile[:3] == b"\xff\xd8\xff",
                  "wms_layers": list(m.contents), "map_png": img[:8] == b"\x89PNG\r\n\x1a\n"}))
`

func TestOWSLibThroughTheProxy(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, where python3-owslib installs
	if err := exec.Command(python, "-c", "import owslib").Run(); err != nil {
		requiretools.Missing(t, "OWSLib not importable by %s: %v; scripts/test installs python3-owslib", python, err)
	}
	for _, mode := range []string{"redirect", "proxy"} {
		kh := newKeyHarness(t, map[string]string{"TILE_MODE": mode}, time.Minute)
		for _, target := range clientTargets(kh, "OWSLib Water Board") {
			t.Run(mode+"/"+target.name, func(t *testing.T) {
				tiles, maps := kh.fake.TileRequests.Load(), kh.fake.MapRequests.Load()
				out, err := exec.Command(python, "-c", owslibScript, target.wmts, target.wms).CombinedOutput()
				if err != nil {
					t.Fatalf("owslib: %v\n%s", err, out)
				}
				var r struct {
					Layers    []string `json:"layers"`
					WMSLayers []string `json:"wms_layers"`
					Tile      int      `json:"tile"`
					TileJPEG  bool     `json:"tile_jpeg"`
					MapPNG    bool     `json:"map_png"`
				}
				if err := json.Unmarshal(out, &r); err != nil {
					t.Fatalf("%v: %s", err, out)
				}
				if len(r.Layers) != 1 || r.Layers[0] != "HxGN_Imagery" || len(r.WMSLayers) != 1 || r.Tile != len(kh.fake.JPEG()) || !r.TileJPEG || !r.MapPNG {
					t.Fatalf("OWSLib saw %+v", r)
				}
				if n, m := kh.fake.TileRequests.Load()-tiles, kh.fake.MapRequests.Load()-maps; n != 1 || m != 1 {
					t.Fatalf("want one tile and one map from Hexagon, got %d and %d", n, m)
				}
				// Both went through the URL OWSLib was given, in the mode asked.
				wantMode := map[string]string{"redirect": "redirect", "proxy": "stream"}[mode]
				if target.name == "key" {
					wantMode = "stream" // a key's tiles never carry Hexagon's token to its holder
				}
				if n := loggedModes(t, kh.logs.String(), target)[wantMode]; n != 2 {
					t.Fatalf("want the tile and the map for the %s URL delivered by %s, got %d", target.name, wantMode, n)
				}
			})
		}
	}
}

// OWSLib reads a Vexcel key's capabilities (whose tiles are KVP GetTile
// on the capabilities' own path) and fetches a tile through the proxy,
// which logs in to Vexcel for it.
func TestOWSLibThroughAVexcelKey(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import owslib").Run(); err != nil {
		requiretools.Missing(t, "OWSLib not importable by %s: %v; scripts/test installs python3-owslib", python, err)
	}
	h, fake, key := newVexcelWorld(t)
	script := `
import json, sys
from owslib.wmts import WebMapTileService
w = WebMapTileService(sys.argv[1])
tile = w.gettile(layer="urban", tilematrixset="urban", tilematrix="5", row=10, column=12, format="image/jpeg").read()
print(json.dumps({"layers": sorted(w.contents), "jpeg": tile[:3] == b"\xff\xd8\xff", "size": len(tile)}))
`
	out, err := exec.Command(python, "-c", script, h.keyURL(key)+"/1.0.0/WMTSCapabilities.xml").CombinedOutput()
	if err != nil {
		t.Fatalf("owslib: %v\n%s", err, out)
	}
	var r struct {
		Layers []string
		JPEG   bool
		Size   int
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(r.Layers) != 2 || !r.JPEG || r.Size != len(fake.JPEG()) || fake.TileRequests.Load() != 1 || fake.Logins.Load() != 1 {
		t.Fatalf("OWSLib saw %+v; Vexcel served %d tiles after %d logins", r, fake.TileRequests.Load(), fake.Logins.Load())
	}
	h.noteSecret(fake.LastToken())
}
