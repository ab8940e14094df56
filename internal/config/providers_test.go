package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/provider"
)

// writeProviders writes doc to a PROVIDERS_FILE in a temporary directory
// and returns its path.
func writeProviders(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A good PROVIDERS_FILE adds the operator's profiles to the catalog,
// beside the built-in ones, whose hosts PROVIDER_{NAME}_{ROLE}_URL move.
func TestProvidersFileJoinsTheCatalog(t *testing.T) {
	file := writeProviders(t, `{"providers": [{"name": "county", "credential": "static",
  "hosts": {"api": {"url": "https://imagery.county.example", "paths": ["/wmts"]}},
  "wmts": "api:/wmts", "place": [{"query": "api_key"}]}]}`)
	c, err := Load(env(map[string]string{"PROVIDERS_FILE": file, "PROVIDER_MAXAR_API_URL": "http://127.0.0.1:9999"}))
	if err != nil {
		t.Fatal(err)
	}
	county := c.Providers.Get("county")
	if county == nil || !county.TakesKeys() || county.TakesLogins() {
		t.Fatalf("county: %+v", county)
	}
	if h, _ := c.Providers.Get("maxar").Host("api"); h.Base != "http://127.0.0.1:9999" {
		t.Fatalf("maxar's api host: %q", h.Base)
	}
	if c.Providers.Get("planet") == nil {
		t.Fatal("the built-in profiles are gone")
	}
}

// A PROVIDERS_FILE that cannot be used stops the proxy from starting,
// the error naming the setting and what is wrong (the profile and member,
// or the JSON's place), never a value from the file, which may be a URL
// holding a secret; it is reported beside the other settings' problems.
func TestBadProvidersFileFailsLoad(t *testing.T) {
	const secret = "s3cr3t-in-a-url"
	for _, c := range []struct {
		name, doc string
		want      []string
	}{
		{"not JSON", `{"providers": [`, []string{"not the JSON it should be", "ends early"}},
		{"too large", `{"providers": [` + strings.Repeat(" ", provider.MaxProfilesSize) + `]}`, []string{"larger than 1048576 bytes"}},
		{"syntax", `{"providers": [}`, []string{"not the JSON it should be", "syntax error at byte"}},
		{"unknown member", `{"providers": [{"name": "county", "token": "` + secret + `"}]}`, []string{`unknown field "token"`}},
		{"a built-in's name", `{"providers": [{"name": "maxar", "credential": "static",
  "hosts": {"api": {"url": "https://maxar.example", "paths": ["/wmts"]}}, "wmts": "api:/wmts", "place": [{"query": "k"}]}]}`,
			[]string{`provider "maxar" is built in`}},
		{"twice", `{"providers": [
  {"name": "county", "credential": "static", "hosts": {"api": {"url": "https://a.example", "paths": ["/w"]}}, "wmts": "api:/w", "place": [{"query": "k"}]},
  {"name": "county", "credential": "static", "hosts": {"api": {"url": "https://b.example", "paths": ["/w"]}}, "wmts": "api:/w", "place": [{"query": "k"}]}]}`,
			[]string{`provider "county" is defined twice`}},
		{"every problem of a profile", `{"providers": [{"name": "county", "credential": "static",
  "hosts": {"api": {"url": "https://user:` + secret + `@imagery.example", "paths": ["/wmts"]}},
  "wmts": "tiles:/wmts", "token_url": "https://login.example/token"}]}`,
			[]string{"providers[0] (county)", "hosts.api.url", "wmts names host role", "a static profile takes no token_url", "place must say where the key goes"}},
		{"an oauth2 profile's token URL", `{"providers": [{"name": "eagle", "credential": "oauth2", "token_url": "https://login.example/token?secret=` + secret + `",
  "hosts": {"api": {"url": "https://imagery.example", "paths": ["/wmts"]}}, "wmts": "api:/wmts", "auth": "digest"}]}`,
			[]string{"providers[0] (eagle)", "token_url must be an https:// (or http://) URL", `auth must be "body" or "basic"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Load(env(map[string]string{"PROVIDERS_FILE": writeProviders(t, c.doc), "TILE_MODE": "fast"}))
			if err == nil {
				t.Fatal("Load accepted the file")
			}
			msg := err.Error()
			for _, w := range append(c.want, "PROVIDERS_FILE:", "TILE_MODE:") {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("the error repeats a value from the file:\n%s", msg)
			}
		})
	}
	// A file that is not there, named by the setting, not by its path
	// twice over.
	missing := filepath.Join(t.TempDir(), "nope.json")
	_, err := Load(env(map[string]string{"PROVIDERS_FILE": missing}))
	if err == nil || !strings.Contains(err.Error(), "PROVIDERS_FILE: cannot be read") {
		t.Fatalf("a missing file: %v", err)
	}
	// LoadProviders, the keys CLI's, reports the same problems.
	if _, err := LoadProviders(env(map[string]string{"PROVIDERS_FILE": writeProviders(t, `{"providers": [{"name": "X"}]}`)})); err == nil ||
		!strings.Contains(err.Error(), "PROVIDERS_FILE:") || !strings.Contains(err.Error(), "name must be") {
		t.Fatalf("LoadProviders: %v", err)
	}
}

// A PROVIDER_{NAME}_{ROLE}_URL that is not a base URL stops the proxy
// from starting, named by the setting, without the value (it may hold a
// password or a token); the provider's other hosts keep their own.
func TestBadProviderHostSettingFailsLoad(t *testing.T) {
	const secret = "s3cr3t-in-a-url"
	for _, v := range []string{"https://u:" + secret + "@account.example", "https://account.example/?token=" + secret, "ftp://account.example"} {
		_, err := Load(env(map[string]string{"PROVIDER_MAXAR_ACCOUNT_URL": v}))
		if err == nil || !strings.Contains(err.Error(), "PROVIDER_MAXAR_ACCOUNT_URL: ") || strings.Contains(err.Error(), secret) {
			t.Errorf("PROVIDER_MAXAR_ACCOUNT_URL=%q: %v; want an error naming the setting, not the secret", v, err)
		}
	}
	c, err := Load(env(map[string]string{"PROVIDER_MAXAR_ACCOUNT_URL": "http://127.0.0.1:9/"}))
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := c.Providers.Get("maxar").Host("account"); h.Base != "http://127.0.0.1:9" {
		t.Errorf("maxar's account host: %q", h.Base)
	}
	if h, _ := c.Providers.Get("maxar").Host("api"); h.Base != "https://api.maxar.com" {
		t.Errorf("maxar's api host moved with its account host: %q", h.Base)
	}
}
