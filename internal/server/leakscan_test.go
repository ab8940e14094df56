package server_test

import (
	"compress/gzip"
	"compress/zlib"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/fakeprovider/faketest"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/fakeprovider/nearmap"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/provider"
)

// The leak scan (issue 23): for every provider a /v2 key may name, one
// battery of requests — both capabilities forms, tiles, WMS maps and
// feature information, the about page, HEAD and OPTIONS, credentials a
// client smuggles in every spelling, paths that try to escape, and the
// provider in every documented trouble — and every status line, header,
// body and log line they cause scanned with provider.Reveals for every
// upstream credential the world holds (keys, usernames, passwords, every
// token the fake issued). What reached the provider is recorded too: no
// smuggled credential may get there, and refused paths may not get
// there at all.
//
// A provider is one row of leakRows: a function that starts its world
// (see leakWorld) and names its requests; the battery every provider
// shares (commonLeakBattery) is built from the world's paths and
// profile. Adding one (an operator's generic profile, say) is a row
// such as {"acme", acmeLeakWorld} and that function, written as
// nearmapLeakWorld is: start each of the fake's hosts with up.serve
// (up.auth naming its token or login path, if any), point the proxy at
// them with newKeyHarness(t, leakEnv(its PROVIDER_* settings), …), add a
// key with leakKey, and return the leakWorld: its secrets (the key, or
// the login and every token the fake issued), its capabilities and tile
// paths (and WMS paths, if it has WMS), builtin(t, name), its own
// requests, and its fake's switches as trouble.

// leakRows are the providers the scan covers, Hexagon's /v2 keys among
// them for comparison.
var leakRows = []struct {
	name  string
	world func(t *testing.T) *leakWorld
}{
	{"planet", planetLeakWorld},
	{"nearmap", nearmapLeakWorld},
	{"vexcel", vexcelLeakWorld},
	{"maxar key", func(t *testing.T) *leakWorld { return maxarLeakWorld(t, false) }},
	{"maxar login", func(t *testing.T) *leakWorld { return maxarLeakWorld(t, true) }},
	{"operator's oauth2", operatorLeakWorld},
	{"hexagon", hexagonLeakWorld},
}

// leakWorld is one provider's world: a proxy (the harness's, logs and
// all) beside the provider's fake, whose every server is behind up.
type leakWorld struct {
	h   *harness
	key string       // the /v2 key under test
	up  *upstreamLog // every request that reached the provider
	// secrets returns every upstream credential the world holds, by a
	// name the failure messages use (never the value), as of now: it is
	// called after every request, so tokens issued meanwhile count.
	secrets func() []leakSecret
	// caps is a capabilities path of the key (below the proxy's address)
	// and tile a path the provider answers with an image: the common
	// battery's HEAD, OPTIONS and smuggled credentials go to them.
	caps, tile string
	// wmsCaps, getMap and featureInfo are WMS GetCapabilities, GetMap
	// and GetFeatureInfo paths of the key; "": the provider has no WMS.
	wmsCaps, getMap, featureInfo string
	// profile is the provider's; nil for Hexagon, whose paths are its own.
	profile *provider.Profile
	// requests are the provider's own (capabilities forms, tiles, maps,
	// feature information, its escapes); trouble are its fake's failure
	// switches, run last in order (refusals last of all: a refused
	// credential is remembered).
	requests, trouble []leakReq

	noted   map[string]bool // secrets handed to the harness's log check
	logMark int             // how much of the logs the scan has read
}

type leakSecret struct{ name, value string }

// reach says whether a request must, must not, or may reach the provider.
type reach int

const (
	reachAny reach = iota
	reachYes
	reachNo
)

// leakReq is one request of the battery.
type leakReq struct {
	name   string
	method string // "": GET
	path   string // below the proxy's address, escapes as written
	header map[string]string
	status int // the status wanted
	reach  reach
	// asks, if not "", is a path that must be among those the provider
	// was asked for: the login or token endpoint a trouble case claims
	// to exercise.
	asks string
	// logs, if not "", must be in the request's log lines.
	logs string
	// smuggled are credentials the client sent, which must not reach the
	// provider in any spelling.
	smuggled []string
	// set, if not nil, switches the fake before the request; reset after.
	set, reset func()
	// cut: the answer must break off (a short tile never passes for a
	// whole one); status is not checked.
	cut bool
}

func TestNoUpstreamCredentialLeaks(t *testing.T) {
	var total atomic.Int64
	t.Cleanup(func() { t.Logf("leak scan: %d providers, %d requests", len(leakRows), total.Load()) })
	for _, row := range leakRows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel() // worlds share nothing; the slow fakes' waits overlap
			w := row.world(t)
			w.noted = map[string]bool{}
			battery := append(append(append([]leakReq(nil), w.requests...), commonLeakBattery(w)...), w.trouble...)
			// What the proxy says of itself, once all that has happened.
			battery = append(battery,
				leakReq{name: "health, after it all", path: "/healthz", status: 200, reach: reachNo},
				leakReq{name: "home page, after it all", path: "/", header: map[string]string{"Accept": "text/html"}, status: 200, reach: reachNo})
			for _, rq := range battery {
				w.run(t, rq)
			}
			// Lines written after the last request's scan.
			time.Sleep(50 * time.Millisecond)
			rest := w.h.logs.String()[w.logMark:]
			for _, s := range w.secrets() {
				if provider.Reveals([]byte(rest), s.value) {
					t.Errorf("the %s is in the logs, after the last request", s.name)
				}
			}
			total.Add(int64(len(battery)))
			t.Logf("%s: %d requests, %d upstream requests (logins included)", row.name, len(battery), w.up.count())
		})
	}
}

// commonLeakBattery is what every provider is asked: the about page,
// HEAD and OPTIONS, a credential smuggled in every spelling (query and
// headers), answers from an upstream that echoes the request (errors,
// documents, feature information, headers, a redirect, a hang-up, a cut),
// a provider without WMS asked for one, and, for pass-through profiles,
// paths that try to leave each host's allowed prefixes and an unknown
// role.
func commonLeakBattery(w *leakWorld) []leakReq {
	v2 := "/v2/wmts/" + w.key
	rs := []leakReq{
		{name: "about page", path: "/about/" + w.key, header: map[string]string{"Accept": "text/html"}, status: 200},
		{name: "about page, JSON", path: "/about/" + w.key, header: map[string]string{"Accept": "application/json"}, status: 200},
		{name: "HEAD about page", method: "HEAD", path: "/about/" + w.key, status: 200},
		{name: "HEAD capabilities", method: "HEAD", path: w.caps, status: 200, reach: reachYes},
		{name: "HEAD tile", method: "HEAD", path: w.tile, status: 200, reach: reachYes},
		{name: "OPTIONS preflight of a tile", method: "OPTIONS", path: w.tile, header: map[string]string{"Origin": allowed, "Access-Control-Request-Method": "GET"}, status: 204, reach: reachNo},
		{name: "OPTIONS without Origin", method: "OPTIONS", path: w.caps, status: 204, reach: reachNo},
		{name: "tile from a browser", path: w.tile, header: map[string]string{"Origin": allowed}, status: 200, reach: reachYes},
	}
	// A credential of the client's own, in every spelling a server could
	// read as one: each must be dropped, the tile served with the key's.
	sep := querySep(w.tile)
	// Issue 23 names apikey, api_key, token and maxar_api_key in any
	// case; the rest (x-api-key among them, in CommonStrip) come from
	// the profile's StripAll.
	names := []string{"apikey", "API_KEY", "Api_Key", "token", "TOKEN", "maxar_api_key", "MAXAR_API_KEY", "access_token",
		"api%5Fkey", "Api%5fKey", "api%255Fkey", "api_key%5B%5D", "%20api_key", "AuthToken"}
	if w.profile != nil {
		for _, n := range w.profile.StripAll() {
			names = append(names, n, strings.ToUpper(n))
		}
	}
	for i, name := range names {
		v := fmt.Sprintf("smuggled%02d-cred", i)
		rs = append(rs, leakReq{name: "smuggled " + name + " on a tile", path: w.tile + sep + name + "=" + v, status: 200, reach: reachYes, smuggled: []string{v}})
	}
	rs = append(rs,
		leakReq{name: "smuggled api_key twice", path: w.tile + sep + "api_key=smuggledA-cred&api_key=smuggledB-cred", status: 200, reach: reachYes, smuggled: []string{"smuggledA-cred", "smuggledB-cred"}},
		leakReq{name: "smuggled in three spellings", path: w.tile + sep + "token=smuggledC-cred&TOKEN=smuggledD-cred&apikey=smuggledE-cred", status: 200, reach: reachYes, smuggled: []string{"smuggledC-cred", "smuggledD-cred", "smuggledE-cred"}},
		leakReq{name: "smuggled headers", path: w.tile, status: 200, reach: reachYes, smuggled: []string{"smuggledH1-cred", "smuggledH2-cred", "smuggledH3-cred"},
			header: map[string]string{"Authorization": "Bearer smuggledH1-cred", "X-API-KEY": "smuggledH2-cred", "Cookie": "token=smuggledH3-cred"}},
		leakReq{name: "smuggled on capabilities", path: w.caps + querySep(w.caps) + "api_key=smuggledK-cred&Token=smuggledL-cred", status: 200, reach: reachYes, smuggled: []string{"smuggledK-cred", "smuggledL-cred"}},
	)
	// A careless upstream that writes the request back, key, path and
	// Authorization, into what it answers: none of it may be relayed.
	echo := func(name, path string, status int, a echoAnswer) leakReq {
		set, reset := w.up.echoing(a)
		return leakReq{name: "the provider echoes the request " + name, path: path, status: status, reach: reachYes, set: set, reset: reset}
	}
	// A tile cut short reaches the client cut short, whatever it carried.
	cutTile := echo("in a tile cut short", w.tile, 0, echoAnswer{status: 200, contentType: "image/png", cut: true})
	cutTile.cut = true
	cutTile.logs = "response aborted: Hexagon's answer broke off" // named for whose answer it was
	if w.profile != nil {
		cutTile.logs = "response aborted: " + w.profile.Title + "'s answer broke off"
	}
	// A 200 carrying an OGC exception where an image was asked for: the
	// client's 400 from another provider, a 502 from Hexagon.
	exception := 502
	if w.profile != nil {
		exception = 400
	}
	rs = append(rs,
		echo("in a 400", w.tile, 400, echoAnswer{status: 400, contentType: "text/plain"}),
		echo("in a 404 in JSON", w.tile, 404, echoAnswer{status: 404, contentType: "application/json", body: `{"message":%q}`}),
		echo("in a 500 HTML page", w.tile, 502, echoAnswer{status: 500, contentType: "text/html", body: "<html><body><p>%s</p></body></html>"}),
		echo("in a 429's headers the proxy does not relay", w.tile, 429, echoAnswer{status: 429, contentType: "text/plain", body: "slow down%.0s",
			headers: []string{"Warning", "Link", "Content-Location", "Set-Cookie", "Location", "Server"}}),
		echo("in a tile's headers the proxy does not relay", w.tile, 200, echoAnswer{status: 200, contentType: "image/png", body: "\x89PNG%.0s",
			headers: []string{"Content-Location", "Content-Disposition", "Link", "Set-Cookie", "Location", "Warning", "Server", "X-Cache", "Content-Language", "Access-Control-Allow-Origin"}}),
		echo("in a tile that is a WMTS exception", w.tile, exception, echoAnswer{status: 200, contentType: "application/xml",
			body: `<?xml version="1.0"?><ExceptionReport xmlns="http://www.opengis.net/ows/1.1"><Exception exceptionCode="InvalidParameterValue"><ExceptionText>%s</ExceptionText></Exception></ExceptionReport>`}),
		echo("in a redirect", w.tile, 502, echoAnswer{status: 302, contentType: "text/html", headers: []string{"Location", "Refresh"}}),
		echo("and hangs up: tile", w.tile, 502, echoAnswer{hangup: true}),
		echo("and hangs up: capabilities", w.caps, 502, echoAnswer{hangup: true}),
		cutTile,
		echo("in capabilities cut short", w.caps, 502, echoAnswer{status: 200, contentType: "application/xml", cut: true}),
		echo("in its capabilities", w.caps, 200, echoAnswer{status: 200, contentType: "application/xml",
			body: `<?xml version="1.0"?><Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" version="1.0.0"><ows:ServiceIdentification><ows:Abstract>%s</ows:Abstract></ows:ServiceIdentification></Capabilities>`}),
	)
	// Headers the relay passes (checkUpstreamResponse's, a profile's
	// Pass such as Nearmap's X-Ratelimit-*, a 429's Retry-After) whose
	// values echo the credential are dropped: the tile still comes.
	rs = append(rs,
		echo("in a 429's headers", w.tile, 429, echoAnswer{status: 429, contentType: "text/plain",
			headers: []string{"Retry-After", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"}}),
		echo("in a tile's headers", w.tile, 200, echoAnswer{status: 200, contentType: "image/png", body: "\x89PNG%.0s",
			headers: []string{"Age", "Cache-Control", "Content-Encoding", "ETag", "Expires", "Last-Modified", "Retry-After", "Vary", "X-Ratelimit-Limit"}}),
	)
	// Not a case at all: a raster body is streamed unread, so a tile
	// whose bytes carry the credential reaches the client as it is.
	if w.wmsCaps != "" {
		rs = append(rs, echo("in its WMS capabilities", w.wmsCaps, 200, echoAnswer{status: 200, contentType: "application/vnd.ogc.wms_xml",
			body: `<?xml version="1.0"?><WMT_MS_Capabilities version="1.1.1"><Service><Name>OGC:WMS</Name><Abstract>%s</Abstract></Service></WMT_MS_Capabilities>`}))
	}
	if w.featureInfo != "" {
		rs = append(rs, echo("in feature information as HTML", w.featureInfo, 502, echoAnswer{status: 200, contentType: "text/html", body: "<p>%s</p>"}))
	}
	// Text a key's holder would get (feature information, a WMS
	// exception) is read whole and relayed only when it shows the
	// credential in no spelling (deliver.go, relayChecked): Hexagon's as
	// every provider's. A provider's 200 exception is the client's 400
	// without its text; Hexagon's, relayed as WMS clients expect, is
	// stopped when it echoes the token.
	if w.featureInfo != "" {
		rs = append(rs, echo("in feature information", w.featureInfo, 502, echoAnswer{status: 200, contentType: "text/plain"}))
		// A client that accepts gzip (a browser, QGIS) has the header
		// forwarded: the check must read the text, not its compression.
		gz := echo("in gzipped feature information", w.featureInfo, 502, echoAnswer{status: 200, contentType: "text/plain", gzip: true})
		gz.header = map[string]string{"Accept-Encoding": "gzip"}
		// One that answers in a coding not asked for cannot be checked.
		df := echo("in feature information in a coding not asked for", w.featureInfo, 502, echoAnswer{status: 200, contentType: "text/plain", deflate: true})
		// And clean text from it still comes, decoded by the proxy's
		// transport, to a client that accepts gzip.
		clean := echo("nothing in gzipped feature information", w.featureInfo, 200, echoAnswer{status: 200, contentType: "text/plain", gzip: true, body: "no features here%.0s"})
		clean.header = gz.header
		rs = append(rs, gz, df, clean)
	}
	if w.getMap != "" {
		status := 400
		if w.profile == nil {
			status = 502
		}
		rs = append(rs, echo("in a WMS exception", w.getMap, status, echoAnswer{status: 200, contentType: "application/vnd.ogc.se_xml",
			body: `<?xml version="1.0"?><ServiceExceptionReport version="1.1.1"><ServiceException code="InvalidFormat">%s</ServiceException></ServiceExceptionReport>`}))
	}
	if w.profile == nil {
		return rs
	}
	// Pass-through paths that try to escape: refused before any call.
	for _, host := range w.profile.Hosts {
		for _, prefix := range host.Allowed {
			p := v2 + "/~" + host.Role + prefix
			rs = append(rs,
				leakReq{name: "~" + host.Role + ": dot-dot", path: p + "/../../etc/passwd", status: 404, reach: reachNo},
				leakReq{name: "~" + host.Role + ": escaped dot-dot", path: p + "/%2e%2e/%2E%2E/x", status: 404, reach: reachNo},
				leakReq{name: "~" + host.Role + ": escaped slash", path: p + "/a%2F..%2F..%2Fx", status: 404, reach: reachNo},
				leakReq{name: "~" + host.Role + ": escaped backslash", path: p + "/..%5C..%5Cx", status: 404, reach: reachNo},
				leakReq{name: "~" + host.Role + ": outside the prefix", path: v2 + "/~" + host.Role + "/etc/passwd", status: 404, reach: reachNo},
				leakReq{name: "~" + host.Role + ": prefix not at a segment", path: p + "X/1", status: 404, reach: reachNo},
			)
		}
	}
	rs = append(rs,
		leakReq{name: "unknown role", path: v2 + "/~evil" + w.profile.Hosts[0].Allowed[0] + "/x", status: 404, reach: reachNo},
		leakReq{name: "empty role", path: v2 + "/~" + w.profile.Hosts[0].Allowed[0], status: 404, reach: reachNo},
		leakReq{name: "not the pass-through form", path: v2 + "/1.0.0/x/default/y/1/2/3.png", status: 404, reach: reachNo},
	)
	if w.profile.WMS == nil {
		rs = append(rs, leakReq{name: "WMS of a provider without one", path: "/v2/wms/" + w.key + "?SERVICE=WMS&REQUEST=GetCapabilities", status: 404, reach: reachNo})
	}
	return rs
}

// querySep is what joins one more parameter to path.
func querySep(p string) string {
	if strings.Contains(p, "?") {
		return "&"
	}
	return "?"
}

// run sends rq and scans everything it caused.
func (w *leakWorld) run(t *testing.T, rq leakReq) {
	t.Helper()
	h := w.h
	if rq.set != nil {
		rq.set()
	}
	if rq.reset != nil {
		defer rq.reset()
	}
	method := rq.method
	if method == "" {
		method = http.MethodGet
	}
	logsAtStart := h.logs.String()
	upBefore := w.up.count()
	req, err := http.NewRequest(method, h.proxy.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque, req.URL.RawQuery, _ = strings.Cut(rq.path, "?")
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	var status int
	var body string
	var bodyBroke bool
	var where []leakPlace
	resp, err := h.client.Do(req)
	if err != nil {
		// An error the client sees is scanned as well.
		where = append(where, leakPlace{"the client's error", err.Error()})
	} else {
		var rerr error
		body, rerr = readAll(resp)
		if rerr == nil {
			body, rerr = decoded(resp.Header.Get("Content-Encoding"), body)
		}
		status = resp.StatusCode
		where = append(where, leakPlace{"the status line", resp.Status}, leakPlace{"the body", body})
		for name, vs := range resp.Header {
			for _, v := range vs {
				where = append(where, leakPlace{"header " + name, v})
			}
		}
		for name, vs := range resp.Trailer {
			for _, v := range vs {
				where = append(where, leakPlace{"trailer " + name, v})
			}
		}
		if rerr != nil {
			bodyBroke = true
			where = append(where, leakPlace{"the body's read error", rerr.Error()})
		}
	}
	// The request's log line is written as the handler returns, which can
	// be after the client has read the answer.
	// Every line after the last request's scan is this one's: a line
	// written late is scanned all the same.
	logs := waitLogLine(h, logsAtStart)
	ownLogs := logs[w.logMark:]
	w.logMark = len(logs)
	where = append(where, leakPlace{"the logs", ownLogs})

	secrets := w.secrets()
	for _, s := range secrets {
		if !w.noted[s.value] { // the harness's end-of-test log check too
			h.noteSecret(s.value)
			w.noted[s.value] = true
		}
		for _, p := range where {
			if provider.Reveals([]byte(p.text), s.value) {
				t.Errorf("%s (%s %s): the %s is in %s", rq.name, method, rq.path, s.name, p.where)
			}
		}
	}
	switch {
	case rq.cut && err == nil && !bodyBroke:
		t.Errorf("%s: the answer (status %d) did not break off", rq.name, status)
	case rq.cut:
	case err != nil:
		t.Errorf("%s: %s", rq.name, masked(err.Error(), secrets))
		return
	case status != rq.status:
		t.Errorf("%s (%s %s): status %d, want %d\nbody: %.600s\nlogs: %.1500s", rq.name, method, rq.path, status, rq.status,
			masked(body, secrets), masked(ownLogs, secrets))
	}
	got := w.up.since(upBefore)
	switch {
	case rq.reach == reachYes && len(got) == 0:
		t.Errorf("%s: nothing reached the provider", rq.name)
	case rq.reach == reachNo && len(got) != 0:
		t.Errorf("%s: %d requests reached the provider (first %s)", rq.name, len(got), masked(got[0].uri, secrets))
	}
	if rq.logs != "" && !strings.Contains(ownLogs, rq.logs) {
		t.Errorf("%s: the log does not say %q:\n%s", rq.name, rq.logs, masked(ownLogs, secrets))
	}
	if rq.asks != "" && !askedFor(got, rq.asks) {
		t.Errorf("%s: the provider was not asked for %s", rq.name, rq.asks)
	}
	for _, v := range rq.smuggled {
		for _, u := range got {
			if where := u.reveals(v); where != "" {
				t.Errorf("%s: the client's %q reached the provider in %s: %s", rq.name, v, where, masked(u.uri, secrets))
			}
		}
	}
}

// masked is text for a failure message: each secret, as is or escaped,
// replaced by its name; text that still shows one is withheld whole.
func masked(text string, secrets []leakSecret) string {
	for _, s := range secrets {
		for _, v := range []string{s.value, url.PathEscape(s.value), url.QueryEscape(s.value)} {
			text = regexp.MustCompile(`(?i)`+regexp.QuoteMeta(v)).ReplaceAllLiteralString(text, "{"+s.name+"}")
		}
	}
	for _, s := range secrets {
		if provider.Reveals([]byte(text), s.value) {
			return "(withheld: it shows the " + s.name + ")"
		}
	}
	return text
}

type leakPlace struct{ where, text string }

// askedFor reports whether one of got was for path.
func askedFor(got []upstreamRequest, path string) bool {
	for _, u := range got {
		if p, _, _ := strings.Cut(u.uri, "?"); p == path {
			return true
		}
	}
	return false
}

// decoded is body as a client that decodes coding sees it.
func decoded(coding, body string) (string, error) {
	var zr io.Reader
	var err error
	switch coding {
	case "gzip":
		zr, err = gzip.NewReader(strings.NewReader(body))
	case "deflate":
		zr, err = zlib.NewReader(strings.NewReader(body))
	default:
		return body, nil
	}
	if err != nil {
		return body, err
	}
	var b strings.Builder
	_, err = io.Copy(&b, zr)
	return b.String(), err
}

// readAll reads and closes the body, keeping what came before an error.
func readAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	var b strings.Builder
	_, err := io.Copy(&b, resp.Body)
	return b.String(), err
}

// waitLogLine waits (up to 2 s) until a request line follows before in
// the logs, and returns the logs.
func waitLogLine(h *harness, before string) string {
	deadline := time.Now().Add(2 * time.Second)
	for {
		logs := h.logs.String()
		if strings.Contains(logs[len(before):], `"msg":"request"`) || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// upstreamLog records every request that reaches a provider's servers,
// as they received it.
type upstreamLog struct {
	// auth is the provider's token or login path, which echo leaves to
	// the fake: "" for none.
	auth string

	mu   sync.Mutex
	seen []upstreamRequest
	echo *echoAnswer // nil: the fake answers
}

// echoAnswer is a careless upstream's answer: the request it got (its
// URI, where a key travels in a query or a path, and its headers, where
// a token or a header key travels) written back into the body, or into
// headers.
type echoAnswer struct {
	status      int
	contentType string
	headers     []string // headers that carry the echo too
	// body is a format with one %s for the echo; "": the echo alone.
	body string
	// hangup closes the connection instead of answering; cut sends half
	// of a declared body, then closes it.
	hangup, cut bool
	// gzip compresses the answer (Content-Encoding: gzip) when the
	// request accepts it, as most servers do for text; deflate compresses
	// it (Content-Encoding: deflate) whatever was asked.
	gzip, deflate bool
}

// echoing returns a leakReq's set and reset that make up answer with a.
func (u *upstreamLog) echoing(a echoAnswer) (set, reset func()) {
	return func() { u.mu.Lock(); u.echo = &a; u.mu.Unlock() },
		func() { u.mu.Lock(); u.echo = nil; u.mu.Unlock() }
}

type upstreamRequest struct {
	uri    string // the request URI as it arrived, escapes kept
	header http.Header
}

// reveals says where v shows in the request, its URI or a header; ""
// when nowhere.
func (u upstreamRequest) reveals(v string) string {
	if provider.Reveals([]byte(u.uri), v) {
		return "the URI"
	}
	for name, vs := range u.header {
		for _, s := range vs {
			if provider.Reveals([]byte(name+": "+s), v) {
				return "header " + name
			}
		}
	}
	return ""
}

// serve starts a server on a port of its own whose every request is
// recorded and then handed to handler(), called per request so that the
// fake may be made after the address is known.
func (u *upstreamLog) serve(t *testing.T, handler func() http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, upstreamRequest{uri: r.RequestURI, header: r.Header.Clone()})
		echo := u.echo
		u.mu.Unlock()
		if echo == nil || u.auth != "" && r.URL.Path == u.auth {
			handler().ServeHTTP(rw, r)
			return
		}
		// Its URI and every header (Authorization, Maxar's maxar-api-key,
		// an operator's own), as a debugging page would show them.
		said := "request " + r.RequestURI
		for _, k := range slices.Sorted(maps.Keys(r.Header)) {
			said += " " + strings.ToLower(k) + " " + strings.Join(r.Header[k], ",")
		}
		if echo.hangup {
			conn, _, err := http.NewResponseController(rw).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		if echo.cut {
			rw.Header().Set("Content-Type", echo.contentType)
			rw.Header().Set("Content-Length", strconv.Itoa(2*len(said)))
			rw.WriteHeader(echo.status)
			io.WriteString(rw, said)
			http.NewResponseController(rw).Flush()
			if conn, _, err := http.NewResponseController(rw).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		for _, h := range echo.headers {
			rw.Header().Set(h, said)
		}
		rw.Header().Set("Content-Type", echo.contentType)
		var out io.Writer = rw
		switch {
		case echo.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip"):
			rw.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(rw)
			defer zw.Close()
			out = zw
		case echo.deflate:
			rw.Header().Set("Content-Encoding", "deflate")
			zw := zlib.NewWriter(rw)
			defer zw.Close()
			out = zw
		}
		rw.WriteHeader(echo.status)
		if echo.body == "" {
			io.WriteString(out, said)
			return
		}
		var esc strings.Builder
		xml.EscapeText(&esc, []byte(said))
		fmt.Fprintf(out, echo.body, esc.String())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (u *upstreamLog) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func (u *upstreamLog) since(n int) []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.seen[n:]...)
}

// lateHandler is an http.Handler set once its fake exists, for servers
// whose address the fake must know.
type lateHandler struct {
	mu sync.Mutex
	h  http.Handler
}

func (l *lateHandler) set(h http.Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.h = h
}

func (l *lateHandler) get() http.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h == nil {
		return http.NotFoundHandler()
	}
	return l.h
}

// leakEnv are the settings every world's proxy runs with beside its
// provider's addresses: no capabilities cache, so that every document is
// fetched (and scanned) again, and an upstream timeout the slow fakes
// (leakDelay) outlast.
func leakEnv(more map[string]string) map[string]string {
	env := map[string]string{"CAPABILITIES_TTL": "0", "UPSTREAM_TIMEOUT": "2s"}
	for k, v := range more {
		env[k] = v
	}
	return env
}

// leakDelay outlasts leakEnv's timeouts.
const leakDelay = 5 * time.Second

// leakKey adds a key for sets of provider; its contact and organisation
// name no credential.
func leakKey(h *harness, prov string, sets ...credential.Credential) string {
	return h.addKey(keys.Record{Org: "Leak Scan", Contact: "keys@leakscan.example", Provider: prov, Sets: sets})
}

func builtin(t *testing.T, name string) *provider.Profile {
	t.Helper()
	p, err := provider.Builtin(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Planet: a static key in the query, capabilities on one host and tiles
// on another; its documents carry the key in every ResourceURL.
func planetLeakWorld(t *testing.T) *leakWorld {
	up := &upstreamLog{}
	var tilesH lateHandler
	tiles := up.serve(t, tilesH.get)
	fake := planet.New(planet.Options{TilesBase: tiles.URL, APIBase: "request"})
	tilesH.set(fake.Tiles)
	api := up.serve(t, func() http.Handler { return fake.API })
	fake.AddKey(planetKey)
	h := newKeyHarness(t, leakEnv(map[string]string{"PROVIDER_PLANET_API_URL": api.URL, "PROVIDER_PLANET_TILES_URL": tiles.URL}), time.Minute)
	key := leakKey(h, "planet", credential.Credential{Provider: "planet", Secret: planetKey})
	v2 := "/v2/wmts/" + key
	tile := v2 + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[1] + "/gmap/3/2/1.png"
	// Each trouble on the capabilities and on a tile.
	trouble := func(name string, sw planet.Switches, caps, tileStatus int) []leakReq {
		set, reset := func() { fake.Set(sw) }, func() { fake.Set(planet.Switches{}) }
		return []leakReq{
			{name: name + ": capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: caps, reach: reachYes, set: set, reset: reset},
			{name: name + ": tile", path: tile, status: tileStatus, reach: reachYes, set: set, reset: reset},
		}
	}
	w := &leakWorld{h: h, key: key, up: up, profile: builtin(t, "planet"),
		caps: v2 + "/1.0.0/WMTSCapabilities.xml", tile: tile,
		secrets: func() []leakSecret { return []leakSecret{{"Planet key", planetKey}} },
		requests: []leakReq{
			{name: "REST capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes},
			{name: "KVP capabilities", path: v2 + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "the route alone", path: v2, status: 200, reach: reachYes},
			{name: "the GetCapabilities href", path: v2 + "/~api" + planet.CapabilitiesPath + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "tile", path: tile, status: 200, reach: reachYes},
			{name: "tile of the other mosaic", path: v2 + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[0] + "/gmap/0/0/0.png", status: 200, reach: reachYes},
			{name: "a mosaic the key may not see", path: v2 + "/~tiles" + planet.TilesPath + "/no_such_mosaic/gmap/3/2/1.png", status: 404, reach: reachYes},
			{name: "a tile outside the grid", path: v2 + "/~tiles" + planet.TilesPath + "/" + planet.DefaultMosaics[1] + "/gmap/1/9/9.png", status: 404, reach: reachYes},
		},
	}
	w.trouble = append(w.trouble, trouble("429 with Retry-After", planet.Switches{Status: 429, RetryAfter: "7"}, 429, 429)...)
	w.trouble = append(w.trouble, trouble("500", planet.Switches{Status: 500}, 502, 502)...)
	w.trouble = append(w.trouble, trouble("503", planet.Switches{Status: 503, RetryAfter: "120"}, 502, 502)...)
	w.trouble = append(w.trouble, trouble("slower than UPSTREAM_TIMEOUT", planet.Switches{Delay: leakDelay}, 504, 504)...)
	revoke, restore := func() { fake.RevokeKey(planetKey) }, func() { fake.AddKey(planetKey) }
	w.trouble = append(w.trouble,
		leakReq{name: "key refused with 404: tile", path: tile, status: 404, reach: reachYes,
			set: func() { revoke(); fake.Set(planet.Switches{BadKeyStatus: 404}) }, reset: func() { restore(); fake.Set(planet.Switches{}) }},
		leakReq{name: "key refused: capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 403, reach: reachAny, set: revoke, reset: restore},
		leakReq{name: "key refused: tile", path: tile, status: 403, reach: reachAny, set: revoke, reset: restore},
	)
	return w
}

// Nearmap: a static key as a path segment, WMTS and WMS on two hosts
// (one server here); its documents carry the key in every path, and its
// errors are 200s carrying an OGC exception.
func nearmapLeakWorld(t *testing.T) *leakWorld {
	up := &upstreamLog{}
	fake := nearmap.New(nearmap.Options{})
	srv := up.serve(t, func() http.Handler { return fake })
	fake.AddKey(nearmapKey)
	h := newKeyHarness(t, leakEnv(map[string]string{"PROVIDER_NEARMAP_WMTS_URL": srv.URL, "PROVIDER_NEARMAP_API_URL": srv.URL}), time.Minute)
	key := leakKey(h, "nearmap", credential.Credential{Provider: "nearmap", Secret: nearmapKey})
	v2, wms := "/v2/wmts/"+key, "/v2/wms/"+key
	tile := v2 + "/~wmts/maps/api/wmts/v1/1.0.0/nearmap.com/default/GoogleMapsCompatible/5/10/12.jpg"
	gm := wms + "/~api/wms/v1/latest?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetMap&LAYERS=" + url.QueryEscape(nearmap.WMSLayer) +
		"&STYLES=&SRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	gfi := wms + "?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=x&QUERY_LAYERS=x&X=1&Y=1&WIDTH=2&HEIGHT=2&SRS=EPSG:3857&BBOX=0,0,1,1&INFO_FORMAT=text/plain"
	trouble := func(name string, sw nearmap.Switches, status int) []leakReq {
		set, reset := func() { fake.Set(sw) }, func() { fake.Set(nearmap.Switches{}) }
		return []leakReq{
			{name: name + ": WMTS capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": WMS capabilities", path: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1", status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": tile", path: tile, status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": GetMap", path: gm, status: status, reach: reachYes, set: set, reset: reset},
		}
	}
	w := &leakWorld{h: h, key: key, up: up, profile: builtin(t, "nearmap"),
		caps: v2 + "/1.0.0/WMTSCapabilities.xml", tile: tile, getMap: gm, featureInfo: gfi,
		wmsCaps: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1",
		secrets: func() []leakSecret { return []leakSecret{{"Nearmap key", nearmapKey}} },
		requests: []leakReq{
			{name: "REST capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes},
			{name: "KVP capabilities", path: v2 + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "WMS capabilities 1.1.1", path: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1", status: 200, reach: reachYes},
			{name: "WMS capabilities, no version", path: wms + "?SERVICE=WMS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "WMS capabilities by the document's href", path: wms + "/~api/wms/v1/latest?SERVICE=WMS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "tile", path: tile, status: 200, reach: reachYes},
			{name: "KVP tile", path: v2 + "/~wmts/maps/api/wmts/v1?SERVICE=WMTS&REQUEST=GetTile&LAYER=nearmap.com&STYLE=default&TILEMATRIXSET=GoogleMapsCompatible&TILEMATRIX=5&TILEROW=10&TILECOL=12&FORMAT=image/jpeg", status: 200, reach: reachYes},
			{name: "a tile outside the grid", path: v2 + "/~wmts/maps/api/wmts/v1/1.0.0/nearmap.com/default/GoogleMapsCompatible/1/9/9.jpg", status: 404, reach: reachYes},
			{name: "GetMap", path: gm, status: 200, reach: reachYes},
			{name: "GetMap on the route", path: wms + "?" + strings.SplitN(gm, "?", 2)[1], status: 200, reach: reachYes},
			{name: "GetMap answered 200 with an OGC exception", path: strings.Replace(gm, url.QueryEscape(nearmap.WMSLayer), "NoSuchLayer", 1), status: 400, reach: reachYes},
			{name: "GetFeatureInfo (an OGC exception)", path: gfi, status: 400, reach: reachYes},
			{name: "GetLegendGraphic (an OGC exception)", path: wms + "?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetLegendGraphic&LAYER=" + url.QueryEscape(nearmap.WMSLayer) + "&FORMAT=image/png", status: 400, reach: reachYes},
			{name: "an operation WMS lacks", path: wms + "?SERVICE=WMS&REQUEST=Transaction", status: 400, reach: reachNo},
			{name: "a client's key in the tile's path", path: v2 + "/~wmts/maps/api/wmts/v1/apikey/smuggledP-cred/1.0.0/nearmap.com/default/GoogleMapsCompatible/5/10/12.jpg", status: 200, reach: reachYes, smuggled: []string{"smuggledP-cred"}},
			{name: "a client's key in the path, escaped", path: v2 + "/~wmts/maps/api/wmts/v1/%61pikey/smuggledQ-cred/1.0.0/nearmap.com/default/GoogleMapsCompatible/5/10/12.jpg", status: 200, reach: reachYes, smuggled: []string{"smuggledQ-cred"}},
			{name: "a client's key in the map's path", path: wms + "/~api/wms/v1/latest/APIKEY/smuggledR-cred?" + strings.SplitN(gm, "?", 2)[1], status: 200, reach: reachYes, smuggled: []string{"smuggledR-cred"}},
		},
	}
	w.trouble = append(w.trouble, trouble("429 with Retry-After", nearmap.Switches{Status: 429, RetryAfter: "30"}, 429)...)
	w.trouble = append(w.trouble, trouble("500", nearmap.Switches{Status: 500}, 502)...)
	w.trouble = append(w.trouble, trouble("slower than UPSTREAM_TIMEOUT", nearmap.Switches{Delay: leakDelay}, 504)...)
	revoke, restore := func() { fake.RevokeKey(nearmapKey) }, func() { fake.AddKey(nearmapKey); fake.Set(nearmap.Switches{}) }
	w.trouble = append(w.trouble,
		leakReq{name: "key refused as a WMS exception: GetMap", path: gm, status: 400, reach: reachYes,
			set: func() { revoke(); fake.Set(nearmap.Switches{KeyExceptions: true}) }, reset: restore},
		leakReq{name: "key refused: WMTS capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 403, reach: reachAny, set: revoke, reset: restore},
		leakReq{name: "key refused: tile", path: tile, status: 403, reach: reachAny, set: revoke, reset: restore},
		leakReq{name: "key refused: GetMap", path: gm, status: 403, reach: reachAny, set: revoke, reset: restore},
	)
	return w
}

// vexcelWrongPassword is a password Vexcel refuses: a secret all the same.
const vexcelWrongPassword = "Vx-wrong/pass+2"

// Vexcel: a username and password behind the key, logged in for a token
// sent as Bearer; the switch that makes its documents carry the token.
func vexcelLeakWorld(t *testing.T) *leakWorld {
	up := &upstreamLog{auth: vexcel.LoginPath}
	fake := vexcel.New(vexcel.Options{Base: "request"})
	fake.AddUser(vexcel.User{Username: vexcelUser, Password: vexcelPassword})
	srv := up.serve(t, func() http.Handler { return fake })
	h := newKeyHarness(t, leakEnv(map[string]string{"PROVIDER_VEXCEL_API_URL": srv.URL}), time.Minute)
	key := leakKey(h, "vexcel", credential.Credential{Provider: "vexcel", ID: vexcelUser, Secret: vexcelPassword})
	v2 := "/v2/wmts/" + key
	tile := v2 + "/~api/v2/ortho/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=urban&STYLE=RGB&TILEMATRIXSET=urban&TILEMATRIX=5&TILEROW=10&TILECOL=12&FORMAT=image/jpeg"
	trouble := func(name string, sw vexcel.Switches, status int) []leakReq {
		set, reset := func() { fake.Set(sw) }, func() { fake.Set(vexcel.Switches{}) }
		return []leakReq{
			{name: name + ": capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": tile", path: tile, status: status, reach: reachYes, set: set, reset: reset},
		}
	}
	revokeLive := func() { fake.Revoke(fake.LastToken()) }
	w := &leakWorld{h: h, key: key, up: up, profile: builtin(t, "vexcel"),
		caps: v2 + "/1.0.0/WMTSCapabilities.xml", tile: tile,
		secrets: func() []leakSecret {
			s := []leakSecret{{"Vexcel username", vexcelUser}, {"Vexcel password", vexcelPassword}, {"refused Vexcel password", vexcelWrongPassword}}
			for i, tok := range fake.Issued() {
				s = append(s, leakSecret{fmt.Sprintf("Vexcel token #%d", i+1), tok})
			}
			return s
		},
		requests: []leakReq{
			{name: "REST capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes},
			{name: "KVP capabilities", path: v2 + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "the document's GetCapabilities href", path: v2 + "/~api/v2/ortho/wmts?SERVICE=WMTS&REQUEST=GetCapabilities&VERSION=1.0.0", status: 200, reach: reachYes},
			{name: "capabilities that carry the token", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes,
				set: func() { fake.Set(vexcel.Switches{CredentialInCapabilities: true}) }, reset: func() { fake.Set(vexcel.Switches{}) }},
			{name: "tile", path: tile, status: 200, reach: reachYes},
			{name: "PNG tile of wide-area", path: strings.NewReplacer("urban", "wide-area", "image/jpeg", "image/png").Replace(tile), status: 200, reach: reachYes},
			{name: "a tile Vexcel answers 400", path: strings.Replace(tile, "STYLE=RGB", "STYLE=nope", 1), status: 400, reach: reachYes},
			{name: "token revoked: logged in again", path: tile, status: 200, reach: reachYes, asks: vexcel.LoginPath, set: revokeLive},
			{name: "WMTS capabilities, token revoked", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes, asks: vexcel.LoginPath, set: revokeLive},
		},
	}
	w.trouble = append(w.trouble, trouble("429 with Retry-After", vexcel.Switches{Status: 429, RetryAfter: "5"}, 429)...)
	w.trouble = append(w.trouble, trouble("500", vexcel.Switches{Status: 500}, 502)...)
	w.trouble = append(w.trouble, trouble("slower than UPSTREAM_TIMEOUT", vexcel.Switches{Delay: leakDelay}, 504)...)
	w.trouble = append(w.trouble,
		leakReq{name: "login answers 500", path: tile, status: 502, reach: reachYes, asks: vexcel.LoginPath,
			set: func() { revokeLive(); fake.Set(vexcel.Switches{LoginStatus: 500}) }, reset: func() { fake.Set(vexcel.Switches{}) }})
	// Refused after a fresh login: the proxy logs in no sooner than
	// token.MinRefresh, so this comes after the login cases of this key.
	w.trouble = append(w.trouble, trouble("every token refused", vexcel.Switches{Status: 403}, 403)...)
	// A password Vexcel refuses, on a key of its own (a fresh login).
	bad := leakKey(h, "vexcel", credential.Credential{Provider: "vexcel", ID: vexcelUser, Secret: vexcelWrongPassword})
	w.trouble = append(w.trouble,
		leakReq{name: "login refused", path: "/v2/wmts/" + bad + "/1.0.0/WMTSCapabilities.xml", status: 403, reach: reachYes, asks: vexcel.LoginPath},
		leakReq{name: "login refused, again", path: "/v2/wmts/" + bad + "/1.0.0/WMTSCapabilities.xml", status: 403})
	return w
}

// An operator's OAuth2 profile from PROVIDERS_FILE ("eagle"): a client
// id and secret behind the key, exchanged at a standard token endpoint
// (tokenServer, HTTP Basic) for tokens a fake Maxar's WMTS and WMS take
// as Bearer.
func operatorLeakWorld(t *testing.T) *leakWorld {
	up := &upstreamLog{}
	mx := maxar.New(maxar.Options{Base: "request"})
	mx.AddUser(maxarUser, maxarPassword)
	srv := up.serve(t, func() http.Handler { return mx })
	ts := &tokenServer{id: countyClientID, secret: countyClientSecret, maxarURL: srv.URL}
	tokenURL := faketest.Serve(t, ts)
	doc := fmt.Sprintf(`{"providers": [{"name": "eagle", "title": "Eagle Aerial", "credential": "oauth2", "token_url": %q,
	  "hosts": {"api": {"url": %q, "paths": [%q, %q]}}, "wmts": "api:%s?service=WMTS&request=GetCapabilities", "wms": "api:%s"}]}`,
		tokenURL+"/oauth2/token", srv.URL, maxar.WMTSPath, maxar.WMSPath, maxar.WMTSPath, maxar.WMSPath)
	own, err := provider.ParseProfiles([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	h := newKeyHarness(t, leakEnv(map[string]string{"PROVIDERS_FILE": providersFile(t, doc)}), time.Minute)
	key := leakKey(h, "eagle", credential.Credential{Provider: "eagle", ID: countyClientID, Secret: countyClientSecret, Client: true})
	v2, wms := "/v2/wmts/"+key, "/v2/wms/"+key
	tile := v2 + "/~api" + maxar.WMTSPath + "?" + maxarTile
	gm := wms + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=" + url.QueryEscape(maxar.Layer) + "&STYLES=&CRS=EPSG:3857&BBOX=0,0,100000,100000&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	revokeLive := func() { mx.RevokeToken(ts.lastToken()) }
	w := &leakWorld{h: h, key: key, up: up, profile: &own[0],
		caps: v2 + "/1.0.0/WMTSCapabilities.xml", tile: tile, getMap: gm,
		wmsCaps: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0",
		secrets: func() []leakSecret {
			s := []leakSecret{{"operator's client secret", countyClientSecret}, {"Maxar password of the token server", maxarPassword}}
			toks := map[string]bool{ts.lastToken(): true}
			for _, r := range up.since(0) {
				if b, ok := strings.CutPrefix(r.header.Get("Authorization"), "Bearer "); ok {
					toks[b] = true
				}
			}
			for tok := range toks {
				if tok != "" {
					s = append(s, leakSecret{"operator's token", tok})
				}
			}
			return s
		},
		requests: []leakReq{
			{name: "REST capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes},
			{name: "KVP capabilities", path: v2 + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "WMS capabilities", path: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", status: 200, reach: reachYes},
			{name: "tile", path: tile, status: 200, reach: reachYes},
			{name: "GetMap", path: gm, status: 200, reach: reachYes},
			{name: "the token endpoint through the proxy", path: v2 + "/~token/oauth2/token", status: 404, reach: reachNo},
			{name: "token revoked: a new one", path: tile, status: 200, reach: reachYes, set: revokeLive},
		},
	}
	for _, tc := range []struct {
		name   string
		sw     maxar.Switches
		status int
	}{{"429 with Retry-After", maxar.Switches{Status: 429, RetryAfter: "30"}, 429}, {"500", maxar.Switches{Status: 500}, 502}, {"slower than UPSTREAM_TIMEOUT", maxar.Switches{Delay: leakDelay}, 504}} {
		set, reset := func() { mx.Set(tc.sw) }, func() { mx.Set(maxar.Switches{}) }
		w.trouble = append(w.trouble,
			leakReq{name: tc.name + ": tile", path: tile, status: tc.status, reach: reachYes, set: set, reset: reset},
			leakReq{name: tc.name + ": GetMap", path: gm, status: tc.status, reach: reachYes, set: set, reset: reset})
	}
	return w
}

// Maxar: a static key in the maxar-api-key header or, with login, a
// username and password whose password-grant tokens go as Bearer; WMTS
// and WMS on one API host, the token endpoint on the account host (one
// fake serves both, each behind a server of its own).
func maxarLeakWorld(t *testing.T, login bool) *leakWorld {
	up := &upstreamLog{auth: maxar.TokenPath}
	fake := maxar.New(maxar.Options{Base: "request"})
	fake.AddUser(maxarUser, maxarPassword)
	fake.AddKey(maxarKey, 0)
	api := up.serve(t, func() http.Handler { return fake })
	account := up.serve(t, func() http.Handler { return fake })
	h := newKeyHarness(t, leakEnv(map[string]string{"PROVIDER_MAXAR_API_URL": api.URL, "PROVIDER_MAXAR_ACCOUNT_URL": account.URL}), time.Minute)
	set, wrong := credential.Credential{Provider: "maxar", Secret: maxarKey}, credential.Credential{Provider: "maxar", Secret: maxarKey2}
	if login {
		set, wrong = credential.Credential{Provider: "maxar", ID: maxarUser, Secret: maxarPassword}, credential.Credential{Provider: "maxar", ID: maxarUser, Secret: "Mx-wrong-password"}
	}
	key := leakKey(h, "maxar", set)
	v2, wms := "/v2/wmts/"+key, "/v2/wms/"+key
	tile := v2 + "/~api" + maxar.WMTSPath + "?" + maxarTile
	gm := wms + "/~api" + maxar.WMSPath + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=" + maxar.Layer + "&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	gfi := wms + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetFeatureInfo&LAYERS=" + maxar.Layer + "&QUERY_LAYERS=" + maxar.Layer +
		"&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png&INFO_FORMAT=text/plain&I=1&J=1"
	trouble := func(name string, sw maxar.Switches, status int) []leakReq {
		set, reset := func() { fake.Set(sw) }, func() { fake.Set(maxar.Switches{}) }
		return []leakReq{
			{name: name + ": WMTS capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": tile", path: tile, status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": GetMap", path: gm, status: status, reach: reachYes, set: set, reset: reset},
		}
	}
	// Every token the fake issued, as the scan saw it after each request.
	var tokens []string
	secrets := func() []leakSecret {
		if at, rt := fake.LastTokens(); at != "" && !slices.Contains(tokens, at) {
			tokens = append(tokens, at, rt)
		}
		s := []leakSecret{{"Maxar key", maxarKey}, {"refused Maxar key", maxarKey2}, {"Maxar username", maxarUser}, {"Maxar password", maxarPassword}, {"refused Maxar password", "Mx-wrong-password"}}
		for i, tok := range tokens {
			s = append(s, leakSecret{fmt.Sprintf("Maxar token #%d", i+1), tok})
		}
		return s
	}
	w := &leakWorld{h: h, key: key, up: up, profile: builtin(t, "maxar"),
		caps: v2 + "/1.0.0/WMTSCapabilities.xml", tile: tile, getMap: gm, featureInfo: gfi,
		wmsCaps: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1",
		secrets: secrets,
		requests: []leakReq{
			{name: "REST capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes},
			{name: "KVP capabilities", path: v2 + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "capabilities that carry the key", path: v2 + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes,
				set: func() { fake.Set(maxar.Switches{CredentialInCapabilities: true}) }, reset: func() { fake.Set(maxar.Switches{}) }},
			{name: "WMS capabilities 1.1.1", path: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1", status: 200, reach: reachYes},
			{name: "WMS capabilities 1.3.0", path: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", status: 200, reach: reachYes},
			{name: "tile", path: tile, status: 200, reach: reachYes},
			{name: "GetMap", path: gm, status: 200, reach: reachYes},
			{name: "GetMap of a layer Maxar lacks (a 200 exception)", path: strings.Replace(gm, "LAYERS="+maxar.Layer, "LAYERS=NoSuchLayer", 1), status: 400, reach: reachYes},
			// WMS 1.3.0's exception is text/xml, a feature-info type:
			// relayed, as checked text.
			{name: "GetFeatureInfo (an OGC exception in text/xml)", path: gfi, status: 200, reach: reachYes},
		},
	}
	w.trouble = append(w.trouble, trouble("429 with its JSON", maxar.Switches{Status: 429}, 429)...)
	w.trouble = append(w.trouble, trouble("500", maxar.Switches{Status: 500}, 502)...)
	w.trouble = append(w.trouble, trouble("slower than UPSTREAM_TIMEOUT", maxar.Switches{Delay: leakDelay}, 504)...)
	if login {
		revoke := func() { at, _ := fake.LastTokens(); fake.RevokeToken(at) }
		w.trouble = append(w.trouble,
			leakReq{name: "token revoked: a fresh one", path: tile, status: 200, reach: reachYes, asks: maxar.TokenPath, set: revoke},
			leakReq{name: "sessions ended, token revoked: logged in again", path: tile, status: 200, reach: reachYes, asks: maxar.TokenPath,
				set: func() { fake.EndSessions(); revoke() }},
			leakReq{name: "token endpoint answers 500", path: tile, status: 502, reach: reachYes, asks: maxar.TokenPath,
				set: func() { revoke(); fake.Set(maxar.Switches{TokenStatus: 500}) }, reset: func() { fake.Set(maxar.Switches{}) }})
	}
	bad := leakKey(h, "maxar", wrong)
	w.trouble = append(w.trouble,
		leakReq{name: "credential refused", path: "/v2/wmts/" + bad + "/1.0.0/WMTSCapabilities.xml", status: 403, reach: reachYes},
		leakReq{name: "credential refused: tile", path: "/v2/wmts/" + bad + "/~api" + maxar.WMTSPath + "?" + maxarTile, status: 403})
	return w
}

// Hexagon through a /v2 key, for comparison: a client ID and secret
// behind the key, tokens in the query of every upstream request.
func hexagonLeakWorld(t *testing.T) *leakWorld {
	up := &upstreamLog{auth: fakehexagon.TokenPath}
	var late lateHandler
	srv := up.serve(t, late.get)
	h := newKeyHarness(t, leakEnv(map[string]string{"HEXAGON_URL": srv.URL}), time.Minute)
	late.set(h.fake)
	key := leakKey(h, "", credential.Credential{ID: clientID, Secret: clientSecret})
	v2, wms := "/v2/wmts/"+key, "/v2/wms/"+key
	tile := v2 + tilePath
	gm := wms + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&FORMAT=image/png"
	gfi := wms + "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetFeatureInfo&LAYERS=HxGN_Imagery&QUERY_LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,10,10&WIDTH=64&HEIGHT=64&I=1&J=1&INFO_FORMAT=text/plain&FORMAT=image/png"
	trouble := func(name string, sw fakehexagon.Switches, status int) []leakReq {
		set, reset := func() { h.fake.Set(sw) }, func() { h.fake.Set(fakehexagon.Switches{}) }
		return []leakReq{
			{name: name + ": capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": tile", path: tile, status: status, reach: reachYes, set: set, reset: reset},
			{name: name + ": GetMap", path: gm, status: status, reach: reachYes, set: set, reset: reset},
		}
	}
	revoke := func() { h.fake.Revoke(clientID) }
	w := &leakWorld{h: h, key: key, up: up,
		caps: v2 + "/1.0.0/WMTSCapabilities.xml", tile: tile, getMap: gm,
		wmsCaps:     wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1",
		featureInfo: gfi,
		secrets: func() []leakSecret {
			s := []leakSecret{{"Hexagon client ID", clientID}, {"Hexagon client secret", clientSecret},
				{"Hexagon client ID, encoded", credential.Encode(clientID)}, {"Hexagon client secret, encoded", credential.Encode(clientSecret)}}
			// Every token the fake issued reached it in a query, or is live.
			toks := map[string]bool{}
			if tok, _, ok := h.fake.CurrentToken(clientID); ok {
				toks[tok] = true
			}
			for _, r := range up.since(0) {
				if u, err := url.ParseRequestURI(r.uri); err == nil && u.Query().Get("access_token") != "" {
					toks[u.Query().Get("access_token")] = true
				}
			}
			for tok := range toks {
				s = append(s, leakSecret{"Hexagon token", tok})
			}
			return s
		},
		requests: []leakReq{
			{name: "REST capabilities", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes},
			{name: "KVP capabilities", path: v2 + "?SERVICE=WMTS&REQUEST=GetCapabilities", status: 200, reach: reachYes},
			{name: "capabilities that carry the token", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 200, reach: reachYes,
				set: func() { h.fake.Set(fakehexagon.Switches{TokenInCapabilities: true}) }, reset: func() { h.fake.Set(fakehexagon.Switches{}) }},
			{name: "tile", path: tile, status: 200, reach: reachYes},
			{name: "KVP tile", path: v2 + kvpTile, status: 200, reach: reachYes},
			{name: "WMS capabilities", path: wms + "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", status: 200, reach: reachYes},
			{name: "GetMap", path: gm, status: 200, reach: reachYes},
			{name: "GetFeatureInfo", path: gfi, status: 200, reach: reachYes},
			{name: "escaped dot-dot", path: v2 + "/1.0.0/%2e%2e/%2e%2e/WebMercator/5/10/12.jpg", status: 400, reach: reachNo},
			{name: "escaped slash", path: v2 + "/1.0.0/Hx%2FGN/default/WebMercator/5/10/12.jpg", status: 400, reach: reachNo},
			{name: "dot-dot", path: v2 + "/../../wmts/x/y/1.0.0/WMTSCapabilities.xml", status: 400, reach: reachNo},
			{name: "pass-through form on Hexagon", path: v2 + "/~api/streaming/wmts", status: 404, reach: reachNo},
			{name: "token revoked: fetched again", path: tile, status: 200, reach: reachYes, asks: fakehexagon.TokenPath, set: revoke},
		},
	}
	w.trouble = append(w.trouble, trouble("429 with Retry-After", fakehexagon.Switches{TileStatus: 429, RetryAfter: "9"}, 429)...)
	w.trouble = append(w.trouble, trouble("500", fakehexagon.Switches{TileStatus: 500}, 502)...)
	w.trouble = append(w.trouble, trouble("slower than UPSTREAM_TIMEOUT", fakehexagon.Switches{TileDelay: leakDelay}, 504)...)
	w.trouble = append(w.trouble,
		leakReq{name: "token endpoint 503", path: tile, status: 502, reach: reachYes, asks: fakehexagon.TokenPath,
			set: func() { revoke(); h.fake.Set(fakehexagon.Switches{TokenStatus: 503}) }, reset: func() { h.fake.Set(fakehexagon.Switches{}) }},
		leakReq{name: "token endpoint refuses", path: v2 + "/1.0.0/WMTSCapabilities.xml", status: 403, reach: reachYes, asks: fakehexagon.TokenPath,
			set: func() { revoke(); h.fake.Set(fakehexagon.Switches{TokenStatus: 401}) }, reset: func() { h.fake.Set(fakehexagon.Switches{}) }},
	)
	return w
}
