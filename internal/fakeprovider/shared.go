package fakeprovider

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net/http"
	"strconv"
	"text/template"
	"time"
)

// JPEG renders a 256×256 JPEG of textured colour, at the highest quality
// that keeps it at or under maxBytes (the lowest quality tried if none
// does). Deterministic: the same maxBytes gives the same bytes.
func JPEG(maxBytes int) []byte {
	img := texture(256, 256)
	var b bytes.Buffer
	for q := 95; q > 5; q -= 5 {
		b.Reset()
		jpeg.Encode(&b, img, &jpeg.Options{Quality: q})
		if b.Len() <= maxBytes {
			break
		}
	}
	return b.Bytes()
}

// PNG renders a size×size RGBA PNG whose left half is opaque colour and
// whose right half is fully transparent: a tile at the edge of a mosaic's
// coverage, as Planet's PNG tiles with alpha are.
func PNG(size int) []byte {
	img := texture(size, size)
	for y := 0; y < size; y++ {
		for x := size / 2; x < size; x++ {
			img.SetRGBA(x, y, color.RGBA{})
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// Image renders a w×h image in the given format ("image/jpeg" or
// "image/png") for a WMS GetMap; ok is false for any other format.
func Image(format string, w, h int) (body []byte, ok bool) {
	img := texture(w, h)
	var b bytes.Buffer
	switch format {
	case "image/jpeg":
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 60})
	case "image/png":
		png.Encode(&b, img)
	default:
		return nil, false
	}
	return b.Bytes(), true
}

func texture(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(2463534242)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			seed ^= seed << 13
			seed ^= seed >> 17
			seed ^= seed << 5
			n := uint8(seed)
			img.SetRGBA(x, y, color.RGBA{uint8(x)/2 + n/4, uint8(y)/2 + n/4, 90 + n/3, 255})
		}
	}
	return img
}

// Matrix is one level of a Web Mercator (EPSG:3857) tile matrix set of
// 256 px tiles: its zoom, its width and height in tiles, and its scale
// denominator at 0.28 mm pixels.
type Matrix struct {
	Z, N  int
	Scale string
}

// Matrices lists the levels 0 to maxZoom.
func Matrices(maxZoom int) []Matrix {
	var ms []Matrix
	for z := 0; z <= maxZoom; z++ {
		ms = append(ms, Matrix{Z: z, N: 1 << z, Scale: strconv.FormatFloat(559082264.0287178/float64(int(1)<<z), 'f', -1, 64)})
	}
	return ms
}

// InGrid reports whether z, row and col name a tile of a Web Mercator
// grid with levels 0 to maxZoom.
func InGrid(z, row, col string, maxZoom int) bool {
	zi, err1 := strconv.Atoi(z)
	ri, err2 := strconv.Atoi(row)
	ci, err3 := strconv.Atoi(col)
	return err1 == nil && err2 == nil && err3 == nil && zi >= 0 && zi <= maxZoom && ri >= 0 && ci >= 0 && ri < 1<<zi && ci < 1<<zi
}

// XML escapes s for an XML attribute or text node; capabilities templates
// call it as "x".
func XML(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// Template parses a fake's fixed capabilities template, with XML as its
// function "x". It panics if text does not parse.
func Template(name, text string) *template.Template {
	return template.Must(template.New(name).Funcs(template.FuncMap{"x": XML}).Parse(text))
}

// Render executes a fixed template with data. It panics if that fails: the
// templates and their data are the fake's own, so a failure is a bug in
// the fake.
func Render(t *template.Template, data any) []byte {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Wait sleeps for d unless the caller goes away first; it reports whether
// the request should go on.
func Wait(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// SetRetryAfter sets the Retry-After header of an answer a fake's
// Switches.Status forces, to v as the switches give it (seconds or an HTTP
// date, passed on unchecked), unless v is empty.
func SetRetryAfter(w http.ResponseWriter, v string) {
	if v != "" {
		w.Header().Set("Retry-After", v)
	}
}

// ResolveBase returns the scheme and host a fake writes into its
// capabilities for an Options base: canonical for "", the host the request
// reached for "request", base itself otherwise.
func ResolveBase(base, canonical string, r *http.Request) string {
	switch base {
	case "":
		return canonical
	case "request":
		return Base(r)
	}
	return base
}

// Base returns the scheme and host the request reached, for capabilities
// that name "this server" when no base is configured.
func Base(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// JSON answers status with v as JSON, not to be cached, as token and
// login services answer.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
