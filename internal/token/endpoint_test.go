package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/testlog"
)

// tokenServer is a token endpoint whose answer a test writes by hand, for
// what the fake Hexagon never says (odd expires_in values, huge bodies).
// Like Hexagon it takes the documented GET form; post switches it to the
// standard POST form (GET then gets 405). It checks the credential.
type tokenServer struct {
	post   bool
	status int    // non-zero: answer this status with body
	body   string // the answer; "%s" is replaced by the access token

	mu      sync.Mutex
	methods []string
	query   url.Values // of the last request
	form    string     // raw body of the last request
	accept  string
}

const handTok = "hand-written-token-value"

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.methods = append(s.methods, r.Method)
	s.query, s.form, s.accept = r.URL.Query(), string(b), r.Header.Get("Accept")
	s.mu.Unlock()
	want := http.MethodGet
	if s.post {
		want = http.MethodPost
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, `{"error":"invalid_request"}`)
		return
	}
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		params, _ = url.ParseQuery(string(b))
	}
	w.Header().Set("Content-Type", "application/json")
	if params.Get("grant_type") != "client_credentials" || params.Get("client_id") != good.ID || params.Get("client_secret") != good.Secret {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
	}
	fmt.Fprint(w, strings.ReplaceAll(s.body, "%s", handTok))
}

func handEndpoint(t *testing.T, s *tokenServer, path string) (*Endpoint, *clock, *testlog.Buffer) {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	clk := newClock()
	logs := &testlog.Buffer{}
	ep := &Endpoint{
		URL:    srv.URL + path,
		Client: &http.Client{Timeout: 2 * time.Second},
		Now:    clk.Now,
		Log:    slog.New(slog.NewTextHandler(logs, nil)),
	}
	return ep, clk, logs
}

// TestEndpointLifetimeBothForms is issue 10 item 8: the POST form took
// every token to live one hour whatever Hexagon said.
func TestEndpointLifetimeBothForms(t *testing.T) {
	for _, life := range []time.Duration{10 * time.Minute, 12 * time.Hour} {
		for _, methods := range []string{"GET", "POST"} {
			t.Run(fmt.Sprint(life, " ", methods), func(t *testing.T) {
				fake, ep, clk := setup(t, life)
				fake.Set(fakehexagon.Switches{TokenMethods: methods})
				tok, err := ep.Source(context.Background(), good).Token()
				if err != nil {
					t.Fatal(err)
				}
				if ep.UsesPost() != (methods == "POST") {
					t.Fatalf("UsesPost %v for an endpoint taking %s", ep.UsesPost(), methods)
				}
				if want := clk.Now().Add(life); !tok.Expiry.Equal(want) {
					t.Fatalf("expiry %v, want %v (the endpoint's clock + %v)", tok.Expiry, want, life)
				}
				if tok.ExpiresIn != int64(life/time.Second) {
					t.Fatalf("ExpiresIn %d, want %d", tok.ExpiresIn, int64(life/time.Second))
				}
				if live, _, _ := fake.CurrentToken(good.ID); tok.AccessToken != live || tok.TokenType != "Bearer" {
					t.Fatalf("got %q %q, fake holds %q", tok.AccessToken, tok.TokenType, live)
				}
				if tok.Extra("access_token") != nil {
					t.Fatal("the token keeps the raw response; want only its fields")
				}
			})
		}
	}
}

// TestEndpointExpiresIn is issue 10 item 9: absurd lifetimes are logged,
// in both forms; a long one is cut, a short one honoured (never
// lengthened, so that no token outlives what Hexagon said), a negative one
// taken as none left (want -1).
func TestEndpointExpiresIn(t *testing.T) {
	cases := []struct {
		name    string
		field   string        // the expires_in member, or "" for none
		want    time.Duration // 0: the response is refused as not a token
		warning bool
	}{
		{"ten minutes", `,"expires_in":600`, 10 * time.Minute, false},
		{"twelve hours", `,"expires_in":43200`, 12 * time.Hour, false},
		{"a string", `,"expires_in":"600"`, 10 * time.Minute, false},
		{"missing", ``, DefaultLifetime, false},
		{"null", `,"expires_in":null`, DefaultLifetime, false},
		{"zero", `,"expires_in":0`, DefaultLifetime, true},
		{"zero string", `,"expires_in":"0"`, DefaultLifetime, true},
		{"negative", `,"expires_in":-3600`, -1, true},
		{"a second", `,"expires_in":1`, time.Second, true},
		{"ten billion seconds", `,"expires_in":10000000000`, MaxLifetime, true},
		{"a week", `,"expires_in":604800`, MaxLifetime, true},
		{"the bottom edge", `,"expires_in":60`, ShortLifetime, false},
		{"the top edge", `,"expires_in":86400`, MaxLifetime, false},
		// x/oauth2 takes only whole numbers of seconds; anything else is
		// not a token, never a lifetime of nanoseconds or centuries.
		{"1e10", `,"expires_in":1e10`, 0, false},
		{"1e-9", `,"expires_in":1e-9`, 0, false},
		{"a fraction", `,"expires_in":600.5`, 0, false},
		{"a word", `,"expires_in":"soon"`, 0, false},
	}
	for _, tc := range cases {
		for _, post := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s post=%v", tc.name, post), func(t *testing.T) {
				s := &tokenServer{post: post, body: `{"access_token":"%s","token_type":"Bearer"` + tc.field + `}`}
				ep, clk, logs := handEndpoint(t, s, "/token")
				ep.usePost.Store(post)
				tok, err := ep.Source(context.Background(), good).Token()
				if tc.want == 0 {
					fe := failure.As(err)
					if err == nil || fe.Kind != failure.UpstreamFailed || errors.Is(err, ErrRefused) {
						t.Fatalf("want an upstream failure, got %v %v", tok, err)
					}
					if strings.Contains(err.Error(), handTok) || strings.Contains(err.Error(), "expires_in") {
						t.Fatalf("the error quotes the response: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				lifetime := max(tc.want, 0) // -1: none left
				if want := clk.Now().Add(lifetime); !tok.Expiry.Equal(want) || tok.ExpiresIn != int64(lifetime/time.Second) {
					t.Fatalf("expiry %v (%ds), want %v", tok.Expiry, tok.ExpiresIn, want)
				}
				if got := strings.Contains(logs.String(), "level=WARN"); got != tc.warning {
					t.Fatalf("warning logged: %v, want %v; log: %s", got, tc.warning, logs)
				}
				for _, secret := range []string{good.Secret, handTok, url.QueryEscape(good.Secret)} {
					if strings.Contains(logs.String(), secret) {
						t.Fatalf("log holds %q: %s", secret, logs)
					}
				}
			})
		}
	}
}

func TestEndpointGetFormRequest(t *testing.T) {
	s := &tokenServer{body: `{"access_token":"%s","token_type":"Bearer","expires_in":600}`}
	ep, _, _ := handEndpoint(t, s, "/token?tenant=a%2Fb")
	if _, err := ep.Source(context.Background(), good).Token(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.methods) != 1 || s.methods[0] != http.MethodGet || s.form != "" {
		t.Fatalf("want one GET without a body, got %v body %q", s.methods, s.form)
	}
	want := url.Values{"tenant": {"a/b"}, "grant_type": {"client_credentials"}, "client_id": {good.ID}, "client_secret": {good.Secret}}
	if fmt.Sprint(s.query) != fmt.Sprint(want) {
		t.Fatalf("query %v, want %v (the token URL's own query kept)", s.query, want)
	}
	if s.accept != "application/json" {
		t.Fatalf("Accept %q", s.accept)
	}
}

func TestEndpointPostFormRequest(t *testing.T) {
	s := &tokenServer{post: true, body: `{"access_token":"%s","expires_in":600}`}
	ep, _, _ := handEndpoint(t, s, "/token")
	if _, err := ep.Source(context.Background(), good).Token(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fmt.Sprint(s.methods) != "[GET POST]" || len(s.query) != 0 {
		t.Fatalf("want GET refused then POST with nothing in the URL, got %v query %v", s.methods, s.query)
	}
	if form, _ := url.ParseQuery(s.form); form.Get("client_secret") != good.Secret {
		t.Fatalf("POST body %q", s.form)
	}
}

func TestEndpointNotImplementedSwitchesToPost(t *testing.T) {
	var mu sync.Mutex
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		methods = append(methods, r.Method)
		mu.Unlock()
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusNotImplemented)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"t","expires_in":600}`)
	}))
	defer srv.Close()
	ep := &Endpoint{URL: srv.URL, Client: srv.Client()}
	if _, err := ep.Source(context.Background(), good).Token(); err != nil || !ep.UsesPost() {
		t.Fatalf("want a switch to POST on 501: %v post=%v", err, ep.UsesPost())
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(methods) != "[GET POST]" {
		t.Fatalf("methods %v", methods)
	}
}

// TestEndpointBodyCap checks that x/oauth2 stops reading at 1 MB: a token
// padded past it is cut short and refused, not read whole.
func TestEndpointBodyCap(t *testing.T) {
	for _, pad := range []int{1<<20 - 200, 2 << 20} {
		s := &tokenServer{body: `{"access_token":"%s","expires_in":600` + strings.Repeat(" ", pad) + `}`}
		ep, _, _ := handEndpoint(t, s, "/token")
		_, err := ep.Source(context.Background(), good).Token()
		if fits := pad < 1<<20-100; fits != (err == nil) {
			t.Fatalf("padding %d: err %v", pad, err)
		}
		if err != nil && failure.As(err).Kind != failure.UpstreamFailed {
			t.Fatalf("padding %d: %v", pad, err)
		}
	}
}

// TestEndpointErrorsHoldNoSecret drives every failure path with a
// response that echoes the secret, and checks neither the error nor its
// message holds it.
func TestEndpointErrorsHoldNoSecret(t *testing.T) {
	echo := func(status int, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"invalid_client %s","error_description":"%s","url":%q}`, good.Secret, good.Secret, r.URL.String())
		}
	}
	cases := []struct {
		name    string
		handler http.Handler
		kind    failure.Kind
		refused bool
	}{
		{"400 echoing", echo(400, "application/json"), failure.Forbidden, true},
		{"401 echoing", echo(401, "application/json"), failure.Forbidden, true},
		{"403 echoing", echo(403, "application/json"), failure.Forbidden, true},
		{"429", echo(429, "application/json"), failure.UpstreamFailed, false},
		{"500", echo(500, "application/json"), failure.UpstreamFailed, false},
		{"502 html", echo(502, "text/html"), failure.UpstreamFailed, false},
		{"200 with an error", echo(200, "application/json"), failure.UpstreamFailed, false},
		{"200 form-encoded garbage", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "token=%zz"+url.QueryEscape(good.Secret))
		}), failure.UpstreamFailed, false},
		{"200 json garbage", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"t","expires_in":%q}`, good.Secret)
		}), failure.UpstreamFailed, false},
		{"redirect loop", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}), failure.UpstreamFailed, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			ep := &Endpoint{URL: srv.URL + "/token", Client: &http.Client{Timeout: 2 * time.Second}}
			_, err := ep.Source(context.Background(), good).Token()
			fe := failure.As(err)
			if err == nil || fe.Kind != tc.kind || errors.Is(err, ErrRefused) != tc.refused {
				t.Fatalf("got %v (kind %v), want kind %v refused %v", err, fe.Kind, tc.kind, tc.refused)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestEndpointUnreachableHoldsNoSecret(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	for _, post := range []bool{false, true} {
		ep := &Endpoint{URL: u + "/token", Client: &http.Client{Timeout: time.Second}}
		ep.usePost.Store(post)
		_, err := ep.Source(context.Background(), good).Token()
		if fe := failure.As(err); fe.Kind != failure.UpstreamFailed || fe.Message != "Hexagon's token endpoint is unreachable" {
			t.Fatalf("post=%v: %v", post, err)
		}
		assertNoSecret(t, err)
	}
}

func TestEndpointCanceled(t *testing.T) {
	fake, ep, _ := setup(t, time.Hour)
	fake.Set(fakehexagon.Switches{TokenDelay: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := ep.Source(ctx, good).Token()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	assertNoSecret(t, err)
}

// assertNoSecret fails if err, its message, or anything it wraps holds the
// secret in any encoding.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{good.Secret, url.QueryEscape(good.Secret), "client_secret"} {
			if strings.Contains(e.Error(), s) || strings.Contains(failure.As(e).Message, s) {
				t.Fatalf("error leaks %q: %v", s, err)
			}
		}
		var re interface{ Unwrap() []error }
		if errors.As(e, &re) {
			t.Fatalf("error joins others, check them too: %v", e)
		}
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		t.Fatalf("a *url.Error is passed on: %v", err)
	}
}

// TestEndpointGetFormRedirect follows a 307 as Hexagon's GET would: to the
// Location as given, without the credentials.
func TestEndpointGetFormRedirect(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.String()+" "+string(b))
		mu.Unlock()
		if r.URL.Path == "/token" {
			http.Redirect(w, r, "/elsewhere?x=1", http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"t","expires_in":600}`)
	}))
	defer srv.Close()
	ep := &Endpoint{URL: srv.URL + "/token", Client: srv.Client()}
	if _, err := ep.Source(context.Background(), good).Token(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[1] != "GET /elsewhere?x=1 " || !strings.HasPrefix(seen[0], "GET /token?") {
		t.Fatalf("requests %q", seen)
	}
}

// Health hears each token request once, by its final answer: a switch to
// POST is one request that worked; a refusal of the credentials says so,
// with the status; a request whose context ended is not heard.
func TestEndpointTellsHealth(t *testing.T) {
	s := &tokenServer{post: true, body: `{"access_token":"%s","token_type":"Bearer","expires_in":3600}`}
	ep, _, _ := handEndpoint(t, s, "/token")
	health := &hexhealth.Recorder{}
	ep.Health = health
	if _, err := ep.Source(context.Background(), good).Token(); err != nil {
		t.Fatal(err)
	}
	if st := health.State(); st.OK == nil || !*st.OK || st.Endpoint != "token" || st.LastFailure != nil {
		t.Fatalf("after a token by POST, on the second try: %+v", st)
	}
	if _, err := ep.Source(context.Background(), credential.Credential{ID: good.ID, Secret: "wrong"}).Token(); err == nil {
		t.Fatal("a wrong secret got a token")
	}
	if st := health.State(); *st.OK || st.Failure != "refused" || st.Status != 401 {
		t.Fatalf("after a refusal: %+v", st)
	}
	if _, err := ep.Source(context.Background(), good).Token(); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ep.Source(gone, good).Token(); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if st := health.State(); !*st.OK {
		t.Fatalf("a request whose context ended was heard: %+v", st)
	}
}
