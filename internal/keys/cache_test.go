package keys

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

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/testlog"
)

// fakeStore is an in-memory Store that counts Gets per key, and can be
// made to fail (as an unreachable vault) or to block. Like Key Vault, it
// finds a key whatever its case.
type fakeStore struct {
	mu      sync.Mutex
	recs    map[string]Record
	calls   map[string]int
	down    bool
	gate    chan struct{} // when non-nil, Get waits for it
	entered chan struct{} // when non-nil, Get signals here first
}

func newFakeStore() *fakeStore {
	return &fakeStore{recs: map[string]Record{}, calls: map[string]int{}}
}

func (s *fakeStore) Get(ctx context.Context, key string) (Record, error) {
	key = strings.ToLower(key)
	s.mu.Lock()
	s.calls[key]++
	gate, entered := s.gate, s.entered
	s.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		// Like an SDK error, it names the secret: the cache must scrub it.
		return Record{}, fmt.Errorf("GET https://vault.example/secrets/%s%s: connection refused", SecretPrefix, key)
	}
	r, ok := s.recs[key]
	if !ok {
		return Record{}, ErrNotFound
	}
	return r, nil
}

func (s *fakeStore) Create(ctx context.Context, key string, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[strings.ToLower(key)] = r
	return nil
}
func (s *fakeStore) Update(ctx context.Context, key string, r Record) error {
	return s.Create(ctx, key, r)
}
func (s *fakeStore) List(ctx context.Context) ([]Entry, error) { return nil, nil }

func (s *fakeStore) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[strings.ToLower(key)]
}

func (s *fakeStore) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s *fakeStore) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

type fixture struct {
	store *fakeStore
	clock *testclock.Clock
	logs  *testlog.Buffer
	cache *Cache
}

func newFixture(t *testing.T, o CacheOptions) *fixture {
	f := &fixture{store: newFakeStore(), clock: testclock.New(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)), logs: &testlog.Buffer{}}
	o.Now = f.clock.Now
	o.Log = slog.New(slog.NewJSONHandler(f.logs, nil))
	f.cache = NewCache(f.store, o)
	t.Cleanup(func() {
		// Nothing secret in any log line of any cache test.
		out := f.logs.String()
		for k, r := range f.store.recs {
			if strings.Contains(out, k) {
				t.Errorf("a key reached the logs:\n%s", out)
			}
			for _, s := range r.Sets {
				if strings.Contains(out, s.Secret) || s.ID != "" && strings.Contains(out, s.ID) {
					t.Errorf("a credential reached the logs:\n%s", out)
				}
			}
		}
	})
	return f
}

var opts = CacheOptions{Refresh: 5 * time.Minute, NegativeTTL: time.Minute, StaleFor: time.Hour, Retry: 10 * time.Second, ReloadEvery: 10 * time.Second}

func record(org string, n int) Record {
	r := Record{Org: org, Contact: "gis@" + strings.ToLower(org) + ".example", Enabled: true}
	for i := range n {
		r.Sets = append(r.Sets, credential.Credential{ID: fmt.Sprintf("client-%s-%d", org, i), Secret: fmt.Sprintf("secret-%s-%d-xyzzy", org, i)})
	}
	return r
}

const key1 = "hxpk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestLookupBadSyntaxNeverReachesStore(t *testing.T) {
	f := newFixture(t, opts)
	for _, k := range []string{"", "a b", "../x", strings.Repeat("a", MaxLen+1), "k\r\n"} {
		if _, err := f.cache.Lookup(context.Background(), k); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v", k, err)
		}
		if _, err := f.cache.Reload(context.Background(), k); !errors.Is(err, ErrSyntax) {
			t.Errorf("reload %q: %v", k, err)
		}
	}
	if n := f.store.total(); n != 0 {
		t.Fatalf("%d store calls for malformed keys", n)
	}
}

func TestLookupReusesForRefreshThenSeesRevocation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	f.store.Create(ctx, key1, record("Marin", 1))
	k, err := f.cache.Lookup(ctx, key1)
	if err != nil || k.Org() != "Marin" || k.Fingerprint() != Fingerprint(key1, "") {
		t.Fatalf("%v %v", k, err)
	}
	for range 100 {
		f.clock.Advance(2 * time.Second)
		if k2, err := f.cache.Lookup(ctx, key1); err != nil || k2 != k {
			t.Fatalf("within Refresh: %v, same key %v", err, k2 == k)
		}
	}
	if n := f.store.count(key1); n != 1 {
		t.Fatalf("%d store calls within Refresh, want 1", n)
	}
	r := record("Marin", 1)
	r.Enabled = false
	f.store.Update(ctx, key1, r)
	f.clock.Advance(opts.Refresh - 200*time.Second) // 5 min after the first fetch
	// Due: the lookup that notices still serves the record it has, and
	// refreshes it in the background; the next one sees the revocation.
	if k2, err := f.cache.Lookup(ctx, key1); err != nil || k2 != k {
		t.Fatalf("the lookup that starts a refresh: %v", err)
	}
	f.waitForRefresh(key1)
	_, err = f.cache.Lookup(ctx, key1)
	var le *LifecycleError
	if !errors.As(err, &le) || le.Status != Revoked || !errors.Is(err, ErrInactive) {
		t.Fatalf("after Refresh a revoked key: %v", err)
	}
	if want := "this API key has been revoked; contact gis@marin.example"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if n := f.store.count(key1); n != 2 {
		t.Fatalf("%d store calls, want 2", n)
	}
}

func TestLifecycleErrors(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	now := f.clock.Now()
	exp := record("Old", 1)
	exp.Expires = now.Add(time.Hour)
	f.store.Create(ctx, "hxpk-expiring", exp)
	nb := record("New", 1)
	nb.NotBefore = now.Add(time.Minute)
	f.store.Create(ctx, "hxpk-future", nb)

	if _, err := f.cache.Lookup(ctx, "hxpk-expiring"); err != nil {
		t.Fatal(err)
	}
	_, err := f.cache.Lookup(ctx, "hxpk-future")
	var le *LifecycleError
	if !errors.As(err, &le) || le.Status != NotYetValid || err.Error() != "this API key is not valid before 2025-06-01 12:01 UTC; contact gis@new.example" {
		t.Fatalf("not yet valid: %v", err)
	}
	// Expiry is checked on every lookup, not only when the record is fetched.
	f.clock.Advance(time.Hour)
	_, err = f.cache.Lookup(ctx, "hxpk-expiring")
	if !errors.As(err, &le) || le.Status != Expired || err.Error() != "this API key expired on 2025-06-01 13:00 UTC; contact gis@old.example" {
		t.Fatalf("expired: %v", err)
	}
	if _, err := f.cache.Lookup(ctx, "hxpk-future"); err != nil {
		t.Fatalf("valid now: %v", err)
	}
}

func TestUnknownKeyAskedOncePerNegativeTTL(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	const unknown = "hxpk-nobody"
	for i := range 1000 {
		var err error
		if i%2 == 0 {
			_, err = f.cache.Lookup(ctx, unknown)
		} else {
			_, err = f.cache.Reload(ctx, unknown) // nokeycache honours the negative cache
		}
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("lookup %d: %v", i, err)
		}
		f.clock.Advance(50 * time.Millisecond) // 1000 lookups over 50 s < NegativeTTL
	}
	if n := f.store.count(unknown); n != 1 {
		t.Fatalf("%d store calls within NegativeTTL, want 1", n)
	}
	f.clock.Advance(opts.NegativeTTL)
	f.cache.Lookup(ctx, unknown)
	if n := f.store.count(unknown); n != 2 {
		t.Fatalf("%d store calls after NegativeTTL, want 2", n)
	}
	// A key created meanwhile is found once the negative entry lapses.
	f.store.Create(ctx, unknown, record("Late", 1))
	if _, err := f.cache.Lookup(ctx, unknown); !errors.Is(err, ErrNotFound) {
		t.Fatalf("within the new NegativeTTL: %v", err)
	}
	f.clock.Advance(opts.NegativeTTL)
	if _, err := f.cache.Lookup(ctx, unknown); err != nil {
		t.Fatalf("after NegativeTTL: %v", err)
	}
}

func TestRandomKeysAreRateLimited(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, CacheOptions{MissRate: 5})
	f.store.Create(ctx, key1, record("Marin", 1))
	if _, err := f.cache.Lookup(ctx, key1); err != nil {
		t.Fatal(err)
	}
	unavailable := 0
	for i := range 1000 {
		_, err := f.cache.Lookup(ctx, fmt.Sprintf("hxpk-random-%d", i))
		switch {
		case errors.Is(err, ErrUnavailable):
			unavailable++
		case !errors.Is(err, ErrNotFound):
			t.Fatal(err)
		}
	}
	// The clock stands still: the burst (2 × 5) less the one key1 used.
	if n := f.store.total(); n != 10 {
		t.Fatalf("%d store calls for 1000 random keys with the clock stopped, want 10", n)
	}
	if unavailable != 991 {
		t.Fatalf("%d lookups refused, want 991", unavailable)
	}
	// A key in memory is not affected.
	if _, err := f.cache.Lookup(ctx, key1); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	f.cache.Lookup(ctx, "hxpk-random-late")
	if n := f.store.total(); n != 11 {
		t.Fatalf("after a second: %d store calls, want 11", n)
	}
}

func TestLookupsAreSingleFlighted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	f.store.Create(ctx, key1, record("Marin", 2))
	gate := make(chan struct{})
	f.store.gate, f.store.entered = gate, make(chan struct{}, 100)

	const n = 50
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range n {
		wg.Go(func() {
			if k, err := f.cache.Lookup(ctx, key1); err == nil && k.Org() == "Marin" {
				ok.Add(1)
			}
		})
	}
	<-f.store.entered
	// A caller that gives up does not wait, nor cancel the others' load.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.cache.Lookup(cctx, key1); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	time.Sleep(20 * time.Millisecond) // let the others join the flight
	close(gate)
	wg.Wait()
	if ok.Load() != n {
		t.Fatalf("%d of %d lookups succeeded", ok.Load(), n)
	}
	if c := f.store.count(key1); c != 1 {
		t.Fatalf("%d store calls for %d concurrent lookups, want 1", c, n)
	}
}

func TestStoreOutageServesLastGoodRecord(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	f.store.Create(ctx, key1, record("Marin", 1))
	k, err := f.cache.Lookup(ctx, key1)
	if err != nil {
		t.Fatal(err)
	}
	f.store.setDown(true)
	f.clock.Advance(opts.Refresh)
	// 1000 lookups over 100 s: served from the last good record, with the
	// store asked once per Retry.
	for i := range 1000 {
		got, err := f.cache.Lookup(ctx, key1)
		if err != nil || got != k {
			t.Fatalf("lookup %d during the outage: %v", i, err)
		}
		f.waitForRefresh(key1)
		f.clock.Advance(100 * time.Millisecond)
	}
	if n := f.store.count(key1); n < 10 || n > 12 {
		t.Fatalf("%d store calls in 100 s of outage with Retry 10 s, want about 11", n)
	}
	logs := f.logs.String()
	if c := strings.Count(logs, "serving the key's last good record"); c != 1 {
		t.Fatalf("the outage is logged %d times for one key, want once:\n%s", c, logs)
	}
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, Fingerprint(key1, "")) || !strings.Contains(logs, SecretPrefix+Fingerprint(key1, "")) {
		t.Fatalf("the warning must carry the fingerprint, and the store's error scrubbed:\n%s", logs)
	}
	// A key never seen cannot be served.
	if _, err := f.cache.Lookup(ctx, "hxpk-cold"); !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "hxpk-cold") {
		t.Fatalf("cold key during the outage: %v", err)
	}
	// Past StaleFor the record is too old.
	f.clock.Advance(opts.StaleFor)
	if _, err := f.cache.Lookup(ctx, key1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after StaleFor: %v", err)
	}
	// The vault comes back: served again, a fresh outage is logged anew.
	f.store.setDown(false)
	f.clock.Advance(opts.Retry)
	if _, err := f.cache.Lookup(ctx, key1); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	f.store.setDown(true)
	f.clock.Advance(opts.Refresh)
	if _, err := f.cache.Lookup(ctx, key1); err != nil {
		t.Fatal(err)
	}
	f.waitForRefresh(key1)
	if c := strings.Count(f.logs.String(), "serving the key's last good record"); c != 2 {
		t.Fatalf("second outage: %d warnings, want 2", c)
	}
}

func TestReloadIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	f.store.Create(ctx, key1, record("Marin", 1))
	if _, err := f.cache.Reload(ctx, key1); err != nil {
		t.Fatal(err)
	}
	f.store.Update(ctx, key1, record("Marin renamed", 1))
	for range 100 {
		k, err := f.cache.Reload(ctx, key1)
		if err != nil || k.Org() != "Marin" {
			t.Fatalf("within ReloadEvery: %v %v", k, err)
		}
		f.clock.Advance(50 * time.Millisecond)
	}
	if n := f.store.count(key1); n != 1 {
		t.Fatalf("%d store calls within ReloadEvery, want 1", n)
	}
	f.clock.Advance(opts.ReloadEvery)
	if k, err := f.cache.Reload(ctx, key1); err != nil || k.Org() != "Marin renamed" {
		t.Fatalf("after ReloadEvery: %v %v", k, err)
	}
	// And a plain Lookup sees the reloaded record without a store call.
	if k, _ := f.cache.Lookup(ctx, key1); k.Org() != "Marin renamed" || f.store.count(key1) != 2 {
		t.Fatalf("lookup after reload: %v, %d calls", k.Org(), f.store.count(key1))
	}
}

func TestMemoryIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, CacheOptions{MaxKeys: 10, MissRate: 1e6})
	for i := range 100 {
		k := fmt.Sprintf("hxpk-org-%d", i)
		f.store.Create(ctx, k, record(fmt.Sprintf("Org%d", i), 1))
		if _, err := f.cache.Lookup(ctx, k); err != nil {
			t.Fatal(err)
		}
		f.cache.Lookup(ctx, fmt.Sprintf("hxpk-unknown-%d", i))
	}
	f.cache.mu.Lock()
	known, unknown := f.cache.known.Len(), f.cache.unknown.Len()
	f.cache.mu.Unlock()
	if known != 10 || unknown != 10 {
		t.Fatalf("%d records and %d unknown keys kept, want 10 and 10", known, unknown)
	}
	// The most recent are kept; the oldest was evicted and is fetched again.
	f.cache.Lookup(ctx, "hxpk-org-99")
	f.cache.Lookup(ctx, "hxpk-org-0")
	if a, b := f.store.count("hxpk-org-99"), f.store.count("hxpk-org-0"); a != 1 || b != 2 {
		t.Fatalf("store calls: recent key %d (want 1), evicted key %d (want 2)", a, b)
	}
}

func TestPickSpreadsAndSkipsRefusedSets(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	f.store.Create(ctx, key1, record("Marin", 3))
	k, err := f.cache.Lookup(ctx, key1)
	if err != nil {
		t.Fatal(err)
	}
	counts := func(n int) map[int]int {
		c := map[int]int{}
		for range n {
			cred, set, err := k.Pick()
			if err != nil {
				t.Fatal(err)
			}
			if cred.ID != fmt.Sprintf("client-Marin-%d", set) {
				t.Fatalf("Pick returned set %d with another set's credential", set)
			}
			c[set]++
		}
		return c
	}
	if c := counts(300); c[0] != 100 || c[1] != 100 || c[2] != 100 {
		t.Fatalf("300 picks over 3 sets: %v", c)
	}
	k.Refused(1)
	k.Refused(1)
	k.Refused(99) // ignored
	if c := counts(300); c[0] != 150 || c[2] != 150 || c[1] != 0 {
		t.Fatalf("with set 1 refused: %v", c)
	}
	logs := f.logs.String()
	if strings.Count(logs, `the upstream refused a credential set of a key; skipping it until the key is next refreshed","upstream":"Hexagon"`) != 1 || !strings.Contains(logs, `"org":"Marin"`) || !strings.Contains(logs, `"set":2`) {
		t.Fatalf("one refusal line with org and set number (from 1, as the CLI counts) wanted:\n%s", logs)
	}
	k.Refused(0)
	k.Refused(2)
	_, set, err := k.Pick()
	fe := failure.As(err)
	if err == nil || set != -1 || fe.Kind != failure.Forbidden || fe.HTTPStatus() != 403 ||
		fe.Message != "every Hexagon credential behind this key was refused; contact gis@marin.example" {
		t.Fatalf("all refused: set %d, %v", set, err)
	}
	// The next fetch of the record forgets the refusals.
	f.clock.Advance(opts.Refresh)
	f.cache.Lookup(ctx, key1) // starts the refresh
	f.waitForRefresh(key1)
	k2, err := f.cache.Lookup(ctx, key1)
	if err != nil || k2 == k {
		t.Fatalf("refresh: %v", err)
	}
	if _, _, err := k2.Pick(); err != nil {
		t.Fatalf("after refresh: %v", err)
	}
}

func TestKeyRecordIsACopy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	r := record("Marin", 1)
	r.Origins = []string{"https://a.example"}
	f.store.Create(ctx, key1, r)
	k, _ := f.cache.Lookup(ctx, key1)
	got := k.Record()
	got.Sets[0].ID, got.Origins[0] = "changed", "changed"
	if c, _, _ := k.Pick(); c.ID != "client-Marin-0" || k.Origins()[0] != "https://a.example" {
		t.Fatal("Record shares memory with the key")
	}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("request", "key", k)
	if !strings.Contains(b.String(), "key.key="+Fingerprint(key1, "")) || !strings.Contains(b.String(), "key.org=Marin") || strings.Contains(b.String(), "secret") {
		t.Fatalf("LogValue: %s", b.String())
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, CacheOptions{Refresh: time.Second, NegativeTTL: time.Second, MaxKeys: 4, MissRate: 1e6})
	for i := range 8 {
		f.store.Create(ctx, fmt.Sprintf("hxpk-k%d", i), record(fmt.Sprintf("O%d", i), 2))
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("hxpk-k%d", (g+i)%10) // 8 and 9 are unknown
				var k *Key
				var err error
				if i%7 == 0 {
					k, err = f.cache.Reload(ctx, key)
				} else {
					k, err = f.cache.Lookup(ctx, key)
				}
				if err != nil {
					if !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
					continue
				}
				if _, set, err := k.Pick(); err == nil && i%5 == 0 {
					k.Refused(set)
				}
				if i%50 == 0 {
					f.clock.Advance(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkLookupCached(b *testing.B) {
	s := newFakeStore()
	s.Create(context.Background(), key1, record("Marin", 3))
	c := NewCache(s, CacheOptions{Log: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k, err := c.Lookup(ctx, key1)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := k.Pick(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// waitForRefresh waits for a background refresh of key, if one runs:
// joining its flight returns when it has finished.
func (f *fixture) waitForRefresh(key string) {
	f.cache.sf.Do(Canonical(key), func() (any, error) { return nil, nil })
}

// Every spelling of a key is the same key: one record fetch, one
// fingerprint, one limiter (a key holder cannot multiply a limit by
// changing case, as Key Vault finds the record whatever the case).
func TestCaseVariantsAreOneKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	r := record("Marin", 1)
	r.Rate, r.Burst = 1, 1
	f.store.Create(ctx, key1, r)
	k1, err := f.cache.Lookup(ctx, key1)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := f.cache.Lookup(ctx, strings.ToUpper(key1))
	if err != nil || k2 != k1 || k2.Fingerprint() != k1.Fingerprint() || k2.Limiter() != k1.Limiter() {
		t.Fatalf("another spelling is another key: %v", err)
	}
	if n := f.store.count(key1); n != 1 {
		t.Fatalf("%d store calls for two spellings of one key", n)
	}
	if !f.cache.Known(strings.ToUpper(key1)) || f.cache.Known("hxpk-not-in-memory") {
		t.Fatal("Known must find every spelling of a key in memory, and nothing else")
	}
}

// Reloading a record (the nokeycache route) keeps its rate allowance.
func TestReloadKeepsTheRateAllowance(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	r := record("Marin", 1)
	r.Rate, r.Burst = 0.01, 2
	f.store.Create(ctx, key1, r)
	k, err := f.cache.Lookup(ctx, key1)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(opts.ReloadEvery)
	k2, err := f.cache.Reload(ctx, key1)
	if err != nil || k2 == k {
		t.Fatalf("reload: %v (same key object: %v)", err, k2 == k)
	}
	if k2.Limiter() != k.Limiter() {
		t.Fatal("a reload must not refill the rate allowance")
	}
	r.Rate = 5
	f.store.Update(ctx, key1, r)
	f.clock.Advance(opts.ReloadEvery)
	if k3, _ := f.cache.Reload(ctx, key1); k3.Limiter() == k.Limiter() {
		t.Fatal("changed limits need a new limiter")
	}
}

// listingStore is a fakeStore that lists its keys' attributes, and can
// fail to.
type listingStore struct {
	*fakeStore
	listDown bool
	versions map[string]string
}

func (s *listingStore) Listing(context.Context) (map[string]Attrs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listDown {
		return nil, errors.New("vault unreachable")
	}
	out := map[string]Attrs{}
	for k, r := range s.recs {
		out[k] = Attrs{Enabled: r.Enabled, NotBefore: r.NotBefore, Expires: r.Expires, Version: s.versions[k]}
	}
	return out, nil
}

// A key the last good listing showed as revoked is never served from a
// stale record, also while neither the store nor its listing answers.
func TestListingRefusesRevokedKeysThroughAnOutage(t *testing.T) {
	f := newFixture(t, opts)
	ls := &listingStore{fakeStore: f.store, versions: map[string]string{}}
	o := opts
	o.Now, o.Log, o.ListEvery = f.clock.Now, slog.New(slog.NewJSONHandler(f.logs, nil)), time.Hour
	c := NewCache(ls, o)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	key := Canonical(key1)
	f.store.Create(ctx, key, record("Outage", 1))
	listOnce := func() {
		done := make(chan struct{})
		lctx, stop := context.WithCancel(ctx)
		go func() { c.Watch(lctx); close(done) }()
		for c.listing.Load() == nil || c.listing.Load().at.IsZero() {
			time.Sleep(time.Millisecond)
		}
		stop()
		<-done
	}
	listOnce()
	if _, err := c.Lookup(ctx, key); err != nil {
		t.Fatal(err)
	}
	// Revoked in the store, listed as such; then the store and its
	// listing go down, and the record falls due for refresh.
	r := record("Outage", 1)
	r.Enabled = false
	f.store.Update(ctx, key, r)
	c.listing.Store(nil)
	listOnce()
	f.store.mu.Lock()
	f.store.down, ls.listDown = true, true
	f.store.mu.Unlock()
	f.clock.Advance(o.Refresh + time.Minute)
	if _, err := c.Lookup(ctx, key); !errors.Is(err, ErrInactive) {
		t.Fatalf("a key listed as revoked, store down: %v", err)
	}
	// Not listed at all, in a fresh listing: unknown without a store call.
	f.clock.Advance(-o.Refresh - time.Minute)
	calls := f.store.total()
	if _, err := c.Lookup(ctx, "hxpk-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"); !errors.Is(err, ErrNotFound) || f.store.total() != calls {
		t.Fatalf("an unlisted key: %v, %d store calls", err, f.store.total()-calls)
	}
}

// Found by review: a key a listing no longer shows is never served again,
// however old that listing grows while the store is down; a key
// remembered as unknown serves once a listing shows it; a changed record
// whose reread fails costs the store one call per Retry, not one per
// request.
func TestListingEdges(t *testing.T) {
	f := newFixture(t, opts)
	ls := &listingStore{fakeStore: f.store, versions: map[string]string{}}
	o := opts
	o.Now, o.Log, o.ListEvery = f.clock.Now, slog.New(slog.NewJSONHandler(f.logs, nil)), 10*time.Second
	c := NewCache(ls, o)
	ctx := context.Background()
	list := func() {
		attrs, err := ls.Listing(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.listing.Store(&listed{at: f.clock.Now(), attrs: attrs})
	}
	gone, late, hot := Canonical(key1), "hxpk-lateaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "hxpk-hotaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	f.store.Create(ctx, gone, record("Gone", 1))
	f.store.Create(ctx, hot, record("Hot", 1))
	list()
	if _, err := c.Lookup(ctx, gone); err != nil {
		t.Fatal(err)
	}
	// Deleted: a listing without it, then the store and listings go down
	// and the listing ages past three periods.
	f.store.mu.Lock()
	delete(f.store.recs, gone)
	f.store.mu.Unlock()
	f.clock.Advance(time.Second)
	list()
	f.store.mu.Lock()
	f.store.down = true
	f.store.mu.Unlock()
	f.clock.Advance(time.Hour)
	if _, err := c.Lookup(ctx, gone); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a deleted key, the listing an hour old and the store down: %v", err)
	}
	f.store.mu.Lock()
	f.store.down = false
	f.store.mu.Unlock()

	// Unknown, remembered so; then created and listed: served.
	if _, err := c.Reload(ctx, late); !errors.Is(err, ErrNotFound) {
		t.Fatalf("before it exists: %v", err)
	}
	f.store.Create(ctx, late, record("Late", 1))
	f.clock.Advance(time.Second)
	list()
	if _, err := c.Lookup(ctx, late); err != nil {
		t.Fatalf("created and listed, within NegativeTTL of its miss: %v", err)
	}

	// Changed (a new version listed) while the store fails: the current
	// record is served, and the store asked once per Retry.
	if _, err := c.Lookup(ctx, hot); err != nil {
		t.Fatal(err)
	}
	ls.mu.Lock()
	ls.versions[hot] = "v2"
	ls.mu.Unlock()
	list()
	f.store.mu.Lock()
	f.store.down = true
	f.store.mu.Unlock()
	before := f.store.count(hot)
	for range 100 {
		if _, err := c.Lookup(ctx, hot); err != nil {
			t.Fatalf("a changed key while the store fails: %v", err)
		}
	}
	// The background read may still be under way: wait for it.
	for deadline := time.Now().Add(2 * time.Second); f.store.count(hot) == before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if n := f.store.count(hot) - before; n != 1 {
		t.Fatalf("100 lookups of a changed key, store failing: %d store calls, want 1", n)
	}
}

// A provider's key within EndWarning of its end is warned of as its set
// is picked: once a day per key, also across the record's reloads (every
// Refresh), and again the next day; a key further off is not.
func TestPickWarnsOfAnEndingKeyOnceADay(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	r := Record{Org: "Marin", Contact: "gis@marin.example", Enabled: true, Provider: "maxar",
		Sets: []credential.Credential{{Provider: "maxar", Secret: "mx-ending-key-xyzzy", Expires: f.clock.Now().Add(3 * 24 * time.Hour)}}}
	f.store.Create(ctx, key1, r)
	const warning = "a provider's key behind this key ends soon"
	for range 3 { // three reloads in one day
		k, err := f.cache.Reload(ctx, key1)
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			k.Pick()
		}
		f.clock.Advance(opts.Refresh + opts.ReloadEvery)
	}
	if n := strings.Count(f.logs.String(), warning); n != 1 {
		t.Fatalf("%d warnings in one day, want 1:\n%s", n, f.logs.String())
	}
	f.clock.Advance(24 * time.Hour)
	k, err := f.cache.Lookup(ctx, key1)
	if err != nil {
		t.Fatal(err)
	}
	k.Pick()
	if n := strings.Count(f.logs.String(), warning); n != 2 || !strings.Contains(f.logs.String(), `"days_left":1`) {
		t.Fatalf("%d warnings over two days, want 2 (the second with 1 whole day left):\n%s", n, f.logs.String())
	}
	// Ended: said so.
	f.clock.Advance(3 * 24 * time.Hour)
	k, _ = f.cache.Lookup(ctx, key1)
	k.Pick()
	if !strings.Contains(f.logs.String(), "a provider's key behind this key has ended") {
		t.Fatalf("no warning of the ended key:\n%s", f.logs.String())
	}
	// A key 30 days off is not warned of.
	f2 := newFixture(t, opts)
	r.Sets[0].Expires = f2.clock.Now().Add(30 * 24 * time.Hour)
	f2.store.Create(ctx, key1, r)
	k, _ = f2.cache.Lookup(ctx, key1)
	k.Pick()
	if strings.Contains(f2.logs.String(), "behind this key") {
		t.Fatalf("a key 30 days off is warned of:\n%s", f2.logs.String())
	}
}

// Two ending keys of one record are each warned of, each once a day.
func TestPickWarnsOfEachEndingSet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	end := f.clock.Now().Add(3 * 24 * time.Hour)
	r := Record{Org: "Marin", Contact: "gis@marin.example", Enabled: true, Provider: "maxar", Sets: []credential.Credential{
		{Provider: "maxar", Secret: "mx-ending-key-one", Expires: end}, {Provider: "maxar", Secret: "mx-ending-key-two", Expires: end}}}
	f.store.Create(ctx, key1, r)
	k, err := f.cache.Lookup(ctx, key1)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		k.Pick()
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "a provider's key behind this key ends soon"); n != 2 || !strings.Contains(logs, `"set":1`) || !strings.Contains(logs, `"set":2`) {
		t.Fatalf("%d warnings, want one for each set:\n%s", n, logs)
	}
}

// Requests on each of a key's sets refused at once (a layer outside the
// licence, asked for with every key) leave one set: RefusedUnlessLast
// never refuses the last, however the calls interleave.
func TestRefusedUnlessLastKeepsOneSetUnderRaces(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, opts)
	f.store.Create(ctx, key1, record("Marin", 3))
	for round := range 300 {
		k, err := f.cache.Reload(ctx, key1)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var marked atomic.Int32
		start := make(chan struct{})
		for set := range 3 {
			wg.Go(func() {
				<-start
				if k.RefusedUnlessLast(set) {
					marked.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if _, _, err := k.Pick(); err != nil || marked.Load() != 2 {
			t.Fatalf("round %d: %d sets marked refused, Pick: %v; want 2 and one left", round, marked.Load(), err)
		}
		f.clock.Advance(opts.ReloadEvery)
	}
	k, _ := f.cache.Lookup(ctx, key1)
	if k.RefusedUnlessLast(-1) || k.RefusedUnlessLast(3) {
		t.Fatal("an index out of range was marked")
	}
}

// A key's provider is named in the all-refused message by
// CacheOptions.ProviderTitle, else by a built-in profile's title, else by
// the record's name for it.
func TestAllRefusedNamesTheProvidersTitle(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		provider string
		title    func(string) string
		want     string
	}{
		{"maxar", nil, "every Maxar credential"},
		{"planet", func(string) string { return "" }, "every Planet Basemaps credential"},
		{"acme", nil, "every acme credential"},
		{"acme", func(n string) string { return map[string]string{"acme": "Acme Aerial"}[n] }, "every Acme Aerial credential"},
	} {
		o := opts
		o.ProviderTitle = c.title
		f := newFixture(t, o)
		f.store.Create(ctx, key1, Record{Org: "Marin", Contact: "gis@marin.example", Enabled: true, Provider: c.provider,
			Sets: []credential.Credential{{Provider: c.provider, Secret: "a-key"}}})
		k, err := f.cache.Lookup(ctx, key1)
		if err != nil {
			t.Fatal(err)
		}
		k.Refused(0)
		if _, _, err := k.Pick(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.provider, err, c.want)
		}
	}
}
