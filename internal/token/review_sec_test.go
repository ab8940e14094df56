package token

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/provider"
)

// elsewhere is a host that must never hear a provider's secret: it
// records every request that reaches it, body and Authorization
// included.
type elsewhere struct {
	mu   sync.Mutex
	seen []string
}

func (e *elsewhere) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	e.mu.Lock()
	e.seen = append(e.seen, r.Method+" "+r.URL.String()+" auth="+r.Header.Get("Authorization")+" body="+string(b))
	e.mu.Unlock()
	http.Error(w, "nothing here", http.StatusNotFound)
}

func (e *elsewhere) requests() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.seen...)
}

// A token endpoint that answers a redirect (307 or 308, which keep the
// method and body; a load balancer's, a moved realm's, or an endpoint an
// attacker controls the answers of) must not make the proxy send a
// password or a client secret to the host the Location names: a grant's
// secrets go to the profile's token URL and nowhere else. Every grant's
// redirect is a failure of the token endpoint, and the other host hears
// nothing.
func TestReviewSecGrantsDoNotFollowRedirects(t *testing.T) {
	other := &elsewhere{}
	otherSrv := httptest.NewServer(other)
	t.Cleanup(otherSrv.Close)
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, otherSrv.URL+"/collect", status)
		}))
		t.Cleanup(redirector.Close)
		client := &http.Client{Timeout: 5 * time.Second}
		for _, c := range []struct {
			name string
			p    *provider.Profile
			cred credential.Credential
		}{
			{"maxar password grant", &provider.Profile{Name: "maxar", Title: "Maxar",
				Hosts:         []provider.Host{{Role: "account", Base: redirector.URL}},
				TokenEndpoint: &provider.Service{Role: "account", Path: "/token"}, Grant: provider.GrantPassword, ClientID: "mgp"},
				credential.Credential{Provider: "maxar", ID: "ada@example.com", Secret: "MAXAR-PASSWORD-d41d8cd9"}},
			{"client credentials in the body", &provider.Profile{Name: "acme", Title: "Acme",
				Hosts:         []provider.Host{{Role: "token", Base: redirector.URL}},
				TokenEndpoint: &provider.Service{Role: "token", Path: "/token"}, Grant: provider.GrantClient, InBody: true},
				credential.Credential{Provider: "acme", ID: "acme-client", Secret: "ACME-SECRET-8f00b204", Client: true}},
			{"client credentials as Basic", &provider.Profile{Name: "acme", Title: "Acme",
				Hosts:         []provider.Host{{Role: "token", Base: redirector.URL}},
				TokenEndpoint: &provider.Service{Role: "token", Path: "/token"}, Grant: provider.GrantClient},
				credential.Credential{Provider: "acme", ID: "acme-client", Secret: "ACME-SECRET-8f00b204", Client: true}},
			{"vexcel login", &provider.Profile{Name: "vexcel", Title: "Vexcel",
				Hosts:         []provider.Host{{Role: "api", Base: redirector.URL}},
				TokenEndpoint: &provider.Service{Role: "api", Path: "/v2/auth/login"}, Grant: provider.GrantLogin},
				credential.Credential{Provider: "vexcel", ID: "ada@example.com", Secret: "VEXCEL-PASSWORD-e4da3b7f"}},
		} {
			before := len(other.requests())
			_, err := Grant(context.Background(), c.p, c.cred, client, nil, nil).Token()
			if err == nil {
				t.Errorf("%s, %d: a redirect gave a token", c.name, status)
			} else if strings.Contains(err.Error(), c.cred.Secret) || strings.Contains(err.Error(), otherSrv.URL) {
				t.Errorf("%s, %d: the error %q names the secret or the other host", c.name, status, err)
			}
			for _, r := range other.requests()[before:] {
				t.Errorf("%s: the token endpoint's %d sent the proxy on to another host: %s", c.name, status, r)
			}
		}
	}
}

// A token endpoint's answer names its token's type, and the proxy marks
// a static key by a type of its own (provider.KeyTokenType): a grant's
// token must never pass for a static key, whatever the endpoint says.
// Else an endpoint answering "token_type": "static-key" chooses where its
// token goes (Maxar's key header instead of Bearer; nowhere at all for an
// operator's OAuth2 profile, whose Place is empty), and a refusal of the
// token is taken as final, the token kept until it ends, or its set given
// up as a dead key.
func TestReviewSecAGrantsTokenIsNeverAStaticKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token": "GRANT-TOKEN-1679091c", "token_type": "`+provider.KeyTokenType+`", "expires_in": 3600, "refresh_token": "R"}`)
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 5 * time.Second}
	maxarP, err := provider.Builtin("maxar", map[string]string{"account": srv.URL, "api": "https://api.example"})
	if err != nil {
		t.Fatal(err)
	}
	maxarP.TokenEndpoint = &provider.Service{Role: "account", Path: "/token"}
	acme := &provider.Profile{Name: "acme", Title: "Acme", Hosts: []provider.Host{{Role: "token", Base: srv.URL}},
		TokenEndpoint: &provider.Service{Role: "token", Path: "/token"}, Grant: provider.GrantClient,
		TokenPlace: []provider.Placement{{In: provider.InHeader, Name: "Authorization", Template: "Bearer {}"}}}
	for _, c := range []struct {
		p    *provider.Profile
		cred credential.Credential
	}{
		{maxarP, credential.Credential{Provider: "maxar", ID: "ada@example.com", Secret: "pw"}},
		{acme, credential.Credential{Provider: "acme", ID: "id", Secret: "secret", Client: true}},
	} {
		tok, err := Grant(context.Background(), c.p, c.cred, client, nil, nil).Token()
		if err != nil {
			t.Fatalf("%s: %v", c.p.Name, err)
		}
		if tok.TokenType == provider.KeyTokenType {
			t.Errorf("%s: the endpoint made its token a static key", c.p.Name)
		}
		u, _ := url.Parse("https://api.example/x")
		h := http.Header{}
		c.p.Apply(u, h, tok)
		if got := h.Get("Authorization"); got != "Bearer GRANT-TOKEN-1679091c" {
			t.Errorf("%s: the token went as Authorization %q, headers %v, URL %s", c.p.Name, got, h, u)
		}
	}
}
