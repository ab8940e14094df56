package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
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

func opened(src usage.Source) func(context.Context) (usage.Source, error) {
	return func(context.Context) (usage.Source, error) { return src, nil }
}

func runOut(t *testing.T, src usage.Source, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out, opened(src), now); err != nil {
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
		{"credential URL deadbeef", "7", "0", "0", "0", "0", "0", "0", "4", "0", "1", "2", "0"},
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
	if doc.Rows[3]["org"] != "credential URL deadbeef" || doc.Rows[3]["key"] != "deadbeef" || doc.Rows[3]["upstream_failed"] != 2.0 {
		t.Fatalf("json row: %v", doc.Rows[3])
	}
	table := tableCells(t, runOut(t, src))
	want := []map[string]string{
		{"org": "Acme & Sons <Water>", "requests": "162", "bytes_streamed": "100.0 kB", "tiles_redirected": "150"},
		{"org": "Bravo Roads", "requests": "38", "bytes_streamed": "0 B", "wms_getmap": "30"},
		{"org": "credential URL deadbeef", "requests": "7", "bytes_streamed": "0 B", "refused": "4"},
		{"org": "TOTAL", "requests": "207", "bytes_streamed": "100.0 kB", "upstream_failed": "2"},
	}
	if len(table) != len(want) {
		t.Fatalf("table lines %v, want 3 orgs and the total", table)
	}
	// Names start where their column does; numbers end where theirs does.
	text := strings.Split(runOut(t, src), "\n")
	if i, j := strings.Index(text[0], "org"), strings.Index(text[3], "credential URL"); i != j || i != strings.Index(text[1], "Acme") {
		t.Errorf("names are not left-aligned:\n%s", strings.Join(text, "\n"))
	}
	if i, j := strings.Index(text[0], "bytes_streamed")+len("bytes_streamed"), strings.Index(text[1], "100.0 kB")+len("100.0 kB"); i != j {
		t.Errorf("bytes are not right-aligned:\n%s", strings.Join(text, "\n"))
	}
	for i, w := range want {
		for col, v := range w {
			if table[i][col] != v {
				t.Errorf("table line %d, %s: %q, want %q", i+1, col, table[i][col], v)
			}
		}
	}
}

// tableCells reads a table as a person does, into one map per line
// (after the header) from column name to cell: columns are separated by
// gutters, runs of two or more positions blank on every line.
func tableCells(t *testing.T, table string) []map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	rows := make([][]rune, len(lines))
	width := 0
	for i, l := range lines {
		rows[i] = []rune(l)
		width = max(width, len(rows[i]))
	}
	blank := func(x int) bool {
		for _, r := range rows {
			if x < len(r) && r[x] != ' ' {
				return false
			}
		}
		return true
	}
	type span struct{ from, to int }
	var cols []span
	for x := 0; x < width; {
		gap := x
		for gap < width && blank(gap) {
			gap++
		}
		if gap-x < 2 && x > 0 {
			t.Fatalf("columns %d apart at %d, not a table:\n%s", gap-x, x, table)
		}
		end := gap
		for end < width && !(blank(end) && end+1 < width && blank(end+1)) {
			end++
		}
		if end > gap {
			cols = append(cols, span{gap, end})
		}
		x = end
	}
	cell := func(r []rune, c span) string {
		return strings.TrimSpace(string(r[min(c.from, len(r)):min(c.to, len(r))]))
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for _, c := range cols {
			m[cell(rows[0], c)] = cell(r, c)
		}
		out = append(out, m)
	}
	return out
}

func TestUsageErrors(t *testing.T) {
	src := fixture(t)
	for _, args := range [][]string{
		{"--by", "week"}, {"--format", "xml"}, {"--from", "14/03/2026"}, {"--from", "2026-03-10", "--to", "2026-03-01"}, {"extra"},
	} {
		if err := run(context.Background(), args, io.Discard, opened(src), now); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestOrgSelectsOneOrganisation(t *testing.T) {
	src := fixture(t)
	table := tableCells(t, runOut(t, src, "--org", "ACME & sons <water>", "--by", "key"))
	if len(table) != 3 || table[0]["key"] != "1a2b3c4d" || table[1]["key"] != "5e6f7a8b" || table[2]["requests"] != "162" {
		t.Errorf("--org by key: %v", table)
	}
	for _, l := range table[:2] {
		if l["org"] != "Acme & Sons <Water>" {
			t.Errorf("--org let %q in", l["org"])
		}
	}
	if got := tableCells(t, runOut(t, src, "--org", "Credential URL DEADBEEF")); len(got) != 2 || got[0]["org"] != "credential URL deadbeef" {
		t.Errorf("--org for a credential URL: %v", got)
	}
	var doc struct{ Rows []map[string]any }
	if err := json.Unmarshal([]byte(runOut(t, src, "--org", "bravo roads", "--by", "day", "--format", "json", "--from", "2026-02-01")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Rows) != 2 || doc.Rows[0]["day"] != "2026-02-27" || doc.Rows[1]["requests"] != 38.0 {
		t.Errorf("--org by day: %v", doc.Rows)
	}

	// A name that matches nothing, or half a name, is an error naming those that would.
	for _, org := range []string{"Charlie", "Bravo"} {
		err := run(context.Background(), []string{"--org", org}, io.Discard, opened(src), now)
		if err == nil || !strings.Contains(err.Error(), `no organisation "`+org+`" has usage from 2026-03-01 to 2026-03-14`) ||
			!strings.Contains(err.Error(), "\n  Bravo Roads\n") || !strings.Contains(err.Error(), "\n  credential URL deadbeef") {
			t.Errorf("--org %s: %v", org, err)
		}
	}
	err := run(context.Background(), []string{"--org", "Bravo Roads", "--from", "2025-01-01", "--to", "2025-01-31"}, io.Discard, opened(src), now)
	if err == nil || !strings.Contains(err.Error(), "nothing was counted from 2025-01-01 to 2025-01-31") {
		t.Errorf("--org over an empty period: %v", err)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"--by", "day", "-help"}} {
		var out bytes.Buffer
		opens := 0
		err := run(context.Background(), args, &out, func(context.Context) (usage.Source, error) { opens++; return nil, errors.New("no storage") }, now)
		if err != nil || out.String() != Help || opens != 0 {
			t.Errorf("%v: error %v, opened storage %d times, printed:\n%s", args, err, opens, out.String())
		}
	}
	for _, flagName := range []string{"--from", "--to", "--by", "--org", "--format", "--svg"} {
		if !strings.Contains(Help, "\n  "+flagName+" ") {
			t.Errorf("Help does not describe %s", flagName)
		}
	}
	err := run(context.Background(), []string{"--bogus"}, io.Discard, opened(fixture(t)), now)
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "flag provided but not defined: -bogus") || !strings.Contains(err.Error(), "\n  --org ORG ") || strings.Contains(err.Error(), "examples") {
		t.Errorf("unknown flag: %v", err)
	}
}

// An organisation's name comes from a record (another admin's, or the
// original HexProx's vault): its escape sequences must not reach the
// admin's terminal, in the table or in an error.
func TestNamesCannotDriveTheTerminal(t *testing.T) {
	s := &usage.MemorySink{}
	evil := usage.SubjectID{Org: "Evil\x1b]8;;https://evil.example\x1b\\click\x1b[2J\nFAKE\tROW", Key: "0badc0de"}
	if err := s.Write(context.Background(), []usage.Row{{Hour: at(12, 9), Instance: "a", SubjectID: evil, Counts: usage.Counts{usage.TilesStreamed: 3}}}); err != nil {
		t.Fatal(err)
	}
	out := runOut(t, s, "--by", "key")
	err := run(context.Background(), []string{"--org", "nobody"}, io.Discard, opened(s), now)
	if err == nil {
		t.Fatal("--org nobody found someone")
	}
	for what, text := range map[string]string{"table": out, "error": err.Error()} {
		if strings.ContainsAny(text, "\x1b\t") || !strings.Contains(text, `Evil\x1b]8;;https://evil.example\x1b\\click\x1b[2J\nFAKE\tROW`) {
			t.Errorf("%s shows the name unescaped:\n%q", what, text)
		}
	}
}
