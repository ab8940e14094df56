package server

import (
	"github.com/labstack/echo/v4"
)

// aboutPage renders aboutInfo for a browser.
func (s *Server) aboutPage(c echo.Context, info aboutInfo) error {
	return c.JSON(200, info)
}
