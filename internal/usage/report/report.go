// Package report sums every instance's usage rows into reports: a table,
// CSV or JSON by organisation, key, day or hour; an SVG of requests per
// day stacked by organisation; and `handler usage`, the command that
// prints them.
package report

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/hexprox/hexprox/internal/humanize"
	"github.com/hexprox/hexprox/internal/termtext"
	"github.com/hexprox/hexprox/internal/usage"
)

// Dimensions a report groups by.
const (
	ByOrg  = "org"  // one line per organisation (credential URLs: one each)
	ByKey  = "key"  // one line per organisation and key fingerprint
	ByDay  = "day"  // one line per UTC day, all subjects
	ByHour = "hour" // one line per UTC hour, all subjects
)

// OrgLabel is how reports name a subject's organisation: its Org, or
// "credential URL <fingerprint>" for a credential URL (/wmts/{id}/{secret}),
// which has none; the fingerprint is the one the logs show as cred.
func OrgLabel(id usage.SubjectID) string {
	if id.Org == "" {
		return "credential URL " + id.Key
	}
	return id.Org
}

// Line is one report line: the group's columns (those of the dimension,
// others empty) and its totals.
type Line struct {
	Org, Key, Day, Hour string
	Counts              usage.Counts
}

// Columns are the group columns of a dimension.
func Columns(by string) []string {
	switch by {
	case ByKey:
		return []string{"org", "key"}
	case ByDay:
		return []string{"day"}
	case ByHour:
		return []string{"hour"}
	}
	return []string{"org"}
}

func (l Line) column(name string) string {
	switch name {
	case "org":
		return l.Org
	case "key":
		return l.Key
	case "day":
		return l.Day
	}
	return l.Hour
}

// Aggregate sums rows (every instance's) into lines by dimension by,
// sorted by their columns.
func Aggregate(rows []usage.Row, by string) ([]Line, error) {
	if !slices.Contains([]string{ByOrg, ByKey, ByDay, ByHour}, by) {
		return nil, fmt.Errorf("--by must be org, key, day or hour, not %q", by)
	}
	m := make(map[Line]usage.Counts)
	for _, r := range rows {
		var l Line
		switch by {
		case ByOrg:
			l.Org = OrgLabel(r.SubjectID)
		case ByKey:
			l.Org, l.Key = OrgLabel(r.SubjectID), r.Key
		case ByDay:
			l.Day = r.Hour.UTC().Format(time.DateOnly)
		case ByHour:
			l.Hour = r.Hour.UTC().Format("2006-01-02T15")
		}
		c := m[l]
		c.Add(r.Counts)
		m[l] = c
	}
	out := make([]Line, 0, len(m))
	for l, c := range m {
		l.Counts = c
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Line) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Day, b.Day), cmp.Compare(a.Hour, b.Hour))
	})
	return out, nil
}

// header is the count columns: requests, then every kind.
func header() []string {
	h := []string{"requests"}
	for _, k := range usage.Kinds() {
		h = append(h, k.String())
	}
	return h
}

func values(c usage.Counts) []string {
	v := []string{strconv.FormatInt(c.Requests(), 10)}
	for _, n := range c {
		v = append(v, strconv.FormatInt(n, 10))
	}
	return v
}

// tableValues are values for people: the byte count with its unit.
func tableValues(c usage.Counts) []string {
	v := values(c)
	v[1+int(usage.BytesStreamed)] = humanize.Bytes(c[usage.BytesStreamed])
	return v
}

// Write prints lines in format table, csv or json. The table is for
// people (bytes with units, a TOTAL line); csv and json keep every count
// a plain integer.
func Write(w io.Writer, format, by string, from, to time.Time, lines []Line) error {
	cols := Columns(by)
	var total usage.Counts
	for _, l := range lines {
		total.Add(l.Counts)
	}
	switch format {
	case "table":
		// Numbers align right; names, keys and times left: they are
		// padded to their column's width, which AlignRight then keeps.
		group := [][]string{slices.Clone(cols)}
		for _, l := range lines {
			cells := groupCells(l, cols)
			for i := range cells {
				cells[i] = termtext.Printable(cells[i]) // names from records, on a terminal
			}
			group = append(group, cells)
		}
		group = append(group, append([]string{"TOTAL"}, make([]string, len(cols)-1)...))
		for c := range cols {
			width := 0
			for _, g := range group {
				width = max(width, utf8.RuneCountInString(g[c]))
			}
			for _, g := range group {
				g[c] += strings.Repeat(" ", width-utf8.RuneCountInString(g[c]))
			}
		}
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		row := func(cells []string) { fmt.Fprintln(tw, strings.TrimRight(joinTab(cells), " ")) }
		row(append(group[0], header()...))
		for i, l := range lines {
			row(append(group[1+i], tableValues(l.Counts)...))
		}
		row(append(group[len(group)-1], tableValues(total)...))
		return tw.Flush()
	case "csv":
		cw := csv.NewWriter(w)
		cw.Write(append(slices.Clone(cols), header()...))
		for _, l := range lines {
			cw.Write(append(groupCells(l, cols), values(l.Counts)...))
		}
		cw.Flush()
		return cw.Error()
	case "json":
		obj := func(l Line, withCols bool) map[string]any {
			m := map[string]any{"requests": l.Counts.Requests()}
			if withCols {
				for _, c := range cols {
					m[c] = l.column(c)
				}
			}
			for k, n := range l.Counts {
				m[usage.Kind(k).String()] = n
			}
			return m
		}
		rows := []map[string]any{}
		for _, l := range lines {
			rows = append(rows, obj(l, true))
		}
		doc := map[string]any{
			"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "by": by,
			"rows": rows, "total": obj(Line{Counts: total}, false),
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	return fmt.Errorf("--format must be table, csv or json, not %q", format)
}

func groupCells(l Line, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = l.column(c)
	}
	return out
}

func joinTab(cells []string) string {
	s := ""
	for _, c := range cells {
		s += c + "\t"
	}
	return s
}

// options is the command line and its options, which Help shows and a
// malformed command line's error repeats.
const options = `handler usage [options]
  --from DATE      first day, YYYY-MM-DD (default: the first of this month)
  --to DATE        last day, inclusive (default: today)
  --by WHAT        one line per org (default), key, day or hour
  --org ORG        only this organisation (case-insensitive, whole name)
  --format FORMAT  table (default; bytes with units), csv or json (plain
                   integers)
  --svg FILE       also write a chart of requests per day, stacked by
                   organisation (the 9 largest; the rest as "others"),
                   to FILE`

// Help is the text `handler usage -h` prints.
const Help = `handler usage: requests per organisation, key, day or hour, from the
counts every instance of HexProx writes.

It reads the same storage settings as the server: USAGE_TABLE on the
token table's storage account, or, with no storage account, USAGE_DIR.
Days are UTC. An organisation is an API key's organisation, or
"credential URL 1a2b3c4d" for a credential URL (/wmts/{id}/{secret}),
named by the fingerprint the logs show as cred.

` + options + `

  examples:
    handler usage
    handler usage --from 2026-10-01 --to 2026-10-31 --by day --format csv
    handler usage --org "Marin County" --by key
    handler usage --svg october.svg --from 2026-10-01 --to 2026-10-31

handler usage help
  This text; so do -h and --help.
`

// Run is `handler usage [--from DATE] [--to DATE] [--by org|key|day|hour]
// [--org ORG] [--format table|csv|json] [--svg FILE]` (see Help): it sums
// every instance's rows in src between the two UTC dates (inclusive;
// defaults: the first of this month, and today) and prints them to
// stdout; --svg also writes the requests-per-day chart to FILE. args
// exclude the "usage" word. -h, --help and "help" print Help and return
// nil; malformed arguments return an error that wraps ErrUsage and shows
// Help's options.
func Run(ctx context.Context, args []string, stdout io.Writer, src usage.Source) error {
	return RunWith(ctx, args, stdout, func(context.Context) (usage.Source, error) { return src, nil })
}

// RunWith is Run with the source opened by open, which is called only
// once the arguments are valid and help was not asked for: `handler usage
// -h` needs no storage settings.
func RunWith(ctx context.Context, args []string, stdout io.Writer, open func(context.Context) (usage.Source, error)) error {
	return run(ctx, args, stdout, open, time.Now())
}

// ErrUsage is wrapped by the errors of malformed command lines.
var ErrUsage = errors.New("usage")

func usageError(format string, a ...any) error {
	return fmt.Errorf("%w: %s\n\n%s", ErrUsage, fmt.Sprintf(format, a...), options)
}

func run(ctx context.Context, args []string, stdout io.Writer, open func(context.Context) (usage.Source, error), now time.Time) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	now = now.UTC()
	from := fs.String("from", time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), "")
	to := fs.String("to", now.Format(time.DateOnly), "")
	by := fs.String("by", ByOrg, "")
	org := fs.String("org", "", "")
	format := fs.String("format", "table", "")
	svg := fs.String("svg", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, err := io.WriteString(stdout, Help)
			return err
		}
		return usageError("%v", err)
	}
	if fs.NArg() == 1 && fs.Arg(0) == "help" {
		_, err := io.WriteString(stdout, Help)
		return err
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments %q", fs.Args())
	}
	f, err := time.Parse(time.DateOnly, *from)
	if err != nil {
		return usageError("--from must be YYYY-MM-DD, not %q", *from)
	}
	t, err := time.Parse(time.DateOnly, *to)
	if err != nil {
		return usageError("--to must be YYYY-MM-DD, not %q", *to)
	}
	if t.Before(f) {
		return usageError("--to %s is before --from %s", *to, *from)
	}
	if !slices.Contains([]string{ByOrg, ByKey, ByDay, ByHour}, *by) {
		return usageError("--by must be org, key, day or hour, not %q", *by)
	}
	if !slices.Contains([]string{"table", "csv", "json"}, *format) {
		return usageError("--format must be table, csv or json, not %q", *format)
	}
	src, err := open(ctx)
	if err != nil {
		return err
	}
	rows, err := src.Read(ctx, usage.Query{From: f, To: t.AddDate(0, 0, 1)})
	if err != nil {
		return fmt.Errorf("usage: reading the usage table: %w", err)
	}
	if *org != "" {
		if rows, err = onlyOrg(rows, *org, f, t); err != nil {
			return err
		}
	}
	lines, err := Aggregate(rows, *by)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	if err := Write(stdout, *format, *by, f, t, lines); err != nil {
		return err
	}
	if *svg != "" {
		out, err := os.Create(*svg)
		if err != nil {
			return fmt.Errorf("usage: %w", err)
		}
		if err := WriteSVG(out, rows, f, t, *org); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	return nil
}

// onlyOrg keeps the rows of the organisation whose OrgLabel is org, in
// any case. None matching is an error that names the organisations the
// period has, so that the admin can copy one.
func onlyOrg(rows []usage.Row, org string, from, to time.Time) ([]usage.Row, error) {
	var out []usage.Row
	seen := map[string]bool{}
	for _, r := range rows {
		l := OrgLabel(r.SubjectID)
		if strings.EqualFold(l, org) {
			out = append(out, r)
		}
		seen[l] = true
	}
	if len(out) > 0 {
		return out, nil
	}
	period := from.Format(time.DateOnly) + " to " + to.Format(time.DateOnly)
	if len(seen) == 0 {
		return nil, fmt.Errorf("usage: no organisation %q: nothing was counted from %s", org, period)
	}
	names := slices.Sorted(maps.Keys(seen))
	for i, n := range names {
		names[i] = termtext.Printable(n)
	}
	const most = 20
	more := ""
	if len(names) > most {
		more = fmt.Sprintf("\n  ... and %d more (handler usage --from %s --to %s lists them all)", len(names)-most, from.Format(time.DateOnly), to.Format(time.DateOnly))
		names = names[:most]
	}
	return nil, fmt.Errorf("usage: no organisation %q has usage from %s; these do:\n  %s%s", org, period, strings.Join(names, "\n  "), more)
}
