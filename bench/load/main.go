// Command load is HexProx's reproducible load benchmark. On this machine's
// loopback only, it starts the fake Hexagon, the built handler (three
// times: logs at info, at warn, and sampled) and the yardsticks (the fake
// hit directly, a bare net/http 302 handler, a minimal
// httputil.ReverseProxy, the least relay a handler on net/http can be, and
// one nginx worker doing proxy_pass when nginx is installed) as separate processes, drives each path at each
// concurrency with wrk, and samples every server's RSS and CPU time
// (/proc/<pid>/stat of its process group). The /v2 key paths run against
// a keys file it writes with internal/keys/filestore. It then measures
// start-up, the capabilities cache-miss overhead, and a cold start whose
// token is already in the table (Azurite, from tools/node_modules). It
// writes bench/results.json and bench/results.svg and prints a Markdown
// table with the ratios issue 14's goals are stated in. Every wrk run
// lasts -duration.
//
//	bench/run.sh          (installs wrk and nginx, builds, runs this)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hexprox/hexprox/bench/internal/procstat"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/keystore"
)

const (
	clientID     = "demo-client"
	clientSecret = "demo-secret"
	origin       = "https://bench.maps.arcgis.com"
	tile         = "/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg"
)

// Run is one wrk run against one target.
type Run struct {
	Path     string  `json:"path"`   // redirect, stream, capabilities
	Target   string  `json:"target"` // hexprox, hexprox-v2, floor302, direct, baseline, nginx, …
	Conns    int     `json:"conns"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	PeakRSS  float64 `json:"peak_rss_mb"`
	Errors   int     `json:"errors"`
	Requests int64   `json:"requests"`
	// CPU is the server's user+system CPU per answered request, in µs,
	// from /proc/<pid>/stat of its whole process group over the run.
	CPU float64 `json:"cpu_us_per_req"`
	// Over rounds: the fields above are medians (errors and requests
	// sums, RSS the peak), and the req/s of the slowest and fastest round.
	Rounds         int     `json:"rounds,omitempty"`
	RPSMin, RPSMax float64 `json:"-"`
}

// Results is everything one benchmark run measured.
type Results struct {
	Date          string     `json:"date"`
	Machine       string     `json:"machine"`
	Duration      string     `json:"duration"`
	Rounds        int        `json:"rounds"`
	Runs          []Run      `json:"runs"`
	StartupMedian float64    `json:"startup_median_ms"`
	StartupP90    float64    `json:"startup_p90_ms"`
	MissDirect    float64    `json:"capabilities_direct_median_ms"`
	MissProxy     float64    `json:"capabilities_miss_median_ms"`
	Cold          *ColdStart `json:"cold_start,omitempty"`
	Skipped       []string   `json:"skipped,omitempty"` // cases not measured, and why
}

// Targets and what each one is.
var targetNotes = []struct{ name, note string }{
	{"hexprox", "HexProx, LOG_LEVEL=info (a JSON line per request), v1 credential URL"},
	{"hexprox-v2", "the same process, /v2 API key URL (KEYS_FILE), from a browser (Origin)"},
	{"hexprox-v2-desktop", "the same process, /v2 API key URL from a desktop client (no Origin): streamed, as a key's tiles never carry Hexagon's token"},
	{"hexprox-warn", "HexProx with LOG_LEVEL=warn (no line per successful request)"},
	{"hexprox-sampled", "HexProx with LOG_SAMPLE=0.1 (a tenth of successful request lines)"},
	{"hexprox-nocount", "HexProx with USAGE=off (no usage counting), logs at info"},
	{"hexprox-pinned", "HexProx on core 0, a one-thread wrk on core 1"},
	{"floor302", "a bare net/http handler that only writes the 302"},
	{"baseline", "a bare httputil.ReverseProxy, the client's URL passed through"},
	{"relay", "the least a relay on net/http does (bench/baseline -mode relay, GOGC=400): one Transport GET, type, length and body copied; the ceiling for HexProx's stream on net/http"},
	{"nginx", "one nginx worker, proxy_pass with upstream keep-alive"},
	{"direct", "the fake Hexagon itself"},
}

type server struct {
	name string
	cmd  *exec.Cmd
}

// stop ends the server and everything it started (nginx's workers): its
// process group gets SIGTERM, then SIGKILL if it lingers.
func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pgid := -s.cmd.Process.Pid
	syscall.Kill(pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		syscall.Kill(pgid, syscall.SIGKILL)
		<-done
	}
	syscall.Kill(pgid, syscall.SIGKILL) // any orphan left in the group
}

func main() {
	bin := flag.String("bin", "bench/bin", "directory with handler, fakehexagon and baseline binaries")
	duration := flag.Duration("duration", 5*time.Second, "length of each wrk run (whole seconds)")
	connsText := flag.String("conns", "32,256", "concurrencies")
	out := flag.String("out", "bench", "where to write results.json and results.svg")
	coldStarts := flag.Int("cold-starts", 20, "cold starts from the token table to time (0: skip)")
	rounds := flag.Int("rounds", 3, "rounds of every path and target, interleaved; the table gives medians")
	flag.Parse()
	if err := run(*bin, *duration, *connsText, *out, *coldStarts, max(1, *rounds)); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(bin string, duration time.Duration, connsText, out string, coldStarts, rounds int) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk is needed (apt-get install wrk)")
	}
	if duration < time.Second {
		return fmt.Errorf("-duration %v: wrk runs whole seconds", duration)
	}
	var conns []int
	for _, c := range strings.Split(connsText, ",") {
		n, err := strconv.Atoi(c)
		if err != nil {
			return err
		}
		conns = append(conns, n)
	}
	var err error
	res := Results{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Machine: machine(), Duration: duration.String(), Rounds: rounds}
	skip := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		res.Skipped = append(res.Skipped, msg)
		fmt.Fprintln(os.Stderr, "skipped:", msg)
	}
	tmp, err := os.MkdirTemp("", "hexprox-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	names := []string{"fake", "hexprox", "warn", "sampled", "nocount", "baseline", "relay", "floor", "nginx", "slowfake", "slowhexprox", "slowrelay"}
	addr := map[string]string{}
	for _, n := range names {
		if addr[n], err = procstat.FreeAddr(); err != nil {
			return err
		}
	}
	url := func(n string) string { return "http://" + addr[n] }
	fakeURL := url("fake")
	up, err := start("direct", filepath.Join(bin, "fakehexagon"), nil, "-addr", addr["fake"], "-keys-file=")
	if err != nil {
		return err
	}
	defer up.stop()
	if err := waitHTTP(fakeURL + "/streaming/wmts"); err != nil {
		return err
	}
	keysFile := filepath.Join(tmp, "keys.json")
	key, err := writeKey(keysFile)
	if err != nil {
		return fmt.Errorf("keys file: %w", err)
	}
	handler := func(name, listen string, env ...string) (*server, error) {
		_, port := splitPort(listen)
		env = append([]string{"PORT=" + port, "HEXAGON_URL=" + fakeURL, "TOKEN_STORE=memory", "KEYS_FILE=" + keysFile,
			"USAGE_DIR=" + filepath.Join(tmp, "usage-"+name), "LOG_LEVEL=info"}, env...)
		s, err := start(name, filepath.Join(bin, "handler"), env)
		if err != nil {
			return nil, err
		}
		if err := waitHTTP("http://" + listen + "/healthz"); err != nil {
			s.stop()
			return nil, err
		}
		return s, nil
	}
	hp, err := handler("hexprox", addr["hexprox"])
	if err != nil {
		return err
	}
	defer hp.stop()
	warn, err := handler("hexprox-warn", addr["warn"], "LOG_LEVEL=warn")
	if err != nil {
		return err
	}
	defer warn.stop()
	sampled, err := handler("hexprox-sampled", addr["sampled"], "LOG_SAMPLE=0.1")
	if err != nil {
		return err
	}
	defer sampled.stop()
	nocount, err := handler("hexprox-nocount", addr["nocount"], "USAGE=off")
	if err != nil {
		return err
	}
	defer nocount.stop()
	base, err := start("baseline", filepath.Join(bin, "baseline"), nil, "-listen", addr["baseline"], "-upstream", fakeURL)
	if err != nil {
		return err
	}
	defer base.stop()
	// The relay runs with HexProx's own GC setting, so that the two differ
	// only in what HexProx does per tile.
	relay, err := start("relay", filepath.Join(bin, "baseline"), []string{"GOGC=400"}, "-listen", addr["relay"], "-upstream", fakeURL, "-mode", "relay")
	if err != nil {
		return err
	}
	defer relay.stop()
	floor, err := start("floor302", filepath.Join(bin, "baseline"), nil, "-listen", addr["floor"], "-mode", "redirect")
	if err != nil {
		return err
	}
	defer floor.stop()
	for _, n := range []string{"baseline", "relay", "floor"} {
		if err := waitHTTP(url(n) + "/streaming/wmts"); err != nil {
			return err
		}
	}
	ng, nginxErr := startNginx(addr["nginx"], addr["fake"])
	defer ng.stop()
	if nginxErr != nil {
		skip("nginx baseline: %v", nginxErr)
	}
	token, err := fetchToken(fakeURL)
	if err != nil {
		return err
	}

	cred := "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	v2 := "/v2/wmts/" + key
	upstreamTile := "/streaming/wmts?/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg&access_token=" + token
	upstreamCaps := "/streaming/wmts?/1.0.0/WMTSCapabilities.xml&access_token=" + token
	targets := map[string]map[string]string{ // path → target → URL
		"redirect": {"hexprox": url("hexprox") + cred + tile,
			"hexprox-warn": url("warn") + cred + tile, "hexprox-sampled": url("sampled") + cred + tile, "hexprox-nocount": url("nocount") + cred + tile, "floor302": url("floor") + tile},
		"stream": {"hexprox": url("hexprox") + cred + tile, "hexprox-v2": url("hexprox") + v2 + tile, "hexprox-v2-desktop": url("hexprox") + v2 + tile,
			"direct": fakeURL + upstreamTile, "baseline": url("baseline") + upstreamTile, "relay": url("relay") + upstreamTile},
		"capabilities": {"hexprox": url("hexprox") + cred + "/1.0.0/WMTSCapabilities.xml", "direct": fakeURL + upstreamCaps},
	}
	if ng != nil {
		targets["stream"]["nginx"] = url("nginx") + upstreamTile
	}
	// Every HexProx URL must answer as the path expects before it is
	// measured: a /v2 key the binary does not serve yet is skipped, not
	// counted as a fast stream of 404s.
	for path, ts := range targets {
		for target, u := range ts {
			if !strings.HasPrefix(target, "hexprox") {
				continue
			}
			want, hdr := http.StatusFound, ""
			switch path {
			case "stream":
				want, hdr = http.StatusOK, origin
				if target == "hexprox-v2-desktop" {
					hdr = ""
				}
			case "capabilities":
				want = http.StatusOK
			}
			if got, err := probe(u, hdr); err != nil || got != want {
				skip("%s %s: answered %d (%v), not %d", path, target, got, err, want)
				delete(ts, target)
			}
		}
	}
	servers := map[string]*server{"hexprox": hp, "hexprox-v2": hp, "hexprox-v2-desktop": hp, "hexprox-warn": warn, "hexprox-sampled": sampled, "hexprox-nocount": nocount,
		"floor302": floor, "direct": up, "baseline": base, "relay": relay, "nginx": ng}
	order := []string{"hexprox", "hexprox-v2", "hexprox-v2-desktop", "hexprox-nocount", "hexprox-warn", "hexprox-sampled", "floor302", "baseline", "relay", "nginx", "direct"}
	// Every path and target once per round, so that a target and its
	// yardstick are measured minutes apart at most, however this shared
	// machine's speed drifts; the table gives each one's median.
	for range rounds {
		for _, path := range []string{"redirect", "stream", "capabilities"} {
			for _, c := range conns {
				for _, target := range order {
					u, ok := targets[path][target]
					if !ok {
						continue
					}
					var hdr []string
					if path == "stream" && strings.HasPrefix(target, "hexprox") && target != "hexprox-v2-desktop" {
						hdr = []string{"-H", "Origin: " + origin}
					}
					r, err := wrk(u, c, duration, hdr, servers[target])
					if err != nil {
						return fmt.Errorf("%s %s c=%d: %w", path, target, c, err)
					}
					r.Path, r.Target, r.Conns = path, target, c
					res.Runs = append(res.Runs, r)
					progress(r)
				}
			}
		}
	}
	res.Runs = medians(res.Runs)
	// The redirect path once more with the proxy pinned to core 0 and a
	// one-thread wrk to core 1: the same work, without the two competing
	// for both cores (which is where the unpinned p99 tail comes from).
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		for _, c := range conns {
			r, err := pinned(targets["redirect"]["hexprox"], c, duration, hp)
			if err != nil {
				return err
			}
			r.Path, r.Target, r.Conns = "redirect", "hexprox-pinned", c
			res.Runs = append(res.Runs, r)
			progress(r)
		}
	}
	// The load is over: stop the load servers before timing start-ups, so
	// they measure a process starting, not a busy machine.
	for _, s := range []*server{warn, sampled, nocount, base, floor, ng} {
		s.stop()
	}
	// Memory under many slow streams (issue 20): a key's desktop tiles
	// are streamed, so a thousand clients waiting on a slow Hexagon are a
	// thousand streams held open at once.
	slow, err := slowStreams(bin, addr, keysFile, v2+tile, duration, tmp)
	if err != nil {
		skip("slow streams: %v", err)
	}
	res.Runs = append(res.Runs, slow...)
	res.StartupMedian, res.StartupP90, err = startup(filepath.Join(bin, "handler"))
	if err != nil {
		return err
	}
	res.MissDirect, res.MissProxy, err = cacheMiss(filepath.Join(bin, "handler"), fakeURL, cred, upstreamCaps)
	if err != nil {
		return err
	}
	if coldStarts > 0 {
		cold, err := coldStart(filepath.Join(bin, "handler"), tmp, coldStarts)
		switch {
		case errors.Is(err, errNoAzurite):
			skip("cold start from the table: %v", err)
		case err != nil:
			return fmt.Errorf("cold start: %w", err)
		default:
			res.Cold = cold
		}
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(out, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "results.svg"), plot(res), 0o644); err != nil {
		return err
	}
	fmt.Print(markdown(res))
	return nil
}

// medians folds the runs of each path, target and concurrency into one:
// the median of each figure, in the order the runs were first made.
func medians(runs []Run) []Run {
	type key struct {
		path, target string
		conns        int
	}
	var order []key
	groups := map[key][]Run{}
	for _, r := range runs {
		k := key{r.Path, r.Target, r.Conns}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]Run, 0, len(order))
	for _, k := range order {
		g := groups[k]
		m := Run{Path: k.path, Target: k.target, Conns: k.conns, Rounds: len(g), RPSMin: g[0].RPS, RPSMax: g[0].RPS}
		med := func(f func(Run) float64) float64 {
			v := make([]float64, len(g))
			for i, r := range g {
				v[i] = f(r)
			}
			sort.Float64s(v)
			if n := len(v); n%2 == 0 {
				return (v[n/2-1] + v[n/2]) / 2
			}
			return v[len(v)/2]
		}
		m.RPS = med(func(r Run) float64 { return r.RPS })
		m.P50 = med(func(r Run) float64 { return r.P50 })
		m.P99 = med(func(r Run) float64 { return r.P99 })
		m.CPU = med(func(r Run) float64 { return r.CPU })
		for _, r := range g {
			m.PeakRSS = max(m.PeakRSS, r.PeakRSS)
			m.Errors += r.Errors
			m.Requests += r.Requests
			m.RPSMin, m.RPSMax = min(m.RPSMin, r.RPS), max(m.RPSMax, r.RPS)
		}
		out = append(out, m)
	}
	return out
}

func progress(r Run) {
	fmt.Fprintf(os.Stderr, "%-12s %-15s c=%-3d %9.0f req/s  p50 %6.2fms  p99 %6.2fms  cpu %6.1fµs/req  rss %5.1fMB  errors %d\n",
		r.Path, r.Target, r.Conns, r.RPS, r.P50, r.P99, r.CPU, r.PeakRSS, r.Errors)
}

func splitPort(addr string) (host, port string) {
	host, port, _ = net.SplitHostPort(addr)
	return host, port
}

// writeKey makes a keys file at path holding one active record for the
// fake's demo client, as an operator would with hexprox-keys, and returns
// its key.
func writeKey(path string) (string, error) {
	store, err := keystore.Open(context.Background(), keystore.Settings{Kind: config.KeysFile, File: path, CreateFile: true})
	if err != nil {
		return "", err
	}
	key, err := keys.New()
	if err != nil {
		return "", err
	}
	rec := keys.Record{Org: "Benchmark", Contact: "bench@example.org", Enabled: true,
		Sets: []credential.Credential{{ID: clientID, Secret: clientSecret}}, Origins: []string{"https://*.arcgis.com"}}
	return key, store.Create(context.Background(), key, rec)
}

// probe answers u's status without following redirects.
func probe(u, originHeader string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	if originHeader != "" {
		req.Header.Set("Origin", originHeader)
	}
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func start(name, bin string, env []string, args ...string) (*server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	// nil Stdout/Stderr go to /dev/null: no pipe for Wait to drain.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &server{name: name, cmd: cmd}, nil
}

// waitHTTP waits until u answers anything (a redirect is not followed).
func waitHTTP(u string) error {
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not answer", u)
}

func fetchToken(fakeURL string) (string, error) {
	resp, err := http.Get(fakeURL + "/streaming/oauth/token?grant_type=client_credentials&client_id=" + clientID + "&client_secret=" + clientSecret)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var t struct {
		AccessToken string `json:"access_token"`
	}
	return t.AccessToken, json.NewDecoder(resp.Body).Decode(&t)
}

// startNginx runs nginx as a plain proxy_pass to the fake, if installed.
func startNginx(listen, upstream string) (*server, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err2 := os.Stat(p); err2 == nil {
				bin, err = p, nil
			}
		}
		if err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "hexprox-nginx")
	if err != nil {
		return nil, err
	}
	conf := `daemon off; worker_processes 1; error_log stderr error; pid ` + dir + `/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ` + dir + `; proxy_temp_path ` + dir + `; fastcgi_temp_path ` + dir + `; uwsgi_temp_path ` + dir + `; scgi_temp_path ` + dir + `;
  upstream fake { server ` + upstream + `; keepalive 256; }
  server {
    listen ` + listen + `;
    location / { proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	s, err := start("nginx", bin, nil, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP("http://" + listen + "/streaming/wmts"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

var (
	rpsRE  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	latRE  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)`)
	reqsRE = regexp.MustCompile(`(\d+) requests in`)
	errsRE = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// pinned runs wrk on core 1 with one thread against srv pinned to core 0.
func pinned(u string, conns int, d time.Duration, srv *server) (Run, error) {
	pid := strconv.Itoa(srv.cmd.Process.Pid)
	if out, err := exec.Command("taskset", "-a", "-cp", "0", pid).CombinedOutput(); err != nil {
		return Run{}, fmt.Errorf("taskset: %v: %s", err, out)
	}
	defer exec.Command("taskset", "-a", "-cp", "0-"+strconv.Itoa(runtime.NumCPU()-1), pid).Run()
	return runWrk([]string{"taskset", "-c", "1", "wrk", "-t1"}, u, conns, d, nil, srv)
}

// wrk runs wrk against u and samples the server's RSS meanwhile.
func wrk(u string, conns int, d time.Duration, hdr []string, srv *server) (Run, error) {
	return runWrk([]string{"wrk", "-t2"}, u, conns, d, hdr, srv)
}

func runWrk(command []string, u string, conns int, d time.Duration, hdr []string, srv *server) (Run, error) {
	args := append([]string{"-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency", "--timeout", "10s"}, hdr...)
	args = append(args, u)
	var peak atomic.Int64
	pgid := srv.cmd.Process.Pid
	cpu0 := procstat.GroupCPU(pgid)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if r := procstat.RSS(srv.cmd.Process.Pid); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	outb, err := exec.Command(command[0], append(command[1:], args...)...).CombinedOutput()
	close(done)
	cpu := procstat.GroupCPU(pgid) - cpu0
	if err != nil {
		return Run{}, fmt.Errorf("%v: %s", err, outb)
	}
	out := string(outb)
	var r Run
	if m := rpsRE.FindStringSubmatch(out); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	for _, m := range latRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		switch m[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if m[1] == "50" {
			r.P50 = v
		} else {
			r.P99 = v
		}
	}
	for _, m := range errsRE.FindAllStringSubmatch(out, -1) {
		for _, g := range m[1:] {
			n, _ := strconv.Atoi(g)
			r.Errors += n
		}
	}
	if m := reqsRE.FindStringSubmatch(out); m != nil {
		r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if r.Requests > 0 {
		r.CPU = float64(cpu.Microseconds()) / float64(r.Requests)
	}
	r.PeakRSS = float64(peak.Load()) / (1 << 20)
	return r, nil
}

// startup measures exec → first answered /healthz, 20 times.
func startup(handler string) (median, p90 float64, err error) {
	var times []float64
	for range 20 {
		addr, err := procstat.FreeAddr()
		if err != nil {
			return 0, 0, err
		}
		_, port, _ := net.SplitHostPort(addr)
		t0 := time.Now()
		s, err := start("startup", handler, []string{"PORT=" + port, "TOKEN_STORE=memory"})
		if err != nil {
			return 0, 0, err
		}
		ok := false
		for time.Since(t0) < 5*time.Second {
			if c, err := net.Dial("tcp", addr); err == nil {
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if strings.Contains(line, "200") {
					ok = true
					break
				}
			}
			time.Sleep(200 * time.Microsecond)
		}
		took := time.Since(t0)
		s.stop()
		if !ok {
			return 0, 0, fmt.Errorf("handler did not start")
		}
		times = append(times, float64(took.Microseconds())/1000)
	}
	slices.Sort(times)
	return times[len(times)/2], times[len(times)*9/10], nil
}

// cacheMiss compares fetching the capabilities from the fake directly with
// fetching them through a proxy whose cache is off (every request a miss).
func cacheMiss(handler, fakeURL, cred, upstreamCaps string) (direct, miss float64, err error) {
	addr, err := procstat.FreeAddr()
	if err != nil {
		return 0, 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	s, err := start("nocache", handler, []string{"PORT=" + port, "HEXAGON_URL=" + fakeURL, "CAPABILITIES_TTL=0", "TOKEN_STORE=memory"})
	if err != nil {
		return 0, 0, err
	}
	defer s.stop()
	if err := waitHTTP("http://" + addr + "/healthz"); err != nil {
		return 0, 0, err
	}
	measure := func(u string) (float64, error) {
		var ts []float64
		for range 300 {
			t0 := time.Now()
			resp, err := http.Get(u)
			if err != nil {
				return 0, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return 0, fmt.Errorf("%s: %d", u, resp.StatusCode)
			}
			ts = append(ts, float64(time.Since(t0).Microseconds())/1000)
		}
		slices.Sort(ts)
		return ts[len(ts)/2], nil
	}
	if direct, err = measure(fakeURL + upstreamCaps); err != nil {
		return 0, 0, err
	}
	miss, err = measure("http://" + addr + cred + "/1.0.0/WMTSCapabilities.xml")
	return direct, miss, err
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	n, _ := exec.Command("nproc").Output()
	return fmt.Sprintf("%s cores, %s, Linux", strings.TrimSpace(string(n)), cpu)
}

func find(res Results, path, target string, conns int) (Run, bool) {
	for _, r := range res.Runs {
		if r.Path == path && r.Target == target && r.Conns == conns {
			return r, true
		}
	}
	return Run{}, false
}

// slowConns and slowDelay are the slow-upstream measurement: this many
// concurrent streams, each waiting this long for Hexagon's first byte.
const (
	slowConns = 1000
	slowDelay = 200 * time.Millisecond
)

// slowStreams runs slowConns concurrent desktop tile requests through a
// /v2 key (streamed) and through the least relay, both to a fake Hexagon
// that waits slowDelay before each tile, and returns the two runs: their
// peak RSS is what many held-open streams cost.
func slowStreams(bin string, addr map[string]string, keysFile, keyTile string, d time.Duration, tmp string) ([]Run, error) {
	fakeURL := "http://" + addr["slowfake"]
	up, err := start("slowfake", filepath.Join(bin, "fakehexagon"), nil, "-addr", addr["slowfake"], "-keys-file=", "-tile-delay", slowDelay.String())
	if err != nil {
		return nil, err
	}
	defer up.stop()
	if err := waitHTTP(fakeURL + "/streaming/wmts"); err != nil {
		return nil, err
	}
	_, port := splitPort(addr["slowhexprox"])
	hp, err := start("slowhexprox", filepath.Join(bin, "handler"), []string{"PORT=" + port, "HEXAGON_URL=" + fakeURL, "TOKEN_STORE=memory",
		"KEYS_FILE=" + keysFile, "USAGE_DIR=" + filepath.Join(tmp, "usage-slow"), "LOG_LEVEL=info"})
	if err != nil {
		return nil, err
	}
	defer hp.stop()
	relay, err := start("slowrelay", filepath.Join(bin, "baseline"), []string{"GOGC=400"}, "-listen", addr["slowrelay"], "-upstream", fakeURL, "-mode", "relay")
	if err != nil {
		return nil, err
	}
	defer relay.stop()
	for _, u := range []string{"http://" + addr["slowhexprox"] + "/healthz", "http://" + addr["slowrelay"] + "/streaming/wmts"} {
		if err := waitHTTP(u); err != nil {
			return nil, err
		}
	}
	token, err := fetchToken(fakeURL)
	if err != nil {
		return nil, err
	}
	var runs []Run
	for _, t := range []struct {
		name, url string
		srv       *server
	}{
		{"hexprox-v2-desktop", "http://" + addr["slowhexprox"] + keyTile, hp},
		{"relay", "http://" + addr["slowrelay"] + "/streaming/wmts?/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg&access_token=" + token, relay},
	} {
		if got, err := probe(t.url, ""); err != nil || got != http.StatusOK {
			return nil, fmt.Errorf("%s answered %d (%v)", t.name, got, err)
		}
		r, err := wrk(t.url, slowConns, max(d, 5*time.Second), nil, t.srv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		r.Path, r.Target, r.Conns, r.Rounds = "stream-slow", t.name, slowConns, 1
		runs = append(runs, r)
		progress(r)
	}
	return runs, nil
}
