package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/usage"
)

var (
	acme  = usage.SubjectID{Org: "Acme & Sons <Water>", Key: "1a2b3c4d"}
	acme2 = usage.SubjectID{Org: "Acme & Sons <Water>", Key: "5e6f7a8b"}
	bravo = usage.SubjectID{Org: "Bravo Roads", Key: "9c0d1e2f"}
	v1    = usage.SubjectID{Key: "deadbeef"}
	now   = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
)

func at(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC) }

// fixture: three instances, four subjects, three days in March and one
// row in February.
func fixture(t *testing.T) *usage.MemorySink {
	t.Helper()
	s := &usage.MemorySink{}
	rows := []usage.Row{
		{Hour: at(12, 9), Instance: "a", SubjectID: acme, Counts: usage.Counts{usage.TilesRedirected: 100, usage.Capabilities: 2}},
		{Hour: at(12, 9), Instance: "b", SubjectID: acme, Counts: usage.Counts{usage.TilesRedirected: 50}},
		{Hour: at(12, 10), Instance: "c", SubjectID: acme2, Counts: usage.Counts{usage.TilesStreamed: 10, usage.BytesStreamed: 99999}},
		{Hour: at(13, 8), Instance: "a", SubjectID: bravo, Counts: usage.Counts{usage.WMSGetMap: 30, usage.WMSOther: 3, usage.RateLimited: 5}},
		{Hour: at(14, 11), Instance: "b", SubjectID: v1, Counts: usage.Counts{usage.Refused: 4, usage.BadRequest: 1, usage.UpstreamFailed: 2}},
		{Hour: time.Date(2026, 2, 27, 5, 0, 0, 0, time.UTC), Instance: "a", SubjectID: bravo, Counts: usage.Counts{usage.TilesRedirected: 1000}},
	}
	if err := s.Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	return s
}

func runOut(t *testing.T, src usage.Source, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out, src, now); err != nil {
		t.Fatalf("usage %v: %v", args, err)
	}
	return out.String()
}

func TestCSVByOrgDefaultsToThisMonth(t *testing.T) {
	out := runOut(t, fixture(t), "--format", "csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"org", "requests", "tiles_redirected", "tiles_streamed", "bytes_streamed", "capabilities", "wms_getmap", "wms_other", "refused", "rate_limited", "bad_request", "upstream_failed", "about"},
		{"Acme & Sons <Water>", "162", "150", "10", "99999", "2", "0", "0", "0", "0", "0", "0", "0"},
		{"Bravo Roads", "38", "0", "0", "0", "0", "30", "3", "0", "5", "0", "0", "0"},
		{"v1 deadbeef", "7", "0", "0", "0", "0", "0", "0", "4", "0", "1", "2", "0"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d:\n%s", len(recs), len(want), out)
	}
	for i := range want {
		if strings.Join(recs[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("line %d: %v, want %v", i, recs[i], want[i])
		}
	}
}

func TestByKeyDayHourAndRange(t *testing.T) {
	src := fixture(t)
	lines := func(args ...string) []string {
		out := strings.TrimSpace(runOut(t, src, append(args, "--format", "csv")...))
		return strings.Split(out, "\n")[1:]
	}
	if got := lines("--by", "key"); len(got) != 4 || !strings.HasPrefix(got[1], "Acme & Sons <Water>,5e6f7a8b,10,") {
		t.Errorf("by key: %q", got)
	}
	if got := lines("--by", "day"); len(got) != 3 || got[0] != "2026-03-12,162,150,10,99999,2,0,0,0,0,0,0,0" {
		t.Errorf("by day: %q", got)
	}
	if got := lines("--by", "hour"); len(got) != 4 || !strings.HasPrefix(got[0], "2026-03-12T09,152,") {
		t.Errorf("by hour: %q", got)
	}
	if got := lines("--by", "org", "--from", "2026-02-01", "--to", "2026-03-12"); len(got) != 2 || got[1] != "Bravo Roads,1000,1000,0,0,0,0,0,0,0,0,0,0" {
		t.Errorf("February to March 12: %q", got)
	}
}

func TestJSONAndTable(t *testing.T) {
	src := fixture(t)
	var doc struct {
		From, To, By string
		Rows         []map[string]any
		Total        map[string]int64
	}
	if err := json.Unmarshal([]byte(runOut(t, src, "--format", "json", "--by", "key")), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.From != "2026-03-01" || doc.To != "2026-03-14" || doc.By != "key" || len(doc.Rows) != 4 {
		t.Fatalf("json: %+v", doc)
	}
	if doc.Total["requests"] != 207 || doc.Total["bytes_streamed"] != 99999 || doc.Total["refused"] != 4 {
		t.Fatalf("json total: %v", doc.Total)
	}
	if doc.Rows[3]["org"] != "v1 deadbeef" || doc.Rows[3]["key"] != "deadbeef" || doc.Rows[3]["upstream_failed"] != 2.0 {
		t.Fatalf("json row: %v", doc.Rows[3])
	}
	table := runOut(t, src)
	for _, want := range []string{"org", "Bravo Roads", "TOTAL", "207", "99999"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if n := len(strings.Split(strings.TrimSpace(table), "\n")); n != 5 {
		t.Errorf("table has %d lines, want header, 3 orgs, total:\n%s", n, table)
	}
}

func TestSVGHasOneSeriesPerOrg(t *testing.T) {
	file := filepath.Join(t.TempDir(), "usage.svg")
	runOut(t, fixture(t), "--svg", file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	series := map[string]int{} // org → bars
	var cur string
	var heights []float64
	sawAxes, sawLegend := false, false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG does not parse: %v\n%s", err, b)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attr := func(n string) string {
				for _, a := range el.Attr {
					if a.Name.Local == n {
						return a.Value
					}
				}
				return ""
			}
			switch {
			case el.Name.Local == "g" && attr("class") == "series":
				cur = attr("data-org")
				series[cur] = 0
			case el.Name.Local == "g" && attr("class") == "axes":
				sawAxes = true
			case el.Name.Local == "g" && attr("class") == "legend":
				sawLegend, cur = true, ""
			case el.Name.Local == "rect" && cur != "":
				series[cur]++
				h, _ := strconv.ParseFloat(attr("height"), 64)
				heights = append(heights, h)
			}
		case xml.EndElement:
			if el.Name.Local == "g" {
				cur = ""
			}
		}
	}
	want := map[string]int{"Acme & Sons <Water>": 1, "Bravo Roads": 1, "v1 deadbeef": 1}
	if len(series) != len(want) {
		t.Fatalf("series %v, want %v", series, want)
	}
	for o, n := range want {
		if series[o] != n {
			t.Errorf("series %q has %d bars, want %d", o, series[o], n)
		}
	}
	if !sawAxes || !sawLegend {
		t.Error("no axes or no legend")
	}
	// The tallest day (162 requests) fills the plot; the others scale.
	if len(heights) != 3 || heights[0] != 300 || heights[1] < 70 || heights[1] > 71 {
		t.Errorf("bar heights %v", heights)
	}
}

func TestUsageErrors(t *testing.T) {
	src := fixture(t)
	for _, args := range [][]string{
		{"--by", "week"}, {"--format", "xml"}, {"--from", "14/03/2026"}, {"--from", "2026-03-10", "--to", "2026-03-01"}, {"extra"},
	} {
		if err := run(context.Background(), args, io.Discard, src, now); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
