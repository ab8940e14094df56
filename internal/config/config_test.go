package config

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HexagonURL != DefaultHexagonURL || c.TileMode != ModeAuto || !c.CORSHeaders || c.Port != 8080 ||
		c.CapabilitiesTTL != 5*time.Minute || c.PublicBaseURL != "" || !c.AllowedOrigins.Allowed("https://org.maps.arcgis.com") {
		t.Fatalf("unexpected defaults %+v", c)
	}
	// The rest of the README's table of defaults.
	if c.UpstreamTimeout != 30*time.Second || c.TokenTimeout != 15*time.Second || c.RefusalTTL != 30*time.Second ||
		c.TokenStoreTimeout != 2*time.Second || c.LogLevel != slog.LevelInfo || c.LogSample != 1 ||
		c.TokenStore != TokenStoreMemory || c.TokenTable != "hexproxtokens" {
		t.Fatalf("unexpected defaults %+v", c)
	}
}

// A URL setting's error does not repeat a value that may hold a password
// or a token.
func TestURLErrorsDoNotRepeatSecrets(t *testing.T) {
	_, err := Load(env(map[string]string{
		"HEXAGON_URL":     "https://client:p4ssw0rd@services.example",
		"PUBLIC_BASE_URL": "https://maps.example/?access_token=t0k3n",
	}))
	if err == nil {
		t.Fatal("accepted URLs with user info and a query")
	}
	// Nor is a path, which may be a proxy URL's credential.
	_, err3 := Load(env(map[string]string{"KEY_VAULT_URL": "https://proxy.example/wmts/Y2xpZW50/c2VjcmV0"}))
	if err3 == nil || strings.Contains(err3.Error(), "c2VjcmV0") || !strings.Contains(err3.Error(), "https://proxy.example/…") {
		t.Fatalf("KEY_VAULT_URL holding a proxy URL: %v", err3)
	}
	// A connection string pasted into a URL setting is not repeated either.
	_, err2 := Load(env(map[string]string{"HEXAGON_URL": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k3y"}))
	if err2 == nil || strings.Contains(err2.Error(), "k3y") {
		t.Fatalf("HEXAGON_URL holding a connection string: %v", err2)
	}
	if msg := err.Error(); strings.Contains(msg, "p4ssw0rd") || strings.Contains(msg, "t0k3n") ||
		!strings.Contains(msg, "HEXAGON_URL:") || !strings.Contains(msg, "PUBLIC_BASE_URL:") {
		t.Fatalf("error:\n%s", msg)
	}
}

func TestValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"HEXAGON_URL":                  "http://127.0.0.1:9090/",
		"PUBLIC_BASE_URL":              "https://maps.example.org/hexprox/",
		"ALLOWED_ORIGINS":              "http://localhost:3000",
		"TILE_MODE":                    "PROXY",
		"CORS_HEADERS":                 "off",
		"PORT":                         "9000",
		"FUNCTIONS_CUSTOMHANDLER_PORT": "41234",
		"CAPABILITIES_TTL":             "90",
		"UPSTREAM_TIMEOUT":             "2s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HexagonURL != "http://127.0.0.1:9090" || c.PublicBaseURL != "https://maps.example.org/hexprox" || c.TileMode != ModeProxy ||
		c.CORSHeaders || c.Port != 41234 || c.CapabilitiesTTL != 90*time.Second || c.UpstreamTimeout != 2*time.Second ||
		c.AllowedOrigins.Allowed("https://www.arcgis.com") || !c.AllowedOrigins.Allowed("http://localhost:3000") {
		t.Fatalf("unexpected %+v", c)
	}
}

func TestReportsEveryProblem(t *testing.T) {
	_, err := Load(env(map[string]string{
		"HEXAGON_URL":      "ftp://x",
		"PUBLIC_BASE_URL":  "https://x/?q=1",
		"ALLOWED_ORIGINS":  "arcgis.com",
		"TILE_MODE":        "fast",
		"CORS_HEADERS":     "maybe",
		"PORT":             "70000",
		"CAPABILITIES_TTL": "soon",
		"LOG_LEVEL":        "loud",
	}))
	if err == nil {
		t.Fatal("accepted bad settings")
	}
	for _, name := range []string{"HEXAGON_URL", "PUBLIC_BASE_URL", "ALLOWED_ORIGINS", "TILE_MODE", "CORS_HEADERS", "PORT", "CAPABILITIES_TTL", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("problem with %s not reported in:\n%v", name, err)
		}
	}
}

func TestTokenStoreSelection(t *testing.T) {
	cases := []struct {
		env     map[string]string
		store   TokenStore
		conn    string
		service string
		mi      bool
	}{
		{nil, "memory", "", "", false},
		{map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "table", "UseDevelopmentStorage=true", "", false},
		{map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true", "TOKEN_STORE": "memory"}, "memory", "UseDevelopmentStorage=true", "", false},
		{map[string]string{"TOKEN_TABLE_CONNECTION": "AccountName=a;AccountKey=k", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}, "table", "AccountName=a;AccountKey=k", "", false},
		{map[string]string{"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": "cid"}, "table", "", "https://acct.table.core.windows.net", true},
		{map[string]string{"AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net/"}, "table", "", "https://acct.table.core.windows.net", false},
	}
	for i, tc := range cases {
		c, err := Load(env(tc.env))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if c.TokenStore != tc.store || c.Storage.ConnectionString != tc.conn || c.Storage.ServiceURL != tc.service || c.Storage.ManagedIdentity != tc.mi || c.TokenTable != "hexproxtokens" ||
			c.Storage.ClientID != tc.env["AzureWebJobsStorage__clientId"] {
			t.Errorf("case %d: %+v", i, c.Storage)
		}
	}
	for _, bad := range []map[string]string{
		{"TOKEN_STORE": "table"},
		{"TOKEN_STORE": "redis"},
		{"AzureWebJobsStorage": "not a connection string"},
		{"AzureWebJobsStorage__tableServiceUri": "http://insecure.example"},
		{"TOKEN_TABLE_NAME": "bad-name"},
		{"TOKEN_STORE_TIMEOUT": "-1s"},
	} {
		if _, err := Load(env(bad)); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{"TOKEN_TABLE_CONNECTION": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=VERYSECRETKEY==", "TOKEN_HASH_KEY": "HASHKEYSECRET"}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("start", "settings", c)
	out := b.String()
	if strings.Contains(out, "VERYSECRETKEY") || strings.Contains(out, "HASHKEYSECRET") {
		t.Fatalf("secret in log: %s", out)
	}
	if !strings.Contains(out, "acct") || !strings.Contains(out, `"token_hash_key_set":true`) {
		t.Fatalf("log should say where the table is and that a hash key is set: %s", out)
	}
}

func TestStringHidesSecrets(t *testing.T) {
	c, err := Load(env(map[string]string{"TOKEN_TABLE_CONNECTION": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=VERYSECRETKEY==", "TOKEN_HASH_KEY": "HASHKEYSECRET"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%s", c)} {
		if strings.Contains(out, "VERYSECRETKEY") || strings.Contains(out, "HASHKEYSECRET") {
			t.Fatalf("secret printed: %s", out)
		}
		if !strings.Contains(out, "acct") {
			t.Fatalf("the settings should still be readable: %s", out)
		}
	}
}

func TestRefusalTTLIsHonouredOrRefused(t *testing.T) {
	for _, v := range []string{"0", "0s", "500ms"} {
		if _, err := Load(env(map[string]string{"REFUSAL_TTL": v})); err == nil || !strings.Contains(err.Error(), "REFUSAL_TTL") {
			t.Errorf("REFUSAL_TTL=%s accepted (it used to become 30s silently): %v", v, err)
		}
	}
	c, err := Load(env(map[string]string{"REFUSAL_TTL": "2s"}))
	if err != nil || c.RefusalTTL != 2*time.Second {
		t.Fatalf("REFUSAL_TTL=2s: %v %v", c.RefusalTTL, err)
	}
}

func TestTrustedHops(t *testing.T) {
	cases := []struct {
		env  map[string]string
		hops int
	}{
		{nil, 0},
		{map[string]string{"WEBSITE_INSTANCE_ID": "abc"}, 1},
		{map[string]string{"WEBSITE_INSTANCE_ID": "abc", "TRUSTED_HOPS": "0"}, 0},
		{map[string]string{"TRUSTED_HOPS": "2"}, 2},
	}
	for _, tc := range cases {
		c, err := Load(env(tc.env))
		if err != nil || c.TrustedHops != tc.hops {
			t.Errorf("%v: hops %d, want %d (%v)", tc.env, c.TrustedHops, tc.hops, err)
		}
	}
	for _, bad := range []string{"-1", "many", "99"} {
		if _, err := Load(env(map[string]string{"TRUSTED_HOPS": bad})); err == nil {
			t.Errorf("TRUSTED_HOPS=%s accepted", bad)
		}
	}
	if c, _ := Load(env(nil)); c.GuessLimit != DefaultGuessLimit {
		t.Errorf("GUESS_LIMIT default %d", c.GuessLimit)
	}
	if _, err := Load(env(map[string]string{"GUESS_LIMIT": "-3"})); err == nil {
		t.Error("GUESS_LIMIT=-3 accepted")
	}
}

func TestKeyStoreSelection(t *testing.T) {
	cases := []struct {
		env   map[string]string
		store string
		vault string
	}{
		{nil, KeysNone, ""},
		{map[string]string{"KEY_VAULT_NAME": "hexvault"}, KeysKeyVault, "https://hexvault.vault.azure.net"},
		{map[string]string{"KEY_VAULT_URL": "https://v.vault.azure.net/"}, KeysKeyVault, "https://v.vault.azure.net"},
		{map[string]string{"KEYS_FILE": "/tmp/keys.json"}, KeysFile, ""},
		{map[string]string{"KEYS_FILE": "/tmp/keys.json", "KEY_STORE": "none"}, KeysNone, ""},
	}
	for _, tc := range cases {
		c, err := Load(env(tc.env))
		if err != nil || c.Keys.Store != tc.store || c.Keys.VaultURL != tc.vault || c.Keys.Refresh != 5*time.Minute {
			t.Errorf("%v: %+v %v", tc.env, c.Keys, err)
		}
	}
	for _, bad := range []map[string]string{
		{"KEY_STORE": "keyvault"},
		{"KEY_STORE": "file"},
		{"KEY_STORE": "redis"},
		{"KEY_VAULT_URL": "http://insecure.example"},
		{"KEY_VAULT_URL": "https://v.vault.azure.net/secrets"},
		{"KEY_VAULT_URL": "https://v.vault.azure.net?sig=s3cr3t"},
		{"KEY_VAULT_URL": "https://v.vault.azure.net?"},
		{"KEY_VAULT_URL": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=s3cr3t"},
		{"KEY_VAULT_NAME": "bad/name"},
		{"KEYS_FILE": "k.json", "KEYS_REFRESH": "0"},
	} {
		if _, err := Load(env(bad)); err == nil {
			t.Errorf("accepted %v", bad)
		} else if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error repeats the URL's query: %v", err)
		}
		// The keys CLI resolves the same settings the same way.
		if _, err := LoadKeys(env(bad)); err == nil {
			t.Errorf("LoadKeys accepted %v", bad)
		}
	}
	for _, tc := range cases {
		k, err := LoadKeys(env(tc.env))
		if err != nil || k.Store != tc.store || k.VaultURL != tc.vault {
			t.Errorf("LoadKeys %v: %+v %v", tc.env, k, err)
		}
	}
}

func TestUsageSettings(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || !c.Usage || c.UsageFlush != time.Minute || c.UsageTable != "hexproxusage" || c.RateLimit != 0 || c.DailyLimit != 0 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = Load(env(map[string]string{"USAGE_FLUSH": "10s", "USAGE_TABLE": "usage2", "RATE_LIMIT": "2.5", "DAILY_REQUEST_LIMIT": "50000", "WEBSITE_INSTANCE_ID": "abc123"}))
	if err != nil || c.UsageFlush != 10*time.Second || c.UsageTable != "usage2" || c.RateLimit != 2.5 || c.DailyLimit != 50000 || c.Instance != "abc123" {
		t.Fatalf("values: %+v %v", c, err)
	}
	if c, err := Load(env(map[string]string{"USAGE": "off"})); err != nil || c.Usage {
		t.Fatalf("USAGE=off: %v %v", c.Usage, err)
	}
	for _, bad := range []map[string]string{{"USAGE": "maybe"}, {"USAGE_FLUSH": "0"}, {"USAGE_TABLE": "x"}, {"RATE_LIMIT": "-1"}, {"RATE_LIMIT": "fast"}, {"DAILY_REQUEST_LIMIT": "1.5"}} {
		if _, err := Load(env(bad)); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

// The start-up line names the credential the table client will use, as
// azstorage chooses it.
func TestTableDescriptionNamesTheCredential(t *testing.T) {
	for want, e := range map[string]map[string]string{
		"default Azure credential":   {"AzureWebJobsStorage__accountName": "acct"},
		"managed identity)":          {"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__credential": "managedidentity"},
		"managed identity client-1)": {"AzureWebJobsStorage__accountName": "acct", "AzureWebJobsStorage__clientId": "client-1"},
	} {
		c, err := Load(env(e))
		if err != nil {
			t.Fatal(err)
		}
		if d := c.tableDescription(); !strings.Contains(d, want) {
			t.Errorf("%v: %q, want it to say %q", e, d, want)
		}
	}
}

func TestListenAddress(t *testing.T) {
	for v, want := range map[string]string{
		"":               "",
		"127.0.0.1":      "127.0.0.1",
		" 127.0.0.1 ":    "127.0.0.1",
		"0.0.0.0":        "0.0.0.0",
		"::1":            "::1",
		"[::1]":          "::1",
		"fe80::1%eth0":   "fe80::1%eth0",
		"localhost":      "localhost",
		"proxy.internal": "proxy.internal",
		"my-host.":       "my-host.",
	} {
		c, err := Load(env(map[string]string{"LISTEN_ADDRESS": v}))
		if err != nil || c.ListenAddress != want {
			t.Errorf("LISTEN_ADDRESS=%q: %q, %v; want %q", v, c.ListenAddress, err, want)
		}
	}
	for v, says := range map[string]string{
		"127.0.0.1:8080": "PORT sets the port",
		"[::1]:8080":     "PORT sets the port",
		"localhost:80":   "PORT sets the port",
		"999.0.0.1":      "not an IP address or host name",
		"http://a.b":     "not an IP address or host name",
		"-bad.example":   "not an IP address or host name",
		"two words":      "not an IP address or host name",
		"a..b":           "not an IP address or host name",
	} {
		_, err := Load(env(map[string]string{"LISTEN_ADDRESS": v}))
		if err == nil || !strings.Contains(err.Error(), "LISTEN_ADDRESS: ") || !strings.Contains(err.Error(), says) {
			t.Errorf("LISTEN_ADDRESS=%q: %v; want an error that says %q", v, err, says)
		}
	}
	c, _ := Load(env(map[string]string{"LISTEN_ADDRESS": "127.0.0.1"}))
	if !strings.Contains(c.String(), "listen_address=127.0.0.1") {
		t.Fatalf("the start-up line does not name the address: %s", c)
	}
}
