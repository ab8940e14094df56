package landing

import "github.com/hexprox/hexprox/internal/landing/preview"

// Test hooks: what the tests read and no caller needs.

// EncodingScript returns the page's credential-encoding function, for
// tests that run it outside a browser.
func EncodingScript() string {
	return section("// --- encoding:", "// --- end encoding ---")
}

// PreviewScript returns the preview script the page inlines (package
// preview: previewTiles, the helpers it calls, and showPreview), for
// tests that run it outside a browser. It defines functions only, and
// previewTiles needs a DOM Document only as input.
func PreviewScript() string {
	return string(preview.Script())
}
