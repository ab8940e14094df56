package server_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/testclock"
)

// licensedUpstream is an imagery service that takes two static keys in
// the X-Key header and licenses both for the layer "open" and neither for
// "closed": a per-layer 403 for a key it takes, as Maxar's role claims
// answer one (shared/providers.md §4: "403 — JWT does not contain
// expected claim …"). It records which key each tile request carried.
type licensedUpstream struct {
	live map[string]bool
	mu   sync.Mutex
	used []string
}

func (u *licensedUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := r.Header.Get("X-Key")
	u.mu.Lock()
	u.used = append(u.used, k)
	u.mu.Unlock()
	switch {
	case !u.live[k]:
		http.Error(w, "unknown key", http.StatusUnauthorized)
	case strings.HasPrefix(r.URL.Path, "/tiles/closed/"):
		http.Error(w, "the key's roles do not cover this layer", http.StatusForbidden)
	case strings.HasPrefix(r.URL.Path, "/tiles/open/"):
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG\r\n\x1a\nfake tile"))
	default:
		http.NotFound(w, r)
	}
}

// keysUsedSince counts the requests each key carried since the n-th.
func (u *licensedUpstream) keysUsedSince(n int) (map[string]int, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	got := map[string]int{}
	for _, k := range u.used[n:] {
		got[k]++
	}
	return got, len(u.used)
}

// A key with two good static keys of one provider, both licensed alike:
// requests go round both. Anyone holding the key (any of the
// organisation's users, any map that shows its URL) asks once for a layer
// the licence does not cover. The provider's 403 is of the layer, not of
// either key — the second key is refused too — so neither key may be
// given up: until the record is next fetched, every user of the key
// would otherwise be served by one key alone (its rate limit, its quota),
// and a layer only the given-up key licenses would fail for all of them.
func TestReviewSecALayerOutsideTheLicenceDisablesNoGoodSet(t *testing.T) {
	const keyA, keyB = "ACME-KEY-A-5f4dcc3b5aa765d6", "ACME-KEY-B-7c6a180b36896a0a"
	up := &licensedUpstream{live: map[string]bool{keyA: true, keyB: true}}
	base := faketest.Serve(t, up)
	doc := fmt.Sprintf(`{"providers": [{"name": "acme", "title": "Acme Imagery", "credential": "static",
  "hosts": {"api": {"url": %q, "paths": ["/tiles"]}},
  "wmts": "api:/tiles/WMTSCapabilities.xml",
  "place": [{"header": "X-Key"}]}]}`, base)
	h := newKeyHarness(t, map[string]string{"PROVIDERS_FILE": providersFile(t, doc)}, time.Hour)
	h.noteSecret(keyA)
	h.noteSecret(keyB)
	key := h.addKey(keys.Record{Org: "Parks", Contact: "gis@parks.example", Provider: "acme",
		Sets: []credential.Credential{{Provider: "acme", Secret: keyA}, {Provider: "acme", Secret: keyB}}})
	open := h.keyURL(key) + "/~api/tiles/open/3/2/1.png"
	closed := h.keyURL(key) + "/~api/tiles/closed/3/2/1.png"

	for i := range 4 {
		if resp, body := h.get(open, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("open tile %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if got, _ := up.keysUsedSince(0); got[keyA] == 0 || got[keyB] == 0 {
		t.Fatalf("the two keys are not both in use before the test: %v", got)
	}

	// One request for a layer outside the licence: refused, as it should be.
	_, n := up.keysUsedSince(0)
	if resp, body := h.get(closed, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("closed tile: %d %s", resp.StatusCode, body)
	}
	if got, _ := up.keysUsedSince(n); got[keyA] != 1 || got[keyB] != 1 {
		t.Fatalf("the closed tile was asked for with %v, want each key once (a failover)", got)
	}

	// Both keys still serve every user of the key.
	_, n = up.keysUsedSince(0)
	for i := range 6 {
		if resp, body := h.get(open, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("open tile %d after the closed one: %d %s", i, resp.StatusCode, body)
		}
	}
	if got, _ := up.keysUsedSince(n); got[keyA] == 0 || got[keyB] == 0 {
		t.Errorf("after one request for a layer outside the licence, six tiles went with %v: a good key was given up for every user of the record", map[string]int{"A": got[keyA], "B": got[keyB]})
	}
}

// sigRenamer serves h (a fake Planet host) to a proxy that places the
// key as sig= instead of api_key=: the request's sig becomes api_key, and
// every api_key= the answer writes becomes sig=, so that its documents
// echo the key under the operator's own parameter name, as Planet's echo
// it under api_key.
func sigRenamer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.RawQuery = strings.ReplaceAll(r.URL.RawQuery, "sig=", "api_key=")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		body := bytes.ReplaceAll(rec.Body.Bytes(), []byte("api_key="), []byte("sig="))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

// An operator's static profile that places its key as a query parameter
// of its own name (sig=, not one of provider.CommonStrip), of a service
// whose capabilities carry the key in every URL, as Planet's do: the
// document is served with the key taken out of every URL, as a built-in
// profile's is, and not refused as one that names the key.
func TestReviewSecAnOperatorsQueryPlacementIsStrippedFromDocuments(t *testing.T) {
	pl := servePlanet(t, sigRenamer)
	doc := fmt.Sprintf(`{"providers": [{"name": "sigco", "title": "Sig Imagery", "credential": "static",
   "hosts": {"api": {"url": %q, "paths": ["/basemaps/v1/mosaics/wmts"]}, "tiles": {"url": %q, "paths": ["/basemaps/v1/planet-tiles"]}},
   "wmts": "api:/basemaps/v1/mosaics/wmts",
   "place": [{"query": "sig"}], "not_licensed": 404}]}`, pl.api, pl.tiles)
	h := newKeyHarness(t, map[string]string{"PROVIDERS_FILE": providersFile(t, doc)}, time.Minute)
	h.noteSecret(planetKey)
	key := h.addKey(keys.Record{Org: "Parks", Contact: "gis@parks.example", Provider: "sigco",
		Sets: []credential.Credential{{Provider: "sigco", Secret: planetKey}}})

	resp, body := h.get(h.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil)
	h.assertNoSecrets(body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("capabilities: %d %s", resp.StatusCode, body)
	}
	var tile string
	for _, u := range faketest.URLs(t, body) {
		if strings.Contains(u, "sig=") {
			t.Errorf("a URL keeps the key's parameter: %s", u)
		}
		if tile == "" && strings.Contains(u, "{TileMatrix}") {
			tile = strings.NewReplacer("{TileMatrix}", "3", "{TileCol}", "2", "{TileRow}", "1").Replace(u)
		}
	}
	if resp, img := h.get(tile, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(img, pl.fake.PNG()) {
		t.Fatalf("tile %s: %d %.200s", tile, resp.StatusCode, img)
	}
}

// echoingWMS is a careless WMS whose GetFeatureInfo answers, in plain
// text, the request it got, key and all (as the leak scan's echoing
// upstream does), compressed with gzip when the request accepts it, or
// always when always is set (some servers compress whatever is asked).
func echoingWMS(always bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := []byte("no features here\n")
		if r.URL.Query().Get("INFO_FORMAT") == "text/plain" { // the echo
			body = []byte("no features at " + r.URL.RequestURI() + "\n")
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if always || strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
}

// A key holder's text answer is relayed only when it shows the key in no
// spelling (relayChecked): gzip, which the client may ask for (every
// browser does) and an upstream may send unasked, is a spelling too. An
// upstream's feature information that echoes the request, key and all,
// must not reach the key holder compressed, where the check cannot see
// the key.
func TestReviewSecACompressedTextAnswerIsCheckedForTheKey(t *testing.T) {
	const key = "ECHO-KEY-45c48cce2e2d7fbd"
	for _, always := range []bool{false, true} {
		base := faketest.Serve(t, echoingWMS(always))
		doc := fmt.Sprintf(`{"providers": [{"name": "echo", "title": "Echo Imagery", "credential": "static",
  "hosts": {"api": {"url": %q, "paths": ["/wms"]}},
  "wmts": "api:/wms/wmts", "wms": "api:/wms",
  "place": [{"query": "api_key"}]}]}`, base)
		h := newKeyHarness(t, map[string]string{"PROVIDERS_FILE": providersFile(t, doc)}, time.Minute)
		h.noteSecret(key)
		apiKey := h.addKey(keys.Record{Org: "Parks", Contact: "gis@parks.example", Provider: "echo",
			Sets: []credential.Credential{{Provider: "echo", Secret: key}}})
		u := h.proxy.URL + "/v2/wms/" + apiKey + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetFeatureInfo&LAYERS=a&QUERY_LAYERS=a&STYLES=&CRS=EPSG:3857" +
			"&BBOX=0,0,10,10&WIDTH=256&HEIGHT=256&I=1&J=1&INFO_FORMAT=text/plain&FORMAT=image/png"
		for _, ae := range []string{"gzip", "identity"} {
			resp, body := h.get(u, map[string]string{"Accept-Encoding": ae})
			text := body
			if resp.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("always %v, %s: a gzip answer that does not read: %v", always, ae, err)
				}
				if text, err = io.ReadAll(zr); err != nil {
					t.Fatalf("always %v, %s: %v", always, ae, err)
				}
			}
			if strings.Contains(string(text), key) {
				t.Errorf("upstream compresses always: %v; client asks %s: the key holder got the provider's key (HTTP %d, Content-Encoding %q): %q",
					always, ae, resp.StatusCode, resp.Header.Get("Content-Encoding"), text)
			}
			// An answer that shows no key still comes, readable.
			resp, body = h.get(strings.Replace(u, "INFO_FORMAT=text/plain", "INFO_FORMAT=text/html", 1), map[string]string{"Accept-Encoding": ae})
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" || string(body) != "no features here\n" {
				t.Errorf("always %v, %s: a clean answer came as %d %q %q", always, ae, resp.StatusCode, resp.Header.Get("Content-Encoding"), body)
			}
		}
	}
}

// A Maxar key whose record holds a Maxar key and a Maxar login, both good
// (Maxar takes either), in front of a Maxar that answers a layer neither
// may see with a 403, as its role claims do: one request for that layer
// gives up neither set, whichever of the two it began with.
func TestReviewSecALayerOutsideTheLicenceDisablesNoSetOfAKeyAndALogin(t *testing.T) {
	clk := testclock.New(time.Now())
	fake := maxar.New(maxar.Options{Base: "request", Now: clk.Now})
	fake.AddUser(maxarUser, maxarPassword)
	fake.AddKey(maxarKey, 0)
	var mu sync.Mutex
	var withKey, withToken int // tile requests by credential
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == maxar.WMTSPath && strings.EqualFold(r.URL.Query().Get("REQUEST"), "GetTile") {
			mu.Lock()
			if r.Header.Get("maxar-api-key") != "" {
				withKey++
			} else {
				withToken++
			}
			mu.Unlock()
			if r.URL.Query().Get("LAYER") == "Maxar:3D" {
				http.Error(w, "JWT does not contain expected claim mdsUser.mdsClientRoles.mgp:3D_TILES", http.StatusForbidden)
				return
			}
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	h := newWorld(t, worldOptions{clock: clk})
	first := h.start(map[string]string{"PROVIDER_MAXAR_API_URL": up.URL, "PROVIDER_MAXAR_ACCOUNT_URL": up.URL}, nil)
	h.proxy, h.app, h.cache = first.Server, first.app, first.app.Keys
	h.noteSecret(maxarKey)
	h.noteSecret(maxarPassword)
	key := h.addKey(keys.Record{Org: "Forestry", Contact: "gis@example.org", Provider: "maxar", Sets: []credential.Credential{
		{Provider: "maxar", Secret: maxarKey}, {Provider: "maxar", ID: maxarUser, Secret: maxarPassword}}})
	tile := h.keyURL(key) + "/~api" + maxar.WMTSPath + "?" + maxarTile
	closed := strings.Replace(tile, "LAYER=Maxar:Imagery", "LAYER=Maxar:3D", 1)
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return withKey, withToken
	}
	for round := range 2 { // the closed layer asked for first with the key, then with the login
		if resp, body := h.get(closed, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("round %d: the closed layer: %d %s", round, resp.StatusCode, body)
		}
		k0, t0 := counts()
		for i := range 6 {
			if resp, body := h.get(tile, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("round %d: tile %d: %d %.300s", round, i, resp.StatusCode, body)
			}
		}
		if k1, t1 := counts(); k1 == k0 || t1 == t0 {
			t.Errorf("round %d: after one request for a layer outside the licence, six tiles went %d with the key and %d with the login: a good set was given up", round, k1-k0, t1-t0)
		}
		h.get(tile, nil) // the other set first next round
	}
	at, rt := fake.LastTokens()
	h.noteSecret(at)
	h.noteSecret(rt)
}
