// Package config loads HexProx's settings from the environment (app
// settings, in Azure) once, at start, into one struct with defaults.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/logsample"
	"github.com/hexprox/hexprox/internal/origin"
	"github.com/hexprox/hexprox/internal/provider"
)

// Tile delivery modes.
const (
	ModeAuto     = "auto"     // redirect desktop clients, stream to allowed browsers
	ModeRedirect = "redirect" // always redirect
	ModeProxy    = "proxy"    // always stream
)

// Config is every setting HexProx reads. The names in the field comments
// are the environment variables; they are a contract with deployments.
type Config struct {
	HexagonURL string // HEXAGON_URL: upstream base, no trailing slash
	// Providers are the profiles served beside Hexagon: the built-in
	// ones, their hosts replaced by PROVIDER_{NAME}_{ROLE}_URL, and the
	// operator's own from PROVIDERS_FILE (provider.ParseProfiles).
	Providers       provider.Catalog
	ProvidersFile   string        // PROVIDERS_FILE as given; "": none
	PublicBaseURL   string        // PUBLIC_BASE_URL: external base URL; "" derives it from each request
	AllowedOrigins  origin.List   // ALLOWED_ORIGINS: browser origins that get streamed tiles and CORS
	OriginsText     string        // ALLOWED_ORIGINS as given, for logs
	TileMode        string        // TILE_MODE: auto, redirect or proxy
	CORSHeaders     bool          // CORS_HEADERS: on, or off when the platform adds them
	Port            int           // FUNCTIONS_CUSTOMHANDLER_PORT, else PORT, else 8080
	ListenAddress   string        // LISTEN_ADDRESS: the one IP address (no brackets) or host name to listen on; "" every interface
	CapabilitiesTTL time.Duration // CAPABILITIES_TTL: how long a rewritten document is reused
	UpstreamTimeout time.Duration // UPSTREAM_TIMEOUT: wait for Hexagon's response headers, and for each read of a streamed body
	TokenTimeout    time.Duration // TOKEN_TIMEOUT: whole token request
	RefusalTTL      time.Duration // REFUSAL_TTL: how long a refused credential is not retried (at least 1s)
	LogLevel        slog.Level    // LOG_LEVEL: debug, info, warn, error
	// LogSample is LOG_SAMPLE: the share of successful request lines
	// logged (1, the default, logs all; errors and refusals always are).
	LogSample float64

	// GuessLimit is GUESS_LIMIT: how many refused or unknown credentials one
	// client address may try per minute before it is answered 429 without
	// asking Hexagon. 0 turns the limit off.
	GuessLimit int
	// TrustedHops is TRUSTED_HOPS: how many proxies in front of HexProx
	// append to X-Forwarded-For, and so how far from the right of that list
	// the client's address is read. 0 ignores the header (the peer address
	// is the client). "auto", the default, is 1 on Azure or under the
	// Functions host (where the platform's front end appends the client's
	// address, or a proxying Functions host sets it as the only one) and 0
	// elsewhere.
	TrustedHops int

	Keys Keys // where API keys are kept (KEY_STORE)

	// Usage is USAGE: on (the default) counts requests per organisation,
	// key or credential; off counts nothing, and daily quotas cannot be
	// enforced (rate limits still are).
	Usage      bool
	UsageFlush time.Duration // USAGE_FLUSH: how often each instance writes its counters
	UsageTable string        // USAGE_TABLE: the usage table, in the token table's storage account
	// UsageDir is USAGE_DIR: where usage rows are kept when no storage
	// account is configured; "" means the user's cache directory.
	UsageDir string
	// Instance is WEBSITE_INSTANCE_ID on Azure (the machine), else "":
	// the start of this process's usage rows' name (usage.ProcessInstance).
	Instance string
	// RateLimit and DailyLimit are RATE_LIMIT (requests per second per
	// instance) and DAILY_REQUEST_LIMIT (requests per UTC day across all
	// instances) for each v1 credential URL; zero means unlimited. A key's
	// record sets its own.
	RateLimit  float64
	DailyLimit int64

	TokenStore        TokenStore    // TOKEN_STORE resolved
	Storage           Storage       // the storage account of the token (and usage) tables
	TokenTable        string        // TOKEN_TABLE_NAME
	TokenHashKey      string        // TOKEN_HASH_KEY: keys the HMAC naming rows; secret
	TokenStoreTimeout time.Duration // TOKEN_STORE_TIMEOUT: bound on each store call
}

// Key stores (KEY_STORE).
const (
	KeysNone     = "none"     // no API keys: /v2 answers 404
	KeysKeyVault = "keyvault" // Azure Key Vault, the original HexProx's layout
	KeysFile     = "file"     // a JSON file (KEYS_FILE)
)

// Keys say where API key records are kept and how long each instance
// reuses one.
type Keys struct {
	Store    string // KEY_STORE resolved: none, keyvault or file
	VaultURL string // KEY_VAULT_URL, or https://{KEY_VAULT_NAME}.vault.azure.net
	ClientID string // MANAGED_IDENTITY_CLIENT_ID: a user-assigned identity for Key Vault
	// Managed: the host offers a managed identity (IDENTITY_ENDPOINT, or
	// MSI_ENDPOINT on older hosts), which then reads the vault; else the
	// admin's or developer's own Azure login does.
	Managed bool
	File    string        // KEYS_FILE
	Refresh time.Duration // KEYS_REFRESH: revocation reaches every instance within it
}

// TokenStore is where tokens are kept (TOKEN_STORE resolved).
type TokenStore string

const (
	TokenStoreMemory TokenStore = "memory" // each instance's memory alone
	TokenStoreTable  TokenStore = "table"  // shared by every instance through Azure Table Storage
)

// Storage locates the Azure Storage account whose Table service holds the
// token and usage tables. At most one of ConnectionString and ServiceURL
// is set; neither means no storage is configured.
type Storage struct {
	// ConnectionString is TOKEN_TABLE_CONNECTION or AzureWebJobsStorage
	// (a secret); "UseDevelopmentStorage=true" means Azurite.
	ConnectionString string
	ServiceURL       string // from AzureWebJobsStorage__tableServiceUri or __accountName
	ManagedIdentity  bool   // AzureWebJobsStorage__credential=managedidentity
	ClientID         string // AzureWebJobsStorage__clientId: a user-assigned identity
	Source           string // which setting it came from, for logs
}

// Configured reports whether a storage account is set.
func (s Storage) Configured() bool { return s.ConnectionString != "" || s.ServiceURL != "" }

// Defaults.
const (
	DefaultHexagonURL     = "https://services.hxgncontent.com"
	DefaultAllowedOrigins = "https://*.arcgis.com"
	DefaultPort           = 8080
	DefaultGuessLimit     = 20
)

// onAzure reports whether the process runs on Azure App Service or under
// the Functions host, whose front end appends the client's address to
// X-Forwarded-For (and under which every peer address is the host's
// loopback).
func onAzure(get func(name, def string) string) bool {
	return get("WEBSITE_INSTANCE_ID", "") != "" || get("WEBSITE_SITE_NAME", "") != "" || get("FUNCTIONS_CUSTOMHANDLER_PORT", "") != ""
}

// getter reads a setting through getenv, trimmed, or def when it is unset
// or blank.
func getter(getenv func(string) string) func(name, def string) string {
	return func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
}

// collect returns a function that adds a setting's problem to errs.
func collect(errs *[]error) func(name, format string, args ...any) {
	return func(name, format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
}

// Load reads the settings through getenv (os.Getenv in main). It reports
// every problem at once.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	bad := collect(&errs)
	get := getter(getenv)
	c := Config{}

	var err error
	if c.HexagonURL, err = BaseURL(get("HEXAGON_URL", DefaultHexagonURL)); err != nil {
		bad("HEXAGON_URL", "%v", err)
	}
	c.ProvidersFile = get("PROVIDERS_FILE", "")
	c.Providers = providers(get, bad)
	if v := get("PUBLIC_BASE_URL", ""); v != "" {
		if c.PublicBaseURL, err = BaseURL(v); err != nil {
			bad("PUBLIC_BASE_URL", "%v", err)
		}
	}
	c.OriginsText = get("ALLOWED_ORIGINS", DefaultAllowedOrigins)
	if c.AllowedOrigins, err = origin.Parse(c.OriginsText); err != nil {
		bad("ALLOWED_ORIGINS", "%v", err)
	}
	switch c.TileMode = strings.ToLower(get("TILE_MODE", ModeAuto)); c.TileMode {
	case ModeAuto, ModeRedirect, ModeProxy:
	default:
		bad("TILE_MODE", "%q is not auto, redirect or proxy", c.TileMode)
	}
	c.CORSHeaders = onOff(get, bad, "CORS_HEADERS", true)

	portName, portText := "PORT", get("PORT", strconv.Itoa(DefaultPort))
	if v := get("FUNCTIONS_CUSTOMHANDLER_PORT", ""); v != "" {
		portName, portText = "FUNCTIONS_CUSTOMHANDLER_PORT", v
	}
	if c.Port, err = strconv.Atoi(portText); err != nil || c.Port < 1 || c.Port > 65535 {
		bad(portName, "%q is not a port number", portText)
	}

	if c.ListenAddress, err = listenAddress(get("LISTEN_ADDRESS", "")); err != nil {
		bad("LISTEN_ADDRESS", "%v", err)
	}

	c.CapabilitiesTTL = durationOf(get, bad, "CAPABILITIES_TTL", 5*time.Minute, 0)
	c.UpstreamTimeout = durationOf(get, bad, "UPSTREAM_TIMEOUT", 30*time.Second, time.Nanosecond)
	c.TokenTimeout = durationOf(get, bad, "TOKEN_TIMEOUT", 15*time.Second, time.Nanosecond)
	// At least a second: a refused credential must not be retried on every
	// request.
	c.RefusalTTL = durationOf(get, bad, "REFUSAL_TTL", 30*time.Second, time.Second)
	if c.GuessLimit, err = strconv.Atoi(get("GUESS_LIMIT", strconv.Itoa(DefaultGuessLimit))); err != nil || c.GuessLimit < 0 {
		bad("GUESS_LIMIT", "%q is not a whole number of tries per minute (0 turns the limit off)", getenv("GUESS_LIMIT"))
	}
	switch v := strings.ToLower(get("TRUSTED_HOPS", "auto")); v {
	case "auto":
		if onAzure(get) {
			c.TrustedHops = 1
		}
	default:
		if c.TrustedHops, err = strconv.Atoi(v); err != nil || c.TrustedHops < 0 || c.TrustedHops > 8 {
			bad("TRUSTED_HOPS", "%q is not auto or a number of proxies from 0 to 8", v)
		}
	}
	if c.LogSample, err = logsample.ParseRate(get("LOG_SAMPLE", "")); err != nil {
		bad("LOG_SAMPLE", "%v", err)
	}
	c.loadTokenStore(get, bad)
	c.loadKeys(get, bad)
	c.loadUsage(get, bad)
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", getenv("LOG_LEVEL"))
	}
	return c, errors.Join(errs...)
}

// loadTokenStore resolves TOKEN_STORE and where the table is.
func (c *Config) loadTokenStore(get func(name, def string) string, bad func(name, format string, args ...any)) {
	t := &c.Storage
	switch {
	case get("TOKEN_TABLE_CONNECTION", "") != "":
		t.ConnectionString, t.Source = get("TOKEN_TABLE_CONNECTION", ""), "TOKEN_TABLE_CONNECTION"
	case get("AzureWebJobsStorage", "") != "":
		t.ConnectionString, t.Source = get("AzureWebJobsStorage", ""), "AzureWebJobsStorage"
	case get("AzureWebJobsStorage__tableServiceUri", "") != "":
		t.ServiceURL, t.Source = strings.TrimSuffix(get("AzureWebJobsStorage__tableServiceUri", ""), "/"), "AzureWebJobsStorage__tableServiceUri"
	case get("AzureWebJobsStorage__accountName", "") != "":
		t.ServiceURL, t.Source = "https://"+get("AzureWebJobsStorage__accountName", "")+".table.core.windows.net", "AzureWebJobsStorage__accountName"
	}
	dev := strings.EqualFold(strings.ReplaceAll(t.ConnectionString, " ", ""), "UseDevelopmentStorage=true")
	if t.ConnectionString != "" && !dev && !strings.Contains(t.ConnectionString, "AccountName=") && !strings.Contains(t.ConnectionString, "SharedAccessSignature=") {
		bad(t.Source, "is not a storage connection string (AccountName=...;AccountKey=... or UseDevelopmentStorage=true)")
	}
	if t.ServiceURL != "" {
		if u, err := url.Parse(t.ServiceURL); err != nil || u.Scheme != "https" || u.Host == "" {
			bad(t.Source, "must give an https table endpoint (managed identities are refused over http)")
		}
	}
	t.ManagedIdentity = strings.EqualFold(get("AzureWebJobsStorage__credential", ""), "managedidentity")
	t.ClientID = get("AzureWebJobsStorage__clientId", "")
	c.TokenTable = get("TOKEN_TABLE_NAME", "hexproxtokens")
	if !tableName(c.TokenTable) {
		bad("TOKEN_TABLE_NAME", "%q must be 3-63 letters and digits, starting with a letter", c.TokenTable)
	}
	configured := t.Configured()
	switch mode := strings.ToLower(get("TOKEN_STORE", "auto")); mode {
	case "auto":
		c.TokenStore = TokenStoreMemory
		if configured {
			c.TokenStore = TokenStoreTable
		}
	case "memory":
		c.TokenStore = TokenStoreMemory
	case "table":
		c.TokenStore = TokenStoreTable
		if !configured {
			bad("TOKEN_STORE", "table needs TOKEN_TABLE_CONNECTION, AzureWebJobsStorage or AzureWebJobsStorage__accountName")
		}
	default:
		bad("TOKEN_STORE", "%q is not auto, memory or table", mode)
	}
	c.TokenHashKey = get("TOKEN_HASH_KEY", "")
	c.TokenStoreTimeout = durationOf(get, bad, "TOKEN_STORE_TIMEOUT", 2*time.Second, time.Nanosecond)
}

// LoadKeys resolves the key store's settings alone (KEY_STORE and those
// it names), exactly as Load does, for the tools that administer keys:
// what they open is what the server reads.
func LoadKeys(getenv func(string) string) (Keys, error) {
	var c Config
	var errs []error
	c.loadKeys(getter(getenv), collect(&errs))
	return c.Keys, errors.Join(errs...)
}

// VaultURL checks a Key Vault URL (KEY_VAULT_URL, or the keys CLI's
// --vault) and returns it without a trailing slash.
func VaultURL(v string) (string, error) {
	v = strings.TrimSuffix(strings.TrimSpace(v), "/")
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "" || u.User != nil || u.Opaque != "" || strings.ContainsAny(v, "?#") {
		return "", fmt.Errorf("%s is not a vault URL such as https://myvault.vault.azure.net (nothing after the host)", shownURL(v))
	}
	return v, nil
}

// shownURL is how an error names a URL setting's value: its scheme and
// host, quoted, when it looks like a plain URL (and "/…" for a path, which
// may be a proxy URL's credential), else "the URL", so that an error
// never repeats a password, a token in a query or path, or a connection
// string pasted into the wrong setting.
func shownURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.ContainsAny(v, "@?#;") {
		return "the URL"
	}
	shown := u.Scheme + "://" + u.Host
	if strings.Trim(u.Path, "/") != "" {
		shown += "/…"
	}
	return strconv.Quote(shown)
}

// loadKeys resolves KEY_STORE. Unset, it is keyvault when a vault is
// named, file when KEYS_FILE is set, and none otherwise.
func (c *Config) loadKeys(get func(name, def string) string, bad func(name, format string, args ...any)) {
	k := &c.Keys
	k.VaultURL = get("KEY_VAULT_URL", "")
	setting := "KEY_VAULT_URL"
	if name := get("KEY_VAULT_NAME", ""); k.VaultURL == "" && name != "" {
		k.VaultURL, setting = "https://"+name+".vault.azure.net", "KEY_VAULT_NAME"
	}
	if k.VaultURL != "" {
		var err error
		if k.VaultURL, err = VaultURL(k.VaultURL); err != nil {
			bad(setting, "%v", err)
		}
	}
	k.ClientID = get("MANAGED_IDENTITY_CLIENT_ID", "")
	k.Managed = get("IDENTITY_ENDPOINT", "") != "" || get("MSI_ENDPOINT", "") != ""
	k.File = get("KEYS_FILE", "")
	def := KeysNone
	switch {
	case k.VaultURL != "":
		def = KeysKeyVault
	case k.File != "":
		def = KeysFile
	}
	switch k.Store = strings.ToLower(get("KEY_STORE", def)); k.Store {
	case KeysNone:
	case KeysKeyVault:
		if k.VaultURL == "" {
			bad("KEY_STORE", "keyvault needs KEY_VAULT_URL or KEY_VAULT_NAME")
		}
	case KeysFile:
		if k.File == "" {
			bad("KEY_STORE", "file needs KEYS_FILE")
		}
	default:
		bad("KEY_STORE", "%q is not none, keyvault or file", k.Store)
	}
	k.Refresh = durationOf(get, bad, "KEYS_REFRESH", 5*time.Minute, time.Second)
}

// loadUsage reads the usage counters' and limits' settings.
func (c *Config) loadUsage(get func(name, def string) string, bad func(name, format string, args ...any)) {
	c.Usage = onOff(get, bad, "USAGE", true)
	c.UsageFlush = durationOf(get, bad, "USAGE_FLUSH", time.Minute, time.Second)
	c.UsageTable = get("USAGE_TABLE", "hexproxusage")
	if !tableName(c.UsageTable) {
		bad("USAGE_TABLE", "%q must be 3-63 letters and digits, starting with a letter", c.UsageTable)
	}
	c.UsageDir = get("USAGE_DIR", "")
	c.Instance = get("WEBSITE_INSTANCE_ID", "")
	if v := get("RATE_LIMIT", ""); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 1e6 {
			bad("RATE_LIMIT", "%q is not a positive number of requests per second", v)
		}
		c.RateLimit = r
	}
	if v := get("DAILY_REQUEST_LIMIT", ""); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			bad("DAILY_REQUEST_LIMIT", "%q is not a positive whole number of requests", v)
		}
		c.DailyLimit = n
	}
}

// listenAddress checks LISTEN_ADDRESS: an IP address (an IPv6 one with
// or without brackets) or a host name, and no port. It returns the
// address without brackets, ready for net.JoinHostPort.
func listenAddress(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	host := v
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		host = v[1 : len(v)-1]
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, nil
	}
	if h, p, err := net.SplitHostPort(v); err == nil && p != "" && strings.Trim(p, "0123456789") == "" {
		return "", fmt.Errorf("%q has a port: give the address alone (%s); PORT sets the port", v, h)
	}
	if !hostName(v) {
		return "", fmt.Errorf("%q is not an IP address or host name, such as 127.0.0.1 or ::1 (unset: every interface)", v)
	}
	return v, nil
}

// hostName reports whether s is a DNS host name: dot-separated labels of
// letters, digits and inner hyphens, each at most 63 long, 253 in all,
// the last not all digits (a mistyped IPv4 address).
func hostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(s, "."), ".")
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return false
	}
	for _, label := range labels {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return false
		}
	}
	return true
}

func tableName(s string) bool {
	if len(s) < 3 || len(s) > 63 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == ""
}

// endpoint names where the storage account is without any secret.
func (t Storage) endpoint() string {
	if strings.EqualFold(strings.ReplaceAll(t.ConnectionString, " ", ""), "UseDevelopmentStorage=true") {
		return "Azurite (UseDevelopmentStorage=true)"
	}
	if t.ServiceURL != "" {
		return t.ServiceURL
	}
	for _, part := range strings.Split(t.ConnectionString, ";") {
		if k, v, ok := strings.Cut(part, "="); ok && (k == "TableEndpoint" || k == "AccountName") {
			return v
		}
	}
	return ""
}

// onOff reads an on/off setting (on, true, 1, yes; off, false, 0, no);
// def is its default.
func onOff(get func(name, def string) string, bad func(name, format string, args ...any), name string, def bool) bool {
	d := "off"
	if def {
		d = "on"
	}
	switch v := strings.ToLower(get(name, d)); v {
	case "on", "true", "1", "yes":
		return true
	case "off", "false", "0", "no":
		return false
	default:
		bad(name, "%q is not on or off", v)
		return def
	}
}

// durationOf reads a duration setting of at least least; def is its
// default.
func durationOf(get func(name, def string) string, bad func(name, format string, args ...any), name string, def, least time.Duration) time.Duration {
	v := get(name, "")
	if v == "" {
		return def
	}
	d, err := duration(v)
	switch {
	case err == nil && d >= least:
		return d
	case least >= time.Second:
		bad(name, "%q is not a duration of at least %v, such as 30s or 5m", v, least)
	case least > 0:
		bad(name, "%q is not a positive duration, such as 30s or 5m", v)
	default:
		bad(name, "%q is not a duration such as 30s or 5m", v)
	}
	return def
}

// duration accepts Go durations ("90s", "5m") and plain seconds ("90").
func duration(v string) (time.Duration, error) {
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("bad duration")
	}
	return d, nil
}

// providerHosts reads PROVIDER_{NAME}_{ROLE}_URL, which point a built-in
// provider's hosts elsewhere (tests, private mirrors):
// PROVIDER_PLANET_TILES_URL. nil when none is set.
func providerHosts(get func(name, def string) string, bad func(name, format string, args ...any)) map[string]map[string]string {
	var out map[string]map[string]string
	builtin, _ := provider.NewCatalog(nil, nil) // the built-in profiles alone: no error
	for _, name := range builtin.Names() {
		for _, h := range builtin.Get(name).Hosts {
			role := h.Role
			setting := "PROVIDER_" + strings.ToUpper(name) + "_" + strings.ToUpper(role) + "_URL"
			v := get(setting, "")
			if v == "" {
				continue
			}
			u, err := BaseURL(v)
			if err != nil {
				bad(setting, "%v", err)
				continue
			}
			if out == nil {
				out = map[string]map[string]string{}
			}
			if out[name] == nil {
				out[name] = map[string]string{}
			}
			out[name][role] = u
		}
	}
	return out
}

// providers builds the catalog: the built-in profiles with their hosts
// as PROVIDER_{NAME}_{ROLE}_URL say, and the operator's profiles from
// the file PROVIDERS_FILE names.
func providers(get func(name, def string) string, bad func(name, format string, args ...any)) provider.Catalog {
	hosts := providerHosts(get, bad)
	var own []provider.Profile
	if name := get("PROVIDERS_FILE", ""); name != "" {
		data, err := readLimited(name, provider.MaxProfilesSize+1) // one more: ParseProfiles says it is too large
		switch {
		case err != nil:
			bad("PROVIDERS_FILE", "cannot be read: %v", err)
		default:
			if own, err = provider.ParseProfiles(data); err != nil {
				bad("PROVIDERS_FILE", "%v", err)
			}
		}
	}
	c, err := provider.NewCatalog(hosts, own)
	if err != nil {
		bad("PROVIDERS_FILE", "%v", err)
		c, _ = provider.NewCatalog(hosts, nil)
	}
	return c
}

// readLimited reads at most n bytes of the file name.
func readLimited(name string, n int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, errors.Unwrap(err) // the *PathError's path is the setting, already named
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// LoadProviders reads only what Load reads of providers
// (PROVIDER_{NAME}_{ROLE}_URL, PROVIDERS_FILE): for the keys CLI, which
// checks a provider's credential before saving it.
func LoadProviders(getenv func(string) string) (provider.Catalog, error) {
	var errs []error
	c := providers(getter(getenv), collect(&errs))
	return c, errors.Join(errs...)
}

// BaseURL validates an absolute http(s) URL without query, fragment or
// user info (HEXAGON_URL, PUBLIC_BASE_URL, and the keys CLI's), and
// returns it without a trailing slash.
// A value with user info, a query or a fragment may hold a password or a
// token, so errors do not repeat it.
func BaseURL(v string) (string, error) {
	u, err := url.Parse(v)
	shown := shownURL(v)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s is not a URL", shown)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s must start with https:// or http://", shown)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("%s must be scheme://host[:port][/path] with nothing else (no user info, query or fragment)", shown)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// LogValue lists the settings for the start-up log line. Secrets (the
// storage connection string, TOKEN_HASH_KEY) appear only as present or
// absent.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("hexagon_url", c.HexagonURL),
		slog.Any("providers", c.Providers.Names()),
		slog.String("providers_file", c.ProvidersFile),
		slog.String("public_base_url", c.PublicBaseURL),
		slog.String("allowed_origins", c.OriginsText),
		slog.String("tile_mode", c.TileMode),
		slog.Bool("cors_headers", c.CORSHeaders),
		slog.Int("port", c.Port),
		slog.String("listen_address", c.ListenAddress),
		slog.String("capabilities_ttl", c.CapabilitiesTTL.String()),
		slog.String("upstream_timeout", c.UpstreamTimeout.String()),
		slog.String("token_timeout", c.TokenTimeout.String()),
		slog.String("refusal_ttl", c.RefusalTTL.String()),
		slog.Int("guess_limit", c.GuessLimit),
		slog.Int("trusted_hops", c.TrustedHops),
		slog.String("token_store", string(c.TokenStore)),
		slog.String("token_table", c.tableDescription()),
		slog.Bool("token_hash_key_set", c.TokenHashKey != ""),
		slog.String("key_store", c.keysDescription()),
		slog.Float64("log_sample", c.LogSample),
		slog.Bool("usage", c.Usage),
		slog.String("usage_flush", c.UsageFlush.String()),
		slog.Float64("rate_limit", c.RateLimit),
		slog.Int64("daily_request_limit", c.DailyLimit),
	)
}

// String prints the settings as the start-up log line does, so that %v
// never shows a connection string or the hash key.
func (c Config) String() string { return c.LogValue().String() }

func (c Config) keysDescription() string {
	switch c.Keys.Store {
	case KeysKeyVault:
		return "keyvault " + c.Keys.VaultURL + ", refresh " + c.Keys.Refresh.String()
	case KeysFile:
		return "file " + c.Keys.File + ", refresh " + c.Keys.Refresh.String()
	}
	return KeysNone
}

func (c Config) tableDescription() string {
	if c.TokenStore != TokenStoreTable {
		return ""
	}
	d := c.TokenTable + " at " + c.Storage.endpoint() + " (from " + c.Storage.Source
	switch s := c.Storage; {
	case s.ServiceURL == "":
	case s.ClientID != "":
		d += ", managed identity " + s.ClientID
	case s.ManagedIdentity:
		d += ", managed identity"
	default: // as azstorage.NewServiceClient does
		d += ", default Azure credential"
	}
	return d + ")"
}
