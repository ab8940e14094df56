package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/upstream"
)

// recordingUpstream keeps the headers of the last tile request it sends,
// and adds headers to the answer that must not reach the client (and a
// Vary that must, beside the proxy's own).
type recordingUpstream struct {
	base http.RoundTripper
	mu   sync.Mutex
	sent http.Header
}

func (u *recordingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := u.base.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.RawQuery, ".jpg") {
		return resp, err
	}
	u.mu.Lock()
	u.sent = r.Header.Clone()
	u.mu.Unlock()
	resp.Header.Set("Set-Cookie", "upstream=1")
	resp.Header.Set("X-Upstream-Internal", "yes")
	resp.Header.Set("Vary", "Accept-Encoding")
	return resp, nil
}

func (u *recordingUpstream) lastSent() http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sent
}

// A streamed tile sends Hexagon only the client's content-negotiation
// and cache headers and the proxy's User-Agent, and passes back only
// whitelisted headers, Hexagon's Vary added to the proxy's own.
func TestStreamPassesOnlyWhitelistedHeaders(t *testing.T) {
	up := &recordingUpstream{base: http.DefaultTransport}
	h := newHarnessWith(t, nil, func(o *app.Options) { o.Upstream = up })
	resp, body := h.get(h.credURL()+tilePath, map[string]string{
		"Origin":          allowed,
		"Accept":          "image/*",
		"Accept-Language": "fr",
		"Cookie":          "session=abc",
		"Authorization":   "Bearer client-own",
		"X-Forwarded-For": "203.0.113.9",
		"Referer":         "https://myorg.maps.arcgis.com/apps/x",
	})
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	sent := up.lastSent()
	if sent == nil {
		t.Fatal("no tile request reached the upstream")
	}
	for k := range sent {
		switch k {
		case "Accept", "Accept-Language", "User-Agent", "Accept-Encoding":
		default:
			t.Errorf("sent Hexagon the client's %s: %q", k, sent.Get(k))
		}
	}
	if sent.Get("Accept") != "image/*" || sent.Get("Accept-Language") != "fr" || sent.Get("User-Agent") != "HexProx/test" {
		t.Errorf("sent Hexagon %v", sent)
	}
	if resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("X-Upstream-Internal") != "" {
		t.Errorf("passed on headers outside the whitelist: %v", resp.Header)
	}
	if v := strings.Join(resp.Header.Values("Vary"), ","); !strings.Contains(v, "Origin") || !strings.Contains(v, "Accept-Encoding") {
		t.Errorf("Vary %q: want the proxy's Origin and Hexagon's Accept-Encoding", v)
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("security headers missing: %v", resp.Header)
	}

	// A second tile: the shared Vary value of the first answer is intact.
	resp, _ = h.get(h.credURL()+tilePath, map[string]string{"Origin": allowed})
	if v := resp.Header.Values("Vary"); len(v) != 2 || v[0] != "Origin" {
		t.Errorf("second answer's Vary %q", v)
	}
}

// Hexagon's error answers to streamed tiles (a tile outside its coverage,
// a rate limit) are read to their end, so that a run of them reuses one
// connection instead of opening one each.
func TestStreamErrorAnswersKeepTheirConnection(t *testing.T) {
	var dials atomic.Int64
	up := upstream.NewHTTPTransport(0)
	dial := up.DialContext
	up.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	h := newHarnessWith(t, nil, func(o *app.Options) { o.Upstream = up })
	h.fake.Set(fakehexagon.Switches{TileStatus: http.StatusNotFound})
	for range 10 {
		resp, body := h.get(h.credURL()+tilePath, map[string]string{"Origin": allowed})
		h.assertException(resp, body, http.StatusNotFound, "")
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("10 upstream 404s took %d connections, want 1", n)
	}
}

// informational answers with an informational status and an image's
// media type, as if no final status followed: the relay must not pass it
// on as the answer.
type informational struct{ status int }

func (i informational) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: i.status, Header: http.Header{"Content-Type": {"image/jpeg"}}, Body: http.NoBody, Request: r}, nil
}

func TestStreamRefusesAnInformationalAnswer(t *testing.T) {
	h := newHarnessWith(t, nil, func(o *app.Options) { o.Upstream = informational{http.StatusSwitchingProtocols} })
	resp, body := h.get(h.credURL()+tilePath, map[string]string{"Origin": allowed})
	h.assertException(resp, body, http.StatusBadGateway, "")
}

// hugeTiles answers every tile with an endless image, as fast as it is
// read: what a huge WMS map is to a client that stops reading.
type hugeTiles struct{ base http.RoundTripper }

func (h hugeTiles) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.RawQuery, ".jpg") {
		return resp, err
	}
	resp.Body.Close()
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	resp.Body = io.NopCloser(zeros{})
	return resp, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A client that stops reading a stream is let go once a write has waited
// UPSTREAM_TIMEOUT: it does not hold its goroutine and buffers for ever.
// A slow but steady reader is not cut (each write gets the whole wait).
func TestStreamLetsGoOfAClientThatStopsReading(t *testing.T) {
	h := newHarnessWith(t, map[string]string{"TILE_MODE": "proxy", "UPSTREAM_TIMEOUT": "300ms"}, func(o *app.Options) {
		o.Upstream = hugeTiles{base: http.DefaultTransport}
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	u, _ := url.Parse(h.credURL() + tilePath)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host)
	// Read the headers and a little, then stop reading.
	buf := make([]byte, 4096)
	if _, err := io.ReadAtLeast(conn, buf, 100); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitForLines(t, h, `"err":"response aborted: the client left"`, 1)
	if took := time.Since(start); took > 4*time.Second {
		t.Fatalf("the stalled client was let go after %v", took)
	}
	figure(t, "a client that stops reading a stream, UPSTREAM_TIMEOUT 300ms → let go after %s", ms(time.Since(start)))
}
