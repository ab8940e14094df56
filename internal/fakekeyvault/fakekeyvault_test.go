package fakekeyvault_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/hexprox/hexprox/internal/fakekeyvault"
)

func newClient(t *testing.T, kv *fakekeyvault.Server, vaultURL string, disableVerify bool) (*azsecrets.Client, *fakekeyvault.Credential) {
	t.Helper()
	cred := kv.Credential()
	c, err := azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: kv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableChallengeResourceVerification: disableVerify,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, cred
}

func start(t *testing.T) *fakekeyvault.Server {
	kv := fakekeyvault.New()
	t.Cleanup(kv.Close)
	return kv
}

func status(err error) (int, string) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode, re.ErrorCode
	}
	return 0, ""
}

func TestChallengeThenAuthorised(t *testing.T) {
	kv := start(t)
	kv.Put("credential-set-abc", `{"count":1}`)
	c, cred := newClient(t, kv, kv.VaultURL(), false)
	ctx := context.Background()

	got, err := c.GetSecret(ctx, "credential-set-abc", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *got.Value != `{"count":1}` {
		t.Errorf("value %q", *got.Value)
	}
	if kv.Challenges() != 1 || cred.Calls() != 1 {
		t.Errorf("challenges %d, token calls %d; want 1, 1", kv.Challenges(), cred.Calls())
	}
	if cred.TenantID() != fakekeyvault.Tenant {
		t.Errorf("tenant from challenge %q", cred.TenantID())
	}
	if kv.APIVersion() == "" {
		t.Error("api-version not recorded")
	}
	// Later requests carry the token straight away.
	if _, err := c.GetSecret(ctx, "credential-set-abc", "", nil); err != nil {
		t.Fatal(err)
	}
	if kv.Challenges() != 1 || kv.Requests("credential-set-abc") != 2 {
		t.Errorf("challenges %d, requests %d; want 1, 2", kv.Challenges(), kv.Requests("credential-set-abc"))
	}
}

func TestOwnAddressNeedsVerificationOff(t *testing.T) {
	kv := start(t)
	kv.Put("s", "v")
	c, _ := newClient(t, kv, kv.URL(), false)
	if _, err := c.GetSecret(context.Background(), "s", "", nil); err == nil || !strings.Contains(err.Error(), "challenge resource") {
		t.Fatalf("want a challenge resource mismatch, got %v", err)
	}
	c, _ = newClient(t, kv, kv.URL(), true)
	if _, err := c.GetSecret(context.Background(), "s", "", nil); err != nil {
		t.Fatal(err)
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	kv := start(t)
	kv.Put("s", "v")
	kv.RequireToken("another")
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	_, err := c.GetSecret(context.Background(), "s", "", nil)
	if st, _ := status(err); st != http.StatusUnauthorized {
		t.Fatalf("want 401, got %v", err)
	}
}

func TestSetGetVersionsAndPutBody(t *testing.T) {
	kv := start(t)
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	ctx := context.Background()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	set, err := c.SetSecret(ctx, "k", azsecrets.SetSecretParameters{
		Value:            to.Ptr("one"),
		ContentType:      to.Ptr("application/json"),
		Tags:             map[string]*string{"org": to.Ptr("Org")},
		SecretAttributes: &azsecrets.SecretAttributes{Expires: &exp},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set.ID.Name() != "k" || set.ID.Version() == "" {
		t.Errorf("id %q", *set.ID)
	}
	if _, err := c.SetSecret(ctx, "k", azsecrets.SetSecretParameters{Value: to.Ptr("two")}, nil); err != nil {
		t.Fatal(err)
	}
	latest, err := c.GetSecret(ctx, "k", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if *latest.Value != "two" || latest.Attributes.Expires != nil || !*latest.Attributes.Enabled {
		t.Errorf("latest %q exp %v enabled %v", *latest.Value, latest.Attributes.Expires, *latest.Attributes.Enabled)
	}
	first, err := c.GetSecret(ctx, "k", set.ID.Version(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *first.Value != "one" || !first.Attributes.Expires.Equal(exp) || *first.ContentType != "application/json" || *first.Tags["org"] != "Org" {
		t.Errorf("first version %q %v %v %v", *first.Value, first.Attributes.Expires, *first.ContentType, first.Tags)
	}
	if first.Attributes.Created == nil || first.Attributes.Created.IsZero() {
		t.Error("no created attribute")
	}
	if kv.Versions("k") != 2 {
		t.Errorf("versions %d", kv.Versions("k"))
	}
	// The body reached the server after the challenge stripped it.
	if s, _ := kv.Secret("k"); s.Value != "two" {
		t.Errorf("stored %q", s.Value)
	}
}

func TestNotFoundNamesTheSecret(t *testing.T) {
	kv := start(t)
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	_, err := c.GetSecret(context.Background(), "credential-set-nope", "", nil)
	st, code := status(err)
	if st != http.StatusNotFound || code != "SecretNotFound" {
		t.Fatalf("got %d %q (%v)", st, code, err)
	}
	// As Key Vault's does, so that stores learn not to pass it on.
	if !strings.Contains(err.Error(), "credential-set-nope") {
		t.Error("the error does not name the secret as Key Vault's does")
	}
}

func TestDisabledIsForbiddenExpiredIsNot(t *testing.T) {
	kv := start(t)
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	ctx := context.Background()
	kv.Set("off", "v", "", nil, fakekeyvault.Attributes{Enabled: false})
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	future := time.Now().Add(time.Hour).Truncate(time.Second)
	kv.Set("expired", "v", "", nil, fakekeyvault.Attributes{Enabled: true, Expires: past})
	kv.Set("early", "v", "", nil, fakekeyvault.Attributes{Enabled: true, NotBefore: future})

	_, err := c.GetSecret(ctx, "off", "", nil)
	if st, code := status(err); st != http.StatusForbidden || code != "Forbidden" || !strings.Contains(err.Error(), "SecretDisabled") {
		t.Fatalf("disabled: %v", err)
	}
	e, err := c.GetSecret(ctx, "expired", "", nil)
	if err != nil || !e.Attributes.Expires.Equal(past) {
		t.Fatalf("expired: %v %v", err, e.Attributes)
	}
	n, err := c.GetSecret(ctx, "early", "", nil)
	if err != nil || !n.Attributes.NotBefore.Equal(future) {
		t.Fatalf("not yet valid: %v %v", err, n.Attributes)
	}
}

func TestUpdatePropertiesKeepsWhatIsNotGiven(t *testing.T) {
	kv := start(t)
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	ctx := context.Background()
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	kv.Set("k", "v", "application/json", map[string]string{"org": "A"}, fakekeyvault.Attributes{Enabled: true, Expires: exp})

	// Disable through the latest version (empty version segment).
	if _, err := c.UpdateSecretProperties(ctx, "k", "", azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)},
	}, nil); err != nil {
		t.Fatal(err)
	}
	s, _ := kv.Secret("k")
	if s.Attributes.Enabled || !s.Attributes.Expires.Equal(exp) || s.Tags["org"] != "A" || s.ContentType != "application/json" {
		t.Fatalf("after disable: %+v", s)
	}
	// Enable, clear exp with an explicit null, replace tags.
	resp, err := c.UpdateSecretProperties(ctx, "k", s.Version, azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(true), Expires: azcore.NullValue[*time.Time]()},
		Tags:             map[string]*string{"org": to.Ptr("B")},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Value != nil {
		t.Error("update returned a value; Key Vault's does not")
	}
	s, _ = kv.Secret("k")
	if !s.Attributes.Enabled || !s.Attributes.Expires.IsZero() || s.Tags["org"] != "B" {
		t.Fatalf("after enable: %+v", s)
	}
	if _, err := c.UpdateSecretProperties(ctx, "missing", "", azsecrets.UpdateSecretPropertiesParameters{}, nil); err == nil {
		t.Fatal("update of a missing secret succeeded")
	}
}

func TestListPagesAndVersions(t *testing.T) {
	kv := start(t)
	kv.SetPageSize(3)
	for i := range 8 {
		kv.Set(fmt.Sprintf("s%d", i), "secret-value", "", map[string]string{"i": fmt.Sprint(i)}, fakekeyvault.Attributes{Enabled: i%2 == 0})
	}
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	ctx := context.Background()
	var names []string
	pager := c.NewListSecretPropertiesPager(nil)
	for pager.More() {
		p, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, sp := range p.Value {
			names = append(names, sp.ID.Name())
			if sp.Tags["i"] == nil || sp.Attributes == nil || sp.Attributes.Enabled == nil {
				t.Errorf("%s: no tags or attributes", sp.ID.Name())
			}
		}
	}
	if got := strings.Join(names, ","); got != "s0,s1,s2,s3,s4,s5,s6,s7" {
		t.Errorf("listed %s", got)
	}
	if kv.Lists() != 3 {
		t.Errorf("pages %d, want 3", kv.Lists())
	}

	kv.Put("s0", "again")
	vp := c.NewListSecretPropertiesVersionsPager("s0", nil)
	n := 0
	for vp.More() {
		p, err := vp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(p.Value)
	}
	if n != 2 {
		t.Errorf("versions listed %d, want 2", n)
	}
}

func TestDeleteKeepsTheNameUntilPurged(t *testing.T) {
	kv := start(t)
	kv.Put("k", "v")
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	ctx := context.Background()
	if _, err := c.DeleteSecret(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, "k", "", nil); err == nil {
		t.Fatal("deleted secret still readable")
	}
	_, err := c.SetSecret(ctx, "k", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil)
	if st, _ := status(err); st != http.StatusConflict {
		t.Fatalf("set on a deleted name: %v", err)
	}
	if _, err := c.PurgeDeletedSecret(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetSecret(ctx, "k", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDenyFailHangDrop(t *testing.T) {
	kv := start(t)
	kv.Put("k", "v")
	c, _ := newClient(t, kv, kv.VaultURL(), false)
	ctx := context.Background()

	kv.Deny(fakekeyvault.OpGet)
	_, err := c.GetSecret(ctx, "k", "", nil)
	if st, _ := status(err); st != http.StatusForbidden || !strings.Contains(err.Error(), "ForbiddenByRbac") {
		t.Fatalf("deny: %v", err)
	}
	if _, err := c.SetSecret(ctx, "k", azsecrets.SetSecretParameters{Value: to.Ptr("v")}, nil); err != nil {
		t.Fatalf("set denied with only get denied: %v", err)
	}
	kv.Deny()

	kv.Fail(http.StatusServiceUnavailable)
	_, err = c.GetSecret(ctx, "k", "", nil)
	if st, _ := status(err); st != http.StatusServiceUnavailable {
		t.Fatalf("fail: %v", err)
	}
	kv.Fail(0)

	kv.Hang(true)
	hctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = c.GetSecret(hctx, "k", "", nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hang: %v", err)
	}
	kv.Hang(false)

	kv.Drop(true)
	_, err = c.GetSecret(ctx, "k", "", nil)
	if err == nil {
		t.Fatal("drop: request succeeded")
	}
	if st, _ := status(err); st != 0 {
		t.Fatalf("drop gave an HTTP answer %d", st)
	}
	kv.Drop(false)
	if _, err := c.GetSecret(ctx, "k", "", nil); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestAPIVersionRequired(t *testing.T) {
	kv := start(t)
	kv.Put("k", "v")
	req, _ := http.NewRequest(http.MethodGet, kv.URL()+"/secrets/k/", nil)
	req.Header.Set("Authorization", "Bearer "+fakekeyvault.Token)
	resp, err := kv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("no api-version: %d", resp.StatusCode)
	}
}
