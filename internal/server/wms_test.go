package server_test

import (
	"bytes"
	"encoding/xml"
	"flag"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
)

var update = flag.Bool("update", false, "rewrite golden files")

func (h *harness) wmsURL() string {
	return h.proxy.URL + "/wms/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
}

const getMap = "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=-20037508,-20037508,20037508,20037508&WIDTH=300&HEIGHT=200&FORMAT=image/png"

func TestWMSCapabilitiesRewrite(t *testing.T) {
	h := newHarness(t, map[string]string{"PUBLIC_BASE_URL": "https://proxy.example"})
	h.fake.Set(fakehexagon.Switches{TokenInCapabilities: true, CapabilitiesBase: "request"})
	base := "https://proxy.example/wms/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	for _, tc := range []struct{ query, golden, contentType, root string }{
		{"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", "wms130-rewritten.xml", "text/xml", "WMS_Capabilities"},
		{"/?service=wms&request=getcapabilities&version=1.1.1", "wms111-rewritten.xml", "application/vnd.ogc.wms_xml", "WMT_MS_Capabilities"},
	} {
		resp, body := h.get(h.wmsURL()+tc.query, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) {
			t.Fatalf("%s: %d %s\n%s", tc.query, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		h.assertNoSecrets(body)
		if bytes.Contains(body, []byte("access_token")) || bytes.Contains(body, []byte(h.upstream.URL)) {
			t.Fatalf("%s: upstream URL or token survived", tc.query)
		}
		hrefs := regexp.MustCompile(`xlink:href="([^"]*)"`).FindAllStringSubmatch(string(body), -1)
		if len(hrefs) < 5 {
			t.Fatalf("%s: only %d links", tc.query, len(hrefs))
		}
		for _, m := range hrefs {
			if !strings.HasPrefix(m[1], base+"?") {
				t.Errorf("%s: link %q does not lead back to the proxy", tc.query, m[1])
			}
		}
		var root struct{ XMLName xml.Name }
		d := xml.NewDecoder(bytes.NewReader(body))
		d.Strict = false
		if err := d.Decode(&root); err != nil || root.XMLName.Local != tc.root {
			t.Fatalf("%s: root %v %v", tc.query, root.XMLName, err)
		}
		golden := "testdata/" + tc.golden
		if *update {
			os.WriteFile(golden, body, 0o644)
		}
		if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(body, want) {
			t.Fatalf("%s differs from %s (run with -update after checking): %v", tc.query, golden, err)
		}
	}
	// The bare URL is the default version's capabilities; each version is
	// fetched once and then served from the cache.
	h.get(h.wmsURL(), nil)
	h.get(h.wmsURL()+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", nil)
	if n := h.fake.CapabilitiesRequests.Load(); n != 3 {
		t.Fatalf("%d upstream capabilities fetches, want 3 (1.3.0, 1.1.1, default)", n)
	}
}

// drawMap acts as a WMS client: it reads the capabilities through the
// proxy, takes the GetMap address they advertise, and draws a map there,
// following redirects as clients do.
func drawMap(t *testing.T, h *harness, hdr map[string]string) image.Image {
	t.Helper()
	_, body := h.get(h.wmsURL()+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", hdr)
	var caps struct {
		GetMap struct {
			OnlineResource struct {
				Href string `xml:"href,attr"`
			}
		} `xml:"Capability>Request>GetMap>DCPType>HTTP>Get"`
	}
	if err := xml.Unmarshal(body, &caps); err != nil || caps.GetMap.OnlineResource.Href == "" {
		t.Fatalf("no GetMap address in capabilities: %v\n%.600s", err, body)
	}
	u := caps.GetMap.OnlineResource.Href + strings.TrimPrefix(getMap, "?")
	req, _ := http.NewRequest("GET", u, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 10 * time.Second} // follows redirects
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	img, format, err := image.Decode(resp.Body)
	if err != nil || format != "png" {
		t.Fatalf("GetMap through %s: %d, not a PNG: %v", u, resp.StatusCode, err)
	}
	return img
}

func TestWMSClientDrawsAMapInBothModes(t *testing.T) {
	h := newHarness(t, nil)
	img := drawMap(t, h, nil)
	if b := img.Bounds(); b.Dx() != 300 || b.Dy() != 200 {
		t.Fatalf("redirect mode map is %v", b)
	}
	if h.fake.MapRequests.Load() != 1 {
		t.Fatal("the map did not come from Hexagon")
	}
	img = drawMap(t, h, map[string]string{"Origin": allowed})
	if b := img.Bounds(); b.Dx() != 300 || b.Dy() != 200 {
		t.Fatalf("stream mode map is %v", b)
	}
}

func TestWMSDelivery(t *testing.T) {
	h := newHarness(t, nil)
	// GetMap, desktop: a redirect carrying the live token and only known parameters.
	resp, _ := h.get(h.wmsURL()+getMap+"&access_token=client-supplied&EVIL=http://evil.example/", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GetMap redirect: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	live, _, _ := h.fake.CurrentToken(clientID)
	q := loc.Query()
	if loc.Path != fakehexagon.WMSPath || q.Get("access_token") != live || len(q["access_token"]) != 1 || q.Get("EVIL") != "" || q.Get("WIDTH") != "300" {
		t.Fatalf("Location %s", loc)
	}
	// GetMap, allowed browser: streamed with CORS.
	resp, body := h.get(h.wmsURL()+getMap, map[string]string{"Origin": allowed})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Access-Control-Allow-Origin") != allowed || len(body) == 0 {
		t.Fatalf("GetMap stream: %d %v", resp.StatusCode, resp.Header)
	}
	// GetFeatureInfo and GetLegendGraphic are streamed even to desktop clients.
	gfi := "?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=HxGN_Imagery&QUERY_LAYERS=HxGN_Imagery&SRS=EPSG:3857&BBOX=0,0,100,100&WIDTH=10&HEIGHT=10&FORMAT=image/png&INFO_FORMAT=text/plain&X=5&Y=5"
	resp, body = h.get(h.wmsURL()+gfi, nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("acquisition_date")) {
		t.Fatalf("GetFeatureInfo: %d %s", resp.StatusCode, body)
	}
	resp, body = h.get(h.wmsURL()+"?SERVICE=WMS&REQUEST=GetLegendGraphic&VERSION=1.3.0&LAYER=HxGN_Imagery&FORMAT=image/png", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GetLegendGraphic: %d %s", resp.StatusCode, body)
	}
	// HEAD works wherever GET does.
	resp, body = h.do(http.MethodHead, h.wmsURL()+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", nil)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") == "" {
		t.Fatalf("HEAD capabilities: %d, %d bytes, length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
	if resp, _ = h.do(http.MethodHead, h.wmsURL()+getMap, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("HEAD GetMap: %d", resp.StatusCode)
	}
	// Repeated parameters are joined with commas, as the Functions host does.
	resp, _ = h.get(h.wmsURL()+getMap+"&LAYERS=Second", nil)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("LAYERS") != "HxGN_Imagery,Second" {
		t.Fatalf("repeated LAYERS: %d %s", resp.StatusCode, loc)
	}
}

type serviceExceptionReport struct {
	XMLName   xml.Name
	Version   string `xml:"version,attr"`
	Exception struct {
		Code    string `xml:"code,attr"`
		Locator string `xml:"locator,attr"`
		Text    string `xml:",chardata"`
	} `xml:"ServiceException"`
}

func (h *harness) assertServiceException(resp *http.Response, body []byte, status int, version, code string) serviceExceptionReport {
	h.t.Helper()
	if resp.StatusCode != status {
		h.t.Fatalf("status %d, want %d:\n%s", resp.StatusCode, status, body)
	}
	wantCT := map[string]string{"1.1.1": "application/vnd.ogc.se_xml", "1.3.0": "text/xml"}[version]
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), wantCT) {
		h.t.Fatalf("content type %q, want %s", resp.Header.Get("Content-Type"), wantCT)
	}
	var rep serviceExceptionReport
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false // the 1.1.1 report has a DOCTYPE
	if err := d.Decode(&rep); err != nil || rep.XMLName.Local != "ServiceExceptionReport" || rep.Version != version {
		h.t.Fatalf("not a %s ServiceExceptionReport (%v):\n%s", version, err, body)
	}
	if rep.Exception.Code != code || strings.TrimSpace(rep.Exception.Text) == "" {
		h.t.Fatalf("exception %+v, want code %q", rep.Exception, code)
	}
	h.assertNoSecrets(body)
	return rep
}

func TestWMSExceptions(t *testing.T) {
	h := newHarness(t, nil)
	big := strings.Replace(getMap, "WIDTH=300", "WIDTH=4000", 1)
	resp, body := h.get(h.wmsURL()+big, nil)
	rep := h.assertServiceException(resp, body, 400, "1.3.0", "InvalidParameterValue")
	if rep.Exception.Locator != "WIDTH" || !strings.Contains(rep.Exception.Text, "3500") {
		t.Fatalf("%+v", rep.Exception)
	}
	resp, body = h.get(h.wmsURL()+strings.Replace(big, "1.3.0", "1.1.1", 1), nil)
	h.assertServiceException(resp, body, 400, "1.1.1", "InvalidParameterValue")
	if !bytes.Contains(body, []byte("<!DOCTYPE ServiceExceptionReport")) {
		t.Fatal("1.1.1 exceptions carry their DOCTYPE")
	}
	resp, body = h.get(h.wmsURL()+strings.Replace(getMap, "FORMAT=image/png", "FORMAT=", 1), nil)
	h.assertServiceException(resp, body, 400, "1.3.0", "MissingParameterValue")
	resp, body = h.get(h.wmsURL()+"?SERVICE=WMS&REQUEST=GetMap&VERSION=9.9.9", nil)
	h.assertServiceException(resp, body, 400, "1.3.0", "VersionNegotiationFailed")
	resp, body = h.get(h.wmsURL()+"/extra/path", nil)
	h.assertServiceException(resp, body, 404, "1.3.0", "")
	if n := h.fake.WMSRequests.Load() + h.fake.TokenRequests.Load(); n != 0 {
		t.Fatalf("bad WMS requests reached Hexagon %d times", n)
	}

	bad := h.proxy.URL + "/wms/" + credential.Encode(clientID) + "/" + credential.Encode("nope") + getMap
	resp, body = h.get(bad, nil)
	h.assertServiceException(resp, body, 403, "1.3.0", "")

	h.fake.Set(fakehexagon.Switches{TileStatus: 429, RetryAfter: "12"})
	resp, body = h.get(h.wmsURL()+strings.Replace(getMap, "1.3.0", "1.1.1", 1), map[string]string{"Origin": allowed})
	h.assertServiceException(resp, body, 429, "1.1.1", "")
	if resp.Header.Get("Retry-After") != "12" {
		t.Fatal("Retry-After not passed through")
	}
	h.fake.Set(fakehexagon.Switches{TileStatus: 503})
	resp, body = h.get(h.wmsURL()+"?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", nil)
	h.assertServiceException(resp, body, 502, "1.3.0", "")

	slow := newHarness(t, map[string]string{"UPSTREAM_TIMEOUT": "150ms"})
	slow.fake.Set(fakehexagon.Switches{TileDelay: 2 * time.Second})
	resp, body = slow.get(slow.wmsURL()+getMap, map[string]string{"Origin": allowed})
	slow.assertServiceException(resp, body, 504, "1.3.0", "")
}
