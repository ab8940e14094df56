package server

import (
	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/wmts"
)

// wmts answers every /wmts/... request once the credentials step has
// resolved it.
func (s *Server) wmts(c echo.Context) error {
	rec := recordOf(c)
	rec.route = "wmts"
	req, err := wmts.ParseQuery(rec.rest, rec.query, rec.queryErr) // a REST tile ignores its query, however malformed
	if err != nil {
		return err
	}
	rec.path = rec.rest
	if req.Kind == wmts.Capabilities {
		return s.capabilities(c, capsSpec{
			service:     "wmts",
			cacheKey:    "wmts:",
			roots:       []string{"Capabilities"},
			match:       s.wmtsMatch,
			contentType: "application/xml; charset=utf-8",
			url:         wmts.CapabilitiesURL(s.cfg.HexagonURL),
		})
	}
	// A tile is relayed only as an image, or the declared format asked for.
	accept := anyImage
	if mt := req.Tile.MediaType(); !anyImage(mt) {
		accept = acceptImages(mt)
	}
	rec.tile = hexagon.Call{Tokens: rec.tokens, URL: req.TileURL(s.cfg.HexagonURL), Accept: accept}
	return s.deliver(c, &rec.tile)
}
