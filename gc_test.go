package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGCLeavesTheEnvironmentsSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))

	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("GC percent %d with GOGC unset, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != memoryLimit {
		t.Fatalf("memory limit %d with GOMEMLIMIT unset, want %d", got, memoryLimit)
	}

	env := map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}
	tuneGC(func(k string) string { return env[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent changed to %d although GOGC is set", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("memory limit changed to %d although GOMEMLIMIT is set", got)
	}
}
