package server

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/redact"
	"github.com/hexprox/hexprox/internal/testlog"
	"github.com/hexprox/hexprox/internal/token"
)

// The credential the fake accepts. The secret has characters that need
// care in URLs once base64-encoded.
const (
	clientID     = "hexprox-test-client"
	clientSecret = "S3cr3t/+=?&value"
	allowed      = "https://myorg.maps.arcgis.com"
)

type harness struct {
	t        *testing.T
	fake     *fakehexagon.Fake
	upstream *httptest.Server
	proxy    *httptest.Server
	logs     *testlog.Buffer
	client   *http.Client    // does not follow redirects
	seen     map[string]bool // every token value handed out, for leak checks
	extra    []string        // more secrets (other client secrets)
	apiKeys  []string        // in logs and error bodies never; in the key's own documents, yes
	seenMu   sync.Mutex
}

// noteSecret adds a string that must never reach logs or bodies.
func (h *harness) noteSecret(s string) {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	h.extra = append(h.extra, s)
}

// noteKey adds an API key: never in logs or error bodies, though its own
// capabilities and about page carry its URLs.
func (h *harness) noteKey(k string) {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	h.apiKeys = append(h.apiKeys, k)
}

func (h *harness) keysNoted() []string {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	return append([]string(nil), h.apiKeys...)
}

// newHarness starts a fake Hexagon and a proxy configured by env (on top
// of HEXAGON_URL pointing at the fake).
func newHarness(t *testing.T, env map[string]string) *harness {
	t.Helper()
	return newHarnessWith(t, env, nil)
}

// newHarnessWith is newHarness with a last say over the server's options
// (API keys, for one).
func newHarnessWith(t *testing.T, env map[string]string, opts func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, logs: &testlog.Buffer{}, seen: map[string]bool{}}
	h.fake = fakehexagon.New(fakehexagon.Options{})
	h.fake.AddClient(clientID, clientSecret)
	h.upstream = httptest.NewServer(h.fake)
	t.Cleanup(h.upstream.Close)

	vars := map[string]string{"HEXAGON_URL": h.upstream.URL}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: redact.ReplaceAttr}))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The token layers main wires, over the memory store.
	ep := &token.Endpoint{URL: h.upstream.URL + fakehexagon.TokenPath, Client: &http.Client{Timeout: cfg.TokenTimeout}}
	layers := token.Layered(ep, nil, token.SharedOptions{HashKey: cfg.TokenHashKey, Timeout: cfg.TokenStoreTimeout, Wait: cfg.TokenTimeout, Log: log})
	o := Options{Config: cfg, Tokens: layers, Context: ctx, Log: log, Version: "test", RequestLog: h.logs}
	if opts != nil {
		opts(&o)
	}
	srv := New(o)
	h.proxy = httptest.NewServer(srv)
	t.Cleanup(h.proxy.Close)
	h.client = &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(h.checkLogs)
	return h
}

// credURL is the proxy's WMTS URL for the test credential, with the
// standard alphabet a browser's btoa gives, percent-encoded where needed.
func (h *harness) credURL() string {
	return h.proxy.URL + "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
}

func (h *harness) do(method, url string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	h.noteToken()
	return resp, body
}

func (h *harness) get(url string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	return h.do(http.MethodGet, url, hdr)
}

// noteToken remembers the fake's current token so that leak checks can
// look for every token the test saw.
func (h *harness) noteToken() {
	if tok, _, ok := h.fake.CurrentToken(clientID); ok {
		h.seenMu.Lock()
		h.seen[tok] = true
		h.seenMu.Unlock()
	}
}

// secrets are strings that must never appear in logs or bodies (besides
// the redirect Location, which must carry the token).
func (h *harness) secrets() []string {
	s := []string{clientSecret, credential.Encode(clientSecret), clientID, credential.Encode(clientID)}
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	for tok := range h.seen {
		s = append(s, tok)
	}
	return append(s, h.extra...)
}

func (h *harness) checkLogs() {
	h.noteToken()
	logs := h.logs.String()
	for _, s := range append(h.secrets(), h.keysNoted()...) {
		if strings.Contains(logs, s) {
			h.t.Errorf("logs contain secret %q:\n%s", s, logs)
		}
	}
}

// assertNoSecrets fails if body carries a secret or token.
func (h *harness) assertNoSecrets(body []byte) {
	h.t.Helper()
	h.noteToken()
	for _, s := range h.secrets() {
		if s != credential.Encode(clientSecret) && s != credential.Encode(clientID) && bytes.Contains(body, []byte(s)) {
			h.t.Fatalf("body contains secret %q:\n%s", s, body)
		}
	}
}

type exceptionReport struct {
	XMLName   xml.Name `xml:"http://www.opengis.net/ows/1.1 ExceptionReport"`
	Exception struct {
		Code    string `xml:"exceptionCode,attr"`
		Locator string `xml:"locator,attr"`
		Text    string `xml:"ExceptionText"`
	} `xml:"Exception"`
}

// assertException checks an OGC ExceptionReport answer.
func (h *harness) assertException(resp *http.Response, body []byte, status int, code string) exceptionReport {
	h.t.Helper()
	var rep exceptionReport
	if resp.StatusCode != status {
		h.t.Fatalf("status %d, want %d; body:\n%s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") {
		h.t.Fatalf("content type %q for an exception", ct)
	}
	if err := xml.Unmarshal(body, &rep); err != nil {
		h.t.Fatalf("not an ExceptionReport: %v\n%s", err, body)
	}
	if code != "" && rep.Exception.Code != code {
		h.t.Fatalf("exceptionCode %q, want %q (%s)", rep.Exception.Code, code, rep.Exception.Text)
	}
	if rep.Exception.Text == "" {
		h.t.Fatal("exception without a message")
	}
	h.assertNoSecrets(body)
	for _, k := range h.keysNoted() {
		if bytes.Contains(body, []byte(k)) {
			h.t.Fatalf("an error body carries the API key:\n%s", body)
		}
	}
	return rep
}

const tilePath = "/1.0.0/HxGN_Imagery/default/WebMercator/5/10/12.jpg"

const kvpTile = "?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=5&TILEROW=10&TILECOL=12&FORMAT=image%2Fjpeg"
