// Package planet is an in-process stand-in for Planet's Basemaps WMTS,
// written from shared/providers.md §3 and §9 and the sources it cites:
//
//   - docs.planet.com/develop/apis/tiles/wmts: capabilities at
//     /basemaps/v1/mosaics/wmts?api_key= on api.planet.com; 256 px PNG
//     tiles with alpha in EPSG:3857;
//   - docs.planet.com/develop/apis/tiles/xyz: tiles at
//     tiles{0-3}.planet.com/basemaps/v1/planet-tiles/{mosaic}/gmap/{z}/{x}/{y}.png?api_key=;
//   - sentinel-hub/sentinelhub-js, src/layer/__tests__/fixtures.getCapabilitiesWMTS.ts
//     (a recorded Planet answer): the GetTile href and every ResourceURL
//     on the tiles host, the key in every ResourceURL and in the
//     GetCapabilities href and ServiceMetadataURL but not in the GetTile
//     href, RESTful only, layers named after mosaics, style "Default",
//     tile matrix set GoogleMapsCompatible15 with levels 0 to 15;
//   - docs.planet.com/develop/authentication: the key as the api_key query
//     parameter, as "Authorization: api-key KEY", or as the username of
//     HTTP Basic;
//   - docs.planet.com/develop/apis/tiles: "If you do not have the correct
//     permissions, the tile request results in a 404 error";
//   - docs.planet.com/develop/rate-limiting: 429, which "may include a
//     Retry-After header".
//
// Inferred, not documented: a wrong or missing key is answered 401 on both
// hosts, with a JSON body {"message": ...} (Switches.BadKeyStatus answers
// 404 instead, as providers.md §9 reads the tiles page); the capabilities
// list only the mosaics the key may see; a zoom outside 0–15 or a tile
// outside the grid is 404.
//
// Planet serves capabilities from one host and tiles from another, so a
// Fake has two handlers, API and Tiles, to be served by two servers; the
// capabilities name Options.TilesBase as the tiles host. Both handlers
// share the keys, switches and counters and are safe for concurrent use.
package planet

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider"
)

// Paths on the two hosts.
const (
	CapabilitiesPath = "/basemaps/v1/mosaics/wmts" // on the API host
	TilesPath        = "/basemaps/v1/planet-tiles" // on the tiles host; + /{mosaic}/gmap/{z}/{x}/{y}.png
	KeyParam         = "api_key"                   // the query parameter the key travels in
	authScheme       = "api-key"                   // Authorization: api-key KEY
	tilesPrefix      = TilesPath + "/"
)

// The style, tile matrix set and levels every mosaic is served in.
const (
	Style     = "Default"
	MatrixSet = "GoogleMapsCompatible15"
	MaxZoom   = 15
)

// Canonical hosts, written into capabilities when Options leave them empty.
const (
	CanonicalAPIBase   = "https://api.planet.com"
	CanonicalTilesBase = "https://tiles.planet.com"
)

// DefaultMosaics are served when Options.Mosaics is empty.
var DefaultMosaics = []string{
	"planet_medres_normalized_analytic_2016-06_2016-11_mosaic",
	"global_monthly_2026_10_mosaic",
}

//go:embed capabilities.xml.tmpl
var capsTemplate string

var caps = fakeprovider.Template("caps", capsTemplate)

// Options configure New. Zero values take the defaults.
type Options struct {
	// APIBase is the scheme and host written into the GetCapabilities
	// href and ServiceMetadataURL: "" for CanonicalAPIBase, "request"
	// for the host the request reached.
	APIBase string
	// TilesBase is the scheme and host of the tiles server, written into
	// the GetTile href and every ResourceURL: "" for CanonicalTilesBase.
	// Tests set it to the URL of the server that runs Tiles.
	TilesBase string
	// Mosaics the service holds; default DefaultMosaics.
	Mosaics []string
}

// Switches change how the fake behaves. The zero value is the documented,
// healthy service.
type Switches struct {
	Status     int           // non-zero: both hosts answer this status
	RetryAfter string        // sent with Status (as Planet "may" with 429)
	Delay      time.Duration // both hosts wait this long first
	// BadKeyStatus, if non-zero, replaces 401 as the answer to a wrong or
	// missing key (404: a refused key looks like a missing tile).
	BadKeyStatus int
}

// Fake is the fake service. Create it with New.
type Fake struct {
	// API serves the capabilities (api.planet.com).
	API http.Handler
	// Tiles serves the tiles (tiles.planet.com).
	Tiles http.Handler

	o   Options
	png []byte
	sw  fakeprovider.Switchboard[Switches]
	// keys holds, for each key, the mosaics it may see; nil: all.
	keys fakeprovider.Keys[map[string]bool]

	Requests             atomic.Int64 // every request to either host
	CapabilitiesRequests atomic.Int64 // capabilities served
	TileRequests         atomic.Int64 // tile requests whose key was good
	TilesServed          atomic.Int64 // tiles answered 200
	Refused              atomic.Int64 // answered 401 (or BadKeyStatus) for the key
	NotPermitted         atomic.Int64 // answered 404 for a mosaic the key may not see
}

// New returns a healthy fake with no keys.
func New(o Options) *Fake {
	if len(o.Mosaics) == 0 {
		o.Mosaics = DefaultMosaics
	}
	if o.TilesBase == "" {
		o.TilesBase = CanonicalTilesBase
	}
	f := &Fake{o: o, png: fakeprovider.PNG(256)}
	f.API = http.HandlerFunc(f.serveAPI)
	f.Tiles = http.HandlerFunc(f.serveTiles)
	return f
}

// AddKey registers an API key that may see the named mosaics, or every
// mosaic if none are named.
func (f *Fake) AddKey(key string, mosaics ...string) {
	var may map[string]bool
	if len(mosaics) > 0 {
		may = map[string]bool{}
		for _, m := range mosaics {
			may[m] = true
		}
	}
	f.keys.Add(key, may)
}

// RevokeKey forgets a key, as regenerating it in Planet's account page
// does ("You may only have one active API key at a time").
func (f *Fake) RevokeKey(key string) { f.keys.Revoke(key) }

// Set replaces the switches.
func (f *Fake) Set(s Switches) { f.sw.Set(s) }

// PNG returns the bytes served for every tile.
func (f *Fake) PNG() []byte { return f.png }

// Key returns the API key a request carries: the api_key query parameter,
// "Authorization: api-key KEY", or the username of HTTP Basic.
func Key(r *http.Request) string {
	if k := r.URL.Query().Get(KeyParam); k != "" {
		return k
	}
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, authScheme):
		return strings.TrimSpace(rest)
	case strings.EqualFold(scheme, "Basic"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return ""
		}
		user, _, _ := strings.Cut(string(b), ":")
		return user
	}
	return ""
}

// admit applies the switches and the key; it returns the mosaics the key
// may see (nil: all) and whether to go on.
func (f *Fake) admit(w http.ResponseWriter, r *http.Request) (map[string]bool, string, bool) {
	f.Requests.Add(1)
	sw := f.sw.Get()
	if !fakeprovider.Wait(r, sw.Delay) {
		return nil, "", false
	}
	if sw.Status != 0 {
		fakeprovider.SetRetryAfter(w, sw.RetryAfter)
		jsonError(w, sw.Status, "fake planet: forced status")
		return nil, "", false
	}
	key := Key(r)
	may, ok := f.keys.Get(key)
	if key == "" || !ok {
		f.Refused.Add(1)
		status := http.StatusUnauthorized
		if sw.BadKeyStatus != 0 {
			status = sw.BadKeyStatus
		}
		jsonError(w, status, "Please enter your API key, or email and password.")
		return nil, "", false
	}
	return may, key, true
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"message": msg, "errors": []string{}})
}

func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != CapabilitiesPath {
		f.Requests.Add(1)
		jsonError(w, http.StatusNotFound, "not found")
		return
	}
	may, key, ok := f.admit(w, r)
	if !ok {
		return
	}
	f.CapabilitiesRequests.Add(1)
	w.Header().Set("Content-Type", "application/xml")
	w.Write(f.CapabilitiesDocument(r, key, may))
}

// CapabilitiesDocument renders the capabilities as the fake serves them to
// key, listing the mosaics in may (nil: all).
func (f *Fake) CapabilitiesDocument(r *http.Request, key string, may map[string]bool) []byte {
	api := fakeprovider.ResolveBase(f.o.APIBase, CanonicalAPIBase, r)
	data := struct {
		Caps, Tiles, Key string
		Mosaics          []string
		Matrices         []fakeprovider.Matrix
	}{
		Caps:     api + CapabilitiesPath + "?" + KeyParam + "=" + key,
		Tiles:    strings.TrimSuffix(f.o.TilesBase, "/") + TilesPath,
		Key:      key,
		Matrices: fakeprovider.Matrices(MaxZoom),
	}
	for _, m := range f.o.Mosaics {
		if may == nil || may[m] {
			data.Mosaics = append(data.Mosaics, m)
		}
	}
	return fakeprovider.Render(caps, data)
}

// serveTiles serves /basemaps/v1/planet-tiles/{mosaic}/gmap/{z}/{x}/{y}.png.
func (f *Fake) serveTiles(w http.ResponseWriter, r *http.Request) {
	rest, found := strings.CutPrefix(r.URL.Path, tilesPrefix)
	if !found {
		f.Requests.Add(1)
		jsonError(w, http.StatusNotFound, "not found")
		return
	}
	may, _, ok := f.admit(w, r)
	if !ok {
		return
	}
	f.TileRequests.Add(1)
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[1] != "gmap" || !strings.HasSuffix(parts[4], ".png") {
		jsonError(w, http.StatusNotFound, "not found")
		return
	}
	mosaic, z, x, y := parts[0], parts[2], parts[3], strings.TrimSuffix(parts[4], ".png")
	known := false
	for _, m := range f.o.Mosaics {
		known = known || m == mosaic
	}
	if !known || (may != nil && !may[mosaic]) {
		f.NotPermitted.Add(1)
		jsonError(w, http.StatusNotFound, "not found")
		return
	}
	if !fakeprovider.InGrid(z, y, x, MaxZoom) {
		jsonError(w, http.StatusNotFound, "not found")
		return
	}
	f.TilesServed.Add(1)
	w.Header().Set("Content-Type", "image/png")
	w.Write(f.png)
}
