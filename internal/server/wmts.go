package server

import (
	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/wmts"
)

// wmts answers every /wmts/... request.
func (s *Server) wmts(c echo.Context) error {
	cred, rest, browser, done, err := s.credentialRoute(c, "wmts")
	if done {
		return err
	}
	req, err := wmts.Parse(rest, c.Request().URL.RawQuery)
	if err != nil {
		return err
	}
	tokens := s.tokens.Source(cred)
	if req.Kind == wmts.Capabilities {
		return s.capabilities(c, cred, tokens, capsSpec{
			service:     "wmts",
			cacheKey:    "wmts:" + cred.Key(),
			roots:       []string{"Capabilities"},
			match:       s.wmtsMatch,
			contentType: "application/xml; charset=utf-8",
			url:         func(tok string) string { return wmts.CapabilitiesURL(s.cfg.HexagonURL, tok) },
		})
	}
	return s.deliver(c, browser, &hexagon.Call{Tokens: tokens, URL: func(tok string) string { return req.TileURL(s.cfg.HexagonURL, tok) }})
}
