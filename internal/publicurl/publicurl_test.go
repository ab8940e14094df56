package publicurl

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestBase(t *testing.T) {
	cases := []struct {
		name       string
		host       string
		headers    map[string]string
		tls        bool
		configured string
		want       string
		ok         bool
	}{
		{"host header", "proxy.example:8080", nil, false, "", "http://proxy.example:8080", true},
		{"tls", "proxy.example", nil, true, "", "https://proxy.example", true},
		{"azure arr ssl", "app.azurewebsites.net", map[string]string{"X-ARR-SSL": "2048|256|..."}, false, "", "https://app.azurewebsites.net", true},
		{"forwarded", "internal:7071", map[string]string{"X-Forwarded-Host": "Maps.Example.org, other", "X-Forwarded-Proto": "https,http"}, false, "", "https://maps.example.org", true},
		{"configured wins over spoofing", "internal", map[string]string{"X-Forwarded-Host": "evil.example"}, false, "https://maps.example.org/p", "https://maps.example.org/p", true},
		{"spoofed path", "internal", map[string]string{"X-Forwarded-Host": "evil.example/x"}, false, "", "", false},
		{"spoofed userinfo", "internal", map[string]string{"X-Forwarded-Host": "a@evil.example"}, false, "", "", false},
		{"quote", `x"y`, nil, false, "", "", false},
		{"ipv6", "[::1]:8080", nil, false, "", "http://[::1]:8080", true},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tc.host
		if !tc.tls {
			r.TLS = nil
		} else {
			r.TLS = &tls.ConnectionState{}
		}
		for k, v := range tc.headers {
			r.Header.Set(k, v)
		}
		got, ok := Base(r, tc.configured)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
