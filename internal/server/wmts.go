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
	var req wmts.Request
	var err error
	if rec.queryErr == nil {
		req, err = wmts.ParseQuery(rec.rest, rec.query)
	} else {
		req, err = wmts.Parse(rec.rest, c.Request().URL.RawQuery) // a REST tile ignores its query
	}
	if err != nil {
		return err
	}
	rec.path = rec.rest
	if req.Kind == wmts.Capabilities {
		return s.capabilities(c, capsSpec{
			service:     "wmts",
			cacheKey:    "wmts:" + rec.principal.cred.Key(),
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
