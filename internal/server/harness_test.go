package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/azuritetest"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/filestore"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/server"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/testlog"
)

// The credentials the fake accepts. The secrets have characters that need
// care in URLs once base64-encoded.
const (
	clientID     = "hexprox-test-client"
	clientSecret = "S3cr3t/+=?&value"
	betaID       = "beta-client"
	betaSecret   = "B3ta/+=?&secret"
	secondID     = "second-client"
	secondSecret = "second-secret"
	allowed      = "https://myorg.maps.arcgis.com"
)

// harness is the world a test runs in, and the proxies it starts there.
// The world: a fake Hexagon that accepts the test credentials, one keys
// file (KEYS_FILE) for API keys, one log buffer that every line of every
// proxy goes to, and, when asked, a real Azurite and a settable clock.
// Each proxy is assembled by app.New from its settings exactly as main
// assembles it; a harness made by newHarness has one, in proxy and app.
//
// Every string that must never reach a log line or an error body (the
// secrets, their encodings, every token the fake handed out, API keys) is
// checked for when the test ends.
type harness struct {
	t        *testing.T
	fake     *fakehexagon.Fake
	upstream *httptest.Server
	store    *filestore.Store     // the keys file every proxy reads
	keysFile string               // its path
	az       *azuritetest.Azurite // nil: no storage account
	clk      *testclock.Clock     // nil: real time
	logs     *testlog.Buffer
	client   *http.Client // does not follow redirects
	usageDir string
	// usageConn is the storage usage instances flush to; "": Azurite.
	usageConn string

	// The first proxy.
	proxy *httptest.Server
	app   *app.App
	cache *keys.Cache // its key cache

	seenMu  sync.Mutex
	seen    map[string]bool // every token value handed out, for leak checks
	extra   []string        // more secrets
	apiKeys []string        // in logs and error bodies never; in the key's own documents, yes
}

// worldOptions say what a harness's world has beyond the fake Hexagon,
// the keys file and the logs.
type worldOptions struct {
	azurite  bool             // a real Azurite, for the token and usage tables
	clock    *testclock.Clock // the clock of the fake and of every proxy
	lifetime time.Duration    // the fake's token lifetime; 0: 12 h, as documented
}

// newWorld starts a world with no proxy yet: start adds them.
func newWorld(t *testing.T, o worldOptions) *harness {
	t.Helper()
	h := &harness{t: t, logs: &testlog.Buffer{}, seen: map[string]bool{}, clk: o.clock, usageDir: t.TempDir()}
	fo := fakehexagon.Options{Lifetime: o.lifetime}
	if o.clock != nil {
		fo.Now = o.clock.Now
	}
	h.fake = fakehexagon.New(fo)
	for _, c := range [][2]string{{clientID, clientSecret}, {betaID, betaSecret}, {secondID, secondSecret}} {
		h.fake.AddClient(c[0], c[1])
	}
	h.upstream = httptest.NewServer(h.fake)
	t.Cleanup(h.upstream.Close)
	if o.azurite {
		h.az = azuritetest.Start(t)
	}
	h.store, h.keysFile = keysFileAt(t)
	h.client = &http.Client{
		Timeout: 10 * time.Second,
		// Bodies are counted as the proxy sent them.
		Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(h.client.CloseIdleConnections)
	t.Cleanup(h.checkLogs) // after every proxy has closed: cleanups run last first
	return h
}

// newHarness starts a world and one proxy configured by env, over the
// defaults start gives.
func newHarness(t *testing.T, env map[string]string) *harness {
	t.Helper()
	return newHarnessWith(t, env, nil)
}

// newHarnessWith is newHarness with a last say over the app's options:
// the parts a test stands in for (an upstream transport, a key store
// wrapper, the usage counter's tuning).
func newHarnessWith(t *testing.T, env map[string]string, tweak func(*app.Options)) *harness {
	t.Helper()
	h := newWorld(t, worldOptions{})
	first := h.start(env, tweak)
	h.proxy, h.app, h.cache = first.Server, first.app, first.app.Keys
	return h
}

// instance is one proxy: as a separate process would have, its own token
// cache, key cache and usage counter.
type instance struct {
	*httptest.Server
	app  *app.App
	name string     // usage instances: the name its rows are counted under
	sink *timedSink // usage instances on Azurite: its usage table, timed
}

// server is the instance's HTTP server, for the test hooks.
func (in *instance) server() *server.Server { return in.app.Server }

// start starts one more proxy in the world. Its settings are the
// harness's defaults (HEXAGON_URL the fake, KEYS_FILE the world's, logs
// at debug, USAGE_DIR a temporary directory, GUESS_LIMIT 0 and, with
// Azurite, TOKEN_TABLE_CONNECTION) overridden by env; tweak, if not nil,
// has the last say over the app's options. The proxy is closed, its
// counts flushed, when the test ends.
func (h *harness) start(env map[string]string, tweak func(*app.Options)) *instance {
	h.t.Helper()
	vars := map[string]string{
		"HEXAGON_URL": h.upstream.URL,
		"KEYS_FILE":   h.keysFile,
		"LOG_LEVEL":   "debug",
		"USAGE_DIR":   h.usageDir,
		"GUESS_LIMIT": "0",
	}
	if h.az != nil {
		vars["TOKEN_TABLE_CONNECTION"] = h.az.ConnectionString()
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		h.t.Fatal(err)
	}
	o := app.Options{LogOut: h.logs, UnbufferedLogs: true, Version: "test"}
	// Keys are added as tests go: the store's listing, which would hold a
	// new key back until it is next listed, is off unless a test turns it
	// on (TestRevocationReachesEveryInstanceWithinSeconds).
	o.KeyCache.ListEvery = -1
	if cfg.Keys.Store == config.KeysFile && cfg.Keys.File == h.keysFile {
		o.KeyStore = h.store // the world's, which notices changes at once
	}
	if h.clk != nil {
		o.Now = h.clk.Now
	}
	if tweak != nil {
		tweak(&o)
	}
	a, err := app.New(cfg, o)
	if err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(a.Server)
	h.t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
	})
	return &instance{Server: srv, app: a}
}

// newKeysFile is an empty KEYS_FILE store, reread at once when it changes.
func newKeysFile(t *testing.T) *filestore.Store {
	t.Helper()
	store, _ := keysFileAt(t)
	return store
}

// keysFileAt is newKeysFile, and its path.
func keysFileAt(t *testing.T) (*filestore.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := filestore.Init(path); err != nil {
		t.Fatal(err)
	}
	store, err := filestore.Open(path, filestore.WithCheckEvery(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return store, path
}

// addKey stores a record under a new key and returns the key; its secret
// joins the strings the harness's leak checks look for.
func (h *harness) addKey(rec keys.Record) string {
	h.t.Helper()
	key, err := keys.New()
	if err != nil {
		h.t.Fatal(err)
	}
	if rec.Sets == nil {
		rec.Sets = []credential.Credential{{ID: clientID, Secret: clientSecret}}
	}
	rec.Enabled = true
	if err := h.store.Create(context.Background(), key, rec); err != nil {
		h.t.Fatal(err)
	}
	h.noteKey(key)
	return key
}

// keyURL is the first proxy's /v2 WMTS address of key.
func (h *harness) keyURL(key string) string { return h.proxy.URL + "/v2/wmts/" + key }

// noteSecret adds a string that must never appear in logs or bodies.
func (h *harness) noteSecret(s string) {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	h.extra = append(h.extra, s)
}

// noteKey adds an API key: never in logs or error bodies, though its own
// capabilities and about page carry its URLs.
func (h *harness) noteKey(k string) {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	h.apiKeys = append(h.apiKeys, k)
}

func (h *harness) keysNoted() []string {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	return append([]string(nil), h.apiKeys...)
}

// credURL is the proxy's WMTS URL for the test credential, with the
// standard alphabet a browser's btoa gives, percent-encoded where needed.
func (h *harness) credURL() string {
	return h.proxy.URL + "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
}

func (h *harness) do(method, url string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	h.noteToken()
	return resp, body
}

func (h *harness) get(url string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(http.MethodGet, url, hdr)
}

// noteToken remembers the fake's current tokens so that leak checks can
// look for every token the test saw.
func (h *harness) noteToken() {
	for _, id := range []string{clientID, betaID, secondID} {
		if tok, _, ok := h.fake.CurrentToken(id); ok {
			h.seenMu.Lock()
			h.seen[tok] = true
			h.seenMu.Unlock()
		}
	}
}

// secrets are strings that must never appear in logs or bodies (besides
// the redirect Location, which must carry the token).
func (h *harness) secrets() []string {
	s := []string{clientSecret, credential.Encode(clientSecret), clientID, credential.Encode(clientID)}
	for _, v := range []string{betaID, betaSecret, secondSecret} {
		s = append(s, v, url.PathEscape(base64.StdEncoding.EncodeToString([]byte(v))))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			s = append(s, enc.EncodeToString([]byte(v)))
		}
	}
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	for tok := range h.seen {
		s = append(s, tok)
	}
	return append(s, h.extra...)
}

func (h *harness) checkLogs() {
	h.noteToken()
	logs := h.logs.String()
	for i, s := range append(h.secrets(), h.keysNoted()...) {
		if strings.Contains(logs, s) {
			// The secret is not printed: a CI log is read by many.
			h.t.Errorf("logs contain secret #%d of the harness's secrets and keys (shown as [SECRET]):\n%s", i, strings.ReplaceAll(logs, s, "[SECRET]"))
		}
	}
}

// assertNoSecrets fails if body carries a secret or token.
func (h *harness) assertNoSecrets(body []byte) {
	h.t.Helper()
	h.noteToken()
	for _, s := range h.secrets() {
		if s != credential.Encode(clientSecret) && s != credential.Encode(clientID) && bytes.Contains(body, []byte(s)) {
			h.t.Fatalf("body contains secret %q:\n%s", s, body)
		}
	}
	// A provider's secret in any spelling a client could read back
	// (escaped in a URL or XML, in any case): provider.Reveals.
	h.seenMu.Lock()
	extra := slices.Clone(h.extra)
	h.seenMu.Unlock()
	for _, s := range extra {
		if provider.Reveals(body, s) {
			h.t.Fatalf("body shows the secret %q in some spelling:\n%s", s, body)
		}
	}
}

type exceptionReport struct {
	XMLName   xml.Name `xml:"http://www.opengis.net/ows/1.1 ExceptionReport"`
	Exception struct {
		Code    string `xml:"exceptionCode,attr"`
		Locator string `xml:"locator,attr"`
		Text    string `xml:"ExceptionText"`
	} `xml:"Exception"`
}

// assertException checks an OGC ExceptionReport answer.
func (h *harness) assertException(resp *http.Response, body []byte, status int, code string) exceptionReport {
	h.t.Helper()
	var rep exceptionReport
	if resp.StatusCode != status {
		h.t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		h.t.Fatalf("content type %q for an exception", ct)
	}
	if err := xml.Unmarshal(body, &rep); err != nil {
		h.t.Fatalf("not an ExceptionReport: %v\n%s", err, body)
	}
	if code != "" && rep.Exception.Code != code {
		h.t.Fatalf("exceptionCode %q, want %q (%s)", rep.Exception.Code, code, rep.Exception.Text)
	}
	if rep.Exception.Text == "" {
		h.t.Fatal("exception without a message")
	}
	h.assertNoSecrets(body)
	for _, k := range h.keysNoted() {
		if bytes.Contains(body, []byte(k)) {
			h.t.Fatalf("an error body carries the API key:\n%s", body)
		}
	}
	return rep
}

const tilePath = "/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg"

const kvpTile = "?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=12&FORMAT=image%2Fjpeg"
