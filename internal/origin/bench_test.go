package origin

import "testing"

func BenchmarkAllowed(b *testing.B) {
	l, err := Parse("https://*.arcgis.com,https://gis.example.org,http://localhost:3000,https://*.maps.example.net")
	if err != nil {
		b.Fatal(err)
	}
	origins := []string{"https://myorg.maps.arcgis.com", "https://evil.example", "http://localhost:3000", "https://a.b.maps.example.net"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Allowed(origins[i%len(origins)])
	}
}
