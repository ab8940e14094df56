// Package server is HexProx's HTTP surface: the Echo routes, the origin
// and CORS policy, the three ways a request is answered (capabilities,
// redirect, stream), request logs, and the one error handler that turns
// every failure into a response in the client's format.
package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/capabilities"
	"github.com/hexprox/hexprox/internal/credstate"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/landing"
	"github.com/hexprox/hexprox/internal/logsample"
	"github.com/hexprox/hexprox/internal/origin"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/upstream"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/limit"
	"github.com/hexprox/hexprox/internal/wms"
	"github.com/hexprox/hexprox/internal/wmts"
)

// Settings are what the server reads of HexProx's settings (package
// config holds them all, with their defaults and meaning; internal/app
// copies them here).
type Settings struct {
	HexagonURL string // the upstream base, no trailing slash
	// Providers are the profiles a key may name beside Hexagon
	// (config.Config.Providers); the zero Catalog: none.
	Providers       provider.Catalog
	PublicBaseURL   string        // "" derives the proxy's address from each request
	AllowedOrigins  origin.List   // browser origins that get streamed tiles and CORS
	TileMode        string        // config.ModeAuto, ModeRedirect or ModeProxy
	CORSHeaders     bool          // false when the platform adds CORS headers
	TrustedHops     int           // proxies in front that append to X-Forwarded-For
	CapabilitiesTTL time.Duration // how long a rewritten document is reused
	UpstreamTimeout time.Duration // the wait for Hexagon's headers, and for each read of a streamed body
	RateLimit       float64       // per v1 credential, per second; 0: none
	DailyLimit      int64         // per v1 credential, per UTC day; 0: none
	LogLevel        slog.Level    // request lines below it are not written
	LogSample       float64       // the share of successful request lines written
	HashKey         string        // keys credential fingerprints in logs and usage (TOKEN_HASH_KEY)
}

// Options are what the server is built from. Settings and Tokens are
// required.
type Options struct {
	Settings Settings
	// Tokens builds each credential's token stack (token.NewStack).
	Tokens token.Stack
	// Context is what token requests run in: it must outlive every
	// request (a request's own would end a token fetch others share). nil
	// means context.Background().
	Context  context.Context
	Upstream http.RoundTripper // to Hexagon; nil means a transport built from Settings
	Log      *slog.Logger      // nil means slog.Default()
	Version  string
	Now      func() time.Time // the clock of caches, limits and key status; nil means time.Now
	// Keys resolves /v2 API keys; nil means the proxy has none and /v2
	// answers 404.
	Keys *keys.Cache
	// Guesses limits, per client address, credentials Hexagon refuses;
	// nil means no limit.
	Guesses *guesslimit.Limiter
	// Usage counts requests per organisation, key or credential; nil
	// counts nothing (and no daily quota can be enforced).
	Usage *usage.Counter
	// Health is told how each call to Hexagon's data services went, and
	// /healthz shows what it knows; app shares it with the token
	// endpoint, so that token requests count too. nil means a recorder of
	// the server's own (data calls alone).
	Health *hexhealth.Recorder
	// ProviderHealth are each provider's recorders, by profile name, told
	// how its data calls went (and, shared by app, its grant's token
	// requests); a provider missing from it gets a recorder of the
	// server's own.
	ProviderHealth map[string]*hexhealth.Recorder
	// RequestLog receives the request lines, written by the server itself
	// in slog's JSON shape (faster than through Log), with
	// Settings.LogLevel and LogSample applied; nil means none are written.
	RequestLog io.Writer
}

// Server answers HexProx's routes. It is an http.Handler.
type Server struct {
	cfg     Settings
	creds   *credstate.Table
	keys    *keys.Cache
	guesses *guesslimit.Limiter
	usage   *usage.Counter
	lines   *lineWriter
	sample  *logsample.Sampler // LOG_SAMPLE, for successful request lines
	log     *slog.Logger
	version string
	now     func() time.Time // the clock of limits and key status; logs keep real time

	echo *echo.Echo
	// upstream sends what calls to Hexagon send: tiles and maps
	// (stream), documents (capabilities); hexHealth hears how they went.
	upstream  http.RoundTripper
	hexHealth *hexhealth.Recorder
	userAgent []string // sent to Hexagon
	caps      *capabilities.Cache
	page      landing.Page

	wmtsMatch, wmsMatch capabilities.Matcher
	// providers are the profiles of other providers, by name (the
	// catalog's), with what their requests need, built once.
	providers map[string]*passProfile
	// services are Hexagon's WMTS and WMS addresses (base URL and path)
	// for each keys.Endpoint.
	services [keys.Orders + 1]struct{ wmts, wms string }
}

// MaxCapabilities caps what is read of an upstream capabilities document.
const MaxCapabilities = 32 << 20

// New builds the server.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Upstream == nil {
		o.Upstream = upstream.NewHTTPTransport(o.Settings.UpstreamTimeout)
	}
	if o.Health == nil {
		o.Health = &hexhealth.Recorder{}
	}
	s := &Server{
		cfg: o.Settings,
		creds: credstate.New(o.Context, credstate.Options{
			Tokens:  o.Tokens,
			Limits:  limit.Limits{Rate: o.Settings.RateLimit, Daily: o.Settings.DailyLimit},
			Usage:   o.Usage,
			HashKey: o.Settings.HashKey,
		}),
		keys:    o.Keys,
		guesses: o.Guesses,
		usage:   o.Usage,
		log:     o.Log,
		sample:  logsample.NewSampler(o.Settings.LogSample),
		version: o.Version,
		now:     o.Now,
		caps:    capabilities.NewCache(o.Settings.CapabilitiesTTL, 0, o.Now),
		page:    landing.Render(o.Version, o.Settings.HexagonURL),

		// Either family's URLs in either's documents come back here: the
		// key, not the document, says which family a request goes to.
		wmtsMatch: capabilities.ServiceMatcher(wmts.ServicePath, wmts.OrdersPath),
		wmsMatch:  capabilities.ServiceMatcher(wms.ServicePath, wms.OrdersPath),
	}
	s.providers = map[string]*passProfile{}
	for _, name := range o.Settings.Providers.Names() {
		s.providers[name] = newPassProfile(o.Settings.Providers.Get(name), o.ProviderHealth[name])
	}
	s.services[keys.Streaming].wmts, s.services[keys.Streaming].wms = o.Settings.HexagonURL+wmts.ServicePath, o.Settings.HexagonURL+wms.ServicePath
	s.services[keys.Orders].wmts, s.services[keys.Orders].wms = o.Settings.HexagonURL+wmts.OrdersPath, o.Settings.HexagonURL+wms.OrdersPath
	if o.RequestLog == nil {
		o.RequestLog = io.Discard
	}
	s.lines = &lineWriter{w: o.RequestLog, level: o.Settings.LogLevel, now: time.Now}
	s.upstream = o.Upstream
	s.hexHealth = o.Health
	s.userAgent = []string{"HexProx/" + o.Version}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	s.routes(e)
	s.echo = e
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// home serves the landing page. It is static, so it also answers the
// Functions host's readiness poll at once.
func (s *Server) home(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", s.page.CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", s.page.HTML)
}

// health answers liveness: always 200 and "ok" while the process serves,
// since a restart does not mend Hexagon. Whether Hexagon answers is in
// "upstream" (hexhealth.State: when the last call ended, to which
// endpoint, whether it succeeded, how it failed), and whether another
// provider's data services answer in "providers", by name, for those
// called since start; for a monitor to alert on. It names no URL, token
// or error text.
func (s *Server) health(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	a := healthAnswer{Status: "ok", Version: s.version, Goroutines: runtime.NumGoroutine(), Upstream: s.hexHealth.State()}
	for name, p := range s.providers {
		if st := p.health.State(); st.LastCall != nil {
			if a.Providers == nil {
				a.Providers = map[string]hexhealth.State{}
			}
			a.Providers[name] = st
		}
	}
	return c.JSON(http.StatusOK, a)
}

type healthAnswer struct {
	Status     string                     `json:"status"`
	Version    string                     `json:"version"`
	Goroutines int                        `json:"goroutines"`
	Upstream   hexhealth.State            `json:"upstream"`
	Providers  map[string]hexhealth.State `json:"providers,omitempty"`
}
