package provider

import (
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
)

const operatorProfiles = `{"providers": [
  {"name": "eagleview", "title": "EagleView", "credential": "oauth2",
   "token_url": "https://login.example.com/oauth2/v1/token", "auth": "body", "scopes": ["imagery"],
   "hosts": {"api": {"url": "https://imagery.example.com/", "paths": ["/wmts/", "/wms"]}},
   "wmts": "api:/wmts?SERVICE=WMTS&REQUEST=GetCapabilities", "wms": "api:/wms",
   "strip": ["x-api-key"], "not_licensed": 404, "relay": ["X-RateLimit-Remaining"],
   "licence": "licensed per organisation"},
  {"name": "county", "credential": "static",
   "hosts": {"tiles": {"url": "http://tiles.county.example:8080", "paths": ["/arcgis/rest/services/Ortho/MapServer/WMTS"]}},
   "wmts": "tiles:/arcgis/rest/services/Ortho/MapServer/WMTS/1.0.0/WMTSCapabilities.xml",
   "place": [{"query": "token"}, {"header": "X-Esri-Authorization", "template": "Bearer {}"}], "key_lifetime_days": 365}
]}`

func TestParseProfiles(t *testing.T) {
	ps, err := ParseProfiles([]byte(operatorProfiles))
	if err != nil || len(ps) != 2 {
		t.Fatalf("%d profiles, %v", len(ps), err)
	}
	ev := ps[0]
	if ev.Name != "eagleview" || ev.Title != "EagleView" || !ev.InBody || !slices.Equal(ev.Scopes, []string{"imagery"}) ||
		ev.Grant != GrantClient || ev.TokenEndpoint == nil || ev.TokenEndpoint.Path != "/oauth2/v1/token" || ev.NotLicensed != 404 ||
		!slices.Equal(ev.Pass, []string{"X-RateLimit-Remaining"}) || ev.Licence == "" {
		t.Fatalf("eagleview: %+v", ev)
	}
	if h, ok := ev.Host(ev.TokenEndpoint.Role); !ok || h.Base != "https://login.example.com" || len(h.Allowed) != 0 {
		t.Errorf("the token host is %+v, %v: it must allow no path through", h, ok)
	}
	if h, ok := ev.Host("api"); !ok || h.Base != "https://imagery.example.com" || !slices.Equal(h.Allowed, []string{"/wmts", "/wms"}) {
		t.Errorf("api host: %+v", h)
	}
	if ev.WMTS != (Service{Role: "api", Path: "/wmts", Query: "SERVICE=WMTS&REQUEST=GetCapabilities"}) || ev.WMS == nil || ev.WMS.Path != "/wms" {
		t.Errorf("entry points: %+v %+v", ev.WMTS, ev.WMS)
	}
	// An OAuth2 profile's token goes as Bearer unless it says otherwise,
	// and it takes client ids and secrets only.
	u, h := &url.URL{Path: "/wmts"}, http.Header{}
	ev.Apply(u, h, &oauth2.Token{AccessToken: "tok"})
	if h.Get("Authorization") != "Bearer tok" || u.RawQuery != "" {
		t.Errorf("token placed as %v, query %q", h, u.RawQuery)
	}
	if !ev.Takes(credential.Credential{Provider: "eagleview", ID: "i", Secret: "s", Client: true}) ||
		ev.Takes(credential.Credential{Provider: "eagleview", Secret: "k"}) || ev.Takes(credential.Credential{Provider: "eagleview", ID: "u", Secret: "p"}) {
		t.Error("an oauth2 profile must take client ids and secrets, and nothing else")
	}

	county := ps[1]
	if county.Title != "county" || county.TokenEndpoint != nil || county.KeyLifetime != 365*24*time.Hour || len(county.Place) != 2 || !county.Takes(credential.Credential{Provider: "county", Secret: "k"}) ||
		county.Takes(credential.Credential{Provider: "county", ID: "u", Secret: "p"}) {
		t.Fatalf("county: %+v", county)
	}
	u, h = &url.URL{Path: "/x", RawQuery: "a=1"}, http.Header{}
	county.Apply(u, h, &oauth2.Token{AccessToken: "k&y", TokenType: KeyTokenType})
	if u.RawQuery != "a=1&token=k%26y" || h.Get("X-Esri-Authorization") != "Bearer k&y" {
		t.Errorf("key placed as %q, %v", u.RawQuery, h)
	}
}

// Every problem is reported at once, named by the profile and member;
// no URL is repeated (a URL can hold a secret).
func TestParseProfilesRefuses(t *testing.T) {
	const secret = "hunter2"
	for doc, wants := range map[string][]string{
		`{"providers":[{"name":"X","credential":"magic","hosts":{}}]}`: {
			"providers[0]: ", "name must be", "hosts must name", "wmts must be", `credential must be "static" or "oauth2"`},
		`{"providers":[{"name":"acme","credential":"oauth2","token_url":"https://u:` + secret + `@login.example.com/t?secret=` + secret + `",
		  "hosts":{"api":{"url":"https://x.example.com/base?k=` + secret + `","paths":["/a/../b"]},"TOKEN":{"url":"https://y.example.com","paths":["/p"]}},
		  "wmts":"api:/elsewhere","place":[{"query":"a","header":"B"}],"auth":"digest","relay":["Bad Header"],"not_licensed":429,"key_lifetime_days":30}]}`: {
			"providers[0] (acme): ", "token_url must be an https:// (or http://) URL", "hosts.api.url must be scheme://host[:port] with nothing else",
			`hosts: role "TOKEN"`, "place[0] must have exactly one", `auth must be "body" or "basic"`, `relay: "Bad Header"`, "not_licensed must be", "key_lifetime_days belongs to a static profile"},
		`{"providers":[{"name":"county","credential":"static","hosts":{"t":{"url":"https://t.example.com","paths":["/wmts"]}},"wmts":"t:/wmts/caps.xml"}]}`: {
			"place must say where the key goes"},
		`{"providers":[{"name":"county","credential":"static","hosts":{"t":{"url":"https://t.example.com","paths":["/wmts"]}},"wmts":"u:/wmts","place":[{"path":"key","after":"wmts"}]}]}`: {
			`names host role "u"`, `path must be a segment name`},
		`{"providers":[{"name":"county","credential":"static","hosts":{"t":{"url":"https://t.example.com/base","paths":["/w"]},
		  "u":{"url":"https://u.example.com","paths":["/a/../b","/w%41x"]},"token":{"url":"https://y.example.com","paths":["/p"]}},
		  "wmts":"u:/w","place":[{"query":"k"}],"strip":["a=b"]}]}`: {
			"hosts.t.url must be scheme://host[:port] with nothing else", `hosts.u.paths: "/a/../b"`, `hosts.u.paths: "/w%41x"`,
			`hosts: role "token"`, `strip: "a=b"`},
		`{"providers":[{"name":"county","surprise":true}]}`: {`unknown field "surprise"`},
		`{"providers":[{"name":`:                            {"ends early"},
		`{"providers":[{"name":}`:                           {"syntax error"},
	} {
		_, err := ParseProfiles([]byte(doc))
		if err == nil {
			t.Errorf("%s: accepted", doc)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n%v\nwant %q", doc, err, w)
			}
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error repeats a value: %v", err)
		}
	}
}

func TestCatalog(t *testing.T) {
	own, err := ParseProfiles([]byte(operatorProfiles))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCatalog(map[string]map[string]string{"planet": {"tiles": "http://127.0.0.1:9/"}}, own)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"county", "eagleview", "maxar", "nearmap", "planet", "vexcel"}; !slices.Equal(c.Names(), want) {
		t.Errorf("names %v, want %v", c.Names(), want)
	}
	if h, _ := c.Get("Planet").Host("tiles"); h.Base != "http://127.0.0.1:9" {
		t.Errorf("planet's tiles host is %q: the setting must replace it", h.Base)
	}
	if h, _ := c.Get("planet").Host("api"); h.Base != "https://api.planet.com" {
		t.Errorf("planet's api host is %q: a role without a setting keeps its own", h.Base)
	}
	if c.Get("hexagon") != nil || c.Get("nobody") != nil || c.Get("EagleView") == nil {
		t.Error("Get must find the catalog's profiles in any case, and only them")
	}
	for _, bad := range [][]Profile{{{Name: "maxar"}}, {{Name: "hexagon"}}, {own[0], own[0]}} {
		if _, err := NewCatalog(nil, bad); err == nil {
			t.Errorf("%s: accepted", bad[0].Name)
		}
	}
	if (Catalog{}).Get("planet") != nil || len((Catalog{}).Names()) != 0 {
		t.Error("the zero Catalog holds no profile")
	}
}

// Maxar takes keys and logins, each placed its own way: a key in the
// maxar-api-key header, a token as Bearer; neither in the URL.
func TestMaxarPlacesKeysAndTokens(t *testing.T) {
	p, err := Builtin("maxar", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, h := &url.URL{Path: "/streaming/v1/ogc/wmts"}, http.Header{}
	p.Apply(u, h, &oauth2.Token{AccessToken: "MXK", TokenType: KeyTokenType})
	if h.Get("Maxar-Api-Key") != "MXK" || h.Get("Authorization") != "" || u.String() != "/streaming/v1/ogc/wmts" {
		t.Errorf("key: %v %s", h, u)
	}
	u, h = &url.URL{Path: "/streaming/v1/ogc/wmts"}, http.Header{}
	p.Apply(u, h, &oauth2.Token{AccessToken: "JWT", TokenType: "Bearer"})
	if h.Get("Authorization") != "Bearer JWT" || h.Get("Maxar-Api-Key") != "" || u.String() != "/streaming/v1/ogc/wmts" {
		t.Errorf("token: %v %s", h, u)
	}
	if !p.Takes(credential.Credential{Provider: "maxar", Secret: "k"}) || !p.Takes(credential.Credential{Provider: "maxar", ID: "u", Secret: "p"}) ||
		p.Takes(credential.Credential{Provider: "maxar", ID: "c", Secret: "s", Client: true}) {
		t.Error("maxar takes keys and logins, not clients")
	}
	if _, ok := PassPath("/auth/realms/mds/protocol/openid-connect/token", mustHost(t, p, "account").Allowed); ok {
		t.Error("nothing on Maxar's account host may be reached through the proxy")
	}
}

func mustHost(t *testing.T, p *Profile, role string) Host {
	t.Helper()
	h, ok := p.Host(role)
	if !ok {
		t.Fatalf("%s has no host %q", p.Name, role)
	}
	return h
}

// FuzzParseProfiles: no input panics, and a profile accepted has entry
// points on its own hosts that PassPath lets through.
func FuzzParseProfiles(f *testing.F) {
	f.Add([]byte(operatorProfiles))
	f.Add([]byte(`{"providers":[{"name":"ab","credential":"static","hosts":{"h":{"url":"http://h","paths":["/p"]}},"wmts":"h:/p","place":[{"path":"k","after":"/p"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParseProfiles(data)
		if err != nil {
			return
		}
		for _, p := range ps {
			h, ok := p.Host(p.WMTS.Role)
			if !ok {
				t.Fatalf("%s: wmts on no host", p.Name)
			}
			if _, ok := PassPath(p.WMTS.Path, h.Allowed); !ok {
				t.Fatalf("%s: wmts path %q not below %v", p.Name, p.WMTS.Path, h.Allowed)
			}
			if p.TokenEndpoint == nil && len(p.Place) == 0 || p.TokenEndpoint != nil && len(p.TokenPlace) == 0 {
				t.Fatalf("%s: a credential with nowhere to go", p.Name)
			}
		}
	})
}

// The README's example profile is one the proxy reads.
func TestREADMEProfileParses(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "**A service not built in.**")
	if !ok {
		t.Fatal("the README lost its section on a service not built in")
	}
	_, after, ok = strings.Cut(after, "```json\n")
	doc, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("the section has no JSON example")
	}
	ps, err := ParseProfiles([]byte(doc))
	if err != nil || len(ps) != 1 {
		t.Fatalf("%d profiles, %v", len(ps), err)
	}
	if _, err := NewCatalog(nil, ps); err != nil {
		t.Fatal(err)
	}
}
