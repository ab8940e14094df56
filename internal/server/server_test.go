package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
)

func TestCapabilitiesInEveryForm(t *testing.T) {
	h := newHarness(t, nil)
	std := base64.StdEncoding.EncodeToString
	stdPath := h.proxy.URL + "/wmts/" + url.PathEscape(std([]byte(clientID))) + "/" + strings.ReplaceAll(url.PathEscape(std([]byte(clientSecret))), "/", "%2F")
	forms := []string{
		h.credURL() + "/1.0.0/WMTSCapabilities.xml",
		h.credURL(),
		h.credURL() + "/",
		h.credURL() + "?SERVICE=WMTS&REQUEST=GetCapabilities",
		h.credURL() + "/?service=wmts&request=getcapabilities&version=1.0.0",
		h.credURL() + "/1.0.0/WMTSCapabilities.xml?request=GetCapabilities&service=WMTS",
		h.proxy.URL + "/v1/wmts/old-api-key/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret) + "/1.0.0/WMTSCapabilities.xml",
		stdPath + "/1.0.0/WMTSCapabilities.xml",
	}
	var first []byte
	for _, u := range forms {
		resp, body := h.get(u, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
			t.Fatalf("%s: %d %s\n%s", u, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Fatalf("%s answered a different document", u)
		}
	}
	if n := h.fake.CapabilitiesRequests.Load(); n != 1 {
		t.Fatalf("%d upstream capabilities fetches for %d requests, want 1 (cache)", n, len(forms))
	}
	if n := h.fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	doc := string(first)
	want := `template="` + h.credURL() + `/1.0.0/HxGN_Imagery/default/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.jpg"`
	if !strings.Contains(doc, want) {
		t.Fatalf("no proxy template %s in\n%s", want, doc)
	}
	if strings.Contains(doc, h.upstream.URL) || strings.Contains(doc, "hxgncontent") || strings.Contains(doc, "access_token") {
		t.Fatal("document still points at the upstream or names a token")
	}
	h.assertNoSecrets(first)

	// HEAD: headers only.
	resp, body := h.do(http.MethodHead, forms[0], nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != itoa(len(first)) {
		t.Fatalf("HEAD: %d, %d bytes, length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCapabilitiesCleanWhateverUpstreamWrites(t *testing.T) {
	h := newHarness(t, nil)
	h.fake.Set(fakehexagon.Switches{TokenInCapabilities: true, CapabilitiesBase: "request"})
	resp, body := h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	h.assertNoSecrets(body)
	if bytes.Contains(body, []byte("access_token")) || bytes.Contains(body, []byte(h.upstream.URL)) || bytes.Contains(body, []byte("wmts?/")) {
		t.Fatalf("upstream URL or token survived:\n%s", body)
	}
}

func TestPublicURL(t *testing.T) {
	h := newHarness(t, nil)
	fwd := map[string]string{"X-Forwarded-Host": "maps.example.org", "X-Forwarded-Proto": "https"}
	resp, body := h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", fwd)
	if !bytes.Contains(body, []byte(`template="https://maps.example.org/wmts/`)) {
		t.Fatalf("forwarded host not used:\n%.600s", body)
	}
	if v := strings.Join(resp.Header.Values("Vary"), ","); !strings.Contains(v, "X-Forwarded-Host") || !strings.Contains(v, "Origin") {
		t.Fatalf("Vary %q", v)
	}
	_, body = h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", map[string]string{"X-ARR-SSL": "1", "Host": "app.azurewebsites.net"})
	if !bytes.Contains(body, []byte(`template="https://app.azurewebsites.net/wmts/`)) {
		t.Fatal("X-ARR-SSL must mean https")
	}
	resp, body = h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", map[string]string{"X-Forwarded-Host": "evil.example/x?"})
	h.assertException(resp, body, 400, "InvalidParameterValue")

	fixed := newHarness(t, map[string]string{"PUBLIC_BASE_URL": "https://gis.example.org/hexprox"})
	_, body = fixed.get(fixed.credURL()+"/1.0.0/WMTSCapabilities.xml", map[string]string{"X-Forwarded-Host": "evil.example"})
	if bytes.Contains(body, []byte("evil.example")) || !bytes.Contains(body, []byte(`template="https://gis.example.org/hexprox/wmts/`)) {
		t.Fatalf("PUBLIC_BASE_URL must win over X-Forwarded-Host:\n%.800s", body)
	}
}

func TestRedirectForDesktopClients(t *testing.T) {
	h := newHarness(t, nil)
	for _, u := range []string{h.credURL() + tilePath, h.credURL() + kvpTile, h.credURL() + "/" + kvpTile + "&access_token=client-supplied"} {
		resp, _ := h.get(u, nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d cache-control %q", u, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || !loc.IsAbs() || loc.Host != strings.TrimPrefix(h.upstream.URL, "http://") {
			t.Fatalf("Location %q must be absolute and on the upstream", resp.Header.Get("Location"))
		}
		live, _, _ := h.fake.CurrentToken(clientID)
		if toks := loc.Query()["access_token"]; len(toks) != 1 || toks[0] != live {
			t.Fatalf("Location carries %v, want exactly the live token", toks)
		}
		// Following it gets the tile from the upstream.
		tile, err := http.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tile.Body)
		tile.Body.Close()
		if tile.StatusCode != 200 || !bytes.Equal(got, h.fake.JPEG()) {
			t.Fatalf("following the redirect: %d, %d bytes", tile.StatusCode, len(got))
		}
	}
	if resp, _ := h.do(http.MethodHead, h.credURL()+tilePath, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	if h.fake.TokenRequests.Load() != 1 || h.fake.TileRequests.Load() != 3 {
		t.Fatalf("token requests %d, tile requests %d", h.fake.TokenRequests.Load(), h.fake.TileRequests.Load())
	}
}

func TestStreamForAllowedBrowsers(t *testing.T) {
	h := newHarness(t, nil)
	for _, u := range []string{h.credURL() + tilePath, h.credURL() + kvpTile} {
		resp, body := h.get(u, map[string]string{"Origin": allowed})
		if resp.StatusCode != 200 || !bytes.Equal(body, h.fake.JPEG()) {
			t.Fatalf("%s: %d, %d bytes", u, resp.StatusCode, len(body))
		}
		hd := resp.Header
		if hd.Get("Content-Type") != "image/jpeg" || hd.Get("Content-Length") != itoa(len(body)) || hd.Get("ETag") == "" ||
			hd.Get("Cache-Control") != "public, max-age=86400" || hd.Get("Last-Modified") == "" {
			t.Fatalf("headers not passed through: %v", hd)
		}
		if hd.Get("Access-Control-Allow-Origin") != allowed || !strings.Contains(strings.Join(hd.Values("Vary"), ","), "Origin") {
			t.Fatalf("CORS headers missing: %v", hd)
		}
		if hd.Get("Set-Cookie") != "" {
			t.Fatal("an upstream cookie was passed on")
		}
		// Conditional request.
		resp, body = h.get(u, map[string]string{"Origin": allowed, "If-None-Match": hd.Get("ETag")})
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Fatalf("If-None-Match: %d, %d bytes", resp.StatusCode, len(body))
		}
	}
	// HEAD streams headers only.
	resp, body := h.do(http.MethodHead, h.credURL()+tilePath, map[string]string{"Origin": allowed})
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("HEAD stream: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestOriginPolicy(t *testing.T) {
	h := newHarness(t, map[string]string{"ALLOWED_ORIGINS": "https://*.arcgis.com,http://localhost:3000"})
	for _, o := range []string{"https://evil.example", "https://arcgis.com.evil.example", "null", "http://localhost:3001"} {
		resp, body := h.get(h.credURL()+tilePath, map[string]string{"Origin": o})
		h.assertException(resp, body, 403, "")
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("CORS header for refused origin %s", o)
		}
	}
	resp, body := h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", map[string]string{"Origin": "https://evil.example"})
	h.assertException(resp, body, 403, "")
	if h.fake.TokenRequests.Load()+h.fake.TileRequests.Load()+h.fake.CapabilitiesRequests.Load() != 0 {
		t.Fatal("a refused origin reached the upstream")
	}
	// The proxy's own origin (its landing page) is always allowed.
	resp, _ = h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", map[string]string{"Origin": h.proxy.URL})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != h.proxy.URL {
		t.Fatalf("same origin: %d %v", resp.StatusCode, resp.Header)
	}
	// Preflight.
	resp, _ = h.do(http.MethodOptions, h.credURL()+tilePath, map[string]string{"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "if-none-match"})
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") || resp.Header.Get("Access-Control-Allow-Headers") != "if-none-match" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// Requested headers that are not a plain list of names are not echoed
	// back: the preflight still answers, and allows no extra header.
	for _, bad := range []string{"x-a; y=<script>", "x-" + strings.Repeat("a,", 300)} {
		resp, _ = h.do(http.MethodOptions, h.credURL()+tilePath, map[string]string{"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": bad})
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Headers") != "" || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
			t.Fatalf("preflight asking for %.20q…: %d %v", bad, resp.StatusCode, resp.Header)
		}
	}
	resp, _ = h.do(http.MethodOptions, h.credURL()+tilePath, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Fatalf("OPTIONS without Origin: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = h.do(http.MethodOptions, h.credURL()+tilePath, map[string]string{"Origin": "https://evil.example"})
	h.assertException(resp, body, 403, "")
}

func TestTileModes(t *testing.T) {
	proxy := newHarness(t, map[string]string{"TILE_MODE": "proxy"})
	if resp, body := proxy.get(proxy.credURL()+tilePath, nil); resp.StatusCode != 200 || !bytes.Equal(body, proxy.fake.JPEG()) {
		t.Fatalf("TILE_MODE=proxy without Origin: %d", resp.StatusCode)
	}
	redirect := newHarness(t, map[string]string{"TILE_MODE": "redirect"})
	resp, _ := redirect.get(redirect.credURL()+tilePath, map[string]string{"Origin": allowed})
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Fatalf("TILE_MODE=redirect with Origin: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := redirect.get(redirect.credURL()+tilePath, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != 403 {
		t.Fatalf("refused origins stay refused in redirect mode: %d %s", resp.StatusCode, body)
	}
	off := newHarness(t, map[string]string{"CORS_HEADERS": "off"})
	resp, body := off.get(off.credURL()+tilePath, map[string]string{"Origin": allowed})
	if resp.StatusCode != 200 || !bytes.Equal(body, off.fake.JPEG()) || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS_HEADERS=off: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestRefusedCredential(t *testing.T) {
	h := newHarness(t, nil)
	bad := h.proxy.URL + "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode("wrong-secret")
	for _, u := range []string{bad + tilePath, bad + "/1.0.0/WMTSCapabilities.xml", bad + kvpTile} {
		resp, body := h.get(u, nil)
		rep := h.assertException(resp, body, 403, "")
		if !strings.Contains(rep.Exception.Text, "refused") || strings.Contains(string(body), "wrong-secret") {
			t.Fatalf("unclear or leaky refusal: %s", body)
		}
	}
	if n := h.fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("a refused credential made %d token requests, want 1 (cached refusal)", n)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	id, secret := credential.Encode(clientID), credential.Encode(clientSecret)
	base := h.proxy.URL + "/wmts/" + id + "/" + secret
	cases := []struct {
		path   string
		status int
		code   string
	}{
		{"/wmts/" + id, 400, "InvalidParameterValue"},
		{"/wmts/!!!/" + secret + tilePath, 400, "InvalidParameterValue"},
		{"/wmts/" + strings.Repeat("QUFB", 100) + "/" + secret + tilePath, 400, "InvalidParameterValue"},
		{"/wmts/" + credential.Encode("a\r\nb") + "/" + secret + tilePath, 400, "InvalidParameterValue"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/HxGN_Imagery/default/WebMercator/5/-1/2.jpg", 400, "InvalidParameterValue"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/HxGN_Imagery/default/WebMercator/x/1/2.jpg", 400, "InvalidParameterValue"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/HxGN_Imagery/default/WebMercator/5/1/2.exe", 400, "InvalidFormat"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/HxGN_Imagery/default/WebMercator/2/9/2.jpg", 400, "TileOutOfRange"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/%2e%2e/%2e%2e/WebMercator/5/1/2.jpg", 400, "InvalidParameterValue"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/HxGN_Imagery/default/WebMercator/5/1/2.jpg%0d%0aX-Evil:%201", 400, "InvalidParameterValue"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/@evil.example/default/WebMercator/5/1/2.jpg", 400, "InvalidParameterValue"},
		{"/wmts/" + id + "/" + secret + "/1.0.0/nothing-here", 404, "NoApplicableCode"},
		{"/wmts/" + id + "/" + secret + "?SERVICE=WMTS&REQUEST=GetTile&LAYER=HxGN_Imagery", 400, "MissingParameterValue"},
		{"/wmts/" + id + "/" + secret + "?SERVICE=WMTS&REQUEST=DescribeEverything", 400, "OperationNotSupported"},
		{"/wmts/" + id + "/" + secret + kvpTile + "&LAYER=http://evil.example/", 400, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		resp, body := h.get(h.proxy.URL+tc.path, nil)
		h.assertException(resp, body, tc.status, tc.code)
	}
	resp, body := h.do(http.MethodPost, base+tilePath, nil)
	h.assertException(resp, body, 405, "OperationNotSupported")
	if h.fake.TokenRequests.Load()+h.fake.TileRequests.Load() != 0 {
		t.Fatalf("bad input reached the upstream: %d token, %d tile requests", h.fake.TokenRequests.Load(), h.fake.TileRequests.Load())
	}
}

func TestConcurrentColdRequestsShareOneToken(t *testing.T) {
	h := newHarness(t, nil)
	h.fake.Set(fakehexagon.Switches{TokenDelay: 50 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hdr := map[string]string{}
			if i%2 == 0 {
				hdr["Origin"] = allowed
			}
			req, _ := http.NewRequest("GET", h.credURL()+tilePath, nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := h.client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 && resp.StatusCode != 302 {
				errs <- resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := h.fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("100 concurrent cold requests made %d token requests, want 1", n)
	}
}

func TestPostOnlyTokenEndpoint(t *testing.T) {
	h := newHarness(t, nil)
	h.fake.Set(fakehexagon.Switches{TokenMethods: "POST"})
	if resp, body := h.get(h.credURL()+tilePath, map[string]string{"Origin": allowed}); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestOtherRoutes(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.get(h.proxy.URL+"/healthz", nil)
	var health map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &health) != nil || health["status"] != "ok" || health["version"] != "test" || health["goroutines"].(float64) < 1 {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.get(h.proxy.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("/: %d", resp.StatusCode)
	}
	if resp, _ := h.do(http.MethodHead, h.proxy.URL+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("HEAD /: %d", resp.StatusCode)
	}
	for _, path := range []string{"/", "/healthz"} {
		resp, _ := h.do(http.MethodOptions, h.proxy.URL+path, nil)
		if resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Allow"), "GET") {
			t.Fatalf("OPTIONS %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	resp, body = h.get(h.proxy.URL+"/nope", nil)
	if resp.StatusCode != 404 || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
		t.Fatalf("unknown route: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func TestLandingPage(t *testing.T) {
	h := newHarness(t, nil)
	resp, body := h.get(h.proxy.URL+"/", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" || !bytes.Contains(body, []byte("HexProx test")) {
		t.Fatalf("landing page: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = h.do(http.MethodHead, h.proxy.URL+"/", nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("HEAD /: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// TestRequestLogLine pins what each request's log line says: route, mode,
// status, upstream status and latency, and a credential fingerprint.
func TestRequestLogLine(t *testing.T) {
	h := newHarness(t, nil)
	h.get(h.credURL()+tilePath+"?access_token=client-token", nil)
	h.get(h.credURL()+tilePath, map[string]string{"Origin": allowed})
	// A streamed response reaches the client before its handler returns
	// and logs: wait for the line.
	for deadline := time.Now().Add(5 * time.Second); strings.Count(h.logs.String(), `"msg":"request"`) < 2 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON log line: %s", l)
		}
		if m["msg"] == "request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("want 2 request lines, got %d", len(lines))
	}
	fp := credential.Credential{ID: clientID, Secret: clientSecret}.Fingerprint("")
	redirect, stream := lines[0], lines[1]
	for _, l := range lines {
		if l["route"] != "wmts" || l["method"] != "GET" || l["cred"] != fp || l["path"] != tilePath || l["latency_ms"] == nil {
			t.Fatalf("log line lacks route, method, fingerprint, path or latency: %v", l)
		}
	}
	if redirect["mode"] != "redirect" || redirect["status"] != 302.0 || redirect["query"] != "access_token=REDACTED" {
		t.Fatalf("redirect line: %v", redirect)
	}
	if stream["mode"] != "stream" || stream["status"] != 200.0 || stream["upstream_status"] != 200.0 || stream["upstream_ms"] == nil || stream["retried"] != false {
		t.Fatalf("stream line: %v", stream)
	}
}

// A REST tile ignores its query, however malformed (clients append cache
// busters and their own tokens); the KVP form, which reads its query,
// refuses a malformed one in the client's format.
func TestMalformedQueryMattersOnlyToKVP(t *testing.T) {
	h := newHarness(t, nil)
	if resp, _ := h.get(h.credURL()+tilePath+"?_=%zz&x=%", nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("REST tile with a malformed query: %d, want 302", resp.StatusCode)
	}
	resp, body := h.get(h.credURL()+"?SERVICE=WMTS&REQUEST=GetTile&LAYER=%zz", nil)
	h.assertException(resp, body, http.StatusBadRequest, "InvalidParameterValue")
}

// With TOKEN_HASH_KEY, a credential's fingerprint in logs and usage is
// keyed: a reader of the logs or the usage table cannot test a guessed
// secret against it.
func TestFingerprintsAreKeyedWithTokenHashKey(t *testing.T) {
	h := newHarness(t, map[string]string{"TOKEN_HASH_KEY": "deployment-secret-key"})
	cred := credential.Credential{ID: clientID, Secret: clientSecret}
	for range 2 { // the first is accepted by Hexagon; the second is counted from the start
		if resp, _ := h.get(h.credURL()+tilePath, nil); resp.StatusCode != http.StatusFound {
			t.Fatalf("tile: %d", resp.StatusCode)
		}
	}
	waitForLines(t, h, `"msg":"request"`, 2)
	logs := h.logs.String()
	keyed, plain := cred.Fingerprint("deployment-secret-key"), cred.Fingerprint("")
	if !strings.Contains(logs, `"cred":"`+keyed+`"`) || strings.Contains(logs, plain) {
		t.Fatalf("want the keyed fingerprint %s in the logs, never the plain %s:\n%s", keyed, plain, logs)
	}
	// A key's fingerprint likewise.
	key := h.addKey(keys.Record{Org: "Keyed County"})
	if resp, _ := h.get(h.keyURL(key)+tilePath, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("key tile: %d", resp.StatusCode)
	}
	waitForLines(t, h, `"org":"Keyed County"`, 1)
	keyKeyed, keyPlain := keys.Fingerprint(key, "deployment-secret-key"), keys.Fingerprint(key, "")
	if logs := h.logs.String(); !strings.Contains(logs, `"key":"`+keyKeyed+`"`) || strings.Contains(logs, keyPlain) {
		t.Fatalf("want the key's keyed fingerprint %s in the logs, never the plain %s:\n%s", keyKeyed, keyPlain, logs)
	}
	rows := h.app.Usage.Snapshot(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if len(rows) != 2 {
		t.Fatalf("want rows for the credential and the key, got %+v", rows)
	}
	for _, r := range rows {
		if r.SubjectID.Key != keyed && r.SubjectID.Key != keyKeyed {
			t.Fatalf("counted under %q, want a keyed fingerprint (%q or %q)", r.SubjectID.Key, keyed, keyKeyed)
		}
	}
}
