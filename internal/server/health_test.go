package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
)

// upstreamHealth is /healthz's "upstream".
type upstreamHealth struct {
	LastCall    *time.Time `json:"last_call"`
	Endpoint    string     `json:"endpoint"`
	OK          *bool      `json:"ok"`
	Failure     string     `json:"failure"`
	Status      int        `json:"status"`
	LastSuccess *time.Time `json:"last_success"`
	LastFailure *time.Time `json:"last_failure"`
}

// healthz asks for /healthz, checks that it is alive whatever Hexagon
// does (200, "ok") and names no secret, URL or error text, and returns
// what it says of Hexagon.
func (h *harness) healthz() upstreamHealth {
	h.t.Helper()
	resp, body := h.get(h.proxy.URL+"/healthz", nil)
	var answer struct {
		Status   string
		Upstream upstreamHealth
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &answer) != nil || answer.Status != "ok" {
		h.t.Fatalf("/healthz: %d %s", resp.StatusCode, body)
	}
	h.assertNoSecrets(body)
	for _, s := range []string{"http", "access_token", "wmts", "Hexagon"} {
		if strings.Contains(string(body), s) {
			h.t.Fatalf("/healthz names %q: %s", s, body)
		}
	}
	return answer.Upstream
}

// expect checks the last call's outcome: ok, or the failure and status.
func (u upstreamHealth) expect(t *testing.T, what, endpoint string, ok bool, failure string, status int) {
	t.Helper()
	if u.LastCall == nil || u.OK == nil || *u.OK != ok || u.Endpoint != endpoint || u.Failure != failure || u.Status != status ||
		time.Since(*u.LastCall) > time.Minute || !ok && (u.LastFailure == nil || !u.LastFailure.Equal(*u.LastCall)) ||
		ok && (u.LastSuccess == nil || !u.LastSuccess.Equal(*u.LastCall)) {
		t.Fatalf("%s: upstream %+v; want endpoint %s, ok %v, failure %q, status %d", what, u, endpoint, ok, failure, status)
	}
}

// /healthz stays alive while Hexagon fails, and says how the last call to
// it went: token requests and data calls, each way the upstream fails,
// while a client's own bad request is Hexagon answering.
func TestHealthzReportsHexagon(t *testing.T) {
	leakCheck(t)
	h := newHarness(t, map[string]string{"UPSTREAM_TIMEOUT": "150ms", "TOKEN_TIMEOUT": "300ms", "CAPABILITIES_TTL": "0"})
	browser := map[string]string{"Origin": allowed}
	if u := h.healthz(); u.LastCall != nil || u.OK != nil || u.LastSuccess != nil || u.LastFailure != nil {
		t.Fatalf("before any call: %+v", u)
	}

	// A redirect: the token request is the only call.
	if resp, _ := h.get(h.credURL()+tilePath, nil); resp.StatusCode != 302 {
		t.Fatalf("tile: %d", resp.StatusCode)
	}
	h.healthz().expect(t, "a token", "token", true, "", 0)
	if resp, _ := h.get(h.credURL()+tilePath, browser); resp.StatusCode != 200 {
		t.Fatalf("streamed tile: %d", resp.StatusCode)
	}
	h.healthz().expect(t, "a streamed tile", "data", true, "", 0)
	// A layer Hexagon does not have: it answers 400, the client's fault.
	asked := h.fake.TileRequests.Load()
	if resp, _ := h.get(h.credURL()+"/1.0.0/OtherLayer/default/WebMercator/5/1/2.jpg", browser); resp.StatusCode != 400 || h.fake.TileRequests.Load() != asked+1 {
		t.Fatalf("another layer: %d, Hexagon asked %d times", resp.StatusCode, h.fake.TileRequests.Load()-asked)
	}
	h.healthz().expect(t, "another layer", "data", true, "", 0)

	// Hexagon failing: 5xx, 429, too slow; tiles and capabilities alike.
	h.fake.Set(fakehexagon.Switches{TileStatus: 503})
	h.get(h.credURL()+tilePath, browser)
	u := h.healthz()
	u.expect(t, "a 503", "data", false, "status", 503)
	if u.LastSuccess == nil || !u.LastSuccess.Before(*u.LastCall) && !u.LastSuccess.Equal(*u.LastCall) {
		t.Fatalf("the last success is forgotten: %+v", u)
	}
	h.fake.Set(fakehexagon.Switches{TileStatus: 429, RetryAfter: "1"})
	h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", nil)
	h.healthz().expect(t, "capabilities rate limited", "data", false, "status", 429)
	// WMS's calls too, each site that builds one: capabilities, a map.
	wms := h.proxy.URL + "/wms/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	h.fake.Set(fakehexagon.Switches{TileStatus: 502})
	h.get(wms+"?SERVICE=WMS&REQUEST=GetCapabilities", nil)
	h.healthz().expect(t, "WMS capabilities failing", "data", false, "status", 502)
	h.fake.Set(fakehexagon.Switches{TileStatus: 504})
	h.get(wms+"?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png", browser)
	h.healthz().expect(t, "a streamed WMS map failing", "data", false, "status", 504)
	h.fake.Set(fakehexagon.Switches{TileDelay: time.Second})
	h.get(h.credURL()+tilePath, browser)
	h.healthz().expect(t, "a slow tile", "data", false, "timeout", 0)
	h.fake.Set(fakehexagon.Switches{})
	h.get(h.credURL()+tilePath, browser)
	h.healthz().expect(t, "recovered", "data", true, "", 0)

	// The token endpoint failing, for credentials without a token yet.
	beta := h.proxy.URL + "/wmts/" + credential.Encode(betaID) + "/" + credential.Encode(betaSecret) + tilePath
	second := h.proxy.URL + "/wmts/" + credential.Encode(secondID) + "/" + credential.Encode(secondSecret) + tilePath
	h.fake.Set(fakehexagon.Switches{TokenStatus: 503})
	h.get(beta, nil)
	h.healthz().expect(t, "the token endpoint's 503", "token", false, "status", 503)
	h.fake.Set(fakehexagon.Switches{TokenGarbage: true})
	h.get(beta, nil)
	h.healthz().expect(t, "an answer that is not a token", "token", false, "invalid", 0)
	h.fake.Set(fakehexagon.Switches{TokenDelay: time.Second})
	h.get(second, nil)
	h.healthz().expect(t, "a slow token endpoint", "token", false, "timeout", 0)
	h.fake.Set(fakehexagon.Switches{})
	wrong := h.proxy.URL + "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode("not-the-secret") + tilePath
	h.noteSecret(credential.Encode("not-the-secret"))
	if resp, _ := h.get(wrong, nil); resp.StatusCode != 403 {
		t.Fatalf("a refused credential: %d", resp.StatusCode)
	}
	h.healthz().expect(t, "refused credentials", "token", false, "refused", 401)

	// Hexagon gone.
	h.get(beta, nil) // a token, before it goes
	h.upstream.Close()
	h.get(h.credURL()+tilePath, browser)
	h.healthz().expect(t, "Hexagon unreachable", "data", false, "unreachable", 0)
}
