package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/capabilities"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/wmts"
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
//     only if it is an image.
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
	for _, pl := range p.Place {
		path = pl.StripPath(path) // a client's own credential in the path
	}
	path, ok = provider.PassPath(path, host.Allowed)
	if !ok {
		return &failure.Error{Kind: failure.NotFound, Message: "no such resource: use the addresses the key's capabilities document gives"}
	}
	if rec.in.queryErr != nil {
		return rec.in.queryErr
	}
	query := provider.DropParams(r.URL.RawQuery, p.StripAll())
	place := func(u *url.URL, h http.Header, token string) {
		for _, pl := range p.Place {
			pl.Apply(u, h, token)
		}
	}

	if service == "wms" {
		// The provider's own names (Nearmap's layers hold '/' and spaces)
		// are the provider's to check: the query goes on as the client
		// wrote it, its credential parameters dropped.
		u := host.Base + path + "?" + query
		switch op := strings.ToLower(rec.in.query["REQUEST"]); op {
		case "", "getcapabilities", "capabilities":
			return s.capabilities(c, capsSpec{service: "wms", cacheKey: "pass:wms:" + rec.in.query["VERSION"] + ":", roots: []string{"WMS_Capabilities", "WMT_MS_Capabilities"},
				match: s.passMatchers[p.Name], contentType: "text/xml; charset=utf-8", url: u, place: place, name: p.Title})
		case "getmap", "getlegendgraphic":
			rec.out.upstream = hexagon.Call{Tokens: rec.in.tokens, URL: u, Accept: wmts.AnyImage, Place: place, Name: p.Title, Relay: p.Pass}
			kind := usage.WMSOther
			if op == "getmap" {
				kind = usage.WMSGetMap
			}
			return s.stream(c, &rec.out.upstream, kind)
		case "getfeatureinfo":
			rec.out.upstream = hexagon.Call{Tokens: rec.in.tokens, URL: u, Accept: featureInfo, Place: place, Name: p.Title, Relay: p.Pass}
			return s.stream(c, &rec.out.upstream, usage.WMSOther)
		}
		return failure.Invalidf("OperationNotSupported", "REQUEST", "REQUEST must be GetCapabilities, GetMap, GetFeatureInfo or GetLegendGraphic")
	}

	if role == p.WMTS.Role && path == p.WMTS.Path || strings.EqualFold(rec.in.query["REQUEST"], "GetCapabilities") {
		u := host.Base + p.WMTS.Path
		if p.WMTS.Query != "" {
			u += "?" + p.WMTS.Query
		}
		return s.capabilities(c, capsSpec{service: "wmts", cacheKey: "pass:wmts:", roots: []string{"Capabilities"},
			match: s.passMatchers[p.Name], contentType: "application/xml; charset=utf-8", url: u, place: place, name: p.Title})
	}
	u := host.Base + path
	if query != "" {
		u += "?" + query
	}
	rec.out.upstream = hexagon.Call{Tokens: rec.in.tokens, URL: u, Accept: wmts.AnyImage, Place: place, Name: p.Title, Relay: p.Pass}
	return s.stream(c, &rec.out.upstream, usage.TilesStreamed)
}

// featureInfo accepts what a provider's GetFeatureInfo may answer: text,
// XML, JSON or HTML (relayed sandboxed, as Hexagon's is).
func featureInfo(mediaType string) bool {
	switch mediaType {
	case "text/plain", "text/xml", "application/xml", "text/html", "application/json", "application/vnd.ogc.gml":
		return true
	}
	return false
}

// passMatch is the Matcher of profile p's documents: every URL on one of
// its hosts, its credential taken out of path and query.
func passMatch(p *provider.Profile) capabilities.Matcher {
	hosts := make([]capabilities.Host, len(p.Hosts))
	for i, h := range p.Hosts {
		hosts[i] = capabilities.Host{Role: h.Role, Base: h.Base, Allowed: h.Allowed}
	}
	strip := p.StripAll()
	return capabilities.HostMatcher(hosts, func(path, query string) (string, string) {
		for _, pl := range p.Place {
			path = pl.StripPath(path)
		}
		return path, provider.DropParams(query, strip)
	})
}
