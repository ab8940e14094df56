package keyadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/storetest"
)

// newMaxar starts Maxar's fake on the CLI's clock and points the
// harness's PROVIDER_MAXAR_{API,ACCOUNT}_URL at it (one server serves
// both hosts).
func newMaxar(t *testing.T) (*maxar.Fake, string) {
	t.Helper()
	fake := maxar.New(maxar.Options{Now: func() time.Time { return now }})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, srv.URL
}

func (h *harness) useMaxar(url string) {
	h.env["PROVIDER_MAXAR_API_URL"], h.env["PROVIDER_MAXAR_ACCOUNT_URL"] = url, url
}

// storedSets returns the key's stored sets as their JSON members.
func storedSets(t *testing.T, h *harness, key string) []map[string]any {
	t.Helper()
	raw, _ := h.raw(t, key)["sets"].([]any)
	out := make([]map[string]any, len(raw))
	for i, s := range raw {
		out[i], _ = s.(map[string]any)
	}
	return out
}

// prompter is a no-echo prompt that answers secrets in order and keeps
// the prompts it showed.
type prompter struct {
	answers []string
	prompts []string
}

func (p *prompter) read(prompt string) (string, error) {
	p.prompts = append(p.prompts, prompt)
	if len(p.prompts) > len(p.answers) {
		return "", errors.New("test: no more secrets")
	}
	return p.answers[len(p.prompts)-1], nil
}

// A Maxar key is checked with Maxar as the proxy will send it (a
// capabilities request with the maxar-api-key header) before it is
// saved; its end, given, is stored with it; a refused key saves nothing.
func TestNewMaxarKey(t *testing.T) {
	fake, url := newMaxar(t)
	good := "mxr-good-" + storetest.Key(t)
	fake.AddKey(good, 0)
	bothStores(t, func(t *testing.T, h *harness) {
		h.useMaxar(url)
		asked := fake.CapabilitiesRequests.Load()
		key, r := h.newKey(t, good+"\n", "--provider", "maxar", "--key-expires", "180d", "--org", "Forestry", "--contact", "gis@forestry.example")
		if fake.CapabilitiesRequests.Load() != asked+1 || fake.Last().Header.Get(maxar.KeyHeader) != good || fake.Last().Query.Has(maxar.KeyParam) {
			t.Fatalf("the key was not checked by a capabilities request with the %s header: %d requests, %+v", maxar.KeyHeader, fake.CapabilitiesRequests.Load()-asked, fake.Last().Query)
		}
		if !strings.Contains(r.errOut, "Checking 1 key with Maxar") || !strings.Contains(r.errOut, "accepted") {
			t.Errorf("stderr: %s", r.errOut)
		}
		if strings.Contains(r.errOut, "warning") {
			t.Errorf("a key whose end is given, 180 days away, is warned of:\n%s", r.errOut)
		}
		assertNoLeak(t, r, good)
		sets := storedSets(t, h, key)
		want := now.Add(180 * 24 * time.Hour).Format(time.RFC3339)
		if len(sets) != 1 || sets[0]["provider"] != "maxar" || sets[0]["key"] != good || sets[0]["key_expires"] != want || len(sets[0]) != 3 {
			t.Fatalf("stored %v, want the key ending %s", sets, want)
		}

		// A provider's tiles always go through the proxy: set refuses to
		// let the key redirect, or to name Hexagon's service family, and
		// the key stays as it was.
		for _, flag := range [][]string{{"--redirect"}, {"--endpoint", "orders"}} {
			r := h.run(t, "", append([]string{"set", key}, flag...)...)
			if r.err == nil || !strings.Contains(r.err.Error(), "redirect and endpoint are for Hexagon's sets, not maxar's") {
				t.Errorf("set %v on a Maxar key: %v", flag, r.err)
			}
		}
		if rec, err := h.assertStore(t).Get(context.Background(), key); err != nil || rec.Redirect || rec.Endpoint != keys.Streaming {
			t.Errorf("after the refused sets: %+v, %v", rec, err)
		}

		// Refused: nothing saved, the set named by number.
		opens := *h.opens
		bad := "mxr-bad-" + storetest.Key(t)
		r = h.run(t, good+"\n"+bad+"\n", "new", "--provider", "maxar", "--sets", "2", "--org", "X", "--contact", "x@example.org")
		if r.err == nil || !strings.Contains(r.err.Error(), "Maxar refused the key of set 2 (HTTP 401)") || !strings.Contains(r.err.Error(), "Nothing was saved") || *h.opens != opens {
			t.Fatalf("a refused key: %v (store opened %d times)", r.err, *h.opens-opens)
		}
		if !strings.Contains(r.errOut, "Checking 2 keys with Maxar") || !strings.HasSuffix(r.errOut, "… failed.\n") || strings.Contains(r.errOut, "accepted") {
			t.Fatalf("a refused key's check is not told as failed:\n%s", r.errOut)
		}
		assertNoLeak(t, r, good, bad)
		// Revoked by Maxar: refused as well (403 when Maxar says so).
		fake.Set(maxar.Switches{RefusalStatus: http.StatusForbidden})
		revoked := "mxr-revoked-" + storetest.Key(t)
		fake.AddKey(revoked, 0)
		fake.RevokeKey(revoked)
		if r := h.run(t, revoked+"\n", "new", "--provider", "maxar", "--org", "X", "--contact", "x@example.org"); r.err == nil ||
			!strings.Contains(r.err.Error(), "Maxar refused the key of set 1 (HTTP 403)") || *h.opens != opens {
			t.Fatalf("a revoked key: %v", r.err)
		}
		fake.Set(maxar.Switches{})
	})
}

// A Maxar login: the username is read as visible text, the password at
// the no-echo prompt, and both are checked by one password grant before
// anything is saved.
func TestNewMaxarLogin(t *testing.T) {
	fake, url := newMaxar(t)
	const user, password = "analyst@county.example", "Mx-password-1"
	fake.AddUser(user, password)
	bothStores(t, func(t *testing.T, h *harness) {
		h.useMaxar(url)
		logins := fake.Logins.Load()
		p := &prompter{answers: []string{password}}
		r := h.runPrompted(t, user+"\n", p.read, "new", "--provider", "maxar", "--login", "--org", "County", "--contact", "gis@county.example")
		if r.err != nil {
			t.Fatalf("new --login: %v\n%s", r.err, r.all())
		}
		if len(p.prompts) != 1 || p.prompts[0] != "The Maxar password of set 1: " {
			t.Errorf("no-echo prompts %q, want the password's alone", p.prompts)
		}
		if fake.Logins.Load() != logins+1 || fake.LastTokenForm().Get("grant_type") != "password" || fake.LastTokenForm().Get("username") != user {
			t.Fatalf("not checked by one password grant: %d logins, form %v", fake.Logins.Load()-logins, fake.LastTokenForm().Get("grant_type"))
		}
		if !strings.Contains(r.errOut, "Checking 1 login with Maxar") || strings.Contains(r.errOut, "warning") {
			t.Errorf("stderr: %s", r.errOut)
		}
		assertNoLeak(t, r, password)
		key := keyPattern.FindString(r.out)
		sets := storedSets(t, h, key)
		if len(sets) != 1 || sets[0]["provider"] != "maxar" || sets[0]["username"] != user || sets[0]["password"] != password || sets[0]["key"] != nil {
			t.Fatalf("stored %v", sets)
		}

		// A wrong password: refused by Maxar, nothing saved, named by set.
		opens := *h.opens
		p = &prompter{answers: []string{password, "Mx-wrong-password"}}
		r = h.runPrompted(t, user+"\n"+user+"\n", p.read, "new", "--provider", "maxar", "--login", "--sets", "2", "--org", "X", "--contact", "x@example.org")
		if r.err == nil || !strings.Contains(r.err.Error(), "Maxar refused the username and password of set 2") || *h.opens != opens {
			t.Fatalf("a wrong password: %v", r.err)
		}
		assertNoLeak(t, r, password, "Mx-wrong-password")
	})
}

// The flags that do not fit a provider are refused before anything is
// read, with a message that says why; an unknown provider is answered
// with the catalog's names, the operator's among them.
func TestNewRefusesFlagsThatDoNotFit(t *testing.T) {
	h := newFileHarness(t)
	_, url := newMaxar(t)
	h.useMaxar(url)
	h.env["PROVIDERS_FILE"] = operatorProfiles(t, "http://127.0.0.1:1")
	base := []string{"new", "--org", "X", "--contact", "x@example.org"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--provider", "planet", "--login"}, "--login: Planet Basemaps takes keys, not a username and password"},
		{[]string{"--provider", "nearmap", "--login"}, "--login: Nearmap takes keys"},
		{[]string{"--key-expires", "180d"}, "--login and --key-expires are for other providers' sets"},
		{[]string{"--provider", "hexagon", "--login"}, "--login and --key-expires are for other providers' sets"},
		{[]string{"--provider", "maxar", "--login", "--key-expires", "180d"}, "--key-expires is the end of a provider's key: Maxar's sets here are not keys"},
		{[]string{"--provider", "vexcel", "--key-expires", "180d"}, "--key-expires is the end of a provider's key: Vexcel's sets here are not keys"},
		{[]string{"--provider", "acme", "--key-expires", "180d"}, "--key-expires is the end of a provider's key: Acme Imagery's sets here are not keys"},
		{[]string{"--provider", "maxar", "--key-expires", "someday"}, `--key-expires: "someday" is not a time`},
		{[]string{"--provider", "eagle"}, "--provider is one of hexagon, acme, keyco, maxar, nearmap, planet, vexcel"},
	} {
		opens := *h.opens
		p := &prompter{}
		r := h.runPrompted(t, "", p.read, append(base, c.args...)...)
		if !errors.Is(r.err, ErrUsage) || !strings.Contains(r.err.Error(), c.want) {
			t.Errorf("%v: %v, want a usage error with %q", c.args, r.err, c.want)
		}
		if len(p.prompts) > 0 || *h.opens != opens {
			t.Errorf("%v: read a secret or opened the store", c.args)
		}
	}
}

// operatorProfiles writes a PROVIDERS_FILE with two operator's profiles
// on base: "acme", OAuth2 with its token endpoint at /token, and "keyco",
// a static key in the X-Api-Key header.
func operatorProfiles(t *testing.T, base string) string {
	t.Helper()
	doc := fmt.Sprintf(`{"providers": [
	  {"name": "acme", "title": "Acme Imagery", "credential": "oauth2", "token_url": %[1]q,
	   "hosts": {"api": {"url": %[2]q, "paths": ["/wmts"]}}, "wmts": "api:/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"},
	  {"name": "keyco", "title": "KeyCo", "credential": "static",
	   "hosts": {"api": {"url": %[2]q, "paths": ["/wmts"]}}, "wmts": "api:/wmts", "place": [{"header": "X-Api-Key"}]},
	  {"name": "yearco", "title": "YearCo", "credential": "static", "key_lifetime_days": 365,
	   "hosts": {"api": {"url": %[2]q, "paths": ["/wmts"]}}, "wmts": "api:/wmts", "place": [{"header": "X-Api-Key"}]}
	]}`, base+"/token", base)
	path := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// operatorUpstream is the operator's provider of operatorProfiles: an
// OAuth2 token endpoint that takes one client (HTTP Basic, as an oauth2
// profile sends it by default), and a WMTS that takes one static key.
type operatorUpstream struct {
	clientID, clientSecret, key string
	tokens, capabilities        atomic.Int64
}

func (u *operatorUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/token":
		u.tokens.Add(1)
		id, secret, ok := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.PostFormValue("grant_type") != "client_credentials" || !ok || id != u.clientID || secret != u.clientSecret {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "acme-token", "token_type": "Bearer", "expires_in": 3600})
	case "/wmts":
		u.capabilities.Add(1)
		if r.Header.Get("X-Api-Key") != u.key {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, `<Capabilities xmlns="http://www.opengis.net/wmts/1.0"/>`)
	default:
		http.NotFound(w, r)
	}
}

// An operator's profiles from PROVIDERS_FILE: an OAuth2 client (id
// visible, secret at the prompt) checked by a client-credentials grant,
// and a static key checked by a capabilities request; a refused one
// saves nothing.
func TestNewKeyForAnOperatorsProfile(t *testing.T) {
	up := &operatorUpstream{clientID: "acme-client", clientSecret: "acme-secret-" + storetest.Key(t), key: "keyco-" + storetest.Key(t)}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	file := operatorProfiles(t, srv.URL)
	bothStores(t, func(t *testing.T, h *harness) {
		h.env["PROVIDERS_FILE"] = file
		tokens := up.tokens.Load()
		p := &prompter{answers: []string{up.clientSecret}}
		r := h.runPrompted(t, "acme-client\n", p.read, "new", "--provider", "acme", "--org", "Roads", "--contact", "gis@roads.example")
		if r.err != nil {
			t.Fatalf("new --provider acme: %v\n%s", r.err, r.all())
		}
		if up.tokens.Load() != tokens+1 || !strings.Contains(r.errOut, "Checking 1 client with Acme Imagery") {
			t.Fatalf("the client was not checked by one token request:\n%s", r.errOut)
		}
		if len(p.prompts) != 1 || p.prompts[0] != "The Acme Imagery client secret of set 1: " {
			t.Errorf("prompts %q", p.prompts)
		}
		assertNoLeak(t, r, up.clientSecret, "acme-client")
		sets := storedSets(t, h, keyPattern.FindString(r.out))
		if len(sets) != 1 || sets[0]["provider"] != "acme" || sets[0]["client_id"] != "acme-client" || sets[0]["client_secret"] != up.clientSecret {
			t.Fatalf("stored %v", sets)
		}
		opens := *h.opens
		p = &prompter{answers: []string{"acme-wrong-secret"}}
		r = h.runPrompted(t, "acme-client\n", p.read, "new", "--provider", "acme", "--org", "X", "--contact", "x@example.org")
		if r.err == nil || !strings.Contains(r.err.Error(), "Acme Imagery refused the client id and secret of set 1") || *h.opens != opens {
			t.Fatalf("a wrong client secret: %v", r.err)
		}
		assertNoLeak(t, r, "acme-wrong-secret")

		// replace-credential --provider acme --client-id: the new secret
		// at a prompt that names the provider, checked by a grant first.
		p = &prompter{answers: []string{"acme-wrong-secret"}}
		r = h.runPrompted(t, "", p.read, "replace-credential", "--provider", "acme", "--client-id", "acme-client")
		if r.err == nil || !strings.Contains(r.err.Error(), "Acme Imagery refused the client id and secret of set 1") ||
			len(p.prompts) != 1 || p.prompts[0] != "The new Acme Imagery client secret: " {
			t.Fatalf("replace with a refused secret: %v, prompts %q", r.err, p.prompts)
		}
		assertNoLeak(t, r, "acme-wrong-secret")
		tokens = up.tokens.Load()
		r = h.runPrompted(t, "", (&prompter{answers: []string{up.clientSecret}}).read, "replace-credential", "--provider", "acme", "--client-id", "acme-client")
		if r.err != nil || up.tokens.Load() != tokens+1 || !strings.Contains(r.out, "Already using the new credential: 1 key.") {
			t.Fatalf("replace with the same secret: %v, %d token requests\n%s", r.err, up.tokens.Load()-tokens, r.all())
		}
		assertNoLeak(t, r, up.clientSecret, "acme-client")

		// A static key: one capabilities request with the key placed.
		caps := up.capabilities.Load()
		key, r := h.newKey(t, up.key+"\n", "--provider", "keyco", "--org", "Roads", "--contact", "gis@roads.example")
		if up.capabilities.Load() != caps+1 || !strings.Contains(r.errOut, "Checking 1 key with KeyCo") {
			t.Fatalf("the key was not checked:\n%s", r.errOut)
		}
		if strings.Contains(r.errOut, "warning") {
			t.Errorf("a key of a provider whose keys' lives are unknown is warned of:\n%s", r.errOut)
		}
		assertNoLeak(t, r, up.key)
		if sets := storedSets(t, h, key); len(sets) != 1 || sets[0]["provider"] != "keyco" || sets[0]["key"] != up.key {
			t.Fatalf("stored %v", sets)
		}
		// An operator's profile that gives its keys' longest life gets
		// Maxar's warnings.
		if _, r := h.newKey(t, up.key+"\n", "--provider", "yearco", "--org", "Roads", "--contact", "gis@roads.example"); !strings.Contains(r.errOut, "YearCo keys live at most 365 days") {
			t.Errorf("a key of a profile with key_lifetime_days and no --key-expires is not warned of:\n%s", r.errOut)
		}
		opens = *h.opens
		if r := h.run(t, "keyco-wrong\n", "new", "--provider", "keyco", "--org", "X", "--contact", "x@example.org"); r.err == nil ||
			!strings.Contains(r.err.Error(), "KeyCo refused the key of set 1") || *h.opens != opens {
			t.Fatalf("a wrong key: %v", r.err)
		}
	})
}

// replace-credential --provider maxar: the old key is typed, then the
// new one; every key that uses the old one gets the new one with its
// end; nothing else changes, and a refused or unknown key changes
// nothing.
func TestReplaceMaxarKey(t *testing.T) {
	fake, url := newMaxar(t)
	bothStores(t, func(t *testing.T, h *harness) {
		h.useMaxar(url)
		old, other, next := "mxr-old-"+storetest.Key(t), "mxr-other-"+storetest.Key(t), "mxr-new-"+storetest.Key(t)
		for _, k := range []string{old, other, next} {
			fake.AddKey(k, 0)
		}
		forestry, _ := h.newKey(t, old+"\n", "--provider", "maxar", "--key-expires", "2026-03-10", "--org", "Forestry", "--contact", "f@example.org")
		parks, _ := h.newKey(t, other+"\n"+old+"\n", "--provider", "maxar", "--sets", "2", "--key-expires", "2026-03-10", "--org", "Parks", "--contact", "p@example.org")
		roads, _ := h.newKey(t, other+"\n", "--provider", "maxar", "--org", "Roads", "--contact", "r@example.org")

		asked := fake.CapabilitiesRequests.Load()
		p := &prompter{answers: []string{old, next}}
		r := h.runPrompted(t, "", p.read, "replace-credential", "--provider", "maxar", "--key-expires", "180d")
		if r.err != nil {
			t.Fatalf("replace: %v\n%s", r.err, r.all())
		}
		if len(p.prompts) != 2 || p.prompts[0] != "The Maxar key to replace: " || p.prompts[1] != "The new Maxar key: " {
			t.Errorf("prompts %q", p.prompts)
		}
		if fake.CapabilitiesRequests.Load() != asked+1 || fake.Last().Header.Get(maxar.KeyHeader) != next {
			t.Errorf("the new key was not checked with Maxar")
		}
		assertNoLeak(t, r, old, next, other)
		if !strings.Contains(r.out, "Replaced the credential in 2 keys") || !strings.Contains(r.out, prefix(forestry)) ||
			!strings.Contains(r.out, prefix(parks)) || strings.Contains(r.out, prefix(roads)) {
			t.Errorf("output:\n%s", r.out)
		}
		ends := now.Add(180 * 24 * time.Hour).Format(time.RFC3339)
		if s := storedSets(t, h, forestry); s[0]["key"] != next || s[0]["key_expires"] != ends {
			t.Errorf("forestry: %v", s)
		}
		if s := storedSets(t, h, parks); s[0]["key"] != other || s[0]["key_expires"] != "2026-03-10T00:00:00Z" || s[1]["key"] != next || s[1]["key_expires"] != ends {
			t.Errorf("parks: the old key's set alone changes: %v", s)
		}
		if s := storedSets(t, h, roads); s[0]["key"] != other || s[0]["key_expires"] != nil {
			t.Errorf("roads changed: %v", s)
		}

		// A typed old key that no key uses: a clear error, nothing asked.
		asked = fake.CapabilitiesRequests.Load()
		r = h.runPrompted(t, "", (&prompter{answers: []string{old, next}}).read, "replace-credential", "--provider", "maxar", "--key-expires", "180d")
		if r.err == nil || r.err.Error() != "no key uses that Maxar key" {
			t.Errorf("an old key no key uses: %v", r.err)
		}
		assertNoLeak(t, r, old, next)
		// A new key Maxar refuses: nothing changes.
		refused := "mxr-refused-" + storetest.Key(t)
		r = h.runPrompted(t, "", (&prompter{answers: []string{other, refused}}).read, "replace-credential", "--provider", "maxar")
		if r.err == nil || !strings.Contains(r.err.Error(), "Maxar refused the key of set 1") {
			t.Errorf("a refused new key: %v", r.err)
		}
		if s := storedSets(t, h, roads); s[0]["key"] != other {
			t.Errorf("a refused key was saved: %v", s)
		}
		assertNoLeak(t, r, other, refused)
		// --no-check saves it without asking Maxar.
		asked = fake.CapabilitiesRequests.Load()
		h.mustRun(t, other+"\n"+refused+"\n", "replace-credential", "--provider", "maxar", "--no-check", "--key-expires", "2026-08-01")
		if fake.CapabilitiesRequests.Load() != asked {
			t.Errorf("--no-check asked Maxar")
		}
		if s := storedSets(t, h, roads); s[0]["key"] != refused || s[0]["key_expires"] != "2026-08-01T00:00:00Z" {
			t.Errorf("--no-check: %v", s)
		}
		// The same key typed as old and new without --key-expires keeps
		// its recorded end: nothing changes, and nothing is erased.
		h.mustRun(t, refused+"\n"+refused+"\n", "replace-credential", "--provider", "maxar", "--no-check")
		if s := storedSets(t, h, roads); s[0]["key"] != refused || s[0]["key_expires"] != "2026-08-01T00:00:00Z" {
			t.Errorf("the same key again, no end given: %v", s)
		}
		// A revoked key in Key Vault cannot be read: the warning says
		// what it may hold (a Maxar key), never which.
		if h.kv != nil {
			h.mustRun(t, "", "revoke", forestry)
			r := h.mustRun(t, refused+"\n"+next+"\n", "replace-credential", "--provider", "maxar", "--no-check")
			if !strings.Contains(r.errOut, "1 key revoked in Key Vault could not be read and were not changed; if one uses this Maxar key, enable it") {
				t.Errorf("the revoked key's warning:\n%s", r.errOut)
			}
			assertNoLeak(t, r, refused, next)
		}
		// --key-expires is a key's: refused with --client-id (a login).
		if r := h.run(t, "", "replace-credential", "--provider", "maxar", "--client-id", "u", "--key-expires", "180d"); !errors.Is(r.err, ErrUsage) {
			t.Errorf("--key-expires with --client-id: %v", r.err)
		}
	})
}

// replace-credential --provider vexcel --client-id USER replaces that
// login's password in every key that uses it, after one login with it.
func TestReplaceVexcelPassword(t *testing.T) {
	fake := vexcel.New(vexcel.Options{})
	const user = "gis@county.example"
	fake.AddUser(vexcel.User{Username: user, Password: "Vx-old-1"})
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	bothStores(t, func(t *testing.T, h *harness) {
		h.env["PROVIDER_VEXCEL_API_URL"] = up.URL
		fake.AddUser(vexcel.User{Username: user, Password: "Vx-old-1"})
		key, _ := h.newKey(t, user+"\nVx-old-1\n", "--provider", "vexcel", "--org", "County", "--contact", "c@example.org")
		other, _ := h.newKey(t, "someone@else.example\nVx-other\n", "--provider", "vexcel", "--no-check", "--org", "Else", "--contact", "e@example.org")

		fake.AddUser(vexcel.User{Username: user, Password: "Vx-new-2"}) // rotated at Vexcel
		logins := fake.Logins.Load()
		p := &prompter{answers: []string{"Vx-new-2"}}
		r := h.runPrompted(t, "", p.read, "replace-credential", "--provider", "vexcel", "--client-id", user)
		if r.err != nil {
			t.Fatalf("replace: %v\n%s", r.err, r.all())
		}
		if len(p.prompts) != 1 || p.prompts[0] != "The new Vexcel password: " || fake.Logins.Load() != logins+1 {
			t.Errorf("prompts %q, %d logins", p.prompts, fake.Logins.Load()-logins)
		}
		assertNoLeak(t, r, "Vx-new-2", "Vx-old-1")
		if s := storedSets(t, h, key); s[0]["username"] != user || s[0]["password"] != "Vx-new-2" {
			t.Errorf("stored %v", s)
		}
		if s := storedSets(t, h, other); s[0]["password"] != "Vx-other" {
			t.Errorf("another login changed: %v", s)
		}
		// Refused: nothing changes; --no-check: saved without a login.
		r = h.runPrompted(t, "", (&prompter{answers: []string{"Vx-wrong"}}).read, "replace-credential", "--provider", "vexcel", "--client-id", user)
		if r.err == nil || !strings.Contains(r.err.Error(), "Vexcel refused the username and password of set 1") {
			t.Errorf("a wrong password: %v", r.err)
		}
		if s := storedSets(t, h, key); s[0]["password"] != "Vx-new-2" {
			t.Errorf("a refused password was saved")
		}
		logins = fake.Logins.Load()
		h.mustRun(t, "Vx-offline\n", "replace-credential", "--provider", "vexcel", "--client-id", user, "--no-check")
		if fake.Logins.Load() != logins {
			t.Errorf("--no-check logged in")
		}
		if s := storedSets(t, h, key); s[0]["password"] != "Vx-offline" {
			t.Errorf("--no-check: %v", s)
		}
	})
}
