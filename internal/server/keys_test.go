package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/fakekeyvault"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/keyvault"
	"github.com/hexprox/hexprox/internal/server"
	"github.com/hexprox/hexprox/internal/usage"
)

// newKeyHarness is a harness whose proxy serves /v2 keys from the world's
// keys file, reloaded every refresh.
func newKeyHarness(t *testing.T, env map[string]string, refresh time.Duration) *harness {
	t.Helper()
	return newKeyHarnessOver(t, env, keys.CacheOptions{Refresh: refresh}, nil)
}

// newKeyHarnessOver is newKeyHarness with the key cache's options, and
// wrap (nil: none) around the store the cache reads.
func newKeyHarnessOver(t *testing.T, env map[string]string, co keys.CacheOptions, wrap func(keys.Store) keys.Store) *harness {
	t.Helper()
	return newHarnessWith(t, env, func(o *app.Options) {
		if co.ListEvery == 0 {
			co.ListEvery = o.KeyCache.ListEvery // the harness's: off
		}
		o.KeyCache = co
		if wrap != nil {
			o.KeyStore = wrap(o.KeyStore)
		}
	})
}

func TestKeyServesEveryWMTSForm(t *testing.T) {
	kh := newKeyHarness(t, nil, time.Minute)
	key := kh.addKey(keys.Record{Org: "County GIS", Contact: "gis@county.example"})
	caps := kh.keyURL(key) + "/1.0.0/WMTSCapabilities.xml"
	for _, u := range []string{caps, kh.keyURL(key), kh.keyURL(key) + "/", kh.keyURL(key) + "?SERVICE=WMTS&REQUEST=GetCapabilities",
		kh.proxy.URL + "/v2/nokeycache/wmts/" + key + "/1.0.0/WMTSCapabilities.xml"} {
		resp, body := kh.get(u, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
		}
		// Rewritten to the key's URL, never the credential's.
		if !bytes.Contains(body, []byte(`template="`+kh.keyURL(key)+`/1.0.0/HxGN_Imagery/`)) {
			t.Fatalf("capabilities not rewritten to the key's URL:\n%.900s", body)
		}
		for _, s := range []string{credential.Encode(clientID), credential.Encode(clientSecret), "/wmts/" + credential.Encode(clientID)} {
			if bytes.Contains(body, []byte(s)) {
				t.Fatalf("the key's capabilities carry the credential (%s)", s)
			}
		}
		kh.assertNoSecrets(body)
	}
	// Tiles, REST and KVP, are streamed to desktops and browsers alike: a
	// redirect would hand the key holder Hexagon's token.
	for _, u := range []string{kh.keyURL(key) + tilePath, kh.keyURL(key) + kvpTile} {
		resp, body := kh.get(u, nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, kh.fake.JPEG()) || resp.Header.Get("Location") != "" {
			t.Fatalf("%s for a desktop: %d %q", u, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, body = kh.get(u, map[string]string{"Origin": allowed})
		if resp.StatusCode != 200 || !bytes.Equal(body, kh.fake.JPEG()) || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
			t.Fatalf("%s streamed: %d %v", u, resp.StatusCode, resp.Header)
		}
	}
	if resp, body := kh.do(http.MethodHead, kh.keyURL(key)+tilePath, nil); resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	// A key whose record opts in redirects desktops, with the token.
	trusted := kh.addKey(keys.Record{Org: "Trusted County", Redirect: true})
	for _, u := range []string{kh.keyURL(trusted) + tilePath, kh.keyURL(trusted) + kvpTile} {
		resp, _ := kh.get(u, nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		live, _, _ := kh.fake.CurrentToken(clientID)
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("access_token") != live {
			t.Fatalf("%s with redirect: %d %q", u, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, _ := kh.do(http.MethodOptions, kh.keyURL(key)+tilePath, map[string]string{"Origin": allowed, "Access-Control-Request-Method": "GET"}); resp.StatusCode != 204 {
		t.Fatalf("OPTIONS: %d", resp.StatusCode)
	}
	// Each request line says whose it was, by fingerprint and organisation.
	fp := keys.Fingerprint(key, "")
	if !strings.Contains(kh.logs.String(), `"key":"`+fp+`","org":"County GIS"`) {
		t.Fatalf("log lines should carry the key's fingerprint and org:\n%s", kh.logs.String())
	}
}

func TestKeyServesWMSInBothModes(t *testing.T) {
	kh := newKeyHarness(t, nil, time.Minute)
	key := kh.addKey(keys.Record{Org: "Water Board"})
	base := kh.proxy.URL + "/v2/wms/" + key
	resp, body := kh.get(base+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`xlink:href="`+base+`?`)) {
		t.Fatalf("WMS capabilities: %d\n%.900s", resp.StatusCode, body)
	}
	kh.assertNoSecrets(body)
	gm := base + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	if resp, body := kh.get(gm, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" || len(body) == 0 {
		t.Fatalf("GetMap for a desktop, streamed: %d", resp.StatusCode)
	}
	trusted := kh.proxy.URL + "/v2/wms/" + kh.addKey(keys.Record{Org: "Trusted Water Board", Redirect: true})
	if resp, _ := kh.get(strings.Replace(gm, base, trusted, 1), nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("GetMap for a desktop, with redirect: %d", resp.StatusCode)
	}
	if resp, body := kh.get(gm, map[string]string{"Origin": allowed}); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || len(body) == 0 {
		t.Fatalf("GetMap streamed: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestKeyLifecycle(t *testing.T) {
	const refresh = 300 * time.Millisecond
	kh := newKeyHarness(t, nil, refresh)
	ctx := context.Background()
	key := kh.addKey(keys.Record{Org: "Parks", Contact: "parks-gis@example.org"})
	if resp, _ := kh.get(kh.keyURL(key)+tilePath, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("active key: %d", resp.StatusCode)
	}
	// Revoked: refused within the refresh time, on every route.
	rec, err := kh.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	rec.Enabled = false
	if err := kh.store.Update(ctx, key, rec); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for {
		resp, body := kh.get(kh.keyURL(key)+tilePath, nil)
		if resp.StatusCode == http.StatusForbidden {
			rep := kh.assertException(resp, body, http.StatusForbidden, "")
			if !strings.Contains(rep.Exception.Text, "revoked") || !strings.Contains(rep.Exception.Text, "parks-gis@example.org") {
				t.Fatalf("the refusal should say why and whom to ask: %q", rep.Exception.Text)
			}
			break
		}
		if time.Since(revoked) > 2*refresh+time.Second {
			t.Fatalf("a revoked key still served %v after revocation (refresh %v)", time.Since(revoked), refresh)
		}
		time.Sleep(20 * time.Millisecond)
	}
	figure(t, "revocation took effect after %v (KEYS_REFRESH %v)", time.Since(revoked).Round(time.Millisecond), refresh)
	if resp, _ := kh.get(kh.proxy.URL+"/v2/wms/"+key, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked key on WMS: %d", resp.StatusCode)
	}
	if resp, _ := kh.get(kh.proxy.URL+"/about/"+key, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("revoked key on /about: %d", resp.StatusCode)
	}
	// Expired and not yet valid keys.
	expired := kh.addKey(keys.Record{Org: "Old", Expires: time.Now().Add(-time.Hour)})
	future := kh.addKey(keys.Record{Org: "New", NotBefore: time.Now().Add(time.Hour)})
	for key, word := range map[string]string{expired: "expired", future: "not valid before"} {
		resp, body := kh.get(kh.keyURL(key)+"/1.0.0/WMTSCapabilities.xml", nil)
		rep := kh.assertException(resp, body, http.StatusForbidden, "")
		if !strings.Contains(rep.Exception.Text, word) {
			t.Fatalf("want %q in %q", word, rep.Exception.Text)
		}
	}
	// Unknown and malformed keys: 403 on /v2 and /about, no token request.
	tokens := kh.fake.TokenRequests.Load()
	for _, u := range []string{kh.keyURL("hxpk-unknown") + tilePath, kh.proxy.URL + "/about/hxpk-unknown", kh.keyURL("not_a*key") + tilePath} {
		if resp, body := kh.get(u, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
		}
	}
	if kh.fake.TokenRequests.Load() != tokens {
		t.Fatal("an unknown key reached the token endpoint")
	}
}

func TestKeyOrigins(t *testing.T) {
	kh := newKeyHarness(t, map[string]string{"ALLOWED_ORIGINS": "https://*.arcgis.com"}, time.Minute)
	portal := "https://portal.county.example"
	withOrigin := kh.addKey(keys.Record{Org: "County", Origins: []string{"https://*.county.example"}})
	without := kh.addKey(keys.Record{Org: "City"})
	if resp, body := kh.get(kh.keyURL(withOrigin)+tilePath, map[string]string{"Origin": portal}); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != portal {
		t.Fatalf("the key's own origin: %d %s", resp.StatusCode, body)
	}
	resp, body := kh.get(kh.keyURL(without)+tilePath, map[string]string{"Origin": portal})
	kh.assertException(resp, body, http.StatusForbidden, "")
	// The key's origins do not open credential URLs either.
	resp, body = kh.get(kh.credURL()+tilePath, map[string]string{"Origin": portal})
	kh.assertException(resp, body, http.StatusForbidden, "")
	// A key without origins of its own serves ALLOWED_ORIGINS.
	if resp, _ := kh.get(kh.keyURL(without)+tilePath, map[string]string{"Origin": allowed}); resp.StatusCode != 200 {
		t.Fatalf("global origin on a key without origins: %d", resp.StatusCode)
	}
	// A key with origins serves those alone: another organisation's
	// portal under *.arcgis.com is refused, preflight, tile or error,
	// and gets no CORS header to read the refusal with.
	resp, body = kh.get(kh.keyURL(withOrigin)+tilePath, map[string]string{"Origin": allowed})
	rep := kh.assertException(resp, body, http.StatusForbidden, "")
	if !strings.Contains(rep.Exception.Text, "only from its own origins") || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a global origin on a key with its own: %q %v", rep.Exception.Text, resp.Header)
	}
	if resp, _ := kh.do(http.MethodOptions, kh.keyURL(withOrigin)+tilePath, map[string]string{"Origin": allowed, "Access-Control-Request-Method": "GET"}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a preflight from a global origin on a key with its own: %d", resp.StatusCode)
	}
	limited := kh.addKey(keys.Record{Org: "Limited County", Origins: []string{"https://*.county.example"}, Rate: 1, Burst: 1})
	kh.get(kh.keyURL(limited)+tilePath, nil)
	resp, _ = kh.get(kh.keyURL(limited)+tilePath, map[string]string{"Origin": allowed})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("an error before the origin policy, to an origin the key does not serve: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestKeyWithARefusedSetStillServes(t *testing.T) {
	kh := newKeyHarness(t, nil, time.Minute)
	key := kh.addKey(keys.Record{Org: "Two sets", Contact: "ops@example.org", Sets: []credential.Credential{
		{ID: clientID, Secret: "revoked-in-hexagon"},
		{ID: clientID, Secret: clientSecret},
	}})
	kh.noteSecret("revoked-in-hexagon")
	for i := 0; i < 20; i++ {
		resp, body := kh.get(kh.keyURL(key)+tilePath, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if !strings.Contains(kh.logs.String(), "Two sets") {
		t.Fatalf("the refused set should be logged with the organisation:\n%s", kh.logs.String())
	}
	// With every set refused, the key holder is told whom to contact.
	all := kh.addKey(keys.Record{Org: "None left", Contact: "ops@example.org", Sets: []credential.Credential{{ID: clientID, Secret: "revoked-in-hexagon"}}})
	resp, body := kh.get(kh.keyURL(all)+tilePath, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("all sets refused: %d", resp.StatusCode)
	}
	resp, body = kh.get(kh.keyURL(all)+tilePath, nil)
	rep := kh.assertException(resp, body, http.StatusForbidden, "")
	if !strings.Contains(rep.Exception.Text, "ops@example.org") {
		t.Fatalf("want the contact in %q", rep.Exception.Text)
	}
	// Every refusal's line still says whose it was.
	waitForLines(t, kh, `"org":"None left"`, 2)
	for _, l := range strings.Split(kh.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"request"`) && strings.Contains(l, `"status":403`) && strings.Contains(l, `"route":"wmts"`) &&
			!strings.Contains(l, `"key":"`+keys.Fingerprint(all, "")+`","org":"None left"`) && !strings.Contains(l, `"org":"Two sets"`) {
			t.Fatalf("a refusal logged without the key's fingerprint and org: %s", l)
		}
	}
}

// waitForLines waits until the logs hold n lines containing s: a line is
// written once its request is answered, which a client may see first.
func waitForLines(t *testing.T, h *harness, s string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); strings.Count(h.logs.String(), s) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("want %d log lines with %s:\n%s", n, s, h.logs.String())
		}
	}
}

func TestAboutKey(t *testing.T) {
	kh := newKeyHarness(t, nil, time.Minute)
	exp := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
	key := kh.addKey(keys.Record{Org: "County GIS", Contact: "gis@county.example", Expires: exp})
	resp, body := kh.get(kh.proxy.URL+"/about/"+key, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("about: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if info["org"] != "County GIS" || info["contact"] != "gis@county.example" || info["status"] != "active" ||
		info["wmts"] != kh.keyURL(key)+"/1.0.0/WMTSCapabilities.xml" || info["wms"] != kh.proxy.URL+"/v2/wms/"+key || info["version"] != "test" ||
		info["tiles"] != "proxied" {
		t.Fatalf("about says %v", info)
	}
	if e, _ := time.Parse(time.RFC3339, info["expires"].(string)); !e.Equal(exp) {
		t.Fatalf("expires %v, want %v", info["expires"], exp)
	}
	kh.assertNoSecrets(body)
}

// With KEY_STORE=none, /v2 is not there.
func TestNoKeyStore(t *testing.T) {
	h := newHarness(t, map[string]string{"KEY_STORE": "none"})
	resp, body := h.get(h.proxy.URL+"/v2/wmts/hxpk-anything/1.0.0/WMTSCapabilities.xml", nil)
	h.assertException(resp, body, http.StatusNotFound, "")
	if resp, _ := h.get(h.proxy.URL+"/about/hxpk-anything", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/about without keys: %d", resp.StatusCode)
	}
}

// The Key Vault store behind the cache: an unknown key asked 1,000 times
// reaches the vault at most once per negative-cache time, and a warm key
// keeps serving while the vault is down.
func TestKeyVaultBehindTheProxy(t *testing.T) {
	h, kv := newVaultHarness(t, keys.CacheOptions{Refresh: 200 * time.Millisecond, NegativeTTL: time.Minute, Retry: 50 * time.Millisecond, ListEvery: -1})
	// A record in the original HexProx's exact layout.
	const key = "0f9e8d7c-original-key"
	kv.Put(keys.SecretPrefix+key, originalRecord("Original Org", "Someone"))
	h.noteKey(key)
	u := h.proxy.URL + "/v2/wmts/" + key
	if resp, body := h.get(u+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != 200 {
		t.Fatalf("an original key: %d %s", resp.StatusCode, body)
	}
	const unknown = "hxpk-no-such-key-at-all"
	for i := 0; i < 1000; i++ {
		req, _ := http.NewRequest(http.MethodGet, h.proxy.URL+"/v2/wmts/"+unknown+tilePath, nil)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("unknown key: %d", resp.StatusCode)
		}
	}
	if n := kv.Requests(keys.SecretPrefix + unknown); n > 1 {
		t.Fatalf("1,000 requests for an unknown key asked the vault %d times", n)
	}
	figure(t, "unknown key × 1000 → %d vault requests", kv.Requests(keys.SecretPrefix+unknown))
	// The vault goes down: the warm key keeps serving past its refresh.
	kv.Fail(http.StatusServiceUnavailable)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if resp, body := h.get(u+tilePath, nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("vault down: a warm key answered %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(h.logs.String(), "Original Org") {
		t.Fatalf("the outage should be logged with the organisation:\n%s", h.logs.String())
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// A key's rate applies even where nothing is counted (no usage counter).
func TestKeyRateLimitWithoutACounter(t *testing.T) {
	kh := newKeyHarness(t, map[string]string{"USAGE": "off"}, time.Minute)
	key := kh.addKey(keys.Record{Org: "Limited", Rate: 2, Burst: 2})
	statuses := map[int]int{}
	for i := 0; i < 5; i++ {
		resp, _ := kh.get(kh.keyURL(key)+tilePath, nil)
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusOK] < 2 || statuses[http.StatusTooManyRequests] == 0 {
		t.Fatalf("rate 2, burst 2: %v", statuses)
	}
}

// Random keys from one address stop costing store calls after its guess
// allowance, and cannot spend the store's budget for everyone: a valid
// key that is not in memory yet still works from another address.
func TestUnknownKeysArePerAddressGuesses(t *testing.T) {
	var counting *countingStore
	h := newHarnessWith(t, map[string]string{"TRUSTED_HOPS": "1", "GUESS_LIMIT": ""}, func(o *app.Options) {
		counting = &countingStore{Store: o.KeyStore}
		o.KeyStore = counting
	})
	store := h.store
	valid, _ := keys.New()
	if err := store.Create(context.Background(), valid, keys.Record{Org: "Cold", Enabled: true, Sets: []credential.Credential{{ID: clientID, Secret: clientSecret}}}); err != nil {
		t.Fatal(err)
	}
	h.noteKey(valid)
	attacker := map[string]string{"X-Forwarded-For": "203.0.113.9"}
	statuses := map[int]int{}
	for i := 0; i < 60; i++ {
		k, _ := keys.New()
		resp, _ := h.get(h.proxy.URL+"/v2/wmts/"+k+tilePath, attacker)
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusForbidden] > guesslimit.DefaultBurst+2 {
		t.Fatalf("60 random keys from one address: %v", statuses)
	}
	if n := counting.gets.Load(); n > guesslimit.DefaultBurst+2 {
		t.Fatalf("60 random keys from one address made %d store calls", n)
	}
	// Another address, a valid key not in memory: served.
	if resp, body := h.get(h.proxy.URL+"/v2/wmts/"+valid+tilePath, map[string]string{"X-Forwarded-For": "198.51.100.7"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("a valid cold key after the flood: %d %s", resp.StatusCode, body)
	}
	// Every spelling of it is the same key, with the same fingerprint.
	resp, _ := h.get(h.proxy.URL+"/v2/wmts/"+strings.ToUpper(valid)+tilePath, nil)
	if resp.StatusCode != http.StatusOK || strings.Count(h.logs.String(), `"key":"`+keys.Fingerprint(valid, "")+`"`) < 1 {
		t.Fatalf("an upper-case spelling: %d", resp.StatusCode)
	}
}

// A long organisation name is counted under its first 64 characters, so
// that it cannot make a usage row's key too long for the table.
func TestUsageOrgIsCapped(t *testing.T) {
	long := strings.Repeat("Département de l’Hérault – ", 40)
	id := server.UsageID(long, "abcd1234")
	if n := utf8.RuneCountInString(id.Org); n != server.MaxUsageOrg || !strings.HasPrefix(long, id.Org) {
		t.Fatalf("org of %d characters: %q", n, id.Org)
	}
	if server.UsageID("County GIS", "x").Org != "County GIS" {
		t.Fatal("a short org must be kept as it is")
	}
}

// A key whose first credential set is refused answers its holder's very
// first request with the next set, charged to its limits once: failing
// over to another set retries only the token, not the request.
func TestRefusedSetIsChargedOnce(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		redirect   bool
		want       int
	}{
		{"redirect", tilePath, true, http.StatusFound},
		{"stream", tilePath, false, http.StatusOK},
		{"capabilities", "/1.0.0/WMTSCapabilities.xml", false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kh := newKeyHarness(t, nil, time.Minute)
			key := kh.addKey(keys.Record{Org: "Burst one", Rate: 1, Burst: 1, Redirect: tc.redirect, Sets: []credential.Credential{
				{ID: clientID, Secret: "revoked-in-hexagon"},
				{ID: clientID, Secret: clientSecret},
			}})
			kh.noteSecret("revoked-in-hexagon")
			resp, body := kh.get(kh.keyURL(key)+tc.path, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("first request of a key with burst 1 and a refused first set: %d %s, want %d", resp.StatusCode, body, tc.want)
			}
		})
	}
}

// Nothing that reaches a key holder carries a Hexagon token: not a
// header, not a body, on any /v2 route or the about page, from a desktop
// or a browser, answered or refused. A token in a redirect would outlive
// the key (Hexagon renews the same token for whoever uses the set).
func TestKeyHolderNeverReceivesTheToken(t *testing.T) {
	h := newKeyHarness(t, nil, time.Minute)
	key := h.addKey(keys.Record{Org: "Boundary County"})
	wmts, wms, nocache := h.keyURL(key), h.proxy.URL+"/v2/wms/"+key, h.proxy.URL+"/v2/nokeycache/wmts/"+key
	type answer struct {
		what string
		hdr  http.Header
		body []byte
	}
	var answers []answer
	for _, origin := range []string{"", allowed} {
		for _, r := range []struct{ method, url string }{
			{"GET", wmts + "/1.0.0/WMTSCapabilities.xml"},
			{"GET", wmts + tilePath},
			{"GET", wmts + kvpTile},
			{"GET", wmts + "?SERVICE=WMTS&REQUEST=GetCapabilities"},
			{"HEAD", wmts + tilePath},
			{"OPTIONS", wmts + tilePath},
			{"GET", nocache + tilePath},
			{"GET", wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1"},
			{"GET", wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0"},
			{"GET", wms + getMap},
			{"GET", wms + usageGFI},
			{"GET", wms + usageLegend},
			{"GET", wmts + usageBadTile},
			{"GET", wmts + "/1.0.0/HxGN_Imagery/default/WebMercator/25/1/1.jpg"},
			{"GET", wms + "?SERVICE=WMS&REQUEST=GetMap"},
			{"GET", h.proxy.URL + "/about/" + key},
		} {
			hdr := map[string]string{}
			if origin != "" {
				hdr["Origin"] = origin
			}
			if r.method == "OPTIONS" {
				hdr["Access-Control-Request-Method"] = "GET"
			}
			if strings.Contains(r.url, "/about/") && origin != "" {
				hdr["Accept"] = "text/html"
			}
			resp, body := h.do(r.method, r.url, hdr)
			if resp.StatusCode == http.StatusFound {
				t.Errorf("%s %s (origin %q) was redirected", r.method, strings.TrimPrefix(r.url, h.proxy.URL), origin)
			}
			answers = append(answers, answer{r.method + " " + strings.TrimPrefix(r.url, h.proxy.URL), resp.Header, body})
		}
	}
	live, _, ok := h.fake.CurrentToken(clientID)
	if !ok || h.fake.TileRequests.Load() == 0 || h.fake.MapRequests.Load() == 0 {
		t.Fatal("the requests did not reach Hexagon: the test proves nothing")
	}
	for _, a := range answers {
		for name, vs := range a.hdr {
			for _, v := range vs {
				if strings.Contains(v, live) {
					t.Errorf("%s: header %s carries the Hexagon token", a.what, name)
				}
			}
		}
		if bytes.Contains(a.body, []byte(live)) || bytes.Contains(a.body, []byte(url.QueryEscape(live))) {
			t.Errorf("%s: the body carries the Hexagon token", a.what)
		}
	}
}

// A key's about page is the key's request like any other: within its
// limits (a 429 in JSON) and counted.
func TestAboutIsWithinTheKeysLimits(t *testing.T) {
	h := newKeyHarnessOver(t, nil, keys.CacheOptions{Refresh: time.Minute}, nil)
	key := h.addKey(keys.Record{Org: "Small County", Rate: 1, Burst: 1})
	if resp, body := h.get(h.proxy.URL+"/about/"+key, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("about: %d %s", resp.StatusCode, body)
	}
	resp, body := h.get(h.proxy.URL+"/about/"+key, nil)
	var e map[string]string
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || json.Unmarshal(body, &e) != nil || !strings.Contains(e["error"], "limit: rate") {
		t.Fatalf("about over the key's rate: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	id := server.UsageID("Small County", keys.Fingerprint(key, ""))
	var got usage.Counts
	for _, r := range h.app.Usage.Snapshot(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)) {
		if r.SubjectID == id {
			got.Add(r.Counts)
		}
	}
	if got[usage.About] != 1 || got[usage.RateLimited] != 1 {
		t.Fatalf("counted %v, want 1 about and 1 rate_limited", got)
	}
}

// A key revoked in the store is refused on every instance within
// seconds, although KEYS_REFRESH is minutes: each instance lists the
// store every ListEvery (Key Vault's own switch: the next test). A new
// key serves within the same time; an unknown one costs no store call.
func TestRevocationReachesEveryInstanceWithinSeconds(t *testing.T) {
	const every = 100 * time.Millisecond
	h := newWorld(t, worldOptions{})
	listEvery := func(o *app.Options) { o.KeyCache.ListEvery = every }
	a, b := h.start(nil, listEvery), h.start(nil, listEvery) // KEYS_REFRESH: 5 min
	key := h.addKey(keys.Record{Org: "Revoked County", Contact: "gis@revoked.example"})
	tile := func(in *instance) int {
		resp, _ := h.get(in.URL+"/v2/wmts/"+key+tilePath, nil)
		return resp.StatusCode
	}
	// A new key serves on every instance once listed.
	settle(t, "the new key on both instances", func() bool { return tile(a) == http.StatusOK && tile(b) == http.StatusOK })

	// Revoked in the store, as keys revoke or the portal would: refused on
	// both within a few listings, while the cached record is minutes from
	// its refresh.
	rec, err := h.store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	rec.Enabled = false
	if err := h.store.Update(context.Background(), key, rec); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	settle(t, "the revocation on both instances", func() bool { return tile(a) == http.StatusForbidden && tile(b) == http.StatusForbidden })
	// settle gives up at 10 s; the promise is a few listings, with room
	// for a loaded CI machine.
	took := time.Since(start)
	if limit := 20*every + time.Second; took > limit {
		t.Fatalf("revoked after %v, want within %v", took, limit)
	}
	figure(t, "a key revoked in the store, listing every %v, KEYS_REFRESH 5 min → refused on 2 instances after %s", every, ms(took))
	resp, body := h.get(a.URL+"/v2/wmts/"+key+tilePath, nil)
	rep := h.assertException(resp, body, http.StatusForbidden, "")
	if !strings.Contains(rep.Exception.Text, "gis@revoked.example") {
		t.Errorf("the refusal should name the contact: %q", rep.Exception.Text)
	}

	// Unknown keys are answered from the listing: no store call.
	var counting *countingStore
	c := h.start(map[string]string{"GUESS_LIMIT": "0"}, func(o *app.Options) {
		o.KeyCache.ListEvery = every
		counting = &countingStore{Store: o.KeyStore}
		o.KeyStore = counting
	})
	settle(t, "a listing on the third instance", func() bool {
		resp, _ := h.get(c.URL+"/v2/wmts/"+key+tilePath, nil)
		return resp.StatusCode == http.StatusForbidden
	})
	before := counting.gets.Load()
	for range 50 {
		k, _ := keys.New()
		if resp, _ := h.get(c.URL+"/v2/wmts/"+k+tilePath, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("an unknown key: %d", resp.StatusCode)
		}
	}
	if n := counting.gets.Load() - before; n != 0 {
		t.Fatalf("50 unknown keys made %d store calls with a fresh listing, want 0", n)
	}

	// Answered from the listing, an unknown key is still a guess, charged
	// to its address.
	d := h.start(map[string]string{"GUESS_LIMIT": "", "TRUSTED_HOPS": "1"}, listEvery)
	settle(t, "a listing on the fourth instance", func() bool {
		resp, _ := h.get(d.URL+"/v2/wmts/"+key+tilePath, nil)
		return resp.StatusCode == http.StatusForbidden
	})
	statuses := map[int]int{}
	for range 3 * guesslimit.DefaultBurst {
		k, _ := keys.New()
		resp, _ := h.get(d.URL+"/v2/wmts/"+k+tilePath, map[string]string{"X-Forwarded-For": "203.0.113.80"})
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusForbidden] > guesslimit.DefaultBurst {
		t.Fatalf("%d unknown keys from one address, answered from the listing: %v", 3*guesslimit.DefaultBurst, statuses)
	}
}

// newVaultHarness is a harness whose proxy reads keys from a fake Key
// Vault through the real azsecrets client, its cache tuned by co.
func newVaultHarness(t *testing.T, co keys.CacheOptions) (*harness, *fakekeyvault.Server) {
	t.Helper()
	kv := fakekeyvault.New()
	t.Cleanup(kv.Close)
	store, err := keyvault.Open(keyvault.Options{VaultURL: kv.VaultURL(), Credential: kv.Credential(), Transport: kv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, map[string]string{"KEY_STORE": "keyvault", "KEY_VAULT_URL": kv.VaultURL()}, func(o *app.Options) {
		o.KeyStore, o.KeyCache = store, co
	})
	return h, kv
}

// In Key Vault, a key disabled in the portal or with
// `az keyvault secret set-attributes --enabled false` is refused within a
// listing, though its record was read minutes before its refresh; the
// listing reads names and attributes only.
func TestKeyVaultDisabledInThePortalIsRefusedWithinSeconds(t *testing.T) {
	h, kv := newVaultHarness(t, keys.CacheOptions{ListEvery: 100 * time.Millisecond}) // KEYS_REFRESH: 5 min
	const key = "hxpk-portalDisabledKey0000000000000000000000000"
	kv.Put(keys.SecretPrefix+key, originalRecord("Portal Org", "portal@example.org"))
	h.noteKey(key)
	u := h.proxy.URL + "/v2/wmts/" + key + tilePath
	settle(t, "the key served", func() bool { resp, _ := h.get(u, nil); return resp.StatusCode == http.StatusOK })
	reads := kv.Requests(keys.SecretPrefix + key)
	if !kv.Update(keys.SecretPrefix+key, func(a *fakekeyvault.Attributes) { a.Enabled = false }) {
		t.Fatal("no such secret")
	}
	start := time.Now()
	settle(t, "the disabled key refused", func() bool { resp, _ := h.get(u, nil); return resp.StatusCode == http.StatusForbidden })
	// Listings read names and attributes: at most the one reread of the
	// changed key, however many listings went by (two requests: its
	// value, which Key Vault refuses for a disabled secret, then its
	// versions' attributes).
	if n := kv.Requests(keys.SecretPrefix+key) - reads; n > 2 {
		t.Fatalf("%d requests for the disabled key's secret while it was listed every 100ms, want at most the 2 of one reread", n)
	}
	figure(t, "a key disabled in Key Vault, listing every 100ms → refused after %s, %d reads of its secret meanwhile", ms(time.Since(start)), kv.Requests(keys.SecretPrefix+key)-reads)
}

// originalRecord is a key's secret in the original HexProx's exact
// layout, for the test credential.
func originalRecord(org, contact string) string {
	return `{"count": 1, "sets": [{"client_id": "` + clientID + `", "client_secret": "` + jsonEscape(clientSecret) + `"}], "org": "` + org + `", "contact": "` + contact + `"}`
}

// A key whose record names the orders endpoint sends everything to
// Hexagon's batch services: capabilities, tiles and maps, streamed and
// (with redirect) redirected. Its documents come back to the key's URLs
// whichever family they name, and are never shared with a streaming key
// of the same credential. A 429 from Hexagon reaches the client with its
// Retry-After, in the client's format, counted as rate-limited.
func TestOrdersKeyUsesTheBatchEndpoints(t *testing.T) {
	kh := newKeyHarness(t, nil, time.Minute)
	bulk := kh.addKey(keys.Record{Org: "ML Lab", Endpoint: keys.Orders})
	plain := kh.addKey(keys.Record{Org: "Planning"}) // the same credential set, streaming

	// Streaming first: its document must not be served to the orders key.
	if resp, body := kh.get(kh.keyURL(plain)+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != 200 {
		t.Fatalf("streaming capabilities: %d %s", resp.StatusCode, body)
	}
	before := kh.fake.OrdersRequests.Load()
	resp, body := kh.get(kh.keyURL(bulk)+"/1.0.0/WMTSCapabilities.xml", nil)
	if resp.StatusCode != 200 || kh.fake.OrdersRequests.Load() != before+1 {
		t.Fatalf("orders capabilities: %d, %d orders requests\n%.500s", resp.StatusCode, kh.fake.OrdersRequests.Load()-before, body)
	}
	if !bytes.Contains(body, []byte(`template="`+kh.keyURL(bulk)+`/1.0.0/HxGN_Imagery/`)) || bytes.Contains(body, []byte("/orders/")) {
		t.Fatalf("orders capabilities not rewritten to the key's URL:\n%.1500s", body)
	}
	kh.assertNoSecrets(body)

	wmsBase := kh.proxy.URL + "/v2/wms/" + bulk
	if resp, body := kh.get(wmsBase+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", nil); resp.StatusCode != 200 ||
		!bytes.Contains(body, []byte(`xlink:href="`+wmsBase+`?`)) || bytes.Contains(body, []byte("/orders/")) {
		t.Fatalf("orders WMS capabilities: %d\n%.900s", resp.StatusCode, body)
	}
	gm := wmsBase + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	for _, u := range []string{kh.keyURL(bulk) + tilePath, kh.keyURL(bulk) + kvpTile, gm} {
		before := kh.fake.OrdersRequests.Load()
		if resp, body := kh.get(u, nil); resp.StatusCode != 200 || len(body) == 0 || kh.fake.OrdersRequests.Load() != before+1 {
			t.Fatalf("%s: %d, %d orders requests", u, resp.StatusCode, kh.fake.OrdersRequests.Load()-before)
		}
	}
	// The about page tells the holder which service it is, and what to expect.
	var about map[string]any
	if resp, body := kh.get(kh.proxy.URL+"/about/"+bulk, nil); resp.StatusCode != 200 || json.Unmarshal(body, &about) != nil || about["endpoint"] != "orders" {
		t.Fatalf("about: %d %s", resp.StatusCode, body)
	}
	if resp, body := kh.get(kh.proxy.URL+"/about/"+bulk, map[string]string{"Accept": "text/html"}); resp.StatusCode != 200 || !bytes.Contains(body, []byte("Hexagon's batch services")) {
		t.Fatalf("about page: %d\n%s", resp.StatusCode, body)
	}
	if _, body := kh.get(kh.proxy.URL+"/about/"+plain, nil); !bytes.Contains(body, []byte(`"endpoint":"streaming"`)) {
		t.Fatalf("about of a streaming key: %s", body)
	}

	// With redirect, the desktop goes to the batch service itself.
	trusted := kh.addKey(keys.Record{Org: "Trusted Lab", Endpoint: keys.Orders, Redirect: true})
	resp, _ = kh.get(kh.keyURL(trusted)+tilePath, nil)
	if loc, err := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || err != nil || loc.Path != fakehexagon.OrdersWMTSPath {
		t.Fatalf("orders redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Over the batch services' rate limit: Hexagon's 429 and Retry-After
	// reach the client, counted as rate-limited for the organisation.
	kh.fake.Update(func(s *fakehexagon.Switches) { s.OrdersLimit = 1 })
	limited := 0
	for range 5 {
		resp, body := kh.get(kh.keyURL(bulk)+tilePath, nil)
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("429 without Hexagon's Retry-After: %v", resp.Header)
			}
			kh.assertException(resp, body, http.StatusTooManyRequests, "")
		default:
			t.Fatalf("tile over the orders limit: %d %s", resp.StatusCode, body)
		}
	}
	if limited == 0 {
		t.Fatal("five tiles in a second were never over a limit of one a second")
	}
	id := server.UsageID("ML Lab", keys.Fingerprint(bulk, ""))
	var got usage.Counts
	for _, r := range kh.app.Usage.Snapshot(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)) {
		if r.SubjectID == id {
			got.Add(r.Counts)
		}
	}
	if got[usage.RateLimited] != int64(limited) {
		t.Fatalf("counted %d rate-limited, want %d (%v)", got[usage.RateLimited], limited, got)
	}
}
