package usagetable_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/azuritetest"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/report"
	"github.com/hexprox/hexprox/internal/usage/usagetable"
)

var t0 = time.Date(2026, 3, 14, 10, 15, 0, 0, time.UTC)

func service(t *testing.T, endpoint string) *aztables.ServiceClient {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(azstorage.DevelopmentConnectionString(endpoint),
		&aztables.ClientOptions{ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func sinkOn(t *testing.T, endpoint, table string) *usagetable.Sink {
	t.Helper()
	s := usagetable.New(service(t, endpoint), table)
	if err := s.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t *testing.T, s usage.Source) []usage.Row {
	t.Helper()
	rows, err := s.Read(context.Background(), usage.Query{From: t0.Add(-30 * 24 * time.Hour), To: t0.Add(30 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestWriteReplacesAndReadSelects(t *testing.T) {
	az := azuritetest.Start(t)
	s := sinkOn(t, az.Endpoint(), "roundtrip")
	ctx := context.Background()
	odd := usage.SubjectID{Org: "O'Brien | Söhne/#?%", Key: "0a1b2c3d"}
	near := usage.SubjectID{Org: "O'Brien | Söhne/#?", Key: "0a1b2c3d"}
	v1 := usage.SubjectID{Key: "deadbeef"}
	h := t0.Truncate(time.Hour)
	rows := []usage.Row{
		{Hour: h, Instance: "i1", SubjectID: odd, Counts: usage.Counts{usage.TilesRedirected: 1}},
		{Hour: h, Instance: "i1", SubjectID: near, Counts: usage.Counts{usage.TilesRedirected: 2}},
		{Hour: h.Add(-24 * time.Hour), Instance: "i1", SubjectID: odd, Counts: usage.Counts{usage.BytesStreamed: 1 << 40}},
		{Hour: h, Instance: "i2", SubjectID: v1, Counts: usage.Counts{usage.Refused: 5}},
	}
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	rows[0].Counts[usage.TilesRedirected] = 10 // absolute totals replace
	if err := s.Write(ctx, rows[:1]); err != nil {
		t.Fatal(err)
	}
	all := readAll(t, s)
	if len(all) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(all), all)
	}
	got, err := s.Read(ctx, usage.Query{From: h, To: h.Add(time.Hour), Only: &odd})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Counts[usage.TilesRedirected] != 10 || got[0].Instance != "i1" || !got[0].Hour.Equal(h) {
		t.Fatalf("one subject, one hour: %+v", got)
	}
	got, _ = s.Read(ctx, usage.Query{From: h.Add(-48 * time.Hour), To: h, Only: &odd})
	if len(got) != 1 || got[0].Counts[usage.BytesStreamed] != 1<<40 {
		t.Fatalf("yesterday, Int64 counts: %+v", got)
	}
	// A table not created yet reads as empty and is created on write.
	fresh := usagetable.New(service(t, az.Endpoint()), "notyet")
	if rows, err := fresh.Read(ctx, usage.Query{From: h, To: h.Add(time.Hour)}); err != nil || len(rows) != 0 {
		t.Fatalf("missing table: %v %v", rows, err)
	}
	if err := fresh.Write(ctx, rows[:1]); err != nil {
		t.Fatalf("write to a missing table: %v", err)
	}
}

// keyFingerprint stands for the API keys' fingerprint (an HMAC prefix).
func keyFingerprint(key string) string {
	m := hmac.New(sha256.New, []byte("test"))
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

type mix struct {
	id    usage.SubjectID
	kinds map[usage.Kind]int64
}

// Three instances count a known mix concurrently, flushing as they go; one
// of them dies without Close. The table holds exactly what the two live
// ones counted, and what the dead one counted up to its last flush.
func TestThreeInstancesAddUp(t *testing.T) {
	az := azuritetest.Start(t)
	sink := sinkOn(t, az.Endpoint(), "three")
	clk := testclock.New(t0)
	cred := credential.Credential{ID: "client-id-SECRET1", Secret: "client-secret-SECRET2"}
	acme := usage.SubjectID{Org: "Acme Water", Key: keyFingerprint("hxk-acme-SECRET3")}
	bravo := usage.SubjectID{Org: "Bravo Roads", Key: keyFingerprint("hxk-bravo-SECRET4")}
	v1 := usage.SubjectID{Key: cred.Fingerprint("")}
	plan := []mix{
		{acme, map[usage.Kind]int64{usage.TilesRedirected: 700, usage.TilesStreamed: 50, usage.BytesStreamed: 50 * 20000, usage.Capabilities: 7, usage.RateLimited: 13}},
		{bravo, map[usage.Kind]int64{usage.WMSGetMap: 300, usage.WMSOther: 20, usage.BadRequest: 4, usage.UpstreamFailed: 2}},
		{v1, map[usage.Kind]int64{usage.TilesRedirected: 90, usage.Refused: 11}},
	}
	counters := make([]*usage.Counter, 3)
	for i, inst := range []string{"inst-a", "inst-b", "inst-c"} {
		counters[i] = usage.New(usage.Options{Sink: sink, Instance: inst, Now: clk.Now, NoLoop: true})
	}
	var deadLost int64 // requests the killed instance counted but never flushed
	var wg sync.WaitGroup
	for i, c := range counters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for _, m := range plan {
				s := c.Subject(m.id)
				for k, total := range m.kinds {
					per := total / 3
					if k == usage.BytesStreamed {
						s.Add(k, per)
						n++
						continue
					}
					for range per {
						s.Inc(k)
						if n++; n%97 == 0 {
							if err := c.Flush(context.Background()); err != nil {
								t.Error(err)
							}
						}
					}
				}
			}
			if i == 2 { // killed: its last interval is never flushed
				return
			}
			if err := c.Close(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// What the dead instance managed to flush is in its own rows.
	dead := map[usage.SubjectID]usage.Counts{}
	for _, r := range readAll(t, sink) {
		if r.Instance == "inst-c" {
			c := dead[r.SubjectID]
			c.Add(r.Counts)
			dead[r.SubjectID] = c
		}
	}
	live := counters[2].Snapshot(t0.Add(-time.Hour), t0.Add(time.Hour))
	for _, r := range live {
		deadLost += r.Counts.Requests() - dead[r.SubjectID].Requests()
	}
	if deadLost <= 0 || deadLost >= 97 {
		t.Fatalf("the killed instance lost %d requests; want some, and under one flush interval (97)", deadLost)
	}

	got := map[usage.SubjectID]usage.Counts{}
	for _, r := range readAll(t, sink) {
		c := got[r.SubjectID]
		c.Add(r.Counts)
		got[r.SubjectID] = c
	}
	wantReq := map[string]int64{}
	for _, m := range plan {
		var want usage.Counts
		for k, total := range m.kinds {
			want[k] = total / 3 * 3
		}
		// Subtract what the dead instance never flushed.
		for _, r := range live {
			if r.SubjectID == m.id {
				for k := range want {
					want[k] -= r.Counts[k] - dead[m.id][k]
				}
			}
		}
		if got[m.id] != want {
			t.Errorf("%v: table %v, want %v", m.id, got[m.id], want)
		}
		wantReq[report.OrgLabel(m.id)] = want.Requests()
	}
	// The report command reads the same totals by organisation.
	var out bytes.Buffer
	if err := report.Run(context.Background(), []string{"--from", "2026-03-14", "--to", "2026-03-14", "--format", "json"}, &out, sink); err != nil {
		t.Fatal(err)
	}
	var doc struct{ Rows []map[string]any }
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) != len(wantReq) {
		t.Fatalf("report rows %v", doc.Rows)
	}
	for _, r := range doc.Rows {
		if org, _ := r["org"].(string); int64(r["requests"].(float64)) != wantReq[org] {
			t.Errorf("report: %s has %v requests, want %d", org, r["requests"], wantReq[org])
		}
	}
	assertNoSecret(t, az, "three", "client-id-SECRET1", "client-secret-SECRET2", "hxk-acme-SECRET3", "hxk-bravo-SECRET4", cred.Key())
}

// assertNoSecret reads the table's raw entities and looks for secrets.
func assertNoSecret(t *testing.T, az *azuritetest.Azurite, table string, secrets ...string) {
	t.Helper()
	rows := az.Rows(t, table)
	for _, raw := range rows {
		for _, s := range secrets {
			if strings.Contains(raw, s) {
				t.Fatalf("a usage row holds a secret: %s", raw)
			}
		}
	}
	if len(rows) == 0 {
		t.Fatal("no rows scanned")
	}
}

// gate is a TCP forwarder to Azurite that can be cut and restored: storage
// unreachable without losing what it holds.
type gate struct {
	l     net.Listener
	to    string
	down  atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
}

func newGate(t *testing.T, to string) *gate {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{l: l, to: to}
	t.Cleanup(func() { l.Close(); g.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if g.down.Load() {
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			g.mu.Lock()
			g.conns = append(g.conns, c, u)
			g.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return g
}

func (g *gate) cut() {
	g.down.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

func (g *gate) endpoint() string { return "http://" + g.l.Addr().String() + "/devstoreaccount1" }

// Storage cut for three hours of counting: every flush fails, no count
// fails, and once storage is back the table holds every count.
func TestStorageOutageLosesNothing(t *testing.T) {
	az := azuritetest.Start(t)
	sinkOn(t, az.Endpoint(), "outage")
	g := newGate(t, strings.TrimPrefix(strings.TrimSuffix(az.Endpoint(), "/devstoreaccount1"), "http://"))
	sink := usagetable.New(service(t, g.endpoint()), "outage")
	clk := testclock.New(t0)
	c := usage.New(usage.Options{Sink: sink, Instance: "i", Now: clk.Now, NoLoop: true, FlushTimeout: 2 * time.Second})
	s := c.Subject(usage.SubjectID{Org: "Acme", Key: "k"})
	var counted int64
	count := func(n int64) {
		s.Add(usage.TilesRedirected, n)
		counted += n
	}
	count(10)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.cut()
	for range 6 {
		count(7)
		if err := c.Flush(context.Background()); err == nil {
			t.Fatal("a flush through a cut connection succeeded")
		} else if strings.Contains(err.Error(), "AccountKey") || strings.Contains(err.Error(), "Eby8") {
			t.Fatalf("the flush error quotes the connection string: %v", err)
		}
		clk.Advance(30 * time.Minute)
		c.Tick()
	}
	g.down.Store(false)
	count(1)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatalf("after storage returned: %v", err)
	}
	var got int64
	for _, r := range readAll(t, sinkOn(t, az.Endpoint(), "outage")) {
		got += r.Counts[usage.TilesRedirected]
	}
	if got != counted {
		t.Fatalf("table holds %d, counted %d", got, counted)
	}
	if st := c.Stats(); st.FlushFailures != 6 {
		t.Fatalf("stats %+v", st)
	}
}
