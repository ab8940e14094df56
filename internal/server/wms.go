package server

import (
	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexagon"
	"github.com/hexprox/hexprox/internal/wms"
)

// wms answers every /wms/{id}/{secret}[/]?... request once the credentials
// step has resolved it.
func (s *Server) wms(c echo.Context) error {
	rec := recordOf(c)
	rec.route = "wms"
	if rec.rest != "" && rec.rest != "/" {
		return &failure.Error{Kind: failure.NotFound, Message: "no such WMS resource; use the credential URL with KVP parameters"}
	}
	if rec.queryErr != nil {
		return rec.queryErr
	}
	req, err := wms.ParseQuery(rec.query)
	if err != nil {
		return err
	}
	rec.path = rec.rest
	url := func(tok string) string { return req.URL(s.cfg.HexagonURL, tok) }
	switch req.Kind {
	case wms.Capabilities:
		contentType := "text/xml; charset=utf-8"
		if req.Version == "1.1.1" {
			contentType = "application/vnd.ogc.wms_xml; charset=utf-8"
		}
		return s.capabilities(c, capsSpec{
			service:     "wms",
			cacheKey:    "wms:" + req.Version + ":" + rec.principal.cred.Key(),
			roots:       []string{"WMS_Capabilities", "WMT_MS_Capabilities"},
			match:       s.wmsMatch,
			contentType: contentType,
			url:         url,
		})
	case wms.Map:
		rec.wmsMap = true
		return s.deliver(c, &hexagon.Call{Tokens: rec.tokens, URL: url})
	default: // GetFeatureInfo and GetLegendGraphic: small, always streamed
		return s.stream(c, &hexagon.Call{Tokens: rec.tokens, URL: url})
	}
}
