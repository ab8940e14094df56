package main

import (
	"errors"
	"io/fs"
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGCLeavesTheEnvironmentsSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	noCgroup := func(string) ([]byte, error) { return nil, fs.ErrNotExist }

	tuneGC(func(string) string { return "" }, noCgroup)
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("GC percent %d with GOGC unset, want %d", got, gcPercent)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != maxMemoryLimit {
		t.Fatalf("memory limit %d with GOMEMLIMIT unset, want %d", got, maxMemoryLimit)
	}

	env := map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"}
	tuneGC(func(k string) string { return env[k] }, noCgroup)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent changed to %d although GOGC is set", got)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Fatalf("memory limit changed to %d although GOMEMLIMIT is set", got)
	}
}

func TestSoftMemoryLimitFollowsTheContainer(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	v2, v1 := cgroupMemory[0], cgroupMemory[1]
	for _, c := range []struct {
		name  string
		read  func(string) ([]byte, error)
		limit int64
	}{
		{"no cgroup", files(nil), maxMemoryLimit},
		{"v2 unlimited", files(map[string]string{v2: "max\n"}), maxMemoryLimit},
		{"v2 512 MB", files(map[string]string{v2: "536870912\n"}), 402653184},
		{"v2 4 GB", files(map[string]string{v2: "4294967296\n"}), maxMemoryLimit},
		{"v1 256 MB", files(map[string]string{v1: "268435456\n"}), 201326592},
		{"v1 unlimited", files(map[string]string{v1: "9223372036854771712\n"}), maxMemoryLimit},
		{"unreadable", func(string) ([]byte, error) { return nil, errors.New("permission denied") }, maxMemoryLimit},
	} {
		if got := softMemoryLimit(c.read); got != c.limit {
			t.Errorf("%s: limit %d, want %d", c.name, got, c.limit)
		}
	}
}
