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
	"github.com/hexprox/hexprox/internal/testclock"
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

func TestSharedIgnoresALeaseBeyondTheLeaseTime(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
	key := RowKey(good, "")
	// Someone who can write the table plants a lease for the next day.
	store.Create(context.Background(), key, tokenstore.Entity{LeaseOwner: "forger", LeaseUntil: clk.Now().Add(24 * time.Hour)})
	in := newInstance(ep, store, clk, SharedOptions{Wait: time.Hour})
	done := make(chan error, 1)
	go func() { _, err := in.cached.Token(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second): // the wait it would otherwise take is an hour
		t.Fatal("a cold instance waited out a forged lease")
	}
	ent, _, _ := store.Get(context.Background(), key)
	if _, ok := in.shared.unseal(ent.Data); !ok || ent.LeaseOwner != "" || fake.TokenRequests.Load() != 1 {
		t.Fatalf("the forged lease was not taken over: %+v, %d token requests", ent, fake.TokenRequests.Load())
	}
	// A lease within LeaseTTL plus the skew allowance is honoured.
	other := newInstance(ep, store, clk, SharedOptions{Wait: time.Hour})
	ent, tag, _ := store.Get(context.Background(), key)
	ent.LeaseOwner, ent.LeaseUntil = "peer", clk.Now().Add(30*time.Second+LeaseSkew)
	store.Update(context.Background(), key, ent, tag)
	if !other.shared.leased(ent, clk.Now()) {
		t.Fatal("a lease within LeaseTTL+LeaseSkew must be honoured")
	}
	ent.LeaseUntil = ent.LeaseUntil.Add(time.Millisecond)
	if other.shared.leased(ent, clk.Now()) {
		t.Fatal("a lease beyond LeaseTTL+LeaseSkew must be ignored")
	}
}

func TestSharedRefusesAReplayedBlob(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
	ctx := context.Background()
	key := RowKey(good, "")
	a := newInstance(ep, store, clk, SharedOptions{})
	old, err := a.cached.Token()
	if err != nil {
		t.Fatal(err)
	}
	oldRow, _, _ := store.Get(ctx, key)

	// Ten minutes on, Hexagon revokes the token; a refreshes the row.
	clk.Advance(10 * time.Minute)
	fake.Revoke(good.ID)
	a.cached.Invalidate(old)
	fresh, err := a.cached.Token()
	if err != nil || fresh.AccessToken == old.AccessToken {
		t.Fatalf("want a new token: %v", err)
	}
	// Someone who can write the table copies the old sealed blob back.
	_, tag, _ := store.Get(ctx, key)
	if _, err := store.Update(ctx, key, tokenstore.Entity{Data: oldRow.Data}, tag); err != nil {
		t.Fatal(err)
	}
	before := fake.TokenRequests.Load()
	// A cold instance does not hand the revoked token out; it fetches.
	cold := newInstance(ep, store, clk, SharedOptions{})
	got, err := cold.cached.Token()
	if err != nil || got.AccessToken == old.AccessToken {
		t.Fatalf("a cold instance handed out the replayed, revoked token: %v", err)
	}
	live, _, _ := fake.CurrentToken(good.ID)
	if got.AccessToken != live || fake.TokenRequests.Load() != before+1 {
		t.Fatalf("want the live token after one token request, got %d requests", fake.TokenRequests.Load()-before)
	}
	// The row holds a fresh blob again.
	ent, _, _ := store.Get(ctx, key)
	if rec, ok := cold.shared.open(ent); !ok || rec.Token != live {
		t.Fatal("the replayed blob was not replaced")
	}

	// An instance that has seen a newer blob refuses an older one even
	// inside the skew window (written moments ago, so the store's time
	// alone would not give it away).
	clk.Advance(time.Second)
	recent := ent.Data
	clk.Advance(time.Second)
	_, tag, _ = store.Get(ctx, key)
	store.Update(ctx, key, tokenstore.Entity{Data: cold.shared.seal(sealed{Token: live, Expiry: clk.Now().Add(time.Hour).UnixMilli(), RefreshAt: clk.Now().Add(30 * time.Minute).UnixMilli()}, clk.Now())}, tag)
	ent, tag, _ = store.Get(ctx, key)
	if _, ok := cold.shared.open(ent); !ok {
		t.Fatal("the newer blob must open")
	}
	store.Update(ctx, key, tokenstore.Entity{Data: recent}, tag)
	ent, _, _ = store.Get(ctx, key)
	if _, ok := cold.shared.open(ent); ok {
		t.Fatal("an instance accepted a blob older than one it has seen")
	}
	if _, ok := newInstance(ep, store, clk, SharedOptions{}).shared.open(ent); !ok {
		t.Fatal("a blob sealed two seconds before its row was written is within the skew allowance")
	}
}

func TestSharedSealSkewAllowance(t *testing.T) {
	_, ep, clk := setup(t, time.Hour)
	in := newInstance(ep, memStore(clk), clk, SharedOptions{})
	rec := sealed{Token: "tok", Expiry: clk.Now().Add(time.Hour).UnixMilli(), RefreshAt: clk.Now().Add(30 * time.Minute).UnixMilli()}
	for _, tc := range []struct {
		behind time.Duration // how far the sealer's clock is behind the store's
		ok     bool
	}{
		{0, true},
		{SealSkew / 2, true},
		{SealSkew, true},
		{SealSkew + time.Second, false},
		{time.Hour, false},
		{-time.Hour, true}, // a sealer ahead of the store
	} {
		fresh := newInstance(ep, memStore(clk), clk, SharedOptions{}) // has seen nothing
		data := in.shared.seal(rec, clk.Now().Add(-tc.behind))
		if _, ok := fresh.shared.open(tokenstore.Entity{Data: data, Modified: clk.Now()}); ok != tc.ok {
			t.Errorf("sealed %v before the store's write time: accepted %v, want %v", tc.behind, ok, tc.ok)
		}
	}
}

// unreadableStore answers Get with ErrUnreadable, with the real ETag,
// until the entity has been rewritten.
type unreadableStore struct {
	tokenstore.Store
	mu     sync.Mutex
	broken bool
}

func (s *unreadableStore) Get(ctx context.Context, k string) (tokenstore.Entity, tokenstore.ETag, error) {
	e, tag, err := s.Store.Get(ctx, k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.broken {
		return tokenstore.Entity{}, tag, tokenstore.ErrUnreadable
	}
	return e, tag, err
}

func (s *unreadableStore) Update(ctx context.Context, k string, e tokenstore.Entity, m tokenstore.ETag) (tokenstore.ETag, error) {
	tag, err := s.Store.Update(ctx, k, e, m)
	if err == nil {
		s.mu.Lock()
		s.broken = false
		s.mu.Unlock()
	}
	return tag, err
}

func TestSharedOverwritesAnUnreadableRow(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := &unreadableStore{Store: memStore(clk), broken: true}
	store.Store.Create(context.Background(), RowKey(good, ""), tokenstore.Entity{LeaseOwner: "?", LeaseUntil: clk.Now().Add(time.Hour)})
	var logs bytes.Buffer
	health := &StoreHealth{Log: slog.New(slog.NewTextHandler(&logs, nil))}
	in := newInstance(ep, store, clk, SharedOptions{Health: health})
	if _, err := in.cached.Token(); err != nil {
		t.Fatal(err)
	}
	ent, _, err := store.Get(context.Background(), RowKey(good, ""))
	if err != nil || fake.TokenRequests.Load() != 1 || health.Down() || strings.Contains(logs.String(), "unreachable") {
		t.Fatalf("an unreadable row must be overwritten, not taken for an outage: %v, %s", err, logs.String())
	}
	if _, ok := in.shared.open(ent); !ok {
		t.Fatal("the unreadable row was not replaced by a sealed token")
	}
}

// missOnce is a store whose first Get finds nothing: the instance read the
// row before another instance created it.
type missOnce struct {
	tokenstore.Store
	missed atomic.Bool
}

func (m *missOnce) Get(ctx context.Context, key string) (tokenstore.Entity, tokenstore.ETag, error) {
	if !m.missed.Swap(true) {
		return tokenstore.Entity{}, "", tokenstore.ErrNotFound
	}
	return m.Store.Get(ctx, key)
}

// Two instances racing for a new credential's first token is benign: the
// loser serves the winner's token, and says nothing louder than debug.
func TestCreateRaceIsQuiet(t *testing.T) {
	_, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	first := newInstance(ep, store, clk, SharedOptions{Log: log})
	won, err := first.shared.Token()
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second) // the loser's write would have been later
	loser := newInstance(ep, &missOnce{Store: store}, clk, SharedOptions{Log: log})
	got, err := loser.shared.Token()
	if err != nil || got.AccessToken != won.AccessToken {
		t.Fatalf("the loser serves %v (%v), want the winner's token", got, err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a benign race logged:\n%s", logs.String())
	}
}

// MinRefresh holds through the shared layer too: a token that lives a few
// seconds is not refreshed at 0.55 of its life, by any instance.
func TestMinRefreshThroughTheStore(t *testing.T) {
	fake, ep, clk := setup(t, 4*time.Second)
	store := memStore(clk)
	a, b := newInstance(ep, store, clk, SharedOptions{}), newInstance(ep, store, clk, SharedOptions{})
	if _, err := a.cached.Token(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		clk.Advance(time.Second)
		a.cached.Token()
		b.cached.Token()
	}
	time.Sleep(50 * time.Millisecond) // a background refresh, if one were started
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests within MinRefresh of the first, want 1", n)
	}
}

// A lease carries no seal time, so taking or releasing one must not raise
// the newest-seen mark that rows are judged by: an instance that leased a
// row with no token and failed to fill it then serves the token another
// instance, its clock a second behind, wrote meanwhile.
func TestALeaseAloneMarksNothingSeen(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	store := memStore(clk)
	behind := testclock.New(clk.Now().Add(-time.Second))
	store.Create(context.Background(), RowKey(good, ""), tokenstore.Entity{Data: []byte("garbage that is long enough to look sealed......")})
	a := newInstance(ep, store, clk, SharedOptions{})
	b := newInstance(ep, store, behind, SharedOptions{})

	fake.Set(fakehexagon.Switches{TokenStatus: 503})
	if _, err := a.shared.Token(); err == nil {
		t.Fatal("a token while Hexagon answers 503")
	}
	fake.Set(fakehexagon.Switches{})
	want, err := b.shared.Token()
	if err != nil {
		t.Fatal(err)
	}
	before := fake.TokenRequests.Load()
	got, err := a.shared.Token()
	if err != nil || got.AccessToken != want.AccessToken {
		t.Fatalf("a did not serve b's stored token: %v", err)
	}
	if n := fake.TokenRequests.Load() - before; n != 0 {
		t.Fatalf("a asked Hexagon %d more times for a token b had stored", n)
	}
}
