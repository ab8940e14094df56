package landing

// Test hooks: what the tests read and no caller needs.

// EncodingScript returns the page's credential-encoding function, for
// tests that run it outside a browser.
func EncodingScript() string {
	return section("// --- encoding:", "// --- end encoding ---")
}

// PreviewScript returns the page's capabilities-to-tiles functions
// (previewTiles and the helpers it calls), for tests that run them
// outside a browser. They need a DOM Document only as input.
func PreviewScript() string {
	return section("// --- preview:", "// --- end preview ---")
}
