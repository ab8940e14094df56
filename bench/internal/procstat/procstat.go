// Package procstat reads what the benchmarks need about processes and
// ports on this machine.
package procstat

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// RSS returns the resident set size of pid in bytes (0 if unknown), from
// /proc.
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// FreeAddr returns a loopback address nothing listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times:
// `getconf CLK_TCK`, 100 on every mainstream Linux.
var clockTicks = func() int64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

// GroupCPU returns the user plus system CPU time used so far by every
// live process in process group pgid (a server and the workers it forked,
// such as nginx's), read from /proc/<pid>/stat. Its resolution is one
// clock tick (10 ms); take differences over runs of seconds.
func GroupCPU(pgid int) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var ticks int64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		group, cpu, ok := stat(pid)
		if ok && group == pgid {
			ticks += cpu
		}
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTicks)
}

// stat reads a process's group and utime+stime (in ticks) from
// /proc/<pid>/stat. The command name, field 2, is in parentheses and may
// hold spaces, so fields are counted from its closing parenthesis.
func stat(pid int) (pgrp int, ticks int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return pgrp, ut + st, true
}
