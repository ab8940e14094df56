// Package app assembles HexProx from its settings: logs, the token
// layers, the key cache, usage counting, the guess limit and the HTTP
// server. main, the usage command and the end-to-end tests all build the
// application here, so that the tests exercise production's wiring.
package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/keystore"
	"github.com/hexprox/hexprox/internal/logwriter"
	"github.com/hexprox/hexprox/internal/redact"
	"github.com/hexprox/hexprox/internal/server"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/tokenstore"
	"github.com/hexprox/hexprox/internal/tokenstore/azuretable"
	"github.com/hexprox/hexprox/internal/upstream"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/usagetable"
)

// Options are what the settings do not say: where logs go, the version,
// and, for tests, the parts they stand in for. The zero value of each
// field is production's.
type Options struct {
	// LogOut receives every log line, JSON, through a buffer off the
	// request path (Close writes the last ones); nil means os.Stdout.
	LogOut io.Writer
	// UnbufferedLogs writes log lines straight to LogOut: tests read them
	// the moment a request is answered.
	UnbufferedLogs bool
	Version        string
	// Now is the clock of tokens, limits, usage and key status; nil
	// means time.Now.
	Now func() time.Time
	// Upstream sends requests to Hexagon (not token requests); nil means
	// a transport built from the settings.
	Upstream http.RoundTripper
	// KeyStore is where API keys are read; nil means the store the
	// settings name (KEY_STORE).
	KeyStore keys.Store
	// KeyCache tunes the key cache; a zero Refresh means the settings'
	// (KEYS_REFRESH), and HashKey and Log always come from the settings
	// and the app.
	KeyCache keys.CacheOptions
	// Usage tunes the usage counter; a nil Sink means the one the settings
	// name, zero Flush and Instance the settings' too.
	Usage usage.Options
	// TokenStoreRetry is how long after a token-store outage is noticed
	// the store is tried again; zero means the default (30 s).
	TokenStoreRetry time.Duration
}

// App is HexProx, assembled.
type App struct {
	Config config.Config
	Log    *slog.Logger
	// Server answers every request; serve it with net/http.
	Server *server.Server
	// Usage counts requests; nil when USAGE is off.
	Usage *usage.Counter
	// Keys is the API key cache; nil when KEY_STORE is none.
	Keys *keys.Cache

	logs        *logwriter.Writer // nil: unbuffered
	stopServing context.CancelFunc
}

// New builds the application from cfg (config.Load). It makes no request
// to Hexagon or to storage: tables are created in the background, and
// tokens are fetched on first use.
func New(cfg config.Config, o Options) (*App, error) {
	if o.LogOut == nil {
		o.LogOut = os.Stdout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// What can fail comes first, before anything runs in the background.
	svc, err := storageClient(cfg)
	if err != nil {
		return nil, err
	}
	store := o.KeyStore
	if store == nil {
		settings := keystore.FromConfig(cfg.Keys)
		settings.Retry = &keystore.ServerRetry
		if store, err = keystore.Open(context.Background(), settings); err != nil {
			return nil, err
		}
	}

	a := &App{Config: cfg}
	out := o.LogOut
	if !o.UnbufferedLogs {
		a.logs = logwriter.New(o.LogOut, logwriter.Options{})
		out = a.logs
	}
	a.Log = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: redact.ReplaceAttr}))

	// What requests use lives until the last of them is answered: Close
	// ends it, after the listener's Shutdown, so that a request in flight
	// can still get a token.
	serving, stop := context.WithCancel(context.Background())
	a.stopServing = stop
	// How calls to Hexagon go, tokens and data alike, for /healthz; and
	// to each provider, its grant's token requests and data alike.
	health := &hexhealth.Recorder{}
	providerHealth := map[string]*hexhealth.Recorder{}
	for _, name := range cfg.Providers.Names() {
		providerHealth[name] = &hexhealth.Recorder{}
	}
	tokens := a.tokens(serving, cfg, svc, o, health, providerHealth)
	if store != nil {
		ko := o.KeyCache
		if ko.Refresh == 0 {
			ko.Refresh = cfg.Keys.Refresh
		}
		ko.HashKey, ko.Log = cfg.TokenHashKey, a.Log
		ko.ProviderTitle = func(name string) string {
			if p := cfg.Providers.Get(name); p != nil {
				return p.Title
			}
			return ""
		}
		if ko.Now == nil {
			ko.Now = o.Now
		}
		a.Keys = keys.NewCache(store, ko)
		go a.Keys.Watch(serving) // ends with Close
	}
	if cfg.Usage {
		uo := o.Usage
		if uo.Sink == nil {
			uo.Sink = openUsage(serving, cfg, svc, a.Log)
		}
		if uo.Instance == "" {
			uo.Instance = usage.ProcessInstance(cfg.Instance)
		}
		if uo.Flush == 0 {
			uo.Flush = cfg.UsageFlush
		}
		if uo.Now == nil {
			uo.Now = o.Now
		}
		uo.Log = a.Log
		a.Usage = usage.New(uo)
	}
	var guesses *guesslimit.Limiter
	if cfg.GuessLimit > 0 {
		guesses = guesslimit.New(guesslimit.Options{PerMinute: cfg.GuessLimit, Burst: min(cfg.GuessLimit, guesslimit.DefaultBurst), Now: o.Now})
	}
	a.Server = server.New(server.Options{
		Settings:       serverSettings(cfg),
		Tokens:         tokens,
		Context:        serving,
		Upstream:       o.Upstream,
		Health:         health,
		ProviderHealth: providerHealth,
		Keys:           a.Keys,
		Usage:          a.Usage,
		Guesses:        guesses,
		Log:            a.Log,
		// Request lines are written by the server itself, to the same
		// place as every other line.
		RequestLog: out,
		Version:    o.Version,
		Now:        o.Now,
	})
	return a, nil
}

// Close ends what requests use (token fetches), flushes the last usage
// counts and writes the last log lines, within ctx. Call it after the
// listener has shut down.
func (a *App) Close(ctx context.Context) error {
	a.stopServing()
	var err error
	if a.Usage != nil {
		if err = a.Usage.Close(ctx); err != nil {
			a.Log.Warn("the last usage flush failed; up to one flush interval of counts is lost", "err", err)
		}
	}
	if a.logs != nil {
		a.logs.Close(ctx)
	}
	return err
}

// serverSettings are what the server reads of cfg.
func serverSettings(cfg config.Config) server.Settings {
	return server.Settings{
		HexagonURL:      cfg.HexagonURL,
		Providers:       cfg.Providers,
		PublicBaseURL:   cfg.PublicBaseURL,
		AllowedOrigins:  cfg.AllowedOrigins,
		TileMode:        cfg.TileMode,
		CORSHeaders:     cfg.CORSHeaders,
		TrustedHops:     cfg.TrustedHops,
		CapabilitiesTTL: cfg.CapabilitiesTTL,
		UpstreamTimeout: cfg.UpstreamTimeout,
		RateLimit:       cfg.RateLimit,
		DailyLimit:      cfg.DailyLimit,
		LogLevel:        cfg.LogLevel,
		LogSample:       cfg.LogSample,
		HashKey:         cfg.TokenHashKey,
	}
}

// tokens builds each credential's token stack: the one place it is
// wired.
func (a *App) tokens(ctx context.Context, cfg config.Config, svc *aztables.ServiceClient, o Options, health *hexhealth.Recorder, providerHealth map[string]*hexhealth.Recorder) token.Stack {
	var store tokenstore.Store // nil: TOKEN_STORE=memory
	if cfg.TokenStore == config.TokenStoreTable {
		t := azuretable.New(svc, cfg.TokenTable)
		ensureLater(ctx, a.Log, t.EnsureTable, "cannot create the token table yet; tokens are fetched per instance until storage answers")
		store = t
	}
	return token.NewStack(token.StackOptions{
		Endpoint: &token.Endpoint{
			URL:     cfg.HexagonURL + upstream.HexagonTokenPath,
			Client:  &http.Client{Timeout: cfg.TokenTimeout},
			Now:     o.Now,
			Log:     a.Log,
			HashKey: cfg.TokenHashKey,
			Health:  health,
		},
		Store: store,
		Shared: token.SharedOptions{
			HashKey: cfg.TokenHashKey,
			Timeout: cfg.TokenStoreTimeout,
			Wait:    cfg.TokenTimeout,
			Now:     o.Now,
			Log:     a.Log,
			Health:  &token.StoreHealth{RetryAfter: o.TokenStoreRetry, Log: a.Log},
		},
		RefusalTTL: cfg.RefusalTTL,
		Now:        o.Now,
		Log:        a.Log,
		Provider:   providerGrants(cfg, o.Now, providerHealth),
	})
}

// providerGrants returns the bottom of the token stack of another
// provider's credential: its profile's grant (token.Grant), which tells
// the provider's recorder in health how its requests go; nil, a static
// key, when it has none.
func providerGrants(cfg config.Config, now func() time.Time, health map[string]*hexhealth.Recorder) func(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
	client := &http.Client{Timeout: cfg.TokenTimeout}
	return func(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
		p := cfg.Providers.Get(cred.Provider)
		var h *hexhealth.Recorder
		if p != nil {
			h = health[p.Name]
		}
		return token.Grant(ctx, p, cred, client, now, h)
	}
}

// storageClient returns the Table service client of the storage account
// the settings name, or nil when none is configured.
func storageClient(cfg config.Config) (*aztables.ServiceClient, error) {
	if !cfg.Storage.Configured() {
		return nil, nil
	}
	return azstorage.NewServiceClient(cfg.Storage)
}

// ensureLater creates a table in the background, so that start-up never
// waits on storage; both stores also create their table on first use.
func ensureLater(ctx context.Context, log *slog.Logger, ensure func(context.Context) error, warning string) {
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := ensure(ctx); err != nil && ctx.Err() == nil {
			log.Warn(warning, "err", err)
		}
	}()
}

// UsageSink returns where usage rows go for cfg, for the usage command:
// the usage table beside the token table, or, with no storage account, a
// directory on this machine.
func UsageSink(ctx context.Context, cfg config.Config) (usage.Sink, error) {
	svc, err := storageClient(cfg)
	if err != nil {
		return nil, err
	}
	return openUsage(ctx, cfg, svc, nil), nil
}

// openUsage returns where usage rows go: the usage table beside the
// token table, or, with no storage account (svc nil), a directory on this
// machine. log nil means the table is not created here.
func openUsage(ctx context.Context, cfg config.Config, svc *aztables.ServiceClient, log *slog.Logger) usage.Sink {
	if svc == nil {
		return &usage.DirSink{Dir: usageDir(cfg)}
	}
	sink := usagetable.New(svc, cfg.UsageTable)
	if log != nil {
		ensureLater(ctx, log, sink.EnsureTable, "cannot create the usage table yet; counts stay in memory until storage answers")
	}
	return sink
}

// usageDir is USAGE_DIR, else hexprox/usage in the user's cache directory.
func usageDir(cfg config.Config) string {
	if cfg.UsageDir != "" {
		return cfg.UsageDir
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "hexprox", "usage")
}
