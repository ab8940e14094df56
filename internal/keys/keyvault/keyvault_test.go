package keyvault

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakekeyvault"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/storetest"
)

// open returns a store on a fresh fake vault, reached as Azure's vaults
// are (a *.vault.azure.net URL, challenge resource verified), with no
// retries so that failure tests are quick.
func open(t *testing.T) (*Store, *fakekeyvault.Server, *fakekeyvault.Credential) {
	t.Helper()
	kv := fakekeyvault.New()
	t.Cleanup(kv.Close)
	cred := kv.Credential()
	s, err := Open(Options{
		VaultURL:   kv.VaultURL(),
		Credential: cred,
		Transport:  kv.Client(),
		Retry:      policy.RetryOptions{MaxRetries: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, kv, cred
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) keys.Store {
		s, _, _ := open(t)
		return s
	})
}

// The original HexProx's exact JSON, with a count that disagrees with
// its sets (the original trusted count; we trust the sets).
const originalKey = "0c9f6a52-6a3e-4a8e-9d0b-2f3c4d5e6f70"
const originalJSON = `{"count": 3, "sets": [{"client_id": "orig-id-1", "client_secret": "orig-secret-1"}, {"client_id": "orig-id-2", "client_secret": "orig-secret-2"}], "org": "Org name", "contact": "Contact name"}`

func TestReadsTheOriginalsRecords(t *testing.T) {
	s, kv, _ := open(t)
	kv.Put(keys.SecretPrefix+originalKey, originalJSON) // as the original's admins wrote them: no content type, tags or attributes
	r, err := s.Get(context.Background(), originalKey)
	if err != nil {
		t.Fatal(err)
	}
	if r.Org != "Org name" || r.Contact != "Contact name" || !r.Enabled || !r.Expires.IsZero() || !r.NotBefore.IsZero() {
		t.Errorf("record %+v", r)
	}
	want := []credential.Credential{{ID: "orig-id-1", Secret: "orig-secret-1"}, {ID: "orig-id-2", Secret: "orig-secret-2"}}
	if len(r.Sets) != 2 || r.Sets[0].ID != want[0].ID || r.Sets[0].Secret != want[0].Secret || r.Sets[1].ID != want[1].ID || r.Sets[1].Secret != want[1].Secret {
		t.Errorf("sets: got %d, ids %v", len(r.Sets), r.Sets)
	}
	sec, _ := kv.Secret(keys.SecretPrefix + originalKey)
	if r.Created.IsZero() || !r.Created.Equal(sec.Attributes.Created) {
		t.Errorf("created %v, want the version's %v", r.Created, sec.Attributes.Created)
	}
	entries, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Key != originalKey || entries[0].Record.Org != "Org name" || len(entries[0].Record.Sets) != 2 {
		t.Errorf("list: %d entries", len(entries))
	}
}

// What we write, the original can read: its fields, count = len(sets).
func TestWritesTheOriginalsLayout(t *testing.T) {
	s, kv, _ := open(t)
	key := storetest.Key(t)
	rec := storetest.Record(t)
	if err := s.Create(context.Background(), key, rec); err != nil {
		t.Fatal(err)
	}
	sec, ok := kv.Secret(keys.SecretPrefix + key)
	if !ok {
		t.Fatal("no secret named credential-set-{key}")
	}
	for _, want := range []string{`"count": 2`, `"client_id": "client-one"`, `"client_secret": "` + rec.Sets[0].Secret + `"`, `"org": "Sonoma County"`, `"contact": "gis@example.org"`} {
		if !strings.Contains(sec.Value, want) {
			t.Errorf("value lacks %s", want)
		}
	}
	for _, absent := range []string{`"enabled"`, `"expires"`, `"not_before"`} {
		if strings.Contains(sec.Value, absent) {
			t.Errorf("value holds %s: the lifecycle belongs in the attributes", absent)
		}
	}
	if sec.ContentType != ContentType || sec.Tags["org"] != rec.Org || sec.Tags["contact"] != rec.Contact {
		t.Errorf("content type %q tags %v", sec.ContentType, sec.Tags)
	}
	if !sec.Attributes.Enabled || !sec.Attributes.Expires.Equal(rec.Expires) || !sec.Attributes.NotBefore.Equal(rec.NotBefore) {
		t.Errorf("attributes %+v", sec.Attributes)
	}
}

func TestBearerChallenge(t *testing.T) {
	s, kv, cred := open(t)
	kv.Put(keys.SecretPrefix+originalKey, originalJSON)
	if _, err := s.Get(context.Background(), originalKey); err != nil {
		t.Fatal(err)
	}
	if kv.Challenges() != 1 || cred.Calls() != 1 || cred.TenantID() != fakekeyvault.Tenant {
		t.Fatalf("challenges %d, token requests %d, tenant %q", kv.Challenges(), cred.Calls(), cred.TenantID())
	}
	if kv.Requests(keys.SecretPrefix+originalKey) != 1 {
		t.Fatalf("authorised requests %d, want 1", kv.Requests(keys.SecretPrefix+originalKey))
	}
}

func TestLifecycleFromAttributes(t *testing.T) {
	s, kv, _ := open(t)
	ctx := context.Background()
	exp := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	nbf := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	kv.Set(keys.SecretPrefix+"dated", originalJSON, "", nil, fakekeyvault.Attributes{Enabled: true, Expires: exp, NotBefore: nbf})
	r, err := s.Get(ctx, "dated")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Expires.Equal(exp) || !r.NotBefore.Equal(nbf) || !r.Enabled {
		t.Errorf("expires %v not_before %v enabled %v", r.Expires, r.NotBefore, r.Enabled)
	}
	if r.Status(time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)) != keys.NotYetValid || r.Status(exp) != keys.Expired {
		t.Error("status does not follow the attributes")
	}

	// Revoked in the portal: the value cannot be read, the record says so.
	kv.Update(keys.SecretPrefix+"dated", func(a *fakekeyvault.Attributes) { a.Enabled = false })
	r, err = s.Get(ctx, "dated")
	if err != nil {
		t.Fatalf("a disabled key must read as revoked, got %v", err)
	}
	if r.Enabled || len(r.Sets) != 0 || r.Status(time.Now()) != keys.Revoked || !r.Expires.Equal(exp) {
		t.Errorf("disabled: %+v", r)
	}

	// A lifecycle member in the value narrows the attributes, never widens.
	kv.Set(keys.SecretPrefix+"narrow", `{"count":1,"sets":[{"client_id":"a","client_secret":"b"}],"org":"o","contact":"c","enabled":false,"expires":"2030-01-01T00:00:00Z"}`,
		"", nil, fakekeyvault.Attributes{Enabled: true, Expires: exp})
	r, err = s.Get(ctx, "narrow")
	if err != nil {
		t.Fatal(err)
	}
	if r.Enabled || !r.Expires.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("narrow: enabled %v expires %v", r.Enabled, r.Expires)
	}
}

func TestRevokeAndEnableUseAttributes(t *testing.T) {
	s, kv, _ := open(t)
	ctx := context.Background()
	key, rec := storetest.Key(t), storetest.Record(t)
	if err := s.Create(ctx, key, rec); err != nil {
		t.Fatal(err)
	}
	name := keys.SecretPrefix + key
	// Revoke: Get, clear Enabled, Update; no new version.
	r, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	r.Enabled = false
	if err := s.Update(ctx, key, r); err != nil {
		t.Fatal(err)
	}
	if sec, _ := kv.Secret(name); sec.Attributes.Enabled || kv.Versions(name) != 1 {
		t.Fatalf("revoke: enabled %v, versions %d", sec.Attributes.Enabled, kv.Versions(name))
	}
	// Enable: Get gives the lifecycle (and the org and contact, from the
	// tags) only; Update with no sets keeps the content.
	r, err = s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sets) != 0 || r.Org != rec.Org || r.Contact != rec.Contact {
		t.Fatalf("a revoked key reads as org %q contact %q with %d sets; want %q %q and none", r.Org, r.Contact, len(r.Sets), rec.Org, rec.Contact)
	}
	r.Enabled = true
	r.Expires = time.Time{}
	if err := s.Update(ctx, key, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	rec.Expires = time.Time{}
	storetest.Same(t, got, rec)
	if kv.Versions(name) != 1 {
		t.Errorf("lifecycle changes made %d versions, want 1", kv.Versions(name))
	}
	// A content change makes a new version, keeping created.
	got.Contact = "someone-else@example.org"
	if err := s.Update(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if kv.Versions(name) != 2 {
		t.Errorf("content change: %d versions, want 2", kv.Versions(name))
	}
	again, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if again.Contact != "someone-else@example.org" || !again.Created.Equal(got.Created) {
		t.Errorf("after content change: contact %q created %v (was %v)", again.Contact, again.Created, got.Created)
	}
}

func TestPermissionErrorsNameTheRole(t *testing.T) {
	s, kv, _ := open(t)
	ctx := context.Background()
	key := storetest.Key(t)
	kv.Put(keys.SecretPrefix+key, originalJSON)

	kv.Deny(fakekeyvault.OpGet)
	_, err := s.Get(ctx, key)
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "Key Vault Secrets User") {
		t.Fatalf("read refused: %v", err)
	}
	noLeak(t, err, key)

	kv.Deny(fakekeyvault.OpSet)
	rec := storetest.Record(t)
	err = s.Create(ctx, storetest.Key(t), rec)
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "Key Vault Secrets Officer") {
		t.Fatalf("write refused: %v", err)
	}
	noLeak(t, err, key, rec.Sets[0].Secret)

	kv.Deny(fakekeyvault.OpList)
	_, err = s.List(ctx)
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "Key Vault Secrets User") {
		t.Fatalf("list refused: %v", err)
	}
	kv.Deny()

	kv.RequireToken("a-token-this-identity-does-not-have")
	_, err = s.Get(ctx, key)
	var pe *PermissionError
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized {
		t.Fatalf("token refused: %v", err)
	}
	noLeak(t, err, key)
}

func TestVaultDownIsUnavailable(t *testing.T) {
	s, kv, _ := open(t)
	ctx := context.Background()
	key := storetest.Key(t)
	kv.Put(keys.SecretPrefix+key, originalJSON)

	for name, breakIt := range map[string]func(){
		"503":  func() { kv.Fail(http.StatusServiceUnavailable) },
		"429":  func() { kv.Fail(http.StatusTooManyRequests) },
		"drop": func() { kv.Drop(true) },
	} {
		breakIt()
		_, err := s.Get(ctx, key)
		if !errors.Is(err, keys.ErrUnavailable) {
			t.Errorf("%s: want ErrUnavailable, got %v", name, err)
		}
		noLeak(t, err, key)
		kv.Fail(0)
		kv.Drop(false)
	}

	kv.Hang(true)
	hctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := s.Get(hctx, key)
	if !errors.Is(err, keys.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: want ErrUnavailable and DeadlineExceeded, got %v", err)
	}
	kv.Hang(false)

	kv.Close()
	_, err = s.Get(ctx, key)
	if !errors.Is(err, keys.ErrUnavailable) {
		t.Errorf("closed: want ErrUnavailable, got %v", err)
	}
	noLeak(t, err, key)
}

// Retries are the SDK's: a blip answered on the second try is no error.
func TestRetriesABlip(t *testing.T) {
	kv := fakekeyvault.New()
	t.Cleanup(kv.Close)
	s, err := Open(Options{VaultURL: kv.VaultURL(), Credential: kv.Credential(), Transport: kv.Client(),
		Retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	kv.Put(keys.SecretPrefix+originalKey, originalJSON)
	kv.Fail(http.StatusServiceUnavailable)
	done := make(chan error, 1)
	go func() { _, err := s.Get(context.Background(), originalKey); done <- err }()
	for kv.Total() == 0 {
		time.Sleep(time.Millisecond)
	}
	kv.Fail(0)
	if err := <-done; err != nil {
		t.Fatalf("a blip within the retries: %v", err)
	}
}

func TestMalformedValue(t *testing.T) {
	s, kv, _ := open(t)
	key := storetest.Key(t)
	secret := "s3cr3t-" + key
	kv.Put(keys.SecretPrefix+key, `{"count":1,"sets":[{"client_id":"id","client_secret":"`+secret+`"}],"org":5}`)
	_, err := s.Get(context.Background(), key)
	if err == nil || errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("malformed value: %v", err)
	}
	noLeak(t, err, key, secret)
	_, err = s.List(context.Background())
	if err == nil {
		t.Fatal("List passed over a malformed record")
	}
	noLeak(t, err, key, secret)
}

func TestListSkipsOtherSecretsAndPages(t *testing.T) {
	s, kv, _ := open(t)
	kv.SetPageSize(2)
	kv.Put("database-password", "not a record")
	kv.Put(keys.SecretPrefix, "no key after the prefix")
	for range 5 {
		if err := s.Create(context.Background(), storetest.Key(t), storetest.Record(t)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Fatalf("%d entries, want 5", len(entries))
	}
	if kv.Lists() != 4 {
		t.Errorf("%d list pages, want 4 (7 secrets, 2 a page)", kv.Lists())
	}
}

func TestCreateOverADeletedSecret(t *testing.T) {
	s, kv, _ := open(t)
	ctx := context.Background()
	key := storetest.Key(t)
	if err := s.Create(ctx, key, storetest.Record(t)); err != nil {
		t.Fatal(err)
	}
	c := kv.Client()
	req, _ := http.NewRequest(http.MethodDelete, kv.URL()+"/secrets/"+keys.SecretPrefix+key+"?api-version=2026-04-01", nil)
	req.Header.Set("Authorization", "Bearer "+fakekeyvault.Token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := s.Get(ctx, key); !errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("deleted: %v", err)
	}
	err = s.Create(ctx, key, storetest.Record(t))
	if !errors.Is(err, keys.ErrExists) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("create over a deleted secret: %v", err)
	}
	noLeak(t, err, key)
}

func TestOpenChecks(t *testing.T) {
	kv := fakekeyvault.New()
	defer kv.Close()
	for _, o := range []Options{
		{Credential: kv.Credential()},
		{VaultURL: "http://x.vault.azure.net", Credential: kv.Credential()},
		{VaultURL: kv.VaultURL()},
	} {
		if _, err := Open(o); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

// The host's managed identity reads the vault where config says there is
// one (IDENTITY_ENDPOINT or MSI_ENDPOINT), the admin's own login
// elsewhere.
func TestNewCredential(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		env  map[string]string
		id   string
		want string
	}{
		{map[string]string{"IDENTITY_ENDPOINT": "http://127.0.0.1:41000/msi/token"}, "11111111-2222-3333-4444-555555555555", "managed"},
		{map[string]string{"MSI_ENDPOINT": "http://127.0.0.1:41000/msi/token"}, "", "managed"},
		{map[string]string{}, "", "default"},
	} {
		if c.want == "default" {
			// DefaultAzureCredential reads the real environment.
			if os.Getenv("AZURE_TOKEN_CREDENTIALS") != "" {
				t.Skip("AZURE_TOKEN_CREDENTIALS is set")
			}
		}
		k, err := config.LoadKeys(env(c.env))
		if err != nil {
			t.Fatal(err)
		}
		cred, err := NewCredential(c.id, k.Managed)
		if err != nil {
			t.Fatal(err)
		}
		switch cred.(type) {
		case *azidentity.ManagedIdentityCredential:
			if c.want != "managed" {
				t.Errorf("%v: got a managed identity credential", c.env)
			}
		case *azidentity.DefaultAzureCredential:
			if c.want != "default" {
				t.Errorf("%v: got DefaultAzureCredential", c.env)
			}
		default:
			t.Errorf("%v: got %T", c.env, cred)
		}
	}
}

// noLeak fails t if err's text holds any of the secrets.
func noLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error text carries a key or secret: %T", err)
		}
	}
}

// An identity that may get but not list (an access policy with "get"
// only) still sees a disabled key as revoked, without its dates.
func TestDisabledWithoutListPermission(t *testing.T) {
	s, kv, _ := open(t)
	kv.Set(keys.SecretPrefix+originalKey, originalJSON, "", nil, fakekeyvault.Attributes{Enabled: false, Expires: time.Now().Add(time.Hour)})
	kv.Deny(fakekeyvault.OpList)
	r, err := s.Get(context.Background(), originalKey)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status(time.Now()) != keys.Revoked || len(r.Sets) != 0 {
		t.Fatalf("got %+v", r)
	}
}

// BenchmarkGet is one warm Get through the real azsecrets pipeline and
// the fake vault over loopback TLS: the cost a cache miss adds.
func BenchmarkGet(b *testing.B) {
	kv := fakekeyvault.New()
	defer kv.Close()
	s, err := Open(Options{VaultURL: kv.VaultURL(), Credential: kv.Credential(), Transport: kv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	kv.Put(keys.SecretPrefix+originalKey, originalJSON)
	ctx := context.Background()
	if _, err := s.Get(ctx, originalKey); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, originalKey); err != nil {
			b.Fatal(err)
		}
	}
}

// The listing finds what Get finds: Key Vault's names are
// case-insensitive, the prefix too, and a disabled key is listed as such.
func TestListingSeesEverySpellingOfThePrefix(t *testing.T) {
	s, kv, _ := open(t)
	rec := `{"count": 1, "sets": [{"client_id": "a", "client_secret": "b"}], "org": "Cased", "contact": "c"}`
	kv.Put("Credential-Set-hxpk-casedKey", rec)
	kv.Put(keys.SecretPrefix+"hxpk-offKey", rec)
	kv.Update(keys.SecretPrefix+"hxpk-offKey", func(a *fakekeyvault.Attributes) { a.Enabled = false })
	kv.Put("unrelated-secret", "x")
	if _, err := s.Get(context.Background(), "hxpk-casedKey"); err != nil {
		t.Fatal(err)
	}
	l, err := s.Listing(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := l[keys.Canonical("hxpk-casedKey")]; !ok || !a.Enabled || a.Version == "" {
		t.Fatalf("a key whose prefix is spelt otherwise: %+v %v", a, ok)
	}
	if a, ok := l[keys.Canonical("hxpk-offKey")]; !ok || a.Enabled {
		t.Fatalf("a disabled key: %+v %v", a, ok)
	}
	if len(l) != 2 {
		t.Fatalf("listed %d keys, want 2: %v", len(l), l)
	}
}
