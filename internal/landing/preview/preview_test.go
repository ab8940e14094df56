package preview

import (
	"strings"
	"testing"
)

// TestInlineSafe: the script and style go verbatim into a page's inline
// elements, so they must not end those elements early, nor open what a
// browser would read as markup there.
func TestInlineSafe(t *testing.T) {
	for _, c := range []struct{ name, text, close string }{
		{"script", string(Script()), "</script"},
		{"style", string(Style()), "</style"},
	} {
		lower := strings.ToLower(c.text)
		for _, bad := range []string{c.close, "<!--", "<script"} {
			if strings.Contains(lower, bad) {
				t.Errorf("the %s holds %q", c.name, bad)
			}
		}
	}
	for _, fn := range []string{"function chooseBlock(", "function fillTemplate(", "function previewTiles(", "function showPreview("} {
		if !strings.Contains(string(Script()), fn) {
			t.Errorf("the script lacks %s", fn)
		}
	}
	if f := Funcs(); f["previewScript"] == nil || f["previewStyle"] == nil {
		t.Errorf("Funcs gives %v", f)
	}
}
