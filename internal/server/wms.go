package server

import (
	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/wms"
)

// wms answers every /wms/{id}/{secret}[/]?... request once the credentials
// step has resolved it.
func (s *Server) wms(c echo.Context) error {
	rec := recordOf(c)
	if rec.in.principal.profile != nil {
		return s.pass(c, "wms")
	}
	rec.out.service = "wms"
	if rec.in.rest != "" && rec.in.rest != "/" {
		return &failure.Error{Kind: failure.NotFound, Message: "no such WMS resource; use the credential URL with KVP parameters"}
	}
	if rec.in.queryErr != nil {
		return rec.in.queryErr
	}
	req, err := wms.ParseQuery(rec.in.query)
	if err != nil {
		return err
	}
	rec.out.path = rec.in.rest
	ep := rec.in.principal.endpoint()
	url := req.URL(s.services[ep].wms)
	accept := req.Accept()
	switch req.Kind {
	case wms.Capabilities:
		contentType := "text/xml; charset=utf-8"
		if req.Version == "1.1.1" {
			contentType = "application/vnd.ogc.wms_xml; charset=utf-8"
		}
		return s.capabilities(c, capsSpec{
			service:     "wms",
			cacheKey:    capsKeys[ep] + "wms:" + req.Version + ":",
			roots:       []string{"WMS_Capabilities", "WMT_MS_Capabilities"},
			match:       s.wmsMatch,
			contentType: contentType,
			url:         url,
			health:      s.hexHealth,
		})
	case wms.Map:
		return s.deliver(c, s.hexCall(rec, url, accept), usage.WMSGetMap, usage.WMSGetMap)
	default: // GetFeatureInfo and GetLegendGraphic: small, always streamed
		return s.stream(c, s.hexCall(rec, url, accept), usage.WMSOther)
	}
}
