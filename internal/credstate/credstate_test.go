package credstate

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/usage"
	"github.com/hexprox/hexprox/internal/usage/limit"
)

func cred(i int) credential.Credential {
	return credential.Credential{ID: "id-" + strconv.Itoa(i), Secret: "secret-" + strconv.Itoa(i)}
}

// staticBase hands every credential a token without I/O.
func staticBase(context.Context, credential.Credential) *token.Cached {
	return token.NewCached(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static", Expiry: time.Now().Add(time.Hour)}), time.Minute, nil, nil)
}

// accept makes Hexagon accept e's credential, as a request would.
func accept(t *testing.T, e *Entry) {
	t.Helper()
	if _, err := e.Tokens.TokenContext(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Eviction follows use order, not the clock: with a stopped clock every
// entry was last used "at the same time", and the one dropped must still
// be the least recently used.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	stopped := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func() time.Time { return stopped }
	tab := New(context.Background(), Options{Max: 4, Tokens: func(context.Context, credential.Credential) *token.Cached {
		return token.NewCached(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static"}), time.Minute, at, nil)
	}})
	held := map[int]*Entry{}
	for i := range 4 {
		held[i] = tab.Get(cred(i))
	}
	// Use order now: 1, 3, 0, 2 (0 and 2 the most recent); 1 is oldest.
	for _, i := range []int{1, 3, 0, 2} {
		if tab.Get(cred(i)) != held[i] {
			t.Fatalf("credential %d got a new entry while held", i)
		}
	}
	for _, next := range []int{4, 5} {
		held[next] = tab.Get(cred(next))
	}
	if tab.Len() != 4 {
		t.Fatalf("Len %d, want 4", tab.Len())
	}
	for _, i := range []int{0, 2, 4, 5} {
		if tab.Get(cred(i)) != held[i] {
			t.Fatalf("credential %d was dropped; want 1 and 3 dropped", i)
		}
	}
	if tab.Get(cred(1)) == held[1] {
		t.Fatal("credential 1 kept its entry; it was the least recently used")
	}
}

func TestDefaultMax(t *testing.T) {
	tab := New(context.Background(), Options{Tokens: staticBase})
	for i := range DefaultMax + 1 {
		tab.Get(cred(i))
	}
	if tab.Len() != DefaultMax {
		t.Fatalf("Len %d, want %d", tab.Len(), DefaultMax)
	}
}

func TestRefusalTTLAsGiven(t *testing.T) {
	good := credential.Credential{ID: "client-1", Secret: "s3cret"}
	bad := credential.Credential{ID: good.ID, Secret: "wrong-secret"}
	for _, tc := range []struct {
		ttl      time.Duration
		requests int64 // after three asks, the clock moving 2s then 4s between them
	}{
		{0, 3},               // not remembered: no hidden default
		{time.Second, 3},     // remembered, but over before each next ask
		{5 * time.Second, 2}, // remembered over the first gap, not the second
	} {
		clk := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		fake := fakehexagon.New(fakehexagon.Options{Now: clk.Now})
		fake.AddClient(good.ID, good.Secret)
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)
		ep := &token.Endpoint{URL: srv.URL + fakehexagon.TokenPath, Client: &http.Client{Timeout: 2 * time.Second}, Now: clk.Now}
		tab := New(context.Background(), Options{Tokens: token.NewStack(token.StackOptions{Endpoint: ep, RefusalTTL: tc.ttl, Now: clk.Now})})
		for i := range 3 {
			if i > 0 {
				clk.Advance(time.Duration(i) * 2 * time.Second)
			}
			e := tab.Get(bad)
			if !e.Guess() && i == 0 {
				t.Fatal("a credential nobody asked about is not a guess")
			}
			if _, err := e.Tokens.Token(); !errors.Is(err, token.ErrRefused) {
				t.Fatalf("ttl %v: want a refusal, got %v", tc.ttl, err)
			}
			if e.Accepted() || e.Limiter() != nil || e.Subject() != nil {
				t.Fatal("a refused credential is limited or counted")
			}
		}
		if n := fake.TokenRequests.Load(); n != tc.requests {
			t.Fatalf("RefusalTTL %v: %d token requests, want %d", tc.ttl, n, tc.requests)
		}
		if tc.ttl > 0 && tab.Get(bad).Guess() {
			t.Fatal("a remembered refusal is answered from memory, not guessed again")
		}
	}
}

// Limits and counting start once Hexagon has accepted a credential, and
// stay for the entry's life.
func TestLimitsAndCountingOnceAccepted(t *testing.T) {
	counter := usage.New(usage.Options{Flush: time.Hour})
	t.Cleanup(func() { counter.Close(context.Background()) })
	tab := New(context.Background(), Options{Tokens: staticBase, Limits: limit.Limits{Rate: 1}, Usage: counter})
	e := tab.Get(cred(1))
	if e.Accepted() || e.Limiter() != nil || e.Subject() != nil || !e.Guess() {
		t.Fatal("limited or counted before Hexagon accepted it")
	}
	accept(t, e)
	if !e.Accepted() || e.Guess() || e.Limiter() == nil || e.Subject() == nil {
		t.Fatal("not limited or counted once accepted")
	}
	if e.Limiter() != e.Limiter() || e.Subject() != e.Subject() {
		t.Fatal("one credential, more than one limiter or subject")
	}
	unlimited := New(context.Background(), Options{Tokens: staticBase})
	u := unlimited.Get(cred(1))
	accept(t, u)
	if u.Limiter() != nil || u.Subject() != nil {
		t.Fatal("limits or counting where none are set")
	}
}

// A spelling is remembered only for an accepted credential, at most
// maxSpellings per credential, and goes with its entry.
func TestSpellings(t *testing.T) {
	tab := New(context.Background(), Options{Tokens: staticBase, Max: 2})
	e := tab.Get(cred(1))
	tab.Remember("a/b", e)
	if _, ok := tab.Spelled("a/b"); ok {
		t.Fatal("a spelling of a credential Hexagon never accepted was remembered")
	}
	accept(t, e)
	for i := range maxSpellings + 1 {
		tab.Remember("s"+strconv.Itoa(i), e)
	}
	if _, ok := tab.Spelled("s0"); ok {
		t.Fatal("more than maxSpellings spellings kept")
	}
	for i := 1; i <= maxSpellings; i++ {
		if got, ok := tab.Spelled("s" + strconv.Itoa(i)); !ok || got != e {
			t.Fatalf("spelling %d lost", i)
		}
	}
	// Two more accepted credentials: e, used least recently, goes, and its
	// spellings with it.
	accept(t, tab.Get(cred(2)))
	accept(t, tab.Get(cred(3)))
	tab.Get(cred(2)).Accepted()
	tab.Get(cred(3)).Accepted()
	if _, ok := tab.Spelled("s1"); ok {
		t.Fatal("a dropped credential's spelling still resolves")
	}
	if len(tab.spelled) != 0 {
		t.Fatalf("%d spellings left", len(tab.spelled))
	}
	// A spelling noted for an entry dropped meanwhile is not kept.
	tab.Remember("late", e)
	if _, ok := tab.Spelled("late"); ok {
		t.Fatal("a spelling of a dropped entry was kept")
	}
}

func TestConcurrent(t *testing.T) {
	const max = 8
	tab := New(context.Background(), Options{Tokens: staticBase, Max: max})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				c := cred((g*7 + i) % 20)
				e := tab.Get(c)
				e.Tokens.Token()
				tab.Remember(c.ID, e)
				if got, ok := tab.Spelled(c.ID); ok && got.Cred.Key() != c.Key() {
					t.Errorf("spelling %s resolves to another credential", c.ID)
					return
				}
				if tab.Len() > 2*max {
					t.Errorf("more than Max held in a tier (%d in all)", tab.Len())
					return
				}
			}
		}()
	}
	wg.Wait()
	if tab.Len() > 2*max || len(tab.spelled) > max*maxSpellings {
		t.Fatalf("Len %d, %d spellings", tab.Len(), len(tab.spelled))
	}
}

// However many credentials Hexagon never accepted are tried, none pushes
// out one it accepted: its entry, token source, limiter and spellings stay.
func TestGuessesNeverPushOutAcceptedCredentials(t *testing.T) {
	tab := New(context.Background(), Options{Tokens: staticBase, Max: 4, Limits: limit.Limits{Rate: 1}})
	good := tab.Get(cred(0))
	accept(t, good)
	if !good.Accepted() {
		t.Fatal("not accepted")
	}
	tab.Remember("good/spelling", good)
	lim := good.Limiter()
	for i := 1; i <= 1000; i++ {
		if e := tab.Get(cred(i)); e.Accepted() {
			t.Fatal("a guess counts as accepted")
		}
	}
	if e, ok := tab.Find(cred(0)); !ok || e != good || e.Limiter() != lim {
		t.Fatal("guesses pushed out an accepted credential")
	}
	if e, ok := tab.Spelled("good/spelling"); !ok || e != good {
		t.Fatal("guesses pushed out an accepted credential's spelling")
	}
	if _, ok := tab.Find(cred(1)); ok {
		t.Fatal("the trial tier holds more than Max")
	}
	if tab.Len() != 1+4 {
		t.Fatalf("Len %d, want 1 accepted and 4 on trial", tab.Len())
	}
	// A credential accepted after it left trial is promoted all the same.
	late := tab.Get(cred(2000))
	for i := 2001; i <= 2010; i++ {
		tab.Get(cred(i))
	}
	accept(t, late)
	if !late.Accepted() {
		t.Fatal("not accepted")
	}
	if e, ok := tab.Find(cred(2000)); !ok || e != late {
		t.Fatal("a credential accepted after it left trial was not kept")
	}
}

// A credential counted under Other while the counter is full is not kept
// there: once there is room it gets its own subject (and its quota).
func TestFoldedSubjectIsNotKept(t *testing.T) {
	counter := usage.New(usage.Options{Flush: time.Hour, MaxSubjects: 1})
	t.Cleanup(func() { counter.Close(context.Background()) })
	counter.Subject(usage.SubjectID{Key: "someone-else"}) // the counter is full
	tab := New(context.Background(), Options{Tokens: staticBase, Usage: counter})
	e := tab.Get(cred(1))
	accept(t, e)
	if s := e.Subject(); !s.Folded() {
		t.Fatal("want Other while the counter is full")
	}
	if e.subject.Load() != nil {
		t.Fatal("the Other handle was kept")
	}
}
