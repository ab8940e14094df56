package main

import (
	"fmt"
	"strings"
)

// refs names, for each path, what each target is compared with in the
// table: the yardsticks issue 14's goals are stated against.
var refs = map[string]map[string][]string{
	"redirect": {
		"hexprox": {"floor302"}, "hexprox-warn": {"floor302"}, "hexprox-sampled": {"floor302"},
		"hexprox-pinned": {"floor302"},
	},
	"stream-slow": {"hexprox-v2-desktop": {"relay"}},
	"stream": {
		"hexprox": {"relay", "baseline", "nginx"}, "hexprox-v2": {"hexprox", "nginx"}, "hexprox-v2-desktop": {"relay", "hexprox"},
		"relay": {"nginx"},
	},
}

// markdown prints the results with their ratios and the goals.
func markdown(res Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s, %s per wrk run (wrk -t2, loopback, generator on the same machine), %d rounds: each figure is the median of its rounds, req/s with the slowest and fastest round.\n\n", res.Date, res.Machine, res.Duration, max(1, res.Rounds))
	b.WriteString("| path | target | conns | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MB | errors | ratios (req/s, p99) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range res.Runs {
		var ratios []string
		for _, other := range refs[r.Path][r.Target] {
			if o, ok := find(res, r.Path, other, r.Conns); ok && o.RPS > 0 && o.P99 > 0 {
				ratios = append(ratios, fmt.Sprintf("%.2f×, %.2f× %s", r.RPS/o.RPS, r.P99/o.P99, other))
			}
		}
		rps := fmt.Sprintf("%.0f", r.RPS)
		if r.Rounds > 1 {
			rps += fmt.Sprintf(" (%.0f–%.0f)", r.RPSMin, r.RPSMax)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %.2f | %.2f | %.1f | %.1f | %d | %s |\n",
			r.Path, r.Target, r.Conns, rps, r.P50, r.P99, r.CPU, r.PeakRSS, r.Errors, strings.Join(ratios, "; "))
	}
	b.WriteString("\nTargets:\n")
	for _, t := range targetNotes {
		fmt.Fprintf(&b, "- *%s*: %s\n", t.name, t.note)
	}

	b.WriteString("\nCPU per streamed tile (server process group, user+system, over each run):\n\n| conns | hexprox µs | relay µs | baseline µs | nginx µs | hexprox / relay | hexprox / nginx |\n|---|---|---|---|---|---|---|\n")
	for _, c := range conns(res) {
		h, _ := find(res, "stream", "hexprox", c)
		rl, _ := find(res, "stream", "relay", c)
		bl, _ := find(res, "stream", "baseline", c)
		ng, _ := find(res, "stream", "nginx", c)
		fmt.Fprintf(&b, "| %d | %.1f | %.1f | %.1f | %.1f | %s | %s |\n", c, h.CPU, rl.CPU, bl.CPU, ng.CPU, times(h.CPU, rl.CPU), times(h.CPU, ng.CPU))
	}

	fmt.Fprintf(&b, "\nStart-up, exec to first `/healthz` answer: median %.1f ms, p90 %.1f ms (20 starts).\n", res.StartupMedian, res.StartupP90)
	fmt.Fprintf(&b, "Capabilities cache miss: %.2f ms through the proxy vs %.2f ms from the fake directly (median of 300): the miss adds %.2f ms.\n", res.MissProxy, res.MissDirect, res.MissProxy-res.MissDirect)
	if c := res.Cold; c != nil {
		fmt.Fprintf(&b, "Cold start with the token in the table (Azurite): exec to the first tile answered (302) median %.1f ms, p90 %.1f ms over %d starts; "+
			"a warm instance's first request on a new connection median %.2f ms: cold/warm %.1f×; Hexagon token requests during the cold starts: %d.\n",
			c.Median, c.P90, c.Starts, c.WarmMedian, c.Ratio(), c.TokenRequests)
	}

	if h, ok := find(res, "stream-slow", "hexprox-v2-desktop", slowConns); ok {
		if r, ok := find(res, "stream-slow", "relay", slowConns); ok {
			fmt.Fprintf(&b, "Peak RSS at %d concurrent streams, Hexagon answering each after %v: HexProx (/v2 desktop tiles) %.0f MB, the least relay %.0f MB.\n",
				slowConns, slowDelay, h.PeakRSS, r.PeakRSS)
		}
	}
	b.WriteString("\nGoals (issue 14):\n\n| goal | conns | result | |\n|---|---|---|---|\n")
	goal := func(name string, c int, result string, met bool) {
		verdict := "not met"
		if met {
			verdict = "met"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", name, c, result, verdict)
	}
	for _, c := range conns(res) {
		if h, ok := find(res, "redirect", "hexprox", c); ok {
			if f, ok := find(res, "redirect", "floor302", c); ok && f.RPS > 0 {
				goal("redirect ≥ 0.85× the bare 302, logging at info", c, fmt.Sprintf("%.2f×", h.RPS/f.RPS), h.RPS >= 0.85*f.RPS)
			}
			if n, ok := find(res, "redirect", "hexprox-nocount", c); ok && n.RPS > 0 {
				goal("redirect with usage counting within 5% of without", c, fmt.Sprintf("%.3f×", h.RPS/n.RPS), h.RPS >= 0.95*n.RPS)
			}
		}
		if h, ok := find(res, "stream", "hexprox", c); ok {
			if n, ok := find(res, "stream", "nginx", c); ok && n.RPS > 0 && n.P99 > 0 {
				goal("stream ≥ 0.7× one nginx worker, p99 ≤ 2×", c, fmt.Sprintf("%.2f×, p99 %.2f×", h.RPS/n.RPS, h.P99/n.P99), h.RPS >= 0.7*n.RPS && h.P99 <= 2*n.P99)
				// Whether the goal is within net/http's reach at all: the
				// least relay on net/http, held to the same bar.
				if r, ok := find(res, "stream", "relay", c); ok {
					goal("(ceiling) the least net/http relay against the same bar", c, fmt.Sprintf("%.2f×, p99 %.2f×", r.RPS/n.RPS, r.P99/n.P99), r.RPS >= 0.7*n.RPS && r.P99 <= 2*n.P99)
				}
			}
		}
		v1, ok1 := find(res, "stream", "hexprox", c)
		v2, ok2 := find(res, "stream", "hexprox-v2", c)
		if ok1 && ok2 && v1.RPS > 0 {
			goal("/v2 key stream within 3% of v1", c, fmt.Sprintf("%.3f×", v2.RPS/v1.RPS), v2.RPS >= 0.97*v1.RPS)
		}
		// Issue 20: a key's desktop tiles are streamed, not redirected.
		if d, ok := find(res, "stream", "hexprox-v2-desktop", c); ok {
			if r, ok := find(res, "stream", "relay", c); ok && r.RPS > 0 {
				goal("/v2 desktop tile (streamed) ≥ 0.85× the least net/http relay", c, fmt.Sprintf("%.2f×", d.RPS/r.RPS), d.RPS >= 0.85*r.RPS)
			}
		}
	}
	if c := res.Cold; c != nil {
		goal("cold start from the table: first tile < 20 ms, no token call", c.Starts, fmt.Sprintf("median %.1f ms, p90 %.1f ms, %d token calls", c.Median, c.P90, c.TokenRequests), c.Median < 20 && c.TokenRequests == 0)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(&b, "\nSkipped: %s\n", s)
	}
	return b.String()
}

func conns(res Results) []int {
	var cs []int
	seen := map[int]bool{}
	for _, r := range res.Runs {
		if r.Path == "stream-slow" {
			continue // its own paragraph
		}
		if !seen[r.Conns] {
			seen[r.Conns] = true
			cs = append(cs, r.Conns)
		}
	}
	return cs
}

func times(a, b float64) string {
	if a == 0 || b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f×", a/b)
}
