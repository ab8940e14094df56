package capabilities

import (
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/provider"
)

// planetDoc is the shape of Planet's capabilities (shared/providers.md §3,
// from a recorded response): operations on the API host, tile templates
// on a second host, the key in every URL's query.
const planetDoc = `<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">
  <ows:OperationsMetadata>
    <ows:Operation name="GetCapabilities"><ows:DCP><ows:HTTP><ows:Get xlink:href="https://api.planet.example/basemaps/v1/mosaics/wmts?api_key=PLAKSECRET&amp;x=1"/></ows:HTTP></ows:DCP></ows:Operation>
    <ows:Operation name="GetTile"><ows:DCP><ows:HTTP><ows:Get xlink:href="https://tiles.planet.example/basemaps/v1/planet-tiles"/></ows:HTTP></ows:DCP></ows:Operation>
  </ows:OperationsMetadata>
  <Contents><Layer><ows:Identifier>global_monthly_2026_10_mosaic</ows:Identifier>
    <ResourceURL format="image/png" resourceType="tile" template="https://tiles.planet.example/basemaps/v1/planet-tiles/global_monthly_2026_10_mosaic/gmap/{TileMatrix}/{TileCol}/{TileRow}.png?api_key=PLAKSECRET"/>
  </Layer></Contents>
  <ServiceMetadataURL xlink:href="https://www.planet.example/terms"/>
</Capabilities>`

func TestHostMatcherRewritesEveryHostOfAProfile(t *testing.T) {
	strip := func(path, q string) (string, string) { return path, provider.DropParams(q, []string{"api_key"}) }
	m := HostMatcher([]Host{{Role: "api", Base: "https://api.planet.example"}, {Role: "tiles", Base: "https://TILES.planet.example/basemaps"}}, strip)
	doc, err := Rewrite([]byte(planetDoc), Options{Match: m, Roots: []string{"Capabilities"}})
	if err != nil {
		t.Fatal(err)
	}
	out := string(doc.Bytes("https://proxy.example/v2/wmts/hxpk-K"))
	for _, want := range []string{
		`xlink:href="https://proxy.example/v2/wmts/hxpk-K/~api/basemaps/v1/mosaics/wmts?x=1"`,
		`xlink:href="https://proxy.example/v2/wmts/hxpk-K/~tiles/basemaps/v1/planet-tiles"`,
		`template="https://proxy.example/v2/wmts/hxpk-K/~tiles/basemaps/v1/planet-tiles/global_monthly_2026_10_mosaic/gmap/{TileMatrix}/{TileCol}/{TileRow}.png"`,
		`xlink:href="https://www.planet.example/terms"`, // not the provider's service: left alone
	} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PLAKSECRET") {
		t.Errorf("the key survived:\n%s", out)
	}
}

func TestHostMatcher(t *testing.T) {
	nearmap := provider.Placement{In: provider.InPath, Name: "apikey", After: "/maps/api/wmts/v1"}
	clean := func(path, q string) (string, string) {
		return nearmap.StripPath(path), provider.DropParams(q, []string{"apikey"})
	}
	m := HostMatcher([]Host{{Role: "wmts", Base: "https://us0.nearmap.example/maps/api/wmts/v1"}, {Role: "plain", Base: "http://h.example:8080"}}, clean)
	for in, want := range map[string]string{
		"https://us0.nearmap.example/maps/api/wmts/v1/apikey/NMKEY/tile/{TileMatrix}/{TileCol}/{TileRow}.jpg": "/~wmts/maps/api/wmts/v1/tile/{TileMatrix}/{TileCol}/{TileRow}.jpg",
		"//us0.nearmap.example/maps/api/wmts/v1/apikey/NMKEY?APIKEY=NMKEY&SERVICE=WMTS":                       "/~wmts/maps/api/wmts/v1?SERVICE=WMTS",
		"HTTPS://US0.NEARMAP.EXAMPLE/maps/api/wmts/v1#frag":                                                   "/~wmts/maps/api/wmts/v1",
		"http://h.example:8080/a%2Fb?x=1":                                                                     "/~plain/a%2Fb?x=1",
	} {
		if got, ok := m(in); !ok || got != want {
			t.Errorf("m(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"http://us0.nearmap.example/maps/api/wmts/v1/x",     // another scheme
		"https://us0.nearmap.example/maps/api/wmts/v10/x",   // not below the base path
		"https://us0.nearmap.example.evil/maps/api/wmts/v1", // another host
		"https://h.example/x",                               // another port
		"/maps/api/wmts/v1/tile",                            // no host
		"mailto:someone@us0.nearmap.example",
		"javascript://us0.nearmap.example/maps/api/wmts/v1/", // not http
	} {
		if got, ok := m(in); ok {
			t.Errorf("m(%q) matched: %q", in, got)
		}
	}
}

// Two roles on one host each take their own paths.
func TestHostMatcherRolesShareAHost(t *testing.T) {
	m := HostMatcher([]Host{
		{Role: "wmts", Base: "https://one.example", Allowed: []string{"/maps/api/wmts/v1"}},
		{Role: "api", Base: "https://one.example", Allowed: []string{"/wms/v1/latest"}},
	}, nil)
	for in, want := range map[string]string{
		"https://one.example/maps/api/wmts/v1/1.0.0/x.jpg": "/~wmts/maps/api/wmts/v1/1.0.0/x.jpg",
		"https://one.example/wms/v1/latest?SERVICE=WMS":    "/~api/wms/v1/latest?SERVICE=WMS",
	} {
		if got, ok := m(in); !ok || got != want {
			t.Errorf("m(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got, ok := m("https://one.example/other"); ok {
		t.Errorf("a path no role allows matched: %q", got)
	}
}
