package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/hexprox/hexprox/internal/tokenstore"
	"github.com/hexprox/hexprox/internal/tokenstore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, tokenstore.NewMemory())
}

func TestMemoryDropsTheLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	s := tokenstore.NewMemoryWith(tokenstore.MemoryOptions{Max: 3})
	tags := map[string]tokenstore.ETag{}
	for _, k := range []string{"a", "b", "c"} {
		tag, err := s.Create(ctx, k, tokenstore.Entity{Data: []byte(k)})
		if err != nil {
			t.Fatal(err)
		}
		tags[k] = tag
	}
	s.Get(ctx, "a")                                                               // a is used: b is now the oldest
	if _, err := s.Update(ctx, "b", tokenstore.Entity{}, tags["b"]); err != nil { // b too: c is
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "d", tokenstore.Entity{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "c"); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("the least recently used entity must go: %v", err)
	}
	for _, k := range []string{"a", "b", "d"} {
		if _, _, err := s.Get(ctx, k); err != nil {
			t.Fatalf("%s dropped: %v", k, err)
		}
	}
	if _, err := s.Update(ctx, "c", tokenstore.Entity{}, tags["c"]); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("an update of a dropped entity: want ErrNotFound, got %v", err)
	}
}

func TestMemoryStaysWithinItsCap(t *testing.T) {
	ctx := context.Background()
	s := tokenstore.NewMemory()
	for i := range 3 * tokenstore.DefaultMemoryMax {
		if _, err := s.Create(ctx, fmt.Sprintf("%064x", i), tokenstore.Entity{Data: make([]byte, 100)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n != tokenstore.DefaultMemoryMax {
		t.Fatalf("holds %d entities after %d creates, want the cap %d", n, 3*tokenstore.DefaultMemoryMax, tokenstore.DefaultMemoryMax)
	}
}

// BenchmarkMemoryCreateAtCap creates entities for ever-new keys in a full
// store (each Create evicts one), as refused or one-off credentials would,
// and reports the live heap the store holds at its cap.
func BenchmarkMemoryCreateAtCap(b *testing.B) {
	ctx := context.Background()
	s := tokenstore.NewMemory()
	data := make([]byte, 160) // about a sealed token
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range tokenstore.DefaultMemoryMax {
		s.Create(ctx, fmt.Sprintf("%064x", i), tokenstore.Entity{Data: data})
	}
	b.ResetTimer()
	for i := range b.N {
		s.Create(ctx, fmt.Sprintf("%064x", tokenstore.DefaultMemoryMax+i), tokenstore.Entity{Data: data})
	}
	b.StopTimer()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MB-at-cap")
	runtime.KeepAlive(s)
}
