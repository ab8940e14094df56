package report

import (
	"bufio"
	"cmp"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/humanize"
	"github.com/hexprox/hexprox/internal/usage"
)

// palette is Tableau 10: ten colours told apart at a glance, also by most
// colour-blind readers. More than ten series in one stack would not be:
// the chart folds the smallest organisations into one grey "others"
// series instead (the table still lists each), so no two series ever
// share a colour.
var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

// maxSeries is how many series a chart draws: with more organisations,
// the maxSeries-1 largest and "others", in palette's last colour (grey).
var maxSeries = len(palette)

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// series is one stack layer: an organisation, or the others together.
type series struct {
	label string
	days  []int64
	total int64
	orgs  int // organisations in it: 1, or more for others
}

// WriteSVG draws requests per UTC day from first to last (inclusive),
// stacked by organisation (OrgLabel), with a visible title that states the
// period and, when org is not "", the organisation the rows were chosen
// for. Each series is one <g class="series" data-org=… fill=…> with one
// <rect> per day it has requests, drawn largest first (at the bottom);
// every series has its own colour: beyond maxSeries organisations, the
// smallest fold into one "others, N organisations" series. The y axis
// (<g class="yticks">) is labelled at round steps of 1, 2, 2.5 or 5 × 10^n
// requests from 0 to the first step at or above the busiest day; the
// legend (<g class="legend">) names each series with its total.
func WriteSVG(w io.Writer, rows []usage.Row, first, last time.Time, org string) error {
	days := int(last.Sub(first).Hours()/24) + 1
	per := map[string]*series{}
	for _, r := range rows {
		if r.Hour.Before(first) { // int() would round the hours before first to day 0
			continue
		}
		d := int(r.Hour.Sub(first).Hours() / 24)
		if d >= days {
			continue
		}
		label := OrgLabel(r.SubjectID)
		s := per[label]
		if s == nil {
			s = &series{label: label, days: make([]int64, days), orgs: 1}
			per[label] = s
		}
		n := r.Counts.Requests()
		s.days[d] += n
		s.total += n
	}
	all := make([]*series, 0, len(per))
	for _, s := range per {
		if s.total > 0 {
			all = append(all, s)
		}
	}
	slices.SortFunc(all, func(a, b *series) int { return cmp.Or(cmp.Compare(b.total, a.total), cmp.Compare(a.label, b.label)) })
	if len(all) > maxSeries {
		others := &series{days: make([]int64, days)}
		for _, s := range all[maxSeries-1:] {
			for d, n := range s.days {
				others.days[d] += n
			}
			others.total += s.total
			others.orgs++
		}
		others.label = fmt.Sprintf("others, %d organisations", others.orgs)
		all = append(all[:maxSeries-1], others)
	}
	var peak, sum int64
	for d := range days {
		var day int64
		for _, s := range all {
			day += s.days[d]
		}
		peak = max(peak, day)
		sum += day
	}
	step := niceStep(peak)
	top := max(step, (peak+step-1)/step*step) // the axis's end, a whole step

	period := first.Format(time.DateOnly) + " to " + last.Format(time.DateOnly) + " (UTC)"
	title := "Requests per day by organisation, " + period
	if org != "" && len(all) > 0 {
		title = "Requests per day, " + all[0].label + ", " + period
	}
	subtitle := humanize.Thousands(sum) + " requests"
	if len(per) > 1 {
		subtitle += fmt.Sprintf(" from %d organisations", len(per))
	}
	if len(all) > 0 && all[len(all)-1].orgs > 1 {
		subtitle += fmt.Sprintf("; the %d smallest drawn together as others", all[len(all)-1].orgs)
	}

	const (
		left, plotTop, plotW, plotH, legendW = 80, 60, 720, 300, 260
		width, height                        = left + plotW + legendW, plotTop + plotH + 50
		legendChars                          = 36
	)
	bottom := float64(plotTop + plotH)
	y := func(v int64) float64 { return bottom - float64(plotH)*float64(v)/float64(top) }
	bw := float64(plotW) / float64(days)
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(b, `<title>%s</title>`+"\n", esc(title))
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	fmt.Fprintf(b, `<text class="title" x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(title))
	fmt.Fprintf(b, `<text class="subtitle" x="%d" y="40" fill="#555">%s</text>`+"\n", left, esc(subtitle))
	// Y ticks with grid lines, then the axes over them.
	b.WriteString(`<g class="yticks">` + "\n")
	for v := int64(0); v <= top; v += step {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y(v), left+plotW, y(v), left-6, y(v)+4, humanize.Thousands(v))
	}
	b.WriteString("</g>\n")
	fmt.Fprintf(b, `<g class="axes" stroke="#333"><line x1="%d" y1="%d" x2="%d" y2="%.0f"/><line x1="%d" y1="%.0f" x2="%d" y2="%.0f"/></g>`+"\n",
		left, plotTop, left, bottom, left, bottom, left+plotW, bottom)
	fmt.Fprintf(b, `<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">requests</text>`+"\n", plotTop+plotH/2, plotTop+plotH/2)
	every := max(1, days/10)
	for d := 0; d < days; d += every {
		x := float64(left) + bw*(float64(d)+0.5)
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, bottom+16, first.AddDate(0, 0, d).Format("Jan 2"))
	}
	// Stacked bars, the largest series at the bottom.
	base := make([]int64, days)
	for i, s := range all {
		fmt.Fprintf(b, `<g class="series" data-org="%s" fill="%s">`+"\n", esc(s.label), palette[i])
		for d, n := range s.days {
			if n == 0 {
				continue
			}
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s, %s: %s requests</title></rect>`+"\n",
				float64(left)+bw*float64(d)+bw*0.1, y(base[d]+n), bw*0.8, y(base[d])-y(base[d]+n),
				esc(s.label), first.AddDate(0, 0, d).Format(time.DateOnly), humanize.Thousands(n))
			base[d] += n
		}
		b.WriteString("</g>\n")
	}
	// Legend, in the same order and colours, with each series' total.
	b.WriteString(`<g class="legend">` + "\n")
	for i, s := range all {
		ly := plotTop + i*20
		name := s.label
		if r := []rune(name); len(r) > legendChars {
			name = string(r[:legendChars-1]) + "…"
		}
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d"><title>%s</title>%s (%s)</text>`+"\n",
			left+plotW+20, ly, palette[i], left+plotW+38, ly+10, esc(s.label), esc(name), humanize.Thousands(s.total))
	}
	b.WriteString("</g>\n</svg>\n")
	return b.Flush()
}

// niceStep is the y axis's step for a busiest day of peak requests: the
// smallest of 1, 2, 2.5 and 5 × 10^n that gives at most five steps, and
// a whole number (no 2.5 requests).
func niceStep(peak int64) int64 {
	for mag := int64(1); ; mag *= 10 {
		for _, m := range []int64{10, 20, 25, 50} {
			s := m * mag / 10
			if s*10 != m*mag || s*5 < peak {
				continue
			}
			return s
		}
	}
}
