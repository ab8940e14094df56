package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
	"github.com/hexprox/hexprox/internal/keys"
)

// An operator's OAuth2 client, with characters Basic authentication must
// form-encode (RFC 6749 §2.3.1).
const (
	countyClientID     = "county-gis:proxy"
	countyClientSecret = "cc-S3cret/+=&%"
)

// tokenServer is a standard OAuth2 token endpoint for the
// client-credentials grant (RFC 6749 §4.4), as an operator's profile
// names one: a POSTed form, the client authenticated by HTTP Basic with
// its id and secret form-encoded (§2.3.1), errors as JSON (§5.2). The
// tokens it issues are the fake Maxar's access tokens, fetched by a login
// of its own, so that the fake's WMTS takes them as Bearer.
type tokenServer struct {
	id, secret string
	maxarURL   string // the fake Maxar, whose tokens it hands out

	Requests atomic.Int64 // every request
	Issued   atomic.Int64 // tokens issued

	mu   sync.Mutex
	last string // the last token issued
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	fail := func(status int, code string) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || ct != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request")
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	user, pass, ok := r.BasicAuth()
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	if !ok || err1 != nil || err2 != nil || id != s.id || secret != s.secret || r.PostForm.Has("client_secret") {
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	// A token the imagery side takes: a login to the fake Maxar.
	resp, err := http.PostForm(s.maxarURL+maxar.TokenPath, url.Values{"grant_type": {"password"}, "client_id": {maxar.ClientID},
		"username": {maxarUser}, "password": {maxarPassword}})
	if err != nil {
		fail(http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		fail(http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	s.Issued.Add(1)
	s.mu.Lock()
	s.last = tok.AccessToken
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok.AccessToken, "token_type": "Bearer", "expires_in": 3600})
}

func (s *tokenServer) lastToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// providersFile writes doc, an operator's profiles (PROVIDERS_FILE), to
// a file of the test's and returns its path.
func providersFile(t *testing.T, doc string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// operatorWorld is a proxy whose PROVIDERS_FILE names two profiles of
// its operator's: "county", a static key placed as api_key on a fake
// Planet's two hosts under another name, and "eagle", an OAuth2 client
// whose tokens come from tokens and go to a fake Maxar's WMTS as Bearer.
type operatorWorld struct {
	*harness
	planet planetHosts
	maxar  *maxar.Fake
	tokens *tokenServer
}

func newOperatorWorld(t *testing.T) operatorWorld {
	t.Helper()
	pl := servePlanet(t, nil)

	mx := maxar.New(maxar.Options{Base: "request"})
	mx.AddUser(maxarUser, maxarPassword)
	maxarURL := faketest.Serve(t, mx)
	ts := &tokenServer{id: countyClientID, secret: countyClientSecret, maxarURL: maxarURL}
	tokenURL := faketest.Serve(t, ts)

	doc := fmt.Sprintf(`{"providers": [
  {"name": "county", "title": "County Imagery", "credential": "static",
   "hosts": {"api": {"url": %q, "paths": ["/basemaps/v1/mosaics/wmts"]}, "tiles": {"url": %q, "paths": ["/basemaps/v1/planet-tiles"]}},
   "wmts": "api:/basemaps/v1/mosaics/wmts",
   "place": [{"query": "api_key"}], "not_licensed": 404},
  {"name": "eagle", "title": "Eagle Aerial", "credential": "oauth2",
   "token_url": %q,
   "hosts": {"api": {"url": %q, "paths": [%q]}},
   "wmts": "api:%s?service=WMTS&request=GetCapabilities"}
]}`, pl.api, pl.tiles, tokenURL+"/oauth2/token", maxarURL, maxar.WMTSPath, maxar.WMTSPath)
	h := newKeyHarness(t, map[string]string{"PROVIDERS_FILE": providersFile(t, doc)}, time.Minute)
	for _, s := range []string{planetKey, countyClientSecret, maxarPassword} {
		h.noteSecret(s)
	}
	return operatorWorld{harness: h, planet: pl, maxar: mx, tokens: ts}
}

// An operator's static profile, a Planet-like service under the name
// "county": its capabilities come back with every URL the key's own and
// no key; its tiles stream through them; a client's api_key is dropped.
func TestOperatorStaticProfileServesThroughTheProxy(t *testing.T) {
	w := newOperatorWorld(t)
	key := w.addKey(keys.Record{Org: "Parks", Contact: "gis@parks.example", Provider: "county",
		Sets: []credential.Credential{{Provider: "county", Secret: planetKey}}})

	resp, body := w.get(w.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil)
	if resp.StatusCode != http.StatusOK || w.planet.fake.CapabilitiesRequests.Load() != 1 {
		t.Fatalf("capabilities: %d\n%s", resp.StatusCode, body)
	}
	w.assertNoSecrets(body)
	var tile string
	for _, u := range faketest.URLs(t, body) {
		if !strings.HasPrefix(u, w.keyURL(key)+"/~api/") && !strings.HasPrefix(u, w.keyURL(key)+"/~tiles/") {
			t.Fatalf("a URL is not the key's own: %s", u)
		}
		if tile == "" && strings.Contains(u, "{TileMatrix}") {
			tile = strings.NewReplacer("{TileMatrix}", "3", "{TileCol}", "2", "{TileRow}", "1").Replace(u)
		}
	}
	if !strings.HasPrefix(tile, w.keyURL(key)+"/~tiles"+planet.TilesPath+"/") {
		t.Fatalf("no tile template on the tiles host:\n%s", body)
	}
	for _, q := range []string{"", "?api_key=attacker", "?API_KEY=attacker"} {
		resp, img := w.get(tile+q, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !bytes.Equal(img, w.planet.fake.PNG()) {
			t.Fatalf("tile %s%s: %d %s", tile, q, resp.StatusCode, img)
		}
		if got := <-w.planet.seen; strings.Contains(got, "attacker") || !strings.Contains(got, "api_key="+planetKey) {
			t.Fatalf("%q reached the upstream as %q", q, got)
		}
	}
	// Its not_licensed status: a mosaic the key may not see is a 404
	// naming the operator's title.
	resp, body = w.get(w.keyURL(key)+"/~tiles"+planet.TilesPath+"/no_such_mosaic/gmap/3/2/1.png", nil)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(body, []byte("County Imagery")) {
		t.Fatalf("a mosaic outside the licence: %d %s", resp.StatusCode, body)
	}
	w.assertNoSecrets(body)
}

// An operator's OAuth2 profile: the proxy fetches one token from the
// operator's token endpoint by the client-credentials grant (HTTP Basic,
// RFC 6749's default) for a document and several tiles, and sends it as
// Bearer; neither the client secret nor the token reaches the key holder.
func TestOperatorOAuth2ProfileServesThroughTheProxy(t *testing.T) {
	w := newOperatorWorld(t)
	key := w.addKey(keys.Record{Org: "Parks", Contact: "gis@parks.example", Provider: "eagle",
		Sets: []credential.Credential{{Provider: "eagle", ID: countyClientID, Secret: countyClientSecret, Client: true}}})

	resp, body := w.get(w.keyURL(key)+"?SERVICE=WMTS&REQUEST=GetCapabilities", nil)
	w.noteSecret(w.tokens.lastToken())
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(maxar.Layer)) {
		t.Fatalf("capabilities: %d\n%s", resp.StatusCode, body)
	}
	w.assertNoSecrets(body)
	var tile string
	for _, u := range faketest.URLs(t, body) {
		if !strings.HasPrefix(u, w.keyURL(key)+"/~api"+maxar.WMTSPath) {
			t.Fatalf("a URL is not the key's own: %s", u)
		}
		if tile == "" && strings.Contains(u, "{TileMatrix}") {
			tile = strings.NewReplacer("{TileMatrix}", "EPSG:3857:5", "{TileRow}", "10", "{TileCol}", "12").Replace(u)
		}
	}
	if tile == "" {
		t.Fatalf("no tile template:\n%s", body)
	}
	for range 3 {
		if resp, img := w.get(tile, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(img, w.maxar.PNG()) {
			t.Fatalf("tile %s: %d %s", tile, resp.StatusCode, img)
		}
	}
	if n := w.tokens.Requests.Load(); n != 1 {
		t.Fatalf("a document and three tiles cost %d token requests, want 1", n)
	}
	if got := w.maxar.Last().Header.Get("Authorization"); got != "Bearer "+w.tokens.lastToken() {
		t.Fatalf("the upstream saw Authorization %q", got)
	}
	if w.maxar.Refused.Load() != 0 {
		t.Fatalf("the upstream refused %d requests", w.maxar.Refused.Load())
	}

	// A client secret the token endpoint refuses: 403 naming the profile
	// by its title, as a key holder knows it.
	bad := w.addKey(keys.Record{Org: "Other", Contact: "x@example.org", Provider: "eagle",
		Sets: []credential.Credential{{Provider: "eagle", ID: countyClientID, Secret: "wrong", Client: true}}})
	asked := w.maxar.Requests.Load()
	resp, body = w.get(w.keyURL(bad)+"/1.0.0/WMTSCapabilities.xml", nil)
	rep := w.assertException(resp, body, http.StatusForbidden, "")
	if !strings.Contains(rep.Exception.Text, "every Eagle Aerial credential") || w.maxar.Requests.Load() != asked {
		t.Fatalf("a refused client: %s (the upstream asked %d times)", body, w.maxar.Requests.Load()-asked)
	}
}

// A key whose record this proxy cannot serve as written — its provider
// is not in the catalog, or a set is of a form its profile does not take
// (a username on a static profile, a key on an OAuth2 one) — is a 500
// telling its holder to contact the administrator, and sends nothing
// upstream: its secrets are never sent as something they are not.
func TestOperatorKeyTheCatalogCannotServe(t *testing.T) {
	w := newOperatorWorld(t)
	for _, c := range []struct {
		name string
		rec  keys.Record
	}{
		{"unknown provider", keys.Record{Provider: "nosuch", Sets: []credential.Credential{{Provider: "nosuch", Secret: "NS-" + randomHex(t)}}}},
		{"a login on a static profile", keys.Record{Provider: "county", Sets: []credential.Credential{{Provider: "county", ID: "someone", Secret: "PW-" + randomHex(t)}}}},
		{"a client on a static profile", keys.Record{Provider: "county", Sets: []credential.Credential{{Provider: "county", ID: "someone", Secret: "CS-" + randomHex(t), Client: true}}}},
		{"a key on an oauth2 profile", keys.Record{Provider: "eagle", Sets: []credential.Credential{{Provider: "eagle", Secret: "EK-" + randomHex(t)}}}},
		{"a login on an oauth2 profile", keys.Record{Provider: "eagle", Sets: []credential.Credential{{Provider: "eagle", ID: "someone", Secret: "EP-" + randomHex(t)}}}},
	} {
		w.noteSecret(c.rec.Sets[0].Secret)
		c.rec.Org, c.rec.Contact = "Parks", "gis@parks.example"
		key := w.addKey(c.rec)
		before := w.planet.fake.Requests.Load() + w.maxar.Requests.Load() + w.maxar.TokenRequests.Load() + w.tokens.Requests.Load()
		for _, u := range []string{w.keyURL(key) + "/1.0.0/WMTSCapabilities.xml", w.keyURL(key) + "/~api" + maxar.WMTSPath + "?" + maxarTile,
			w.proxy.URL + "/v2/wms/" + key + "?SERVICE=WMS&REQUEST=GetCapabilities"} {
			resp, body := w.get(u, nil)
			if resp.StatusCode != http.StatusInternalServerError || !bytes.Contains(body, []byte("administrator")) {
				t.Fatalf("%s: %s: %d %s", c.name, u, resp.StatusCode, body)
			}
			w.assertNoSecrets(body)
		}
		if n := w.planet.fake.Requests.Load() + w.maxar.Requests.Load() + w.maxar.TokenRequests.Load() + w.tokens.Requests.Load() - before; n != 0 {
			t.Fatalf("%s: %d requests went upstream", c.name, n)
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
