package main

// These tests check the handler against what the Functions host sends in
// proxying mode (host.json customHandler.enableProxyingHttpRequest), the
// mode Flex Consumption hosts use. docs/functions-host.md gives the host's
// source for every rule the helpers below model.

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
)

// TestHostJSONProxiesWithForwardingFallback: Flex hosts proxy; hosts
// without the proxying code (Core Tools, the in-proc host of the other
// plans) ignore that setting and must still forward, not send JSON
// invocation payloads.
func TestHostJSONProxiesWithForwardingFallback(t *testing.T) {
	var host struct {
		CustomHandler struct {
			EnableProxyingHttpRequest   *bool
			EnableForwardingHttpRequest *bool
		}
	}
	readJSON(t, "host.json", &host)
	if p := host.CustomHandler.EnableProxyingHttpRequest; p == nil || !*p {
		t.Error("host.json: customHandler.enableProxyingHttpRequest must be true (streams responses, keeps the query as sent)")
	}
	if f := host.CustomHandler.EnableForwardingHttpRequest; f == nil || !*f {
		t.Error("host.json: customHandler.enableForwardingHttpRequest must stay true for hosts that do not proxy")
	}
}

// flexHost is what the proxying Functions host knows of a client's
// request: the address its connection came from (the host's peer), and
// the host name and scheme the client used (Request.Host and
// Request.Scheme after the host's App Service header fix-up).
type flexHost struct {
	port   int    // the handler's FUNCTIONS_CUSTOMHANDLER_PORT
	peer   string // Connection.RemoteIpAddress as the host sees it
	host   string // the public host name
	scheme string
}

// send forwards a client's request the way the host's YARP forwarder
// does: target is the path and query exactly as the client wrote them.
//   - path: Kestrel decodes it except %2F; YARP re-encodes every byte
//     that is not a path character, '%' included (so %2F becomes %252F);
//   - query: the raw query, unchanged;
//   - headers: the client's, minus Host (the destination's is used) and
//     hop-by-hop ones; X-Forwarded-For, -Proto and -Host are set, not
//     appended, X-Forwarded-Prefix and Forwarded removed; the host adds
//     its invocation headers.
func (fh flexHost) send(t *testing.T, method, target string, hdr http.Header) *http.Response {
	t.Helper()
	rawPath, rawQuery, _ := strings.Cut(target, "?")
	u := "http://127.0.0.1:" + strconv.Itoa(fh.port) + yarpEncodePath(kestrelPath(rawPath))
	if rawQuery != "" {
		u += "?" + rawQuery
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Te", "Proxy-Connection", "Proxy-Authorization":
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	req.Header.Del("Forwarded")
	req.Header.Del("X-Forwarded-Prefix")
	req.Header.Set("X-Forwarded-For", fh.peer)
	req.Header.Set("X-Forwarded-Proto", fh.scheme)
	req.Header.Set("X-Forwarded-Host", fh.host)
	req.Header.Set("X-Ms-Invocation-Id", "7c5a6f1e-0000-4000-8000-000000000002")
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1040.0.0")
	req.Header.Set("X-Azure-Functions-InvocationId", "7c5a6f1e-0000-4000-8000-000000000002")
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableCompression: true},
		Timeout:       10 * time.Second,
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// kestrelPath is HttpRequest.Path as Kestrel gives it for a raw request
// path: percent-decoded, except that %2F stays as written.
func kestrelPath(raw string) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '%' && i+2 < len(raw) {
			if v, err := strconv.ParseUint(raw[i+1:i+3], 16, 8); err == nil && v != '/' {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

// yarpEncodePath is YARP's RequestUtilities.EncodePath: every byte that is
// not an RFC 3986 path character (unreserved, sub-delims, ':', '@', '/')
// is percent-encoded, '%' included.
func yarpEncodePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
	}
	return b.String()
}

func TestProxyModelMatchesHostSource(t *testing.T) {
	// YARP's own test: "/path/%2F%20" as a PathString goes out as
	// "/path/%252F%2520" (RequestUtilitiesTests.MakeDestinationAddress).
	if got := yarpEncodePath("/path/%2F%20"); got != "/path/%252F%2520" {
		t.Fatalf("yarpEncodePath: %q", got)
	}
	if got := yarpEncodePath(kestrelPath("/wmts/YT4%2FfnNl%2BY3J%3D/x%20y")); got != "/wmts/YT4%252FfnNl+Y3J=/x%20y" {
		t.Fatalf("client path through the host: %q", got)
	}
}

// pathSegment is how a browser's encodeURIComponent writes standard
// base64 into a path: '/', '+' and '=' percent-encoded.
func pathSegment(v string) string {
	return strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(base64.StdEncoding.EncodeToString([]byte(v)))
}

func TestHandlerUnderProxyingHost(t *testing.T) {
	fake := fakehexagon.New(fakehexagon.Options{})
	// Standard base64: the id's has a '/', the secret's a '+' and '='.
	const id, secret = "proxy-client~>?", "proxy/secret+=~>?"
	fake.AddClient(id, secret)
	upstream := httptest.NewServer(fake)
	defer upstream.Close()
	idSeg, secretSeg := pathSegment(id), pathSegment(secret)
	if !strings.Contains(idSeg, "%2F") || !strings.Contains(secretSeg, "%2B") || !strings.Contains(secretSeg, "%3D") {
		t.Fatalf("test credential does not exercise %%2F, %%2B and %%3D: %s/%s", idSeg, secretSeg)
	}

	// TRUSTED_HOPS is left to auto, as the README tells Functions users.
	h := startHandler(t, "HEXAGON_URL="+upstream.URL, "GUESS_LIMIT=2")
	port, output := h.port, h.output
	fh := flexHost{port: port, peer: "203.0.113.7", host: "maps.example.org", scheme: "https"}

	credPath := "/wmts/" + idSeg + "/" + secretSeg
	canonical := "/wmts/" + credential.Encode(id) + "/" + credential.Encode(secret)

	t.Run("capabilities from X-Forwarded-Host and -Proto", func(t *testing.T) {
		resp := fh.send(t, "GET", credPath+"/1.0.0/WMTSCapabilities.xml", nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := `template="https://maps.example.org` + canonical + `/1.0.0/HxGN_Imagery/default/`
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("capabilities: %d, want %s in\n%.1500s", resp.StatusCode, want, body)
		}
		if strings.Contains(string(body), "127.0.0.1") {
			t.Fatal("capabilities name the host's destination address")
		}
	})

	t.Run("KVP redirect passes through with the query as sent", func(t *testing.T) {
		kvp := "SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=3&TILEROW=2&TILECOL=5&FORMAT=image%2Fpng"
		resp := fh.send(t, "GET", credPath+"?"+kvp, nil)
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), upstream.URL+"/streaming/wmts?") {
			t.Fatalf("KVP tile: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		sent, _ := url.ParseQuery(kvp)
		for _, k := range []string{"LAYER", "TILEMATRIXSET", "TILEMATRIX", "TILEROW", "TILECOL", "FORMAT"} {
			if got := loc.Query().Get(k); got != sent.Get(k) {
				t.Errorf("%s reached Hexagon as %q, sent %q", k, got, sent.Get(k))
			}
		}
	})

	tile := credPath + "/1.0.0/HxGN_Imagery/default/WebMercator/3/2/5.jpg"
	browser := http.Header{"Origin": {"https://org.maps.arcgis.com"}}

	t.Run("browser tile", func(t *testing.T) {
		resp := fh.send(t, "GET", tile, browser)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != string(fake.JPEG()) || resp.Header.Get("Access-Control-Allow-Origin") != "https://org.maps.arcgis.com" {
			t.Fatalf("tile: %d %v", resp.StatusCode, resp.Header)
		}
	})

	t.Run("a stalled tile streams its first bytes", func(t *testing.T) {
		const stall = 3 * time.Second
		fake.Set(fakehexagon.Switches{StallTiles: stall})
		defer fake.Set(fakehexagon.Switches{})
		start := time.Now()
		resp := fh.send(t, "GET", tile, browser)
		defer resp.Body.Close()
		half := len(fake.JPEG()) / 2
		buf := make([]byte, half)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); resp.StatusCode != 200 || waited > stall/2 {
			t.Fatalf("first half after %v (upstream stalls %v), status %d: not streamed", waited, stall, resp.StatusCode)
		}
		rest, _ := io.ReadAll(resp.Body)
		if string(buf)+string(rest) != string(fake.JPEG()) {
			t.Fatal("streamed tile differs from the upstream's")
		}
	})

	t.Run("HEAD, plain OPTIONS and health", func(t *testing.T) {
		// A desktop's HEAD is redirected as its GET is; an OPTIONS that is
		// no preflight is answered, empty.
		for m, want := range map[string]int{"HEAD": http.StatusFound, "OPTIONS": http.StatusNoContent} {
			resp := fh.send(t, m, tile, nil)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("%s: %d, want %d", m, resp.StatusCode, want)
			}
		}
		resp := fh.send(t, "GET", "/healthz", nil)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
	})

	t.Run("guess limit keys on X-Forwarded-For", func(t *testing.T) {
		guesser := fh
		guesser.peer = "198.51.100.9"
		status := func(who flexHost, n int) int {
			bad := "/wmts/" + pathSegment("guess-"+strconv.Itoa(n)) + "/" + pathSegment("wrong/secret+"+strconv.Itoa(n)) + "/1.0.0/WMTSCapabilities.xml"
			// A client's own X-Forwarded-For is replaced by the host.
			resp := who.send(t, "GET", bad, http.Header{"X-Forwarded-For": {"192.0.2." + strconv.Itoa(n)}})
			resp.Body.Close()
			return resp.StatusCode
		}
		var codes []int
		for n := range 3 {
			codes = append(codes, status(guesser, n))
		}
		if codes[0] == http.StatusTooManyRequests || codes[2] != http.StatusTooManyRequests {
			t.Fatalf("GUESS_LIMIT=2 from one address: %v, want the third answered 429", codes)
		}
		// Every request reaches the handler from the host's loopback
		// connection: another client must not share the guesser's limit.
		if c := status(fh, 3); c == http.StatusTooManyRequests {
			t.Fatalf("another client's first guess: %d; the limit keyed on the loopback peer", c)
		}
	})

	// Nothing of the credential in the logs, in any spelling: the client's,
	// the canonical one, or the pieces of its standard base64 around the
	// characters the host re-encodes.
	secrets := []string{id, secret, credential.Encode(id), credential.Encode(secret), idSeg, secretSeg}
	for _, v := range []string{id, secret} {
		for _, piece := range strings.FieldsFunc(base64.StdEncoding.EncodeToString([]byte(v)), func(r rune) bool { return strings.ContainsRune("/+=", r) }) {
			if len(piece) >= 8 {
				secrets = append(secrets, piece)
			}
		}
	}
	for _, s := range secrets {
		if strings.Contains(output.String(), s) {
			t.Fatalf("logs contain %q", s)
		}
	}
}
