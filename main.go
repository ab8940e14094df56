// Command handler is HexProx: a reverse proxy that lets GIS clients use
// Hexagon's token-protected WMTS imagery with the OAuth client credentials
// in the URL path. It runs as an Azure Functions custom handler (the host
// sets FUNCTIONS_CUSTOMHANDLER_PORT) or as a plain server (PORT).
//
// This file only wires: settings, logs, token sources, server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/redact"
	"github.com/hexprox/hexprox/internal/server"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/tokenstore"
	"github.com/hexprox/hexprox/internal/tokenstore/azuretable"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hexprox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("invalid settings:\n%w", err)
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: redact.ReplaceAttr}))
	slog.SetDefault(log)

	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	endpoint := &token.Endpoint{
		URL:    cfg.HexagonURL + "/streaming/oauth/token",
		Client: &http.Client{Timeout: cfg.TokenTimeout},
	}
	layers := token.Layered(endpoint, store, token.SharedOptions{
		HashKey: cfg.TokenHashKey,
		Timeout: cfg.TokenStoreTimeout,
		Wait:    cfg.TokenTimeout,
		Log:     log,
	})
	tokens := token.NewRegistry(ctx, layers, token.RegistryOptions{RefusalTTL: cfg.RefusalTTL, Log: log})
	handler := server.New(server.Options{Config: cfg, Tokens: tokens, Log: log, Version: version})

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
	log.Info("stopped")
	return nil
}

// openStore returns the token store the settings name. The table is
// created in the background, so that start-up never waits on storage.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (tokenstore.Store, error) {
	if cfg.TokenStore != "table" {
		return tokenstore.NewMemory(), nil
	}
	t := cfg.Table
	store, err := azuretable.Open(azuretable.Settings{
		ConnectionString: t.ConnectionString,
		ServiceURL:       t.ServiceURL,
		ManagedIdentity:  t.ManagedIdentity,
		ClientID:         t.ClientID,
		Table:            t.Name,
	})
	if err != nil {
		return nil, err
	}
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := store.EnsureTable(ctx); err != nil {
			log.Warn("cannot create the token table yet; tokens are fetched per instance until storage answers", "err", err)
		}
	}()
	return store, nil
}
