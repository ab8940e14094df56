package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/capabilities"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/upstream"
	"github.com/hexprox/hexprox/internal/usage"
)

// pass answers a request of a key whose provider is not Hexagon, on the
// route of service ("wmts" or "wms"), in the pass-through form of
// docs/provider-profiles.md:
//   - the route itself, /1.0.0/WMTSCapabilities.xml, a GetCapabilities
//     request, or a URL a document named for the capabilities: the
//     provider's capabilities, rewritten so that every URL on one of its
//     hosts comes back as {route}/~{role}{path}, its credential taken out;
//   - {route}/~{role}{path}: a tile (or, on the WMS route, a map) from
//     that host, when the path passes provider.PassPath, the client's
//     credential parameters dropped and the key's placed; streamed, never
//     redirected (a static key in a Location would outlive the key), and
//     only if it is an image; a GetFeatureInfo's text only when it shows
//     the key in no spelling (stream's relayChecked).
func (s *Server) pass(c echo.Context, service string) error {
	rec := recordOf(c)
	p := rec.in.principal.profile
	rec.out.service = service
	rec.out.path = rec.in.rest
	rest := rec.in.rest
	r := c.Request()

	var entry provider.Service
	switch {
	case service == "wms" && p.WMS == nil:
		return &failure.Error{Kind: failure.NotFound, Message: p.Title + " has no WMS: use the key's WMTS address"}
	case service == "wms":
		entry = *p.WMS
	default:
		entry = p.WMTS
	}
	role, path := entry.Role, entry.Path
	if after, ok := strings.CutPrefix(rest, "/~"); ok {
		role, path, _ = strings.Cut(after, "/")
		path = "/" + path
	} else if rest != "" && rest != "/" && !(service == "wmts" && rest == "/1.0.0/WMTSCapabilities.xml") {
		return &failure.Error{Kind: failure.NotFound, Message: "no such resource: use the addresses the key's capabilities document gives"}
	}
	host, ok := p.Host(role)
	if !ok {
		return &failure.Error{Kind: failure.NotFound, Message: "no such resource: use the addresses the key's capabilities document gives"}
	}
	path = p.StripPath(path) // a client's own credential in the path
	path, ok = provider.PassPath(path, host.Allowed)
	if !ok {
		return &failure.Error{Kind: failure.NotFound, Message: "no such resource: use the addresses the key's capabilities document gives"}
	}
	if rec.in.queryErr != nil {
		return rec.in.queryErr
	}
	query := provider.DropParams(r.URL.RawQuery, p.strip)

	if service == "wms" {
		// The provider's own names (Nearmap's layers hold '/' and spaces)
		// are the provider's to check: the query goes on as the client
		// wrote it, its credential parameters dropped.
		switch op := strings.ToLower(rec.in.query["REQUEST"]); op {
		case "", "getcapabilities", "capabilities":
			return s.passCapabilities(c, p, "wms")
		case "getmap", "getlegendgraphic":
			kind := usage.WMSOther
			if op == "getmap" {
				kind = usage.WMSGetMap
			}
			return s.stream(c, p.call(rec, host.Base+path+"?"+query, raster), kind)
		case "getfeatureinfo":
			// Its text can echo the request, and with it the key placed
			// in the path: stream reads a key's text answers whole and
			// relays them only when they show it in no spelling
			// (relayChecked).
			return s.stream(c, p.call(rec, host.Base+path+"?"+query, featureInfo), usage.WMSOther)
		}
		return failure.Invalidf("OperationNotSupported", "REQUEST", "REQUEST must be GetCapabilities, GetMap, GetFeatureInfo or GetLegendGraphic")
	}

	// Capabilities when asked for, or when the entry point is asked for
	// nothing else (Vexcel's tiles are KVP requests on that same path).
	if op := rec.in.query["REQUEST"]; strings.EqualFold(op, "GetCapabilities") || op == "" && role == p.WMTS.Role && path == p.WMTS.Path {
		return s.passCapabilities(c, p, "wmts")
	}
	u := host.Base + path
	if query != "" {
		u += "?" + query
	}
	return s.stream(c, p.call(rec, u, raster), usage.TilesStreamed)
}

// passProfile is what the server keeps of one provider's profile, built
// once at startup rather than on each request: the query parameters its
// requests and documents drop (StripAll), its documents' Matcher
// (matcher), where its credential goes (Apply, as a func value made
// once) and the recorder /healthz reads.
type passProfile struct {
	*provider.Profile
	strip  []string
	match  capabilities.Matcher
	place  func(u *url.URL, h http.Header, tok *oauth2.Token)
	health *hexhealth.Recorder
}

// newPassProfile returns p's passProfile, telling health (nil: a recorder
// of its own) how its data calls go.
func newPassProfile(p *provider.Profile, health *hexhealth.Recorder) *passProfile {
	if health == nil {
		health = &hexhealth.Recorder{}
	}
	pp := &passProfile{Profile: p, strip: p.StripAll(), place: p.Apply, health: health}
	pp.match = pp.matcher()
	return pp
}

// call puts in rec, and returns, the request's call to the provider's
// URL u (its credential not yet placed), relaying what accept accepts.
func (p *passProfile) call(rec *record, u string, accept func(string) bool) *upstream.Call {
	rec.out.upstream = upstream.Call{Tokens: rec.in.tokens, URL: u, Accept: accept, Place: p.place, Name: p.Title, Relay: p.Pass, NotLicensed: p.NotLicensed, Health: p.health}
	return &rec.out.upstream
}

// passCapabilities answers with profile p's capabilities of service,
// always from the profile's own entry point with a fixed query, whatever
// path or query the request named (a document fetched elsewhere must not
// be served, from the cache, to every key of the credential); WMS in the
// version asked for when it is one WMS has.
func (s *Server) passCapabilities(c echo.Context, p *passProfile, service string) error {
	spec := capsSpec{service: service, match: p.match, place: p.place, name: p.Title, health: p.health}
	entry := p.WMTS
	if service == "wms" {
		entry = *p.WMS
		version := recordOf(c).in.query["VERSION"]
		if version != "1.1.1" && version != "1.3.0" {
			version = ""
		}
		entry.Query = "SERVICE=WMS&REQUEST=GetCapabilities"
		if version != "" {
			entry.Query += "&VERSION=" + version
		}
		spec.cacheKey, spec.roots, spec.contentType = "pass:wms:"+version+":", []string{"WMS_Capabilities", "WMT_MS_Capabilities"}, "text/xml; charset=utf-8"
	} else {
		spec.cacheKey, spec.roots, spec.contentType = "pass:wmts:", []string{"Capabilities"}, "application/xml; charset=utf-8"
	}
	host, _ := p.Host(entry.Role)
	spec.url = host.Base + entry.Path
	if entry.Query != "" {
		spec.url += "?" + entry.Query
	}
	return s.capabilities(c, spec)
}

// featureInfo accepts the text a provider's GetFeatureInfo may answer.
func featureInfo(mediaType string) bool {
	switch mediaType {
	case "text/plain", "text/html", "text/xml", "application/xml", "application/json", "application/vnd.ogc.gml":
		return true
	}
	return false
}

// raster accepts the raster images a provider's tiles and maps may be:
// no SVG (a document that could carry text) and nothing else.
func raster(mediaType string) bool {
	switch mediaType {
	case "image/png", "image/jpeg", "image/jpg", "image/webp", "image/tiff", "image/gif":
		return true
	}
	return false
}

// matcher is the Matcher of the profile's documents: every URL on one of
// its hosts, its credential taken out of path and query.
func (p *passProfile) matcher() capabilities.Matcher {
	hosts := make([]capabilities.Host, len(p.Hosts))
	for i, h := range p.Hosts {
		hosts[i] = capabilities.Host{Role: h.Role, Base: h.Base, Allowed: h.Allowed}
	}
	return capabilities.HostMatcher(hosts, func(path, query string) (string, string) {
		return p.StripPath(path), provider.DropParams(query, p.strip)
	})
}
