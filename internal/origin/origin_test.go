package origin

import (
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	l, err := Parse("https://*.arcgis.com, http://localhost:3000,https://gis.example.org")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"https://myorg.maps.arcgis.com":   true,
		"https://www.arcgis.com":          true,
		"HTTPS://WWW.ARCGIS.COM":          true,
		"https://arcgis.com":              false,
		"http://www.arcgis.com":           false,
		"https://www.arcgis.com:8443":     false,
		"https://evilarcgis.com":          false,
		"https://arcgis.com.evil.net":     false,
		"https://evil.net/.arcgis.com":    false,
		"https://evil.net?.arcgis.com":    false,
		"https://evil.net#.arcgis.com":    false,
		"https://user@www.arcgis.com":     false,
		"https://evil.net\x00.arcgis.com": false,
		"http://localhost:3000":           true,
		"http://localhost:3001":           false,
		"http://localhost":                false,
		"https://gis.example.org":         true,
		"https://gis.example.org.":        false,
		"https://a.gis.example.org":       false,
		"null":                            false,
		"":                                false,
		"https://":                        false,
		"https://www.arcgis.com/":         false,
	}
	for o, want := range cases {
		if got := l.Allowed(o); got != want {
			t.Errorf("Allowed(%q) = %v, want %v", o, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"arcgis.com", "ftp://x.org", "https://*", "https://a.*.com", "https://x.org/path", "https://x:port"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	l, err := Parse(" , *")
	if err != nil || !l.Allowed("https://anything.example") || l.Allowed("null") {
		t.Fatalf("'*' must allow every real origin: %v", err)
	}
	if l, _ := Parse(""); !l.Empty() || l.Allowed("https://x.org") {
		t.Fatal("empty list must allow nothing")
	}
}

func FuzzAllowed(f *testing.F) {
	for _, s := range []string{"https://a.arcgis.com", "https://arcgis.com", "http://x:1", "null", "https://a.arcgis.com.evil"} {
		f.Add(s)
	}
	l, err := Parse("https://*.arcgis.com,https://gis.example.org")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, o string) {
		if !l.Allowed(o) {
			return
		}
		// Anything allowed must be an https origin ending in one of the two hosts.
		_, host, port, ok := split(strings.ToLower(o))
		if !ok || port != "" || !(host == "gis.example.org" || strings.HasSuffix(host, ".arcgis.com") && host != ".arcgis.com") {
			t.Fatalf("allowed unexpected origin %q", o)
		}
	})
}
