package testlog

import (
	"strings"
	"sync"
	"testing"
)

// Concurrent writers lose nothing and interleave only whole writes; run
// with -race to see the mutex is needed and held.
func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range lines {
				b.Write([]byte{'a' + byte(w), '\n'})
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	count := map[string]int{}
	for _, l := range got {
		count[l]++
	}
	for w := range writers {
		if l := string(rune('a' + w)); count[l] != lines {
			t.Fatalf("writer %s: %d lines, want %d", l, count[l], lines)
		}
	}
}
