package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/keys"
)

// Every answer to an allowed origin lets a credentialed request read it
// (the ArcGIS Maps SDK sends credentials to a server on its
// trustedServers list): the exact origin, Access-Control-Allow-Credentials
// and Vary: Origin, also when ALLOWED_ORIGINS is a lone "*", and also for
// errors that come before the origin policy. An origin that is not
// allowed gets no CORS header at all.
func TestCredentialedCORS(t *testing.T) {
	for _, origins := range []string{"", "*"} {
		env := map[string]string{}
		if origins != "" {
			env["ALLOWED_ORIGINS"] = origins
		}
		h := newHarness(t, env)
		key := h.addKey(keys.Record{Org: "Trusted servers"})
		limited := h.addKey(keys.Record{Org: "Slow servers", Rate: 1, Burst: 1})
		v1wms, v2wms := h.wmsURL(), h.proxy.URL+"/v2/wms/"+key
		for _, tc := range []struct {
			name, method, url string
			status            int
		}{
			{"capabilities", "GET", h.credURL() + "/1.0.0/WMTSCapabilities.xml", 200},
			{"tile", "GET", h.credURL() + tilePath, 200},
			{"key capabilities", "GET", h.keyURL(key) + "/1.0.0/WMTSCapabilities.xml", 200},
			{"key tile", "GET", h.keyURL(key) + tilePath, 200},
			{"map", "GET", v1wms + getMap, 200},
			{"key map", "GET", v2wms + getMap, 200},
			{"feature info", "GET", v2wms + usageGFI, 200},
			{"legend", "GET", v1wms + usageLegend, 200},
			{"bad tile", "GET", h.credURL() + usageBadTile, 400},
			{"unknown key", "GET", h.keyURL("hxpk-"+strings.Repeat("x", 43)) + tilePath, 403},
			{"malformed credential", "GET", h.proxy.URL + "/wmts/!!/??" + tilePath, 400},
			{"preflight", "OPTIONS", h.keyURL(key) + tilePath, 204},
			{"limited key", "GET", h.keyURL(limited) + tilePath, 200},
			{"over its limit", "GET", h.keyURL(limited) + tilePath, 429}, // a browser must read the 429 to back off
		} {
			hdr := map[string]string{"Origin": allowed}
			if tc.method == "OPTIONS" {
				hdr["Access-Control-Request-Method"] = "GET"
				hdr["Access-Control-Request-Headers"] = "x-requested-with"
			}
			resp, body := h.do(tc.method, tc.url, hdr)
			hd := resp.Header
			if resp.StatusCode != tc.status || hd.Get("Access-Control-Allow-Origin") != allowed || hd.Get("Access-Control-Allow-Credentials") != "true" ||
				!strings.Contains(strings.Join(hd.Values("Vary"), ","), "Origin") {
				t.Errorf("ALLOWED_ORIGINS=%q, %s: %d (want %d), ACAO %q, ACAC %q, Vary %q\n%.300s", origins, tc.name, resp.StatusCode, tc.status,
					hd.Get("Access-Control-Allow-Origin"), hd.Get("Access-Control-Allow-Credentials"), hd.Values("Vary"), body)
			}
			if tc.method == "OPTIONS" && hd.Get("Access-Control-Allow-Headers") != "x-requested-with" {
				t.Errorf("preflight: the SDK's headers are not allowed: %v", hd)
			}
		}
	}

	h := newHarness(t, nil)
	key := h.addKey(keys.Record{Org: "Trusted servers"})
	for _, u := range []string{h.credURL() + tilePath, h.keyURL(key) + tilePath, h.keyURL("hxpk-"+strings.Repeat("x", 43)) + tilePath, h.proxy.URL + "/wmts/!!/??" + tilePath} {
		resp, _ := h.get(u, map[string]string{"Origin": "https://evil.example"})
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s from a refused origin: %d with %s", u, resp.StatusCode, k)
			}
		}
	}
	off := newHarness(t, map[string]string{"CORS_HEADERS": "off"})
	resp, _ := off.get(off.credURL()+tilePath, map[string]string{"Origin": allowed})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Credentials") != "" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS_HEADERS=off: %d %v", resp.StatusCode, resp.Header)
	}
}

// In Chromium, a page on an allowed origin fetches capabilities and a tile
// with credentials: 'include' through a credential URL and through a /v2
// key, as an ArcGIS web app does for a trusted server; a page on an origin
// that is not allowed cannot read them.
func TestCredentialedFetchInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>web map</title>")
	})
	trusted, foreign := httptest.NewServer(page), httptest.NewServer(page)
	t.Cleanup(trusted.Close)
	t.Cleanup(foreign.Close)
	h := newHarness(t, map[string]string{"ALLOWED_ORIGINS": trusted.URL})
	key := h.addKey(keys.Record{Org: "Trusted servers"})
	urls := []string{
		h.credURL() + "/1.0.0/WMTSCapabilities.xml", h.credURL() + tilePath,
		h.keyURL(key) + "/1.0.0/WMTSCapabilities.xml", h.keyURL(key) + tilePath,
	}
	r, _ := corsCheck(t, root, chromium, []string{trusted.URL + "/", foreign.URL + "/"}, urls)
	for i, got := range r.Results[trusted.URL+"/"] {
		if !got.OK || got.Status != 200 || got.Bytes == 0 {
			t.Errorf("from the trusted page, %s: %d, %d bytes, %s", urls[i][len(h.proxy.URL):min(len(urls[i]), len(h.proxy.URL)+20)]+"…", got.Status, got.Bytes, got.Error)
		}
	}
	for _, got := range r.Results[foreign.URL+"/"] {
		if got.OK || got.Status != 0 {
			t.Errorf("a page on a foreign origin read an answer: %d, %d bytes", got.Status, got.Bytes)
		}
	}
	if n := len(r.Results[trusted.URL+"/"]) + len(r.Results[foreign.URL+"/"]); n != 2*len(urls) {
		t.Fatalf("%d fetches reported, want %d", n, 2*len(urls))
	}
}

// corsResults is what tools/cors-check.mjs saw: by page, each URL's fetch.
type corsResults struct {
	Error   string
	Results map[string][]struct {
		URL, Error string
		OK         bool
		Status     int
		Bytes      int
	}
}

// corsCheck has Chromium fetch urls with credentials: 'include' from
// each of pages, and returns what it saw and the driver's raw output.
func corsCheck(t *testing.T, root, chromium string, pages, urls []string) (corsResults, []byte) {
	t.Helper()
	out := runDriver(t, root, chromium, "cors-check.mjs", map[string]any{"pages": pages, "urls": urls})
	var r corsResults
	if err := json.Unmarshal(out, &r); err != nil || r.Error != "" {
		t.Fatalf("driver output %s: %v %s", out, err, r.Error)
	}
	return r, out
}
