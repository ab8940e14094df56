package token

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
	store := memStore(clk)
	var insts []instance
	for range 5 {
		insts = append(insts, newInstance(ep, store, clk, SharedOptions{}))
	}

	// A never-seen credential has no row until Hexagon accepts it: a cold
	// stampede costs at most one token request per instance.
	var wg sync.WaitGroup
	stampede := func(insts []instance, n int) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := insts[i%len(insts)].cached.Token(); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	stampede(insts[:1], 60)
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("60 cold requests on one instance made %d token requests, want 1", n)
	}
	// Once the row exists, cold instances take the token from it.
	stampede(insts[1:], 240)
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("240 cold requests over 4 more instances made %d more token requests, want 0", n-1)
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

func TestSharedNewCredentialCostsAtMostOneRequestPerInstance(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	fake.Set(fakehexagon.Switches{TokenDelay: 30 * time.Millisecond})
	store := memStore(clk)
	var insts []instance
	for range 5 {
		insts = append(insts, newInstance(ep, store, clk, SharedOptions{}))
	}
	var wg sync.WaitGroup
	tokens := make([]string, 300)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := insts[i%len(insts)].cached.Token()
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = tok.AccessToken
		}()
	}
	wg.Wait()
	n := fake.TokenRequests.Load()
	if n < 1 || n > int64(len(insts)) {
		t.Fatalf("300 cold requests over %d instances made %d token requests, want 1 to %d", len(insts), n, len(insts))
	}
	live, _, _ := fake.CurrentToken(good.ID)
	for _, v := range tokens {
		if v != live {
			t.Fatalf("handed out %q, want the live token", v)
		}
	}
	if store.Len() != 1 {
		t.Fatalf("store holds %d rows, want 1", store.Len())
	}
	t.Logf("never-seen credential, 5 cold instances, 300 requests: %d token requests", n)
}

func TestSharedRefusedCredentialWritesNoRow(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
	for i := range 50 {
		bad := credential.Credential{ID: good.ID, Secret: fmt.Sprintf("wrong-%d", i)}
		sh := NewShared(context.Background(), bad, ep.Source(context.Background(), bad), store, SharedOptions{Now: clk.Now})
		if _, err := NewCached(sh, time.Minute, clk.Now, nil).Token(); !errors.Is(err, ErrRefused) {
			t.Fatalf("want a refusal, got %v", err)
		}
	}
	if store.Len() != 0 || fake.TokenRequests.Load() != 50 {
		t.Fatalf("50 refused credentials left %d rows (%d token requests)", store.Len(), fake.TokenRequests.Load())
	}
}

func TestSharedStoresNothingInClear(t *testing.T) {
	_, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
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
	if _, ok := other.unseal(ent.Data); ok {
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
	store := &flakyStore{Store: memStore(clk)}
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
		_, ok := a.shared.unseal(ent.Data)
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
	store := memStore(clk)
	key := RowKey(good, "")
	store.Create(context.Background(), key, tokenstore.Entity{Data: []byte("garbage that is long enough to look sealed......")})
	in := newInstance(ep, store, clk, SharedOptions{})
	if _, err := in.cached.Token(); err != nil {
		t.Fatal(err)
	}
	ent, _, _ := store.Get(context.Background(), key)
	if _, ok := in.shared.unseal(ent.Data); !ok {
		t.Fatal("the corrupt entity was not overwritten with a sealed token")
	}
}

func TestSharedTakesOverFromDeadLeaseHolder(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
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
	if _, ok := other.shared.unseal(ent.Data); !ok || ent.LeaseOwner != "" {
		t.Fatalf("the expired lease was not taken over: %+v", ent)
	}
}

func TestSharedInvalidate(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
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

// memStore is a Memory store on the test's clock, as the store's own
// clock would be in step with the instances'.
func memStore(clk *clock) *tokenstore.Memory {
	return tokenstore.NewMemoryWith(tokenstore.MemoryOptions{Now: clk.Now})
}
