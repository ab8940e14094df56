package fakehexagon

import (
	"bytes"
	_ "embed"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/template"
)

//go:embed wms130.xml.tmpl
var wms130Template string

//go:embed wms111.xml.tmpl
var wms111Template string

var (
	wms130 = template.Must(template.New("wms130").Parse(wms130Template))
	wms111 = template.Must(template.New("wms111").Parse(wms111Template))
)

// MaxMapSize is the largest WIDTH/HEIGHT the fake WMS serves, as Hexagon
// documents for real-time requests.
const MaxMapSize = 3500

// serveWMS serves the KVP WMS 1.1.1/1.3.0 endpoint.
func (f *Fake) serveWMS(w http.ResponseWriter, r *http.Request) {
	f.WMSRequests.Add(1)
	sw := f.switches()
	if !f.proceed(w, r, sw) {
		return
	}
	q := map[string]string{}
	for k, v := range r.URL.Query() {
		q[strings.ToUpper(k)] = v[0]
	}
	if !f.authorized(w, r.URL.Query().Get("access_token")) {
		return
	}
	version := q["VERSION"]
	switch strings.ToLower(q["REQUEST"]) {
	case "getcapabilities":
		f.CapabilitiesRequests.Add(1)
		if sw.Capabilities != nil {
			w.Header().Set("Content-Type", "text/xml")
			w.Write(sw.Capabilities)
			return
		}
		tmpl, ct := wms130, "text/xml"
		if version == "1.1.1" {
			tmpl, ct = wms111, "application/vnd.ogc.wms_xml"
		}
		var b bytes.Buffer
		tmpl.Execute(&b, capsData(r, sw, r.URL.Query().Get("access_token")))
		w.Header().Set("Content-Type", ct)
		w.Write(b.Bytes())
	case "getmap":
		f.MapRequests.Add(1)
		width, height, ok := f.mapSize(w, q)
		if !ok {
			return
		}
		if q["LAYERS"] != Layer {
			wmsError(w, version, "LayerNotDefined", "unknown layer")
			return
		}
		crsName := "CRS"
		if version == "1.1.1" {
			crsName = "SRS"
		}
		if q[crsName] == "" || len(strings.Split(q["BBOX"], ",")) != 4 {
			wmsError(w, version, "MissingParameterValue", crsName+" and BBOX are required")
			return
		}
		if sw.TileContentType != "" {
			w.Header().Set("Content-Type", sw.TileContentType)
			fmt.Fprint(w, "<html><body><script>alert(1)</script></body></html>")
			return
		}
		writeImage(w, r, q["FORMAT"], width, height, version)
	case "getfeatureinfo":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Layer '%s'\n  acquisition_date = '2024-05-01'\n  resolution_m = '0.15'\n", Layer)
	case "getlegendgraphic":
		writeImage(w, r, q["FORMAT"], 64, 16, version)
	default:
		wmsError(w, version, "OperationNotSupported", "unknown request")
	}
}

func (f *Fake) mapSize(w http.ResponseWriter, q map[string]string) (int, int, bool) {
	width, err1 := strconv.Atoi(q["WIDTH"])
	height, err2 := strconv.Atoi(q["HEIGHT"])
	if err1 != nil || err2 != nil || width < 1 || height < 1 || width > MaxMapSize || height > MaxMapSize {
		wmsError(w, q["VERSION"], "InvalidParameterValue", "WIDTH and HEIGHT must be 1 to 3500")
		return 0, 0, false
	}
	return width, height, true
}

// capsData fills a capabilities template.
func capsData(r *http.Request, sw Switches, token string) map[string]string {
	base := CanonicalBase
	if sw.CapabilitiesBase == "request" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	family := "/streaming"
	if strings.HasPrefix(r.URL.Path, "/orders/") {
		family = "/orders"
	}
	d := map[string]string{"Base": base, "Family": family, "Tok": "", "TokQ": ""}
	if sw.TokenInCapabilities {
		d["Tok"] = "&amp;access_token=" + url.QueryEscape(token)
		d["TokQ"] = "access_token=" + url.QueryEscape(token) + "&amp;"
	}
	return d
}

func writeImage(w http.ResponseWriter, r *http.Request, format string, width, height int, version string) {
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	for y := 0; y < height; y++ {
		for x := 0; x < width; x++ {
			img.Set(x, y, color.RGBA{uint8(40 + x*160/width), uint8(90 + y*120/height), 70, 255})
		}
	}
	var b bytes.Buffer
	switch strings.ToLower(format) {
	case "image/png":
		png.Encode(&b, img)
		w.Header().Set("Content-Type", "image/png")
	case "image/jpeg":
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 80})
		w.Header().Set("Content-Type", "image/jpeg")
	default:
		wmsError(w, version, "InvalidFormat", "unsupported format")
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b.Bytes())
}

// wmsError answers the way a WMS server does: a ServiceExceptionReport,
// here with status 400.
func wmsError(w http.ResponseWriter, version, code, msg string) {
	w.Header().Set("Content-Type", "application/vnd.ogc.se_xml")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `<?xml version="1.0"?><ServiceExceptionReport version="%s"><ServiceException code="%s">%s</ServiceException></ServiceExceptionReport>`, version, code, msg)
}
