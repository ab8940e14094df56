package maxar_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/testclock"
)

const (
	user = "ada@example.com"
	pass = "s3cret pass/+&="
	key  = "MXKEY-0123456789abcdef"
)

func setup(t *testing.T, o maxar.Options) (*maxar.Fake, string, *testclock.Clock) {
	t.Helper()
	c := testclock.New(time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC))
	if o.Now == nil {
		o.Now = c.Now
	}
	f := maxar.New(o)
	f.AddUser(user, pass)
	f.AddKey(key, 0)
	return f, faketest.Serve(t, f), c
}

type tokenAnswer struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshExpiresIn int    `json:"refresh_expires_in"`
	RefreshToken     string `json:"refresh_token"`
	Error            string `json:"error"`
	Description      string `json:"error_description"`
}

// postForm posts form to the token endpoint and returns the status, the
// decoded answer and the raw body.
func postForm(t *testing.T, base string, form url.Values) (int, tokenAnswer, []byte) {
	t.Helper()
	resp, err := http.PostForm(base+maxar.TokenPath, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	var a tokenAnswer
	if err := json.Unmarshal(b.Bytes(), &a); err != nil {
		t.Fatalf("token answer %d is not JSON: %s", resp.StatusCode, b.Bytes())
	}
	return resp.StatusCode, a, b.Bytes()
}

func login(t *testing.T, base string) tokenAnswer {
	t.Helper()
	st, a, body := postForm(t, base, url.Values{"client_id": {"mgp"}, "grant_type": {"password"}, "username": {user}, "password": {pass}})
	if st != 200 {
		t.Fatalf("login: %d %s", st, body)
	}
	return a
}

func refresh(base, rt string) url.Values {
	return url.Values{"client_id": {"mgp"}, "grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

// The password grant answers Maxar's documented JSON; the refresh grant
// answers a new access token and a refresh token whose end counts down
// to the session's.
func TestPasswordGrantThenRefresh(t *testing.T) {
	f, base, c := setup(t, maxar.Options{})
	a := login(t, base)
	if a.TokenType != "Bearer" || a.ExpiresIn != 7199 || a.RefreshExpiresIn != 43199 || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("login answer %+v", a)
	}
	parts := strings.Split(a.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not JWT-shaped: %d parts", len(parts))
	}
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var cl struct{ Exp int64 }
	json.Unmarshal(claims, &cl)
	if cl.Exp != c.Now().Add(7199*time.Second).Unix() {
		t.Errorf("exp claim %d", cl.Exp)
	}
	if at, rt := f.LastTokens(); at != a.AccessToken || rt != a.RefreshToken {
		t.Errorf("LastTokens do not match the answer")
	}
	if form := f.LastTokenForm(); form.Get("client_id") != "mgp" || form.Get("grant_type") != "password" || form.Get("password") != pass {
		t.Errorf("LastTokenForm %v", form)
	}

	c.Advance(time.Hour)
	st, r, body := postForm(t, base, refresh(base, a.RefreshToken))
	if st != 200 || r.AccessToken == "" || r.AccessToken == a.AccessToken || r.RefreshToken == a.RefreshToken || r.ExpiresIn != 7199 {
		t.Fatalf("refresh: %d %s", st, body)
	}
	if r.RefreshExpiresIn != 43199-3600 {
		t.Errorf("refresh_expires_in after an hour %d, want %d", r.RefreshExpiresIn, 43199-3600)
	}
	if f.Logins.Load() != 1 || f.Refreshes.Load() != 1 || f.TokenRequests.Load() != 2 || f.TokenRefusals.Load() != 0 {
		t.Errorf("counters: logins %d refreshes %d requests %d refusals %d", f.Logins.Load(), f.Refreshes.Load(), f.TokenRequests.Load(), f.TokenRefusals.Load())
	}
}

// The Keycloak refusals: a wrong password, a wrong client, an unknown,
// expired or ended refresh token, an unknown grant, a GET; none echoes
// the password. A forced status wins over everything.
func TestTokenRefusals(t *testing.T) {
	f, base, c := setup(t, maxar.Options{})
	a := login(t, base)
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong password", url.Values{"client_id": {"mgp"}, "grant_type": {"password"}, "username": {user}, "password": {"wrong-pass"}}, 401, "invalid_grant"},
		{"unknown user", url.Values{"client_id": {"mgp"}, "grant_type": {"password"}, "username": {"nobody"}, "password": {pass}}, 401, "invalid_grant"},
		{"wrong client", url.Values{"client_id": {"other"}, "grant_type": {"password"}, "username": {user}, "password": {pass}}, 400, "invalid_client"},
		{"no client", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pass}}, 400, "invalid_client"},
		{"unknown refresh token", refresh(base, "not-a-token"), 400, "invalid_grant"},
		{"access token as refresh token", refresh(base, a.AccessToken), 400, "invalid_grant"},
		{"client credentials", url.Values{"client_id": {"mgp"}, "grant_type": {"client_credentials"}}, 400, "unsupported_grant_type"},
	} {
		st, ans, body := postForm(t, base, tc.form)
		if st != tc.status || ans.Error != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
		if bytes.Contains(body, []byte("wrong-pass")) || bytes.Contains(body, []byte(pass)) {
			t.Errorf("%s: the answer echoes a password: %s", tc.name, body)
		}
	}
	if f.TokenRefusals.Load() != 7 {
		t.Errorf("TokenRefusals %d, want 7", f.TokenRefusals.Load())
	}

	c.Advance(43199*time.Second - time.Second)
	if st, _, body := postForm(t, base, refresh(base, a.RefreshToken)); st != 200 {
		t.Errorf("a second before the refresh token's end: %d %s", st, body)
	}
	c.Advance(time.Second)
	if st, ans, _ := postForm(t, base, refresh(base, a.RefreshToken)); st != 400 || ans.Error != "invalid_grant" {
		t.Errorf("expired refresh token: %d %+v", st, ans)
	}

	b := login(t, base)
	f.EndSessions()
	if st, ans, _ := postForm(t, base, refresh(base, b.RefreshToken)); st != 400 || ans.Error != "invalid_grant" {
		t.Errorf("ended session: %d %+v", st, ans)
	}

	if resp, _ := faketest.Get(t, base+maxar.TokenPath, nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	f.Set(maxar.Switches{TokenStatus: 503})
	if st, _, _ := postForm(t, base, url.Values{"client_id": {"mgp"}, "grant_type": {"password"}, "username": {user}, "password": {pass}}); st != 503 {
		t.Errorf("TokenStatus: %d", st)
	}
}

// A refresh token issued late in a session lives only to the session's
// end, however recently it was issued.
func TestSessionEndsRefreshes(t *testing.T) {
	_, base, c := setup(t, maxar.Options{AccessLifetime: time.Minute, RefreshLifetime: 30 * time.Minute, SessionLifetime: time.Hour})
	a := login(t, base)
	if a.ExpiresIn != 60 || a.RefreshExpiresIn != 1800 {
		t.Fatalf("lifetimes from Options: %+v", a)
	}
	rt := a.RefreshToken
	for i := 0; i < 2; i++ { // 20 and 40 minutes into the session
		c.Advance(20 * time.Minute)
		st, r, body := postForm(t, base, refresh(base, rt))
		if st != 200 {
			t.Fatalf("refresh %d: %d %s", i, st, body)
		}
		rt = r.RefreshToken
		if i == 1 && r.RefreshExpiresIn != 20*60 {
			t.Errorf("refresh_expires_in 40 minutes in: %d, want the session's 1200", r.RefreshExpiresIn)
		}
	}
	c.Advance(20 * time.Minute) // the session's end
	if st, ans, _ := postForm(t, base, refresh(base, rt)); st != 400 || ans.Error != "invalid_grant" {
		t.Errorf("past the session's end: %d %+v", st, ans)
	}
}

// The OGC services take the key as maxar_api_key= (any case) or the
// maxar-api-key header, the token as Bearer; a missing, unknown, revoked
// or expired credential is 401 (or RefusalStatus).
func TestCredentialPlacementsAndExpiry(t *testing.T) {
	f, base, c := setup(t, maxar.Options{})
	short := "MXKEY-short"
	f.AddKey(short, 24*time.Hour)
	tok := login(t, base).AccessToken
	caps := base + maxar.WMTSPath + "?service=WMTS&request=GetCapabilities"
	for _, tc := range []struct {
		name string
		u    string
		h    map[string]string
		want int
	}{
		{"query key", caps + "&maxar_api_key=" + key, nil, 200},
		{"query key, upper-case name", caps + "&MAXAR_API_KEY=" + key, nil, 200},
		{"header key", caps, map[string]string{"maxar-api-key": key}, 200},
		{"bearer", caps, map[string]string{"Authorization": "Bearer " + tok}, 200},
		{"wms bearer", base + maxar.WMSPath + "?service=WMS&request=GetCapabilities", map[string]string{"Authorization": "Bearer " + tok}, 200},
		{"none", caps, nil, 401},
		{"unknown key", caps + "&maxar_api_key=nope", nil, 401},
		{"key as bearer", caps, map[string]string{"Authorization": "Bearer " + key}, 401},
		{"token as key", caps + "&maxar_api_key=" + tok, nil, 401},
		{"bearer wins over a good key", caps + "&maxar_api_key=" + key, map[string]string{"Authorization": "Bearer nope"}, 401},
	} {
		resp, body := faketest.Get(t, tc.u, tc.h)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d: %.200s", tc.name, resp.StatusCode, tc.want, body)
		}
		if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if f.Refused.Load() != 5 {
		t.Errorf("Refused %d, want 5", f.Refused.Load())
	}

	c.Advance(7199*time.Second - time.Second)
	if resp, _ := faketest.Get(t, caps, map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 200 {
		t.Errorf("a second before the token's end: %d", resp.StatusCode)
	}
	c.Advance(time.Second)
	if resp, _ := faketest.Get(t, caps, map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 401 {
		t.Errorf("expired token: %d, want 401", resp.StatusCode)
	}
	tok2 := login(t, base).AccessToken
	f.RevokeToken(tok2)
	if resp, _ := faketest.Get(t, caps, map[string]string{"Authorization": "Bearer " + tok2}); resp.StatusCode != 401 {
		t.Errorf("revoked token: %d, want 401", resp.StatusCode)
	}

	c.Advance(22*time.Hour + time.Second) // 24 h in: the short key is past its day
	if resp, _ := faketest.Get(t, caps+"&maxar_api_key="+short, nil); resp.StatusCode != 401 {
		t.Errorf("expired key: %d, want 401", resp.StatusCode)
	}
	c.Advance(180*24*time.Hour - 24*time.Hour - time.Second)
	if resp, _ := faketest.Get(t, caps+"&maxar_api_key="+key, nil); resp.StatusCode != 200 {
		t.Errorf("a second before the key's 180 days: %d", resp.StatusCode)
	}
	c.Advance(time.Second)
	if resp, _ := faketest.Get(t, caps+"&maxar_api_key="+key, nil); resp.StatusCode != 401 {
		t.Errorf("key past 180 days: %d, want 401", resp.StatusCode)
	}
	f.AddKey("MXKEY-revoked", 0)
	f.RevokeKey("MXKEY-revoked")
	f.Set(maxar.Switches{RefusalStatus: 403})
	if resp, _ := faketest.Get(t, caps, map[string]string{"maxar-api-key": "MXKEY-revoked"}); resp.StatusCode != 403 {
		t.Errorf("revoked key with RefusalStatus 403: %d", resp.StatusCode)
	}
}

func TestAddKeyRefusesMoreThan180Days(t *testing.T) {
	f := maxar.New(maxar.Options{})
	defer func() {
		if recover() == nil {
			t.Error("AddKey accepted 181 days")
		}
	}()
	f.AddKey("k", 181*24*time.Hour)
}

// The WMTS capabilities: Maxar:Imagery in EPSG:3857 with matrices
// EPSG:3857:0 to :21, KVP URLs on the host asked; the caller's key in
// every URL only with the switch, and never a bearer token; a template
// filled in fetches a tile.
func TestWMTSCapabilities(t *testing.T) {
	f, base, _ := setup(t, maxar.Options{Base: "request"})
	caps := base + maxar.WMTSPath + "?service=WMTS&request=GetCapabilities"
	hdr := map[string]string{"maxar-api-key": key}
	_, body := faketest.Get(t, caps, hdr)
	c := faketest.ParseWMTS(t, body)
	if len(c.Layers) != 1 || c.Layers[0].ID != "Maxar:Imagery" || c.Layers[0].Set != "EPSG:3857" || len(c.Layers[0].Resources) != 2 {
		t.Fatalf("layers %+v", c.Layers)
	}
	if len(c.Sets) != 1 || c.Sets[0].ID != "EPSG:3857" || len(c.Sets[0].Matrices) != 22 {
		t.Fatalf("sets %+v", c.Sets)
	}
	for z, id := range c.Sets[0].Matrices {
		if id != fmt.Sprintf("EPSG:3857:%d", z) {
			t.Errorf("matrix %d is %q", z, id)
		}
	}
	for _, u := range faketest.URLs(t, body) {
		if !strings.HasPrefix(u, base+maxar.WMTSPath+"?") || strings.Contains(u, key) {
			t.Errorf("without the switch: URL %q", u)
		}
	}
	for _, r := range c.Layers[0].Resources {
		tile := strings.NewReplacer("{TileMatrix}", "EPSG:3857:15", "{TileRow}", "12000", "{TileCol}", "9000").Replace(r.Template)
		resp, img := faketest.Get(t, tile, hdr)
		want := f.PNG()
		if r.Format == "image/jpeg" {
			want = f.JPEG()
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != r.Format || !bytes.Equal(img, want) {
			t.Errorf("tile %s: %d %s", tile, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	f.Set(maxar.Switches{CredentialInCapabilities: true})
	for name, h := range map[string]map[string]string{"header": hdr, "query": nil} {
		u := caps
		if h == nil {
			u += "&maxar_api_key=" + key
		}
		_, body := faketest.Get(t, u, h)
		for _, u := range faketest.URLs(t, body) {
			if !strings.Contains(u, "maxar_api_key="+key) {
				t.Errorf("key in the %s, with the switch: URL %q lacks it", name, u)
			}
		}
	}
	tok := login(t, base).AccessToken
	_, body = faketest.Get(t, caps, map[string]string{"Authorization": "Bearer " + tok})
	if bytes.Contains(body, []byte(tok)) || bytes.Contains(body, []byte(maxar.KeyParam)) {
		t.Errorf("a bearer token was written into the capabilities")
	}
	if f.CapabilitiesRequests.Load() != 4 || f.TileRequests.Load() != 2 {
		t.Errorf("counters: capabilities %d, tiles %d", f.CapabilitiesRequests.Load(), f.TileRequests.Load())
	}
}

// exceptionCode returns the exceptionCode (OWS) or code (WMS) of a 200
// exception, failing the test if body is none.
func exceptionCode(t *testing.T, body []byte) (root, code string) {
	t.Helper()
	var e struct {
		XMLName xml.Name
		OWS     struct {
			Code string `xml:"exceptionCode,attr"`
		} `xml:"Exception"`
		WMS struct {
			Code string `xml:"code,attr"`
		} `xml:"ServiceException"`
	}
	if err := xml.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an exception: %v: %.300s", err, body)
	}
	return e.XMLName.Local, e.OWS.Code + e.WMS.Code
}

// A WMTS request with a bad parameter is 200 with an OWS ExceptionReport.
func TestWMTSErrorsAre200Exceptions(t *testing.T) {
	f, base, _ := setup(t, maxar.Options{})
	tile := func(layer, set, matrix, row, format string) string {
		return base + maxar.WMTSPath + "?service=WMTS&request=GetTile&version=1.0.0&layer=" + url.QueryEscape(layer) +
			"&style=&tilematrixset=" + url.QueryEscape(set) + "&tilematrix=" + url.QueryEscape(matrix) +
			"&tilerow=" + row + "&tilecol=0&format=" + url.QueryEscape(format) + "&maxar_api_key=" + key
	}
	if resp, body := faketest.Get(t, tile(maxar.Layer, maxar.MatrixSet, "EPSG:3857:3", "7", "image/png"), nil); resp.StatusCode != 200 || !bytes.Equal(body, f.PNG()) {
		t.Fatalf("a good tile: %d %.200s", resp.StatusCode, body)
	}
	for _, tc := range []struct{ name, u, code string }{
		{"unknown layer", tile("Maxar:Nothing", maxar.MatrixSet, "EPSG:3857:3", "7", "image/png"), "InvalidParameterValue"},
		{"unknown set", tile(maxar.Layer, "EPSG:4326", "EPSG:3857:3", "7", "image/png"), "InvalidParameterValue"},
		{"bare zoom", tile(maxar.Layer, maxar.MatrixSet, "3", "7", "image/png"), "InvalidParameterValue"},
		{"outside the grid", tile(maxar.Layer, maxar.MatrixSet, "EPSG:3857:3", "8", "image/png"), "TileOutOfRange"},
		{"zoom 22", tile(maxar.Layer, maxar.MatrixSet, "EPSG:3857:22", "0", "image/png"), "TileOutOfRange"},
		{"unknown format", tile(maxar.Layer, maxar.MatrixSet, "EPSG:3857:3", "7", "image/gif"), "InvalidParameterValue"},
		{"unknown request", base + maxar.WMTSPath + "?request=GetFeatureInfo&maxar_api_key=" + key, "OperationNotSupported"},
	} {
		resp, body := faketest.Get(t, tc.u, nil)
		root, code := exceptionCode(t, body)
		if resp.StatusCode != 200 || root != "ExceptionReport" || code != tc.code {
			t.Errorf("%s: %d %s %s, want 200 ExceptionReport %s", tc.name, resp.StatusCode, root, code, tc.code)
		}
	}
	if f.Exceptions.Load() != 7 || f.TileRequests.Load() != 1 {
		t.Errorf("counters: exceptions %d, tiles %d", f.Exceptions.Load(), f.TileRequests.Load())
	}
}

// A CQL_FILTER that names an unknown property answers a blank image with
// 200, on the WMTS and the WMS; known properties filter as usual.
func TestMisspelledCQLPropertyIsBlank(t *testing.T) {
	f, base, _ := setup(t, maxar.Options{})
	tile := base + maxar.WMTSPath + "?service=WMTS&request=GetTile&layer=Maxar:Imagery&tilematrixset=EPSG:3857&tilematrix=EPSG:3857:1&tilerow=0&tilecol=1&format=image/png&maxar_api_key=" + key
	good := url.QueryEscape("acquisitionDate>='2024-01-01' AND cloudCover<0.2")
	if _, body := faketest.Get(t, tile+"&CQL_FILTER="+good, nil); !bytes.Equal(body, f.PNG()) {
		t.Errorf("known properties: not the usual tile")
	}
	bad := url.QueryEscape("acquisitonDate>='2024-01-01'")
	resp, body := faketest.Get(t, tile+"&CQL_FILTER="+bad, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, f.BlankTile("image/png")) {
		t.Errorf("misspelled property: %d, not the blank tile", resp.StatusCode)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, a := img.At(10, 10).RGBA(); a != 0 || img.Bounds().Dx() != 256 {
		t.Errorf("the blank tile is not transparent: alpha %d, %v", a, img.Bounds())
	}
	getMap := base + maxar.WMSPath + "?service=WMS&version=1.3.0&request=GetMap&layers=Maxar:Imagery&crs=EPSG:3857&bbox=0,0,1000,1000&width=64&height=32&format=image/png&maxar_api_key=" + key
	_, body = faketest.Get(t, getMap+"&cql_filter="+url.QueryEscape("productName IN ('VIVID') AND clodCover < 0.1"), nil)
	img, err = png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, a := img.At(1, 1).RGBA(); a != 0 || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 32 {
		t.Errorf("WMS misspelled property: alpha %d, %v", a, img.Bounds())
	}
	if f.BlankImages.Load() != 2 || f.TileRequests.Load() != 2 || f.MapRequests.Load() != 1 {
		t.Errorf("counters: blank %d tiles %d maps %d", f.BlankImages.Load(), f.TileRequests.Load(), f.MapRequests.Load())
	}
}

// The WMS answers capabilities in 1.3.0 and 1.1.1, maps, and its errors
// as 200 ServiceExceptionReports of the version asked for.
func TestWMS(t *testing.T) {
	f, base, _ := setup(t, maxar.Options{Base: "request"})
	wms := base + maxar.WMSPath + "?service=WMS&maxar_api_key=" + key
	for version, root := range map[string]string{"1.3.0": "WMS_Capabilities", "1.1.1": "WMT_MS_Capabilities"} {
		_, body := faketest.Get(t, wms+"&request=GetCapabilities&version="+version, nil)
		d := xml.NewDecoder(bytes.NewReader(body))
		d.Strict = false
		var doc struct {
			XMLName xml.Name
			Version string   `xml:"version,attr"`
			Names   []string `xml:"Capability>Layer>Layer>Name"`
		}
		if err := d.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc.XMLName.Local != root || doc.Version != version || len(doc.Names) != 1 || doc.Names[0] != maxar.Layer {
			t.Errorf("%s capabilities: %+v", version, doc)
		}
		for _, u := range faketest.URLs(t, body) {
			if !strings.HasPrefix(u, base+maxar.WMSPath+"?") || strings.Contains(u, key) {
				t.Errorf("%s: URL %q", version, u)
			}
		}
	}
	resp, body := faketest.Get(t, wms+"&version=1.1.1&request=GetMap&layers=Maxar:Imagery&srs=EPSG:4326&bbox=-10,-10,10,10&width=100&height=80&format=image/jpeg", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(body) == 0 {
		t.Errorf("GetMap: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, tc := range []struct{ name, q, root, code string }{
		{"1.3.0 unknown layer", "&version=1.3.0&request=GetMap&layers=Nope&crs=EPSG:3857&bbox=0,0,1,1&width=1&height=1&format=image/png", "ServiceExceptionReport", "LayerNotDefined"},
		{"1.1.1 unknown layer", "&version=1.1.1&request=GetMap&layers=Nope&srs=EPSG:3857&bbox=0,0,1,1&width=1&height=1&format=image/png", "ServiceExceptionReport", "LayerNotDefined"},
		{"1.3.0 SRS instead of CRS", "&version=1.3.0&request=GetMap&layers=Maxar:Imagery&srs=EPSG:3857&bbox=0,0,1,1&width=1&height=1&format=image/png", "ServiceExceptionReport", "InvalidSRS"},
		{"bad format", "&version=1.3.0&request=GetMap&layers=Maxar:Imagery&crs=EPSG:3857&bbox=0,0,1,1&width=1&height=1&format=image/tiff", "ServiceExceptionReport", "InvalidFormat"},
		{"unknown request", "&version=1.3.0&request=GetLegendGraphic", "ServiceExceptionReport", "OperationNotSupported"},
	} {
		resp, body := faketest.Get(t, wms+tc.q, nil)
		root, code := exceptionCode(t, body)
		if resp.StatusCode != 200 || root != tc.root || code != tc.code {
			t.Errorf("%s: %d %s %s", tc.name, resp.StatusCode, root, code)
		}
		if v := strings.Contains(tc.name, "1.1.1"); v != strings.Contains(string(body), `version="1.1.1"`) {
			t.Errorf("%s: the exception's version does not follow the request's: %s", tc.name, body)
		}
	}
	if f.MapRequests.Load() != 1 || f.Exceptions.Load() != 5 {
		t.Errorf("counters: maps %d exceptions %d", f.MapRequests.Load(), f.Exceptions.Load())
	}
}

// A forced 429 carries Maxar's documented JSON body and a Retry-After
// that matches it; another forced status is plain.
func Test429CarriesTheDocumentedBody(t *testing.T) {
	f, base, _ := setup(t, maxar.Options{})
	u := base + maxar.WMTSPath + "?request=GetCapabilities&maxar_api_key=" + key
	for _, retry := range []string{"", "42"} {
		f.Set(maxar.Switches{Status: 429, RetryAfter: retry})
		want := retry
		if want == "" {
			want = "3533"
		}
		resp, body := faketest.Get(t, u, nil)
		var b struct {
			Error struct {
				Code     string   `json:"error_code"`
				Type     string   `json:"error_type"`
				Messages []string `json:"error_messages"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatalf("429 body: %v %s", err, body)
		}
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != want || b.Error.Code != "too_many_requests" || b.Error.Type != "rate_limit_error" ||
			len(b.Error.Messages) != 1 || !strings.HasSuffix(b.Error.Messages[0], "Try after "+want+" seconds") {
			t.Errorf("RetryAfter %q: %d Retry-After %q %s", retry, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	f.Set(maxar.Switches{Status: 503, RetryAfter: "7"})
	if resp, _ := faketest.Get(t, u, nil); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("503: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if f.RateLimited.Load() != 2 || f.Requests.Load() != 3 {
		t.Errorf("counters: rate limited %d, requests %d", f.RateLimited.Load(), f.Requests.Load())
	}
}

// Last keeps what the last OGC request carried, so a test can prove what
// a proxy sent; it is a copy.
func TestLastRecordsTheRequest(t *testing.T) {
	f, base, _ := setup(t, maxar.Options{})
	faketest.Get(t, base+maxar.WMSPath+"?request=GetCapabilities&service=WMS", map[string]string{"maxar-api-key": key, "User-Agent": "probe/1"})
	s := f.Last()
	if s.Path != maxar.WMSPath || s.Query.Get("service") != "WMS" || s.Header.Get("maxar-api-key") != key || s.Header.Get("User-Agent") != "probe/1" {
		t.Errorf("Last %+v", s)
	}
	s.Header.Set("maxar-api-key", "changed")
	if f.Last().Header.Get("maxar-api-key") != key {
		t.Errorf("Last returned the fake's own header")
	}
}
