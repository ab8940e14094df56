package token

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
)

// Vexcel's login: the token, its zone-less end read as UTC, a refusal as
// ErrRefused; no error carries the password (which travels in the URL).
func TestLogin(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	fake := vexcel.New(vexcel.Options{Now: func() time.Time { return now }, Zone: time.FixedZone("written without a zone", 0)})
	fake.AddUser(vexcel.User{Username: "u@x", Password: "pa ss/+&="})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	l := &Login{URL: srv.URL + vexcel.LoginPath, Name: "Vexcel", Client: &http.Client{Timeout: 5 * time.Second}, Now: func() time.Time { return now }}

	tok, err := l.Source(context.Background(), credential.Credential{Provider: "vexcel", ID: "u@x", Secret: "pa ss/+&="}).Token()
	if err != nil || tok.AccessToken != fake.LastToken() || !tok.Expiry.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("%+v, %v", tok, err)
	}
	_, err = l.Source(context.Background(), credential.Credential{Provider: "vexcel", ID: "u@x", Secret: "wrong-secret"}).Token()
	if !errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("refused: %v", err)
	}
	srv.Close()
	_, err = l.Source(context.Background(), credential.Credential{Provider: "vexcel", ID: "u@x", Secret: "pa ss/+&="}).Token()
	if err == nil || errors.Is(err, ErrRefused) || strings.Contains(err.Error(), url.QueryEscape("pa ss/+&=")) || strings.Contains(err.Error(), "password=") {
		t.Fatalf("unreachable: %v", err)
	}
}

// A login's token ends on the Login's clock, as a grant's does: at most
// MaxLifetime after it, however far off the login's date is, and at once
// when the date has passed (the clocks disagree).
func TestLoginTokenEndsOnItsClock(t *testing.T) {
	loginNow := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		lifetime time.Duration // the login's
		skew     time.Duration // the proxy's clock ahead of the login's
		want     time.Duration // the token's life on the proxy's clock
	}{
		{24 * time.Hour, 0, 24 * time.Hour},
		{24 * time.Hour, 2 * time.Hour, 22 * time.Hour},
		{72 * time.Hour, 0, MaxLifetime},
		{time.Hour, 3 * time.Hour, 0},
	} {
		fake := vexcel.New(vexcel.Options{Lifetime: c.lifetime, Now: func() time.Time { return loginNow }})
		fake.AddUser(vexcel.User{Username: "u", Password: "p"})
		srv := httptest.NewServer(fake)
		proxyNow := loginNow.Add(c.skew)
		l := &Login{URL: srv.URL + vexcel.LoginPath, Name: "Vexcel", Client: &http.Client{Timeout: 5 * time.Second}, Now: func() time.Time { return proxyNow }}
		tok, err := l.Source(context.Background(), credential.Credential{Provider: "vexcel", ID: "u", Secret: "p"}).Token()
		srv.Close()
		if err != nil || !tok.Expiry.Equal(proxyNow.Add(c.want)) || tok.ExpiresIn != int64(c.want/time.Second) || tok.TokenType != "Bearer" {
			t.Errorf("lifetime %v, skew %v: %+v, %v; want %v to live", c.lifetime, c.skew, tok, err, c.want)
		}
	}
}

// A login's statuses mean what a grant's do: 429 is rate limiting, not
// an outage, and a 5xx is unavailable; neither is a refusal.
func TestLoginStatusesMapAsAGrantsDo(t *testing.T) {
	fake := vexcel.New(vexcel.Options{})
	fake.AddUser(vexcel.User{Username: "u", Password: "p"})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	l := &Login{URL: srv.URL + vexcel.LoginPath, Name: "Vexcel", Client: &http.Client{Timeout: 5 * time.Second}}
	for status, says := range map[int]string{
		http.StatusTooManyRequests:    "Vexcel's login is rate limiting",
		http.StatusServiceUnavailable: "Vexcel's login is unavailable",
	} {
		fake.Set(vexcel.Switches{LoginStatus: status})
		_, err := l.Source(context.Background(), credential.Credential{Provider: "vexcel", ID: "u", Secret: "p"}).Token()
		if err == nil || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), says) || statusOf(err) != status {
			t.Errorf("%d: %v, want %q", status, err, says)
		}
	}
}
