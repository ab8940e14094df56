package termtext

import "testing"

func TestPrintableEscapesControlCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"County GIS":               "County GIS",
		"Évora – Câmara":           "Évora – Câmara",
		"evil\x1b]0;pwned\x07name": `evil\x1b]0;pwned\aname`,
		"two\nlines":               `two\nlines`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}
