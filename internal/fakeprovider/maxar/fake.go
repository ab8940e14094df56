// Package maxar is an in-process stand-in for Maxar's platform (MGP,
// "Vantor Hub"): the Keycloak token endpoint on account.maxar.com that
// turns a username and password into a two-hour bearer token with a
// refresh token, and the streaming imagery WMTS and WMS on api.maxar.com.
// It is written from shared/providers.md §4 and §9 and the sources they
// cite:
//
//   - developers.maxar.com/docs/authentication/guides/get-a-token: a POST
//     to /auth/realms/mds/protocol/openid-connect/token with the form
//     client_id=mgp, username, password, grant_type=password, answered
//     with access_token, "expires_in": 7199, "refresh_expires_in": 43199
//     and refresh_token; bearer tokens "have a lifespan of 2 hours";
//   - the Maxar-Corp/maxar-geospatial-platform notebook: the refresh,
//     grant_type=refresh_token&refresh_token=…&client_id=mgp;
//   - developers.maxar.com/docs/streaming-imagery/guides/wmts and …/wms:
//     WMTS (KVP GetCapabilities and GetTile on one path) at
//     /streaming/v1/ogc/wmts, WMS 1.3.0 and 1.1.1 at /streaming/v1/ogc/wms,
//     the layer Maxar:Imagery filtered with CQL_FILTER, zoom 0–21; "All
//     OGC services accept an API key or a bearer token": maxar_api_key=
//     in the query, the header "maxar-api-key", or "Authorization: Bearer";
//     "API keys expire 180 days from creation by default. A custom
//     expiration date can be set but cannot exceed 180 days";
//   - developers.maxar.com/docs/authentication: keys "can be revoked at any
//     time"; refusals are 401 or 403;
//   - the seamlines WMS page: "Exceptions may also return a 200 OK, with
//     an error in the response body";
//   - the tasking API's rate limit: 429 with the JSON body
//     {"error":{"error_code":"too_many_requests","error_type":"rate_limit_error","error_messages":["… Try after 3533 seconds"]}};
//   - [W] a live probe in a TomTom/Vantor demo repository: the tile matrix
//     set EPSG:3857, "1:1 onto {z}/{x}/{y}", and "a misspelled [CQL]
//     property returns HTTP 200 with a blank tile";
//   - Maxar's legacy EVWHS GetTile page (gcs-docs.s3.amazonaws.com/EVWHS):
//     tile matrices named {set}:{z}, as TileMatrix=EPSG:4326:16; that the
//     streaming WMTS names them EPSG:3857:{z} too is inferred from it.
//
// Inferred, not documented: the Keycloak error answers — 401
// {"error":"invalid_grant","error_description":"Invalid user credentials"}
// for a wrong username or password, 400 invalid_grant for an expired,
// ended or unknown refresh token, 400 invalid_client for a client_id
// other than mgp, 400 unsupported_grant_type — and that a refresh issues
// a new refresh token within the same session, which ends
// Options.SessionLifetime after the login (so refresh_expires_in counts
// down, and a proxy must log in again after 12 hours); earlier refresh
// tokens stay usable until their own end (Keycloak's default). That one
// httptest server serves both hosts (the paths do not overlap). The
// refusal of a credential: 401 with "WWW-Authenticate: Bearer" and a JSON
// body (Switches.RefusalStatus answers 403 instead). Which credential
// wins when a request carries several: the first of Bearer, the header,
// the query parameter. The query parameter's name is read
// case-insensitively, as other KVP names are. Whether capabilities carry
// the caller's credential is unknown, so Switches.CredentialInCapabilities
// chooses. Every parameter error, a tile outside the grid included, is a
// 200 exception (an OWS ExceptionReport on WMTS, a ServiceExceptionReport
// on WMS). The style, "default" (or empty). The CQL property names
// (Options.Properties). Retry-After on the 429 (Switches.RetryAfter,
// default the 3533 of the documented body).
//
// Not modelled: the basemaps and seamlines services, EPSG:4326 and the
// 2X tile matrix sets, WFS, the 3D tiles role check, legacy SecureWatch
// (CONNECTID and Basic), the API-key management API.
//
// A Fake is an http.Handler and safe for concurrent use.
package maxar

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider"
)

// Paths of the service. TokenPath is on the account host, the others on
// the API host; one Fake serves them all.
const (
	TokenPath = "/auth/realms/mds/protocol/openid-connect/token"
	WMTSPath  = "/streaming/v1/ogc/wmts"
	WMSPath   = "/streaming/v1/ogc/wms"
)

// Credentials: the token endpoint's client, and where an API key travels.
const (
	ClientID  = "mgp"           // the only client_id the token endpoint takes
	KeyParam  = "maxar_api_key" // the query parameter
	KeyHeader = "maxar-api-key" // the header
)

// What the WMTS and WMS serve.
const (
	Layer     = "Maxar:Imagery"
	Style     = "default"
	MatrixSet = "EPSG:3857" // its TileMatrix identifiers are EPSG:3857:{z}
	MaxZoom   = 21
)

// Documented lifetimes.
const (
	AccessLifetime  = 7199 * time.Second  // expires_in
	RefreshLifetime = 43199 * time.Second // refresh_expires_in at login
	MaxKeyLifetime  = 180 * 24 * time.Hour
)

// RateLimitRetryAfter is the wait, in seconds, named in the documented 429
// body, used when Switches.RetryAfter is empty.
const RateLimitRetryAfter = "3533"

// Canonical hosts, written into capabilities by default.
const (
	CanonicalBase        = "https://api.maxar.com"
	CanonicalAccountBase = "https://account.maxar.com"
)

// DefaultProperties are the CQL_FILTER property names the fake knows when
// Options.Properties is empty [I].
var DefaultProperties = []string{"acquisitionDate", "cloudCover", "productName", "source", "offNadirAngle", "sunElevationAngle", "groundSampleDistance", "featureId"}

var (
	//go:embed wmts.xml.tmpl
	wmtsTemplate string
	//go:embed wms130.xml.tmpl
	wms130Template string
	//go:embed wms111.xml.tmpl
	wms111Template string

	wmtsCaps   = fakeprovider.Template("wmts", wmtsTemplate)
	wms130Caps = fakeprovider.Template("wms130", wms130Template)
	wms111Caps = fakeprovider.Template("wms111", wms111Template)
)

// Options configure New. Zero values take the defaults.
type Options struct {
	Now func() time.Time // the clock of tokens and keys; default time.Now
	// Base is the scheme and host written into capabilities: "" for
	// CanonicalBase, "request" for the host the request reached.
	Base string
	// Lifetimes of what the token endpoint issues (defaults: the
	// constants of the same names); SessionLifetime, how long after a
	// login its refresh tokens can live at most, defaults to
	// RefreshLifetime.
	AccessLifetime, RefreshLifetime, SessionLifetime time.Duration
	// Properties are the CQL_FILTER property names; a filter naming any
	// other is answered with a blank image. Default DefaultProperties.
	Properties []string
}

// Switches change how the fake behaves. The zero value is the documented,
// healthy service.
type Switches struct {
	// Status, if non-zero, is the answer of the WMTS and WMS; 429 carries
	// the documented JSON body and Retry-After.
	Status int
	// RetryAfter is sent with Status (default RateLimitRetryAfter for
	// 429), and is the wait the 429 body names.
	RetryAfter string
	Delay      time.Duration // the WMTS and WMS wait this long first

	TokenStatus int // non-zero: the token endpoint answers this status

	// RefusalStatus, if non-zero, replaces 401 as the answer to a
	// missing, unknown, expired or revoked credential (403).
	RefusalStatus int
	// CredentialInCapabilities appends the caller's credential, as
	// maxar_api_key= (a key, wherever it came), to every URL in the
	// capabilities. A bearer token is never written.
	CredentialInCapabilities bool
}

// Seen is what one request to the WMTS or WMS carried.
type Seen struct {
	Path   string
	Query  url.Values
	Header http.Header
}

// Fake is the fake service. Create it with New.
type Fake struct {
	o                   Options
	props               map[string]bool
	jpeg, png           []byte
	blankJPEG, blankPNG []byte
	sw                  fakeprovider.Switchboard[Switches]
	keys                fakeprovider.Keys[time.Time] // key → expiry

	mu          sync.Mutex             // guards what follows
	users       map[string]string      // username → password
	access      map[string]time.Time   // access token → expiry
	refresh     map[string]refreshInfo // refresh token → its state
	lastAccess  string
	lastRefresh string
	lastForm    url.Values
	last        Seen

	TokenRequests atomic.Int64 // every request to the token endpoint
	Logins        atomic.Int64 // password grants answered with a token
	Refreshes     atomic.Int64 // refresh grants answered with a token
	TokenRefusals atomic.Int64 // token requests answered 400 or 401

	Requests             atomic.Int64 // every request to the WMTS or WMS
	CapabilitiesRequests atomic.Int64 // capabilities served
	TileRequests         atomic.Int64 // WMTS tiles served (blank ones too)
	MapRequests          atomic.Int64 // WMS maps served (blank ones too)
	BlankImages          atomic.Int64 // tiles and maps answered blank for an unknown CQL property
	Exceptions           atomic.Int64 // answered 200 with an OGC exception
	Refused              atomic.Int64 // answered 401 (RefusalStatus) for the credential
	RateLimited          atomic.Int64 // answered 429 by Switches.Status
}

type refreshInfo struct {
	expiry, sessionEnd time.Time
	user               string
}

// New returns a healthy fake with no users and no keys.
func New(o Options) *Fake {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AccessLifetime <= 0 {
		o.AccessLifetime = AccessLifetime
	}
	if o.RefreshLifetime <= 0 {
		o.RefreshLifetime = RefreshLifetime
	}
	if o.SessionLifetime <= 0 {
		o.SessionLifetime = o.RefreshLifetime
	}
	if len(o.Properties) == 0 {
		o.Properties = DefaultProperties
	}
	f := &Fake{o: o, props: map[string]bool{},
		jpeg: fakeprovider.JPEG(20 << 10), png: fakeprovider.PNG(256),
		users: map[string]string{}, access: map[string]time.Time{}, refresh: map[string]refreshInfo{}}
	for _, p := range o.Properties {
		f.props[strings.ToLower(p)] = true
	}
	f.blankJPEG, f.blankPNG = blank("image/jpeg", 256, 256), blank("image/png", 256, 256)
	return f
}

// AddUser registers an account that may log in.
func (f *Fake) AddUser(username, password string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[username] = password
}

// AddKey registers an API key that lives for lifetime from now (0: the
// default MaxKeyLifetime) and returns its expiry. It panics if lifetime
// exceeds MaxKeyLifetime, which Maxar does not allow.
func (f *Fake) AddKey(key string, lifetime time.Duration) time.Time {
	if lifetime > MaxKeyLifetime {
		panic(fmt.Sprintf("fake maxar: a key lives at most %v, not %v", MaxKeyLifetime, lifetime))
	}
	if lifetime <= 0 {
		lifetime = MaxKeyLifetime
	}
	exp := f.o.Now().Add(lifetime)
	f.keys.Add(key, exp)
	return exp
}

// RevokeKey kills an API key before its expiry.
func (f *Fake) RevokeKey(key string) { f.keys.Revoke(key) }

// RevokeToken kills an access token before its expiry.
func (f *Fake) RevokeToken(access string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.access, access)
}

// EndSessions ends every login's session: refresh tokens are refused from
// now on (400 invalid_grant); access tokens live until their expiry.
func (f *Fake) EndSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.refresh)
}

// LastTokens returns the access and refresh tokens the token endpoint
// issued last.
func (f *Fake) LastTokens() (access, refresh string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastAccess, f.lastRefresh
}

// LastTokenForm returns a copy of the form of the last POST to the token
// endpoint (password included: it is a test's own).
func (f *Fake) LastTokenForm() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneValues(f.lastForm)
}

// Last returns a copy of what the last request to the WMTS or WMS carried.
func (f *Fake) Last() Seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Seen{Path: f.last.Path, Query: cloneValues(f.last.Query), Header: f.last.Header.Clone()}
}

// Set replaces the switches.
func (f *Fake) Set(s Switches) { f.sw.Set(s) }

// JPEG and PNG return the bytes served for every WMTS tile of that format.
func (f *Fake) JPEG() []byte { return f.jpeg }
func (f *Fake) PNG() []byte  { return f.png }

// BlankTile returns the bytes of the blank 256 px tile served in format
// ("image/png": fully transparent; "image/jpeg": white) when a CQL
// property is unknown; nil for another format.
func (f *Fake) BlankTile(format string) []byte {
	switch format {
	case "image/png":
		return f.blankPNG
	case "image/jpeg":
		return f.blankJPEG
	}
	return nil
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case TokenPath:
		f.serveToken(w, r)
	case WMTSPath, WMSPath:
		f.serveOGC(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// ---- the token endpoint ----

func (f *Fake) oauthError(w http.ResponseWriter, status int, code, desc string) {
	f.TokenRefusals.Add(1)
	fakeprovider.JSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (f *Fake) serveToken(w http.ResponseWriter, r *http.Request) {
	f.TokenRequests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fakeprovider.JSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "HTTP 405 Method Not Allowed"})
		return
	}
	if err := r.ParseForm(); err != nil {
		f.oauthError(w, http.StatusBadRequest, "invalid_request", "the form does not parse")
		return
	}
	form := r.PostForm
	f.mu.Lock()
	f.lastForm = cloneValues(form)
	f.mu.Unlock()
	if st := f.sw.Get().TokenStatus; st != 0 {
		fakeprovider.JSON(w, st, map[string]string{"error": "fake maxar: forced status"})
		return
	}
	if form.Get("client_id") != ClientID {
		f.oauthError(w, http.StatusBadRequest, "invalid_client", "Invalid client or Invalid client credentials")
		return
	}
	now := f.o.Now()
	switch form.Get("grant_type") {
	case "password":
		user := form.Get("username")
		f.mu.Lock()
		pass, ok := f.users[user]
		f.mu.Unlock()
		if !ok || pass == "" || form.Get("password") != pass {
			f.oauthError(w, http.StatusUnauthorized, "invalid_grant", "Invalid user credentials")
			return
		}
		f.Logins.Add(1)
		f.issue(w, user, now, now.Add(f.o.SessionLifetime))
	case "refresh_token":
		rt := form.Get("refresh_token")
		f.mu.Lock()
		info, ok := f.refresh[rt]
		f.mu.Unlock()
		switch {
		case !ok || rt == "":
			f.oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
			return
		case !now.Before(info.expiry):
			f.oauthError(w, http.StatusBadRequest, "invalid_grant", "Token is not active")
			return
		}
		f.Refreshes.Add(1)
		f.issue(w, info.user, now, info.sessionEnd)
	default:
		f.oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
	}
}

// issue answers a new access token and a refresh token that lives until
// the session ends or RefreshLifetime, whichever is first.
func (f *Fake) issue(w http.ResponseWriter, user string, now, sessionEnd time.Time) {
	accessExp := now.Add(f.o.AccessLifetime)
	refreshExp := now.Add(f.o.RefreshLifetime)
	if sessionEnd.Before(refreshExp) {
		refreshExp = sessionEnd
	}
	at := newJWT(map[string]any{"sub": user, "typ": "Bearer", "azp": ClientID, "iat": now.Unix(), "exp": accessExp.Unix()})
	rt := newJWT(map[string]any{"sub": user, "typ": "Refresh", "azp": ClientID, "iat": now.Unix(), "exp": refreshExp.Unix()})
	f.mu.Lock()
	f.access[at] = accessExp
	f.refresh[rt] = refreshInfo{expiry: refreshExp, sessionEnd: sessionEnd, user: user}
	f.lastAccess, f.lastRefresh = at, rt
	f.mu.Unlock()
	fakeprovider.JSON(w, http.StatusOK, map[string]any{
		"access_token":       at,
		"expires_in":         int64(f.o.AccessLifetime / time.Second),
		"refresh_expires_in": int64(refreshExp.Sub(now) / time.Second),
		"refresh_token":      rt,
		"token_type":         "Bearer",
		"not-before-policy":  0,
		"session_state":      newID(),
		"scope":              "email profile",
	})
}

// newJWT makes a JWT-shaped token (header.claims.signature, base64url)
// with the given claims and a random signature.
func newJWT(claims map[string]any) string {
	enc := base64.RawURLEncoding
	claims["jti"] = newID()
	c, _ := json.Marshal(claims)
	sig := make([]byte, 32)
	rand.Read(sig)
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// ---- the OGC services ----

// upperKeys returns the query with its keys upper-cased, as OGC KVP
// parameter names are case-insensitive.
func upperKeys(r *http.Request) map[string]string {
	kvp := map[string]string{}
	for k, v := range r.URL.Query() {
		kvp[strings.ToUpper(k)] = v[0]
	}
	return kvp
}

// Credential returns the credential a request carries, the first of
// "Authorization: Bearer", the maxar-api-key header and the maxar_api_key
// parameter, and whether it is a bearer token.
func Credential(r *http.Request) (value string, bearer bool) {
	if scheme, rest, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest), true
	}
	if k := r.Header.Get(KeyHeader); k != "" {
		return k, false
	}
	return upperKeys(r)[strings.ToUpper(KeyParam)], false
}

// live reports whether the credential is a live access token or a live key.
func (f *Fake) live(value string, bearer bool) bool {
	if value == "" {
		return false
	}
	now := f.o.Now()
	if bearer {
		f.mu.Lock()
		defer f.mu.Unlock()
		exp, ok := f.access[value]
		return ok && now.Before(exp)
	}
	exp, ok := f.keys.Get(value)
	return ok && now.Before(exp)
}

func (f *Fake) serveOGC(w http.ResponseWriter, r *http.Request) {
	f.Requests.Add(1)
	f.mu.Lock()
	f.last = Seen{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
	f.mu.Unlock()
	sw := f.sw.Get()
	if !fakeprovider.Wait(r, sw.Delay) {
		return
	}
	if sw.Status == http.StatusTooManyRequests {
		f.RateLimited.Add(1)
		wait := sw.RetryAfter
		if wait == "" {
			wait = RateLimitRetryAfter
		}
		w.Header().Set("Retry-After", wait)
		fakeprovider.JSON(w, http.StatusTooManyRequests, map[string]any{"error": map[string]any{
			"error_code": "too_many_requests", "error_type": "rate_limit_error",
			"error_messages": []string{"Rate limit exceeded. Try after " + wait + " seconds"},
		}})
		return
	}
	if sw.Status != 0 {
		fakeprovider.SetRetryAfter(w, sw.RetryAfter)
		http.Error(w, "fake maxar: forced status", sw.Status)
		return
	}
	value, bearer := Credential(r)
	if !f.live(value, bearer) {
		f.Refused.Add(1)
		status := http.StatusUnauthorized
		if sw.RefusalStatus != 0 {
			status = sw.RefusalStatus
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="mds"`)
		fakeprovider.JSON(w, status, map[string]string{"error": "Unauthorized", "error_description": "missing, invalid or expired credentials"})
		return
	}
	cred := ""
	if sw.CredentialInCapabilities && !bearer {
		cred = KeyParam + "=" + url.QueryEscape(value)
	}
	kvp := upperKeys(r)
	if r.URL.Path == WMTSPath {
		f.serveWMTS(w, r, kvp, cred)
	} else {
		f.serveWMS(w, r, kvp, cred)
	}
}

// href returns the base URL of a service path with cred, for capabilities.
func (f *Fake) href(r *http.Request, path, cred string) (href, full string) {
	full = fakeprovider.ResolveBase(f.o.Base, CanonicalBase, r) + path
	href = full + "?"
	if cred != "" {
		href += cred + "&"
	}
	return href, full
}

func (f *Fake) serveWMTS(w http.ResponseWriter, r *http.Request, kvp map[string]string, cred string) {
	switch strings.ToLower(kvp["REQUEST"]) {
	case "getcapabilities":
		f.CapabilitiesRequests.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.Write(f.WMTSCapabilities(r, cred))
	case "gettile":
		f.serveTile(w, kvp)
	default:
		f.owsException(w, "OperationNotSupported", "request", "Unsupported request: "+kvp["REQUEST"])
	}
}

// WMTSCapabilities renders the WMTS capabilities for a request; cred, if
// not empty, is a "name=value" query pair appended to every URL.
func (f *Fake) WMTSCapabilities(r *http.Request, cred string) []byte {
	href, path := f.href(r, WMTSPath, cred)
	data := map[string]any{"Href": href, "Path": path, "Cred": "", "Layer": Layer, "Style": Style,
		"MatrixSet": MatrixSet, "Matrices": fakeprovider.Matrices(MaxZoom)}
	if cred != "" {
		data["Cred"] = "&" + cred
	}
	return fakeprovider.Render(wmtsCaps, data)
}

func (f *Fake) serveTile(w http.ResponseWriter, kvp map[string]string) {
	z, inSet := strings.CutPrefix(kvp["TILEMATRIX"], MatrixSet+":")
	switch {
	case kvp["LAYER"] != Layer:
		f.owsException(w, "InvalidParameterValue", "layer", "Unknown layer: "+kvp["LAYER"])
	case kvp["STYLE"] != "" && kvp["STYLE"] != Style:
		f.owsException(w, "InvalidParameterValue", "style", "Unknown style: "+kvp["STYLE"])
	case kvp["TILEMATRIXSET"] != MatrixSet:
		f.owsException(w, "InvalidParameterValue", "tilematrixset", "Unknown tile matrix set: "+kvp["TILEMATRIXSET"])
	case !inSet:
		f.owsException(w, "InvalidParameterValue", "tilematrix", "Unknown tile matrix: "+kvp["TILEMATRIX"])
	case !fakeprovider.InGrid(z, kvp["TILEROW"], kvp["TILECOL"], MaxZoom):
		f.owsException(w, "TileOutOfRange", "tilerow", "Tile outside the grid")
	case kvp["FORMAT"] != "image/png" && kvp["FORMAT"] != "image/jpeg":
		f.owsException(w, "InvalidParameterValue", "format", "Unsupported format: "+kvp["FORMAT"])
	default:
		f.TileRequests.Add(1)
		body := f.png
		if kvp["FORMAT"] == "image/jpeg" {
			body = f.jpeg
		}
		if !f.knownProperties(kvp["CQL_FILTER"]) {
			f.BlankImages.Add(1)
			body = f.BlankTile(kvp["FORMAT"])
		}
		w.Header().Set("Content-Type", kvp["FORMAT"])
		w.Write(body)
	}
}

// property finds the names a CQL filter compares: an identifier before a
// comparison operator or a keyword predicate.
var property = regexp.MustCompile(`(?i)\b([a-z_][a-z0-9_.]*)\s*(?:<=|>=|<>|=|<|>|\s(?:not\s+)?(?:like|ilike|in|between|is)\b)`)

// knownProperties reports whether every property a CQL filter names is
// one the fake knows (an empty filter names none).
func (f *Fake) knownProperties(cql string) bool {
	for _, m := range property.FindAllStringSubmatch(cql, -1) {
		if !f.props[strings.ToLower(m[1])] {
			return false
		}
	}
	return true
}

func (f *Fake) owsException(w http.ResponseWriter, code, locator, msg string) {
	f.Exceptions.Add(1)
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="1.1.0"><ows:Exception exceptionCode="%s" locator="%s"><ows:ExceptionText>%s</ows:ExceptionText></ows:Exception></ows:ExceptionReport>
`, fakeprovider.XML(code), fakeprovider.XML(locator), fakeprovider.XML(msg))
}

// serviceException answers 200 with a WMS ServiceExceptionReport of the
// version asked for (1.3.0 unless 1.1.1).
func (f *Fake) serviceException(w http.ResponseWriter, v111 bool, code, msg string) {
	f.Exceptions.Add(1)
	attr := ""
	if code != "" {
		attr = ` code="` + fakeprovider.XML(code) + `"`
	}
	if v111 {
		w.Header().Set("Content-Type", "application/vnd.ogc.se_xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport version="1.1.1"><ServiceException%s>%s</ServiceException></ServiceExceptionReport>
`, attr, fakeprovider.XML(msg))
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<ServiceExceptionReport xmlns="http://www.opengis.net/ogc" version="1.3.0"><ServiceException%s>%s</ServiceException></ServiceExceptionReport>
`, attr, fakeprovider.XML(msg))
}

func (f *Fake) serveWMS(w http.ResponseWriter, r *http.Request, kvp map[string]string, cred string) {
	v111 := kvp["VERSION"] == "1.1.1" || kvp["WMTVER"] == "1.1.1"
	switch strings.ToLower(kvp["REQUEST"]) {
	case "getcapabilities":
		f.CapabilitiesRequests.Add(1)
		if v111 {
			w.Header().Set("Content-Type", "application/vnd.ogc.wms_xml")
		} else {
			w.Header().Set("Content-Type", "text/xml")
		}
		w.Write(f.WMSCapabilities(r, v111, cred))
	case "getmap":
		f.serveMap(w, kvp, v111)
	default:
		f.serviceException(w, v111, "OperationNotSupported", "Unsupported request: "+kvp["REQUEST"])
	}
}

// WMSCapabilities renders the WMS capabilities, 1.1.1 or 1.3.0, for a
// request; cred as for WMTSCapabilities.
func (f *Fake) WMSCapabilities(r *http.Request, v111 bool, cred string) []byte {
	href, _ := f.href(r, WMSPath, cred)
	t := wms130Caps
	if v111 {
		t = wms111Caps
	}
	return fakeprovider.Render(t, map[string]any{"Href": href, "Layer": Layer})
}

func (f *Fake) serveMap(w http.ResponseWriter, kvp map[string]string, v111 bool) {
	crsName, crs := "CRS", kvp["CRS"]
	if v111 {
		crsName, crs = "SRS", kvp["SRS"]
	}
	if kvp["LAYERS"] != Layer {
		f.serviceException(w, v111, "LayerNotDefined", "Unknown layer: "+kvp["LAYERS"])
		return
	}
	if crs != "EPSG:3857" && crs != "EPSG:900913" && crs != "EPSG:4326" {
		f.serviceException(w, v111, "InvalidSRS", "Unsupported "+crsName+": "+crs)
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
		f.serviceException(w, v111, "", "Invalid BBOX: "+kvp["BBOX"])
		return
	}
	wd, err1 := strconv.Atoi(kvp["WIDTH"])
	ht, err2 := strconv.Atoi(kvp["HEIGHT"])
	if err1 != nil || err2 != nil || wd < 1 || ht < 1 || wd > 4096 || ht > 4096 {
		f.serviceException(w, v111, "", "Invalid WIDTH or HEIGHT")
		return
	}
	body, ok := fakeprovider.Image(kvp["FORMAT"], wd, ht)
	if !ok {
		f.serviceException(w, v111, "InvalidFormat", "Unsupported format: "+kvp["FORMAT"])
		return
	}
	f.MapRequests.Add(1)
	if !f.knownProperties(kvp["CQL_FILTER"]) {
		f.BlankImages.Add(1)
		body = blank(kvp["FORMAT"], wd, ht)
	}
	w.Header().Set("Content-Type", kvp["FORMAT"])
	w.Write(body)
}

// blank renders a w×h image with nothing on it: transparent PNG, white
// JPEG.
func blank(format string, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	var b bytes.Buffer
	switch format {
	case "image/png":
		png.Encode(&b, img)
	case "image/jpeg":
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				img.SetRGBA(x, y, color.RGBA{255, 255, 255, 255})
			}
		}
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 60})
	}
	return b.Bytes()
}
