// Package vexcel is an in-process stand-in for Vexcel's v2 API
// (api.vexcelgroup.com): the login that turns a username and password
// into a 24-hour token, and the ortho WMTS. It is written from
// shared/providers.md §1 and §9 and the sources it cites:
//
//   - support1.vexceldata.com/knowledge/how-do-i-generate-an-api-token:
//     a POST to /v2/auth/login?username=…&password=… (the credentials in
//     the query string) answers {"user":{username, name, federated,
//     active, companyName, companySlug}, "token", "date-creation",
//     "date-expiration"}, the dates as "2025-03-27T17:20:24" with no time
//     zone; "Tokens are valid for 24-hours";
//   - the v2 OpenAPI document (api.vexcelgroup.com/v2/api-docs): the
//     "ortho/wmts" tag (so /v2/ortho/wmts), the session token from
//     auth/login and the long-lived api_key, sent as Bearer, as the token
//     parameter, or as X-API-KEY in a header or a parameter;
//   - the v1.4 WMTS page (vexcel.atlassian.net APIDOCS 2131887362): 256 px
//     JPEG or PNG tiles with "cache-control: max-age, set to 21515
//     seconds"; the v1.4 login "only accepts POST requests";
//   - [W] a userscript: KVP GetTile with layer=urban, Style=RGB and
//     TileMatrixSet=urban (the set named after the layer), and 403
//     "Unauthorized by Service" for a dead token, tokens that are JWTs
//     expiring about 24 h after login with no renew endpoint;
//   - [W] tile2net: layers urban and wide-area, the key as api_key=;
//     [W] a client note: the
//     older AuthToken parameter is refused with 403 even for a live token.
//
// Inferred, not documented: the dates are written in UTC (Options.Zone
// changes it); a bad login is 401 with a JSON error; only the KVP encoding
// is served, with KVP-style ResourceURL templates; levels 0–21 for both
// layers; every login issues a new token and earlier tokens live until
// their own expiry; whether capabilities carry the caller's credential is
// unknown, so Switches.CredentialInCapabilities chooses; the long-lived
// api_key is refused with the same 403.
//
// Not modelled: the v1 API (api.gic.org, /auth/Login, the AuthToken1
// cookie, 12-hour tokens), the cookie and Basic forms of v2, the
// non-OGC tile endpoints.
//
// A Fake is an http.Handler and safe for concurrent use.
package vexcel

import (
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider"
)

// Paths of the service.
const (
	LoginPath = "/v2/auth/login"
	WMTSPath  = "/v2/ortho/wmts"
)

// DateLayout is how the login writes date-creation and date-expiration:
// no time zone.
const DateLayout = "2006-01-02T15:04:05"

// Refusal is the body of the 403 for a missing, dead or unknown credential.
const Refusal = "Unauthorized by Service"

// Layers served; each has a tile matrix set of the same name.
var Layers = []string{"urban", "wide-area"}

// What every layer is served in.
const (
	Style   = "RGB"
	MaxZoom = 21
	// CacheControl is sent with every tile, as the v1.4 documentation
	// says.
	CacheControl = "max-age=21515"
)

// CanonicalBase is what the capabilities name by default.
const CanonicalBase = "https://api.vexcelgroup.com"

//go:embed capabilities.xml.tmpl
var capsTemplate string

var caps = fakeprovider.Template("caps", capsTemplate)

// Options configure New. Zero values take the defaults.
type Options struct {
	Lifetime time.Duration    // token lifetime; default 24h, as documented
	Now      func() time.Time // default time.Now
	// Zone the login writes its zone-less dates in; default UTC.
	Zone *time.Location
	// Base is the scheme and host written into capabilities: "" for
	// CanonicalBase, "request" for the host the request reached.
	Base string
}

// Switches change how the fake behaves. The zero value is the documented,
// healthy service.
type Switches struct {
	Status     int           // non-zero: the WMTS answers this status
	RetryAfter string        // sent with Status
	Delay      time.Duration // the WMTS waits this long first

	LoginStatus int // non-zero: the login answers this status

	// CredentialInCapabilities appends the caller's credential, as token=
	// or api_key= (whichever it used), to every URL in the capabilities.
	CredentialInCapabilities bool
}

// User is a login account.
type User struct {
	Username, Password string
	Name               string // default: Username
	Company            string // default "Fake Company"
	Federated          bool
}

// Fake is the fake service. Create it with New.
type Fake struct {
	o         Options
	jpeg, png []byte
	sw        fakeprovider.Switchboard[Switches]
	apiKeys   fakeprovider.Keys[bool]

	mu         sync.Mutex // guards users, tokens, lastIssued and issued
	users      map[string]User
	tokens     map[string]time.Time // token → expiry
	lastIssued string
	issued     []string // every token issued, in order

	Logins               atomic.Int64 // every request to the login endpoint
	TokensIssued         atomic.Int64
	Requests             atomic.Int64 // every request to the WMTS, whatever its answer
	CapabilitiesRequests atomic.Int64
	TileRequests         atomic.Int64 // tiles served
	Refused              atomic.Int64 // WMTS requests answered 403 for their credential
}

// New returns a healthy fake with no users.
func New(o Options) *Fake {
	if o.Lifetime <= 0 {
		o.Lifetime = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Zone == nil {
		o.Zone = time.UTC
	}
	return &Fake{o: o, jpeg: fakeprovider.JPEG(20 << 10), png: fakeprovider.PNG(256),
		users: map[string]User{}, tokens: map[string]time.Time{}}
}

// AddUser registers a login account.
func (f *Fake) AddUser(u User) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[u.Username] = u
}

// AddAPIKey registers a long-lived api_key.
func (f *Fake) AddAPIKey(key string) { f.apiKeys.Add(key, true) }

// Revoke kills a token before its expiry.
func (f *Fake) Revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

// LastToken returns the token the last successful login issued.
func (f *Fake) LastToken() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastIssued
}

// Issued returns every token a login has issued, revoked and expired
// ones too, in the order issued: what must never reach anyone else.
func (f *Fake) Issued() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.issued...)
}

// Set replaces the switches.
func (f *Fake) Set(s Switches) { f.sw.Set(s) }

// JPEG returns the bytes served for every JPEG tile.
func (f *Fake) JPEG() []byte { return f.jpeg }

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case LoginPath:
		f.serveLogin(w, r)
	case WMTSPath:
		f.serveWMTS(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (f *Fake) serveLogin(w http.ResponseWriter, r *http.Request) {
	f.Logins.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fakeprovider.JSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "the login only accepts POST"})
		return
	}
	sw := f.sw.Get()
	if sw.LoginStatus != 0 {
		fakeprovider.JSON(w, sw.LoginStatus, map[string]string{"error": "fake vexcel: forced status"})
		return
	}
	q := r.URL.Query()
	name, pass := q.Get("username"), q.Get("password")
	now := f.o.Now()
	f.mu.Lock()
	u, ok := f.users[name]
	if !ok || pass == "" || u.Password != pass {
		f.mu.Unlock()
		fakeprovider.JSON(w, http.StatusUnauthorized, map[string]string{"error": "Invalid username or password"})
		return
	}
	expiry := now.Add(f.o.Lifetime)
	token := newToken(name, now, expiry)
	f.tokens[token] = expiry
	f.lastIssued = token
	f.issued = append(f.issued, token)
	f.mu.Unlock()
	f.TokensIssued.Add(1)
	if u.Name == "" {
		u.Name = u.Username
	}
	if u.Company == "" {
		u.Company = "Fake Company"
	}
	fakeprovider.JSON(w, http.StatusOK, map[string]any{
		"user": map[string]any{
			"username": u.Username, "name": u.Name, "federated": u.Federated, "active": true,
			"companyName": u.Company, "companySlug": strings.ToLower(strings.ReplaceAll(u.Company, " ", "_")),
		},
		"token":           token,
		"date-creation":   now.In(f.o.Zone).Format(DateLayout),
		"date-expiration": expiry.In(f.o.Zone).Format(DateLayout),
	})
}

// newToken makes a JWT-shaped token (header.claims.signature, base64url)
// whose claims carry sub, iat and exp; the signature is random.
func newToken(user string, iat, exp time.Time) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": user, "iat": iat.Unix(), "exp": exp.Unix()})
	sig := make([]byte, 32)
	rand.Read(sig)
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims) + "." + enc.EncodeToString(sig)
}

// credential returns the credential the request carries and the query
// parameter that names it in capabilities: Bearer or token= (a session
// token), api_key=, the X-API-KEY header or X-API-KEY= (a long-lived key). The older AuthToken
// parameter is not read.
func credential(r *http.Request) (value, param string) {
	if scheme, rest, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(rest), "token"
	}
	q := r.URL.Query()
	if t := q.Get("token"); t != "" {
		return t, "token"
	}
	if k := q.Get("api_key"); k != "" {
		return k, "api_key"
	}
	if k := r.Header.Get("X-API-KEY"); k != "" {
		return k, "api_key"
	}
	if k := q.Get("X-API-KEY"); k != "" {
		return k, "api_key"
	}
	return "", ""
}

// live reports whether the credential is a live token or a known api_key.
func (f *Fake) live(value, param string) bool {
	if param == "api_key" {
		live, _ := f.apiKeys.Get(value)
		return live
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.tokens[value]
	return ok && f.o.Now().Before(exp)
}

func (f *Fake) serveWMTS(w http.ResponseWriter, r *http.Request) {
	f.Requests.Add(1)
	sw := f.sw.Get()
	if !fakeprovider.Wait(r, sw.Delay) {
		return
	}
	if sw.Status != 0 {
		fakeprovider.SetRetryAfter(w, sw.RetryAfter)
		http.Error(w, "fake vexcel: forced status", sw.Status)
		return
	}
	value, param := credential(r)
	if value == "" || !f.live(value, param) {
		f.Refused.Add(1)
		http.Error(w, Refusal, http.StatusForbidden)
		return
	}
	kvp := map[string]string{}
	for k, v := range r.URL.Query() {
		kvp[strings.ToUpper(k)] = v[0]
	}
	switch strings.ToLower(kvp["REQUEST"]) {
	case "getcapabilities":
		f.CapabilitiesRequests.Add(1)
		cred := ""
		if sw.CredentialInCapabilities {
			cred = param + "=" + value
		}
		w.Header().Set("Content-Type", "application/xml")
		w.Write(f.CapabilitiesDocument(r, cred))
	case "gettile":
		f.serveTile(w, kvp)
	default:
		http.Error(w, "fake vexcel: unknown request", http.StatusBadRequest)
	}
}

// CapabilitiesDocument renders the capabilities; cred, if not empty, is a
// "name=value" query pair appended to every URL.
func (f *Fake) CapabilitiesDocument(r *http.Request, cred string) []byte {
	base := fakeprovider.ResolveBase(f.o.Base, CanonicalBase, r)
	data := struct {
		Href, Path, Cred string
		Layers           []string
		Matrices         []fakeprovider.Matrix
	}{Href: base + WMTSPath + "?", Path: base + WMTSPath, Layers: Layers, Matrices: fakeprovider.Matrices(MaxZoom)}
	if cred != "" {
		data.Href += cred + "&"
		data.Cred = "&" + cred
	}
	return fakeprovider.Render(caps, data)
}

func (f *Fake) serveTile(w http.ResponseWriter, kvp map[string]string) {
	layer := kvp["LAYER"]
	known := false
	for _, l := range Layers {
		known = known || l == layer
	}
	if !known || kvp["STYLE"] != Style || kvp["TILEMATRIXSET"] != layer {
		http.Error(w, "fake vexcel: unknown layer, style or tile matrix set", http.StatusBadRequest)
		return
	}
	if !fakeprovider.InGrid(kvp["TILEMATRIX"], kvp["TILEROW"], kvp["TILECOL"], MaxZoom) {
		http.Error(w, "fake vexcel: tile outside the grid", http.StatusBadRequest)
		return
	}
	var body []byte
	switch kvp["FORMAT"] {
	case "image/jpeg":
		body = f.jpeg
	case "image/png":
		body = f.png
	default:
		http.Error(w, "fake vexcel: unknown format", http.StatusBadRequest)
		return
	}
	f.TileRequests.Add(1)
	w.Header().Set("Content-Type", kvp["FORMAT"])
	w.Header().Set("Cache-Control", CacheControl)
	w.Write(body)
}
