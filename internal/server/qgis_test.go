package server_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/requiretools"
	"github.com/hexprox/hexprox/internal/usage"
)

// QGIS, with its own WMS/WMTS provider (Debian's python3-qgis, headless),
// adds a Planet key's, a Vexcel key's (a login) and a Maxar key's WMTS
// from their capabilities URLs, as a QGIS user does, and renders them
// (tools/qgis-draw.py): every layer valid, the image painted, every tile
// asked of the fakes through the proxy, and no layer name or error QGIS
// reported (the script's output) holds a provider's secret; what the
// proxy answers is scanned for secrets by the leak scan and the harness.
func TestQGISDrawsProviderKeys(t *testing.T) {
	python := "/usr/bin/python3" // Debian's, where python3-qgis installs
	if err := exec.Command(python, "-c", "import qgis.core, owslib").Run(); err != nil {
		requiretools.Missing(t, "QGIS not importable by %s: %v; scripts/test installs python3-qgis", python, err)
	}
	root := repoRoot(t)

	pw := newPlanetWorld(t)
	pkey := pw.addPlanetKey("Forestry")
	planetURL := pw.keyURL(pkey) + "/1.0.0/WMTSCapabilities.xml"
	vh, vf, vkey := newVexcelWorld(t)
	vexcelURL := vh.keyURL(vkey) + "/1.0.0/WMTSCapabilities.xml"
	mw := newMaxarWorld(t)
	mw.fake.AddKey(maxarKey, 0)
	mkey := mw.addMaxarKey("Harbour", credential.Credential{Secret: maxarKey})
	maxarURL := mw.keyURL(mkey) + "/1.0.0/WMTSCapabilities.xml"

	planetTiles, vexcelTiles, maxarTiles := pw.fake.TilesServed.Load(), vf.TileRequests.Load(), mw.fake.TileRequests.Load()
	arg, _ := json.Marshal(map[string]any{
		"layers": []map[string]string{{"name": "planet", "url": planetURL}, {"name": "vexcel", "url": vexcelURL}, {"name": "maxar", "url": maxarURL}},
		"extent": []float64{-2e6, -2e6, 2e6, 2e6}, "size": 128,
	})
	out, err := exec.Command(python, filepath.Join(root, "tools", "qgis-draw.py"), string(arg)).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr // Python's traceback
		}
		t.Fatalf("qgis-draw.py: %v\n%s\n%s", err, out, stderr)
	}
	vh.noteSecret(vf.LastToken())
	for _, s := range []string{planetKey, maxarKey, vexcelPassword, vf.LastToken()} {
		if provider.Reveals(out, s) {
			t.Fatal("QGIS's output shows a provider's secret")
		}
	}
	var r struct {
		Results []struct {
			Name, Error, Layer string
			Valid              bool
			Painted, Pixels    int
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(r.Results) != 3 {
		t.Fatalf("%d layers reported, want 3: %s", len(r.Results), out)
	}
	// The fakes' tiles leave part of this extent bare (transparent), so
	// a quarter painted is a drawn layer; a layer with no tile paints none.
	for _, l := range r.Results {
		if !l.Valid || l.Error != "" || l.Layer == "" || l.Pixels == 0 || l.Painted < l.Pixels/4 {
			t.Errorf("QGIS and the %s key: %+v", l.Name, l)
		}
	}
	// Every tile went through the proxy: as many streamed for each key as
	// its fake served (QGIS pointed at a fake's own host would show the
	// fake serving tiles the proxy never streamed).
	for _, c := range []struct {
		name   string
		served int64
		proxy  *harness
		org    string
		key    string
	}{
		{"Planet", pw.fake.TilesServed.Load() - planetTiles, pw.harness, "Forestry", pkey},
		{"Vexcel", vf.TileRequests.Load() - vexcelTiles, vh, "County", vkey},
		{"Maxar", mw.fake.TileRequests.Load() - maxarTiles, mw.harness, "Harbour", mkey},
	} {
		if streamed := c.proxy.countedOf(c.org, c.key)[usage.TilesStreamed]; c.served == 0 || streamed != c.served {
			t.Errorf("%s served %d tiles to QGIS, the proxy streamed %d", c.name, c.served, streamed)
		}
	}
}
