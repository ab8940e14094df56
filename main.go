// Command handler is HexProx: a reverse proxy that lets GIS clients use
// Hexagon's token-protected WMTS and WMS imagery with OAuth client
// credentials, or a revocable API key, in the URL path. It runs as an
// Azure Functions custom handler (the host sets
// FUNCTIONS_CUSTOMHANDLER_PORT) or as a plain server (PORT).
//
//	handler                 serve
//	handler keys ...        administer API keys (handler keys help)
//	handler usage ...       report usage per organisation (handler usage -h)
//
// This file only wires: settings, logs, stores, token sources, server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/keyadmin"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/keystore"
	"github.com/hexprox/hexprox/internal/logwriter"
	"github.com/hexprox/hexprox/internal/redact"
	"github.com/hexprox/hexprox/internal/server"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/tokenstore"
	"github.com/hexprox/hexprox/internal/tokenstore/azuretable"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/report"
	"github.com/hexprox/hexprox/internal/usage/usagetable"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd := append(os.Args[1:], "")[0]; cmd {
	case "":
		tuneGC(os.Getenv, os.ReadFile)
		err = run(ctx, os.Getenv, os.Stdout)
	case "keys":
		err = keyadmin.Run(ctx, os.Args[2:], keyadmin.OSEnv(func() (config.Keys, error) { return config.LoadKeys(os.Getenv) }, os.Getenv("PUBLIC_BASE_URL")))
	case "usage":
		err = usageReport(ctx, os.Args[2:], os.Getenv, os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(help)
	default:
		err = fmt.Errorf("unknown command %q: run handler with no arguments to serve, or use \"handler keys\" or \"handler usage\"", cmd)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "hexprox:", err)
		os.Exit(1)
	}
}

const help = `HexProx: Hexagon's imagery for every GIS client, through one URL.

  handler                 serve (settings from the environment: see README.md)
  handler keys ...        administer API keys (handler keys help)
  handler usage ...       report usage per organisation, key, day or hour (handler usage -h)
`

// Garbage collection when the environment leaves it to us. The proxy
// keeps a few MB and allocates about 1 KB per request, so at Go's
// default GOGC=100 it collects dozens of times a second under load;
// gcPercent gives it four times the room (bench/RESULTS.md: the
// redirect's server CPU per request falls by about a tenth). A soft
// memory limit makes the collector work harder rather than let that room
// cost an instance its memory: three quarters of the container's memory
// when it has a limit, and at most maxMemoryLimit. GOGC and GOMEMLIMIT,
// when set, win.
const (
	gcPercent      = 400
	maxMemoryLimit = 512 << 20
)

func tuneGC(getenv func(string) string, readFile func(string) ([]byte, error)) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit(readFile))
	}
}

// cgroupMemory are where a container's memory limit is read: cgroup v2,
// then v1. An unlimited v2 says "max"; v1 a number beyond any machine's.
var cgroupMemory = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

func softMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	for _, f := range cgroupMemory {
		b, err := readFile(f)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return min(maxMemoryLimit, n/4*3)
		}
		break
	}
	return maxMemoryLimit
}

// run serves until ctx is done.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	// Log lines leave through a buffer, off the request path; the last
	// ones are written before run returns.
	lw := logwriter.New(logOut, logwriter.Options{})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lw.Close(ctx)
	}()
	log := slog.New(slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: redact.ReplaceAttr}))

	// What requests use lives until the last of them is answered: the
	// signal (ctx) stops the listener; serving ends after Shutdown, so
	// that a request in flight can still get a token.
	serving, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()

	svc, err := storageClient(cfg)
	if err != nil {
		return err
	}
	store := openTokenStore(serving, cfg, svc, log)
	endpoint := &token.Endpoint{
		URL:    cfg.HexagonURL + "/streaming/oauth/token",
		Client: &http.Client{Timeout: cfg.TokenTimeout},
		Log:    log,
	}
	layers := token.Layered(endpoint, store, token.SharedOptions{
		HashKey: cfg.TokenHashKey,
		Timeout: cfg.TokenStoreTimeout,
		Wait:    cfg.TokenTimeout,
		Log:     log,
	})
	keyCache, err := openKeys(ctx, cfg, log)
	if err != nil {
		return err
	}
	var counter *usage.Counter
	if cfg.Usage {
		counter = usage.New(usage.Options{Sink: openUsage(serving, cfg, svc, log), Instance: usage.ProcessInstance(cfg.Instance), Flush: cfg.UsageFlush, Log: log})
	}
	var guesses *guesslimit.Limiter
	if cfg.GuessLimit > 0 {
		guesses = guesslimit.New(guesslimit.Options{PerMinute: cfg.GuessLimit, Burst: min(cfg.GuessLimit, guesslimit.DefaultBurst)})
	}
	handler := server.New(server.Options{Config: cfg, Tokens: layers, Context: serving, Keys: keyCache, Usage: counter, Guesses: guesses, Log: log, RequestLog: lw, Version: version})

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("listening", "addr", ln.Addr().String(), "version", version, "settings", cfg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	stopServing()
	// The last counts go out before the process ends, with time of their
	// own: Shutdown may have used all of its.
	if counter != nil {
		flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := counter.Close(flush); err != nil {
			log.Warn("the last usage flush failed; up to one flush interval of counts is lost", "err", err)
		}
	}
	log.Info("stopped")
	return nil
}

// storageClient returns the Table service client of the storage account
// the settings name, or nil when none is configured.
func storageClient(cfg config.Config) (*aztables.ServiceClient, error) {
	if !cfg.Storage.Configured() {
		return nil, nil
	}
	return azstorage.NewServiceClient(cfg.Storage)
}

// openTokenStore returns the token store the settings name: the table,
// or nil for none (TOKEN_STORE=memory: tokens live in each instance's
// memory only).
func openTokenStore(ctx context.Context, cfg config.Config, svc *aztables.ServiceClient, log *slog.Logger) tokenstore.Store {
	if cfg.TokenStore != "table" {
		return nil
	}
	store := azuretable.New(svc, cfg.TokenTable)
	ensureLater(ctx, log, store.EnsureTable, "cannot create the token table yet; tokens are fetched per instance until storage answers")
	return store
}

// ensureLater creates a table in the background, so that start-up never
// waits on storage; both stores also create their table on first use.
func ensureLater(ctx context.Context, log *slog.Logger, ensure func(context.Context) error, warning string) {
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := ensure(ctx); err != nil {
			log.Warn(warning, "err", err)
		}
	}()
}

// openKeys returns the API key cache over the store KEY_STORE names, or
// nil for none.
func openKeys(ctx context.Context, cfg config.Config, log *slog.Logger) (*keys.Cache, error) {
	settings := keystore.FromConfig(cfg.Keys)
	settings.Retry = &keystore.ServerRetry
	store, err := keystore.Open(ctx, settings)
	if err != nil || store == nil {
		return nil, err
	}
	return keys.NewCache(store, keys.CacheOptions{Refresh: cfg.Keys.Refresh, HashKey: cfg.TokenHashKey, Log: log}), nil
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

// usageReport runs "handler usage": it reads every instance's rows from
// the same place the server writes them.
func usageReport(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	svc, err := storageClient(cfg)
	if err != nil {
		return err
	}
	return report.Run(ctx, args, out, openUsage(ctx, cfg, svc, nil))
}
