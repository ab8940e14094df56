// Package fakehexagon is an in-process stand-in for Hexagon's HxGN Content
// Program streaming service, written from its public documentation
// (shared/hexagon-upstream.md): tokens by GET with query parameters and the
// half-life renewal rule, WMTS in the REST form behind "wmts?/1.0.0/..." and
// the KVP form, the token in the access_token query parameter, 401 for a
// missing or dead token, and no CORS headers. Switches make it fail the
// ways the real service can.
//
// A Fake is an http.Handler and safe for concurrent use.
package fakehexagon

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider"
)

// Paths of the service, below the base URL: the streaming services for
// interactive use, and the batch ("orders") services for bulk and
// machine-learning loads, which serve the same data under a lower rate
// limit (Switches.OrdersLimit) and name themselves in their capabilities.
const (
	TokenPath      = "/streaming/oauth/token"
	WMTSPath       = "/streaming/wmts"
	WMSPath        = "/streaming/wms"
	OrdersWMTSPath = "/orders/wmts"
	OrdersWMSPath  = "/orders/wms"
)

// Layer, style and tile matrix set the fake serves.
const (
	Layer     = "HxGN_Imagery"
	Style     = "default"
	MatrixSet = "WebMercator"
	MaxZoom   = 21
)

// CanonicalBase is what the fake writes into capabilities by default.
const CanonicalBase = "https://services.hxgncontent.com"

//go:embed capabilities.xml.tmpl
var capsTemplate string

var caps = template.Must(template.New("caps").Parse(capsTemplate))

// Switches change how the fake behaves. The zero value is the documented,
// healthy service.
type Switches struct {
	// TokenMethods the token endpoint accepts: "GET" (documented; the
	// default when empty), "POST" (standard form body) or "GET,POST".
	TokenMethods string
	TokenStatus  int           // non-zero: the token endpoint answers this status
	TokenDelay   time.Duration // the token endpoint waits this long first
	TokenGarbage bool          // the token endpoint answers 200 with non-JSON

	TileStatus    int           // non-zero: tiles and capabilities answer this status
	RetryAfter    string        // sent with TileStatus 429
	TileDelay     time.Duration // tiles and capabilities wait this long first
	TruncateTiles bool          // tiles send half their declared length, then break
	TileLocation  string        // sent as Location with a 3xx TileStatus
	// StallTiles, if set, makes tiles send half their declared length,
	// then wait this long (or until the caller leaves) before the rest.
	StallTiles time.Duration
	// TileContentType, if set, replaces the media type of tiles, maps and
	// legends (a misconfigured upstream or a login page: "text/html").
	TileContentType string

	// CapabilitiesBase is the scheme and host written into capabilities:
	// "" for CanonicalBase, "request" for the host the request reached.
	CapabilitiesBase string
	// TokenInCapabilities appends the caller's access_token to every URL in
	// capabilities (the worst case a rewrite must clean).
	TokenInCapabilities bool
	// Capabilities, if set, is served instead of the generated document.
	Capabilities []byte

	// OrdersLimit, if positive, is how many requests the orders services
	// take in one second of the fake's clock; the rest are answered 429
	// with a Retry-After of the seconds to wait, as the documentation
	// tells batch clients to expect.
	OrdersLimit int
}

// Fake is the fake service. Create it with New.
type Fake struct {
	lifetime time.Duration
	now      func() time.Time
	jpeg     []byte
	png      []byte

	mu      sync.Mutex
	sw      Switches
	clients map[string]string // id → secret
	accept  func(id, secret string) bool
	tokens  map[string]*issued // client id → its current token
	live    map[string]string  // token → client id

	TokenRequests        atomic.Int64 // every request to the token endpoint
	TokensIssued         atomic.Int64 // new token values handed out
	WMTSRequests         atomic.Int64 // every request to the WMTS endpoint, whatever its answer
	TileRequests         atomic.Int64
	WMSRequests          atomic.Int64 // every request to the WMS endpoint
	MapRequests          atomic.Int64 // WMS GetMap requests that reached the map renderer
	CapabilitiesRequests atomic.Int64
	Unauthorized         atomic.Int64 // tile/capabilities requests refused for their token
	Cancelled            atomic.Int64 // requests whose client went away during a delay
	OrdersRequests       atomic.Int64 // every request to the orders services, whatever its answer

	ordersSecond int64 // the second of the fake's clock ordersUsed counts (under mu)
	ordersUsed   int
}

type issued struct {
	value  string
	expiry time.Time
}

// Options configure New. Zero values take the defaults.
type Options struct {
	Lifetime time.Duration    // token lifetime; default 12h, as documented
	Now      func() time.Time // default time.Now
	TileSize int              // approximate JPEG tile size in bytes; default ~25 KB
}

// New returns a healthy fake with no clients.
func New(o Options) *Fake {
	if o.Lifetime <= 0 {
		o.Lifetime = 12 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TileSize <= 0 {
		o.TileSize = 25 << 10
	}
	f := &Fake{lifetime: o.Lifetime, now: o.Now, clients: map[string]string{}, tokens: map[string]*issued{}, live: map[string]string{}}
	f.jpeg, f.png = makeTiles(o.TileSize)
	return f
}

// AddClient registers an OAuth client.
func (f *Fake) AddClient(id, secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id] = secret
}

// AcceptClients registers every client whose id and secret accept
// approves, as well as those AddClient adds: an account registry too
// large to list, for tests that make many credentials.
func (f *Fake) AcceptClients(accept func(id, secret string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accept = accept
}

// Set replaces the switches.
func (f *Fake) Set(s Switches) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sw = s
}

// Update changes the switches in place.
func (f *Fake) Update(fn func(*Switches)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.sw)
}

func (f *Fake) switches() Switches {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sw
}

// Revoke kills the client's current token: tiles refuse it, and the next
// token request issues a new one.
func (f *Fake) Revoke(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tokens[id]; t != nil {
		delete(f.live, t.value)
		delete(f.tokens, id)
	}
}

// CurrentToken returns the client's live token, if any.
func (f *Fake) CurrentToken(id string) (string, time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tokens[id]
	if t == nil || !f.now().Before(t.expiry) {
		return "", time.Time{}, false
	}
	return t.value, t.expiry, true
}

// JPEG returns the bytes served for every .jpg tile.
func (f *Fake) JPEG() []byte { return f.jpeg }

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case TokenPath:
		f.serveToken(w, r)
	case WMTSPath, WMTSPath + "/":
		f.serveWMTS(w, r)
	case WMSPath, WMSPath + "/":
		f.serveWMS(w, r)
	case OrdersWMTSPath, OrdersWMTSPath + "/":
		if f.ordersAdmit(w) {
			f.serveWMTS(w, r)
		}
	case OrdersWMSPath, OrdersWMSPath + "/":
		if f.ordersAdmit(w) {
			f.serveWMS(w, r)
		}
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// ordersAdmit counts a request to the orders services and answers 429
// when it is over OrdersLimit; it reports whether to serve it.
func (f *Fake) ordersAdmit(w http.ResponseWriter) bool {
	f.OrdersRequests.Add(1)
	limit := f.switches().OrdersLimit
	if limit <= 0 {
		return true
	}
	now := f.now()
	f.mu.Lock()
	if s := now.Unix(); s != f.ordersSecond {
		f.ordersSecond, f.ordersUsed = s, 0
	}
	f.ordersUsed++
	over := f.ordersUsed > limit
	f.mu.Unlock()
	if over {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "fake hexagon: the orders rate limit was reached", http.StatusTooManyRequests)
	}
	return !over
}

func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	f.TokenRequests.Add(1)
	sw := f.switches()
	if !f.wait(r, sw.TokenDelay) {
		return
	}
	methods := sw.TokenMethods
	if methods == "" {
		methods = http.MethodGet
	}
	if !strings.Contains(methods, r.Method) {
		w.Header().Set("Allow", methods)
		jsonError(w, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	if sw.TokenStatus != 0 {
		jsonError(w, sw.TokenStatus, "server_error")
		return
	}
	if sw.TokenGarbage {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>maintenance</body></html>")
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			jsonError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		params = r.PostForm
	}
	if params.Get("grant_type") != "client_credentials" {
		jsonError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	id, secret := params.Get("client_id"), params.Get("client_secret")
	f.mu.Lock()
	want, ok := f.clients[id]
	if !ok && f.accept != nil && f.accept(id, secret) {
		want, ok = secret, true
	}
	if !ok || want != secret || secret == "" {
		f.mu.Unlock()
		jsonError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	t := f.renew(id)
	left := t.expiry.Sub(f.now())
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": t.value,
		"token_type":   "Bearer",
		"expires_in":   int64(math.Ceil(left.Seconds())),
	})
}

// renew applies the documented rule: a live token is returned as it is; if
// less than half its lifetime remains it is renewed for a full lifetime;
// an expired one is replaced. Callers hold f.mu.
func (f *Fake) renew(id string) *issued {
	now := f.now()
	t := f.tokens[id]
	switch {
	case t == nil || !now.Before(t.expiry):
		if t != nil {
			delete(f.live, t.value)
		}
		b := make([]byte, 24)
		rand.Read(b)
		t = &issued{value: "hxtok-" + hex.EncodeToString(b), expiry: now.Add(f.lifetime)}
		f.tokens[id] = t
		f.live[t.value] = id
		f.TokensIssued.Add(1)
	case t.expiry.Sub(now) < f.lifetime/2:
		t.expiry = now.Add(f.lifetime)
	}
	return t
}

// proceed applies the data-service switches (delay, forced status) and
// reports whether the request should be served normally.
func (f *Fake) proceed(w http.ResponseWriter, r *http.Request, sw Switches) bool {
	if !f.wait(r, sw.TileDelay) {
		return false
	}
	if sw.TileStatus != 0 {
		if sw.RetryAfter != "" {
			w.Header().Set("Retry-After", sw.RetryAfter)
		}
		if sw.TileLocation != "" {
			w.Header().Set("Location", sw.TileLocation)
		}
		http.Error(w, "fake hexagon: forced status", sw.TileStatus)
		return false
	}
	return true
}

// wait sleeps for d unless the client goes away first; it reports whether
// the request should go on.
func (f *Fake) wait(r *http.Request, d time.Duration) bool {
	if !fakeprovider.Wait(r, d) {
		f.Cancelled.Add(1)
		return false
	}
	return true
}

func jsonError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q,"error_description":"fake hexagon: %s"}`, code, code)
}

// authorized checks access_token and answers 401 if it is not live.
func (f *Fake) authorized(w http.ResponseWriter, token string) bool {
	f.mu.Lock()
	id, ok := f.live[token]
	if ok {
		if t := f.tokens[id]; t == nil || !f.now().Before(t.expiry) {
			ok = false
		}
	}
	f.mu.Unlock()
	if !ok {
		f.Unauthorized.Add(1)
		http.Error(w, "invalid or expired access token", http.StatusUnauthorized)
	}
	return ok
}

// serveWMTS serves the REST form ("wmts?/1.0.0/...&access_token=") and the
// KVP form.
func (f *Fake) serveWMTS(w http.ResponseWriter, r *http.Request) {
	f.WMTSRequests.Add(1)
	sw := f.switches()
	raw := r.URL.RawQuery
	var restPath string
	if strings.HasPrefix(raw, "/") {
		restPath, raw, _ = strings.Cut(raw, "&")
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	if !f.proceed(w, r, sw) {
		return
	}
	token := q.Get("access_token")
	if !f.authorized(w, token) {
		return
	}
	kvp := map[string]string{}
	for k, v := range q {
		kvp[strings.ToUpper(k)] = v[0]
	}
	switch {
	case restPath == "/1.0.0/WMTSCapabilities.xml" || restPath == "" && strings.EqualFold(kvp["REQUEST"], "GetCapabilities"):
		f.serveCapabilities(w, r, sw, token)
	case strings.HasPrefix(restPath, "/1.0.0/"):
		parts := strings.Split(strings.TrimPrefix(restPath, "/1.0.0/"), "/")
		if len(parts) != 6 {
			http.Error(w, "unknown resource", http.StatusNotFound)
			return
		}
		col, ext, _ := strings.Cut(parts[5], ".")
		f.serveTile(w, r, sw, parts[0], parts[1], parts[2], parts[3], parts[4], col, ext)
	case strings.EqualFold(kvp["REQUEST"], "GetTile"):
		ext := map[string]string{"image/jpeg": "jpg", "image/png": "png"}[kvp["FORMAT"]]
		f.serveTile(w, r, sw, kvp["LAYER"], kvp["STYLE"], kvp["TILEMATRIXSET"], kvp["TILEMATRIX"], kvp["TILEROW"], kvp["TILECOL"], ext)
	default:
		http.Error(w, "unknown request", http.StatusBadRequest)
	}
}

func (f *Fake) serveCapabilities(w http.ResponseWriter, r *http.Request, sw Switches, token string) {
	f.CapabilitiesRequests.Add(1)
	w.Header().Set("Content-Type", "application/xml")
	if sw.Capabilities != nil {
		w.Write(sw.Capabilities)
		return
	}
	w.Write(f.CapabilitiesDocument(r, sw, token))
}

// CapabilitiesDocument renders the capabilities as the fake would serve them.
func (f *Fake) CapabilitiesDocument(r *http.Request, sw Switches, token string) []byte {
	c := capsData(r, sw, token)
	type matrix struct {
		Z, N  int
		Scale string
	}
	data := struct {
		Base, Family, Tok, TokQ string
		Matrices                []matrix
	}{Base: c["Base"], Family: c["Family"], Tok: c["Tok"], TokQ: c["TokQ"]}
	for z := 0; z <= MaxZoom; z++ {
		data.Matrices = append(data.Matrices, matrix{Z: z, N: 1 << z, Scale: strconv.FormatFloat(559082264.0287178/float64(int(1)<<z), 'f', -1, 64)})
	}
	var b bytes.Buffer
	if err := caps.Execute(&b, data); err != nil {
		panic(err) // the template is fixed; a failure is a bug in the fake
	}
	return b.Bytes()
}

func (f *Fake) serveTile(w http.ResponseWriter, r *http.Request, sw Switches, layer, style, set, z, row, col, ext string) {
	f.TileRequests.Add(1)
	zi, err1 := strconv.Atoi(z)
	ri, err2 := strconv.Atoi(row)
	ci, err3 := strconv.Atoi(col)
	if layer != Layer || style != Style || set != MatrixSet {
		http.Error(w, "unknown layer, style or tile matrix set", http.StatusBadRequest)
		return
	}
	if err1 != nil || err2 != nil || err3 != nil || zi < 0 || zi > MaxZoom || ri < 0 || ci < 0 || ri >= 1<<zi || ci >= 1<<zi {
		http.Error(w, "tile outside the grid", http.StatusBadRequest)
		return
	}
	var body []byte
	switch ext {
	case "jpg", "jpeg":
		body = f.jpeg
		w.Header().Set("Content-Type", "image/jpeg")
	case "png":
		body = f.png
		w.Header().Set("Content-Type", "image/png")
	default:
		http.Error(w, "unknown format", http.StatusBadRequest)
		return
	}
	if sw.TileContentType != "" {
		w.Header().Set("Content-Type", sw.TileContentType)
	}
	etag := fmt.Sprintf(`"%d-%d-%d-%s"`, zi, ri, ci, ext)
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("Last-Modified", "Mon, 02 Jan 2023 15:04:05 GMT")
	h.Set("Set-Cookie", "hx-session=fake; Path=/") // a header the proxy must not pass on
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if sw.TruncateTiles {
		sendHalf(w, body)
		panic(http.ErrAbortHandler) // cut the connection mid-body
	}
	if sw.StallTiles > 0 && r.Method != http.MethodHead {
		sendHalf(w, body)
		select {
		case <-time.After(sw.StallTiles):
		case <-r.Context().Done():
			return
		}
		w.Write(body[len(body)/2:])
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

// sendHalf answers 200 with the first half of body, flushed to the
// caller, for the faults that break off or stall midway.
func sendHalf(w http.ResponseWriter, body []byte) {
	w.WriteHeader(http.StatusOK)
	w.Write(body[:len(body)/2])
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
}

// makeTiles renders one JPEG of roughly size bytes and one PNG.
func makeTiles(size int) (jpg, pngb []byte) {
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	// Deterministic texture: enough detail that JPEG size tracks quality.
	seed := uint32(2463534242)
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			seed ^= seed << 13
			seed ^= seed >> 17
			seed ^= seed << 5
			n := uint8(seed)
			img.Set(x, y, color.RGBA{uint8(x)/2 + n/4, uint8(y)/2 + n/4, 90 + n/3, 255})
		}
	}
	var b bytes.Buffer
	for q := 95; q > 5; q -= 5 {
		b.Reset()
		jpeg.Encode(&b, img, &jpeg.Options{Quality: q})
		if b.Len() <= size {
			break
		}
	}
	jpg = append([]byte(nil), b.Bytes()...)
	b.Reset()
	small := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for i := range small.Pix {
		small.Pix[i] = 200
	}
	png.Encode(&b, small)
	return jpg, b.Bytes()
}
