package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/filestore"
	"github.com/hexprox/hexprox/internal/server"
	"github.com/hexprox/hexprox/internal/usage"
)

// benchServer returns a proxy with a warm token for the test credential,
// logging to nowhere, counting nothing, and the credential's path prefix.
func benchServer(b *testing.B) (*server.Server, string) {
	b.Helper()
	return benchServerWith(b, nil, nil)
}

// benchServerWith is benchServer with settings (over USAGE off and
// GUESS_LIMIT 0) and a last say over the app's options.
func benchServerWith(b *testing.B, env map[string]string, tweak func(*app.Options)) (*server.Server, string) {
	b.Helper()
	a, prefix := benchApp(b, env, tweak)
	return a.Server, prefix
}

// benchApp is benchServerWith's app.
func benchApp(b *testing.B, env map[string]string, tweak func(*app.Options)) (*app.App, string) {
	b.Helper()
	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient(clientID, clientSecret)
	up := httptest.NewServer(fake)
	b.Cleanup(up.Close)
	vars := map[string]string{"HEXAGON_URL": up.URL, "USAGE": "off", "GUESS_LIMIT": "0"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		b.Fatal(err)
	}
	o := app.Options{LogOut: io.Discard, Version: "bench"}
	if tweak != nil {
		tweak(&o)
	}
	a, err := app.New(cfg, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(context.Background()) })
	prefix := "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	warm := httptest.NewRecorder()
	a.Server.ServeHTTP(warm, httptest.NewRequest("GET", prefix+tilePath, nil))
	if warm.Code != http.StatusFound {
		b.Fatalf("warm-up: %d", warm.Code)
	}
	return a, prefix
}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the proxy and not the recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchRedirect(b *testing.B, target string) { benchRedirectWith(b, target, nil, nil) }

func benchRedirectWith(b *testing.B, target string, env map[string]string, tweak func(*app.Options)) {
	s, prefix := benchServerWith(b, env, tweak)
	req := httptest.NewRequest("GET", prefix+target, nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
	if w.h.Get("Location") == "" {
		b.Fatal("no redirect")
	}
}

// BenchmarkRedirectREST is the whole desktop tile path: routing, credential
// decode, token lookup, URL build, the 302 and its log line.
func BenchmarkRedirectREST(b *testing.B) { benchRedirect(b, tilePath) }

// counting is the app's usage counter as main wires it (USAGE on), but
// counting into memory and flushing nothing during the run.
var counting = map[string]string{"USAGE": "on"}

func countIntoMemory(o *app.Options) {
	o.Usage = usage.Options{Sink: &usage.MemorySink{}, Flush: time.Hour}
}

// BenchmarkRedirectRESTCounted is the same with usage counting on, as main
// wires it (the counter's loop runs; nothing is flushed during the run).
func BenchmarkRedirectRESTCounted(b *testing.B) {
	benchRedirectWith(b, tilePath, counting, countIntoMemory)
}

// BenchmarkCount is what counting adds to a redirect: finding the
// credential's subject and one increment.
func BenchmarkCount(b *testing.B) {
	a, _ := benchApp(b, counting, countIntoMemory)
	count := a.Server.RedirectCounter(a.Server.Creds().Get(credential.Credential{ID: clientID, Secret: clientSecret}))
	b.ReportAllocs()
	for b.Loop() {
		count()
	}
	if rows := a.Usage.Snapshot(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)); len(rows) != 1 || rows[0].Counts[usage.TilesRedirected] < int64(b.N) {
		b.Fatalf("not every count counted: %+v", rows)
	}
}

// BenchmarkRedirectKVP is the same for a KVP GetTile (QGIS, OWSLib).
func BenchmarkRedirectKVP(b *testing.B) { benchRedirect(b, kvpTile) }

// BenchmarkCapabilitiesCached serves the rewritten document from the cache.
func BenchmarkCapabilitiesCached(b *testing.B) {
	s, prefix := benchServer(b)
	req := httptest.NewRequest("GET", prefix+"/1.0.0/WMTSCapabilities.xml", nil)
	w := &discardWriter{h: http.Header{}}
	s.ServeHTTP(w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
}

// BenchmarkDecodeAndLookup is the per-request credential work: decode the
// two path segments and find the warm token.
func BenchmarkDecodeAndLookup(b *testing.B) {
	s, prefix := benchServer(b)
	path := prefix[len("/wmts/"):] + tilePath
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cred, _, err := credential.FromPath(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Creds().Get(cred).Tokens.TokenContext(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStream drives handler over real loopback HTTP with parallel clients
// fetching path, each response a full tile.
func benchStream(b *testing.B, handler http.Handler, path string, hdr http.Header, tileLen int) {
	srv := httptest.NewServer(handler)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetBytes(int64(tileLen))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+path, nil)
			req.Header = hdr
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || int(n) != tileLen {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
}

// BenchmarkStream is a browser's tile through HexProx over loopback.
func BenchmarkStream(b *testing.B) {
	s, prefix := benchServer(b)
	benchStream(b, s, prefix+tilePath, http.Header{"Origin": {allowed}}, 24307)
}

// BenchmarkStreamBaseline is the same tile through a bare
// httputil.ReverseProxy to the same kind of upstream, for comparison.
func BenchmarkStreamBaseline(b *testing.B) {
	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient(clientID, clientSecret)
	up := httptest.NewServer(fake)
	defer up.Close()
	resp, err := http.Get(up.URL + fakehexagon.TokenPath + "?grant_type=client_credentials&client_id=" + url.QueryEscape(clientID) + "&client_secret=" + url.QueryEscape(clientSecret))
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	target, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	benchStream(b, rp, "/streaming/wmts?/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg&access_token="+url.QueryEscape(tok.AccessToken), nil, len(fake.JPEG()))
}

// BenchmarkRedirectKey is BenchmarkRedirectREST through a /v2 API key
// whose record opts in to redirects (keys stream their tiles otherwise).
func BenchmarkRedirectKey(b *testing.B) {
	path, key := benchKeyFile(b, keys.Record{Org: "Bench", Enabled: true, Redirect: true, Sets: []credential.Credential{{ID: clientID, Secret: clientSecret}}})
	s, _ := benchServerWith(b, map[string]string{"KEYS_FILE": path}, nil)
	req := httptest.NewRequest("GET", "/v2/wmts/"+key+tilePath, nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
	if w.h.Get("Location") == "" {
		b.Fatal("no redirect")
	}
}

// BenchmarkStreamProvider is BenchmarkStream for a /v2 key that names
// Planet: the pass-through form (the path checked by provider.PassPath,
// the client's credential parameters dropped, the key placed, the
// relayed headers checked for it), against the fake Planet's tiles host.
func BenchmarkStreamProvider(b *testing.B) {
	fake := planet.New(planet.Options{APIBase: "request"})
	fake.AddKey("PLAK-bench-0123456789abcdef")
	tiles := httptest.NewServer(fake.Tiles)
	defer tiles.Close()
	path, key := benchKeyFile(b, keys.Record{Org: "Bench", Enabled: true, Provider: "planet",
		Sets: []credential.Credential{{Provider: "planet", Secret: "PLAK-bench-0123456789abcdef"}}})
	s, _ := benchServerWith(b, map[string]string{"KEYS_FILE": path, "PROVIDER_PLANET_TILES_URL": tiles.URL}, nil)
	tile := "/v2/wmts/" + key + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[1] + "/gmap/3/2/1.png"
	benchStream(b, s, tile, http.Header{"Origin": {allowed}}, len(fake.PNG()))
}

// benchKeyFile writes a KEYS_FILE holding one new key with rec, and
// returns the file and the key.
func benchKeyFile(b *testing.B, rec keys.Record) (path, key string) {
	b.Helper()
	path = filepath.Join(b.TempDir(), "keys.json")
	if err := filestore.Init(path); err != nil {
		b.Fatal(err)
	}
	store, err := filestore.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	key, _ = keys.New()
	if err := store.Create(context.Background(), key, rec); err != nil {
		b.Fatal(err)
	}
	return path, key
}
