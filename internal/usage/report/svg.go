package report

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/usage"
)

var palette = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// WriteSVG draws requests per UTC day from first to last (inclusive),
// stacked by organisation (OrgLabel): one <g class="series"> per
// organisation with one <rect> per day it has requests, a legend, and
// axes. Organisations beyond the palette's size reuse its colours.
func WriteSVG(w io.Writer, rows []usage.Row, first, last time.Time) error {
	days := int(last.Sub(first).Hours()/24) + 1
	per := map[string][]int64{}
	for _, r := range rows {
		d := int(r.Hour.Sub(first).Hours() / 24)
		if d < 0 || d >= days {
			continue
		}
		org := OrgLabel(r.SubjectID)
		if per[org] == nil {
			per[org] = make([]int64, days)
		}
		per[org][d] += r.Counts.Requests()
	}
	orgs := make([]string, 0, len(per))
	for o := range per {
		orgs = append(orgs, o)
	}
	slices.Sort(orgs)
	var peak int64 = 1
	for d := range days {
		var sum int64
		for _, o := range orgs {
			sum += per[o][d]
		}
		peak = max(peak, sum)
	}
	const (
		left, top, plotW, plotH, legendW = 70, 30, 720, 300, 220
		width, height                    = left + plotW + legendW, top + plotH + 60
	)
	bw := float64(plotW) / float64(days)
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(b, `<title>Requests per day by organisation, %s to %s</title>`+"\n", first.Format(time.DateOnly), last.Format(time.DateOnly))
	// Axes and y ticks.
	fmt.Fprintf(b, `<g class="axes" stroke="#333"><line x1="%d" y1="%d" x2="%d" y2="%d"/><line x1="%d" y1="%d" x2="%d" y2="%d"/></g>`+"\n",
		left, top, left, top+plotH, left, top+plotH, left+plotW, top+plotH)
	for i := 0; i <= 4; i++ {
		v := peak * int64(i) / 4
		y := float64(top+plotH) - float64(plotH)*float64(v)/float64(peak)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%d</text>`+"\n", left-6, y+4, v)
	}
	fmt.Fprintf(b, `<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">requests</text>`+"\n", top+plotH/2, top+plotH/2)
	step := max(1, days/10)
	for d := 0; d < days; d += step {
		x := float64(left) + bw*(float64(d)+0.5)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, top+plotH+16, first.AddDate(0, 0, d).Format("01-02"))
	}
	// Stacked bars, one series per organisation.
	base := make([]int64, days)
	for i, o := range orgs {
		color := palette[i%len(palette)]
		fmt.Fprintf(b, `<g class="series" data-org="%s" fill="%s">`+"\n", esc(o), color)
		for d, n := range per[o] {
			if n == 0 {
				continue
			}
			y0 := float64(plotH) * float64(base[d]) / float64(peak)
			h := float64(plotH) * float64(n) / float64(peak)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s %s: %d</title></rect>`+"\n",
				float64(left)+bw*float64(d)+bw*0.1, float64(top+plotH)-y0-h, bw*0.8, h, esc(o), first.AddDate(0, 0, d).Format(time.DateOnly), n)
			base[d] += n
		}
		b.WriteString("</g>\n")
	}
	// Legend.
	b.WriteString(`<g class="legend">` + "\n")
	for i, o := range orgs {
		y := top + i*18
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			left+plotW+20, y, palette[i%len(palette)], left+plotW+38, y+10, esc(o))
	}
	b.WriteString("</g>\n</svg>\n")
	return b.Flush()
}
