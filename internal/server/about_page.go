package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hexprox/hexprox/internal/aboutpage"
)

// aboutPage renders aboutInfo for a browser: a small self-contained page
// with a hash-based CSP.
func (s *Server) aboutPage(c echo.Context, info aboutInfo) error {
	d := aboutpage.Data{Org: info.Org, Contact: info.Contact, Status: info.Status, WMTS: info.WMTS, WMS: info.WMS, Version: info.Version}
	if info.Expires != nil {
		d.Expires = *info.Expires
	}
	if info.NotBefore != nil {
		d.NotBefore = *info.NotBefore
	}
	if info.Usage != nil {
		d.Usage = &aboutpage.Usage{Today: pageCounts(info.Usage.Today), Month: pageCounts(info.Usage.Month)}
	}
	html, policy := aboutpage.Render(d)
	c.Response().Header().Set("Content-Security-Policy", policy)
	return c.HTMLBlob(http.StatusOK, html)
}

func pageCounts(c usageCounts) aboutpage.Counts {
	return aboutpage.Counts{Requests: c.Requests, Tiles: c.Tiles, Bytes: c.Bytes}
}
