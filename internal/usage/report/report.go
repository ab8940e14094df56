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
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/hexprox/hexprox/internal/usage"
)

// Dimensions a report groups by.
const (
	ByOrg  = "org"  // one line per organisation (v1 credentials: one each)
	ByKey  = "key"  // one line per organisation and key fingerprint
	ByDay  = "day"  // one line per UTC day, all subjects
	ByHour = "hour" // one line per UTC hour, all subjects
)

// OrgLabel is how reports name a subject's organisation: its Org, or
// "v1 <fingerprint>" for a v1 credential URL, which has none.
func OrgLabel(id usage.SubjectID) string {
	if id.Org == "" {
		return "v1 " + id.Key
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

// Write prints lines in format table, csv or json.
func Write(w io.Writer, format, by string, from, to time.Time, lines []Line) error {
	cols := Columns(by)
	var total usage.Counts
	for _, l := range lines {
		total.Add(l.Counts)
	}
	switch format {
	case "table":
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		row := func(cells []string) { fmt.Fprintln(tw, joinTab(cells)) }
		row(append(slices.Clone(cols), header()...))
		for _, l := range lines {
			row(append(groupCells(l, cols), values(l.Counts)...))
		}
		tot := make([]string, len(cols))
		tot[0] = "TOTAL"
		row(append(tot, values(total)...))
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

// Run is `handler usage [--from DATE] [--to DATE] [--by org|key|day|hour]
// [--format table|csv|json] [--svg FILE]`: it sums every instance's rows
// in src between the two UTC dates (inclusive; defaults: the first of this
// month, and today) and prints them to stdout; --svg also writes the
// requests-per-day chart to FILE. args exclude the "usage" word. Usage
// errors are returned (flag.ErrHelp for -h).
func Run(ctx context.Context, args []string, stdout io.Writer, src usage.Source) error {
	return run(ctx, args, stdout, src, time.Now())
}

func run(ctx context.Context, args []string, stdout io.Writer, src usage.Source, now time.Time) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(stdout)
	now = now.UTC()
	from := fs.String("from", time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), "first UTC day, YYYY-MM-DD")
	to := fs.String("to", now.Format(time.DateOnly), "last UTC day, YYYY-MM-DD (inclusive)")
	by := fs.String("by", ByOrg, "group by org, key, day or hour")
	format := fs.String("format", "table", "table, csv or json")
	svg := fs.String("svg", "", "also write requests per day, stacked by organisation, to this SVG file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("usage: unexpected arguments %q", fs.Args())
	}
	f, err := time.Parse(time.DateOnly, *from)
	if err != nil {
		return fmt.Errorf("usage: --from must be YYYY-MM-DD: %w", err)
	}
	t, err := time.Parse(time.DateOnly, *to)
	if err != nil {
		return fmt.Errorf("usage: --to must be YYYY-MM-DD: %w", err)
	}
	if t.Before(f) {
		return errors.New("usage: --to is before --from")
	}
	if !slices.Contains([]string{"table", "csv", "json"}, *format) {
		return fmt.Errorf("usage: --format must be table, csv or json, not %q", *format)
	}
	rows, err := src.Read(ctx, usage.Query{From: f, To: t.AddDate(0, 0, 1)})
	if err != nil {
		return fmt.Errorf("usage: reading the usage table: %w", err)
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
		if err := WriteSVG(out, rows, f, t); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	return nil
}
