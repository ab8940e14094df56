package token

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/tokenstore"
)

// instance is one proxy instance's token layers for the good credential.
type instance struct {
	cached *Cached
	shared *Shared
}

func newInstance(ep *Endpoint, store tokenstore.Store, clk *clock, o SharedOptions) instance {
	o.Now = clk.Now
	sh := NewShared(context.Background(), good, ep.Source(context.Background(), good), store, o)
	return instance{cached: NewCached(sh, time.Minute, clk.Now, nil), shared: sh}
}

func TestSharedAcrossInstances(t *testing.T) {
	const life = time.Hour
	fake, ep, clk := setup(t, life)
	fake.Set(fakehexagon.Switches{TokenDelay: 30 * time.Millisecond})
	store := tokenstore.NewMemory()
	var insts []instance
	for range 5 {
		insts = append(insts, newInstance(ep, store, clk, SharedOptions{}))
	}

	// A cold stampede over five instances: one token request.
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := insts[i%len(insts)].cached.Token(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("300 cold requests over 5 instances made %d token requests, want 1", n)
	}

	// Past half-life, everyone asks: exactly one refresh.
	clk.Advance(life/2 + life/20)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i%len(insts)].cached.Token()
		}()
	}
	wg.Wait()
	waitFor(t, "the refresh", func() bool { return fake.TokenRequests.Load() == 2 })
	clk.Advance(2 * minRecheck) // the losers look again and find the new token
	for _, in := range insts {
		in.cached.Token()
	}
	time.Sleep(100 * time.Millisecond)
	for _, in := range insts {
		in.cached.Token()
	}
	time.Sleep(100 * time.Millisecond)
	if n := fake.TokenRequests.Load(); n != 2 {
		t.Fatalf("the half-life refresh made %d token requests in all, want 2", n)
	}
	if _, expiry, _ := fake.CurrentToken(good.ID); !expiry.After(clk.Now().Add(life / 2)) {
		t.Fatal("the refresh did not renew the token")
	}

	// A new instance starts cold and needs no token request at all.
	late := newInstance(ep, store, clk, SharedOptions{})
	if _, err := late.cached.Token(); err != nil {
		t.Fatal(err)
	}
	if n := fake.TokenRequests.Load(); n != 2 {
		t.Fatalf("a late instance made a token request (%d in all)", n)
	}
}

func TestSharedStoresNothingInClear(t *testing.T) {
	_, ep, clk := setup(t, time.Hour)
	store := tokenstore.NewMemory()
	in := newInstance(ep, store, clk, SharedOptions{HashKey: "k1"})
	tok, err := in.cached.Token()
	if err != nil {
		t.Fatal(err)
	}
	key := RowKey(good, "k1")
	ent, _, err := store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	raw := string(ent.Data) + key + ent.LeaseOwner
	for _, s := range []string{good.ID, good.Secret, tok.AccessToken, credential.Encode(good.Secret)} {
		if strings.Contains(raw, s) {
			t.Fatalf("store holds %q in clear", s)
		}
	}
	if RowKey(good, "k2") == key || RowKey(good, "") == key {
		t.Fatal("the hash key must change the row key")
	}
	// Another credential cannot open it, even if pointed at the row.
	other := NewShared(context.Background(), credential.Credential{ID: good.ID, Secret: "other"}, ep.Source(context.Background(), good), store, SharedOptions{})
	if _, ok := other.open(ent.Data); ok {
		t.Fatal("a different credential opened the sealed token")
	}
}

// flakyStore fails every call while down is set.
type flakyStore struct {
	tokenstore.Store
	down  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("store unreachable")

func (f *flakyStore) Get(ctx context.Context, k string) (tokenstore.Entity, tokenstore.ETag, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return tokenstore.Entity{}, "", errDown
	}
	return f.Store.Get(ctx, k)
}

func (f *flakyStore) Create(ctx context.Context, k string, e tokenstore.Entity) (tokenstore.ETag, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return "", errDown
	}
	return f.Store.Create(ctx, k, e)
}

func (f *flakyStore) Update(ctx context.Context, k string, e tokenstore.Entity, m tokenstore.ETag) (tokenstore.ETag, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return "", errDown
	}
	return f.Store.Update(ctx, k, e, m)
}

func TestSharedSurvivesStoreOutage(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := &flakyStore{Store: tokenstore.NewMemory()}
	store.down.Store(true)
	var logs bytes.Buffer
	health := &StoreHealth{RetryAfter: time.Minute, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	a := newInstance(ep, store, clk, SharedOptions{Health: health})
	if _, err := a.cached.Token(); err != nil {
		t.Fatalf("a store outage failed a request: %v", err)
	}
	callsWhileDown := store.calls.Load()
	b := newInstance(ep, store, clk, SharedOptions{Health: health})
	if _, err := b.cached.Token(); err != nil {
		t.Fatal(err)
	}
	if store.calls.Load() != callsWhileDown {
		t.Fatal("a store known to be down was called again before RetryAfter")
	}
	if n := strings.Count(logs.String(), "token store unreachable"); n != 1 {
		t.Fatalf("outage logged %d times, want once:\n%s", n, logs.String())
	}
	// Back up: after RetryAfter the store is used again and sharing resumes.
	store.down.Store(false)
	clk.Advance(34 * time.Minute) // past the refresh point (0.55 of 60 min) and RetryAfter
	a.cached.Token()
	waitFor(t, "a refresh through the store", func() bool {
		_, _, err := store.Store.Get(context.Background(), RowKey(good, ""))
		return err == nil && !health.Down()
	})
	waitFor(t, "the refreshed token in the store", func() bool {
		ent, _, _ := store.Store.Get(context.Background(), RowKey(good, ""))
		_, ok := a.shared.open(ent.Data)
		return ok
	})
	before := fake.TokenRequests.Load()
	c := newInstance(ep, store, clk, SharedOptions{Health: health})
	if _, err := c.cached.Token(); err != nil || fake.TokenRequests.Load() != before {
		t.Fatalf("after recovery a new instance should share the stored token: %v, %d requests", err, fake.TokenRequests.Load()-before)
	}
	if !strings.Contains(logs.String(), "reachable again") {
		t.Fatal("recovery not logged")
	}
}

func TestSharedOverwritesCorruptEntity(t *testing.T) {
	_, ep, clk := setup(t, time.Hour)
	store := tokenstore.NewMemory()
	key := RowKey(good, "")
	store.Create(context.Background(), key, tokenstore.Entity{Data: []byte("garbage that is long enough to look sealed......")})
	in := newInstance(ep, store, clk, SharedOptions{})
	if _, err := in.cached.Token(); err != nil {
		t.Fatal(err)
	}
	ent, _, _ := store.Get(context.Background(), key)
	if _, ok := in.shared.open(ent.Data); !ok {
		t.Fatal("the corrupt entity was not overwritten with a sealed token")
	}
}

func TestSharedTakesOverFromDeadLeaseHolder(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := tokenstore.NewMemory()
	store.Create(context.Background(), RowKey(good, ""), tokenstore.Entity{LeaseOwner: "ghost", LeaseUntil: clk.Now().Add(30 * time.Second)})
	in := newInstance(ep, store, clk, SharedOptions{Wait: 200 * time.Millisecond})
	// While the ghost's lease runs, a cold instance waits, then fetches itself.
	if _, err := in.cached.Token(); err != nil || fake.TokenRequests.Load() != 1 {
		t.Fatalf("want a fetch after waiting: %v %d", err, fake.TokenRequests.Load())
	}
	// Once the lease has expired, the next instance takes it over.
	clk.Advance(31 * time.Second)
	other := newInstance(ep, store, clk, SharedOptions{})
	if _, err := other.cached.Token(); err != nil {
		t.Fatal(err)
	}
	ent, _, _ := store.Get(context.Background(), RowKey(good, ""))
	if _, ok := other.shared.open(ent.Data); !ok || ent.LeaseOwner != "" {
		t.Fatalf("the expired lease was not taken over: %+v", ent)
	}
}

func TestSharedInvalidate(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := tokenstore.NewMemory()
	a := newInstance(ep, store, clk, SharedOptions{})
	b := newInstance(ep, store, clk, SharedOptions{})
	first, _ := a.cached.Token()
	b.cached.Token()
	fake.Revoke(good.ID)
	a.cached.Invalidate(first)
	second, err := a.cached.Token()
	if err != nil || second.AccessToken == first.AccessToken {
		t.Fatalf("want a new token: %v", err)
	}
	// b still holds the revoked one in memory; when it is refused there,
	// b finds the replacement in the store without another token request.
	b.cached.Invalidate(first)
	third, _ := b.cached.Token()
	if third.AccessToken != second.AccessToken || fake.TokenRequests.Load() != 2 {
		t.Fatalf("b should pick up a's new token from the store; %d token requests", fake.TokenRequests.Load())
	}
}

var _ oauth2.TokenSource = (*Shared)(nil)
var _ Invalidator = (*Shared)(nil)
