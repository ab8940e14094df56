package token

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/testclock"
)

// An id and a secret with characters that form-urlencoding must escape
// (':' would split Basic's pair if sent as it is).
const (
	ccID     = "client:one é"
	ccSecret = "p@ss:w/rd+&= é%"
)

// oauthServer is a standard OAuth2 token endpoint for the
// client-credentials grant, as RFC 6749 describes it: a POSTed form
// (§4.4.2) whose client authenticates (§2.3.1) either with HTTP Basic,
// the id and secret each form-urlencoded, or with client_id and
// client_secret in the body — one method only (§2.3) — and errors as
// JSON (§5.2), 401 with WWW-Authenticate when Basic failed.
type oauthServer struct {
	style      string // the one client authentication it accepts: StyleBasic or StyleBody
	id, secret string
	scope      string // the scope it expects ("" none)
	expiresIn  any    // the answer's expires_in; nil leaves it out

	mu     sync.Mutex
	status int    // non-zero: answer this status with errorBody
	body   string // the body of a forced status
	issued string // the last access token issued
}

func (s *oauthServer) fail(w http.ResponseWriter, status int, code string, basic bool) {
	if status == http.StatusUnauthorized && basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": "refused: the request held " + s.secret})
}

func (s *oauthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	status, body := s.status, s.body
	s.mu.Unlock()
	if status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method != http.MethodPost || ct != "application/x-www-form-urlencoded" || r.URL.RawQuery != "" {
		s.fail(w, http.StatusBadRequest, "invalid_request", false)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		s.fail(w, http.StatusBadRequest, "unsupported_grant_type", false)
		return
	}
	form := r.PostForm
	user, pass, basic := r.BasicAuth()
	inBody := form.Has("client_id") || form.Has("client_secret")
	var id, secret string
	switch {
	case basic && inBody:
		s.fail(w, http.StatusBadRequest, "invalid_request", false) // two methods
		return
	case basic && s.style == StyleBasic:
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			s.fail(w, http.StatusUnauthorized, "invalid_client", true)
			return
		}
	case inBody && s.style == StyleBody:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		s.fail(w, http.StatusUnauthorized, "invalid_client", basic || s.style == StyleBasic)
		return
	}
	if id != s.id || secret != s.secret {
		if basic {
			s.fail(w, http.StatusUnauthorized, "invalid_client", true)
		} else {
			s.fail(w, http.StatusBadRequest, "invalid_client", false)
		}
		return
	}
	if form.Get("scope") != s.scope {
		s.fail(w, http.StatusBadRequest, "invalid_scope", basic)
		return
	}
	ans := map[string]any{"access_token": rand.Text(), "token_type": "Bearer"}
	if s.expiresIn != nil {
		ans["expires_in"] = s.expiresIn
	}
	s.mu.Lock()
	s.issued = ans["access_token"].(string)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(ans)
}

func (s *oauthServer) force(status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *oauthServer) lastIssued() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

func ccWorld(t *testing.T, s *oauthServer, style string, scopes ...string) (*ClientCredentials, *httptest.Server, *testclock.Clock) {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	clock := testclock.New(time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC))
	return &ClientCredentials{URL: srv.URL + "/oauth2/v1/token", Style: style, Scopes: scopes, Name: "EagleView",
		Client: &http.Client{Timeout: 5 * time.Second}, Now: clock.Now}, srv, clock
}

var ccCred = credential.Credential{Provider: "eagleview", ID: ccID, Secret: ccSecret}

// Both styles reach a server that takes only that style, with an id and
// secret that need escaping, and the scopes; "" is Basic. The token's end
// is on the strategy's clock.
func TestClientCredentialsStyles(t *testing.T) {
	for _, tc := range []struct{ style, server string }{{StyleBasic, StyleBasic}, {StyleBody, StyleBody}, {"", StyleBasic}} {
		s := &oauthServer{style: tc.server, id: ccID, secret: ccSecret, scope: "imagery tiles", expiresIn: 3600}
		c, _, clock := ccWorld(t, s, tc.style, "imagery", "tiles")
		tok, err := c.Source(context.Background(), ccCred).Token()
		if err != nil {
			t.Errorf("style %q: %v", tc.style, err)
			continue
		}
		if tok.AccessToken != s.lastIssued() || tok.Type() != "Bearer" || !tok.Expiry.Equal(clock.Now().Add(time.Hour)) || tok.ExpiresIn != 3600 || tok.Extra("expires_in") != nil {
			t.Errorf("style %q: token %+v", tc.style, tok)
		}
	}
	// The other style is refused by a server that takes one only.
	for style, server := range map[string]string{StyleBody: StyleBasic, StyleBasic: StyleBody} {
		c, _, _ := ccWorld(t, &oauthServer{style: server, id: ccID, secret: ccSecret}, style)
		if _, err := c.Source(context.Background(), ccCred).Token(); !errors.Is(err, ErrRefused) {
			t.Errorf("style %s at a %s server: %v, want ErrRefused", style, server, err)
		}
	}
}

// expires_in missing is DefaultLifetime, longer than a day is cut to
// MaxLifetime, and a string holding seconds is read.
func TestClientCredentialsLifetimes(t *testing.T) {
	for _, tc := range []struct {
		expiresIn any
		want      time.Duration
	}{{nil, DefaultLifetime}, {7 * 24 * 3600, MaxLifetime}, {"120", 2 * time.Minute}} {
		c, _, clock := ccWorld(t, &oauthServer{style: StyleBasic, id: ccID, secret: ccSecret, expiresIn: tc.expiresIn}, StyleBasic)
		tok, err := c.Source(context.Background(), ccCred).Token()
		if err != nil || !tok.Expiry.Equal(clock.Now().Add(tc.want)) {
			t.Errorf("expires_in %v: %v, expiry %v, want now + %v", tc.expiresIn, err, tok, tc.want)
		}
	}
}

// A refusal (400 invalid_client, 401, 403) is a Forbidden ErrRefused; 429,
// 5xx, an answer that is not a token and an unreachable endpoint are
// failures that are not refusals; an unknown style is Internal. No error
// holds the secret, the endpoint's body, a token, or the URL.
func TestClientCredentialsErrors(t *testing.T) {
	ctx := context.Background()
	for _, style := range []string{StyleBasic, StyleBody} {
		s := &oauthServer{style: style, id: ccID, secret: ccSecret, expiresIn: 3600}
		c, srv, _ := ccWorld(t, s, style)
		check := func(name string, err error, kind failure.Kind, refused bool) {
			t.Helper()
			name = style + ": " + name
			fe, _ := errors.AsType[*failure.Error](err)
			if err == nil || fe == nil || fe.Kind != kind || errors.Is(err, ErrRefused) != refused {
				t.Errorf("%s: %v, want kind %v, refused %v", name, err, kind, refused)
				return
			}
			if refused && !strings.Contains(fe.Message, "EagleView") {
				t.Errorf("%s: the message does not name the provider: %q", name, fe.Message)
			}
			for _, secret := range []string{ccSecret, url.QueryEscape(ccSecret), "wrong-secret", "refused: the request held", "tok-in-body", srv.URL} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: the error %q holds %q", name, err, secret)
				}
			}
		}
		_, err := c.Source(ctx, credential.Credential{ID: ccID, Secret: "wrong-secret"}).Token()
		check("wrong secret", err, failure.Forbidden, true)
		_, err = c.Source(ctx, credential.Credential{ID: "someone else", Secret: ccSecret}).Token()
		check("wrong id", err, failure.Forbidden, true)

		for _, tc := range []struct {
			status  int
			body    string
			kind    failure.Kind
			refused bool
		}{
			{400, `{"error":"invalid_client","error_description":"the request held wrong-secret"}`, failure.Forbidden, true},
			{403, `{"error":"access_denied"}`, failure.Forbidden, true},
			{429, `{"error":"rate_limited","error_description":"tok-in-body"}`, failure.UpstreamFailed, false},
			{500, `<html>wrong-secret</html>`, failure.UpstreamFailed, false},
			{503, ``, failure.UpstreamFailed, false},
			{200, `<html>tok-in-body</html>`, failure.UpstreamFailed, false},
			{200, `{"token_type":"Bearer"}`, failure.UpstreamFailed, false},
			{200, `{"error":"invalid_client","access_token":"tok-in-body"}`, failure.UpstreamFailed, false},
		} {
			s.force(tc.status, tc.body)
			_, err := c.Source(ctx, ccCred).Token()
			check(fmt.Sprintf("%d %s", tc.status, tc.body), err, tc.kind, tc.refused)
			if tc.status == 200 && !errors.Is(err, errNotAToken) {
				t.Errorf("%s: 200 %s: %v, want an answer that is not a token", style, tc.body, err)
			}
		}
		s.force(0, "")

		bad := *c
		bad.Style = "Basic"
		_, err = bad.Source(ctx, ccCred).Token()
		check("unknown style", err, failure.Internal, false)

		srv.Close()
		_, err = c.Source(ctx, ccCred).Token()
		check("unreachable", err, failure.UpstreamFailed, false)
	}
}

// An operator's oauth2 profile, as PROVIDERS_FILE writes it, reaches its
// token endpoint through Grant in the style and with the scopes the
// profile names: "auth": "body" in the form, no "auth" as Basic.
func TestGrantFollowsAnOAuth2ProfilesAuthAndScopes(t *testing.T) {
	for _, style := range []string{StyleBody, StyleBasic} {
		s := &oauthServer{style: style, id: ccID, secret: ccSecret, scope: "imagery tiles", expiresIn: 3600}
		srv := httptest.NewServer(s)
		t.Cleanup(srv.Close)
		auth := ""
		if style == StyleBody {
			auth = `"auth": "body",`
		}
		profiles, err := provider.ParseProfiles([]byte(fmt.Sprintf(`{"providers": [{"name": "eagleview", "credential": "oauth2", %s
			"token_url": %q, "scopes": ["imagery", "tiles"],
			"hosts": {"api": {"url": "https://imagery.example.com", "paths": ["/wmts"]}}, "wmts": "api:/wmts"}]}`, auth, srv.URL+"/oauth2/v1/token")))
		if err != nil {
			t.Fatal(err)
		}
		cred := credential.Credential{Provider: "eagleview", ID: ccID, Secret: ccSecret, Client: true}
		tok, err := Grant(context.Background(), &profiles[0], cred, &http.Client{Timeout: 5 * time.Second}, nil, nil).Token()
		if err != nil || tok.AccessToken != s.lastIssued() {
			t.Errorf("a %s profile: %v, %v", style, tok, err)
		}
	}
}
