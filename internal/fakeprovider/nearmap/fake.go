// Package nearmap is an in-process stand-in for Nearmap's WMTS and WMS v1
// services, written from shared/providers.md §2 and §9 and the sources it
// cites:
//
//   - nearmap/nearmap-sample-code, arcgis/"Nearmap WMTS API ArcGIS
//     JavaScript SDK 2D & 3D Sample.html": WMTS at
//     {host}/maps/api/wmts/v1/apikey/{key} on regional hosts ("URL Differs
//     for US + Canada -vs- AU + NZ"), layer "nearmap.com";
//   - the same repository's WMS sample: WMS at
//     api.nearmap.com/wms/v1/latest/apikey/{key};
//   - help.nearmap.com/kb/articles/286: the key "with every request", as
//     the apikey URL parameter or "Authorization: Apikey KEY", where "the
//     string must be 'Apikey' with a capital A and all other characters
//     lowercase";
//   - developer.nearmap.com/docs/nearmap-api-standards: 429 past the rate
//     limit, and X-Ratelimit-Limit "on every request whether it's rate
//     limited or not" (the stored copy is cut off after that header);
//   - [W] a third-party proxy: the WMS speaks 1.1.1 (SRS, not CRS) and
//     reports errors as a ServiceExceptionReport with HTTP 200.
//
// Inferred, not documented: the capabilities path
// {base}/1.0.0/WMTSCapabilities.xml (ArcGIS's WMTSLayer in its default
// RESTful mode asks for it below the sample's URL) and the KVP form at the
// base; the REST tile path {base}/1.0.0/{layer}/{style}/{set}/{z}/{row}/{col}.jpg,
// style "default" and tile matrix set "GoogleMapsCompatible" with levels
// 0–21; that every URL in the capabilities carries the /apikey/{key} base
// the request came to; that a request passes if any of the three places
// holds a live key (so a placeholder path segment with the key in a
// header or the query passes); X-Ratelimit-Remaining and X-Ratelimit-Reset (seconds
// to the end of the window) and a Retry-After on the 429; one fixed window
// for all requests; 401 in plain text for a wrong or missing key (on WMS
// too, unless Switches.KeyExceptions); the WMS layer name, taken from
// third-party code [W].
//
// A Fake is an http.Handler and safe for concurrent use. Regional hosts
// are only a base URL: run one server per host, or set Options.Base.
package nearmap

import (
	_ "embed"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider"
)

// Path prefixes; the key follows as the next path segment.
const (
	WMTSPrefix = "/maps/api/wmts/v1/apikey/"
	WMSPrefix  = "/wms/v1/latest/apikey/"
	KeyParam   = "apikey" // the query parameter form
	AuthScheme = "Apikey" // Authorization: Apikey KEY, case-sensitive
)

// What the WMTS and WMS serve.
const (
	Layer     = "nearmap.com"
	Style     = "default"
	MatrixSet = "GoogleMapsCompatible"
	MaxZoom   = 21
	WMSLayer  = "Nearmap/Nearmap/Australia"
)

// Rate-limit defaults.
const (
	DefaultRateLimit  = 10000
	DefaultRateWindow = time.Minute
)

//go:embed wmts.xml.tmpl
var wmtsTemplate string

//go:embed wms111.xml.tmpl
var wmsTemplate string

var (
	wmtsCaps = fakeprovider.Template("wmts", wmtsTemplate)
	wmsCaps  = fakeprovider.Template("wms", wmsTemplate)
)

// Options configure New. Zero values take the defaults.
type Options struct {
	// Base is the scheme and host written into capabilities (a regional
	// host such as https://us0.nearmap.com); "" for the host the request
	// reached.
	Base string
	// RateLimit is how many requests one RateWindow takes before 429;
	// default DefaultRateLimit per DefaultRateWindow.
	RateLimit  int
	RateWindow time.Duration
	Now        func() time.Time // the clock of the rate window; default time.Now
}

// Switches change how the fake behaves. The zero value is the documented,
// healthy service.
type Switches struct {
	Status     int           // non-zero: every answer is this status
	RetryAfter string        // sent with Status
	Delay      time.Duration // every answer waits this long first
	// KeyExceptions makes the WMS answer a wrong key as it answers its
	// other errors, 200 with a ServiceExceptionReport, instead of 401.
	KeyExceptions bool
}

// Fake is the fake service. Create it with New.
type Fake struct {
	o    Options
	jpeg []byte
	sw   fakeprovider.Switchboard[Switches]
	keys fakeprovider.Keys[bool]

	mu          sync.Mutex // guards the rate window
	windowStart time.Time
	used        int

	Requests             atomic.Int64 // every request, whatever its answer
	CapabilitiesRequests atomic.Int64 // WMTS or WMS capabilities served
	TileRequests         atomic.Int64 // WMTS tiles served
	MapRequests          atomic.Int64 // WMS maps served
	Refused              atomic.Int64 // answered for a wrong or missing key
	RateLimited          atomic.Int64 // answered 429 past the rate limit
}

// New returns a healthy fake with no keys.
func New(o Options) *Fake {
	if o.RateLimit <= 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RateWindow <= 0 {
		o.RateWindow = DefaultRateWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Fake{o: o, jpeg: fakeprovider.JPEG(20 << 10)}
}

// AddKey registers an API key.
func (f *Fake) AddKey(key string) { f.keys.Add(key, true) }

// RevokeKey forgets a key.
func (f *Fake) RevokeKey(key string) { f.keys.Revoke(key) }

// Set replaces the switches.
func (f *Fake) Set(s Switches) { f.sw.Set(s) }

// JPEG returns the bytes served for every WMTS tile.
func (f *Fake) JPEG() []byte { return f.jpeg }

// count takes one request from the rate window and sets the X-Ratelimit
// headers; it reports whether the request is within the limit and the
// seconds until the window ends.
func (f *Fake) count(w http.ResponseWriter) (ok bool, reset int) {
	now := f.o.Now()
	f.mu.Lock()
	if f.windowStart.IsZero() || !now.Before(f.windowStart.Add(f.o.RateWindow)) {
		f.windowStart, f.used = now, 0
	}
	f.used++
	used := f.used
	left := f.windowStart.Add(f.o.RateWindow).Sub(now)
	f.mu.Unlock()
	reset = int((left + time.Second - 1) / time.Second)
	h := w.Header()
	h.Set("X-Ratelimit-Limit", strconv.Itoa(f.o.RateLimit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(max(f.o.RateLimit-used, 0)))
	h.Set("X-Ratelimit-Reset", strconv.Itoa(reset))
	return used <= f.o.RateLimit, reset
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.Requests.Add(1)
	sw := f.sw.Get()
	if !fakeprovider.Wait(r, sw.Delay) {
		return
	}
	within, reset := f.count(w)
	if sw.Status != 0 {
		fakeprovider.SetRetryAfter(w, sw.RetryAfter)
		http.Error(w, "fake nearmap: forced status", sw.Status)
		return
	}
	if !within {
		f.RateLimited.Add(1)
		w.Header().Set("Retry-After", strconv.Itoa(reset))
		http.Error(w, "fake nearmap: rate limit exceeded", http.StatusTooManyRequests)
		return
	}
	var wms bool
	rest, ok := strings.CutPrefix(r.URL.Path, WMTSPrefix)
	if !ok {
		rest, wms = strings.CutPrefix(r.URL.Path, WMSPrefix)
		if !wms {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
	}
	pathKey, sub, _ := strings.Cut(rest, "/")
	if sub != "" {
		sub = "/" + sub
	}
	if !f.authorized(r, pathKey) {
		f.Refused.Add(1)
		if wms && sw.KeyExceptions {
			serviceException(w, "", "Invalid API key")
			return
		}
		http.Error(w, "fake nearmap: invalid API key", http.StatusUnauthorized)
		return
	}
	if wms {
		base := f.base(r) + WMSPrefix + url.PathEscape(pathKey)
		f.serveWMS(w, r, sub, base)
		return
	}
	base := f.base(r) + WMTSPrefix + url.PathEscape(pathKey)
	f.serveWMTS(w, r, sub, base)
}

// authorized reports whether any place the key can travel in — the path
// segment, the apikey parameter, "Authorization: Apikey" — holds a live key.
func (f *Fake) authorized(r *http.Request, pathKey string) bool {
	var header string
	if scheme, rest, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && scheme == AuthScheme {
		header = strings.TrimSpace(rest)
	}
	for _, k := range []string{pathKey, r.URL.Query().Get(KeyParam), header} {
		if live, _ := f.keys.Get(k); live {
			return true
		}
	}
	return false
}

func (f *Fake) base(r *http.Request) string {
	if f.o.Base != "" {
		return strings.TrimSuffix(f.o.Base, "/")
	}
	return fakeprovider.Base(r)
}

// upperKeys returns the query with its keys upper-cased, as OGC KVP
// parameter names are case-insensitive.
func upperKeys(r *http.Request) map[string]string {
	kvp := map[string]string{}
	for k, v := range r.URL.Query() {
		kvp[strings.ToUpper(k)] = v[0]
	}
	return kvp
}

func (f *Fake) serveWMTS(w http.ResponseWriter, r *http.Request, sub, base string) {
	kvp := upperKeys(r)
	switch {
	case sub == "/1.0.0/WMTSCapabilities.xml" || (sub == "" || sub == "/") && strings.EqualFold(kvp["REQUEST"], "GetCapabilities"):
		f.CapabilitiesRequests.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.Write(f.WMTSCapabilities(base))
	case (sub == "" || sub == "/") && strings.EqualFold(kvp["REQUEST"], "GetTile"):
		f.serveTile(w, kvp["LAYER"], kvp["STYLE"], kvp["TILEMATRIXSET"], kvp["TILEMATRIX"], kvp["TILEROW"], kvp["TILECOL"], kvp["FORMAT"] == "image/jpeg")
	case strings.HasPrefix(sub, "/1.0.0/"):
		p := strings.Split(strings.TrimPrefix(sub, "/1.0.0/"), "/")
		if len(p) != 6 {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		col, isJPEG := strings.CutSuffix(p[5], ".jpg")
		f.serveTile(w, p[0], p[1], p[2], p[3], p[4], col, isJPEG)
	default:
		http.Error(w, "fake nearmap: unknown request", http.StatusBadRequest)
	}
}

// WMTSCapabilities renders the WMTS capabilities for the service base
// (scheme, host and /maps/api/wmts/v1/apikey/{key}).
func (f *Fake) WMTSCapabilities(base string) []byte {
	return fakeprovider.Render(wmtsCaps, map[string]any{
		"Base": base, "Layer": Layer, "Style": Style, "MatrixSet": MatrixSet,
		"Matrices": fakeprovider.Matrices(MaxZoom),
	})
}

// WMSCapabilities renders the WMS 1.1.1 capabilities for the service base
// (scheme, host and /wms/v1/latest/apikey/{key}).
func (f *Fake) WMSCapabilities(base string) []byte {
	return fakeprovider.Render(wmsCaps, map[string]any{"Base": base, "Layer": WMSLayer})
}

func (f *Fake) serveTile(w http.ResponseWriter, layer, style, set, z, row, col string, isJPEG bool) {
	if layer != Layer || style != Style || set != MatrixSet || !isJPEG {
		http.Error(w, "fake nearmap: unknown layer, style, tile matrix set or format", http.StatusBadRequest)
		return
	}
	if !fakeprovider.InGrid(z, row, col, MaxZoom) {
		http.Error(w, "fake nearmap: tile outside the grid", http.StatusNotFound)
		return
	}
	f.TileRequests.Add(1)
	w.Header().Set("Content-Type", "image/jpeg")
	w.Write(f.jpeg)
}

// serveWMS serves WMS 1.1.1 at the base; its errors are 200 with a
// ServiceExceptionReport.
func (f *Fake) serveWMS(w http.ResponseWriter, r *http.Request, sub, base string) {
	if sub != "" && sub != "/" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	kvp := upperKeys(r)
	switch strings.ToLower(kvp["REQUEST"]) {
	case "getcapabilities":
		f.CapabilitiesRequests.Add(1)
		w.Header().Set("Content-Type", "application/vnd.ogc.wms_xml")
		w.Write(f.WMSCapabilities(base))
	case "getmap":
		f.serveMap(w, kvp)
	default:
		serviceException(w, "OperationNotSupported", "Request not supported: "+kvp["REQUEST"])
	}
}

func (f *Fake) serveMap(w http.ResponseWriter, kvp map[string]string) {
	srs := kvp["SRS"]
	switch {
	case kvp["LAYERS"] != WMSLayer:
		serviceException(w, "LayerNotDefined", "Unknown layer: "+kvp["LAYERS"])
		return
	case srs != "EPSG:3857" && srs != "EPSG:900913" && srs != "EPSG:4326":
		serviceException(w, "InvalidSRS", "Unsupported SRS: "+srs)
		return
	}
	var bbox [4]float64
	parts := strings.Split(kvp["BBOX"], ",")
	bad := len(parts) != 4
	for i := 0; !bad && i < 4; i++ {
		var err error
		bbox[i], err = strconv.ParseFloat(parts[i], 64)
		bad = err != nil
	}
	if bad || bbox[0] >= bbox[2] || bbox[1] >= bbox[3] {
		serviceException(w, "", "Invalid BBOX: "+kvp["BBOX"])
		return
	}
	wd, err1 := strconv.Atoi(kvp["WIDTH"])
	ht, err2 := strconv.Atoi(kvp["HEIGHT"])
	if err1 != nil || err2 != nil || wd < 1 || ht < 1 || wd > 4096 || ht > 4096 {
		serviceException(w, "", "Invalid WIDTH or HEIGHT")
		return
	}
	body, ok := fakeprovider.Image(kvp["FORMAT"], wd, ht)
	if !ok {
		serviceException(w, "InvalidFormat", "Unsupported format: "+kvp["FORMAT"])
		return
	}
	f.MapRequests.Add(1)
	w.Header().Set("Content-Type", kvp["FORMAT"])
	w.Write(body)
}

// serviceException answers 200 with a WMS 1.1.1 ServiceExceptionReport.
func serviceException(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/vnd.ogc.se_xml")
	attr := ""
	if code != "" {
		attr = ` code="` + fakeprovider.XML(code) + `"`
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport version="1.1.1"><ServiceException%s>%s</ServiceException></ServiceExceptionReport>
`, attr, fakeprovider.XML(msg))
}
