package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/requiretools"
	"github.com/hexprox/hexprox/internal/testclock"
)

// The credentials of the fake Maxar: two API keys and one login.
const (
	maxarKey      = "MXKEY-0123456789abcdef-secret"
	maxarKey2     = "MXKEY-fedcba9876543210-secret"
	maxarUser     = "analyst@county.example"
	maxarPassword = "Mx-pass/word+1&="
)

// maxarWorld is a proxy beside a fake Maxar (its API and account hosts on
// one server, as the fake serves both), the two on one settable clock so
// that keys and tokens can be made to die.
type maxarWorld struct {
	*harness
	fake *maxar.Fake
	url  string // the fake's
}

func newMaxarWorld(t *testing.T) maxarWorld {
	t.Helper()
	clk := testclock.New(time.Now())
	fake := maxar.New(maxar.Options{Base: "request", Now: clk.Now})
	fake.AddUser(maxarUser, maxarPassword)
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	h := newWorld(t, worldOptions{clock: clk})
	first := h.start(map[string]string{"PROVIDER_MAXAR_API_URL": up.URL, "PROVIDER_MAXAR_ACCOUNT_URL": up.URL}, nil)
	h.proxy, h.app, h.cache = first.Server, first.app, first.app.Keys
	for _, s := range []string{maxarKey, maxarKey2, maxarPassword} {
		h.noteSecret(s)
	}
	return maxarWorld{harness: h, fake: fake, url: up.URL}
}

// addMaxarKey adds a key of org holding one Maxar set.
func (w maxarWorld) addMaxarKey(org string, set credential.Credential) string {
	set.Provider = "maxar"
	return w.addKey(keys.Record{Org: org, Contact: "gis@example.org", Provider: "maxar", Sets: []credential.Credential{set}})
}

// noteTokens adds the tokens the fake issued last to the leak checks.
func (w maxarWorld) noteTokens() {
	at, rt := w.fake.LastTokens()
	for _, s := range []string{at, rt} {
		if s != "" {
			w.noteSecret(s)
		}
	}
}

// maxarTile is a KVP GetTile of the fake's layer, its query as a client
// fills in a template.
const maxarTile = "SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=Maxar:Imagery&STYLE=default&TILEMATRIXSET=EPSG:3857&TILEMATRIX=EPSG:3857:5&TILEROW=10&TILECOL=12&FORMAT=image/png"

// templateTile fills in the first tile template of a WMTS capabilities
// document, which must be the key's own.
func (w maxarWorld) templateTile(doc []byte, key string) string {
	w.t.Helper()
	for _, u := range faketest.URLs(w.t, doc) {
		if strings.Contains(u, "{TileMatrix}") {
			return strings.NewReplacer("{TileMatrix}", "EPSG:3857:5", "{TileRow}", "10", "{TileCol}", "12").Replace(u)
		}
	}
	w.t.Fatalf("no tile template:\n%s", doc)
	return ""
}

// assertKeysOwn fails unless every URL of a capabilities document is
// below base, and the document carries no Maxar credential.
func (w maxarWorld) assertKeysOwn(doc []byte, base string) {
	w.t.Helper()
	w.assertNoSecrets(doc)
	if bytes.Contains(bytes.ToLower(doc), []byte("maxar_api_key")) {
		w.t.Fatalf("the document names maxar_api_key:\n%s", doc)
	}
	for _, u := range faketest.URLs(w.t, doc) {
		if !strings.HasPrefix(u, base+"/~api/streaming/v1/ogc/") {
			w.t.Fatalf("a URL is not the key's own (%s):\n%s", base, u)
		}
	}
}

// A Maxar API key: its WMTS capabilities, by either of the key's
// addresses, name only the key's own URLs and never the Maxar key (also
// when Maxar writes it into every URL); KVP tiles through those URLs and
// WMS 1.3.0 and 1.1.1 maps stream Maxar's images; the key travels in the
// maxar-api-key header, and no credential of the client's own reaches
// Maxar.
func TestMaxarKeyServesThroughTheProxy(t *testing.T) {
	w := newMaxarWorld(t)
	w.fake.AddKey(maxarKey, 0)
	w.fake.AddKey(maxarKey2, 0)
	key := w.addMaxarKey("Forestry", credential.Credential{Secret: maxarKey})
	key2 := w.addMaxarKey("Parks", credential.Credential{Secret: maxarKey2})

	for _, c := range []struct {
		key     string
		inCaps  bool
		secret  string
		subtest string
	}{{key, false, maxarKey, "plain"}, {key2, true, maxarKey2, "credential in capabilities"}} {
		w.fake.Set(maxar.Switches{CredentialInCapabilities: c.inCaps})
		for _, u := range []string{w.keyURL(c.key) + "/1.0.0/WMTSCapabilities.xml", w.keyURL(c.key) + "?SERVICE=WMTS&REQUEST=GetCapabilities"} {
			resp, body := w.get(u, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(maxar.Layer)) {
				t.Fatalf("%s: %s: %d\n%s", c.subtest, u, resp.StatusCode, body)
			}
			w.assertKeysOwn(body, w.keyURL(c.key))
			if got := w.fake.Last().Header.Get(maxar.KeyHeader); got != c.secret {
				t.Fatalf("%s: Maxar saw key %q", c.subtest, got)
			}
			// A tile by the document's own template streams Maxar's image.
			tile := w.templateTile(body, c.key)
			resp, img := w.get(tile, nil)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !bytes.Equal(img, w.fake.PNG()) {
				t.Fatalf("%s: tile %s: %d %s", c.subtest, tile, resp.StatusCode, img)
			}
		}
	}
	if n := w.fake.TileRequests.Load(); n != 4 {
		t.Fatalf("Maxar served %d tiles, want 4", n)
	}

	// WMS, both versions: the capabilities' links are the key's WMS
	// route's own, and a map through them is Maxar's.
	wmsBase := w.proxy.URL + "/v2/wms/" + key
	for _, v := range []struct{ version, crs string }{{"1.3.0", "CRS"}, {"1.1.1", "SRS"}} {
		resp, body := w.get(wmsBase+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION="+v.version, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`version="`+v.version+`"`)) {
			t.Fatalf("WMS %s capabilities: %d\n%s", v.version, resp.StatusCode, body)
		}
		w.assertKeysOwn(body, wmsBase)
		gm := wmsBase + "/~api" + maxar.WMSPath + "?SERVICE=WMS&VERSION=" + v.version + "&REQUEST=GetMap&LAYERS=" + maxar.Layer +
			"&STYLES=&" + v.crs + "=EPSG:3857&BBOX=0,0,1000,1000&WIDTH=64&HEIGHT=32&FORMAT=image/png"
		resp, img := w.get(gm, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || len(img) == 0 {
			t.Fatalf("WMS %s GetMap: %d %v %s", v.version, resp.StatusCode, resp.Header, img)
		}
	}
	if n := w.fake.MapRequests.Load(); n != 2 {
		t.Fatalf("Maxar served %d maps, want 2", n)
	}

	// A client's own Maxar credential, in any of the forms Maxar reads,
	// goes no further than the proxy: Maxar sees the key's, and only it.
	tile := w.keyURL(key) + "/~api" + maxar.WMTSPath + "?" + maxarTile
	for _, c := range []struct {
		query string
		hdr   map[string]string
	}{
		{"&maxar_api_key=attacker", nil},
		{"&MAXAR_API_KEY=attacker", nil},
		{"&Maxar%5Fapi%5Fkey=attacker", nil},
		{"", map[string]string{"maxar-api-key": "attacker"}},
		{"", map[string]string{"Authorization": "Bearer attacker"}},
	} {
		resp, img := w.get(tile+c.query, c.hdr)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(img, w.fake.PNG()) {
			t.Fatalf("%s %v: %d %s", c.query, c.hdr, resp.StatusCode, img)
		}
		seen := w.fake.Last()
		for k, vs := range seen.Query {
			if strings.EqualFold(k, maxar.KeyParam) || strings.Contains(strings.Join(vs, ","), "attacker") {
				t.Fatalf("%s %v reached Maxar as %s=%v", c.query, c.hdr, k, vs)
			}
		}
		if got := seen.Header.Values(maxar.KeyHeader); len(got) != 1 || got[0] != maxarKey || seen.Header.Get("Authorization") != "" {
			t.Fatalf("%s %v: Maxar saw header %v and Authorization %q", c.query, c.hdr, got, seen.Header.Get("Authorization"))
		}
	}
}

// Maxar's answers that are not imagery: a 200 with an OGC exception for
// a bad parameter is the client's 400, naming Maxar and not relaying
// Maxar's text; its 429 keeps Retry-After; a key Maxar no longer takes
// (expired, revoked) is a 403 naming Maxar, and costs Maxar one request
// per client request, no retries.
func TestMaxarKeyRefusalsAndLimits(t *testing.T) {
	w := newMaxarWorld(t)
	w.fake.AddKey(maxarKey, 0)
	key := w.addMaxarKey("Forestry", credential.Credential{Secret: maxarKey})
	tile := w.keyURL(key) + "/~api" + maxar.WMTSPath + "?" + maxarTile

	// A layer Maxar does not have: its 200 exception, as the client's 400.
	resp, body := w.get(strings.Replace(tile, "LAYER=Maxar:Imagery", "LAYER=NoSuchLayer", 1), nil)
	rep := w.assertException(resp, body, http.StatusBadRequest, "")
	if !strings.Contains(rep.Exception.Text, "Maxar") || bytes.Contains(body, []byte("NoSuchLayer")) || bytes.Contains(body, []byte("Unknown layer")) {
		t.Fatalf("a 200 exception: %s", body)
	}
	if w.fake.Exceptions.Load() != 1 {
		t.Fatalf("Maxar answered %d exceptions", w.fake.Exceptions.Load())
	}
	// The same on WMS, in the WMS client's format.
	gm := w.proxy.URL + "/v2/wms/" + key + "/~api" + maxar.WMSPath + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=NoSuchLayer&STYLES=&CRS=EPSG:3857&BBOX=0,0,1,1&WIDTH=8&HEIGHT=8&FORMAT=image/png"
	resp, body = w.get(gm, nil)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("Maxar")) || !bytes.Contains(body, []byte("ServiceException")) || bytes.Contains(body, []byte("Unknown layer")) {
		t.Fatalf("a WMS 200 exception: %d %s", resp.StatusCode, body)
	}

	// Maxar's 429, with its JSON body: 429 and Retry-After for the client.
	w.fake.Set(maxar.Switches{Status: http.StatusTooManyRequests, RetryAfter: "11"})
	resp, body = w.get(tile, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "11" || bytes.Contains(body, []byte("too_many_requests")) {
		t.Fatalf("429: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	w.fake.Set(maxar.Switches{})

	// The key ends at Maxar (revoked; an expired one is refused alike):
	// 403 naming Maxar, one Maxar request for each of the client's.
	for _, c := range []struct {
		name string
		kill func()
	}{
		{"revoked", func() { w.fake.RevokeKey(maxarKey) }},
		{"expired", func() {
			w.fake.AddKey(maxarKey, time.Hour)
			w.clk.Advance(2 * time.Hour)
		}},
	} {
		if resp, _ := w.get(tile, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: before: %d", c.name, resp.StatusCode)
		}
		c.kill()
		before := w.fake.Requests.Load()
		for range 3 {
			resp, body := w.get(tile, nil)
			rep := w.assertException(resp, body, http.StatusForbidden, "")
			if !strings.Contains(rep.Exception.Text, "Maxar") {
				t.Fatalf("%s: refusal names not Maxar: %s", c.name, body)
			}
		}
		if n := w.fake.Requests.Load() - before; n != 3 {
			t.Fatalf("%s: three refused requests cost Maxar %d", c.name, n)
		}
		w.fake.AddKey(maxarKey, 0) // alive again
	}
	if strings.Contains(w.logs.String(), maxarKey) {
		t.Fatal("the Maxar key is in a log line")
	}
}

// A Maxar key within keys.EndWarning of its end, as `keys new
// --key-expires` records it, still serves, and the proxy's log says so
// once (keys.Key.Pick warns once a day), naming the organisation and the
// command that replaces it, never the key.
func TestMaxarKeyEndingSoonIsLogged(t *testing.T) {
	w := newMaxarWorld(t)
	w.fake.AddKey(maxarKey, 0)
	key := w.addMaxarKey("Forestry", credential.Credential{Secret: maxarKey, Expires: w.clk.Now().Add(3 * 24 * time.Hour)})
	far := w.addMaxarKey("Parks", credential.Credential{Secret: maxarKey, Expires: w.clk.Now().Add(90 * 24 * time.Hour)})
	for _, k := range []string{key, key, far} {
		if resp, body := w.get(w.keyURL(k)+"/~api"+maxar.WMTSPath+"?"+maxarTile, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("tile: %d %.300s", resp.StatusCode, body)
		}
	}
	logs := w.logs.String()
	const warning = "a provider's key behind this key ends soon"
	if n := strings.Count(logs, warning); n != 1 || !strings.Contains(logs, `"org":"Forestry"`) || !strings.Contains(logs, "keys replace-credential --provider maxar") {
		t.Fatalf("%d warnings, want 1 for Forestry naming the command:\n%s", n, logs)
	}
	if strings.Contains(logs, maxarKey) {
		t.Fatal("the Maxar key is in a log line")
	}
}

// A Maxar login behind a key: the proxy logs in once with the password
// grant (client mgp) for a document and many tiles, sends the token as
// Bearer and never the password; when the token's two hours are up it
// redeems the refresh token rather than logging in again; when Maxar
// drops a token it fetches exactly one new token and retries the tile
// once; a password Maxar refuses is a 403 naming Maxar.
func TestMaxarLoginServesThroughTheProxy(t *testing.T) {
	w := newMaxarWorld(t)
	key := w.addMaxarKey("Forestry", credential.Credential{ID: maxarUser, Secret: maxarPassword})

	resp, body := w.get(w.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil)
	w.noteTokens()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capabilities: %d\n%s", resp.StatusCode, body)
	}
	w.assertKeysOwn(body, w.keyURL(key))
	tile := w.templateTile(body, key)
	for range 4 {
		if resp, img := w.get(tile, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(img, w.fake.PNG()) {
			t.Fatalf("tile %s: %d %s", tile, resp.StatusCode, img)
		}
	}
	if l, r := w.fake.Logins.Load(), w.fake.Refreshes.Load(); l != 1 || r != 0 {
		t.Fatalf("a document and four tiles cost %d logins and %d refreshes, want one login", l, r)
	}
	form := w.fake.LastTokenForm()
	if form.Get("grant_type") != "password" || form.Get("client_id") != maxar.ClientID || form.Get("username") != maxarUser {
		t.Fatalf("the login's form: grant %q client %q user %q", form.Get("grant_type"), form.Get("client_id"), form.Get("username"))
	}
	access, _ := w.fake.LastTokens()
	seen := w.fake.Last()
	if seen.Header.Get("Authorization") != "Bearer "+access || seen.Header.Get(maxar.KeyHeader) != "" {
		t.Fatalf("Maxar saw Authorization %q and key header %q", seen.Header.Get("Authorization"), seen.Header.Get(maxar.KeyHeader))
	}
	for k, vs := range seen.Query {
		for _, v := range vs {
			if strings.Contains(v, maxarPassword) || strings.Contains(v, access) || strings.EqualFold(k, "password") {
				t.Fatalf("a tile's query carries the password or token: %s=%s", k, v)
			}
		}
	}

	// The access token's two hours pass: the next tile redeems the
	// refresh token, with no new login.
	w.clk.Advance(maxar.AccessLifetime + time.Minute)
	if resp, _ := w.get(tile, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the token's end: %d", resp.StatusCode)
	}
	w.noteTokens()
	if l, r := w.fake.Logins.Load(), w.fake.Refreshes.Load(); l != 1 || r != 1 {
		t.Fatalf("after the token's end: %d logins and %d refreshes, want 1 and 1", l, r)
	}
	if form := w.fake.LastTokenForm(); form.Get("grant_type") != "refresh_token" || form.Get("password") != "" {
		t.Fatalf("the renewal's form was grant %q, with a password: %v", form.Get("grant_type"), form.Get("password") != "")
	}

	// Maxar drops the token: one token request, the tile retried once.
	access, _ = w.fake.LastTokens()
	w.fake.RevokeToken(access)
	tokens, asked, refused := w.fake.TokenRequests.Load(), w.fake.Requests.Load(), w.fake.Refused.Load()
	if resp, img := w.get(tile, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(img, w.fake.PNG()) {
		t.Fatalf("after the token was revoked: %d %s", resp.StatusCode, img)
	}
	w.noteTokens()
	if n, m, r := w.fake.TokenRequests.Load()-tokens, w.fake.Requests.Load()-asked, w.fake.Refused.Load()-refused; n != 1 || m != 2 || r != 1 {
		t.Fatalf("a revoked token cost %d token requests and %d tile requests (%d refused), want 1, 2 and 1", n, m, r)
	}
	if now, _ := w.fake.LastTokens(); now == access || w.fake.Last().Header.Get("Authorization") != "Bearer "+now {
		t.Fatal("the retry did not carry the new token")
	}

	// A password Maxar refuses: 403 naming Maxar, nothing of the login.
	bad := w.addMaxarKey("Parks", credential.Credential{ID: maxarUser, Secret: "wrong-" + maxarPassword})
	w.noteSecret("wrong-" + maxarPassword)
	asked = w.fake.Requests.Load()
	resp, body = w.get(w.keyURL(bad)+"/~api"+maxar.WMTSPath+"?"+maxarTile, nil)
	rep := w.assertException(resp, body, http.StatusForbidden, "")
	if !strings.Contains(rep.Exception.Text, "Maxar") || bytes.Contains(body, []byte(maxarUser)) {
		t.Fatalf("a refused login: %s", body)
	}
	if n := w.fake.Requests.Load() - asked; n != 0 {
		t.Fatalf("a refused login still sent %d requests to Maxar's imagery", n)
	}
	logs := w.logs.String()
	for _, s := range []string{maxarPassword, access} {
		if strings.Contains(logs, s) {
			t.Fatal("a log line carries the password or a token")
		}
	}
}

// Instances on one token table share a Maxar login as they share
// Hexagon's tokens: one login between them, one renewal between them
// when the token ends, and the table holds neither password nor token in
// clear.
func TestInstancesShareAMaxarLogin(t *testing.T) {
	c := newCluster(t)
	fake := maxar.New(maxar.Options{Base: "request", Now: c.clk.Now})
	fake.AddUser(maxarUser, maxarPassword)
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	c.noteSecret(maxarPassword)
	key := c.addKey(keys.Record{Org: "County", Contact: "gis@county.example", Provider: "maxar",
		Sets: []credential.Credential{{Provider: "maxar", ID: maxarUser, Secret: maxarPassword}}})
	var insts []*httptest.Server
	for range 3 {
		insts = append(insts, c.instance("PROVIDER_MAXAR_API_URL", up.URL, "PROVIDER_MAXAR_ACCOUNT_URL", up.URL))
	}
	round := func(when string) {
		t.Helper()
		for i, inst := range insts {
			resp, body := c.get(inst.URL+"/v2/wmts/"+key+"/~api"+maxar.WMTSPath+"?"+maxarTile, nil)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, fake.PNG()) {
				t.Fatalf("%s: instance %d: %d %s", when, i, resp.StatusCode, body)
			}
		}
		at, rt := fake.LastTokens()
		c.noteSecret(at)
		c.noteSecret(rt)
	}
	round("first")
	if l, r := fake.Logins.Load(), fake.Refreshes.Load(); l != 1 || r != 0 {
		t.Fatalf("3 instances logged in %d times and refreshed %d, want one login between them", l, r)
	}
	c.clk.Advance(maxar.AccessLifetime + time.Minute)
	round("after the token's end")
	if n := fake.Logins.Load() + fake.Refreshes.Load(); n != 2 {
		t.Fatalf("3 instances renewed an ended token %d times between them, want once", n-1)
	}
	at, rt := fake.LastTokens()
	rows := c.rows()
	if len(rows) == 0 {
		t.Fatal("the token table holds no row: the login was not shared through it")
	}
	for _, row := range rows {
		for _, s := range []string{maxarPassword, at, rt} {
			if strings.Contains(row, s) {
				t.Fatalf("the token table holds a secret in clear:\n%s", row)
			}
		}
	}
}

// GDAL (the engine inside QGIS) draws a Maxar key's WMTS and WMS, and
// OWSLib reads its WMTS and fetches a tile, through the proxy, neither
// ever seeing the Maxar key.
func TestGISClientsDrawAMaxarKey(t *testing.T) {
	w := newMaxarWorld(t)
	w.fake.AddKey(maxarKey, 0)
	key := w.addMaxarKey("Forestry", credential.Credential{Secret: maxarKey})
	caps := w.keyURL(key) + "/1.0.0/WMTSCapabilities.xml"

	info := string(gdal(t, "gdalinfo", "WMTS:"+caps))
	if !strings.Contains(info, "Size is") || strings.Contains(info, maxarKey) {
		t.Fatalf("GDAL found no Maxar layer behind the proxy:\n%s", info)
	}
	out := filepath.Join(t.TempDir(), "maxar.png")
	gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "256", "256", "-projwin", "-2000000", "2000000", "2000000", "-2000000", "WMTS:"+caps, out)
	decodePNG(t, out, 256, 256)
	if w.fake.TileRequests.Load() == 0 {
		t.Fatal("no Maxar tile was served")
	}

	wms := w.proxy.URL + "/v2/wms/" + key + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1"
	info = string(gdal(t, "gdalinfo", "WMS:"+wms))
	m := regexp.MustCompile(`SUBDATASET_1_NAME=(WMS:\S+)`).FindStringSubmatch(info)
	if m == nil || !strings.HasPrefix(m[1], "WMS:"+w.proxy.URL+"/v2/wms/"+key) {
		t.Fatalf("GDAL found no Maxar WMS layer behind the proxy:\n%s", info)
	}
	out = filepath.Join(t.TempDir(), "maxar-wms.png")
	gdal(t, "gdal_translate", "-q", "-of", "PNG", "-outsize", "300", "200", m[1], out)
	decodePNG(t, out, 300, 200)
	if w.fake.MapRequests.Load() == 0 {
		t.Fatal("no Maxar map was served")
	}

	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import owslib").Run(); err != nil {
		requiretools.Missing(t, "OWSLib not importable by %s: %v; scripts/test installs python3-owslib", python, err)
	}
	script := `
import json, sys
from owslib.wmts import WebMapTileService
w = WebMapTileService(sys.argv[1])
tile = w.gettile(layer="Maxar:Imagery", tilematrixset="EPSG:3857", tilematrix="EPSG:3857:5", row=10, column=12, format="image/png").read()
print(json.dumps({"layers": sorted(w.contents), "png": tile[:8] == b"\x89PNG\r\n\x1a\n", "size": len(tile)}))
`
	tiles := w.fake.TileRequests.Load()
	raw, err := exec.Command(python, "-c", script, caps).CombinedOutput()
	if err != nil {
		t.Fatalf("owslib: %v\n%s", err, raw)
	}
	var r struct {
		Layers []string
		PNG    bool
		Size   int
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if len(r.Layers) != 1 || r.Layers[0] != maxar.Layer || !r.PNG || r.Size != len(w.fake.PNG()) || w.fake.TileRequests.Load() != tiles+1 {
		t.Fatalf("OWSLib saw %+v; Maxar served %d tiles", r, w.fake.TileRequests.Load()-tiles)
	}
}
