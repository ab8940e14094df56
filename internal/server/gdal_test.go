package server

// Real GIS client tests: GDAL's WMTS and WMS drivers (the engine inside
// QGIS) read the proxy's rewritten capabilities and draw through it, in
// redirect and stream modes. scripts/test installs gdal-bin and makes
// these tests required; elsewhere they skip when GDAL is missing.

import (
	"bytes"
	"context"
	"image"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func gdal(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := args[0]
	if _, err := exec.LookPath(bin); err != nil {
		if os.Getenv("HEXPROX_REQUIRE_TOOLS") != "" {
			t.Fatalf("%s not found; scripts/test installs gdal-bin", bin)
		}
		t.Skipf("%s not installed (apt-get install gdal-bin)", bin)
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

func TestGDALDrawsThroughTheProxy(t *testing.T) {
	for _, mode := range []string{"redirect", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, map[string]string{"TILE_MODE": mode})
			out := filepath.Join(t.TempDir(), "wmts.png")
			gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "256", "256",
				"-projwin", "-2000000", "2000000", "2000000", "-2000000",
				"WMTS:"+h.credURL()+"/1.0.0/WMTSCapabilities.xml", out)
			decodePNG(t, out, 256, 256)
			if h.fake.TileRequests.Load() == 0 {
				t.Fatal("no tile reached Hexagon")
			}
			wantMode := map[string]string{"redirect": `"mode":"redirect"`, "proxy": `"mode":"stream"`}[mode]
			if !strings.Contains(h.logs.String(), wantMode) {
				t.Fatalf("tiles were not delivered by %s", wantMode)
			}

			// WMS: GDAL reads the capabilities, then draws the layer it found.
			info := string(gdal(t, "gdalinfo", "WMS:"+h.wmsURL()))
			m := regexp.MustCompile(`SUBDATASET_1_NAME=(WMS:\S+)`).FindStringSubmatch(info)
			if m == nil || !strings.HasPrefix(m[1], "WMS:"+h.wmsURL()) {
				t.Fatalf("GDAL found no layer behind the proxy:\n%s", info)
			}
			out = filepath.Join(t.TempDir(), "wms.png")
			gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "300", "200", m[1], out)
			decodePNG(t, out, 300, 200)
			if h.fake.MapRequests.Load() == 0 {
				t.Fatal("no map reached Hexagon")
			}
		})
	}
}
