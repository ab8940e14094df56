// Package preview is the imagery preview of the landing page (after a
// good Check) and of an API key's about page (as it loads): a few tiles of
// the first layer of a WMTS capabilities document, as plain <img>
// elements. It is script and style for a self-contained page, which
// inlines them into its own <script> and <style> so that package csp
// allows them by hash; both pages share them so that they choose and show
// tiles the same way.
//
// The script defines, and runs nothing:
//
//   - previewTiles(doc): the first layer of a capabilities Document, its
//     default style, its first tile matrix set, and a block of up to 4 × 2
//     tiles around the middle of that set's lowest zoom level that has
//     that many (chooseBlock), as URLs filled from the layer's REST tile
//     template (fillTemplate); {layer, matrix, cols, urls} or null.
//   - showPreview(doc, figure, current): shows those tiles in figure, a
//     <figure> holding a <div class="tiles"> and a <figcaption>, if every
//     URL is of the page's own origin; else says there is no preview.
//     current() says whether the figure still wants this answer: a stale
//     one does not write the caption.
package preview

import (
	_ "embed"
	"html/template"
)

var (
	//go:embed preview.js
	script string
	//go:embed preview.css
	style string
)

// Script returns the preview's JavaScript, for a page's inline <script>
// (a template function: {{previewScript}}).
func Script() template.JS { return template.JS(script) }

// Style returns the preview's CSS, for a page's inline <style> (a
// template function: {{previewStyle}}). It styles #preview and .tiles.
func Style() template.CSS { return template.CSS(style) }

// Funcs returns previewScript and previewStyle for a page's template.
func Funcs() template.FuncMap {
	return template.FuncMap{"previewScript": Script, "previewStyle": Style}
}
