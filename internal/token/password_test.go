package token

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/testclock"
)

const (
	maxarUser = "ada@example.com"
	maxarPass = "pa ss/+&=:%x"
)

// maxarWorld is one Maxar fake on a test clock with one user, and a
// Password strategy pointing at it on the same clock.
type maxarWorld struct {
	fake  *maxar.Fake
	srv   *httptest.Server
	clock *testclock.Clock
	p     *Password
	cred  credential.Credential
}

func newMaxarWorld(t *testing.T) *maxarWorld {
	t.Helper()
	clock := testclock.New(time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC))
	fake := maxar.New(maxar.Options{Now: clock.Now})
	fake.AddUser(maxarUser, maxarPass)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &maxarWorld{fake: fake, srv: srv, clock: clock,
		p:    &Password{URL: srv.URL + maxar.TokenPath, ClientID: maxar.ClientID, Name: "Maxar", Client: &http.Client{Timeout: 5 * time.Second}, Now: clock.Now},
		cred: credential.Credential{Provider: "maxar", ID: maxarUser, Secret: maxarPass}}
}

// works reports whether the fake's WMTS takes tok as a bearer token.
func (w *maxarWorld) works(t *testing.T, tok *oauth2.Token) bool {
	t.Helper()
	req, _ := http.NewRequest("GET", w.srv.URL+maxar.WMTSPath+"?service=WMTS&request=GetCapabilities", nil)
	tok.SetAuthHeader(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// secretFree fails the test if err's text holds the username, the
// password, any token the fake issued, or the fake's error text.
func secretFree(t *testing.T, name string, err error, tokens ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", name)
	}
	msg := err.Error()
	for _, s := range append([]string{maxarUser, maxarPass, "Invalid user credentials", "Token is not active", "forced status"}, tokens...) {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("%s: the error %q holds %q", name, msg, s)
		}
	}
}

// The first token is a login; once it nears its end the next is a
// refresh with the refresh token the login gave; once the refresh token
// has expired the next is a login again. Every token works upstream, and
// none carries the refresh token out of the source.
func TestPasswordLogsInRefreshesAndLogsInAgain(t *testing.T) {
	w := newMaxarWorld(t)
	src := w.p.Source(context.Background(), w.cred)

	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	access, refresh := w.fake.LastTokens()
	if tok.AccessToken != access || !tok.Expiry.Equal(w.clock.Now().Add(7199*time.Second)) || tok.ExpiresIn != 7199 || tok.Type() != "Bearer" {
		t.Fatalf("login token %+v", tok)
	}
	if tok.RefreshToken != "" || tok.Extra("refresh_token") != nil || tok.Extra("refresh_expires_in") != nil {
		t.Errorf("the token handed out carries the refresh token or the answer's extras")
	}
	if form := w.fake.LastTokenForm(); form.Get("grant_type") != "password" || form.Get("client_id") != "mgp" || form.Get("username") != maxarUser || form.Get("password") != maxarPass || form.Has("client_secret") {
		t.Errorf("login form %v", form)
	}
	if !w.works(t, tok) || w.fake.Logins.Load() != 1 {
		t.Fatalf("login: works %v, logins %d", w.works(t, tok), w.fake.Logins.Load())
	}

	w.clock.Advance(7199*time.Second - 10*time.Second) // near the access token's end
	tok2, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	if form := w.fake.LastTokenForm(); form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != refresh || form.Get("client_id") != "mgp" || form.Has("password") {
		t.Errorf("refresh form %v", form)
	}
	if tok2.AccessToken == tok.AccessToken || !tok2.Expiry.Equal(w.clock.Now().Add(7199*time.Second)) || !w.works(t, tok2) {
		t.Errorf("refreshed token %+v", tok2)
	}
	if w.fake.Logins.Load() != 1 || w.fake.Refreshes.Load() != 1 {
		t.Errorf("after a refresh: logins %d refreshes %d", w.fake.Logins.Load(), w.fake.Refreshes.Load())
	}

	w.clock.Advance(43199 * time.Second) // past the session's end
	tok3, err := src.Token()
	if err != nil {
		t.Fatalf("after the refresh token expired: %v", err)
	}
	if w.fake.Logins.Load() != 2 || w.fake.Refreshes.Load() != 1 || w.fake.TokenRefusals.Load() != 1 || !w.works(t, tok3) {
		t.Errorf("after the refresh token expired: logins %d refreshes %d refusals %d", w.fake.Logins.Load(), w.fake.Refreshes.Load(), w.fake.TokenRefusals.Load())
	}
	if w.fake.LastTokenForm().Get("grant_type") != "password" {
		t.Errorf("the last request was not a login")
	}
	if _, err := src.Token(); err != nil || w.fake.Refreshes.Load() != 2 {
		t.Errorf("the new login's refresh token is not used: %v, refreshes %d", err, w.fake.Refreshes.Load())
	}
}

// Under Cached, a token refused upstream and invalidated is followed by
// a fresh one from a refresh, and by a login when the session has ended.
func TestPasswordUnderCachedAfterInvalidate(t *testing.T) {
	w := newMaxarWorld(t)
	c := NewCached(w.p.Source(context.Background(), w.cred), time.Minute, w.clock.Now, nil)
	tok, err := c.Token()
	if err != nil {
		t.Fatal(err)
	}
	w.fake.RevokeToken(tok.AccessToken)
	if w.works(t, tok) {
		t.Fatal("a revoked token works")
	}
	c.Invalidate(tok)
	tok2, err := c.Token()
	if err != nil || tok2.AccessToken == tok.AccessToken || !w.works(t, tok2) || w.fake.Refreshes.Load() != 1 {
		t.Fatalf("after Invalidate: %v, same %v, refreshes %d", err, tok2 != nil && tok2.AccessToken == tok.AccessToken, w.fake.Refreshes.Load())
	}
	w.fake.RevokeToken(tok2.AccessToken)
	w.fake.EndSessions()
	c.Invalidate(tok2)
	tok3, err := c.Token()
	if err != nil || !w.works(t, tok3) || w.fake.Logins.Load() != 2 {
		t.Fatalf("after Invalidate with the session ended: %v, logins %d", err, w.fake.Logins.Load())
	}
}

// A wrong password or client id is ErrRefused (Forbidden); an endpoint
// that fails otherwise or cannot be reached is a failure that is not a
// refusal. A failed refresh that is not a refusal keeps the refresh
// token. No error holds the username, the password, a token, or the
// endpoint's body.
func TestPasswordErrors(t *testing.T) {
	w := newMaxarWorld(t)
	ctx := context.Background()
	refused := func(name string, err error) {
		t.Helper()
		fe, _ := errors.AsType[*failure.Error](err)
		if !errors.Is(err, ErrRefused) || fe == nil || fe.Kind != failure.Forbidden || !strings.Contains(fe.Message, "Maxar") {
			t.Errorf("%s: %v, want a Forbidden ErrRefused naming Maxar", name, err)
		}
	}
	notRefused := func(name string, err error, kind failure.Kind) {
		t.Helper()
		fe, _ := errors.AsType[*failure.Error](err)
		if err == nil || errors.Is(err, ErrRefused) || fe == nil || fe.Kind != kind {
			t.Errorf("%s: %v, want a %v failure that is not a refusal", name, err, kind)
		}
	}

	_, err := w.p.Source(ctx, credential.Credential{ID: maxarUser, Secret: "wrong-password"}).Token()
	refused("wrong password", err)
	secretFree(t, "wrong password", err, "wrong-password")

	wrongClient := *w.p
	wrongClient.ClientID = "not-mgp"
	_, err = wrongClient.Source(ctx, w.cred).Token()
	refused("wrong client", err)
	secretFree(t, "wrong client", err)

	src := w.p.Source(ctx, w.cred)
	tok, err := src.Token()
	if err != nil {
		t.Fatal(err)
	}
	access, refresh := w.fake.LastTokens()
	for _, tc := range []struct {
		status int
		kind   failure.Kind
	}{{503, failure.UpstreamFailed}, {429, failure.UpstreamFailed}, {500, failure.UpstreamFailed}} {
		w.fake.Set(maxar.Switches{TokenStatus: tc.status})
		_, err = src.Token()
		notRefused("refresh answered "+http.StatusText(tc.status), err, tc.kind)
		secretFree(t, "refresh answered "+http.StatusText(tc.status), err, tok.AccessToken, access, refresh)
	}
	w.fake.Set(maxar.Switches{})
	if _, err := src.Token(); err != nil || w.fake.Refreshes.Load() != 1 || w.fake.Logins.Load() != 1 {
		t.Errorf("after the endpoint recovered: %v, refreshes %d logins %d (want the kept refresh token used)", err, w.fake.Refreshes.Load(), w.fake.Logins.Load())
	}

	w.fake.Set(maxar.Switches{TokenStatus: 503})
	_, err = w.p.Source(ctx, w.cred).Token()
	notRefused("login answered 503", err, failure.UpstreamFailed)

	notJSON := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.Write([]byte("<html>" + maxarPass + "</html>"))
	}))
	defer notJSON.Close()
	garbage := *w.p
	garbage.URL = notJSON.URL
	_, err = garbage.Source(ctx, w.cred).Token()
	notRefused("not a token", err, failure.UpstreamFailed)
	secretFree(t, "not a token", err)

	w.srv.Close()
	_, err = src.Token()
	notRefused("unreachable", err, failure.UpstreamFailed)
	secretFree(t, "unreachable", err, tok.AccessToken, access, refresh)
	if strings.Contains(err.Error(), maxar.TokenPath) {
		t.Errorf("unreachable: the error names the URL: %v", err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := w.p.Source(cancelled, w.cred).Token(); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// Concurrent callers of one source take turns: each gets a token of its
// own, every call after the first is one refresh, and no refresh token
// is redeemed twice.
func TestPasswordConcurrentCallers(t *testing.T) {
	w := newMaxarWorld(t)
	src := w.p.Source(context.Background(), w.cred)
	const n = 8
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			tok, err := src.Token()
			errs[i] = err
			if err == nil {
				toks[i] = tok.AccessToken
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil || seen[toks[i]] {
			t.Errorf("call %d: %v, repeated %v", i, errs[i], seen[toks[i]])
		}
		seen[toks[i]] = true
	}
	if w.fake.Logins.Load() != 1 || w.fake.Refreshes.Load() != n-1 || w.fake.TokenRefusals.Load() != 0 {
		t.Errorf("logins %d refreshes %d refusals %d", w.fake.Logins.Load(), w.fake.Refreshes.Load(), w.fake.TokenRefusals.Load())
	}
}
