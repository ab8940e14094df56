package server_test

// Real GIS client tests: GDAL's WMTS and WMS drivers (the engine inside
// QGIS) read the proxy's rewritten capabilities and draw through it, in
// redirect and stream modes, through credential URLs and /v2 key URLs
// alike. scripts/test installs gdal-bin and makes these tests required;
// elsewhere they skip when GDAL is missing.

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/requiretools"
)

func gdal(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := args[0]
	if _, err := exec.LookPath(bin); err != nil {
		requiretools.Missing(t, "%s not installed; scripts/test installs gdal-bin", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args[1:]...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GDAL_ENABLE_WMS_CACHE=NO", "GDAL_HTTP_TIMEOUT=20", "HOME="+cmd.Dir, "GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func decodePNG(t *testing.T, path string, w, h int) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil || format != "png" || img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		t.Fatalf("%s: %v %s %v", path, err, format, img.Bounds())
	}
	// Imagery, not an empty canvas: some pixel must be opaque.
	for y := 0; y < h; y += 7 {
		for x := 0; x < w; x += 7 {
			if _, _, _, a := img.At(x, y).RGBA(); a > 0 {
				return img
			}
		}
	}
	t.Fatalf("%s is empty: GDAL got no imagery", path)
	return nil
}

// clientTarget is one way a GIS client reaches the imagery: the WMTS
// capabilities and WMS addresses it is given, and the log attribute that
// names whose requests they were.
type clientTarget struct {
	name      string
	wmts, wms string // the WMTS capabilities URL and the WMS service URL
	logKey    string // "cred" or "key"
	who       string // the fingerprint logged under logKey
}

// clientTargets returns a credential URL and a /v2 key URL on kh's proxy,
// for tests that run real clients through both.
func clientTargets(kh *harness, org string) []clientTarget {
	key := kh.addKey(keys.Record{Org: org, Contact: "gis@example.org"})
	return []clientTarget{
		{name: "credential", wmts: kh.credURL() + "/1.0.0/WMTSCapabilities.xml", wms: kh.wmsURL(),
			logKey: "cred", who: credential.Credential{ID: clientID, Secret: clientSecret}.Fingerprint("")},
		{name: "key", wmts: kh.keyURL(key) + "/1.0.0/WMTSCapabilities.xml", wms: kh.proxy.URL + "/v2/wms/" + key,
			logKey: "key", who: keys.Fingerprint(key, "")},
	}
}

// loggedModes counts the successful request lines logged for target by
// delivery mode ("capabilities", "redirect", "stream").
func loggedModes(t *testing.T, logs string, target clientTarget) map[string]int {
	t.Helper()
	modes := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, line)
		}
		status, _ := l["status"].(float64)
		if l[target.logKey] == target.who && status < 400 {
			mode, _ := l["mode"].(string)
			modes[mode]++
		}
	}
	return modes
}

func TestGDALDrawsThroughTheProxy(t *testing.T) {
	for _, mode := range []string{"redirect", "proxy"} {
		kh := newKeyHarness(t, map[string]string{"TILE_MODE": mode}, time.Minute)
		for _, target := range clientTargets(kh, "GDAL County") {
			t.Run(mode+"/"+target.name, func(t *testing.T) {
				tiles, maps := kh.fake.TileRequests.Load(), kh.fake.MapRequests.Load()
				out := filepath.Join(t.TempDir(), "wmts.png")
				gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "256", "256",
					"-projwin", "-2000000", "2000000", "2000000", "-2000000",
					"WMTS:"+target.wmts, out)
				decodePNG(t, out, 256, 256)
				if kh.fake.TileRequests.Load() == tiles {
					t.Fatal("no tile reached Hexagon")
				}
				wantMode := map[string]string{"redirect": "redirect", "proxy": "stream"}[mode]
				if target.name == "key" {
					wantMode = "stream" // a key's tiles never carry Hexagon's token to its holder
				}
				if n := loggedModes(t, kh.logs.String(), target)[wantMode]; n == 0 {
					t.Fatalf("no tile for the %s URL was delivered by %s", target.name, wantMode)
				}

				// WMS: GDAL reads the capabilities, then draws the layer it found.
				info := string(gdal(t, "gdalinfo", "WMS:"+target.wms))
				m := regexp.MustCompile(`SUBDATASET_1_NAME=(WMS:\S+)`).FindStringSubmatch(info)
				if m == nil || !strings.HasPrefix(m[1], "WMS:"+target.wms) {
					t.Fatalf("GDAL found no layer behind the proxy:\n%s", info)
				}
				out = filepath.Join(t.TempDir(), "wms.png")
				gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "300", "200", m[1], out)
				decodePNG(t, out, 300, 200)
				if kh.fake.MapRequests.Load() == maps {
					t.Fatal("no map reached Hexagon")
				}
				if n := loggedModes(t, kh.logs.String(), target)["capabilities"]; n < 2 {
					t.Fatalf("want WMTS and WMS capabilities logged for the %s URL, got %d", target.name, n)
				}
			})
		}
	}
}
