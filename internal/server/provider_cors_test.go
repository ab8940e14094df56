package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
	"github.com/hexprox/hexprox/internal/keys"
)

// What ArcGIS Online does with a layer from a trusted server, for a
// Planet key: a page on the key's origin fetches its capabilities and a
// tile with credentials: 'include' in Chromium, and reads both; a page on
// another origin reads neither; nothing it reads holds the Planet key.
func TestCredentialedFetchOfAProviderKeyInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>web map</title>")
	})
	trusted, foreign := httptest.NewServer(page), httptest.NewServer(page)
	t.Cleanup(trusted.Close)
	t.Cleanup(foreign.Close)
	w := newPlanetWorld(t)
	key := w.addKey(keys.Record{Org: "Forestry", Contact: "gis@forestry.example", Provider: "planet", Origins: []string{trusted.URL},
		Sets: []credential.Credential{{Provider: "planet", Secret: planetKey}}})
	urls := []string{
		w.keyURL(key) + "/1.0.0/WMTSCapabilities.xml",
		w.keyURL(key) + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[1] + "/gmap/3/2/1.png",
	}
	r, out := corsCheck(t, root, chromium, []string{trusted.URL + "/", foreign.URL + "/"}, urls)
	if strings.Contains(string(out), planetKey) {
		t.Fatal("the browser was handed the Planet key")
	}
	if got := r.Results[trusted.URL+"/"]; len(got) != len(urls) {
		t.Fatalf("%d fetches from the trusted page, want %d", len(got), len(urls))
	}
	for i, got := range r.Results[trusted.URL+"/"] {
		if !got.OK || got.Status != 200 || got.Bytes == 0 {
			t.Errorf("from the key's origin, fetch %d: %d, %d bytes, %s", i, got.Status, got.Bytes, got.Error)
		}
	}
	if got := r.Results[foreign.URL+"/"]; len(got) != len(urls) {
		t.Fatalf("%d fetches from the foreign page, want %d", len(got), len(urls))
	}
	for i, got := range r.Results[foreign.URL+"/"] {
		if got.OK || got.Status != 0 {
			t.Errorf("a page on another origin read fetch %d: %d, %d bytes", i, got.Status, got.Bytes)
		}
	}
}
