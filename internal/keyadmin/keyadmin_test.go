package keyadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/fakekeyvault"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/filestore"
	"github.com/hexprox/hexprox/internal/keys/keystore"
	"github.com/hexprox/hexprox/internal/keys/keyvault"
	"github.com/hexprox/hexprox/internal/keys/storetest"
	"github.com/hexprox/hexprox/internal/provider"
)

// harness is one store the CLI runs against end to end.
type harness struct {
	name  string
	env   map[string]string
	open  func(ctx context.Context, s Settings) (keys.Store, error)
	store keys.Store           // a separate handle, for assertions
	kv    *fakekeyvault.Server // nil for the file store
	file  string               // "" for Key Vault
	opens *int                 // how often the CLI opened a store
	saw   *[]Settings          // the settings it opened with
	hex   *fakehexagon.Fake    // HEXAGON_URL, which new credentials are checked with
}

// refusedSecret starts the secrets the harness's Hexagon refuses; it
// accepts every other pair.
const refusedSecret = "refused-"

// withHexagon gives h a fake Hexagon at HEXAGON_URL.
func withHexagon(t *testing.T, h *harness) *harness {
	h.hex = fakehexagon.New(fakehexagon.Options{})
	h.hex.AcceptClients(func(id, secret string) bool { return !strings.HasPrefix(secret, refusedSecret) })
	srv := httptest.NewServer(h.hex)
	t.Cleanup(srv.Close)
	h.env["HEXAGON_URL"] = srv.URL
	return h
}

func newVaultHarness(t *testing.T) *harness {
	t.Helper()
	kv := fakekeyvault.New()
	t.Cleanup(kv.Close)
	openKV := func(url string) (keys.Store, error) {
		return keyvault.Open(keyvault.Options{
			VaultURL: url, Credential: kv.Credential(), Transport: kv.Client(),
			Retry: policy.RetryOptions{MaxRetries: -1},
		})
	}
	store, err := openKV(kv.VaultURL())
	if err != nil {
		t.Fatal(err)
	}
	h := withHexagon(t, &harness{name: "keyvault", kv: kv, store: store, opens: new(int), saw: new([]Settings),
		// KEY_VAULT_NAME=hexprox-test is the fake's own vault URL.
		env: map[string]string{"KEY_STORE": "keyvault", "KEY_VAULT_NAME": "hexprox-test"}})
	h.open = func(ctx context.Context, s Settings) (keys.Store, error) {
		*h.opens++
		*h.saw = append(*h.saw, s)
		if s.Kind != StoreKeyVault || s.VaultURL != kv.VaultURL() {
			return nil, fmt.Errorf("test: opened %+v, want the fake vault", s)
		}
		return openKV(s.VaultURL)
	}
	return h
}

func newFileHarness(t *testing.T) *harness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	h := withHexagon(t, &harness{name: "file", file: path, opens: new(int), saw: new([]Settings),
		env: map[string]string{"KEY_STORE": "file", "KEYS_FILE": path}})
	h.open = func(ctx context.Context, s Settings) (keys.Store, error) {
		*h.opens++
		*h.saw = append(*h.saw, s)
		return keystore.Open(ctx, s) // the real opening, file creation included
	}
	return h
}

// assertStore returns the harness's store for assertions; the file store
// is opened after the CLI has created the file.
func (h *harness) assertStore(t *testing.T) keys.Store {
	t.Helper()
	if h.store != nil {
		return h.store
	}
	// Look at the file on every read: the CLI writes it behind this handle's back.
	s, err := filestore.Open(h.file, filestore.WithCheckEvery(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	h.store = s
	return s
}

func bothStores(t *testing.T, f func(t *testing.T, h *harness)) {
	for _, mk := range []func(*testing.T) *harness{newVaultHarness, newFileHarness} {
		h := mk(t)
		t.Run(h.name, func(t *testing.T) { f(t, h) })
	}
}

type result struct {
	out, errOut string
	err         error
}

// all is everything the CLI showed the admin: stdout, stderr and the error.
func (r result) all() string {
	s := r.out + r.errOut
	if r.err != nil {
		s += r.err.Error()
	}
	return s
}

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// settings gives env the harness's settings as main does: the key store
// resolved from them as the server would, and PUBLIC_BASE_URL.
func (h *harness) settings(env Env) Env {
	getenv := func(k string) string { return h.env[k] }
	env.Keys = func() (config.Keys, error) { return config.LoadKeys(getenv) }
	env.Providers = func() (provider.Catalog, error) { return config.LoadProviders(getenv) }
	env.PublicBaseURL, env.HexagonURL, env.HashKey = h.env["PUBLIC_BASE_URL"], h.env["HEXAGON_URL"], h.env["TOKEN_HASH_KEY"]
	return env
}

func (h *harness) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return h.runPrompted(t, stdin, nil, args...)
}

// runPrompted runs the CLI with readSecret as its no-echo prompt (nil:
// secrets come from stdin).
func (h *harness) runPrompted(t *testing.T, stdin string, readSecret func(prompt string) (string, error), args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	env := h.settings(Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Open: h.open, ReadSecret: readSecret,
		Now: func() time.Time { return now },
	})
	err := Run(context.Background(), args, env)
	return result{out.String(), errOut.String(), err}
}

func (h *harness) mustRun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := h.run(t, stdin, args...)
	if r.err != nil {
		t.Fatalf("keys %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.out, r.errOut)
	}
	return r
}

var keyPattern = regexp.MustCompile(`hxpk-[0-9A-Za-z]{43}`)

// newKey runs keys new and returns the key it printed.
func (h *harness) newKey(t *testing.T, stdin string, args ...string) (string, result) {
	t.Helper()
	r := h.mustRun(t, stdin, append([]string{"new"}, args...)...)
	found := keyPattern.FindAllString(r.out, -1)
	if len(found) == 0 {
		t.Fatalf("no key in the output:\n%s", r.out)
	}
	for _, k := range found {
		if k != found[0] {
			t.Fatalf("two different keys in the output:\n%s", r.out)
		}
	}
	return found[0], r
}

// raw returns the key's stored JSON: the vault secret's value, or the
// file's member.
func (h *harness) raw(t *testing.T, key string) map[string]any {
	t.Helper()
	var data []byte
	if h.kv != nil {
		sec, ok := h.kv.Secret(keys.SecretPrefix + key)
		if !ok {
			t.Fatalf("no secret for the key")
		}
		data = []byte(sec.Value)
	} else {
		b, err := os.ReadFile(h.file)
		if err != nil {
			t.Fatal(err)
		}
		var file map[string]json.RawMessage
		if err := json.Unmarshal(b, &file); err != nil {
			t.Fatal(err)
		}
		data = file[key]
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("stored record is not JSON: %v", err)
	}
	return m
}

// sets returns the stored sets as client_id → client_secret, checking the
// original's layout: count equal to len(sets), org and contact strings.
func checkLayout(t *testing.T, m map[string]any) [][2]string {
	t.Helper()
	sets, ok := m["sets"].([]any)
	if !ok || len(sets) == 0 {
		t.Fatalf("sets: %T", m["sets"])
	}
	if c, ok := m["count"].(float64); !ok || int(c) != len(sets) {
		t.Errorf("count %v, want %d", m["count"], len(sets))
	}
	for _, f := range []string{"org", "contact"} {
		if _, ok := m[f].(string); !ok {
			t.Errorf("%s is %T, want a string", f, m[f])
		}
	}
	var out [][2]string
	for i, s := range sets {
		o, ok := s.(map[string]any)
		id, ok1 := o["client_id"].(string)
		sec, ok2 := o["client_secret"].(string)
		if !ok || !ok1 || !ok2 {
			t.Fatalf("sets[%d] is not {client_id, client_secret}", i)
		}
		out = append(out, [2]string{id, sec})
	}
	return out
}

func assertNoLeak(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(r.all(), s) {
			t.Errorf("output carries a secret (%d bytes):\n%s", len(s), r.all())
		}
	}
}

func TestNewStoresTheOriginalsLayout(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "hexagon-secret-" + storetest.Key(t)
		key, r := h.newKey(t, secret+"\n",
			"--org", "Marin County", "--contact", "gis@marin.example", "--client-id", "marin-client",
			"--origin", "https://marin.maps.arcgis.com", "--origin", "https://*.marin.gov",
			"--expires", "2030-01-31", "--note", "ticket 7", "--rate", "5", "--burst", "10", "--daily", "100000",
			"--base-url", "https://hexprox.example.net/")
		assertNoLeak(t, r, secret, "marin-client")

		for _, want := range []string{
			"https://hexprox.example.net/v2/wmts/" + key + "/1.0.0/WMTSCapabilities.xml",
			"https://hexprox.example.net/v2/wms/" + key + "\n",
			"https://hexprox.example.net/about/" + key + "\n",
		} {
			if !strings.Contains(r.out, want) {
				t.Errorf("output lacks %q:\n%s", want, r.out)
			}
		}
		m := h.raw(t, key)
		sets := checkLayout(t, m)
		if len(sets) != 1 || sets[0] != [2]string{"marin-client", secret} {
			t.Errorf("stored sets %d, first id %q", len(sets), sets[0][0])
		}
		if m["org"] != "Marin County" || m["contact"] != "gis@marin.example" || m["note"] != "ticket 7" {
			t.Errorf("stored org/contact/note: %v %v %v", m["org"], m["contact"], m["note"])
		}
		got, err := h.assertStore(t).Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Enabled || !got.Expires.Equal(time.Date(2030, 1, 31, 0, 0, 0, 0, time.UTC)) ||
			strings.Join(got.Origins, " ") != "https://marin.maps.arcgis.com https://*.marin.gov" ||
			got.Rate != 5 || got.Burst != 10 || got.DailyRequests != 100000 || got.Created.IsZero() {
			t.Errorf("record: enabled %v expires %v origins %v limits %v/%d/%d created %v",
				got.Enabled, got.Expires, got.Origins, got.Rate, got.Burst, got.DailyRequests, got.Created)
		}
		if h.kv != nil {
			sec, _ := h.kv.Secret(keys.SecretPrefix + key)
			if !sec.Attributes.Enabled || !sec.Attributes.Expires.Equal(got.Expires) {
				t.Errorf("vault attributes %+v", sec.Attributes)
			}
			if _, ok := m["expires"]; ok {
				t.Errorf("the vault's value carries expires; it belongs in the attributes")
			}
		}
		if !strings.HasPrefix(key, keys.Prefix) || len(key) != 48 {
			t.Errorf("key shape: %d chars", len(key))
		}
	})
}

func TestNewReadsSeveralSetsAndIDsFromStdin(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		s1, s2 := "first-secret-"+storetest.Key(t), "second-secret-"+storetest.Key(t)
		// Set 1's id is a flag; set 2's id is read from stdin before its secret.
		key, r := h.newKey(t, s1+"\nsecond-id\r\n"+s2+"\n",
			"--org", "Sonoma", "--contact", "gis@sonoma.example", "--sets", "2", "--client-id", "first-id")
		assertNoLeak(t, r, s1, s2)
		if !strings.Contains(r.out, "2 credential sets") {
			t.Errorf("output: %s", r.out)
		}
		sets := checkLayout(t, h.raw(t, key))
		if len(sets) != 2 || sets[0] != [2]string{"first-id", s1} || sets[1] != [2]string{"second-id", s2} {
			t.Errorf("sets: %d, ids %q %q", len(sets), sets[0][0], sets[len(sets)-1][0])
		}
		if r.out != "" && strings.Contains(r.out, "http://localhost:8080/v2/wms/"+key) == false {
			t.Errorf("default base URL not used:\n%s", r.out)
		}
	})
}

func TestNewUsesPublicBaseURL(t *testing.T) {
	h := newFileHarness(t)
	h.env["PUBLIC_BASE_URL"] = "https://maps.example.org/hexprox/"
	key, r := h.newKey(t, "s3cr3t-value\n", "--org", "A", "--contact", "a@example.org", "--client-id", "id")
	if !strings.Contains(r.out, "https://maps.example.org/hexprox/about/"+key) {
		t.Errorf("output:\n%s", r.out)
	}
}

func TestCopyCredentialsFrom(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "shared-" + storetest.Key(t)
		first, _ := h.newKey(t, secret+"\n", "--org", "State", "--contact", "gis@state.example", "--client-id", "state-id")
		second, r := h.newKey(t, "", "--org", "County", "--contact", "gis@county.example", "--copy-credentials-from", first)
		assertNoLeak(t, r, secret, "state-id")
		if first == second {
			t.Fatal("same key twice")
		}
		sets := checkLayout(t, h.raw(t, second))
		if len(sets) != 1 || sets[0] != [2]string{"state-id", secret} {
			t.Errorf("copied sets: %d", len(sets))
		}
		if h.raw(t, second)["org"] != "County" {
			t.Errorf("org not the new key's")
		}
		// A prefix that names one key works too.
		third, _ := h.newKey(t, "", "--org", "City", "--contact", "c@city.example", "--copy-credentials-from", first[:12]+"…")
		if sets := checkLayout(t, h.raw(t, third)); len(sets) != 1 || sets[0][1] != secret {
			t.Errorf("copy by prefix")
		}
		// Revoked in Key Vault: the sets cannot be read.
		h.mustRun(t, "", "revoke", first)
		r = h.run(t, "", "new", "--org", "X", "--contact", "x@x.example", "--copy-credentials-from", first)
		if h.kv != nil {
			if r.err == nil || !strings.Contains(r.err.Error(), "revoked") {
				t.Errorf("copy from a revoked vault key: %v", r.err)
			}
		} else if r.err != nil {
			t.Errorf("copy from a revoked file key: %v", r.err)
		}
		assertNoLeak(t, r, first, secret)
	})
}

func TestListShowsPrefixesNeverSecrets(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		s1, s2 := "list-secret-"+storetest.Key(t), "list-secret-"+storetest.Key(t)
		k1, _ := h.newKey(t, s1+"\n", "--org", "Alameda", "--contact", "gis@alameda.example", "--client-id", "alameda-id",
			"--origin", "https://alameda.maps.arcgis.com", "--expires", "2031-05-06T07:08:09Z")
		k2, _ := h.newKey(t, s2+"\n", "--org", "Butte", "--contact", "gis@butte.example", "--client-id", "butte-id")
		h.mustRun(t, "", "revoke", k2)

		r := h.mustRun(t, "", "list")
		assertNoLeak(t, r, k1, k2, s1, s2, "alameda-id", "butte-id")
		lines := strings.Split(strings.TrimSpace(r.out), "\n")
		if len(lines) != 3 {
			t.Fatalf("want a header and 2 rows:\n%s", r.out)
		}
		for _, col := range []string{"KEY", "FINGERPRINT", "ORG", "CONTACT", "SETS", "UPSTREAM", "ORIGINS", "ENABLED", "EXPIRES", "CREATED"} {
			if !strings.Contains(lines[0], col) {
				t.Errorf("header lacks %s: %s", col, lines[0])
			}
		}
		// Rows sort by org; a revoked vault key's org cannot be read.
		if !strings.HasPrefix(lines[1], prefix(k1)) {
			lines[1], lines[2] = lines[2], lines[1]
		}
		row1 := strings.Fields(lines[1])
		if row1[0] != prefix(k1) || row1[1] != keys.Fingerprint(k1, "") || row1[2] != "Alameda" || row1[3] != "gis@alameda.example" || row1[4] != "1" ||
			row1[5] != "hexagon" || row1[6] != "https://alameda.maps.arcgis.com" || row1[7] != "yes" || row1[8] != "active" || row1[9] != "2031-05-06T07:08:09Z" {
			t.Errorf("row 1: %q", lines[1])
		}
		if !strings.HasPrefix(lines[2], prefix(k2)) || !strings.Contains(lines[2], " no ") || !strings.Contains(lines[2], "revoked") {
			t.Errorf("row 2: %q", lines[2])
		}
		if h.kv == nil && !strings.Contains(lines[2], "Butte") {
			t.Errorf("the file store keeps a revoked key's org: %q", lines[2])
		}
	})
}

func TestShow(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "show-" + storetest.Key(t)
		key, _ := h.newKey(t, secret+"\n", "--org", "Yolo", "--contact", "gis@yolo.example", "--client-id", "yolo-id")
		r := h.mustRun(t, "", "show", key, "--base-url", "https://hx.example")
		assertNoLeak(t, r, secret, "yolo-id")
		for _, want := range []string{"Yolo", "gis@yolo.example", "active", "https://hx.example/v2/wmts/" + key + "/1.0.0/WMTSCapabilities.xml",
			"https://hx.example/v2/wms/" + key, "https://hx.example/about/" + key} {
			if !strings.Contains(r.out, want) {
				t.Errorf("show lacks %q:\n%s", want, r.out)
			}
		}
	})
}

func TestRevokeAndEnable(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "rev-" + storetest.Key(t)
		key, _ := h.newKey(t, secret+"\n", "--org", "Napa", "--contact", "gis@napa.example", "--client-id", "napa-id", "--expires", "2030-01-01")
		other, _ := h.newKey(t, secret+"\n", "--org", "Solano", "--contact", "gis@solano.example", "--client-id", "napa-id")
		st := h.assertStore(t)
		ctx := context.Background()

		versions := 0
		if h.kv != nil {
			versions = h.kv.Versions(keys.SecretPrefix + key)
		}
		r := h.mustRun(t, "", "revoke", key)
		assertNoLeak(t, r, key, secret)
		if !strings.Contains(r.out, "Revoked") || !strings.Contains(r.out, prefix(key)) {
			t.Errorf("revoke said %q", r.out)
		}
		got, err := st.Get(ctx, key)
		if err != nil || got.Enabled || got.Status(now) != keys.Revoked {
			t.Fatalf("after revoke: enabled %v, %v", got.Enabled, err)
		}
		if o, _ := st.Get(ctx, other); !o.Enabled {
			t.Errorf("revoke touched another key")
		}
		if h.kv != nil {
			sec, _ := h.kv.Secret(keys.SecretPrefix + key)
			if sec.Attributes.Enabled {
				t.Errorf("vault attribute enabled is still true")
			}
			if !sec.Attributes.Expires.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("revoke lost the expiry: %v", sec.Attributes.Expires)
			}
		}
		if r := h.mustRun(t, "", "revoke", key); !strings.Contains(r.out, "already revoked") {
			t.Errorf("second revoke said %q", r.out)
		}

		// By prefix, as list shows it.
		r = h.mustRun(t, "", "enable", prefix(key))
		if !strings.Contains(r.out, "Enabled") {
			t.Errorf("enable said %q", r.out)
		}
		got, err = st.Get(ctx, key)
		if err != nil || !got.Enabled || len(got.Sets) != 1 || got.Sets[0].Secret != secret || got.Org != "Napa" {
			t.Fatalf("after enable: enabled %v, sets %d, org %q, %v", got.Enabled, len(got.Sets), got.Org, err)
		}
		if h.kv != nil {
			if sec, _ := h.kv.Secret(keys.SecretPrefix + key); !sec.Attributes.Enabled {
				t.Errorf("vault attribute enabled is still false")
			}
			// Lifecycle changes are attribute updates, not new versions.
			if v := h.kv.Versions(keys.SecretPrefix + key); v != versions {
				t.Errorf("revoke and enable made %d new versions", v-versions)
			}
		}
	})
}

func TestSet(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "set-" + storetest.Key(t)
		key, _ := h.newKey(t, secret+"\n", "--org", "Lake", "--contact", "gis@lake.example", "--client-id", "lake-id",
			"--origin", "https://old.example.gov")
		st := h.assertStore(t)
		ctx := context.Background()

		r := h.mustRun(t, "", "set", key, "--expires", "2031-02-03T04:05:06Z", "--origin", "https://*.lake.gov",
			"--origin", "https://lake.maps.arcgis.com", "--contact", "maps@lake.example", "--daily", "5000")
		assertNoLeak(t, r, secret, key, "lake-id")
		got, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		want := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
		if !got.Expires.Equal(want) || got.Contact != "maps@lake.example" || got.Org != "Lake" || got.DailyRequests != 5000 ||
			strings.Join(got.Origins, " ") != "https://*.lake.gov https://lake.maps.arcgis.com" || len(got.Sets) != 1 || got.Sets[0].Secret != secret {
			t.Errorf("after set: %v %q %q %d %v sets %d", got.Expires, got.Contact, got.Org, got.DailyRequests, got.Origins, len(got.Sets))
		}
		if h.kv != nil {
			if sec, _ := h.kv.Secret(keys.SecretPrefix + key); !sec.Attributes.Expires.Equal(want) {
				t.Errorf("vault exp %v", sec.Attributes.Expires)
			}
		}
		// Relative expiry, then none.
		h.mustRun(t, "", "set", key, "--expires", "30d")
		if got, _ := st.Get(ctx, key); !got.Expires.Equal(now.Add(30 * 24 * time.Hour)) {
			t.Errorf("30d: %v", got.Expires)
		}
		h.mustRun(t, "", "set", key, "--expires", "none", "--origin", "none")
		got, _ = st.Get(ctx, key)
		if !got.Expires.IsZero() || len(got.Origins) != 0 {
			t.Errorf("none: %v %v", got.Expires, got.Origins)
		}
		if h.kv != nil {
			if sec, _ := h.kv.Secret(keys.SecretPrefix + key); !sec.Attributes.Expires.IsZero() {
				t.Errorf("vault exp not cleared: %v", sec.Attributes.Expires)
			}
		}

		// A revoked key: the lifecycle can change; in Key Vault the content cannot.
		h.mustRun(t, "", "revoke", key)
		h.mustRun(t, "", "set", key, "--expires", "2032-01-01")
		if got, _ := st.Get(ctx, key); !got.Expires.Equal(time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)) || got.Enabled {
			t.Errorf("expires on a revoked key: %v enabled %v", got.Expires, got.Enabled)
		}
		r = h.run(t, "", "set", key, "--org", "Renamed")
		if h.kv != nil {
			if r.err == nil || !strings.Contains(r.err.Error(), "enable it") {
				t.Errorf("content change on a revoked vault key: %v", r.err)
			}
		} else if r.err != nil {
			t.Errorf("content change on a revoked file key: %v", r.err)
		}

		if r := h.run(t, "", "set", key); !errors.Is(r.err, ErrUsage) {
			t.Errorf("set with nothing to change: %v", r.err)
		}
		if r := h.run(t, "", "set", key, "--origin", "not an origin"); !errors.Is(r.err, ErrUsage) {
			t.Errorf("bad origin: %v", r.err)
		}
		if r := h.run(t, "", "set", key, "--expires", "someday"); !errors.Is(r.err, ErrUsage) {
			t.Errorf("bad time: %v", r.err)
		}
	})
}

func TestReplaceCredential(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		oldSecret, otherSecret, newSecret := "old-"+storetest.Key(t), "other-"+storetest.Key(t), "new-"+storetest.Key(t)
		a, _ := h.newKey(t, oldSecret+"\n", "--org", "Alpha", "--contact", "a@example.org", "--client-id", "shared-id")
		b, _ := h.newKey(t, otherSecret+"\n"+oldSecret+"\n", "--org", "Beta", "--contact", "b@example.org",
			"--client-id", "own-id", "--client-id", "shared-id")
		c, _ := h.newKey(t, otherSecret+"\n", "--org", "Gamma", "--contact", "c@example.org", "--client-id", "gamma-id")

		r := h.mustRun(t, newSecret+"\n", "replace-credential", "--client-id", "shared-id")
		assertNoLeak(t, r, oldSecret, otherSecret, newSecret, a, b, c, "shared-id")
		if !strings.Contains(r.out, "2 keys") || !strings.Contains(r.out, prefix(a)) || !strings.Contains(r.out, prefix(b)) ||
			!strings.Contains(r.out, "Alpha") || !strings.Contains(r.out, "Beta") || strings.Contains(r.out, prefix(c)) {
			t.Errorf("replace said:\n%s", r.out)
		}
		if sets := checkLayout(t, h.raw(t, a)); len(sets) != 1 || sets[0] != [2]string{"shared-id", newSecret} {
			t.Errorf("alpha not updated")
		}
		if sets := checkLayout(t, h.raw(t, b)); len(sets) != 2 || sets[0] != [2]string{"own-id", otherSecret} || sets[1] != [2]string{"shared-id", newSecret} {
			t.Errorf("beta: %d sets", len(sets))
		}
		if sets := checkLayout(t, h.raw(t, c)); len(sets) != 1 || sets[0] != [2]string{"gamma-id", otherSecret} {
			t.Errorf("gamma touched")
		}

		// Again with the same secret: nothing to write.
		r = h.mustRun(t, newSecret+"\n", "replace-credential", "--client-id", "shared-id")
		if !strings.Contains(r.out, "Already using the new credential: 2 keys") {
			t.Errorf("second run said:\n%s", r.out)
		}

		// A new client id as well.
		h.mustRun(t, newSecret+"-2\n", "replace-credential", "--client-id", "shared-id", "--new-client-id", "fresh-id")
		if sets := checkLayout(t, h.raw(t, a)); sets[0] != [2]string{"fresh-id", newSecret + "-2"} {
			t.Errorf("new client id not written")
		}

		r = h.run(t, newSecret+"\n", "replace-credential", "--client-id", "nobody-uses-this")
		if r.err == nil || !strings.Contains(r.err.Error(), "no key uses") {
			t.Errorf("unused id: %v", r.err)
		}
		assertNoLeak(t, r, "nobody-uses-this", newSecret)

		if h.kv != nil {
			h.mustRun(t, "", "revoke", c)
			r = h.mustRun(t, "x-secret\n", "replace-credential", "--client-id", "fresh-id")
			if !strings.Contains(r.errOut, "1 key revoked in Key Vault could not be read") {
				t.Errorf("no warning about the revoked key:\n%s", r.errOut)
			}
		}
	})
}

func TestTheOriginalsRecordsAreAdministered(t *testing.T) {
	h := newVaultHarness(t)
	const key = "0c9f6a52-6a3e-4a8e-9d0b-2f3c4d5e6f70"
	h.kv.Put(keys.SecretPrefix+key, `{"count": 3, "sets": [{"client_id": "orig-id-1", "client_secret": "orig-secret-1"}], "org": "Org name", "contact": "Contact name"}`)
	r := h.mustRun(t, "", "list")
	if !strings.Contains(r.out, prefix(key)) || !strings.Contains(r.out, "Org name") || strings.Contains(r.out, key) {
		t.Errorf("list:\n%s", r.out)
	}
	h.mustRun(t, "", "set", key, "--note", "migrated")
	m := h.raw(t, key)
	if sets := checkLayout(t, m); len(sets) != 1 || sets[0] != [2]string{"orig-id-1", "orig-secret-1"} || m["note"] != "migrated" {
		t.Errorf("after set: %v", m)
	}
}

func TestErrors(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "err-" + storetest.Key(t)
		key, _ := h.newKey(t, secret+"\n", "--org", "Inyo", "--contact", "i@example.org", "--client-id", "inyo-id")
		unknown := keys.Prefix + strings.Repeat("Z", 43)
		for _, cmd := range [][]string{{"show", unknown}, {"revoke", unknown}, {"enable", unknown}, {"set", unknown, "--note", "x"}} {
			r := h.run(t, "", cmd...)
			if r.err == nil || r.err.Error() != "no key starts with "+unknown[:10]+"…" {
				t.Errorf("%s: %v", cmd[0], r.err)
			}
			assertNoLeak(t, r, unknown)
		}
		if r := h.run(t, "", "show", "not a key!"); r.err == nil || !strings.Contains(r.err.Error(), "not a key") {
			t.Errorf("malformed key: %v", r.err)
		}
		// A prefix shared by two keys is refused, and so is one too short.
		st := h.assertStore(t)
		rec := keys.Record{Org: "Kern", Contact: "k@example.org", Enabled: true, Sets: []credential.Credential{{ID: "kern-id", Secret: secret}}}
		for _, k := range []string{"hxpk-Same1-" + strings.Repeat("a", 30), "hxpk-Same1-" + strings.Repeat("b", 30)} {
			if err := st.Create(context.Background(), k, rec); err != nil {
				t.Fatal(err)
			}
		}
		r := h.run(t, "", "revoke", "hxpk-Same1")
		if r.err == nil || r.err.Error() != "hxpk-Same1 matches 2 keys: give more of the key, or its fingerprint" {
			t.Errorf("ambiguous prefix: %v", r.err)
		}
		if r := h.run(t, "", "revoke", key[:7]); r.err == nil || !strings.Contains(r.err.Error(), fmt.Sprintf("%q is too short to name a key: give at least 8 characters", key[:7])) {
			t.Errorf("a 7-char prefix named a key: %v", r.err)
		}
		if r := h.run(t, "", "show", "hxpk-zzzz9"); r.err == nil || r.err.Error() != "no key starts with hxpk-zzzz9" {
			t.Errorf("an unknown prefix is named as typed: %v", r.err)
		}
		if r := h.mustRun(t, "", "revoke", "hxpk-Same1-a"); !strings.Contains(r.out, "Revoked") {
			t.Errorf("unique prefix: %q", r.out)
		}
		if r := h.run(t, "", "new", "--org", "X", "--contact", "y", "--client-id", "i", "--client-secret", secret); !errors.Is(r.err, ErrUsage) ||
			!strings.Contains(r.err.Error(), "never taken as flags") {
			t.Errorf("--client-secret: %v", r.err)
		} else {
			assertNoLeak(t, r, secret)
		}
		if r := h.run(t, "", "new", "--org", "X", "--contact", "y", "--client-id", "i", secret); !errors.Is(r.err, ErrUsage) {
			t.Errorf("secret as an argument: %v", r.err)
		} else {
			assertNoLeak(t, r, secret)
		}
		if r := h.run(t, "", "new", "--contact", "y"); !errors.Is(r.err, ErrUsage) || !strings.Contains(r.err.Error(), "--org is required") {
			t.Errorf("missing org: %v", r.err)
		}
		if r := h.run(t, "", "new", "--org", "X", "--contact", "y", "--client-id", "i"); r.err == nil || !strings.Contains(r.err.Error(), "stdin ended") {
			t.Errorf("no secret on stdin: %v", r.err)
		}
		if r := h.run(t, "", "frobnicate"); !errors.Is(r.err, ErrUsage) {
			t.Errorf("unknown subcommand: %v", r.err)
		}
		if r := h.run(t, "", "show"); !errors.Is(r.err, ErrUsage) {
			t.Errorf("show without a key: %v", r.err)
		}
		if r := h.run(t, "", "list", "--bogus"); !errors.Is(r.err, ErrUsage) {
			t.Errorf("unknown flag: %v", r.err)
		}
	})
}

func TestMissingPermissionNamesTheRole(t *testing.T) {
	h := newVaultHarness(t)
	secret := "perm-" + storetest.Key(t)
	key, _ := h.newKey(t, secret+"\n", "--org", "Mono", "--contact", "m@example.org", "--client-id", "mono-id")
	for _, c := range []struct {
		deny []fakekeyvault.Op
		args []string
	}{
		{[]fakekeyvault.Op{fakekeyvault.OpSet}, []string{"new", "--org", "X", "--contact", "x@example.org", "--client-id", "x"}},
		{[]fakekeyvault.Op{fakekeyvault.OpGet}, []string{"show", key}},
		{[]fakekeyvault.Op{fakekeyvault.OpList}, []string{"list"}},
		{[]fakekeyvault.Op{fakekeyvault.OpUpdate}, []string{"revoke", key}},
	} {
		h.kv.Deny(c.deny...)
		r := h.run(t, secret+"\n", c.args...)
		if !errors.Is(r.err, keyvault.ErrPermission) || !strings.Contains(r.err.Error(), "Key Vault Secrets Officer") {
			t.Errorf("%s with %v denied: %v", c.args[0], c.deny, r.err)
		}
		assertNoLeak(t, r, key, secret)
	}
	h.kv.Deny()
	if got, _ := h.store.Get(context.Background(), key); !got.Enabled {
		t.Errorf("a denied revoke revoked")
	}
}

func TestNoStoreConfigured(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{nil, []string{"list"}, []string{"KEY_STORE", "KEY_VAULT_URL", "KEY_VAULT_NAME", "KEYS_FILE", "--vault", "--file"}},
		{map[string]string{"KEY_STORE": "none"}, []string{"list"}, []string{"no key store"}},
		{map[string]string{"KEY_STORE": "keyvault"}, []string{"list"}, []string{"KEY_VAULT_URL", "KEY_VAULT_NAME"}},
		{map[string]string{"KEY_STORE": "file"}, []string{"list"}, []string{"KEYS_FILE"}},
		{map[string]string{"KEY_STORE": "redis"}, []string{"list"}, []string{"keyvault or file"}},
		{nil, []string{"list", "--vault", "https://a.vault.azure.net", "--file", "x"}, []string{"not both"}},
		// A vault the server would refuse is refused here too.
		{map[string]string{"KEY_VAULT_URL": "https://a.vault.azure.net/secrets"}, []string{"list"}, []string{"KEY_VAULT_URL", "not a vault URL"}},
		{nil, []string{"list", "--vault", "http://a.vault.azure.net"}, []string{"--vault", "not a vault URL"}},
	} {
		h := &harness{env: c.env, open: func(context.Context, Settings) (keys.Store, error) {
			t.Fatal("opened a store")
			return nil, nil
		}}
		r := h.run(t, "", c.args...)
		if r.err == nil {
			t.Errorf("%v %v: no error", c.env, c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.err.Error(), w) {
				t.Errorf("%v: %q lacks %q", c.env, r.err, w)
			}
		}
	}
}

func TestSettings(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want Settings
	}{
		{map[string]string{"KEY_STORE": "keyvault", "KEY_VAULT_NAME": "hexprox-kv", "MANAGED_IDENTITY_CLIENT_ID": "mi"},
			[]string{"list"}, Settings{Kind: StoreKeyVault, VaultURL: "https://hexprox-kv.vault.azure.net", ManagedIdentityClientID: "mi"}},
		{map[string]string{"KEY_STORE": "KeyVault", "KEY_VAULT_NAME": "ignored", "KEY_VAULT_URL": "https://x.vault.azure.net"},
			[]string{"list"}, Settings{Kind: StoreKeyVault, VaultURL: "https://x.vault.azure.net"}},
		{map[string]string{"KEY_STORE": "file", "KEYS_FILE": "/etc/keys.json"},
			[]string{"list"}, Settings{Kind: StoreFile, File: "/etc/keys.json"}},
		{map[string]string{"KEY_STORE": "file", "KEYS_FILE": "/etc/keys.json"},
			[]string{"--vault", "https://y.vault.azure.net/", "list"}, Settings{Kind: StoreKeyVault, VaultURL: "https://y.vault.azure.net"}},
		{map[string]string{"KEY_VAULT_URL": "https://z.vault.azure.net/"}, // no KEY_STORE: as the server decides
			[]string{"list"}, Settings{Kind: StoreKeyVault, VaultURL: "https://z.vault.azure.net"}},
		{map[string]string{"KEY_STORE": "keyvault"},
			[]string{"list", "--file", "k.json"}, Settings{Kind: StoreFile, File: "k.json"}},
		{nil, []string{"new", "--file", "k.json", "--org", "o", "--contact", "c", "--client-id", "i", "--no-check"},
			Settings{Kind: StoreFile, File: "k.json", CreateFile: true}},
	} {
		var got []Settings
		h := &harness{env: c.env, open: func(_ context.Context, s Settings) (keys.Store, error) {
			got = append(got, s)
			return nil, errors.New("test: stop here")
		}}
		r := h.run(t, "secret\n", c.args...)
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%v %v: opened %+v (%v), want %+v", c.env, c.args, got, r.err, c.want)
		}
	}
}

func TestFileStoreCreatedByTheFirstKey(t *testing.T) {
	h := newFileHarness(t)
	if r := h.run(t, "", "list"); r.err == nil || !strings.Contains(r.err.Error(), "does not exist") {
		t.Errorf("list before any key: %v", r.err)
	}
	if _, err := os.Stat(h.file); err == nil {
		t.Fatal("list created the file")
	}
	h.newKey(t, "s-1\n", "--org", "O", "--contact", "c@example.org", "--client-id", "i")
	fi, err := os.Stat(h.file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keys file mode %v", fi.Mode().Perm())
	}
	if r := h.mustRun(t, "", "list"); strings.Count(r.out, "\n") != 2 {
		t.Errorf("list:\n%s", r.out)
	}
}

func TestSecretsFromATerminalAreRefused(t *testing.T) {
	// /dev/null is a character device, as a terminal is: the default
	// reader refuses it rather than risk echoing a typed secret.
	tty, err := os.Open(os.DevNull)
	if err != nil {
		t.Skip(err)
	}
	defer tty.Close()
	h := newFileHarness(t)
	var out, errOut bytes.Buffer
	env := h.settings(Env{Stdin: tty, Stdout: &out, Stderr: &errOut})
	err = Run(context.Background(), []string{"new", "--org", "O", "--contact", "c@example.org", "--client-id", "i"}, env)
	if !errors.Is(err, ErrEcho) {
		t.Fatalf("got %v, want ErrEcho", err)
	}
	if _, err := os.Stat(h.file); err == nil {
		t.Errorf("a refused new created the keys file")
	}

	// An injected no-echo reader is used instead, with a prompt per set.
	var prompts []string
	env.ReadSecret = func(p string) (string, error) {
		prompts = append(prompts, p)
		return "  typed-secret-" + fmt.Sprint(len(prompts)) + "  ", nil
	}
	env.Stdin = strings.NewReader("")
	err = Run(context.Background(), []string{"new", "--org", "O", "--contact", "c@example.org", "--client-id", "a", "--client-id", "b"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(prompts) != 2 || !strings.Contains(prompts[1], "set 2") {
		t.Errorf("prompts %q", prompts)
	}
	key := keyPattern.FindString(out.String())
	r, err := h.assertStore(t).Get(context.Background(), key)
	if err != nil || len(r.Sets) != 2 || r.Sets[1] != (credential.Credential{ID: "b", Secret: "typed-secret-2"}) {
		t.Errorf("stored %d sets, %v", len(r.Sets), err)
	}
}

func TestHelp(t *testing.T) {
	h := &harness{}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := h.run(t, "", args...)
		if r.err != nil {
			t.Fatalf("%v: %v", args, r.err)
		}
		for name := range commands {
			if !strings.Contains(r.out, "handler keys "+name) {
				t.Errorf("%v: usage lacks %s", args, name)
			}
		}
		if strings.Count(r.out, "example:") < len(commands) {
			t.Errorf("%v: an example per subcommand wanted", args)
		}
	}
	if r := h.run(t, "", "new", "-h"); r.err != nil || !strings.Contains(r.out, "--copy-credentials-from") {
		t.Errorf("new -h: %v %q", r.err, r.out)
	}
	// Provider keys' ends: each command that takes or tells them says so.
	for cmd, want := range map[string][]string{
		"new":                {"--provider NAME", "maxar", "PROVIDERS_FILE", "--login", "--key-expires WHEN", "live at most 180 days", "handler keys new --provider maxar --key-expires"},
		"list":               {"ends within 14 days", "replace-credential"},
		"show":               {"Key 1 ends: 2027-06-01 (in 180 days)", "never\n  the key itself"},
		"replace-credential": {"--key-expires WHEN", "same key as old and new", "--provider vexcel --client-id"},
	} {
		r := h.run(t, "", cmd, "-h")
		for _, w := range want {
			if r.err != nil || !strings.Contains(r.out, w) {
				t.Errorf("%s -h lacks %q (%v)", cmd, w, r.err)
			}
		}
	}
	if r := h.run(t, ""); !errors.Is(r.err, ErrUsage) || !strings.Contains(r.out, "replace-credential") {
		t.Errorf("no subcommand: %v", r.err)
	}
}

func TestParseWhen(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2030-01-31":                time.Date(2030, 1, 31, 0, 0, 0, 0, time.UTC),
		"2030-01-31T10:00:00+02:00": time.Date(2030, 1, 31, 8, 0, 0, 0, time.UTC),
		"90d":                       now.Add(90 * 24 * time.Hour),
		"36h":                       now.Add(36 * time.Hour),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "tomorrow", "-5d", "0d", "-1h", "2030-13-01"} {
		if _, err := parseWhen(in, now); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestPrefixNeverWholeKey(t *testing.T) {
	for _, k := range []string{"a", "ab", "abcdefgh", storetest.Key(t), "0c9f6a52-6a3e-4a8e-9d0b-2f3c4d5e6f70"} {
		p := strings.TrimSuffix(prefix(k), "…")
		if len(p) > prefixLen || len(p) > len(k)/2 || !strings.HasPrefix(k, p) {
			t.Errorf("prefix(%q) = %q", k, p)
		}
	}
}

// What revoke and enable print of a record is escaped like every other
// command's output: an org name cannot drive the admin's terminal.
func TestRevokeEscapesTheOrg(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "esc-" + storetest.Key(t)
		key, _ := h.newKey(t, secret+"\n", "--org", "evil\x1b]0;pwned\x07org", "--contact", "gis@evil.example", "--client-id", "evil-id")
		for _, cmd := range []string{"revoke", "enable"} {
			r := h.mustRun(t, "", cmd, key)
			if strings.ContainsAny(r.out, "\x1b\x07") || !strings.Contains(r.out, `evil\x1b]0;pwned\aorg`) {
				t.Errorf("%s printed the org unescaped: %q", cmd, r.out)
			}
		}
	})
}

// --redirect is a choice an operator makes knowingly: new and set say
// what it gives away, show says which way tiles go, and it can be undone.
func TestRedirectOptIn(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "redirect-" + storetest.Key(t)
		key, r := h.newKey(t, secret+"\n", "--org", "Trusted", "--contact", "gis@trusted.example", "--client-id", "trusted-id", "--redirect")
		if !strings.Contains(r.out, "receives Hexagon tokens") {
			t.Errorf("keys new --redirect does not say what it gives away:\n%s", r.out)
		}
		st := h.assertStore(t)
		ctx := context.Background()
		if got, err := st.Get(ctx, key); err != nil || !got.Redirect {
			t.Fatalf("--redirect not stored: %v %v", got.Redirect, err)
		}
		if r := h.mustRun(t, "", "show", key); !strings.Contains(r.out, "redirected to Hexagon") {
			t.Errorf("show does not say tiles are redirected:\n%s", r.out)
		}
		h.mustRun(t, "", "set", key, "--redirect=false")
		if got, _ := st.Get(ctx, key); got.Redirect {
			t.Fatal("--redirect=false did not clear it")
		}
		if r := h.mustRun(t, "", "show", key); !strings.Contains(r.out, "through the proxy") {
			t.Errorf("show after --redirect=false:\n%s", r.out)
		}
		plain, r := h.newKey(t, secret+"\n", "--org", "Plain", "--contact", "gis@plain.example", "--client-id", "plain-id")
		if got, _ := st.Get(ctx, plain); got.Redirect || strings.Contains(r.out, "receives Hexagon tokens") {
			t.Fatal("a key redirects without --redirect")
		}
	})
}

// Key Vault hides a revoked key's contents: set refuses to change them
// (it would write an empty record over the real one), but changes its
// dates, which are the secret's attributes.
func TestSetOnARevokedVaultKey(t *testing.T) {
	h := newVaultHarness(t)
	secret := "revset-" + storetest.Key(t)
	key, _ := h.newKey(t, secret+"\n", "--org", "Yolo", "--contact", "gis@yolo.example", "--client-id", "yolo-id")
	h.mustRun(t, "", "revoke", key)
	for _, flag := range []string{"--org", "--contact", "--note", "--origin", "--rate", "--burst", "--daily", "--redirect"} {
		args := []string{"set", key, flag}
		switch flag {
		case "--origin":
			args = append(args, "https://yolo.example.gov")
		case "--redirect":
			args[2] = "--redirect=true"
		default:
			args = append(args, "7")
		}
		r := h.run(t, "", args...)
		assertNoLeak(t, r, key, secret)
		if r.err == nil || !strings.Contains(r.all(), "enable it, change it") {
			t.Errorf("set %s on a revoked key: %v\n%s", flag, r.err, r.all())
		}
	}
	h.mustRun(t, "", "set", key, "--expires", "2032-01-01", "--not-before", "2026-01-01")
	sec, _ := h.kv.Secret(keys.SecretPrefix + key)
	if !sec.Attributes.Expires.Equal(time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC)) || sec.Attributes.Enabled {
		t.Errorf("dates on a revoked key: expires %v, enabled %v", sec.Attributes.Expires, sec.Attributes.Enabled)
	}
	h.mustRun(t, "", "enable", key)
	if got, err := h.store.Get(context.Background(), key); err != nil || got.Org != "Yolo" || len(got.Sets) != 1 || got.Sets[0].Secret != secret {
		t.Fatalf("after enable: org %q, sets %d, %v", got.Org, len(got.Sets), err)
	}
}
