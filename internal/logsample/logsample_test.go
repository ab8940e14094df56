package logsample

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{
		"": 1, "  ": 1, "1": 1, "0": 0, "0.1": 0.1, " 0.25 ": 0.25, "1.0": 1,
		"10%": 0.1, "100%": 1, "0%": 0, "2.5 %": 0.025, "0.000001": 0.000001,
	} {
		got, err := ParseRate(in)
		if err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-0.1", "1.5", "101%", "1/10", "ten", "NaN", "Inf", "%", "0.0000001", "0x1p-2", "10%%"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", in, got)
		} else if !strings.Contains(err.Error(), in) {
			t.Errorf("ParseRate(%q): error %q does not quote the value", in, err)
		}
	}
}

func TestRateOneOrMoreKeepsAll(t *testing.T) {
	for _, rate := range []float64{1, 2} {
		s := NewSampler(rate)
		for range 100 {
			if !s.Keep() {
				t.Fatalf("rate %v left a line out", rate)
			}
		}
	}
}

// Of n lines asked about, exactly floor(n·rate) are kept.
func TestKeepsExactlyTheFraction(t *testing.T) {
	for _, rate := range []float64{0, 0.1, 0.25, 0.5, 0.999} {
		s := NewSampler(rate)
		const n = 1000
		kept := 0
		for range n {
			if s.Keep() {
				kept++
			}
		}
		if want := int(n * rate); kept != want {
			t.Errorf("rate %v: kept %d of %d, want %d", rate, kept, n, want)
		}
	}
}

func TestSampleIsEvenlySpread(t *testing.T) {
	s := NewSampler(0.1)
	var kept []int
	for i := 1; i <= 100; i++ {
		if s.Keep() {
			kept = append(kept, i)
		}
	}
	for i, n := range kept {
		if n != 10*(i+1) {
			t.Fatalf("kept %v, want every tenth", kept)
		}
	}
}

func TestConcurrentCountIsExact(t *testing.T) {
	s := NewSampler(0.25)
	var kept atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if s.Keep() {
					kept.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := kept.Load(); got != 2000 {
		t.Fatalf("kept %d of 8000 at 0.25, want 2000", got)
	}
}

func BenchmarkKeep(b *testing.B) {
	s := NewSampler(0.1)
	b.ReportAllocs()
	for b.Loop() {
		s.Keep()
	}
}
