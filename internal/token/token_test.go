package token

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/testclock"
)

// clock is a settable time source shared by the fake and the code under test.
type clock = testclock.Clock

func newClock() *clock { return testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) }

var good = credential.Credential{ID: "client-1", Secret: "s3cret+/="}

func setup(t *testing.T, lifetime time.Duration) (*fakehexagon.Fake, *Endpoint, *clock) {
	t.Helper()
	clk := newClock()
	fake := fakehexagon.New(fakehexagon.Options{Lifetime: lifetime, Now: clk.Now})
	fake.AddClient(good.ID, good.Secret)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	ep := &Endpoint{URL: srv.URL + fakehexagon.TokenPath, Client: &http.Client{Timeout: 2 * time.Second}, Now: clk.Now}
	return fake, ep, clk
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestEndpointGetForm(t *testing.T) {
	fake, ep, clk := setup(t, 12*time.Hour)
	tok, err := ep.Source(context.Background(), good).Token()
	if err != nil {
		t.Fatal(err)
	}
	live, _, _ := fake.CurrentToken(good.ID)
	if tok.AccessToken != live || tok.Expiry != clk.Now().Add(12*time.Hour) {
		t.Fatalf("got %+v, fake holds %q", tok, live)
	}
	if ep.UsesPost() || fake.TokenRequests.Load() != 1 {
		t.Fatalf("documented GET form should need one request, took %d (post=%v)", fake.TokenRequests.Load(), ep.UsesPost())
	}
}

func TestEndpointFallsBackToPost(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	fake.Set(fakehexagon.Switches{TokenMethods: "POST"})
	src := ep.Source(context.Background(), good)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Expiry.Equal(clk.Now().Add(time.Hour)) {
		t.Fatalf("POST token expiry %v, want the endpoint's clock + 1h (%v), as for GET", tok.Expiry, clk.Now().Add(time.Hour))
	}
	if !ep.UsesPost() || fake.TokenRequests.Load() != 2 {
		t.Fatalf("want GET refused then POST (2 requests), got %d post=%v", fake.TokenRequests.Load(), ep.UsesPost())
	}
	if _, err := src.Token(); err != nil || fake.TokenRequests.Load() != 3 {
		t.Fatalf("the POST decision must stick: %v, %d requests", err, fake.TokenRequests.Load())
	}
	// And back, should the endpoint change its mind.
	fake.Set(fakehexagon.Switches{TokenMethods: "GET"})
	if _, err := src.Token(); err != nil || ep.UsesPost() {
		t.Fatalf("want a switch back to GET: %v post=%v", err, ep.UsesPost())
	}
}

func TestEndpointFailures(t *testing.T) {
	cases := []struct {
		name string
		cred credential.Credential
		sw   fakehexagon.Switches
		kind failure.Kind
	}{
		{"wrong secret", credential.Credential{ID: good.ID, Secret: "nope-secret-value"}, fakehexagon.Switches{}, failure.Forbidden},
		{"unknown id", credential.Credential{ID: "who", Secret: "nope-secret-value"}, fakehexagon.Switches{}, failure.Forbidden},
		{"wrong secret over POST", credential.Credential{ID: good.ID, Secret: "nope-secret-value"}, fakehexagon.Switches{TokenMethods: "POST"}, failure.Forbidden},
		{"outage", good, fakehexagon.Switches{TokenStatus: 503}, failure.UpstreamFailed},
		{"garbage", good, fakehexagon.Switches{TokenGarbage: true}, failure.UpstreamFailed},
		{"slow", good, fakehexagon.Switches{TokenDelay: 500 * time.Millisecond}, failure.UpstreamTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, ep, _ := setup(t, time.Hour)
			ep.Client.Timeout = 100 * time.Millisecond
			fake.Set(tc.sw)
			_, err := ep.Source(context.Background(), tc.cred).Token()
			fe := failure.As(err)
			if fe.Kind != tc.kind {
				t.Fatalf("kind %v, want %v (%v)", fe.Kind, tc.kind, err)
			}
			if errors.Is(err, ErrRefused) != (tc.kind == failure.Forbidden) {
				t.Fatalf("ErrRefused mismatch: %v", err)
			}
			for _, s := range []string{tc.cred.Secret, "fake hexagon"} {
				if strings.Contains(err.Error(), s) || strings.Contains(fe.Message, s) {
					t.Fatalf("error leaks %q: %v", s, err)
				}
			}
		})
	}
}

func TestCachedColdStampedeMakesOneRequest(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	fake.Set(fakehexagon.Switches{TokenDelay: 50 * time.Millisecond})
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	var wg sync.WaitGroup
	tokens := make([]string, 200)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.TokenContext(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			tokens[i] = tok.AccessToken
		}()
	}
	wg.Wait()
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("200 concurrent cold callers made %d token requests, want 1", n)
	}
	for _, v := range tokens {
		if v != tokens[0] || v == "" {
			t.Fatalf("callers got different tokens: %q vs %q", v, tokens[0])
		}
	}
}

func TestCachedRefreshesInBackgroundAfterHalfLife(t *testing.T) {
	const life = time.Hour
	fake, ep, clk := setup(t, life)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	first, err := c.Token()
	if err != nil {
		t.Fatal(err)
	}
	// Before the refresh point: served from memory, no request.
	clk.Advance(life / 2)
	if tok, _ := c.Token(); tok.AccessToken != first.AccessToken || fake.TokenRequests.Load() != 1 {
		t.Fatalf("refreshed too early: %d requests", fake.TokenRequests.Load())
	}
	// Past it: the caller gets the current token at once; one refresh runs behind.
	clk.Advance(life / 10)
	tok, err := c.Token()
	if err != nil || tok.AccessToken != first.AccessToken {
		t.Fatalf("want the current token while refreshing, got %v %v", tok, err)
	}
	waitFor(t, "the background refresh", func() bool { return fake.TokenRequests.Load() == 2 })
	// Hexagon renewed the same token for a full lifetime.
	_, expiry, _ := fake.CurrentToken(good.ID)
	if expiry != clk.Now().Add(life) {
		t.Fatalf("the refresh did not come after the half-life: fake expiry %v, now %v", expiry, clk.Now())
	}
	waitFor(t, "the renewed expiry in memory", func() bool {
		tok, _ := c.Token()
		return tok.Expiry.Equal(expiry)
	})
	// Well past the first expiry, still no request on the request path.
	clk.Advance(life/2 + time.Minute)
	if tok, err := c.Token(); err != nil || tok.AccessToken != first.AccessToken {
		t.Fatalf("token after renewal: %v %v", tok, err)
	}
	if fake.TokensIssued.Load() != 1 {
		t.Fatalf("Hexagon issued %d tokens, want 1 renewed token", fake.TokensIssued.Load())
	}
}

func TestCachedExpiredFetchesAnew(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	first, _ := c.Token()
	clk.Advance(2 * time.Hour)
	tok, err := c.Token()
	if err != nil || tok.AccessToken == first.AccessToken || fake.TokensIssued.Load() != 2 {
		t.Fatalf("want a new token after expiry, got %v %v (issued %d)", tok, err, fake.TokensIssued.Load())
	}
}

func TestCachedRemembersRefusal(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	bad := credential.Credential{ID: good.ID, Secret: "wrong-secret"}
	c := NewCached(ep.Source(context.Background(), bad), 30*time.Second, clk.Now, nil)
	for range 20 {
		if _, err := c.Token(); !errors.Is(err, ErrRefused) {
			t.Fatalf("want refusal, got %v", err)
		}
	}
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("20 requests with a refused credential made %d token requests, want 1", n)
	}
	clk.Advance(31 * time.Second)
	c.Token()
	if n := fake.TokenRequests.Load(); n != 2 {
		t.Fatalf("after the refusal TTL, want a new attempt; %d requests", n)
	}
}

func TestCachedTransientErrorsAreNotRemembered(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	fake.Set(fakehexagon.Switches{TokenStatus: 500})
	if _, err := c.Token(); failure.As(err).Kind != failure.UpstreamFailed {
		t.Fatalf("want upstream failure, got %v", err)
	}
	fake.Set(fakehexagon.Switches{})
	if _, err := c.Token(); err != nil {
		t.Fatalf("recovered endpoint must serve the next request: %v", err)
	}
}

func TestCachedInvalidate(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	first, _ := c.Token()
	fake.Revoke(good.ID)
	c.Invalidate(first)
	second, err := c.Token()
	if err != nil || second.AccessToken == first.AccessToken {
		t.Fatalf("want a fresh token after Invalidate, got %v %v", second, err)
	}
	// Invalidating a token that is no longer current changes nothing.
	c.Invalidate(first)
	if third, _ := c.Token(); third.AccessToken != second.AccessToken || fake.TokenRequests.Load() != 2 {
		t.Fatal("a stale Invalidate dropped the current token")
	}
}

func TestCachedWaitEndsWithContext(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	fake.Set(fakehexagon.Switches{TokenDelay: time.Second})
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.TokenContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the caller's deadline, got %v", err)
	}
}

func TestCachedVouchesForATokenHexagonReissues(t *testing.T) {
	fake, ep, clk := setup(t, time.Hour)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	first, _ := c.Token()
	// A 403 that is the resource's: the token is dropped and fetched anew,
	// and Hexagon hands out the same live token.
	if !c.Invalidate(first) {
		t.Fatal("the first refusal of a token must allow a retry")
	}
	again, err := c.Token()
	if err != nil || again.AccessToken != first.AccessToken || fake.TokenRequests.Load() != 2 {
		t.Fatalf("want the same live token after one more request: %v, %d requests", err, fake.TokenRequests.Load())
	}
	// It is live, so further refusals are the resource's: no drop, no retry.
	for range 10 {
		if c.Invalidate(first) || c.Invalidate(again) {
			t.Fatal("a vouched-for token must not be retried")
		}
	}
	if tok, _ := c.Token(); tok.AccessToken != first.AccessToken || fake.TokenRequests.Load() != 2 {
		t.Fatalf("a vouched-for token was dropped: %d requests", fake.TokenRequests.Load())
	}
	// After VouchTTL a refusal is checked again.
	clk.Advance(VouchTTL)
	if !c.Invalidate(first) {
		t.Fatal("after VouchTTL a refusal must allow a retry again")
	}
}

// sequence hands out a new token value on every call, and records
// whether two calls ever overlapped.
type sequence struct {
	clk      *clock
	n        atomic.Int32
	inside   atomic.Int32
	overlaps atomic.Int32
}

func (s *sequence) Token() (*oauth2.Token, error) {
	if s.inside.Add(1) > 1 {
		s.overlaps.Add(1)
	}
	defer s.inside.Add(-1)
	time.Sleep(2 * time.Millisecond)
	return &oauth2.Token{AccessToken: fmt.Sprintf("t%d", s.n.Add(1)), Expiry: s.clk.Now().Add(time.Hour)}, nil
}

func TestCachedVouchAfterARefusedRetry(t *testing.T) {
	clk := newClock()
	src := &sequence{clk: clk}
	c := NewCached(src, time.Minute, clk.Now, nil)
	t1, _ := c.Token()
	if !c.Invalidate(t1) {
		t.Fatal("want a retry")
	}
	t2, _ := c.Token()
	if t2.AccessToken == t1.AccessToken {
		t.Fatal("want a new token")
	}
	if !c.Invalidate(t1) {
		t.Fatal("a refusal of a replaced token must allow a retry with the new one")
	}
	if tok, _ := c.Token(); tok.AccessToken != t2.AccessToken {
		t.Fatal("a refusal of a replaced token dropped the current one")
	}
	c.Vouch(t2) // the retry with t2 was refused too
	if c.Invalidate(t2) {
		t.Fatal("a vouched-for token must not be retried")
	}
	if tok, _ := c.Token(); tok.AccessToken != t2.AccessToken || src.n.Load() != 2 {
		t.Fatalf("a vouched-for token was dropped: %d fetches", src.n.Load())
	}
}

func TestCachedNeverCallsItsSourceConcurrently(t *testing.T) {
	clk := newClock()
	src := &sequence{clk: clk}
	c := NewCached(src, time.Minute, clk.Now, nil)
	c.Token()
	clk.Advance(40 * time.Minute) // past the refresh point: every call may start a refresh
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Token()
			if err != nil {
				t.Error(err)
				return
			}
			if i%4 == 0 {
				c.Invalidate(tok) // cold fetches alongside the background refresh
			}
		}()
	}
	wg.Wait()
	waitFor(t, "the last fetch", func() bool { return src.inside.Load() == 0 })
	if n := src.overlaps.Load(); n != 0 {
		t.Fatalf("the source was called concurrently %d times over %d calls", n, src.n.Load())
	}
	if src.n.Load() < 2 {
		t.Fatal("the test made no concurrent-looking calls at all")
	}
}

func TestCachedState(t *testing.T) {
	_, ep, clk := setup(t, time.Hour)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	if c.State() != Unknown {
		t.Fatalf("cold: %v", c.State())
	}
	if _, err := c.Token(); err != nil || c.State() != Live {
		t.Fatalf("after a token: %v %v", c.State(), err)
	}
	clk.Advance(2 * time.Hour)
	if c.State() != Unknown {
		t.Fatalf("expired: %v", c.State())
	}
	bad := NewCached(ep.Source(context.Background(), credential.Credential{ID: good.ID, Secret: "wrong"}), time.Minute, clk.Now, nil)
	if _, err := bad.Token(); !errors.Is(err, ErrRefused) || bad.State() != Refused {
		t.Fatalf("refused: %v %v", bad.State(), err)
	}
	clk.Advance(2 * time.Minute)
	if bad.State() != Unknown {
		t.Fatalf("refusal forgotten: %v", bad.State())
	}
}

// A short lifetime is honoured: the token is never handed out after it
// died, and a credential whose tokens die within MinRefresh of being
// issued costs one token request per MinRefresh, not one per request.
func TestShortLifetimeHonouredWithoutAStorm(t *testing.T) {
	fake, ep, clk := setup(t, 5*time.Second)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	tok, err := c.TokenContext(context.Background())
	if err != nil || !tok.Expiry.Equal(clk.Now().Add(5*time.Second)) {
		t.Fatalf("a 5 s token: %v %v", tok, err)
	}
	clk.Advance(4 * time.Second)
	if got, err := c.TokenContext(context.Background()); err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("still alive after 4 s: %v %v", got, err)
	}
	clk.Advance(time.Second) // dead
	for range 10 {
		got, err := c.TokenContext(context.Background())
		if err == nil {
			t.Fatalf("a token handed out after it died: %v (expiry %v, now %v)", got.AccessToken, got.Expiry, clk.Now())
		}
		if fe := failure.As(err); fe.Kind != failure.UpstreamFailed || strings.Contains(err.Error(), tok.AccessToken) {
			t.Fatalf("want a 502 without the token, got %v", err)
		}
	}
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests within MinRefresh, want 1", n)
	}
	clk.Advance(MinRefresh)
	if got, err := c.TokenContext(context.Background()); err != nil || !got.Expiry.After(clk.Now()) {
		t.Fatalf("after MinRefresh: %v %v", got, err)
	}
	if n := fake.TokenRequests.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

// A short-lived token is not refreshed in the background before
// MinRefresh either: a 4 s token used every second starts no refresh
// while it lives, where half its life would start one at 2 s.
func TestShortLifetimeRefreshesNoSoonerThanMinRefresh(t *testing.T) {
	fake, ep, clk := setup(t, 4*time.Second)
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	for i := range 4 {
		if _, err := c.TokenContext(context.Background()); err != nil {
			t.Fatalf("after %d s: %v", i, err)
		}
		c.mu.Lock()
		refreshing := c.refreshing // set by the call that starts a refresh
		c.mu.Unlock()
		if refreshing {
			t.Fatalf("a background refresh started %d s into a 4 s token", i)
		}
		clk.Advance(time.Second)
	}
	if n := fake.TokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
}

// A token that has no life left when it arrives is never handed out.
func TestDeadOnArrivalTokenNeverHandedOut(t *testing.T) {
	clk := newClock()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"dead-token-value","token_type":"Bearer","expires_in":-5}`)
	}))
	t.Cleanup(srv.Close)
	ep := &Endpoint{URL: srv.URL, Client: &http.Client{Timeout: 2 * time.Second}, Now: clk.Now}
	c := NewCached(ep.Source(context.Background(), good), time.Minute, clk.Now, nil)
	for i := 0; i < 2; i++ { // nor kept for the next caller
		tok, err := c.TokenContext(context.Background())
		if err == nil {
			t.Fatalf("call %d: a dead token handed out: %v", i, tok)
		}
		if strings.Contains(err.Error(), "dead-token-value") {
			t.Fatalf("call %d: the error carries the token: %v", i, err)
		}
	}
}
