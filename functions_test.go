package main

// These tests check the Azure Functions custom-handler contract
// (shared/azure-functions.md) against the real handler binary, since the
// Functions host itself cannot run here: the packaging files, start-up
// through FUNCTIONS_CUSTOMHANDLER_PORT with readiness polling of "/",
// forwarded requests with the host's headers and re-encoded query, and
// a clean stop.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azuritetest"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/testlog"
	"github.com/hexprox/hexprox/internal/usage"
)

func TestPackagingFiles(t *testing.T) {
	var host struct {
		Version       string
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string
			}
			EnableForwardingHttpRequest bool
		}
		Extensions struct {
			HTTP struct {
				RoutePrefix *string
			}
		}
	}
	readJSON(t, "host.json", &host)
	if host.Version != "2.0" || host.CustomHandler.Description.DefaultExecutablePath != "handler" || !host.CustomHandler.EnableForwardingHttpRequest {
		t.Fatalf("host.json: %+v", host)
	}
	if p := host.Extensions.HTTP.RoutePrefix; p == nil || *p != "" {
		t.Fatal(`host.json must set extensions.http.routePrefix to ""`)
	}
	var fn struct {
		Bindings []struct {
			Type, Direction, AuthLevel, Route string
			Methods                           []string
		}
	}
	readJSON(t, "wmts/function.json", &fn)
	if len(fn.Bindings) != 2 {
		t.Fatalf("forwarding needs exactly one httpTrigger in and one http out: %+v", fn.Bindings)
	}
	in, out := fn.Bindings[0], fn.Bindings[1]
	if in.Type != "httpTrigger" || in.Direction != "in" || in.AuthLevel != "anonymous" || in.Route != "{*path}" {
		t.Fatalf("trigger: %+v", in)
	}
	for _, m := range []string{"get", "head", "options"} {
		if !slices.Contains(in.Methods, m) {
			t.Fatalf("trigger methods %v lack %s", in.Methods, m)
		}
	}
	if out.Type != "http" || out.Direction != "out" {
		t.Fatalf("output: %+v", out)
	}
	var local struct {
		Values map[string]string
	}
	readJSON(t, "local.settings.json", &local)
	if local.Values["FUNCTIONS_WORKER_RUNTIME"] != "custom" {
		t.Fatal("local.settings.json must set FUNCTIONS_WORKER_RUNTIME=custom")
	}
	for k := range local.Values {
		if strings.Contains(k, "__") || strings.Contains(strings.ToUpper(k), "SECRET") {
			t.Fatalf("local.settings.json value %q: no '__' names, no secrets", k)
		}
	}
	var vs map[string]any
	readJSON(t, ".vscode/settings.json", &vs)
	if vs["azureFunctions.projectLanguage"] != "Custom" || vs["azureFunctions.preDeployTask"] == nil {
		t.Fatalf(".vscode/settings.json: %v", vs)
	}
	var tasks struct {
		Tasks []struct {
			Label, Command string
			Options        struct{ Env map[string]string }
		}
	}
	readJSON(t, ".vscode/tasks.json", &tasks)
	found := false
	for _, task := range tasks.Tasks {
		if task.Label == vs["azureFunctions.preDeployTask"] {
			found = strings.Contains(task.Command, "-o handler") && task.Options.Env["GOOS"] == "linux" && task.Options.Env["GOARCH"] == "amd64"
		}
	}
	if !found {
		t.Fatal("the preDeployTask must build a linux/amd64 handler")
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// buildHandler builds the handler executable once per test binary.
var buildHandler = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hexprox-handler")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "handler")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{string(out)}
	}
	return bin, nil
})

type buildError struct{ out string }

func (e *buildError) Error() string { return "go build: " + e.out }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// forward sends a request the way the Functions host forwards it: the
// original path, the query decoded and re-encoded with repeated keys
// joined by commas, all headers plus the host's own.
func forward(t *testing.T, port int, method, path, rawQuery string, hdr http.Header) *http.Response {
	t.Helper()
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		t.Fatal(err)
	}
	joined := url.Values{}
	for k, vs := range q {
		joined.Set(k, strings.Join(vs, ","))
	}
	u := "http://127.0.0.1:" + strconv.Itoa(port) + path
	if len(joined) > 0 {
		u += "?" + joined.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Host = "hexprox-test.azurewebsites.net"
	req.Header.Set("X-ARR-SSL", "2048|256|CN=test|CN=*.azurewebsites.net")
	req.Header.Set("X-Azure-Functions-HostVersion", "4.1036.1.1")
	req.Header.Set("X-Azure-Functions-InvocationId", "7c5a6f1e-0000-4000-8000-000000000001")
	req.Header.Set("User-Agent", req.Header.Get("User-Agent")+" azure-functions-host/4")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// hostedHandler is the built handler started as the Functions host
// starts it.
type hostedHandler struct {
	port   int
	output *testlog.Buffer // its stdout and stderr
	stop   func() error    // SIGTERM, then the exit's error; also run at cleanup
}

// startHandler starts the built handler in a fresh app root laid out as
// the host lays it out (host.json, wmts/function.json), with the host's
// variables and a USAGE_DIR of the test's own (not the user's report),
// then env; and waits, as the host does, until it answers GET / (polled
// every 25 ms for up to 30 s).
func startHandler(t *testing.T, env ...string) *hostedHandler {
	t.Helper()
	bin, err := buildHandler()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, f := range []string{"host.json", "wmts/function.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), b, 0o644)
	}
	h := &hostedHandler{port: freePort(t), output: &testlog.Buffer{}}
	cmd := exec.Command(bin)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(h.port),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID=worker-1",
		"FUNCTIONS_APP_ROOT_PATH="+root,
		"USAGE_DIR="+t.TempDir(),
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = h.output, h.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	var stopErr error
	h.stop = func() error {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					stopErr = fmt.Errorf("exit after SIGTERM: %w", err)
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				stopErr = errors.New("handler did not stop after SIGTERM")
			}
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Error(err)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(h.port) + "/"); err == nil {
			resp.Body.Close()
			return h
		}
	}
	t.Fatalf("handler did not answer GET / within 30 s; output:\n%s", h.output.String())
	return nil
}

func TestHandlerUnderFunctionsHostContract(t *testing.T) {
	fake := fakehexagon.New(fakehexagon.Options{})
	const id, secret = "functions-client", "functions/secret+="
	fake.AddClient(id, secret)
	upstream := httptest.NewServer(fake)
	defer upstream.Close()

	start := time.Now()
	h := startHandler(t,
		"PORT=1", // must lose to FUNCTIONS_CUSTOMHANDLER_PORT
		"HEXAGON_URL="+upstream.URL,
	)
	port, stdout := h.port, h.output
	t.Logf("handler ready after %v (Functions host allows 30 s)", time.Since(start).Round(time.Millisecond))

	credPath := "/wmts/" + credential.Encode(id) + "/" + credential.Encode(secret)
	resp := forward(t, port, "GET", credPath+"/1.0.0/WMTSCapabilities.xml", "", nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `template="https://hexprox-test.azurewebsites.net` + credPath + `/1.0.0/HxGN_Imagery/default/`
	if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("capabilities through the host: %d, want %s in\n%.1500s", resp.StatusCode, want, body)
	}

	// KVP, re-encoded by the host (FORMAT's "/" is encoded, keys reordered).
	kvp := "SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=HxGN_Imagery&STYLE=default&TILEMATRIXSET=WebMercator&TILEMATRIX=3&TILEROW=2&TILECOL=5&FORMAT=image/png"
	resp = forward(t, port, "GET", credPath, kvp, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), upstream.URL+"/streaming/wmts?") {
		t.Fatalf("KVP tile through the host: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A key the host joined with a comma is refused clearly, not guessed.
	resp = forward(t, port, "GET", credPath, kvp+"&TILEROW=3", nil)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "ExceptionReport") {
		t.Fatalf("joined repeated key: %d %s", resp.StatusCode, body)
	}

	// A browser through the host: streamed, with CORS.
	resp = forward(t, port, "GET", credPath+"/1.0.0/HxGN_Imagery/default/WebMercator/3/2/5.jpg", "", http.Header{"Origin": {"https://org.maps.arcgis.com"}})
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, fake.JPEG()) || resp.Header.Get("Access-Control-Allow-Origin") != "https://org.maps.arcgis.com" {
		t.Fatalf("streamed tile through the host: %d %v", resp.StatusCode, resp.Header)
	}

	for _, m := range []string{"HEAD", "OPTIONS"} {
		resp = forward(t, port, m, credPath+"/1.0.0/HxGN_Imagery/default/WebMercator/3/2/5.jpg", "", nil)
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			t.Fatalf("%s: %d", m, resp.StatusCode)
		}
	}
	resp = forward(t, port, "GET", "/healthz", "", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}

	// The host stops workers with SIGTERM: a clean exit.
	if err := h.stop(); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}

	// Every stdout line is a JSON log record without secrets.
	tok, _, _ := fake.CurrentToken(id)
	out := stdout.String()
	sc := bufio.NewScanner(strings.NewReader(out))
	lines := 0
	for sc.Scan() {
		lines++
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not a JSON log line: %s", sc.Text())
		}
	}
	if lines < 8 {
		t.Fatalf("expected a log line per request, got %d:\n%s", lines, out)
	}
	for _, s := range []string{id, secret, credential.Encode(id), credential.Encode(secret), tok} {
		if strings.Contains(out, s) {
			t.Fatalf("logs contain %q", s)
		}
	}
	if !strings.Contains(out, `"port":`+strconv.Itoa(port)) {
		t.Fatal("FUNCTIONS_CUSTOMHANDLER_PORT must win over PORT")
	}
}

func TestRunRefusesBadSettings(t *testing.T) {
	env := map[string]string{"TILE_MODE": "sometimes", "HEXAGON_URL": "not a url", "PORT": "0"}
	err := run(context.Background(), func(k string) string { return env[k] }, io.Discard)
	if err == nil {
		t.Fatal("started with bad settings")
	}
	for _, name := range []string{"TILE_MODE", "HEXAGON_URL", "PORT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s not reported: %v", name, err)
		}
	}
}

// TestRunSharesTokensThroughTheTable runs the wiring in main with a table
// configured: the table is created at start, and a tile request leaves the
// sealed token there.
func TestRunSharesTokensThroughTheTable(t *testing.T) {
	az := azuritetest.Start(t)
	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient("table-client", "table-secret")
	upstream := httptest.NewServer(fake)
	defer upstream.Close()
	port := freePort(t)
	env := map[string]string{
		"PORT":                   strconv.Itoa(port),
		"HEXAGON_URL":            upstream.URL,
		"TOKEN_TABLE_CONNECTION": az.ConnectionString(),
		"TOKEN_TABLE_NAME":       "wiredtokens",
		"USAGE_DIR":              t.TempDir(), // unused beside a storage account, but never the user's
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	svc, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	table := svc.NewClient("wiredtokens")
	tableExists := func() bool {
		_, err := table.GetEntity(context.Background(), "x", "x", nil)
		var re *azcore.ResponseError
		return errors.As(err, &re) && re.ErrorCode == string(aztables.ResourceNotFound)
	}
	for deadline := time.Now().Add(10 * time.Second); !tableExists(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the token table was not created at start")
		}
	}
	// The table is made in the background; wait for run to listen too.
	health := "http://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(health); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("run did not start listening")
		}
	}
	u := "http://127.0.0.1:" + strconv.Itoa(port) + "/wmts/" + credential.Encode("table-client") + "/" + credential.Encode("table-secret") + "/1.0.0/HxGN_Imagery/default/WebMercator/1/0/0.jpg"
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(u)
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("tile through main's wiring: %v %v", resp, err)
	}
	resp.Body.Close()
	if rows := az.Rows(t, "wiredtokens"); len(rows) != 1 {
		t.Fatalf("the table holds %d rows after one credential's first tile, want 1", len(rows))
	}
}

// startRun runs the server as main does, with env, until the returned
// stop is called; stop cancels run's context as SIGTERM does and returns
// run's error. base is the server's address, once it listens. Usage rows
// go to env's USAGE_DIR, else to a directory of the test's own.
func startRun(t *testing.T, env map[string]string, logOut io.Writer) (base string, stop func() error) {
	t.Helper()
	port := freePort(t)
	env["PORT"] = strconv.Itoa(port)
	if env["USAGE_DIR"] == "" {
		env["USAGE_DIR"] = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }, logOut) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	base = "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return base, stop
		}
		if time.Now().After(deadline) {
			t.Fatal("run did not start listening")
		}
	}
}

// redirects is a client that returns redirects rather than following them.
var redirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// getTiles asks base for n tiles with id and secret, each a redirect.
func getTiles(t *testing.T, base, id, secret string, n int) {
	t.Helper()
	for range n {
		resp, err := redirects.Get(base + "/wmts/" + credential.Encode(id) + "/" + credential.Encode(secret) + "/1.0.0/HxGN_Imagery/default/WebMercator/1/0/0.jpg")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("tile: %d", resp.StatusCode)
		}
	}
}

// redirectedIn is the redirected tiles the usage rows in dir hold.
func redirectedIn(t *testing.T, dir string) int64 {
	t.Helper()
	rows, err := (&usage.DirSink{Dir: dir}).Read(context.Background(), usage.Query{From: time.Now().Add(-2 * time.Hour), To: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, r := range rows {
		n += r.Counts[usage.TilesRedirected]
	}
	return n
}

// TestRunFlushesOnStop: a graceful stop (SIGTERM cancels run's context)
// writes the last usage counts, though the flush interval is an hour
// away, and loses no log line.
func TestRunFlushesOnStop(t *testing.T) {
	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient("stop-client", "stop-secret")
	upstream := httptest.NewServer(fake)
	defer upstream.Close()
	dir := t.TempDir()
	logs := &testlog.Buffer{}
	base, stop := startRun(t, map[string]string{"HEXAGON_URL": upstream.URL, "USAGE_DIR": dir, "USAGE_FLUSH": "1h"}, logs)
	const tiles = 3
	getTiles(t, base, "stop-client", "stop-secret", tiles)
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if n := redirectedIn(t, dir); n != tiles {
		t.Fatalf("after a graceful stop the usage rows hold %d redirected tiles, want %d", n, tiles)
	}
	out := logs.String()
	if n := strings.Count(out, `"status":302`); n != tiles || !strings.Contains(out, `"msg":"stopped"`) {
		t.Fatalf("a graceful stop lost log lines (%d tile request lines of %d):\n%s", n, tiles, out)
	}
}

// A process restarted on the same machine (the same WEBSITE_INSTANCE_ID)
// adds to what its predecessor counted instead of overwriting it.
func TestRunKeepsCountsAcrossARestart(t *testing.T) {
	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient("restart-client", "restart-secret")
	upstream := httptest.NewServer(fake)
	defer upstream.Close()
	dir := t.TempDir()
	for i, tiles := range []int{5, 1} {
		env := map[string]string{"HEXAGON_URL": upstream.URL, "USAGE_DIR": dir, "USAGE_FLUSH": "1h", "WEBSITE_INSTANCE_ID": "worker-1"}
		base, stop := startRun(t, env, io.Discard)
		getTiles(t, base, "restart-client", "restart-secret", tiles)
		if err := stop(); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if n := redirectedIn(t, dir); n != 6 {
		t.Fatalf("two processes on one machine counted 5 and 1 tiles; the rows hold %d", n)
	}
}

// A request in flight when the stop signal comes is answered: the token
// it is waiting for still arrives, though the signal has ended the
// listener.
func TestRunAnswersRequestsInFlightAtStop(t *testing.T) {
	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient("late-client", "late-secret")
	fake.Set(fakehexagon.Switches{TokenDelay: 500 * time.Millisecond})
	upstream := httptest.NewServer(fake)
	defer upstream.Close()
	base, stop := startRun(t, map[string]string{"HEXAGON_URL": upstream.URL, "USAGE": "off"}, io.Discard)
	answered := make(chan int, 1)
	go func() {
		resp, err := redirects.Get(base + "/wmts/" + credential.Encode("late-client") + "/" + credential.Encode("late-secret") + "/1.0.0/HxGN_Imagery/default/WebMercator/1/0/0.jpg")
		if err != nil {
			t.Error(err)
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	for fake.TokenRequests.Load() == 0 { // the request is waiting for its token
		time.Sleep(5 * time.Millisecond)
	}
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	if status := <-answered; status != http.StatusFound {
		t.Fatalf("a request in flight at the stop signal got %d, want 302", status)
	}
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// LISTEN_ADDRESS=127.0.0.1 listens on loopback alone: the proxy is not
// reached through another address of the machine (127.0.0.2, which Linux
// routes to loopback too, or an interface's own), though without the
// setting it is.
func TestRunListensOnlyOnListenAddress(t *testing.T) {
	fake := fakehexagon.New(fakehexagon.Options{})
	upstream := httptest.NewServer(fake)
	defer upstream.Close()
	reaches := func(addr, port string) bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, port), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}

	// Every interface: the other addresses reach it.
	base, stop := startRun(t, map[string]string{"HEXAGON_URL": upstream.URL}, io.Discard)
	port := base[strings.LastIndex(base, ":")+1:]
	var others []string
	candidates := []string{"127.0.0.2"}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				candidates = append(candidates, ipn.IP.String())
			}
		}
	}
	for _, a := range candidates {
		if reaches(a, port) {
			others = append(others, a)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(others) == 0 && runtime.GOOS == "linux" {
		// 127.0.0.2 is loopback on Linux: a server on every interface is
		// always reached through it, so none means it did not listen there.
		t.Fatalf("the proxy without LISTEN_ADDRESS was reached through none of %v", candidates)
	}
	if len(others) == 0 {
		t.Skipf("this machine has no address but 127.0.0.1 that reaches a server on every interface (tried %v)", candidates)
	}

	logs := &testlog.Buffer{}
	base, stop = startRun(t, map[string]string{"HEXAGON_URL": upstream.URL, "LISTEN_ADDRESS": "127.0.0.1"}, logs)
	port = base[strings.LastIndex(base, ":")+1:]
	for _, a := range others {
		if reaches(a, port) {
			t.Errorf("with LISTEN_ADDRESS=127.0.0.1 the proxy is reached through %s", a)
		}
	}
	if err := stop(); err != nil { // writes the buffered log lines
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"addr":"127.0.0.1:`+port+`"`) || !strings.Contains(logs.String(), `"listen_address":"127.0.0.1"`) {
		t.Fatalf("the start-up line does not say where it listens:\n%s", logs.String())
	}
	t.Logf("reached through %v on every interface, through none with LISTEN_ADDRESS=127.0.0.1", others)
}
