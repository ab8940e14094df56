package vexcel_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
	"github.com/hexprox/hexprox/internal/testclock"
)

const (
	user = "clara.baker"
	pass = "s3cret-pass"
	key  = "VXKEY-long-lived"
)

func setup(t *testing.T, o vexcel.Options) (*vexcel.Fake, string, *testclock.Clock) {
	t.Helper()
	c := testclock.New(time.Date(2026, 12, 3, 17, 20, 24, 0, time.UTC))
	if o.Now == nil {
		o.Now = c.Now
	}
	f := vexcel.New(o)
	f.AddUser(vexcel.User{Username: user, Password: pass, Company: "Vexcel Group"})
	f.AddAPIKey(key)
	return f, faketest.Serve(t, f), c
}

type login struct {
	User struct {
		Username, Name, CompanyName, CompanySlug string
		Federated, Active                        bool
	}
	Token      string
	Creation   string `json:"date-creation"`
	Expiration string `json:"date-expiration"`
}

func logIn(t *testing.T, base string) login {
	t.Helper()
	resp, body := faketest.Do(t, "POST", base+vexcel.LoginPath+"?username="+user+"&password="+pass, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	var l login
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// The login takes the credentials in the query of a POST and answers the
// documented JSON: the user, a JWT-shaped token, and dates 24 h apart
// written without a time zone.
func TestLoginAnswersDatesWithoutZone(t *testing.T) {
	f, base, c := setup(t, vexcel.Options{})
	l := logIn(t, base)
	if l.User.Username != user || l.User.CompanyName != "Vexcel Group" || l.User.CompanySlug != "vexcel_group" || !l.User.Active || l.Token == "" {
		t.Errorf("login answer %+v", l)
	}
	if l.Creation != "2026-12-03T17:20:24" || l.Expiration != "2026-12-04T17:20:24" {
		t.Errorf("dates %q, %q; want 2026-12-03T17:20:24, 2026-12-04T17:20:24", l.Creation, l.Expiration)
	}
	parts := strings.Split(l.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token is not JWT-shaped: %d parts", len(parts))
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var cl struct{ Exp int64 }
	json.Unmarshal(claims, &cl)
	if cl.Exp != c.Now().Add(24*time.Hour).Unix() {
		t.Errorf("exp claim %d", cl.Exp)
	}
	if l2 := logIn(t, base); l2.Token == l.Token {
		t.Errorf("a second login returned the same token")
	}
	if f.Logins.Load() != 2 || f.TokensIssued.Load() != 2 || f.LastToken() == l.Token {
		t.Errorf("counters: logins %d, issued %d", f.Logins.Load(), f.TokensIssued.Load())
	}

	_, zoned, _ := setup(t, vexcel.Options{Zone: time.FixedZone("CET", 3600)})
	if l := logIn(t, zoned); l.Creation != "2026-12-03T18:20:24" {
		t.Errorf("Zone: date-creation %q, want 2026-12-03T18:20:24", l.Creation)
	}
}

// A GET, a wrong password and a forced status are refused, and no
// refusal echoes the password.
func TestLoginRefusals(t *testing.T) {
	f, base, _ := setup(t, vexcel.Options{})
	if resp, _ := faketest.Do(t, "GET", base+vexcel.LoginPath+"?username="+user+"&password="+pass, nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, body := faketest.Do(t, "POST", base+vexcel.LoginPath+"?username="+user+"&password=wrong-pass", nil)
	if resp.StatusCode != 401 || bytes.Contains(body, []byte("wrong-pass")) {
		t.Errorf("wrong password: %d %s", resp.StatusCode, body)
	}
	f.Set(vexcel.Switches{LoginStatus: 503})
	if resp, _ := faketest.Do(t, "POST", base+vexcel.LoginPath+"?username="+user+"&password="+pass, nil); resp.StatusCode != 503 {
		t.Errorf("LoginStatus: %d", resp.StatusCode)
	}
}

// The WMTS takes the token as Bearer or token=, the long-lived key as
// api_key= or X-API-KEY; anything else, the old AuthToken parameter
// included, is 403 "Unauthorized by Service", and so is a token past its
// 24 hours.
func TestCredentialPlacementsAndExpiry(t *testing.T) {
	f, base, c := setup(t, vexcel.Options{})
	tok := logIn(t, base).Token
	caps := base + vexcel.WMTSPath + "?SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0"
	for _, tc := range []struct {
		name string
		u    string
		h    map[string]string
		want int
	}{
		{"bearer", caps, map[string]string{"Authorization": "Bearer " + tok}, 200},
		{"token param", caps + "&token=" + tok, nil, 200},
		{"api_key param", caps + "&api_key=" + key, nil, 200},
		{"X-API-KEY", caps, map[string]string{"X-API-KEY": key}, 200},
		{"X-API-KEY param", caps + "&X-API-KEY=" + key, nil, 200},
		{"none", caps, nil, 403},
		{"AuthToken", caps + "&AuthToken=" + tok, nil, 403},
		{"wrong token", caps, map[string]string{"Authorization": "Bearer nope"}, 403},
		{"token as api_key", caps + "&api_key=" + tok, nil, 403},
	} {
		resp, body := faketest.Do(t, "GET", tc.u, tc.h)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == 403 && strings.TrimSpace(string(body)) != vexcel.Refusal {
			t.Errorf("%s: body %q, want %q", tc.name, body, vexcel.Refusal)
		}
	}
	c.Advance(24*time.Hour - time.Second)
	if resp, _ := faketest.Do(t, "GET", caps, map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Errorf("a second before expiry: %d", resp.StatusCode)
	}
	c.Advance(time.Second)
	if resp, _ := faketest.Do(t, "GET", caps, map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 403 {
		t.Errorf("at expiry: %d, want 403", resp.StatusCode)
	}
	tok2 := logIn(t, base).Token
	f.Revoke(tok2)
	if resp, _ := faketest.Do(t, "GET", caps+"&token="+tok2, nil); resp.StatusCode != 403 {
		t.Errorf("revoked: %d, want 403", resp.StatusCode)
	}
	if f.Refused.Load() != 6 {
		t.Errorf("Refused %d, want 6", f.Refused.Load())
	}
	// Issued keeps the expired and the revoked token alike, in order.
	if got := f.Issued(); len(got) != 2 || got[0] != tok || got[1] != tok2 {
		t.Errorf("Issued holds %d tokens, want the expired one then the revoked one", len(got))
	}
}

// The capabilities list urban and wide-area, each in a tile matrix set of
// its own name with style RGB; they carry the caller's credential only
// when the switch says so; a template, filled in, fetches a tile with the
// documented Cache-Control.
func TestCapabilities(t *testing.T) {
	f, base, _ := setup(t, vexcel.Options{Base: "request"})
	tok := logIn(t, base).Token
	bearer := map[string]string{"Authorization": "Bearer " + tok}
	caps := base + vexcel.WMTSPath + "?SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0"
	_, body := faketest.Do(t, "GET", caps, bearer)
	c := faketest.ParseWMTS(t, body)
	if len(c.Layers) != 2 || len(c.Sets) != 2 {
		t.Fatalf("layers %+v sets %v", c.Layers, c.Sets)
	}
	for i, l := range c.Layers {
		if l.ID != vexcel.Layers[i] || l.Style != "RGB" || l.Set != l.ID || c.Sets[i].ID != l.ID || len(l.Resources) != 1 {
			t.Errorf("layer %+v, set %q", l, c.Sets[i].ID)
		}
	}
	urls := faketest.URLs(t, body)
	if len(urls) != 4 {
		t.Errorf("%d URLs, want 4", len(urls))
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, base+vexcel.WMTSPath+"?") || strings.Contains(u, tok) {
			t.Errorf("without the switch: URL %q", u)
		}
	}
	tile := strings.NewReplacer("{TileMatrix}", "15", "{TileRow}", "12000", "{TileCol}", "9000").Replace(c.Layers[0].Resources[0].Template)
	resp, img := faketest.Do(t, "GET", tile, bearer)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "max-age=21515" || !bytes.Equal(img, f.JPEG()) {
		t.Errorf("tile %s: %d Cache-Control %q", tile, resp.StatusCode, resp.Header.Get("Cache-Control"))
	}

	f.Set(vexcel.Switches{CredentialInCapabilities: true})
	for name, c := range map[string]struct {
		u     string
		h     map[string]string
		param string
	}{
		"token":   {caps, bearer, "token=" + tok},
		"api_key": {caps, map[string]string{"X-API-KEY": key}, "api_key=" + key},
	} {
		_, body := faketest.Do(t, "GET", c.u, c.h)
		for _, u := range faketest.URLs(t, body) {
			if !strings.Contains(u, c.param) {
				t.Errorf("%s with the switch: URL %q lacks %s", name, u, c.param)
			}
		}
	}
	if f.CapabilitiesRequests.Load() != 3 || f.TileRequests.Load() != 1 {
		t.Errorf("counters: capabilities %d, tiles %d", f.CapabilitiesRequests.Load(), f.TileRequests.Load())
	}
}

// A forced 429 carries Retry-After.
func Test429CarriesRetryAfter(t *testing.T) {
	f, base, _ := setup(t, vexcel.Options{})
	f.Set(vexcel.Switches{Status: 429, RetryAfter: "30"})
	resp, _ := faketest.Do(t, "GET", base+vexcel.WMTSPath+"?REQUEST=GetCapabilities&api_key="+key, nil)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("%d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
