package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/testclock"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/tokenstore"
)

// tokens hands out "t1", then "t2" after an Invalidate; it answers that
// a retry cannot help once it has vouched for a token, or if good is set.
type tokens struct {
	current     string
	good        bool
	invalidated atomic.Int32
	vouched     []string
}

func (s *tokens) TokenContext(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: s.current}, nil
}

func (s *tokens) Invalidate(t *oauth2.Token) bool {
	s.invalidated.Add(1)
	if s.good || slices.Contains(s.vouched, t.AccessToken) {
		return false
	}
	if t.AccessToken == s.current {
		s.current = "t2"
	}
	return true
}

func (s *tokens) Vouch(t *oauth2.Token) { s.vouched = append(s.vouched, t.AccessToken) }

// upstream accepts only token "t2", refuses any token on /refused, and
// counts requests.
func upstream(t *testing.T, refuse int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Query().Get("access_token") != "t2" || r.URL.Path == "/refused" {
			w.WriteHeader(refuse)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDoRetriesOnceWithAFreshToken(t *testing.T) {
	for _, refuse := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		srv, n := upstream(t, refuse)
		toks := &tokens{current: "t1"}
		c := &Call{Tokens: toks, URL: srv.URL + "/x"}
		body, err := Fetch(context.Background(), http.DefaultTransport, c, nil, 100)
		if err != nil || string(body) != "ok" {
			t.Fatalf("%d: %q %v", refuse, body, err)
		}
		if n.Load() != 2 || toks.invalidated.Load() != 1 || !c.Retried || c.Status != 200 || c.Token.AccessToken != "t2" {
			t.Fatalf("%d: %d requests, %d invalidations, call %+v", refuse, n.Load(), toks.invalidated.Load(), c)
		}
	}
}

func TestDoGivesUpAfterOneRetry(t *testing.T) {
	srv, n := upstream(t, http.StatusUnauthorized)
	toks := &tokens{current: "t1"} // every URL below is refused, whatever the token
	c := &Call{Tokens: toks, URL: srv.URL + "/refused"}
	_, err := Fetch(context.Background(), http.DefaultTransport, c, nil, 100)
	if failure.As(err).Kind != failure.Forbidden || n.Load() != 2 {
		t.Fatalf("want Forbidden after exactly 2 requests, got %v after %d", err, n.Load())
	}
	// The fresh token was refused too: the refusal is the resource's.
	if !slices.Equal(toks.vouched, []string{"t2"}) {
		t.Fatalf("want the fresh token vouched for, got %q", toks.vouched)
	}
	// So the next refusal of it costs no retry.
	c = &Call{Tokens: toks, URL: c.URL}
	if _, err := Fetch(context.Background(), http.DefaultTransport, c, nil, 100); failure.As(err).Kind != failure.Forbidden || n.Load() != 3 || c.Retried {
		t.Fatalf("want Forbidden after one more request and no retry, got %v after %d", err, n.Load())
	}
}

func TestDoPassesARefusalOnWhenARetryCannotHelp(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "outside your licence")
	}))
	defer srv.Close()
	toks := &tokens{current: "t1", good: true}
	c := &Call{Tokens: toks, URL: srv.URL + "/x"}
	resp, err := c.Do(context.Background(), http.DefaultTransport, http.MethodGet, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || string(body) != "outside your licence" || c.Retried || c.Status != http.StatusForbidden || toks.invalidated.Load() != 1 {
		t.Fatalf("want Hexagon's 403 as it is, no retry; got %d %q, call %+v", resp.StatusCode, body, c)
	}
}

func TestFetchCapsTheBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 101))
	}))
	defer srv.Close()
	c := &Call{Tokens: &tokens{current: "t2"}, URL: srv.URL}
	_, err := Fetch(context.Background(), http.DefaultTransport, c, nil, 100)
	if fe := failure.As(err); fe.Kind != failure.UpstreamFailed || !strings.Contains(fe.Message, "larger than 100 bytes") {
		t.Fatalf("want an upstream failure for a body over the cap, got %v", err)
	}
}

// countingStore counts writes to the store beneath.
type countingStore struct {
	tokenstore.Store
	writes atomic.Int32
}

func (s *countingStore) Create(ctx context.Context, k string, e tokenstore.Entity) (tokenstore.ETag, error) {
	s.writes.Add(1)
	return s.Store.Create(ctx, k, e)
}

func (s *countingStore) Update(ctx context.Context, k string, e tokenstore.Entity, m tokenstore.ETag) (tokenstore.ETag, error) {
	s.writes.Add(1)
	return s.Store.Update(ctx, k, e, m)
}

// layered is one credential's real token layers (memory over the shared
// store over the token endpoint) in front of a fake Hexagon that answers
// 403 for one tile outside the licence, whatever the token.
type layered struct {
	fake   *fakehexagon.Fake
	srv    *httptest.Server
	store  *countingStore
	tokens *token.Cached
	clk    *testclock.Clock
}

const forbiddenTile = "/1.0.0/HxGN_Imagery/default/WebMercator/5/1/2.jpg"

func newLayered(t *testing.T) *layered {
	l := &layered{clk: testclock.New(time.Now())}
	l.fake = fakehexagon.New(fakehexagon.Options{Lifetime: time.Hour, Now: l.clk.Now})
	cred := credential.Credential{ID: "client-1", Secret: "s3cret"}
	l.fake.AddClient(cred.ID, cred.Secret)
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.RawQuery, forbiddenTile+"&") {
			live, _, _ := l.fake.CurrentToken(cred.ID)
			if r.URL.Query().Get("access_token") == live {
				http.Error(w, "outside the licence", http.StatusForbidden)
				return
			}
		}
		l.fake.ServeHTTP(w, r)
	}))
	t.Cleanup(l.srv.Close)
	ep := &token.Endpoint{URL: l.srv.URL + fakehexagon.TokenPath, Client: &http.Client{Timeout: 5 * time.Second}, Now: l.clk.Now}
	l.store = &countingStore{Store: tokenstore.NewMemoryWith(tokenstore.MemoryOptions{Now: l.clk.Now})}
	ctx := context.Background()
	sh := token.NewShared(ctx, cred, ep.Source(ctx, cred), l.store, token.SharedOptions{Now: l.clk.Now})
	l.tokens = token.NewCached(sh, time.Minute, l.clk.Now, nil)
	return l
}

// stream sends one streamed tile request as the proxy does, with Call.Do.
func (l *layered) stream(t *testing.T, tile string) int {
	c := &Call{Tokens: l.tokens, URL: l.srv.URL + fakehexagon.WMTSPath + "?" + tile}
	resp, err := c.Do(context.Background(), http.DefaultTransport, http.MethodGet, nil)
	if err != nil {
		t.Error(err)
		return 0
	}
	Drain(resp.Body)
	return resp.StatusCode
}

func TestDoResourceRefusalCausesNoRetryStorm(t *testing.T) {
	l := newLayered(t)
	const licensed = "/1.0.0/HxGN_Imagery/default/WebMercator/5/1/1.jpg"
	if s := l.stream(t, licensed); s != http.StatusOK {
		t.Fatalf("licensed tile: %d", s)
	}
	warm, writes := l.fake.TokenRequests.Load(), l.store.writes.Load()

	for range 20 {
		if s := l.stream(t, forbiddenTile); s != http.StatusForbidden {
			t.Fatalf("tile outside the licence: %d, want Hexagon's 403", s)
		}
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s := l.stream(t, forbiddenTile); s != http.StatusForbidden {
				t.Errorf("concurrent tile outside the licence: %d", s)
			}
		}()
	}
	wg.Wait()
	extra := l.fake.TokenRequests.Load() - warm
	if extra != 1 {
		t.Fatalf("40 refusals of one tile made %d token requests, want exactly 1 (the check that the token is good)", extra)
	}
	// The row was rewritten once (the lease and the token), not cleared per refusal.
	if w := l.store.writes.Load() - writes; w > 2 {
		t.Fatalf("40 refusals of one tile made %d store writes, want at most 2", w)
	}
	if s := l.stream(t, licensed); s != http.StatusOK || l.fake.TokenRequests.Load()-warm != 1 {
		t.Fatalf("licensed tile afterwards: %d, %d token requests", s, l.fake.TokenRequests.Load()-warm)
	}
	t.Logf("40 streamed refusals of one tile (20 sequential, 20 concurrent): %d token request, %d store writes", extra, l.store.writes.Load()-writes)

	// Once the token is no longer vouched for, a refusal is checked again, once.
	l.clk.Advance(token.VouchTTL + time.Second)
	for range 5 {
		l.stream(t, forbiddenTile)
	}
	if n := l.fake.TokenRequests.Load() - warm; n != 2 {
		t.Fatalf("after VouchTTL, 5 refusals made %d token requests in all, want 2", n)
	}
}

func TestDoRecoversFromRevocationsThroughTheLayers(t *testing.T) {
	l := newLayered(t)
	const licensed = "/1.0.0/HxGN_Imagery/default/WebMercator/5/1/1.jpg"
	l.stream(t, licensed)
	for i := range 3 { // each revocation: one refused attempt, one new token, one retry
		before, refused := l.fake.TokenRequests.Load(), l.fake.Unauthorized.Load()
		l.fake.Revoke("client-1")
		if s := l.stream(t, licensed); s != http.StatusOK {
			t.Fatalf("revocation %d: %d", i, s)
		}
		if l.fake.TokenRequests.Load()-before != 1 || l.fake.Unauthorized.Load()-refused != 1 {
			t.Fatalf("revocation %d: %d token requests, %d refusals; want 1 each", i, l.fake.TokenRequests.Load()-before, l.fake.Unauthorized.Load()-refused)
		}
	}
}

func TestWithTokenIsTheOnePlaceATokenEntersAURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://up/streaming/wmts?/1.0.0/L/s/M/1/2/3.jpg", "https://up/streaming/wmts?/1.0.0/L/s/M/1/2/3.jpg&access_token=a%2Bb%2F%3D"},
		{"https://up/streaming/wms?SERVICE=WMS", "https://up/streaming/wms?SERVICE=WMS&access_token=a%2Bb%2F%3D"},
		{"https://up/x", "https://up/x?access_token=a%2Bb%2F%3D"},
	} {
		if got := WithToken(tc.in, "a+b/="); got != tc.want {
			t.Errorf("WithToken(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Health hears the final answer of a call: a refusal mended by the retry
// is a success, a refusal of the resource is Hexagon answering, a 5xx is
// a failure; a call whose caller left is not heard at all.
func TestDoTellsHealthTheFinalAnswer(t *testing.T) {
	srv, _ := upstream(t, http.StatusUnauthorized)
	var health hexhealth.Recorder
	do := func(ctx context.Context, url string) {
		t.Helper()
		c := &Call{Tokens: &tokens{current: "t1"}, URL: url, Health: &health}
		if resp, err := c.Do(ctx, http.DefaultTransport, http.MethodGet, nil); err == nil {
			resp.Body.Close()
		}
	}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer failing.Close()

	do(context.Background(), failing.URL)
	if s := health.State(); s.OK == nil || *s.OK || s.Failure != "status" || s.Status != 502 || s.Endpoint != "data" {
		t.Fatalf("after a 502: %+v", s)
	}
	do(context.Background(), srv.URL+"/x") // 401, then 200 with a fresh token
	if s := health.State(); !*s.OK || s.Status != 0 {
		t.Fatalf("after a retried refusal: %+v", s)
	}
	do(context.Background(), failing.URL)
	do(context.Background(), srv.URL+"/refused") // refused twice: the resource's
	if s := health.State(); !*s.OK {
		t.Fatalf("after a refusal of the resource: %+v", s)
	}
	do(context.Background(), failing.URL)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	do(gone, srv.URL+"/x")
	if s := health.State(); *s.OK || s.Status != 502 {
		t.Fatalf("a call whose caller left was heard: %+v", s)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	do(context.Background(), closed.URL)
	if s := health.State(); *s.OK || s.Failure != "unreachable" {
		t.Fatalf("after no connection: %+v", s)
	}
}

// A refusal with a good token names the upstream, and what was refused
// by its kind: Hexagon's token, a provider's credential, or a static key
// that nothing proved good.
func TestStatusErrorNamesTheUpstreamAndWhatItRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	place := func(u *url.URL, h http.Header, tok *oauth2.Token) { h.Set("Authorization", "Bearer "+tok.AccessToken) }
	for _, c := range []struct {
		name, upstream, tokenType, want string
	}{
		{"Hexagon", "", "", "Hexagon refused this request with a valid token:"},
		{"a provider's grant", "Acme Imagery", "Bearer", "Acme Imagery refused this request with a valid credential:"},
		{"a provider's static key", "Acme Imagery", provider.KeyTokenType, "Acme Imagery refused this request: the provider's key behind this key may be revoked"},
	} {
		call := &Call{Tokens: &tokens{current: "t1", good: true}, URL: srv.URL + "/x", Name: c.upstream}
		if c.upstream != "" {
			call.Place = place
		}
		resp, err := call.Do(context.Background(), http.DefaultTransport, http.MethodGet, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		call.Token.TokenType = c.tokenType // as the token source would have set it
		if fe := call.StatusError(resp); fe.Kind != failure.Forbidden || !strings.HasPrefix(fe.Message, c.want) {
			t.Errorf("%s: %v %q; want Forbidden, %q…", c.name, fe.Kind, fe.Message, c.want)
		}
	}
}
