package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
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
