package server

import (
	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/wmts"
)

// wmts answers every /wmts/... request once the credentials step has
// resolved it.
func (s *Server) wmts(c echo.Context) error {
	rec := recordOf(c)
	if rec.in.principal.profile != nil {
		return s.pass(c, "wmts")
	}
	rec.out.service = "wmts"
	req, err := wmts.ParseQuery(rec.in.rest, rec.in.query, rec.in.queryErr) // a REST tile ignores its query, however malformed
	if err != nil {
		return err
	}
	rec.out.path = rec.in.rest
	ep := rec.in.principal.endpoint()
	service := s.services[ep].wmts
	if req.Kind == wmts.Capabilities {
		return s.capabilities(c, capsSpec{
			service:     "wmts",
			cacheKey:    capsKeys[ep] + "wmts:",
			roots:       []string{"Capabilities"},
			match:       s.wmtsMatch,
			contentType: "application/xml; charset=utf-8",
			url:         wmts.CapabilitiesURL(service),
			health:      s.hexHealth,
		})
	}
	return s.deliver(c, s.hexCall(rec, req.TileURL(service), req.Tile.Accept()), usage.TilesRedirected, usage.TilesStreamed)
}
