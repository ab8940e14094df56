// Command soak drives a built HexProx handler with a bounded, mixed load on
// loopback and reports what it saw: requests served, errors, latency
// percentiles, peak RSS of the proxy process and its goroutines before and
// after. A fake Hexagon runs in this process with tokens that expire every
// few seconds, so the run crosses many refreshes.
//
//	go build -o handler . && go run ./bench/soak -handler ./handler -duration 60s -c 256
//
// It only ever talks to 127.0.0.1 and stops by itself.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hexprox/hexprox/bench/internal/procstat"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
)

type kind int

const (
	redirect kind = iota
	stream
	capabilities
	kinds
)

var kindNames = [kinds]string{"redirect", "stream", "capabilities"}

type result struct {
	lat    [kinds][]time.Duration
	errors [kinds]int
	sample []string
}

func main() {
	handler := flag.String("handler", "./handler", "the built HexProx handler")
	duration := flag.Duration("duration", 60*time.Second, "how long to drive load")
	conns := flag.Int("c", 256, "concurrent connections")
	lifetime := flag.Duration("lifetime", 4*time.Second, "fake Hexagon token lifetime")
	mix := flag.String("mix", "50,35,15", "percent redirect,stream,capabilities")
	out := flag.String("json", "", "also write the figures as JSON to this file")
	settle := flag.Duration("settle", 2*time.Second, "wait this long after the load before the 'after' readings (past 90s, the proxy's idle upstream connections have closed)")
	flag.Parse()
	if err := run(*handler, *duration, *conns, *lifetime, *mix, *out, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(handler string, duration time.Duration, conns int, lifetime time.Duration, mixText, out string, settle time.Duration) error {
	var weights [kinds]int
	for i, p := range strings.Split(mixText, ",") {
		if i < int(kinds) {
			weights[i], _ = strconv.Atoi(p)
		}
	}
	fake := fakehexagon.New(fakehexagon.Options{Lifetime: lifetime})
	const id, secret = "soak-client", "soak/secret+="
	fake.AddClient(id, secret)
	upstream := httptest.NewServer(fake)
	defer upstream.Close()

	addr, err := procstat.FreeAddr()
	if err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(handler)
	cmd.Env = append(os.Environ(), "PORT="+port, "HEXAGON_URL="+upstream.URL, "CAPABILITIES_TTL=2s", "TOKEN_STORE=memory")
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	base := "http://" + addr
	if err := waitReady(base); err != nil {
		return err
	}
	cred := base + "/wmts/" + credential.Encode(id) + "/" + credential.Encode(secret)
	// Warm up, then read the starting state.
	http.Get(cred + "/1.0.0/WMTSCapabilities.xml")
	goroutinesBefore := goroutines(base)
	rssStart := procstat.RSS(cmd.Process.Pid)

	var peak atomic.Int64
	stopSampling := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				if r := procstat.RSS(cmd.Process.Pid); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()

	transport := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	tileLen := len(fake.JPEG())
	results := make([]*result, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conns {
		results[w] = &result{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker(ctx, client, cred, weights, tileLen, results[w])
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	transport.CloseIdleConnections()
	time.Sleep(settle) // let the proxy's idle connections and refreshes settle
	goroutinesAfter := goroutines(base)
	rssEnd := procstat.RSS(cmd.Process.Pid)

	var all []time.Duration
	total, errs := 0, 0
	fig := map[string]any{}
	fmt.Printf("HexProx soak: %v at %d connections, tokens live %v, mix %s (redirect,stream,capabilities)\n", duration, conns, lifetime, mixText)
	for k := range kinds {
		var lat []time.Duration
		e := 0
		for _, r := range results {
			lat = append(lat, r.lat[k]...)
			e += r.errors[k]
		}
		slices.Sort(lat)
		all = append(all, lat...)
		total += len(lat)
		errs += e
		fmt.Printf("  %-12s %8d requests  %6d errors  p50 %7s  p99 %7s  max %7s\n", kindNames[k], len(lat), e, pct(lat, 50), pct(lat, 99), pct(lat, 100))
		fig[kindNames[k]] = map[string]any{"requests": len(lat), "errors": e, "p50_ms": msf(pct(lat, 50)), "p99_ms": msf(pct(lat, 99))}
	}
	slices.Sort(all)
	fmt.Printf("  %-12s %8d requests  %6d errors  p50 %7s  p99 %7s  (%.0f req/s)\n", "all", total, errs, pct(all, 50), pct(all, 99), float64(total)/elapsed.Seconds())
	fmt.Printf("  proxy RSS: start %.1f MB, peak %.1f MB, end %.1f MB\n", mb(rssStart), mb(peak.Load()), mb(rssEnd))
	fmt.Printf("  proxy goroutines: before %d, after %d (read %v after the load)\n", goroutinesBefore, goroutinesAfter, settle)
	fmt.Printf("  Hexagon: %d token requests (%d tokens issued) over %d token lifetimes\n", fake.TokenRequests.Load(), fake.TokensIssued.Load(), int(elapsed/lifetime))
	for _, r := range results {
		for _, s := range r.sample {
			fmt.Println("  sample error:", s)
			break
		}
	}
	fig["all"] = map[string]any{"requests": total, "errors": errs, "rps": float64(total) / elapsed.Seconds(), "p50_ms": msf(pct(all, 50)), "p99_ms": msf(pct(all, 99))}
	fig["rss_mb"] = map[string]float64{"start": mb(rssStart), "peak": mb(peak.Load()), "end": mb(rssEnd)}
	fig["goroutines"] = map[string]int{"before": goroutinesBefore, "after": goroutinesAfter}
	fig["token_requests"] = fake.TokenRequests.Load()
	if out != "" {
		b, _ := json.MarshalIndent(fig, "", "  ")
		os.WriteFile(out, b, 0o644)
	}
	if errs > 0 {
		return fmt.Errorf("%d errors", errs)
	}
	return nil
}

func worker(ctx context.Context, client *http.Client, cred string, weights [kinds]int, tileLen int, r *result) {
	sum := weights[0] + weights[1] + weights[2]
	for ctx.Err() == nil {
		n := rand.IntN(sum)
		k := redirect
		switch {
		case n >= weights[0]+weights[1]:
			k = capabilities
		case n >= weights[0]:
			k = stream
		}
		z := rand.IntN(18) + 1
		u := fmt.Sprintf("%s/1.0.0/HxGN_Imagery/default/WebMercator/%d/%d/%d.jpg", cred, z, rand.IntN(1<<z), rand.IntN(1<<z))
		if k == capabilities {
			u = cred + "/1.0.0/WMTSCapabilities.xml"
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		if k == stream {
			req.Header.Set("Origin", "https://soak.maps.arcgis.com")
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				r.errors[k]++
				r.sample = append(r.sample, err.Error())
			}
			continue
		}
		n2, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		ok := err == nil && map[kind]int{redirect: 302, stream: 200, capabilities: 200}[k] == resp.StatusCode
		if k == stream && n2 != int64(tileLen) {
			ok = false
		}
		if !ok {
			if ctx.Err() == nil {
				r.errors[k]++
				r.sample = append(r.sample, fmt.Sprintf("%s %s: %d", kindNames[k], u[len(cred):], resp.StatusCode))
			}
			continue
		}
		r.lat[k] = append(r.lat[k], took)
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted) - 1) * p / 100
	return sorted[i].Round(10 * time.Microsecond)
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mb(b int64) float64          { return float64(b) / (1 << 20) }

func waitReady(base string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("handler not ready at %s", base)
}

func goroutines(base string) int {
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var h struct{ Goroutines int }
	json.NewDecoder(resp.Body).Decode(&h)
	return h.Goroutines
}
