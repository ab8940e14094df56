package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/report"
	"github.com/hexprox/hexprox/internal/usage/usagetable"
)

// The usage tests run proxy instances as main wires them (a usage.Counter
// per instance flushing to one usage table on Azurite, API keys from one
// shared keys file, the guess limit off), send them a known mix of
// requests through real HTTP, and check that `handler usage` (report.Run)
// over the table adds up to exactly what was sent.

const (
	orgAlpha     = "Alpha County"
	orgBeta      = "Beta Water Board"
	usageTable   = "hexproxusage"
	usageGFI     = "?SERVICE=WMS&VERSION=1.1.1&REQUEST=GetFeatureInfo&LAYERS=HxGN_Imagery&QUERY_LAYERS=HxGN_Imagery&SRS=EPSG:3857&BBOX=0,0,100,100&WIDTH=10&HEIGHT=10&FORMAT=image/png&INFO_FORMAT=text/plain&X=5&Y=5"
	usageLegend  = "?SERVICE=WMS&REQUEST=GetLegendGraphic&VERSION=1.3.0&LAYER=HxGN_Imagery&FORMAT=image/png"
	usageGetMap  = "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=HxGN_Imagery&STYLES=&CRS=EPSG:3857&BBOX=0,0,1000,1000&WIDTH=32&HEIGHT=32&FORMAT=image/png"
	usageBadTile = "/1.0.0/HxGN_Imagery/default/WebMercator/5/-1/2.jpg"
	foreignSite  = "https://evil.example"
)

// newUsageCluster is a world for usage tests: with storage, a real
// Azurite whose usage table every instance flushes to.
func newUsageCluster(t *testing.T, storage bool) *harness {
	t.Helper()
	return newWorld(t, worldOptions{azurite: storage})
}

// noteTokens remembers the token a redirect carries, and every token the
// fake has handed out.
func (h *harness) noteTokens(location string) {
	if loc, err := url.Parse(location); err == nil && location != "" {
		if tok := loc.Query().Get("access_token"); tok != "" {
			h.noteSecret(tok)
		}
	}
	h.noteToken()
}

// addKeyFor stores an enabled key record for one Hexagon credential and
// returns the key.
func (h *harness) addKeyFor(rec keys.Record, id, secret string) string {
	h.t.Helper()
	rec.Sets = []credential.Credential{{ID: id, Secret: secret}}
	return h.addKey(rec)
}

// timedSink is a usage.Sink that keeps the slowest write and read it
// made: how stale another instance's view of this one's counts can be,
// beyond the flush interval.
type timedSink struct {
	usage.Sink
	slowestWrite, slowestRead atomic.Int64 // nanoseconds
}

func keepMax(m *atomic.Int64, d time.Duration) {
	for {
		old := m.Load()
		if int64(d) <= old || m.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

func (s *timedSink) Write(ctx context.Context, rows []usage.Row) error {
	start := time.Now()
	defer func() { keepMax(&s.slowestWrite, time.Since(start)) }()
	return s.Sink.Write(ctx, rows)
}

func (s *timedSink) Read(ctx context.Context, q usage.Query) ([]usage.Row, error) {
	start := time.Now()
	defer func() { keepMax(&s.slowestRead, time.Since(start)) }()
	return s.Sink.Read(ctx, q)
}

// roundTrip is the slowest write plus the slowest read.
func (s *timedSink) roundTrip() time.Duration {
	return time.Duration(s.slowestWrite.Load() + s.slowestRead.Load())
}

// usageInstance starts one more proxy instance named name, counting with
// uo (its Sink: the usage table on Azurite, timed, or memory without
// storage; uo.Now is the instance's clock too), tokens in its memory and
// CORS for allowed. Unless uo.NoLoop, its counts are flushed every
// uo.Flush and when the test ends.
func (h *harness) usageInstance(name string, env map[string]string, uo usage.Options) *instance {
	h.t.Helper()
	vars := map[string]string{"ALLOWED_ORIGINS": allowed, "TOKEN_STORE": "memory"}
	for k, v := range env {
		vars[k] = v
	}
	var ts *timedSink
	in := h.start(vars, func(o *app.Options) {
		if h.az != nil {
			conn := h.usageConn
			if conn == "" {
				conn = h.az.ConnectionString()
			}
			ts = &timedSink{Sink: h.usageTable(conn)}
			uo.Sink = ts
		} else {
			uo.Sink = &usage.MemorySink{}
		}
		uo.Instance = name
		o.Usage = uo
		if uo.Now != nil {
			o.Now = uo.Now
		}
	})
	in.name, in.sink = name, ts
	return in
}

// counter is the instance's usage counter.
func (in *instance) counter() *usage.Counter { return in.app.Usage }

// usageTable opens the usage table through conn, and creates it as the
// app does at start.
func (h *harness) usageTable(conn string) *usagetable.Sink {
	h.t.Helper()
	svc, err := azstorage.NewServiceClient(config.Storage{ConnectionString: conn})
	if err != nil {
		h.t.Fatal(err)
	}
	s := usagetable.New(svc, usageTable)
	if err := s.EnsureTable(context.Background()); err != nil && conn == h.az.ConnectionString() {
		h.t.Fatal(err)
	}
	return s
}

// usageSubject is whom requests are counted under, and its URL prefixes.
type usageSubject struct {
	id        usage.SubjectID
	wmts, wms string
	streams   bool   // an API key that does not opt in to redirects: what a credential URL redirects, it streams
	about     string // an API key's about page
}

// keySubject is a key's subject; redirect says whether its record opts in
// to redirects.
func keySubject(key, org string, redirect bool) usageSubject {
	return usageSubject{id: usage.SubjectID{Org: org, Key: keys.Fingerprint(key, "")}, wmts: "/v2/wmts/" + key, wms: "/v2/wms/" + key, streams: !redirect, about: "/about/" + key}
}

func v1Subject(id, secret string) usageSubject {
	cred := credential.Credential{ID: id, Secret: secret}
	seg := credential.Encode(id) + "/" + credential.Encode(secret)
	return usageSubject{id: usage.SubjectID{Key: cred.Fingerprint("")}, wmts: "/wmts/" + seg, wms: "/wms/" + seg}
}

// usageCall is one kind of request and what it must be answered and counted as.
type usageCall struct {
	name   string
	wms    bool   // on the subject's WMS route, else WMTS
	path   string // after the route's prefix: path and query
	origin string // the Origin header
	status int
	kind   usage.Kind
	stream bool // a body streamed from Hexagon: its size counts as bytes_streamed
}

// usageMix is every kind of request the counters tell apart, but the
// upstream failure, which needs the fake switched.
var usageMix = []usageCall{
	{name: "tile redirected", path: tilePath, status: http.StatusFound, kind: usage.TilesRedirected},
	{name: "KVP tile redirected", path: kvpTile, status: http.StatusFound, kind: usage.TilesRedirected},
	{name: "tile streamed", path: tilePath, origin: allowed, status: http.StatusOK, kind: usage.TilesStreamed, stream: true},
	{name: "WMTS capabilities", path: "/1.0.0/WMTSCapabilities.xml", status: http.StatusOK, kind: usage.Capabilities},
	{name: "WMS capabilities", wms: true, path: "?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0", status: http.StatusOK, kind: usage.Capabilities},
	{name: "GetMap redirected", wms: true, path: usageGetMap, status: http.StatusFound, kind: usage.WMSGetMap},
	{name: "GetMap streamed", wms: true, path: usageGetMap, origin: allowed, status: http.StatusOK, kind: usage.WMSGetMap, stream: true},
	{name: "GetFeatureInfo", wms: true, path: usageGFI, status: http.StatusOK, kind: usage.WMSOther, stream: true},
	{name: "GetLegendGraphic", wms: true, path: usageLegend, status: http.StatusOK, kind: usage.WMSOther, stream: true},
	{name: "refused origin", path: tilePath, origin: foreignSite, status: http.StatusForbidden, kind: usage.Refused},
	{name: "bad request", path: usageBadTile, status: http.StatusBadRequest, kind: usage.BadRequest},
}

// upstreamFailure is a streamed tile while the fake answers 500.
var upstreamFailure = usageCall{name: "upstream failure", path: tilePath, origin: allowed, status: http.StatusBadGateway, kind: usage.UpstreamFailed}

// usageTally is what the test sent, per subject, as the counters should count it.
type usageTally struct {
	mu sync.Mutex
	m  map[usage.SubjectID]usage.Counts
}

func (tl *usageTally) add(id usage.SubjectID, k usage.Kind, n int64) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.m == nil {
		tl.m = map[usage.SubjectID]usage.Counts{}
	}
	c := tl.m[id]
	c[k] += n
	tl.m[id] = c
}

// sumUsageTallies returns the sum of plus, minus the sum of less.
func sumUsageTallies(plus []*usageTally, less ...*usageTally) map[usage.SubjectID]usage.Counts {
	out := map[usage.SubjectID]usage.Counts{}
	for i, group := range [][]*usageTally{plus, less} {
		for _, tl := range group {
			tl.mu.Lock()
			for id, c := range tl.m {
				o := out[id]
				for k := range c {
					if i == 0 {
						o[k] += c[k]
					} else {
						o[k] -= c[k]
					}
				}
				out[id] = o
			}
			tl.mu.Unlock()
		}
	}
	return out
}

// send makes one request of s to inst, checks its status, and adds what
// it should count to tl. It may run in any goroutine; it returns the
// answer's status and body.
func (c *harness) send(inst *instance, s usageSubject, cl usageCall, tl *usageTally) (int, []byte) {
	prefix := s.wmts
	if cl.wms {
		prefix = s.wms
	}
	if s.streams && cl.status == http.StatusFound {
		// A key's desktop tiles and maps are streamed: a redirect would
		// hand its holder Hexagon's token.
		cl.status, cl.stream = http.StatusOK, true
		if cl.kind == usage.TilesRedirected {
			cl.kind = usage.TilesStreamed
		}
	}
	req, err := http.NewRequest(http.MethodGet, inst.URL+prefix+cl.path, nil)
	if err != nil {
		c.t.Error(err)
		return 0, nil
	}
	if cl.origin != "" {
		req.Header.Set("Origin", cl.origin)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Errorf("%s on %s: %v", cl.name, inst.name, err)
		return 0, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Errorf("%s on %s: reading the body: %v", cl.name, inst.name, err)
		return 0, nil
	}
	c.noteTokens(resp.Header.Get("Location"))
	if resp.StatusCode != cl.status {
		c.t.Errorf("%s for %s on %s: status %d, want %d\n%.300s", cl.name, report.OrgLabel(s.id), inst.name, resp.StatusCode, cl.status, body)
		return resp.StatusCode, body
	}
	if tl != nil {
		tl.add(s.id, cl.kind, 1)
		if cl.stream {
			if len(body) == 0 {
				c.t.Errorf("%s: empty body", cl.name)
			}
			tl.add(s.id, usage.BytesStreamed, int64(len(body)))
		}
	}
	return resp.StatusCode, body
}

// sendMix sends, concurrently on every instance, each subject the whole
// mix, each request a number of times that depends on the instance, the
// subject and the kind, so that a total summed from the wrong rows cannot
// come out right. round varies the numbers between rounds.
func (c *harness) sendMix(insts []*instance, subjects []usageSubject, round int, tls []*usageTally) {
	c.t.Helper()
	var wg sync.WaitGroup
	for i, inst := range insts {
		wg.Go(func() {
			for j, s := range subjects {
				for k, cl := range usageMix {
					for range 1 + (i+2*j+k+round)%3 {
						c.send(inst, s, cl, tls[i])
					}
				}
			}
		})
	}
	wg.Wait()
	if c.t.Failed() {
		c.t.FailNow()
	}
}

// sendFailures switches the fake to answer tiles 500 and sends each
// subject's streamed tiles through every instance: 502, upstream_failed.
func (c *harness) sendFailures(insts []*instance, subjects []usageSubject, tls []*usageTally) {
	c.t.Helper()
	c.fake.Set(fakehexagon.Switches{TileStatus: http.StatusInternalServerError})
	defer c.fake.Set(fakehexagon.Switches{})
	for i, inst := range insts {
		for j, s := range subjects {
			for range 1 + (i+j)%2 {
				c.send(inst, s, upstreamFailure, tls[i])
			}
		}
	}
	if c.t.Failed() {
		c.t.FailNow()
	}
}

func closeUsageCounters(t *testing.T, insts ...*instance) {
	t.Helper()
	for _, inst := range insts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := inst.counter().Close(ctx)
		cancel()
		if err != nil {
			t.Fatalf("closing %s's counter: %v", inst.name, err)
		}
	}
}

// usageReportArgs selects yesterday to tomorrow, UTC: the test's rows whatever
// the hour.
func usageReportArgs(by string) []string {
	now := time.Now().UTC()
	return []string{"--format", "json", "--by", by,
		"--from", now.AddDate(0, 0, -1).Format(time.DateOnly), "--to", now.AddDate(0, 0, 1).Format(time.DateOnly)}
}

// report runs `handler usage --format json --by by` over the table (read
// straight from Azurite) and returns its lines keyed by their group
// columns ("org" or "org|key"), and its total.
func (c *harness) report(by string) (map[string]usage.Counts, usage.Counts) {
	c.t.Helper()
	var out bytes.Buffer
	if err := report.Run(context.Background(), usageReportArgs(by), &out, c.usageTable(c.az.ConnectionString())); err != nil {
		c.t.Fatalf("usage report: %v", err)
	}
	var doc struct {
		By    string                       `json:"by"`
		Rows  []map[string]json.RawMessage `json:"rows"`
		Total map[string]json.RawMessage   `json:"total"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.By != by {
		c.t.Fatalf("the report is not JSON by %s (%v):\n%s", by, err, out.Bytes())
	}
	counts := func(m map[string]json.RawMessage) usage.Counts {
		var cs usage.Counts
		for _, k := range usage.Kinds() {
			raw, ok := m[k.String()]
			if !ok {
				c.t.Fatalf("the report has no %s column:\n%s", k, out.Bytes())
			}
			if err := json.Unmarshal(raw, &cs[k]); err != nil {
				c.t.Fatalf("%s: %v", k, err)
			}
		}
		var requests int64
		if err := json.Unmarshal(m["requests"], &requests); err != nil || requests != cs.Requests() {
			c.t.Fatalf("requests %d is not the sum of the request kinds %d (%v)", requests, cs.Requests(), err)
		}
		return cs
	}
	lines := map[string]usage.Counts{}
	for _, row := range doc.Rows {
		var org, key string
		json.Unmarshal(row["org"], &org)
		json.Unmarshal(row["key"], &key)
		label := org
		if by == report.ByKey {
			label += "|" + key
		}
		if _, dup := lines[label]; dup {
			c.t.Fatalf("the report has two lines for %s", label)
		}
		lines[label] = counts(row)
	}
	return lines, counts(doc.Total)
}

// expectedUsageLines groups want as a report by by does.
func expectedUsageLines(want map[usage.SubjectID]usage.Counts, by string) (map[string]usage.Counts, usage.Counts) {
	lines := map[string]usage.Counts{}
	var total usage.Counts
	for id, cs := range want {
		label := report.OrgLabel(id)
		if by == report.ByKey {
			label += "|" + id.Key
		}
		l := lines[label]
		l.Add(cs)
		lines[label] = l
		total.Add(cs)
	}
	return lines, total
}

// reportMismatch describes how the report by by differs from want, or "".
func (c *harness) reportMismatch(want map[usage.SubjectID]usage.Counts, by string) string {
	got, gotTotal := c.report(by)
	exp, expTotal := expectedUsageLines(want, by)
	var diffs []string
	for label, e := range exp {
		if g := got[label]; g != e {
			diffs = append(diffs, fmt.Sprintf("%s: report %s, sent %s", label, usageString(g), usageString(e)))
		}
	}
	for label := range got {
		if _, ok := exp[label]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: in the report, never sent", label))
		}
	}
	if gotTotal != expTotal {
		diffs = append(diffs, fmt.Sprintf("TOTAL: report %s, sent %s", usageString(gotTotal), usageString(expTotal)))
	}
	return strings.Join(diffs, "\n")
}

func (c *harness) assertReport(want map[usage.SubjectID]usage.Counts) {
	c.t.Helper()
	for _, by := range []string{report.ByOrg, report.ByKey} {
		if d := c.reportMismatch(want, by); d != "" {
			c.t.Fatalf("`handler usage --by %s` does not add up to what was sent:\n%s", by, d)
		}
	}
}

func usageString(cs usage.Counts) string {
	var parts []string
	for k, n := range cs {
		if n != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", usage.Kind(k), n))
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// rawRows lists the usage table's entities as stored, straight from
// Azurite.
func (c *harness) rawRows() []string {
	c.t.Helper()
	return c.az.Rows(c.t, usageTable)
}

// assertTableHoldsNoSecret scans every property of every raw row for the
// API keys, the client ids and secrets in every base64 form, and every
// token the fake issued. mustHold are strings the rows must carry (proof
// that the scan reads the rows' contents).
func (c *harness) assertTableHoldsNoSecret(mustHold ...string) {
	c.t.Helper()
	rows := c.rawRows()
	if len(rows) == 0 {
		c.t.Fatal("the usage table is empty")
	}
	raw := strings.Join(rows, "\n")
	// Property values as JSON escapes them, and unescaped.
	var unescaped strings.Builder
	for _, r := range rows {
		var props map[string]any
		if err := json.Unmarshal([]byte(r), &props); err != nil {
			c.t.Fatalf("a row is not JSON: %v", err)
		}
		for k, v := range props {
			fmt.Fprintf(&unescaped, "%s=%v\n", k, v)
		}
	}
	secrets := c.secrets()
	for _, s := range secrets {
		if strings.Contains(raw, s) || strings.Contains(unescaped.String(), s) {
			c.t.Fatalf("the usage table holds the secret %q", s)
		}
	}
	for _, s := range mustHold {
		if !strings.Contains(unescaped.String(), s) {
			c.t.Fatalf("the usage table rows do not carry %q: the scan does not see their contents?\n%s", s, unescaped.String())
		}
	}
	c.t.Logf("%d raw usage rows hold none of %d secrets (keys, ids, secrets and their encodings, tokens)", len(rows), len(secrets))
}

func TestUsageThreeInstancesReportExactlyWhatWasSent(t *testing.T) {
	c := newUsageCluster(t, true)
	keyA := c.addKeyFor(keys.Record{Org: orgAlpha}, clientID, clientSecret)
	keyB := c.addKeyFor(keys.Record{Org: orgBeta, Redirect: true}, betaID, betaSecret)
	subjects := []usageSubject{keySubject(keyA, orgAlpha, false), keySubject(keyB, orgBeta, true), v1Subject(clientID, clientSecret)}
	var insts []*instance
	tls := []*usageTally{{}, {}, {}}
	for i := range 3 {
		insts = append(insts, c.usageInstance(fmt.Sprintf("instance-%d", i), nil, usage.Options{Flush: 100 * time.Millisecond}))
	}

	c.sendMix(insts, subjects, 0, tls)
	c.sendFailures(insts, subjects, tls)
	// The original HexProx's /v1 URL counts under the same credential.
	v1 := subjects[2]
	v1.wmts = "/v1/wmts/anything/" + strings.TrimPrefix(v1.wmts, "/wmts/")
	c.send(insts[1], v1, usageMix[0], tls[1])
	// A key's about page is its request too, within its limits.
	for i, s := range subjects {
		if s.about == "" {
			continue
		}
		for range i + 1 {
			resp, err := c.client.Get(insts[i%len(insts)].URL + s.about)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("about %s: %v %v", report.OrgLabel(s.id), resp, err)
			}
			resp.Body.Close()
			tls[i%len(insts)].add(s.id, usage.About, 1)
		}
	}
	closeUsageCounters(t, insts...)

	want := sumUsageTallies(tls)
	for _, s := range subjects {
		for _, k := range usage.Kinds() {
			if want[s.id][k] == 0 && k != usage.RateLimited && !(k == usage.TilesRedirected && s.streams) && !(k == usage.About && s.about == "") { // the limit tests cover 429s
				t.Fatalf("the mix sent %s no %s: the test does not cover every kind", report.OrgLabel(s.id), k)
			}
		}
	}
	c.assertReport(want)
	total := usage.Counts{}
	for _, cs := range want {
		total.Add(cs)
	}
	t.Logf("three instances, %d requests (%d bytes streamed) for 2 organisations and a v1 credential: the report adds up by org and by key", total.Requests(), total[usage.BytesStreamed])

	// Each instance wrote its own rows.
	seen := map[string]bool{}
	for _, r := range c.rawRows() {
		var e struct{ Instance string }
		json.Unmarshal([]byte(r), &e)
		seen[e.Instance] = true
	}
	if len(seen) != 3 {
		t.Fatalf("rows from instances %v, want the three", seen)
	}
	c.assertTableHoldsNoSecret(orgAlpha, orgBeta, subjects[0].id.Key, subjects[2].id.Key)
}

func TestUsageKilledInstanceLosesOnlyWhatItCountedSinceItsLastFlush(t *testing.T) {
	c := newUsageCluster(t, true)
	keyA := c.addKeyFor(keys.Record{Org: orgAlpha}, clientID, clientSecret)
	keyB := c.addKeyFor(keys.Record{Org: orgBeta, Redirect: true}, betaID, betaSecret)
	subjects := []usageSubject{keySubject(keyA, orgAlpha, false), keySubject(keyB, orgBeta, true), v1Subject(clientID, clientSecret)}
	insts := []*instance{
		c.usageInstance("survivor-0", nil, usage.Options{Flush: 100 * time.Millisecond}),
		// The victim's loop never runs: it flushes only when told to, and
		// is never closed, as a process killed with SIGKILL is not.
		c.usageInstance("victim", nil, usage.Options{NoLoop: true}),
		c.usageInstance("survivor-2", nil, usage.Options{Flush: 100 * time.Millisecond}),
	}
	before := []*usageTally{{}, {}, {}}
	after := []*usageTally{{}, {}, {}}

	c.sendMix(insts, subjects, 0, before)
	if err := insts[1].counter().Flush(context.Background()); err != nil {
		t.Fatalf("the victim's last flush: %v", err)
	}
	c.sendMix(insts, subjects, 1, after)
	// kill -9: the victim's unflushed counts die with it.
	closeUsageCounters(t, insts[0], insts[2])

	// The victim did count them: its memory holds everything it was
	// sent, the table what it held at its last flush.
	now := time.Now()
	var inMemory, flushed usage.Counts
	for _, r := range insts[1].counter().Snapshot(now.Add(-48*time.Hour), now.Add(48*time.Hour)) {
		inMemory.Add(r.Counts)
	}
	rows, err := c.usageTable(c.az.ConnectionString()).Read(context.Background(), usage.Query{From: now.Add(-48 * time.Hour), To: now.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Instance == "victim" {
			flushed.Add(r.Counts)
		}
	}
	if want := sumUsage(sumUsageTallies([]*usageTally{before[1], after[1]})); inMemory != want {
		t.Fatalf("the victim counted %s, was sent %s", usageString(inMemory), usageString(want))
	}
	lostTotal := sumUsage(sumUsageTallies([]*usageTally{after[1]}))
	if want := sumUsage(sumUsageTallies([]*usageTally{before[1]})); flushed != want {
		t.Fatalf("the table holds %s of the victim, its last flush held %s", usageString(flushed), usageString(want))
	}
	c.assertReport(sumUsageTallies(append(before, after...), after[1]))
	all := sumUsage(sumUsageTallies(append(before, after...)))
	figure(t, "kill -9 of one instance of three: the report misses %d of %d requests, exactly those the victim served after its last flush (%d); the rest adds up",
		all.Requests()-sumUsage(sumUsageTallies(append(before, after...), after[1])).Requests(), all.Requests(), lostTotal.Requests())
}

func sumUsage(m map[usage.SubjectID]usage.Counts) usage.Counts {
	var out usage.Counts
	for _, cs := range m {
		out.Add(cs)
	}
	return out
}

// usageGate forwards connections to a target until it is shut, and refuses
// (accepts and drops) them while shut: storage that stops answering and
// comes back with its data.
type usageGate struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	shut  bool
	conns map[net.Conn]bool
}

func newUsageGate(t *testing.T, target string) *usageGate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &usageGate{ln: ln, target: target, conns: map[net.Conn]bool{}}
	go g.serve()
	t.Cleanup(func() {
		ln.Close()
		g.set(true)
	})
	return g
}

func (g *usageGate) addr() string { return g.ln.Addr().String() }

func (g *usageGate) serve() {
	for {
		in, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.handle(in)
	}
}

func (g *usageGate) track(cs ...net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut {
		return false
	}
	for _, c := range cs {
		g.conns[c] = true
	}
	return true
}

func (g *usageGate) handle(in net.Conn) {
	out, err := net.Dial("tcp", g.target)
	if err != nil || !g.track(in, out) {
		in.Close()
		if out != nil {
			out.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, in); done <- struct{}{} }()
	go func() { io.Copy(in, out); done <- struct{}{} }()
	<-done
	in.Close()
	out.Close()
	g.mu.Lock()
	delete(g.conns, in)
	delete(g.conns, out)
	g.mu.Unlock()
}

// set shuts the gate (dropping every open connection) or opens it.
func (g *usageGate) set(shut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = shut
	if shut {
		for c := range g.conns {
			c.Close()
		}
		clear(g.conns)
	}
}

func TestUsageStorageOutageLosesNothingAndFailsNoRequest(t *testing.T) {
	c := newUsageCluster(t, true)
	gate := newUsageGate(t, "127.0.0.1:"+strconv.Itoa(c.az.Port))
	c.usageConn = azstorage.DevelopmentConnectionString("http://" + gate.addr() + "/devstoreaccount1")
	keyA := c.addKeyFor(keys.Record{Org: orgAlpha}, clientID, clientSecret)
	keyB := c.addKeyFor(keys.Record{Org: orgBeta, Redirect: true}, betaID, betaSecret)
	subjects := []usageSubject{keySubject(keyA, orgAlpha, false), keySubject(keyB, orgBeta, true), v1Subject(clientID, clientSecret)}
	var insts []*instance
	for i := range 3 {
		insts = append(insts, c.usageInstance(fmt.Sprintf("instance-%d", i), nil, usage.Options{Flush: 100 * time.Millisecond, FlushTimeout: 300 * time.Millisecond}))
	}
	phases := [][]*usageTally{{{}, {}, {}}, {{}, {}, {}}, {{}, {}, {}}}
	settleReport := func(what string, want map[usage.SubjectID]usage.Counts) {
		t.Helper()
		var last string
		settle(t, what+" in the usage table", func() bool {
			last = c.reportMismatch(want, report.ByKey)
			return last == ""
		})
	}

	c.sendMix(insts, subjects, 0, phases[0])
	settleReport("the first counts", sumUsageTallies(phases[0]))

	gate.set(true)
	failures := func() (n int64) {
		for _, inst := range insts {
			n += min(1, inst.counter().Stats().FlushFailures)
		}
		return n
	}
	start := time.Now()
	c.sendMix(insts, subjects, 1, phases[1]) // every answer as expected, or it fails
	c.sendFailures(insts, subjects, phases[1])
	outageSend := time.Since(start)
	settle(t, "every instance to see the outage", func() bool { return failures() == 3 })
	c.sendMix(insts, subjects, 2, phases[1])
	// Storage is down, as far as the instances know: the table (read
	// behind the gate) still holds the first counts only.
	if d := c.reportMismatch(sumUsageTallies(phases[0]), report.ByKey); d != "" {
		t.Fatalf("the table changed while the gate was shut:\n%s", d)
	}

	gate.set(false)
	c.sendMix(insts, subjects, 3, phases[2])
	// The loops write everything once storage is back, with no Close.
	settleReport("every count, once storage is back", sumUsageTallies(append(append(phases[0], phases[1]...), phases[2]...)))
	closeUsageCounters(t, insts...)
	c.assertReport(sumUsageTallies(append(append(phases[0], phases[1]...), phases[2]...)))
	logs := c.logs.String()
	if !strings.Contains(logs, "usage: flush failed") || !strings.Contains(logs, "usage: flush works again") {
		t.Fatal("the outage and the recovery were not logged")
	}
	// Once per outage an instance sees, not once per failed flush: every
	// "failed" line has its "works again". (Under load a flush just after
	// the gate opens can time out: an outage of its own, logged as one.)
	if failed, again := strings.Count(logs, "usage: flush failed"), strings.Count(logs, "usage: flush works again"); failed != again || failed < len(insts) {
		t.Fatalf("the outage was logged %d times and the recovery %d times by %d instances, want once per outage", failed, again, len(insts))
	}
	outage := sumUsage(sumUsageTallies(phases[1]))
	figure(t, "storage shut behind a TCP gate: %d requests served during the outage, none failed (the first mix and failures took %v, as before), all %d counted once it was back",
		outage.Requests(), outageSend.Round(time.Millisecond), outage.Requests())
}

// The limits.

// retryAfter returns a 429's Retry-After in seconds, failing unless it is
// a whole number of at least 1.
func retryAfterSeconds(t *testing.T, h http.Header) int {
	t.Helper()
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After %q, want whole seconds >= 1", h.Get("Retry-After"))
	}
	return n
}

// get429 sends one request that must be answered 429 in the route's
// exception format, and returns the exception text.
func (c *harness) get429(inst *instance, u string) (text string, retry int) {
	c.t.Helper()
	resp, err := c.client.Get(inst.URL + u)
	if err != nil {
		c.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		c.t.Fatalf("%s: status %d, want 429\n%s", u, resp.StatusCode, body)
	}
	retry = retryAfterSeconds(c.t, resp.Header)
	if strings.Contains(u, "/wms/") {
		var rep serviceExceptionReport
		d := xml.NewDecoder(bytes.NewReader(body))
		d.Strict = false
		if err := d.Decode(&rep); err != nil || rep.XMLName.Local != "ServiceExceptionReport" || rep.Version != "1.3.0" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/xml") {
			c.t.Fatalf("%s: not a WMS 1.3.0 ServiceExceptionReport (%v, %s):\n%s", u, err, resp.Header.Get("Content-Type"), body)
		}
		text = rep.Exception.Text
	} else {
		var rep exceptionReport
		if err := xml.Unmarshal(body, &rep); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") {
			c.t.Fatalf("%s: not an OGC ExceptionReport (%v):\n%s", u, err, body)
		}
		text = rep.Exception.Text
	}
	for _, s := range c.secrets() {
		if bytes.Contains(body, []byte(s)) {
			c.t.Fatalf("a 429 body carries the secret %q", s)
		}
	}
	return text, retry
}

// status sends one GET and returns its status.
func (c *harness) status(inst *instance, u string) int {
	c.t.Helper()
	resp, err := c.client.Get(inst.URL + u)
	if err != nil {
		c.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.noteTokens(resp.Header.Get("Location"))
	return resp.StatusCode
}

// counted returns what inst counted for id, flushed or not.
func countedFor(inst *instance, id usage.SubjectID) usage.Counts {
	var out usage.Counts
	now := time.Now()
	for _, r := range inst.counter().Snapshot(now.Add(-48*time.Hour), now.Add(48*time.Hour)) {
		if r.SubjectID == id {
			out.Add(r.Counts)
		}
	}
	return out
}

func TestLimitRateOfAKeyAnswers429InTheClientsFormat(t *testing.T) {
	c := newUsageCluster(t, false)
	clk := testclock.New(time.Now()) // the limiter's clock: it refills only when told
	inst := c.usageInstance("only", nil, usage.Options{Flush: time.Minute, Now: clk.Now})
	for _, route := range []struct {
		name string
		path func(usageSubject) string
	}{
		{"WMTS", func(s usageSubject) string { return s.wmts + tilePath }},
		{"WMS", func(s usageSubject) string { return s.wms + usageGetMap }},
	} {
		t.Run(route.name, func(t *testing.T) {
			// Redirects, as the limits are the point here, not delivery.
			key := c.addKeyFor(keys.Record{Org: orgAlpha + " " + route.name, Rate: 2, Burst: 2, Redirect: true}, clientID, clientSecret)
			s := keySubject(key, orgAlpha+" "+route.name, true)
			u := route.path(s)
			for i := range 2 {
				if st := c.status(inst, u); st != http.StatusFound {
					t.Fatalf("request %d within the burst: %d", i+1, st)
				}
			}
			text, retry := c.get429(inst, u)
			if !strings.Contains(text, "limit: rate") {
				t.Fatalf("the 429 does not name the rate limit: %q", text)
			}
			got := countedFor(inst, s.id)
			if got[usage.RateLimited] != 1 || got.Requests() != 3 {
				t.Fatalf("counted %s, want 2 served and 1 rate_limited", usageString(got))
			}
			// Retry-After is honest: after it, a request passes.
			clk.Advance(time.Duration(retry) * time.Second)
			if st := c.status(inst, u); st != http.StatusFound {
				t.Fatalf("after Retry-After (%ds): %d", retry, st)
			}
		})
	}
}

func TestLimitRateForV1CredentialURLs(t *testing.T) {
	c := newUsageCluster(t, false)
	inst := c.usageInstance("only", map[string]string{"RATE_LIMIT": "2"}, usage.Options{Flush: time.Minute})
	s := v1Subject(clientID, clientSecret)
	// The request that first proves the credential to Hexagon is not
	// limited: only accepted credentials get a limiter (and a subject).
	if st := c.status(inst, s.wmts+"/1.0.0/WMTSCapabilities.xml"); st != http.StatusOK {
		t.Fatalf("capabilities: %d", st)
	}
	for i := range 2 {
		if st := c.status(inst, s.wmts+tilePath); st != http.StatusFound {
			t.Fatalf("request %d within RATE_LIMIT's burst: %d", i+1, st)
		}
	}
	text, _ := c.get429(inst, s.wmts+tilePath)
	if !strings.Contains(text, "limit: rate") {
		t.Fatalf("the 429 does not name the rate limit: %q", text)
	}
	// The limit is the credential's, whatever the service: WMS is over it too.
	text, _ = c.get429(inst, s.wms+usageGetMap)
	if !strings.Contains(text, "limit: rate") {
		t.Fatalf("the WMS 429 does not name the rate limit: %q", text)
	}
	// Another credential has its own allowance.
	b := v1Subject(betaID, betaSecret)
	for range 3 {
		if st := c.status(inst, b.wmts+tilePath); st != http.StatusFound {
			t.Fatalf("another credential: %d", st)
		}
	}
	if got := countedFor(inst, s.id); got[usage.RateLimited] != 2 || got[usage.TilesRedirected] != 2 || got[usage.Capabilities] != 1 {
		t.Fatalf("counted %s, want 1 capabilities, 2 tiles_redirected, 2 rate_limited", usageString(got))
	}
}

func TestLimitDailyRequestsAcrossThreeInstances(t *testing.T) {
	const (
		daily   = 600
		flush   = 100 * time.Millisecond
		workers = 6
		quiet   = 10 // consecutive 429s per instance that end the run
		// perSecond paces each instance's load: unpaced, a fast machine
		// serves so many requests per flush interval that the documented
		// bound is no tighter than instances that never share.
		perSecond = 1500
	)
	pace := rate.NewLimiter(rate.Limit(3*perSecond), workers)
	c := newUsageCluster(t, true)
	// Redirects, as the quota is the point here, not delivery.
	key := c.addKeyFor(keys.Record{Org: orgAlpha, DailyRequests: daily, Redirect: true}, clientID, clientSecret)
	s := keySubject(key, orgAlpha, true)
	var insts []*instance
	for i := range 3 {
		// FlushTimeout defaults to the interval; so short an interval
		// would make Azurite under a loaded test machine look down.
		insts = append(insts, c.usageInstance(fmt.Sprintf("instance-%d", i), nil, usage.Options{Flush: flush, FlushTimeout: 5 * time.Second}))
	}
	type perInstance struct {
		served, limited, streak int
		lastServed              time.Time
	}
	var (
		mu        sync.Mutex
		stats     = make([]perInstance, len(insts))
		next      atomic.Int64
		sample    string
		sampleErr string
	)
	done := func() bool {
		for _, st := range stats {
			if st.streak < quiet {
				return false
			}
		}
		return true
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				stop := done() || time.Since(start) > 15*time.Second
				mu.Unlock()
				if stop {
					return
				}
				if err := pace.Wait(context.Background()); err != nil {
					t.Error(err)
					return
				}
				i := int(next.Add(1)) % len(insts)
				resp, err := c.client.Get(insts[i].URL + s.wmts + tilePath)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				st := &stats[i]
				switch resp.StatusCode {
				case http.StatusFound:
					st.served++
					st.streak = 0
					st.lastServed = time.Now()
				case http.StatusTooManyRequests:
					st.limited++
					st.streak++
					if sample == "" {
						sample, sampleErr = string(body), resp.Header.Get("Retry-After")
					}
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if !done() {
		t.Fatalf("after 15 s not every instance refuses the key: %+v", stats)
	}
	if !strings.Contains(sample, "limit: daily_requests") {
		t.Fatalf("the 429 does not name the daily limit:\n%s", sample)
	}
	if n, err := strconv.Atoi(sampleErr); err != nil || n < 1 || n > 86400 {
		t.Fatalf("Retry-After %q for the daily quota, want seconds until midnight UTC", sampleErr)
	}
	served, limited := 0, 0
	rate := 0.0 // the fastest instance's served requests per second
	for _, st := range stats {
		served += st.served
		limited += st.limited
		if d := st.lastServed.Sub(start).Seconds(); d > 0 {
			rate = max(rate, float64(st.served)/d)
		}
	}
	// The documented bound (usage.Subject.OverDaily): about (N-1) × r ×
	// 2 × Flush, plus the requests in flight together when the quota is
	// reached, which all passed the check before any was counted. An
	// interval is really Flush plus a write and a read of the table,
	// which matter next to so short a Flush: the slowest are added.
	var storage time.Duration
	for _, inst := range insts {
		storage = max(storage, inst.sink.roundTrip())
	}
	interval := flush + storage
	bound := int(float64(len(insts)-1)*rate*2*interval.Seconds()) + workers
	overshoot := served - daily
	figure(t, "daily_requests %d over 3 instances (USAGE_FLUSH %v, slowest table write+read %v, %d clients): %d served, overshoot %d (%.1f%%), documented bound %d at %.0f requests/s per instance; %d answered 429",
		daily, flush, storage.Round(time.Millisecond), workers, served, overshoot, 100*float64(overshoot)/daily, bound, rate, limited)
	if bound >= (len(insts)-1)*daily {
		t.Fatalf("the bound %d is no tighter than instances that never share (%d over): this run cannot tell", bound, (len(insts)-1)*daily)
	}
	if served < daily {
		t.Fatalf("only %d requests served before the daily quota of %d stopped them", served, daily)
	}
	if overshoot > bound {
		t.Fatalf("the instances overshot the daily quota by %d, beyond the documented bound of %d", overshoot, bound)
	}
	// What the report says the key used agrees with what was answered.
	closeUsageCounters(t, insts...)
	lines, _ := c.report(report.ByKey)
	got := lines[orgAlpha+"|"+s.id.Key]
	if got[usage.TilesRedirected] != int64(served) || got[usage.RateLimited] != int64(limited) {
		t.Fatalf("the report says %s, the clients saw %d served and %d limited", usageString(got), served, limited)
	}
	c.assertTableHoldsNoSecret(orgAlpha, s.id.Key)
}
