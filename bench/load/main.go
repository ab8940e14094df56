// Command load is HexProx's reproducible load benchmark. On this machine's
// loopback only, it starts the fake Hexagon, the built handler and the
// baselines (the fake hit directly, a minimal httputil.ReverseProxy, and
// nginx proxy_pass when nginx is installed) as separate processes, drives
// each path at each concurrency with wrk, samples every server's RSS, and
// measures start-up time and the capabilities cache-miss overhead. It
// writes bench/results.json and bench/results.svg and prints a Markdown
// table. Every run is bounded by -duration.
//
//	bench/run.sh          (installs wrk, builds, runs this)
package main

import (
	"bufio"
	"encoding/json"
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
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hexprox/hexprox/bench/internal/procstat"
	"github.com/hexprox/hexprox/internal/credential"
)

const (
	clientID     = "demo-client"
	clientSecret = "demo-secret"
	origin       = "https://bench.maps.arcgis.com"
	tile         = "/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg"
)

// Run is one wrk run against one target.
type Run struct {
	Path    string  `json:"path"`   // redirect, stream, capabilities
	Target  string  `json:"target"` // hexprox, direct, baseline, nginx
	Conns   int     `json:"conns"`
	RPS     float64 `json:"rps"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	PeakRSS float64 `json:"peak_rss_mb"`
	Errors  int     `json:"errors"`
}

// Results is everything one benchmark run measured.
type Results struct {
	Date          string  `json:"date"`
	Machine       string  `json:"machine"`
	Duration      string  `json:"duration"`
	Runs          []Run   `json:"runs"`
	StartupMedian float64 `json:"startup_median_ms"`
	StartupP90    float64 `json:"startup_p90_ms"`
	MissDirect    float64 `json:"capabilities_direct_median_ms"`
	MissProxy     float64 `json:"capabilities_miss_median_ms"`
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
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	connsText := flag.String("conns", "32,256", "concurrencies")
	out := flag.String("out", "bench", "where to write results.json and results.svg")
	flag.Parse()
	if err := run(*bin, *duration, *connsText, *out); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(bin string, duration time.Duration, connsText, out string) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk is needed (apt-get install wrk)")
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
	res := Results{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Machine: machine(), Duration: duration.String()}

	var addr [4]string // fake, hexprox, baseline, nginx
	for i := range addr {
		if addr[i], err = procstat.FreeAddr(); err != nil {
			return err
		}
	}
	fakeURL, hpURL, baseURL, nginxURL := "http://"+addr[0], "http://"+addr[1], "http://"+addr[2], "http://"+addr[3]
	up, err := start("direct", filepath.Join(bin, "fakehexagon"), nil, "-addr", addr[0])
	if err != nil {
		return err
	}
	defer up.stop()
	if err := waitHTTP(fakeURL + "/streaming/wmts"); err != nil {
		return err
	}
	_, hpPort, _ := net.SplitHostPort(addr[1])
	hp, err := start("hexprox", filepath.Join(bin, "handler"), []string{"PORT=" + hpPort, "HEXAGON_URL=" + fakeURL, "TOKEN_STORE=memory"})
	if err != nil {
		return err
	}
	defer hp.stop()
	if err := waitHTTP(hpURL + "/healthz"); err != nil {
		return err
	}
	base, err := start("baseline", filepath.Join(bin, "baseline"), nil, "-listen", addr[2], "-upstream", fakeURL)
	if err != nil {
		return err
	}
	defer base.stop()
	if err := waitHTTP(baseURL + "/streaming/wmts"); err != nil {
		return err
	}
	ng, nginxErr := startNginx(addr[3], addr[0])
	defer ng.stop()
	if nginxErr != nil {
		fmt.Fprintln(os.Stderr, "nginx baseline skipped:", nginxErr)
	}
	token, err := fetchToken(fakeURL)
	if err != nil {
		return err
	}

	cred := "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	upstreamTile := "/streaming/wmts?/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg&access_token=" + token
	upstreamCaps := "/streaming/wmts?/1.0.0/WMTSCapabilities.xml&access_token=" + token
	targets := map[string]map[string]string{ // path → target → URL
		"redirect":     {"hexprox": hpURL + cred + tile},
		"stream":       {"hexprox": hpURL + cred + tile, "direct": fakeURL + upstreamTile, "baseline": baseURL + upstreamTile},
		"capabilities": {"hexprox": hpURL + cred + "/1.0.0/WMTSCapabilities.xml", "direct": fakeURL + upstreamCaps},
	}
	if ng != nil {
		targets["stream"]["nginx"] = nginxURL + upstreamTile
	}
	servers := map[string]*server{"hexprox": hp, "direct": up, "baseline": base, "nginx": ng}
	for _, path := range []string{"redirect", "stream", "capabilities"} {
		for _, c := range conns {
			for _, target := range []string{"hexprox", "baseline", "nginx", "direct"} {
				u, ok := targets[path][target]
				if !ok {
					continue
				}
				var hdr []string
				if path == "stream" && target == "hexprox" {
					hdr = []string{"-H", "Origin: " + origin}
				}
				r, err := wrk(u, c, duration, hdr, servers[target])
				if err != nil {
					return fmt.Errorf("%s %s c=%d: %w", path, target, c, err)
				}
				r.Path, r.Target, r.Conns = path, target, c
				res.Runs = append(res.Runs, r)
				fmt.Fprintf(os.Stderr, "%-12s %-8s c=%-3d %9.0f req/s  p50 %6.2fms  p99 %6.2fms  rss %5.1fMB  errors %d\n", path, target, c, r.RPS, r.P50, r.P99, r.PeakRSS, r.Errors)
			}
		}
	}
	// The redirect path once more with the proxy pinned to core 0 and a
	// one-thread wrk to core 1: the same work, without the two competing
	// for both cores (which is where the unpinned p99 tail comes from).
	if _, err := exec.LookPath("taskset"); err == nil {
		for _, c := range conns {
			r, err := pinned(targets["redirect"]["hexprox"], c, duration, hp)
			if err != nil {
				return err
			}
			r.Path, r.Target, r.Conns = "redirect", "hexprox-pinned", c
			res.Runs = append(res.Runs, r)
			fmt.Fprintf(os.Stderr, "%-12s %-8s c=%-3d %9.0f req/s  p50 %6.2fms  p99 %6.2fms  rss %5.1fMB  errors %d\n", r.Path, r.Target, c, r.RPS, r.P50, r.P99, r.PeakRSS, r.Errors)
		}
	}
	res.StartupMedian, res.StartupP90, err = startup(filepath.Join(bin, "handler"))
	if err != nil {
		return err
	}
	res.MissDirect, res.MissProxy, err = cacheMiss(filepath.Join(bin, "handler"), fakeURL, cred, upstreamCaps)
	if err != nil {
		return err
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

func waitHTTP(u string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if resp, err := http.Get(u); err == nil {
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

// markdown prints the results with ratios to the baselines.
func markdown(res Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s, %s per wrk run (wrk -t2, loopback, generator on the same machine).\n\n", res.Date, res.Machine, res.Duration)
	b.WriteString("| path | target | conns | req/s | p50 ms | p99 ms | peak RSS MB | errors | vs baseline (req/s, p99) | vs nginx (req/s, p99) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.Runs {
		ratio := func(other string) string {
			o, ok := find(res, r.Path, other, r.Conns)
			if !ok || r.Target == other || r.Target != "hexprox" || o.RPS == 0 || o.P99 == 0 {
				return ""
			}
			return fmt.Sprintf("%.2f×, %.2f×", r.RPS/o.RPS, r.P99/o.P99)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.2f | %.2f | %.1f | %d | %s | %s |\n", r.Path, r.Target, r.Conns, r.RPS, r.P50, r.P99, r.PeakRSS, r.Errors, ratio("baseline"), ratio("nginx"))
	}
	fmt.Fprintf(&b, "\nStart-up, exec to first `/healthz` answer: median %.1f ms, p90 %.1f ms (20 starts).\n", res.StartupMedian, res.StartupP90)
	fmt.Fprintf(&b, "Capabilities cache miss: %.2f ms through the proxy vs %.2f ms from the fake directly (median of 300): the miss adds %.2f ms.\n", res.MissProxy, res.MissDirect, res.MissProxy-res.MissDirect)
	return b.String()
}
