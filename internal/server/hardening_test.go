package server_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
)

// A standard-base64 id or secret with an unencoded '/' (the btoa mistake
// the README warns of) splits the path. It must be answered 400 with
// advice, never sent to Hexagon, and no piece of the secret may be logged.
func TestSlashInStandardBase64IsExplainedAndNotLogged(t *testing.T) {
	h := newHarness(t, nil)
	const secret = "a?b>c?d~e"
	h.fake.AddClient(clientID, secret)
	stdID, stdSecret := base64.StdEncoding.EncodeToString([]byte(clientID)), base64.StdEncoding.EncodeToString([]byte(secret))
	if !strings.Contains(stdSecret, "/") {
		t.Fatalf("test secret must encode with a '/': %s", stdSecret)
	}
	before, after, _ := strings.Cut(stdSecret, "/")
	for _, u := range []string{
		h.proxy.URL + "/wmts/" + stdID + "/" + stdSecret + "/1.0.0/WMTSCapabilities.xml",
		h.proxy.URL + "/wmts/" + stdID + "/" + stdSecret + tilePath,
		h.proxy.URL + "/v1/wmts/oldkey/" + stdID + "/" + stdSecret + "/1.0.0/WMTSCapabilities.xml",
	} {
		resp, body := h.get(u, nil)
		rep := h.assertException(resp, body, http.StatusBadRequest, "")
		if !strings.Contains(rep.Exception.Text, "URL-safe") || !strings.Contains(rep.Exception.Text, "%2F") {
			t.Fatalf("the answer should say how to fix the URL: %q", rep.Exception.Text)
		}
	}
	resp, body := h.get(h.proxy.URL+"/wms/"+stdID+"/"+stdSecret+"?SERVICE=WMS&REQUEST=GetCapabilities", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "URL-safe") {
		t.Fatalf("WMS: %d %s", resp.StatusCode, body)
	}
	if n := h.fake.TokenRequests.Load(); n != 0 {
		t.Fatalf("%d token requests for a split credential", n)
	}
	logs := h.logs.String()
	for _, piece := range []string{stdSecret, after, before + "/"} {
		if strings.Contains(logs, piece) {
			t.Fatalf("logs hold part of the secret's encoding %q:\n%s", piece, logs)
		}
	}
}

// A path or query the client sends is logged only in part: a 60 KB query
// made a 60 KB log line.
func TestLogLinesAreCapped(t *testing.T) {
	h := newHarness(t, nil)
	h.get(h.credURL()+tilePath+"?X="+strings.Repeat("A", 60000), nil)
	h.get(h.credURL()+"/1.0.0/"+strings.Repeat("abc/", 2000)+"x.jpg", nil)
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if len(line) > 2048 {
			t.Fatalf("a log line of %d bytes: %.300s…", len(line), line)
		}
	}
}

// Once Hexagon refuses a credential (its secret was rotated), its cached
// capabilities document is no longer served.
func TestCachedCapabilitiesStopOnceRefused(t *testing.T) {
	h := newHarness(t, nil)
	caps := h.credURL() + "/1.0.0/WMTSCapabilities.xml"
	if resp, _ := h.get(caps, nil); resp.StatusCode != 200 {
		t.Fatalf("capabilities: %d", resp.StatusCode)
	}
	// The secret is rotated in Hexagon, which revokes its tokens.
	h.fake.AddClient(clientID, "rotated")
	h.fake.Revoke(clientID)
	// A browser's tile meets the revoked token, and the retry learns that
	// the credential is refused.
	resp, body := h.get(h.credURL()+tilePath, map[string]string{"Origin": allowed})
	h.assertException(resp, body, http.StatusForbidden, "")
	resp, body = h.get(caps, nil)
	h.assertException(resp, body, http.StatusForbidden, "")
	if n := h.fake.CapabilitiesRequests.Load(); n != 1 {
		t.Fatalf("%d capabilities fetches", n)
	}
}

// What Hexagon answers is relayed to a browser only when it is what was
// asked for: never a redirect without a Location, never a page of
// Hexagon's (or a login portal's) choosing under the proxy's origin, and
// never sniffed.
func TestStreamedAnswersAreCheckedAndNeverSniffed(t *testing.T) {
	h := newHarness(t, nil)
	browser := map[string]string{"Origin": allowed}
	resp, body := h.get(h.credURL()+tilePath, browser)
	if resp.StatusCode != 200 || resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("a streamed tile: %d %v", resp.StatusCode, resp.Header)
	}
	h.fake.Update(func(s *fakehexagon.Switches) {
		s.TileStatus, s.TileLocation = http.StatusFound, "https://login.example/"
	})
	resp, body = h.get(h.credURL()+tilePath, browser)
	rep := h.assertException(resp, body, http.StatusBadGateway, "")
	if resp.Header.Get("Location") != "" || !strings.Contains(rep.Exception.Text, "redirect") {
		t.Fatalf("an upstream redirect must be a clear 502: %v %q", resp.Header, rep.Exception.Text)
	}
	h.fake.Update(func(s *fakehexagon.Switches) {
		s.TileStatus, s.TileLocation, s.TileContentType = 0, "", "text/html; charset=utf-8"
	})
	resp, body = h.get(h.credURL()+tilePath, browser)
	rep = h.assertException(resp, body, http.StatusBadGateway, "")
	if !strings.Contains(rep.Exception.Text, "text/html") {
		t.Fatalf("an HTML tile must be refused, saying why: %q", rep.Exception.Text)
	}
	gm := h.proxy.URL + "/wms/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret) +
		"?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	resp, body = h.get(gm, browser)
	if resp.StatusCode != http.StatusBadGateway || bytes.Contains(body, []byte("<script>")) {
		t.Fatalf("an HTML map must be refused: %d %s", resp.StatusCode, body)
	}
	// A WMS exception is what WMS clients parse: it is relayed.
	h.fake.Update(func(s *fakehexagon.Switches) { s.TileContentType = "" })
	resp, body = h.get(strings.Replace(gm, "LAYERS=HxGN_Imagery", "LAYERS=Unknown", 1), browser)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("an upstream WMS exception: %d %s", resp.StatusCode, body)
	}
}
