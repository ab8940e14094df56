// Command handler is HexProx: a reverse proxy that lets GIS clients use
// Hexagon's token-protected WMTS and WMS imagery with OAuth client
// credentials, or a revocable API key, in the URL path. It runs as an
// Azure Functions custom handler (the host sets
// FUNCTIONS_CUSTOMHANDLER_PORT) or as a plain server (PORT).
//
//	handler                 serve
//	handler keys ...        administer API keys (handler keys help)
//	handler usage ...       report usage per organisation (handler usage help)
//	handler version         print the version
//
// This file only wires: settings, the application (internal/app), the
// listener and the commands.
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
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/keyadmin"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/report"
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
		err = keyadmin.Run(ctx, os.Args[2:], keyadmin.OSEnv(func() (config.Keys, error) { return config.LoadKeys(os.Getenv) }, os.Getenv))
	default:
		err = command(ctx, os.Args[1:], os.Getenv, os.Stdout)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "hexprox:", err)
		os.Exit(1)
	}
}

// command runs the commands that need no terminal or server: usage, help
// and version. args are the process's arguments after its name.
func command(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	switch cmd := append(args, "")[0]; cmd {
	case "usage":
		return usageReport(ctx, args[1:], getenv, out)
	case "help", "-h", "--help":
		_, err := io.WriteString(out, help)
		return err
	case "version", "--version":
		_, err := fmt.Fprintln(out, "hexprox", fullVersion(debug.ReadBuildInfo))
		return err
	default:
		return fmt.Errorf("unknown command %q: run handler with no arguments to serve, or see \"handler help\"", cmd)
	}
}

const help = `HexProx: Hexagon's imagery for every GIS client, through one URL.

  handler                 serve (settings from the environment: see README.md)
  handler keys ...        administer API keys (handler keys help)
  handler usage ...       report usage per organisation, key, day or hour (handler usage help)
  handler version         print the version (also --version)
  handler help            this text (also -h, --help)
`

// fullVersion is version as set at build time, or, for a build that did
// not set it, "dev" with the commit Go stamped into the binary (and
// "-modified" when the work tree had changes): dev+1a2b3c4d5e6f.
func fullVersion(buildInfo func() (*debug.BuildInfo, bool)) string {
	if version != "dev" {
		return version
	}
	info, ok := buildInfo()
	if !ok {
		return version
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-modified"
			}
		}
	}
	if rev == "" {
		return version
	}
	return version + "+" + rev[:min(12, len(rev))] + modified
}

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
	a, err := app.New(cfg, app.Options{LogOut: logOut, Version: fullVersion(debug.ReadBuildInfo)})
	if err != nil {
		return err
	}
	defer func() {
		// The last counts and log lines go out before the process ends,
		// with time of their own: Shutdown may have used all of its.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx)
	}()

	// LISTEN_ADDRESS unset ("") listens on every interface.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenAddress, strconv.Itoa(cfg.Port)))
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           a.Server,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	a.Log.Info("listening", "addr", ln.Addr().String(), "version", fullVersion(debug.ReadBuildInfo), "settings", cfg)
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
	a.Log.Info("stopped")
	return nil
}

// usageReport runs "handler usage": it reads every instance's rows from
// the same place the server writes them. The settings are read only once
// the arguments are valid, so that help needs none.
func usageReport(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	return report.RunWith(ctx, args, out, func(ctx context.Context) (usage.Source, error) {
		cfg, err := config.Load(getenv)
		if err != nil {
			return nil, fmt.Errorf("invalid settings:\n%w", err)
		}
		return app.UsageSink(ctx, cfg)
	})
}
