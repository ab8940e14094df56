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
	l := &Login{URL: srv.URL + vexcel.LoginPath, Name: "Vexcel", Client: &http.Client{Timeout: 5 * time.Second}}

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
