package provider

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

var planetTiles = []string{"/basemaps/v1/planet-tiles"}

func TestPassPath(t *testing.T) {
	for _, ok := range []string{
		"/basemaps/v1/planet-tiles/global_monthly_2026_10_mosaic/gmap/3/1/2.png",
		"/basemaps/v1/planet-tiles",
		"/basemaps/v1/planet-tiles/a%2Db/gmap/{TileMatrix}/1/2.png",
	} {
		if got, pass := PassPath(ok, planetTiles); !pass || got != ok {
			t.Errorf("PassPath(%q) = %q, %v", ok, got, pass)
		}
	}
	for _, bad := range []string{
		"",
		"basemaps/v1/planet-tiles/x",
		"/basemaps/v1/planet-tilesX/x", // not at a segment boundary
		"/basemaps/v1/mosaics",         // not allowed here
		"/basemaps/v1/planet-tiles/../../v1/mosaics",    // climbs out
		"/basemaps/v1/planet-tiles/%2e%2e/%2E%2E/other", // climbs out, escaped
		"/basemaps/v1/planet-tiles/a%2Fb",               // an escaped slash
		"/basemaps/v1/planet-tiles/a%5cb",               // an escaped backslash
		"/basemaps/v1/planet-tiles/a\\b",
		"/basemaps/v1/planet-tiles//x",
		"/basemaps/v1/planet-tiles/./x",
		"/basemaps/v1/planet-tiles/x%00",
		"/basemaps/v1/planet-tiles/x%0a",
		"/basemaps/v1/planet-tiles/x%zz",
		"/basemaps/v1/planet-tiles/x?api_key=1",
		"/basemaps/v1/planet-tiles/..;/..;/mosaics",      // Tomcat's '..;'
		"/basemaps/v1/planet-tiles/%c0%ae%c0%ae/mosaics", // an overlong dot
		"/basemaps/v1/planet-tiles/%EF%BC%8E%EF%BC%8E/x", // fullwidth dots
		"/basemaps/v1/planet-tiles/.. /x",                // dots and a space
		"/basemaps/v1/planet-tiles/%252e%252e/x",         // '%' left after one decoding
		"/basemaps/v1/planet-tiles/a;jsessionid=1/x",     // a path parameter
		"/basemaps/v1/planet-tiles/caf%C3%A9",            // non-ASCII
	} {
		if got, pass := PassPath(bad, planetTiles); pass {
			t.Errorf("PassPath(%q) passed as %q", bad, got)
		}
	}
}

// FuzzPassPath: a path that passes decodes to itself cleaned, below an
// allowed prefix: whatever an upstream server or proxy makes of it, it
// names the same resource.
func FuzzPassPath(f *testing.F) {
	for _, s := range []string{"/basemaps/v1/planet-tiles/m/gmap/1/2/3.png", "/basemaps/v1/planet-tiles/%2e%2e/x", "/basemaps/v1/planet-tiles/a%2Fb", "/x//y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := PassPath(p, planetTiles)
		if !ok {
			return
		}
		d, err := url.PathUnescape(got)
		if err != nil || path.Clean(d) != d || !strings.HasPrefix(d+"/", planetTiles[0]+"/") || strings.ContainsAny(d, "\\\x00") {
			t.Fatalf("PassPath(%q) passed %q (decoded %q)", p, got, d)
		}
	})
}
