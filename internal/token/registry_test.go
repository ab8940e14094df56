package token

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
)

func cred(i int) credential.Credential {
	return credential.Credential{ID: "id-" + strconv.Itoa(i), Secret: "secret-" + strconv.Itoa(i)}
}

// TestRegistryEvictsLeastRecentlyUsed follows use order, not the clock: with
// a stopped clock every source was last used "at the same time", and the
// one dropped must still be the least recently used.
func TestRegistryEvictsLeastRecentlyUsed(t *testing.T) {
	stopped := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewRegistry(context.Background(), staticBase, RegistryOptions{Max: 4, Now: func() time.Time { return stopped }})
	held := map[int]*Cached{}
	for i := range 4 {
		held[i] = r.Source(cred(i))
	}
	// Use order now: 1, 3, 0, 2 (0 and 2 the most recent); 1 is oldest.
	for _, i := range []int{1, 3, 0, 2} {
		if r.Source(cred(i)) != held[i] {
			t.Fatalf("credential %d got a new source while held", i)
		}
	}
	for _, next := range []int{4, 5} {
		held[next] = r.Source(cred(next))
	}
	if r.Len() != 4 {
		t.Fatalf("Len %d, want 4", r.Len())
	}
	// 1 and 3 were the two least recently used. Ask for the kept ones
	// first: asking for a dropped one would evict again.
	for _, i := range []int{0, 2, 4, 5} {
		if r.Source(cred(i)) != held[i] {
			t.Fatalf("credential %d was dropped; want 1 and 3 dropped", i)
		}
	}
	if r.Source(cred(1)) == held[1] {
		t.Fatal("credential 1 kept its source; it was the least recently used")
	}
	if r.Len() != 4 {
		t.Fatalf("Len %d after re-adding, want 4", r.Len())
	}
}

func TestRegistryRefusalTTLAsGiven(t *testing.T) {
	bad := credential.Credential{ID: good.ID, Secret: "wrong-secret"}
	for _, tc := range []struct {
		ttl      time.Duration
		requests int64 // after three asks, the clock moving 2s then 4s between them
	}{
		{0, 3},               // not remembered: no hidden default
		{time.Second, 3},     // remembered, but over before each next ask
		{5 * time.Second, 2}, // remembered over the first gap, not the second
	} {
		fake, ep, clk := setup(t, time.Hour)
		r := NewRegistry(context.Background(), ep.Source, RegistryOptions{RefusalTTL: tc.ttl, Now: clk.Now})
		for i := range 3 {
			if i > 0 {
				clk.Advance(time.Duration(i) * 2 * time.Second)
			}
			if _, err := r.Source(bad).Token(); !errors.Is(err, ErrRefused) {
				t.Fatalf("ttl %v: want a refusal, got %v", tc.ttl, err)
			}
		}
		if n := fake.TokenRequests.Load(); n != tc.requests {
			t.Fatalf("RefusalTTL %v: %d token requests, want %d", tc.ttl, n, tc.requests)
		}
	}
}

func TestRegistryDefaultMax(t *testing.T) {
	r := NewRegistry(context.Background(), staticBase, RegistryOptions{})
	for i := range 10001 {
		r.Source(cred(i))
	}
	if r.Len() != 10000 {
		t.Fatalf("Len %d, want the default Max of 10000", r.Len())
	}
}

func TestRegistryConcurrent(t *testing.T) {
	const max = 8
	r := NewRegistry(context.Background(), staticBase, RegistryOptions{Max: max})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				c := cred((g*7 + i) % 20)
				if r.Source(c) == nil || r.Len() > max {
					t.Errorf("no source, or more than Max held (%d)", r.Len())
					return
				}
			}
		}()
	}
	wg.Wait()
	if r.Len() != max {
		t.Fatalf("Len %d, want %d", r.Len(), max)
	}
}
