package usage_test

import (
	"testing"

	"github.com/hexprox/hexprox/internal/usage"
)

// BenchmarkAdd is the redirect path's cost: a held handle counting one
// redirected tile. Target: under 200 ns and 0 allocations.
func BenchmarkAdd(b *testing.B) {
	c := usage.New(usage.Options{NoLoop: true})
	s := c.Subject(acme)
	b.ReportAllocs()
	for b.Loop() {
		s.Inc(usage.TilesRedirected)
	}
}

// BenchmarkAddParallel: every core counting for the same subject (the
// worst case: one contended cache line).
func BenchmarkAddParallel(b *testing.B) {
	c := usage.New(usage.Options{NoLoop: true})
	s := c.Subject(acme)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Inc(usage.TilesRedirected)
		}
	})
}

// BenchmarkOverDaily is the quota check a limited key adds per request.
func BenchmarkOverDaily(b *testing.B) {
	c := usage.New(usage.Options{NoLoop: true})
	s := c.Subject(acme)
	s.Inc(usage.TilesRedirected)
	b.ReportAllocs()
	for b.Loop() {
		if _, over := s.OverDaily(1 << 40); over {
			b.Fatal("over")
		}
	}
}

// BenchmarkSubject is the lookup a caller pays when it does not keep the
// handle.
func BenchmarkSubject(b *testing.B) {
	c := usage.New(usage.Options{NoLoop: true})
	c.Subject(acme)
	b.ReportAllocs()
	for b.Loop() {
		c.Subject(acme)
	}
}

// BenchmarkSubjectParallel: every core looking up the same held subject,
// as the request path does.
func BenchmarkSubjectParallel(b *testing.B) {
	c := usage.New(usage.Options{NoLoop: true})
	c.Subject(acme)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Subject(acme)
		}
	})
}
