package token_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/token"
)

// A provider's set is sent as the form it is: a key as itself (its
// token typed as a key, so the profile places it as one), a login only
// through its grant. A login whose profile has no grant for it fails:
// its password is never sent as if it were a key.
func TestStackSendsEachSetAsItsForm(t *testing.T) {
	var logins atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logins.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"token":"vx-token","date-expiration":"2099-01-01T00:00:00"}`))
	}))
	defer up.Close()
	cat, err := provider.NewCatalog(map[string]map[string]string{"vexcel": {"api": up.URL}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	grants := func(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
		return token.Grant(ctx, cat.Get(cred.Provider), cred, up.Client(), nil, nil)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		provider func(context.Context, credential.Credential) oauth2.TokenSource
		cred     credential.Credential
		want     string // the token, or "" for an internal error
		key      bool
	}{
		{"a key", grants, credential.Credential{Provider: "planet", Secret: "PLAK"}, "PLAK", true},
		{"a login", grants, credential.Credential{Provider: "vexcel", ID: "u", Secret: "pw"}, "vx-token", false},
		{"a login of a profile without a grant", grants, credential.Credential{Provider: "planet", ID: "u", Secret: "pw"}, "", false},
		{"a login of an unknown profile", grants, credential.Credential{Provider: "acme", ID: "u", Secret: "pw"}, "", false},
		{"a login without grants", nil, credential.Credential{Provider: "vexcel", ID: "u", Secret: "pw"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := token.NewStack(token.StackOptions{Endpoint: &token.Endpoint{URL: up.URL + "/hexagon"}, Provider: tc.provider})
			tok, err := stack(ctx, tc.cred).TokenContext(ctx)
			if tc.want == "" {
				var fe *failure.Error
				if err == nil || !errors.As(err, &fe) || fe.Kind != failure.Internal {
					t.Fatalf("token %v, error %v: want an internal error, never the password as a key", tok, err)
				}
				return
			}
			if err != nil || tok.AccessToken != tc.want || (tok.TokenType == provider.KeyTokenType) != tc.key {
				t.Fatalf("token %+v, %v: want %q, a key: %v", tok, err, tc.want, tc.key)
			}
		})
	}
	if n := logins.Load(); n != 1 {
		t.Errorf("%d logins, want 1 (the Vexcel set's)", n)
	}
}

// Grant sets a login's token's end on the clock it is given, as it does
// a grant's (token.Login's Now).
func TestGrantLoginEndsOnTheGivenClock(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"token":"vx-token","date-expiration":"2031-01-01T06:00:00"}`))
	}))
	defer up.Close()
	cat, err := provider.NewCatalog(map[string]map[string]string{"vexcel": {"api": up.URL}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	src := token.Grant(context.Background(), cat.Get("vexcel"), credential.Credential{Provider: "vexcel", ID: "u", Secret: "pw"}, up.Client(), func() time.Time { return now }, nil)
	if tok, err := src.Token(); err != nil || !tok.Expiry.Equal(now.Add(6*time.Hour)) {
		t.Fatalf("%+v, %v: want an end 6 hours after the given clock's now", tok, err)
	}
}
