package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/filestore"
	"github.com/hexprox/hexprox/internal/usage"
)

// demoOutput is what setup printed, picked apart.
type demoOutput struct {
	command                              string // the proxy's settings, then "go run ."
	credWMTS, credTile, credWMS, credMap string
	wmts, tile, wms, mapURL, about       string // the API key's ("" with no keys file)
	key                                  string
}

// env is the settings the printed command sets.
func (d demoOutput) env() map[string]string {
	env := map[string]string{}
	for _, kv := range strings.Fields(strings.TrimSuffix(d.command, " go run .")) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// images are the printed URLs that answer an image.
func (d demoOutput) images() []string {
	return slices.DeleteFunc([]string{d.credTile, d.credMap, d.tile, d.mapURL}, func(u string) bool { return u == "" })
}

func runSetup(t *testing.T, args ...string) (*http.Server, demoOutput) {
	t.Helper()
	var out bytes.Buffer
	srv, err := setup(args, &out)
	if err != nil {
		t.Fatalf("setup %v: %v\n%s", args, err, out.String())
	}
	text := out.String()
	m := regexp.MustCompile(`(?m)^  (HEXAGON_URL=.* go run \.)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no command in the output:\n%s", text)
	}
	d := demoOutput{command: m[1]}
	var urls []string
	for _, m := range regexp.MustCompile(`(?m)^  (?:WMTS|tile|WMS|map|about) +(\S+)$`).FindAllStringSubmatch(text, -1) {
		urls = append(urls, m[1])
	}
	switch len(urls) {
	case 9:
		d.wmts, d.tile, d.wms, d.mapURL, d.about = urls[4], urls[5], urls[6], urls[7], urls[8]
		d.key = strings.TrimPrefix(d.about, "http://localhost:8080/about/")
		fallthrough
	case 4:
		d.credWMTS, d.credTile, d.credWMS, d.credMap = urls[0], urls[1], urls[2], urls[3]
	default:
		t.Fatalf("want 4 credential URLs and 5 API key URLs (or none), got %d:\n%s", len(urls), text)
	}
	return srv, d
}

func TestDemoKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo-keys.json")
	srv, d := runSetup(t, "-keys-file", path, "-addr", "127.0.0.1:9191")

	// The printed URLs parse and name one new-style key.
	if err := keys.Check(d.key); err != nil || !strings.HasPrefix(d.key, keys.Prefix) || len(d.key) != 48 {
		t.Fatalf("the demo key %q is not one keys.New makes", d.key)
	}
	cred := "/wmts/" + credential.Encode("demo-client") + "/" + credential.Encode("demo-secret")
	credWMS := "/wms/" + credential.Encode("demo-client") + "/" + credential.Encode("demo-secret")
	const tile = "/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg"
	for u, want := range map[string]string{
		d.wmts:     "/v2/wmts/" + d.key + "/1.0.0/WMTSCapabilities.xml",
		d.tile:     "/v2/wmts/" + d.key + tile,
		d.wms:      "/v2/wms/" + d.key,
		d.mapURL:   "/v2/wms/" + d.key,
		d.about:    "/about/" + d.key,
		d.credWMTS: cred + "/1.0.0/WMTSCapabilities.xml",
		d.credTile: cred + tile,
		d.credWMS:  credWMS,
		d.credMap:  credWMS,
	} {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "http" || p.Host != "localhost:8080" || p.EscapedPath() != want {
			t.Fatalf("printed URL %q: want path %q (%v)", u, want, err)
		}
	}
	if q, _ := url.ParseQuery(strings.SplitN(d.mapURL, "?", 2)[1]); q.Get("REQUEST") != "GetMap" || q.Get("LAYERS") != fakehexagon.Layer {
		t.Fatalf("the printed map URL is not a GetMap of the fake's layer: %s", d.mapURL)
	}
	usageDir := filepath.Join(os.TempDir(), "hexprox-demo-usage")
	if want := "HEXAGON_URL=http://127.0.0.1:9191 KEYS_FILE=" + path + " USAGE_DIR=" + usageDir + " LISTEN_ADDRESS=127.0.0.1 go run ."; d.command != want {
		t.Fatalf("printed command %q, want %q", d.command, want)
	}
	if _, d := runSetup(t, "-keys-file", path, "-proxy", "http://maps.example.org:8080"); strings.Contains(d.command, "LISTEN_ADDRESS") {
		t.Fatalf("a proxy reached at another host is told to listen on loopback: %s", d.command)
	}

	// The file holds the demo record, readable by the proxy's file store,
	// and nobody else can read it.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys file mode %v, want 0600", fi.Mode().Perm())
	}
	store, err := filestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(context.Background(), d.key)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Org != "Demo organisation" || rec.Contact != "you@example.org" || rec.Status(time.Now()) != keys.Active ||
		len(rec.Sets) != 1 || rec.Sets[0] != (credential.Credential{ID: "demo-client", Secret: "demo-secret"}) {
		t.Fatalf("demo record: %+v", rec)
	}

	// The fake it serves accepts the record's credential: the key works
	// end to end once a proxy runs with this file.
	fake := httptest.NewServer(srv.Handler)
	defer fake.Close()
	resp, err := http.Get(fake.URL + fakehexagon.TokenPath + "?grant_type=client_credentials&client_id=" +
		url.QueryEscape(rec.Sets[0].ID) + "&client_secret=" + url.QueryEscape(rec.Sets[0].Secret))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tok) != nil || tok.AccessToken == "" {
		t.Fatalf("the fake refused the demo record's credential: %d", resp.StatusCode)
	}
}

// A second run reuses the key (saved demo URLs keep working) and rewrites
// its record for that run's client; other records are left alone.
func TestDemoKeyAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo-keys.json")
	_, first := runSetup(t, "-keys-file", path)
	store, err := filestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Someone revoked the demo key and added a key of their own meanwhile.
	rec, err := store.Get(ctx, first.key)
	if err != nil {
		t.Fatal(err)
	}
	rec.Enabled = false
	if err := store.Update(ctx, first.key, rec); err != nil {
		t.Fatal(err)
	}
	own := keys.Record{Org: "Mine", Enabled: true, Sets: []credential.Credential{{ID: "mine", Secret: "my-secret"}}}
	if err := store.Create(ctx, "my-own-key", own); err != nil {
		t.Fatal(err)
	}

	_, second := runSetup(t, "-keys-file", path, "-client-id", "other-client", "-client-secret", "other-secret")
	if second.key != first.key {
		t.Fatalf("a second run made a new key %q; want %q again", second.key, first.key)
	}
	store, err = filestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("want the demo key and one other, got %d records", len(entries))
	}
	rec, err = store.Get(ctx, first.key)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status(time.Now()) != keys.Active || len(rec.Sets) != 1 || rec.Sets[0].ID != "other-client" || rec.Sets[0].Secret != "other-secret" {
		t.Fatalf("the second run's record: %+v", rec)
	}
	if mine, err := store.Get(ctx, "my-own-key"); err != nil || mine.Org != "Mine" || mine.Sets[0].Secret != "my-secret" {
		t.Fatalf("another record was changed: %+v %v", mine, err)
	}
}

func TestNoDemoKey(t *testing.T) {
	var out bytes.Buffer
	if _, err := setup([]string{"-keys-file="}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "/v2/") || !strings.Contains(out.String(), "/wmts/") {
		t.Fatalf("-keys-file= should print the credential URL only:\n%s", out.String())
	}
}

func TestBrokenKeysFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo-keys.json")
	if err := os.WriteFile(path, []byte(`{"broken": `), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err := setup([]string{"-keys-file", path}, &out)
	if err == nil || !strings.Contains(err.Error(), "-keys-file") {
		t.Fatalf("a broken keys file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"broken": ` {
		t.Fatalf("a file it cannot read was overwritten: %q", b)
	}
}

// The printed command is all a newcomer needs: with only the settings it
// prints, the settings choose the file store, and a proxy built as main
// builds one (app.New) serves the printed URLs from the fake, each tile
// and map URL an image at once; the demo's usage rows go to the printed
// USAGE_DIR.
func TestDemoKeyServesThroughTheProxy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo-keys.json")
	usageDir := filepath.Join(t.TempDir(), "usage")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, d := runSetup(t, "-keys-file", path, "-usage-dir", usageDir, "-addr", ln.Addr().String())
	go srv.Serve(ln)
	defer srv.Close()

	env := d.env()
	if env["HEXAGON_URL"] != "http://"+ln.Addr().String() || env["USAGE_DIR"] != usageDir || len(env) != 4 {
		t.Fatalf("the printed command sets %v", env)
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Keys.Store != config.KeysFile || cfg.Keys.File != path {
		t.Fatalf("the printed settings give key store %q on %q, want the file", cfg.Keys.Store, cfg.Keys.File)
	}
	var logs bytes.Buffer
	a, err := app.New(cfg, app.Options{LogOut: &logs, UnbufferedLogs: true, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	proxy := httptest.NewServer(a.Server)
	defer proxy.Close()
	local := func(u string) string { return strings.Replace(u, "http://localhost:8080", proxy.URL, 1) }
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp, b.String()
	}

	resp, body := get(local(d.wmts))
	if resp.StatusCode != 200 || !strings.Contains(body, `template="`+proxy.URL+"/v2/wmts/"+d.key+"/1.0.0/HxGN_Imagery/") {
		t.Fatalf("the demo WMTS URL: %d\n%.600s", resp.StatusCode, body)
	}
	// What curl -L does: follow a credential URL's redirect to the fake.
	for _, u := range d.images() {
		resp, err := http.Get(local(u))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.HasPrefix(body, []byte{0xff, 0xd8, 0xff}) {
			t.Fatalf("the printed image URL %s: %d %q, %d bytes", u, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
	if len(d.images()) != 4 {
		t.Fatalf("want a tile and a map URL for each form, got %v", d.images())
	}
	if resp, body := get(local(d.wms) + "?SERVICE=WMS&REQUEST=GetCapabilities"); resp.StatusCode != 200 || !strings.Contains(body, proxy.URL+"/v2/wms/"+d.key) {
		t.Fatalf("the demo WMS URL: %d\n%.600s", resp.StatusCode, body)
	}
	resp, body = get(local(d.about))
	var about map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &about) != nil || about["org"] != "Demo organisation" || about["status"] != "active" {
		t.Fatalf("the demo about URL: %d %s", resp.StatusCode, body)
	}
	// The usage rows are the demo's own.
	proxy.Close()
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := (&usage.DirSink{Dir: usageDir}).Read(context.Background(), usage.Query{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
	if err != nil || len(rows) == 0 {
		t.Fatalf("no usage rows in the printed USAGE_DIR: %v %v", rows, err)
	}
	for _, s := range []string{d.key, "demo-secret", credential.Encode("demo-secret")} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("the proxy's logs carry %q", s)
		}
	}
}
