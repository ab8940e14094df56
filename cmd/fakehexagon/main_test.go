package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/filestore"
)

// demoOutput is what setup printed, picked apart.
type demoOutput struct {
	credURL, command, wmts, wms, about string
	key                                string
}

func runSetup(t *testing.T, args ...string) (*http.Server, demoOutput) {
	t.Helper()
	var out bytes.Buffer
	srv, err := setup(args, &out)
	if err != nil {
		t.Fatalf("setup %v: %v\n%s", args, err, out.String())
	}
	text := out.String()
	find := func(re string) string {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s in the output:\n%s", re, text)
		}
		return m[1]
	}
	d := demoOutput{
		credURL: find(`(?m)^  (http://\S+/wmts/\S+)$`),
		command: find(`(?m)^  (HEXAGON_URL=.* go run \.)$`),
		wmts:    find(`(?m)^  WMTS +(\S+)$`),
		wms:     find(`(?m)^  WMS +(\S+)$`),
		about:   find(`(?m)^  about +(\S+)$`),
	}
	d.key = strings.TrimPrefix(d.about, "http://localhost:8080/about/")
	return srv, d
}

func TestDemoKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo-keys.json")
	srv, d := runSetup(t, "-keys-file", path, "-addr", "127.0.0.1:9191")

	// The printed URLs parse and name one new-style key.
	if err := keys.Check(d.key); err != nil || !strings.HasPrefix(d.key, keys.Prefix) || len(d.key) != 48 {
		t.Fatalf("the demo key %q is not one keys.New makes", d.key)
	}
	for u, want := range map[string]string{
		d.wmts:    "/v2/wmts/" + d.key + "/1.0.0/WMTSCapabilities.xml",
		d.wms:     "/v2/wms/" + d.key,
		d.about:   "/about/" + d.key,
		d.credURL: "/wmts/" + credential.Encode("demo-client") + "/" + credential.Encode("demo-secret") + "/1.0.0/WMTSCapabilities.xml",
	} {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "http" || p.Host != "localhost:8080" || p.EscapedPath() != want {
			t.Fatalf("printed URL %q: want path %q (%v)", u, want, err)
		}
	}
	if want := "HEXAGON_URL=http://127.0.0.1:9191 KEYS_FILE=" + path + " go run ."; d.command != want {
		t.Fatalf("printed command %q, want %q", d.command, want)
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

// The printed command is all a newcomer needs: with only HEXAGON_URL and
// KEYS_FILE set, the settings choose the file store, and a proxy built as
// main builds one (app.New) serves the printed /v2 URLs from the fake.
func TestDemoKeyServesThroughTheProxy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo-keys.json")
	srv, d := runSetup(t, "-keys-file", path)
	fake := httptest.NewServer(srv.Handler)
	defer fake.Close()

	env := map[string]string{"HEXAGON_URL": fake.URL, "KEYS_FILE": path}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Keys.Store != config.KeysFile || cfg.Keys.File != path {
		t.Fatalf("HEXAGON_URL and KEYS_FILE alone give key store %q on %q, want the file", cfg.Keys.Store, cfg.Keys.File)
	}
	var logs bytes.Buffer
	cfg.UsageDir = t.TempDir()
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
	if resp, _ := get(local(strings.TrimSuffix(d.wmts, "/1.0.0/WMTSCapabilities.xml") + "/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg")); resp.StatusCode != http.StatusOK ||
		resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("a demo key tile, streamed: %d", resp.StatusCode)
	}
	if resp, body := get(local(d.wms) + "?SERVICE=WMS&REQUEST=GetCapabilities"); resp.StatusCode != 200 || !strings.Contains(body, proxy.URL+"/v2/wms/"+d.key) {
		t.Fatalf("the demo WMS URL: %d\n%.600s", resp.StatusCode, body)
	}
	resp, body = get(local(d.about))
	var about map[string]any
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &about) != nil || about["org"] != "Demo organisation" || about["status"] != "active" {
		t.Fatalf("the demo about URL: %d %s", resp.StatusCode, body)
	}
	for _, s := range []string{d.key, "demo-secret", credential.Encode("demo-secret")} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("the proxy's logs carry %q", s)
		}
	}
}
