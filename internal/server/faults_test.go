package server_test

// Faults: the upstream failing every way the documentation says it can,
// the client leaving, the store going away. Each case reports figures
// (status and latency of the failure, then of the recovery) and checks
// that no goroutine outlives it.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/usage"
)

// leakCheck fails the test if goroutines started during it are still
// running once its cleanups (servers, harness) have run. Call it first.
func leakCheck(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// timed sends one request and reports status, latency and body.
func (h *harness) timed(u string, hdr map[string]string) (int, time.Duration, []byte) {
	h.t.Helper()
	start := time.Now()
	resp, body := h.get(u, hdr)
	return resp.StatusCode, time.Since(start), body
}

func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("figure: "+format, args...)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

func TestFaults(t *testing.T) {
	browser := map[string]string{"Origin": allowed}

	t.Run("token endpoint down", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, nil)
		h.fake.Set(fakehexagon.Switches{TokenStatus: 503})
		status, took, body := h.timed(h.credURL()+tilePath, nil)
		h.assertException(&http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/xml"}}}, body, 502, "")
		h.fake.Set(fakehexagon.Switches{})
		status2, took2, _ := h.timed(h.credURL()+tilePath, nil)
		if status2 != 302 {
			t.Fatalf("after recovery: %d", status2)
		}
		figure(t, "token endpoint 503 → %d in %s; recovered → %d in %s", status, ms(took), status2, ms(took2))
	})

	t.Run("token endpoint slow", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, map[string]string{"TOKEN_TIMEOUT": "200ms"})
		h.fake.Set(fakehexagon.Switches{TokenDelay: 3 * time.Second})
		status, took, _ := h.timed(h.credURL()+tilePath, nil)
		if status != 504 || took > 2*time.Second {
			t.Fatalf("slow token endpoint: %d after %v, want 504 after about the 200ms timeout", status, took)
		}
		h.fake.Set(fakehexagon.Switches{})
		status2, took2, _ := h.timed(h.credURL()+tilePath, nil)
		if status2 != 302 {
			t.Fatalf("after recovery: %d", status2)
		}
		figure(t, "token endpoint 3s late, TOKEN_TIMEOUT 200ms → %d in %s; recovered → %d in %s", status, ms(took), status2, ms(took2))
	})

	t.Run("token endpoint garbage", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, nil)
		h.fake.Set(fakehexagon.Switches{TokenGarbage: true})
		resp, body := h.get(h.credURL()+tilePath, nil)
		h.assertException(resp, body, 502, "")
		h.fake.Set(fakehexagon.Switches{})
		if resp, _ := h.get(h.credURL()+tilePath, nil); resp.StatusCode != 302 {
			t.Fatalf("after recovery: %d", resp.StatusCode)
		}
		figure(t, "token endpoint HTML page → 502; recovered → 302")
	})

	t.Run("tiles slow", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, map[string]string{"UPSTREAM_TIMEOUT": "150ms"})
		h.get(h.credURL()+tilePath, nil) // warm the token
		h.fake.Set(fakehexagon.Switches{TileDelay: 3 * time.Second})
		status, took, body := h.timed(h.credURL()+tilePath, browser)
		if status != 504 {
			t.Fatalf("slow tile: %d\n%s", status, body)
		}
		status2, took2, _ := h.timed(h.credURL()+"/1.0.0/WMTSCapabilities.xml", nil)
		if status2 != 504 {
			t.Fatalf("slow capabilities: %d", status2)
		}
		figure(t, "tile 3s late, UPSTREAM_TIMEOUT 150ms → %d in %s; capabilities → %d in %s", status, ms(took), status2, ms(took2))
	})

	t.Run("upstream 5xx and unreachable", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, nil)
		h.fake.Set(fakehexagon.Switches{TileStatus: 500})
		resp, body := h.get(h.credURL()+tilePath, browser)
		h.assertException(resp, body, 502, "")
		if resp.Header.Get("Access-Control-Allow-Origin") != allowed {
			t.Fatal("a browser must be able to read the error")
		}
		resp, body = h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", nil)
		h.assertException(resp, body, 502, "")
		h.upstream.Close()
		status, took, _ := h.timed(h.credURL()+tilePath, browser)
		if status != 502 {
			t.Fatalf("unreachable upstream: %d", status)
		}
		figure(t, "upstream 500 → 502; upstream gone → %d in %s", status, ms(took))
	})

	t.Run("outside the grid upstream", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, nil)
		resp, body := h.get(h.credURL()+"/1.0.0/OtherLayer/default/WebMercator/5/1/2.jpg", browser)
		h.assertException(resp, body, 400, "")
	})

	t.Run("token revoked mid-life", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, map[string]string{"CAPABILITIES_TTL": "0"})
		resp, _ := h.get(h.credURL()+tilePath, nil)
		first := resp.Header.Get("Location")
		h.fake.Revoke(clientID)

		// A streamed tile notices the 401, refetches the token, retries once.
		status, took, body := h.timed(h.credURL()+tilePath, browser)
		if status != 200 || !bytes.Equal(body, h.fake.JPEG()) {
			t.Fatalf("streamed tile after revocation: %d", status)
		}
		if h.fake.Unauthorized.Load() != 1 || h.fake.TokenRequests.Load() != 2 {
			t.Fatalf("want one refused attempt and one new token; got %d refused, %d token requests", h.fake.Unauthorized.Load(), h.fake.TokenRequests.Load())
		}
		// Redirects hand out the new token from then on.
		resp, _ = h.get(h.credURL()+tilePath, nil)
		live, _, _ := h.fake.CurrentToken(clientID)
		if loc := resp.Header.Get("Location"); loc == first || !strings.Contains(loc, url.QueryEscape(live)) {
			t.Fatal("redirect still hands out the revoked token")
		}
		// Capabilities recover the same way.
		h.fake.Revoke(clientID)
		status2, took2, _ := h.timed(h.credURL(), nil)
		if status2 != 200 || h.fake.Unauthorized.Load() != 2 {
			t.Fatalf("capabilities after revocation: %d, %d refused", status2, h.fake.Unauthorized.Load())
		}
		figure(t, "revoked token: streamed tile recovered → %d in %s; capabilities → %d in %s; 1 retry each", status, ms(took), status2, ms(took2))
	})

	t.Run("rate limited without a retry storm", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, nil)
		h.get(h.credURL()+tilePath, nil) // warm the token
		h.fake.Set(fakehexagon.Switches{TileStatus: 429, RetryAfter: "7"})
		const n = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", h.credURL()+tilePath, nil)
				req.Header.Set("Origin", allowed)
				resp, err := h.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.Header.Get("Retry-After") != "7" {
					t.Error("Retry-After not passed through")
				}
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if statuses[429] != n || h.fake.WMTSRequests.Load() != n {
			t.Fatalf("%d client requests → statuses %v and %d upstream requests; want all 429 and exactly %d", n, statuses, h.fake.WMTSRequests.Load(), n)
		}
		figure(t, "upstream 429: %d requests → %d × 429 with Retry-After, %d upstream requests (no retries)", n, statuses[429], h.fake.WMTSRequests.Load())
	})

	t.Run("body cut halfway", func(t *testing.T) {
		leakCheck(t)
		h := newHarnessWith(t, nil, func(o *app.Options) { o.Usage = usage.Options{NoLoop: true} })
		counter := h.app.Usage
		h.get(h.credURL()+tilePath, nil) // Hexagon accepts the credential: it is counted from now on
		h.fake.Set(fakehexagon.Switches{TruncateTiles: true})
		req, _ := http.NewRequest("GET", h.credURL()+tilePath, nil)
		req.Header.Set("Origin", allowed)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatalf("cut body: failed before headers (%v)", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Fatalf("read %d of %d bytes without an error: a cut body passed off as whole", len(body), len(h.fake.JPEG()))
		}
		figure(t, "cut body: client got %d of %s bytes, then %v", len(body), resp.Header.Get("Content-Length"), err)
		// The request is logged all the same, as aborted at Hexagon's end,
		// and counted as an upstream failure, not a tile served.
		waitForLog(t, h, "response aborted: Hexagon's answer broke off")
		got := countsOf(counter)
		if got[usage.UpstreamFailed] != 1 || got[usage.TilesStreamed] != 0 || got[usage.BytesStreamed] != 0 {
			t.Fatalf("a stream Hexagon cut short counted as %v; want one upstream failure and no tile", got)
		}
	})

	t.Run("Hexagon goes quiet mid-body", func(t *testing.T) {
		leakCheck(t)
		h := newHarnessWith(t, map[string]string{"UPSTREAM_TIMEOUT": "200ms"}, func(o *app.Options) { o.Usage = usage.Options{NoLoop: true} })
		counter := h.app.Usage
		h.get(h.credURL()+tilePath, nil) // Hexagon accepts the credential: it is counted from now on
		h.fake.Set(fakehexagon.Switches{StallTiles: 10 * time.Second})
		req, _ := http.NewRequest("GET", h.credURL()+tilePath, nil)
		req.Header.Set("Origin", allowed)
		start := time.Now()
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("read %d bytes without an error: a stalled body passed off as whole", len(body))
		}
		figure(t, "Hexagon quiet mid-body, UPSTREAM_TIMEOUT=200ms: client got %d of %d bytes, then %v, after %s", len(body), len(h.fake.JPEG()), err, ms(time.Since(start)))
		// Hexagon's failure, logged and counted as such, not a tile served
		// that lasted until the client gave up.
		waitForLog(t, h, "response aborted: Hexagon's answer broke off")
		if !strings.Contains(h.logs.String(), `"status":502`) {
			t.Fatalf("the cut was not logged with the status it is counted as:\n%s", h.logs.String())
		}
		if got := countsOf(counter); got[usage.UpstreamFailed] != 1 || got[usage.TilesStreamed] != 0 {
			t.Fatalf("a stream Hexagon stalled counted as %v; want one upstream failure and no tile", got)
		}
	})

	t.Run("client leaves mid-body", func(t *testing.T) {
		leakCheck(t)
		h := newHarnessWith(t, nil, func(o *app.Options) { o.Usage = usage.Options{NoLoop: true} })
		counter := h.app.Usage
		h.get(h.credURL()+tilePath, nil) // Hexagon accepts the credential: it is counted from now on
		h.fake.Set(fakehexagon.Switches{StallTiles: 10 * time.Second})
		req, _ := http.NewRequest("GET", h.credURL()+tilePath, nil)
		req.Header.Set("Origin", allowed)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // unread: the connection closes
		// Logged as the client's doing, and counted as the tile it was,
		// with the bytes relayed before the client left.
		waitForLog(t, h, "response aborted: the client left")
		got := countsOf(counter)
		if got[usage.TilesStreamed] != 1 || got[usage.UpstreamFailed] != 0 ||
			got[usage.BytesStreamed] <= 0 || got[usage.BytesStreamed] >= int64(len(h.fake.JPEG())) {
			t.Fatalf("a stream the client left counted as %v; want one tile and fewer than %d bytes", got, len(h.fake.JPEG()))
		}
	})

	t.Run("client leaves mid-request", func(t *testing.T) {
		leakCheck(t)
		h := newHarness(t, nil)
		h.get(h.credURL()+tilePath, nil) // warm the token
		h.fake.Set(fakehexagon.Switches{TileDelay: 10 * time.Second})
		client := &http.Client{Timeout: 100 * time.Millisecond}
		req, _ := http.NewRequest("GET", h.credURL()+tilePath, nil)
		req.Header.Set("Origin", allowed)
		start := time.Now()
		if _, err := client.Do(req); err == nil {
			t.Fatal("expected the client to time out")
		}
		for h.fake.Cancelled.Load() == 0 {
			if time.Since(start) > 5*time.Second {
				t.Fatal("the upstream request was not cancelled when the client left")
			}
			time.Sleep(5 * time.Millisecond)
		}
		figure(t, "client left after 100ms → upstream request cancelled %s later", ms(time.Since(start)-100*time.Millisecond))

		// Leaving during a shared capabilities fetch: the request is logged
		// as the client's doing, and the fetch is not cancelled with it, so
		// the next request is served from the cache it fills.
		h.fake.Set(fakehexagon.Switches{TileDelay: 300 * time.Millisecond})
		req, _ = http.NewRequest("GET", h.credURL()+"/1.0.0/WMTSCapabilities.xml", nil)
		if _, err := client.Do(req); err == nil {
			t.Fatal("expected the client to time out")
		}
		for !strings.Contains(h.logs.String(), `"mode":"capabilities"`) {
			time.Sleep(5 * time.Millisecond)
		}
		if !strings.Contains(h.logs.String(), `"status":499`) || !strings.Contains(h.logs.String(), "client went away") {
			t.Fatalf("a request whose client left must be logged as 499:\n%s", h.logs.String())
		}
		time.Sleep(400 * time.Millisecond) // the fetch completes without the client
		h.fake.Set(fakehexagon.Switches{})
		resp, _ := h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", nil)
		if resp.StatusCode != 200 || h.fake.CapabilitiesRequests.Load() != 1 {
			t.Fatalf("after a client left mid-fetch: %d, %d upstream fetches (want the cached one)", resp.StatusCode, h.fake.CapabilitiesRequests.Load())
		}
		client.CloseIdleConnections()
	})
}

// waitForLog waits up to 5 s for text in the harness's log.
func waitForLog(t *testing.T, h *harness, text string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(h.logs.String(), text); {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q:\n%s", text, h.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countsOf sums what counter holds for the hours around now.
func countsOf(counter *usage.Counter) usage.Counts {
	var got usage.Counts
	for _, r := range counter.Snapshot(time.Now().Add(-time.Hour), time.Now().Add(time.Hour)) {
		got.Add(r.Counts)
	}
	return got
}
