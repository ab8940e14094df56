// Package config loads HexProx's settings from the environment (app
// settings, in Azure) once, at start, into one struct with defaults.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/origin"
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
	HexagonURL      string        // HEXAGON_URL: upstream base, no trailing slash
	PublicBaseURL   string        // PUBLIC_BASE_URL: external base URL; "" derives it from each request
	AllowedOrigins  origin.List   // ALLOWED_ORIGINS: browser origins that get streamed tiles and CORS
	OriginsText     string        // ALLOWED_ORIGINS as given, for logs
	TileMode        string        // TILE_MODE: auto, redirect or proxy
	CORSHeaders     bool          // CORS_HEADERS: on, or off when the platform adds them
	Port            int           // FUNCTIONS_CUSTOMHANDLER_PORT, else PORT, else 8080
	CapabilitiesTTL time.Duration // CAPABILITIES_TTL: how long a rewritten document is reused
	UpstreamTimeout time.Duration // UPSTREAM_TIMEOUT: wait for Hexagon's response headers
	TokenTimeout    time.Duration // TOKEN_TIMEOUT: whole token request
	RefusalTTL      time.Duration // REFUSAL_TTL: how long a refused credential is not retried
	LogLevel        slog.Level    // LOG_LEVEL: debug, info, warn, error
}

// Defaults.
const (
	DefaultHexagonURL     = "https://services.hxgncontent.com"
	DefaultAllowedOrigins = "https://*.arcgis.com"
	DefaultPort           = 8080
)

// Load reads the settings through getenv (os.Getenv in main). It reports
// every problem at once.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{}

	var err error
	if c.HexagonURL, err = baseURL(get("HEXAGON_URL", DefaultHexagonURL)); err != nil {
		bad("HEXAGON_URL", "%v", err)
	}
	if v := get("PUBLIC_BASE_URL", ""); v != "" {
		if c.PublicBaseURL, err = baseURL(v); err != nil {
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
	switch v := strings.ToLower(get("CORS_HEADERS", "on")); v {
	case "on", "true", "1", "yes":
		c.CORSHeaders = true
	case "off", "false", "0", "no":
	default:
		bad("CORS_HEADERS", "%q is not on or off", v)
	}

	portName, portText := "PORT", get("PORT", strconv.Itoa(DefaultPort))
	if v := get("FUNCTIONS_CUSTOMHANDLER_PORT", ""); v != "" {
		portName, portText = "FUNCTIONS_CUSTOMHANDLER_PORT", v
	}
	if c.Port, err = strconv.Atoi(portText); err != nil || c.Port < 1 || c.Port > 65535 {
		bad(portName, "%q is not a port number", portText)
	}

	durations := []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{
		{"CAPABILITIES_TTL", 5 * time.Minute, &c.CapabilitiesTTL},
		{"UPSTREAM_TIMEOUT", 30 * time.Second, &c.UpstreamTimeout},
		{"TOKEN_TIMEOUT", 15 * time.Second, &c.TokenTimeout},
		{"REFUSAL_TTL", 30 * time.Second, &c.RefusalTTL},
	}
	for _, d := range durations {
		v := get(d.name, "")
		if v == "" {
			*d.dst = d.def
			continue
		}
		if *d.dst, err = duration(v); err != nil {
			bad(d.name, "%q is not a duration such as 30s or 5m", v)
		}
	}
	if c.UpstreamTimeout <= 0 || c.TokenTimeout <= 0 {
		bad("UPSTREAM_TIMEOUT/TOKEN_TIMEOUT", "must be positive")
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL", "info"))); err != nil {
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", getenv("LOG_LEVEL"))
	}
	return c, errors.Join(errs...)
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

// baseURL validates an absolute http(s) URL without query, fragment or
// user info, and returns it without a trailing slash.
func baseURL(v string) (string, error) {
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q is not a URL", v)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must start with https:// or http://", v)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", fmt.Errorf("%q must be scheme://host[:port][/path] with nothing else", v)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// LogValue lists the settings for the start-up log line. Nothing here is
// secret today; settings that are (issue: the token store's keys) are
// logged as present or absent only.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("hexagon_url", c.HexagonURL),
		slog.String("public_base_url", c.PublicBaseURL),
		slog.String("allowed_origins", c.OriginsText),
		slog.String("tile_mode", c.TileMode),
		slog.Bool("cors_headers", c.CORSHeaders),
		slog.Int("port", c.Port),
		slog.String("capabilities_ttl", c.CapabilitiesTTL.String()),
		slog.String("upstream_timeout", c.UpstreamTimeout.String()),
		slog.String("token_timeout", c.TokenTimeout.String()),
	)
}
