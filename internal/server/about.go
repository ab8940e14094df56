package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/aboutpage"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/publicurl"
	"github.com/hexprox/hexprox/internal/usage"
)

// aboutInfo is what /about/{key} says of a key: never a credential.
type aboutInfo struct {
	Org       string     `json:"org"`
	Contact   string     `json:"contact"`
	Status    string     `json:"status"`
	Expires   *time.Time `json:"expires,omitempty"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	WMTS      string     `json:"wmts"`
	WMS       string     `json:"wms"`
	// Tiles says how desktop tiles are answered: "proxied" (the default:
	// no Hexagon token reaches the key holder) or "redirected" (the key's
	// record opts in: its holder receives Hexagon tokens).
	Tiles string `json:"tiles"`
	// Endpoint is the family of Hexagon's services the key uses:
	// "streaming", or "orders" (the batch services, with a lower rate
	// limit whose 429s reach the key holder).
	Endpoint string `json:"endpoint"`
	// Provider names the key's upstream when it is not Hexagon
	// ("planet"); omitted for Hexagon.
	Provider string `json:"provider,omitempty"`
	// Origins are the only browser origins the key serves; none means
	// the proxy's ALLOWED_ORIGINS.
	Origins []string    `json:"origins,omitempty"`
	Version string      `json:"version"`
	Usage   *aboutUsage `json:"usage,omitempty"`
}

// aboutUsage is a key's own usage: today and this month so far (UTC),
// summed over every instance.
type aboutUsage struct {
	Today usageCounts `json:"today"`
	Month usageCounts `json:"month"`
}

type usageCounts struct {
	Requests int64 `json:"requests"`
	Tiles    int64 `json:"tiles"` // WMTS tiles and WMS maps
	Bytes    int64 `json:"bytes_streamed"`
}

func toUsageCounts(c usage.Counts) usageCounts {
	return usageCounts{Requests: c.Requests(), Tiles: c[usage.TilesRedirected] + c[usage.TilesStreamed] + c[usage.WMSGetMap], Bytes: c[usage.BytesStreamed]}
}

// about answers the original's /about/{key}: JSON, or a small page for a
// browser. An unknown, revoked or expired key gets 403.
func (s *Server) about(c echo.Context) error {
	rec := recordOf(c)
	rec.out.service = "about"
	key := c.Param("key")
	k, err := s.lookupKey(c.Request(), key, false)
	if err != nil {
		return err
	}
	// The about page is the key's like any other request: within its
	// limits, and counted.
	rec.in.principal = principal{key: k, org: k.Org(), who: k.Fingerprint()}
	rec.in.subject = s.subjectOf(rec)
	if err := s.enforce(rec); err != nil {
		return err
	}
	rec.out.answer(modeAbout, usage.About)
	base, ok := publicurl.Base(c.Request(), s.cfg.PublicBaseURL)
	if !ok {
		return failure.Invalidf(failure.CodeInvalidParameter, "Host", "the Host or X-Forwarded-Host header is not a valid host name")
	}
	r := k.Record()
	addr := keys.AddressesOf(base, key)
	info := aboutInfo{
		Org: r.Org, Contact: r.Contact, Status: r.Status(s.now()).String(), Version: s.version,
		WMTS: addr.WMTS, WMS: addr.WMS, Tiles: "proxied", Endpoint: r.Endpoint.String(), Provider: r.Provider, Origins: r.Origins,
	}
	if r.Redirect {
		info.Tiles = "redirected"
	}
	if !r.Expires.IsZero() {
		info.Expires = &r.Expires
	}
	if !r.NotBefore.IsZero() {
		info.NotBefore = &r.NotBefore
	}
	if s.usage != nil {
		u, err := s.usage.Usage(c.Request().Context(), usageID(k.Org(), k.Fingerprint()))
		if err == nil {
			info.Usage = &aboutUsage{Today: toUsageCounts(u.Today), Month: toUsageCounts(u.Month)}
		} else {
			s.log.Warn("cannot read the key's usage for its about page", "key", k.Fingerprint(), "err", err)
		}
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Add("Vary", "Accept")
	if strings.Contains(c.Request().Header.Get("Accept"), "text/html") {
		return s.aboutPage(c, info, k)
	}
	return c.JSON(http.StatusOK, info)
}

// aboutPage renders aboutInfo for a browser: a small self-contained page
// with a hash-based CSP, and for an active key a preview of its imagery
// through its own addresses.
func (s *Server) aboutPage(c echo.Context, info aboutInfo, k *keys.Key) error {
	d := aboutpage.Data{Org: info.Org, Contact: info.Contact, Status: info.Status, WMTS: info.WMTS, WMS: info.WMS, Version: info.Version,
		Redirect: info.Tiles == "redirected", Orders: info.Endpoint == keys.Orders.String(), Provider: s.providerTitle(info.Provider), Origins: strings.Join(info.Origins, ", ")}
	if info.Expires != nil {
		d.Expires = *info.Expires
	}
	if info.NotBefore != nil {
		d.NotBefore = *info.NotBefore
	}
	if info.Usage != nil {
		d.Usage = &aboutpage.Usage{Today: pageCounts(info.Usage.Today), Month: pageCounts(info.Usage.Month)}
	}
	// The preview's tiles are image requests without an Origin header,
	// answered as a desktop client's (deliver): those redirected go on to
	// Hexagon, which the page's CSP must then allow.
	var tileOrigins []string
	if s.redirects(k, false) {
		tileOrigins = []string{s.cfg.HexagonURL}
	}
	html, policy := aboutpage.Render(d, tileOrigins...)
	c.Response().Header().Set("Content-Security-Policy", policy)
	return c.HTMLBlob(http.StatusOK, html)
}

func pageCounts(c usageCounts) aboutpage.Counts {
	return aboutpage.Counts{Requests: c.Requests, Tiles: c.Tiles, Bytes: c.Bytes}
}

// providerTitle is the title of the provider named name, "" for Hexagon.
func (s *Server) providerTitle(name string) string {
	if p := s.providers[name]; p != nil {
		return p.Title
	}
	return ""
}
