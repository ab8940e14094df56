package capabilities

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(0, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := NewCache(time.Minute, 2, clock)
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) (*Document, error) {
		loads.Add(1)
		<-release
		return &Document{parts: [][]byte{[]byte("x")}}, nil
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Get(context.Background(), "k", load) }()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if loads.Load() != 1 {
		t.Fatalf("50 concurrent misses made %d loads", loads.Load())
	}
	if _, hit, _ := c.Get(context.Background(), "k", load); !hit {
		t.Fatal("want a hit within the TTL")
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, hit, _ := c.Get(context.Background(), "k", load); hit || loads.Load() != 2 {
		t.Fatal("want a reload after the TTL")
	}
	// Bounded: a third key evicts one.
	c.Get(context.Background(), "a", load)
	c.Get(context.Background(), "b", load)
	if len(c.m) != 2 {
		t.Fatalf("cache holds %d documents, max 2", len(c.m))
	}
	// Errors are not cached.
	boom := errors.New("boom")
	if _, _, err := c.Get(context.Background(), "e", func(context.Context) (*Document, error) { return nil, boom }); err != boom {
		t.Fatal(err)
	}
	if _, _, err := c.Get(context.Background(), "e", load); err != nil {
		t.Fatal("an error must not be cached")
	}
}
