package hexagon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/failure"
)

// tokens hands out "t1", then "t2" after an Invalidate.
type tokens struct {
	current     string
	invalidated atomic.Int32
}

func (s *tokens) TokenContext(context.Context) (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: s.current}, nil
}

func (s *tokens) Invalidate(t *oauth2.Token) {
	s.invalidated.Add(1)
	if t.AccessToken == s.current {
		s.current = "t2"
	}
}

// upstream accepts only token "t2" and counts requests.
func upstream(t *testing.T, refuse int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.URL.Query().Get("access_token") != "t2" {
			w.WriteHeader(refuse)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestTransportRetriesOnceWithAFreshToken(t *testing.T) {
	for _, refuse := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		srv, n := upstream(t, refuse)
		toks := &tokens{current: "t1"}
		c := &Call{Tokens: toks, URL: func(tok string) string { return srv.URL + "/x?access_token=" + tok }}
		body, err := Fetch(context.Background(), &http.Client{Transport: &Transport{}}, c, 100)
		if err != nil || string(body) != "ok" {
			t.Fatalf("%d: %q %v", refuse, body, err)
		}
		if n.Load() != 2 || toks.invalidated.Load() != 1 || !c.Retried || c.Status != 200 || c.Token.AccessToken != "t2" {
			t.Fatalf("%d: %d requests, %d invalidations, call %+v", refuse, n.Load(), toks.invalidated.Load(), c)
		}
	}
}

func TestTransportGivesUpAfterOneRetry(t *testing.T) {
	srv, n := upstream(t, http.StatusUnauthorized)
	toks := &tokens{current: "t1"} // every URL below is refused, whatever the token
	c := &Call{Tokens: toks, URL: func(tok string) string { return srv.URL + "/x?access_token=" + tok + "-bad" }}
	_, err := Fetch(context.Background(), &http.Client{Transport: &Transport{}}, c, 100)
	if failure.As(err).Kind != failure.Forbidden || n.Load() != 2 {
		t.Fatalf("want Forbidden after exactly 2 requests, got %v after %d", err, n.Load())
	}
}

func TestTransportRefusesUnpreparedRequests(t *testing.T) {
	client := &http.Client{Transport: &Transport{}}
	if _, err := client.Get("http://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "prepared") {
		t.Fatalf("a request without a Call must not leave: %v", err)
	}
}

func TestFetchCapsTheBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 101))
	}))
	defer srv.Close()
	c := &Call{Tokens: &tokens{current: "t2"}, URL: func(string) string { return srv.URL }}
	_, err := Fetch(context.Background(), &http.Client{Transport: &Transport{}}, c, 100)
	if fe := failure.As(err); fe.Kind != failure.UpstreamFailed || !strings.Contains(fe.Message, "larger than 100 bytes") {
		t.Fatalf("want an upstream failure for a body over the cap, got %v", err)
	}
}
