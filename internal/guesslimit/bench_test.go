package guesslimit

import (
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// fullTable returns a limiter at its default cap whose clock moves one
// second per call, so entries keep recovering and the table never
// saturates (the common, eviction-heavy case).
func fullTable(b *testing.B, size int) *Limiter {
	var tick atomic.Int64
	l := New(Options{MaxAddrs: size, Now: func() time.Time { return t0.Add(time.Duration(tick.Add(1)) * time.Second) }})
	for i := range size {
		l.Refused(v4(i))
	}
	if l.Len() != size {
		b.Fatalf("Len = %d", l.Len())
	}
	return l
}

// Check+Refused for addresses already in a full table.
func BenchmarkCheckRefusedHit(b *testing.B) {
	l := fullTable(b, DefaultMaxAddrs)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a := v4(i % DefaultMaxAddrs)
		if _, ok := l.Check(a); ok {
			l.Refused(a)
		}
	}
}

// Check+Refused for new addresses: every Refused evicts one. The cost
// must not grow with the table's size.
func BenchmarkCheckRefusedEvict(b *testing.B) {
	for _, size := range []int{1_000, DefaultMaxAddrs, 100_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			l := fullTable(b, size)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				a := v4(size + i)
				l.Check(a)
				l.Refused(a)
			}
			if l.Len() != size {
				b.Fatalf("Len = %d, want the cap", l.Len())
			}
		})
	}
}

// Contention: all CPUs on one table, a mix of IPv4 and IPv6 keys.
func BenchmarkCheckRefusedParallel(b *testing.B) {
	l := fullTable(b, DefaultMaxAddrs)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			a := v4(i % (2 * DefaultMaxAddrs))
			if i%4 == 0 {
				a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 6: byte(i >> 8), 7: byte(i), 15: 1})
			}
			if _, ok := l.Check(a); ok {
				l.Refused(a)
			}
		}
	})
}

// Heap held per tracked address, reported as bytes/addr.
func BenchmarkMemoryPerAddr(b *testing.B) {
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := New(Options{Now: func() time.Time { return t0 }})
		for i := range DefaultMaxAddrs {
			l.Refused(v4(i))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/DefaultMaxAddrs, "bytes/addr")
		runtime.KeepAlive(l)
	}
}

func BenchmarkClientAddr(b *testing.B) {
	r := request("127.0.0.1:40000", "6.6.6.6, 10.0.0.1", "[2001:db8::1]:51234")
	b.ReportAllocs()
	for b.Loop() {
		ClientAddr(r, 1)
	}
}
