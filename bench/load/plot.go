package main

import (
	"fmt"
	"strings"
)

var colors = map[string]string{"hexprox": "#0b5cad", "hexprox-v2": "#2f8fd8", "hexprox-warn": "#7fb3e6", "hexprox-sampled": "#a9c9ee",
	"hexprox-pinned": "#5a3fa0", "floor302": "#c0803a", "baseline": "#8aa8c8", "relay": "#6f8f3a", "nginx": "#3a8f5c", "direct": "#b7b7b7"}

var targetOrder = []string{"hexprox", "hexprox-v2", "hexprox-warn", "hexprox-sampled", "hexprox-pinned", "floor302", "baseline", "relay", "nginx", "direct"}

// plot draws two panels, throughput and p99 latency, with one group of
// bars per path and concurrency and one bar per target.
func plot(res Results) []byte {
	type group struct {
		label string
		runs  []Run
	}
	var groups []group
	seen := map[string]int{}
	for _, r := range res.Runs {
		key := fmt.Sprintf("%s c=%d", r.Path, r.Conns)
		i, ok := seen[key]
		if !ok {
			i = len(groups)
			seen[key] = i
			groups = append(groups, group{label: key})
		}
		groups[i].runs = append(groups[i].runs, r)
	}
	const (
		width, panelH, top, left, gap = 1060, 260, 50, 70, 40
		height                        = top + 2*panelH + 2*gap + 60
	)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`, width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><text x="%d" y="24" font-size="16" font-weight="bold">HexProx load benchmark — %s, %s</text>`, left, res.Date, res.Machine)
	panel := func(y0 int, title string, value func(Run) float64, unit string) {
		maxV := 0.0
		for _, g := range groups {
			for _, r := range g.runs {
				maxV = max(maxV, value(r))
			}
		}
		if maxV == 0 {
			maxV = 1
		}
		plotW := width - left - 20
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`, left, y0-8, title)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`, left, y0+panelH, left+plotW, y0+panelH)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			y := y0 + panelH - int(float64(panelH)*float64(i)/4)
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/><text x="%d" y="%d" text-anchor="end">%s</text>`, left, y, left+plotW, y, left-6, y+4, short(v)+unit)
		}
		gw := float64(plotW) / float64(len(groups))
		for gi, g := range groups {
			bw := (gw - 16) / float64(len(targetOrder))
			x0 := float64(left) + gw*float64(gi) + 8
			for ti, t := range targetOrder {
				for _, r := range g.runs {
					if r.Target != t {
						continue
					}
					h := float64(panelH) * value(r) / maxV
					x := x0 + bw*float64(ti)
					fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s c=%d: %s%s</title></rect>`,
						x, float64(y0+panelH)-h, bw-2, h, colors[t], r.Path, t, r.Conns, short(value(r)), unit)
				}
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x0+gw/2-8, y0+panelH+16, g.label)
		}
	}
	panel(top+20, "Throughput (requests/s, higher is better)", func(r Run) float64 { return r.RPS }, "")
	panel(top+20+panelH+gap+20, "p99 latency (ms, lower is better)", func(r Run) float64 { return r.P99 }, " ms")
	lx := left
	for _, t := range targetOrder {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`, lx, height-22, colors[t], lx+16, height-12, t)
		lx += 108
	}
	b.WriteString(`</svg>`)
	return []byte(b.String())
}

func short(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.1fk", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2f", v)
}
