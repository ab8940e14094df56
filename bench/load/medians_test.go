package main

import "testing"

func TestMediansFoldRoundsInFirstOrder(t *testing.T) {
	runs := []Run{
		{Path: "redirect", Target: "hexprox", Conns: 32, RPS: 100, P99: 5, CPU: 20, PeakRSS: 10, Errors: 1, Requests: 1000},
		{Path: "redirect", Target: "floor302", Conns: 32, RPS: 200, P99: 2, CPU: 10, PeakRSS: 5, Requests: 2000},
		{Path: "redirect", Target: "hexprox", Conns: 32, RPS: 130, P99: 9, CPU: 18, PeakRSS: 12, Requests: 1300},
		{Path: "redirect", Target: "floor302", Conns: 32, RPS: 180, P99: 3, CPU: 11, PeakRSS: 6, Requests: 1800},
		{Path: "redirect", Target: "hexprox", Conns: 32, RPS: 90, P99: 4, CPU: 25, PeakRSS: 11, Errors: 2, Requests: 900},
	}
	got := medians(runs)
	if len(got) != 2 || got[0].Target != "hexprox" || got[1].Target != "floor302" {
		t.Fatalf("got %+v", got)
	}
	h := got[0]
	if h.RPS != 100 || h.P99 != 5 || h.CPU != 20 || h.PeakRSS != 12 || h.Errors != 3 || h.Requests != 3200 ||
		h.Rounds != 3 || h.RPSMin != 90 || h.RPSMax != 130 {
		t.Fatalf("hexprox folded to %+v", h)
	}
	if f := got[1]; f.RPS != 190 || f.P99 != 2.5 || f.Rounds != 2 {
		t.Fatalf("floor302 folded to %+v (an even count takes the mean of the middle two)", f)
	}
}
