package procstat

import (
	"syscall"
	"testing"
	"time"
)

// GroupCPU of this test's own process group grows while it burns CPU.
func TestGroupCPUCountsThisProcess(t *testing.T) {
	pg := syscall.Getpgrp()
	before := GroupCPU(pg)
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for GroupCPU(pg)-before < 50*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("GroupCPU(%d) stayed at %v after 5 s of spinning", pg, GroupCPU(pg))
		}
		for i := range 1_000_000 {
			x += i
		}
	}
	if GroupCPU(pg+1_000_000_000) != 0 {
		t.Fatal("a group with no processes used CPU")
	}
	_ = x
}
