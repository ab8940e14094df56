// Package keyvault is the keys.Store on Azure Key Vault, in the original
// HexProx's layout: the record of key K is the secret "credential-set-K"
// (keys.SecretPrefix), its value the record's JSON as keys.EncodeRecord
// writes it ({"count", "sets", "org", "contact", ...}), so a vault the
// original used serves the same /v2 URLs unchanged.
//
// The lifecycle lives in Key Vault's own secret attributes, where the
// portal and the az CLI show and change it: enabled=false is a revoked
// key, exp its expiry, nbf its start. Lifecycle members found in a value
// (enabled, expires, not_before, as a file record has them) only ever
// narrow what the attributes allow. The value also carries "created", the
// time the key was made (the attributes' created is the latest version's,
// which each content change renews); for records without it, the latest
// version's created is used. Each secret gets content type
// application/json and the tags org and contact, for people reading the
// vault in the portal; the store itself reads only values and attributes.
//
// Key Vault refuses to read a disabled secret's value, so Get and List
// return a disabled record with its lifecycle only (Enabled false,
// Expires, NotBefore, Created) and no Sets, as keys.Store allows.
//
// Errors never carry a key, a secret name or a secret value: Key Vault's
// error texts, and azcore's, include the request URL, which names the
// secret, so they are never passed on.
package keyvault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"golang.org/x/sync/errgroup"

	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/redact"
)

// ContentType is the content type the store gives every secret it writes.
const ContentType = "application/json"

// Roles named in permission errors: the app reads, the admin writes.
const (
	ReaderRole = "Key Vault Secrets User"
	WriterRole = "Key Vault Secrets Officer"
)

// maxTag is Key Vault's limit on a tag value, in characters.
const maxTag = 256

// listConcurrency bounds the value reads List makes at once.
const listConcurrency = 8

// ErrPermission is wrapped by the errors of calls the vault refused for
// want of a role or a valid token; the error's text names the role.
var ErrPermission = errors.New("keyvault: permission denied")

// Options configure Open.
type Options struct {
	// VaultURL is the vault, https://{name}.vault.azure.net. Required.
	VaultURL string
	// Credential authenticates to the vault (NewCredential makes the usual
	// one). Required.
	Credential azcore.TokenCredential
	// Transport sends the HTTP requests; nil means azcore's default
	// client. Tests pass the fake vault's client.
	Transport policy.Transporter
	// Retry is azcore's retry policy; the zero value means the SDK's
	// defaults (3 retries of 5xx, 429, 408 and network errors, with
	// exponential back-off from 800 ms). Callers bound each call with
	// their context.
	Retry policy.RetryOptions
	// DisableChallengeResourceVerification lets the vault's challenge
	// name a resource whose domain differs from VaultURL's host. Leave it
	// false for *.vault.azure.net and the sovereign clouds' vault domains.
	DisableChallengeResourceVerification bool
	// Now is the clock for the created stamp of new keys; nil means
	// time.Now.
	Now func() time.Time
}

// Store is a keys.Store on one vault. It is safe for concurrent use.
//
// Key Vault has no create-if-absent: Create is a read then a write. A
// Store serialises its own writes, so concurrent Creates of one key
// through one Store have one winner; two processes creating the very same
// key at the same moment could both succeed (keys.New's keys are 256-bit
// random, so only a deliberately reused key can collide).
type Store struct {
	client *azsecrets.Client
	now    func() time.Time
	write  sync.Mutex
}

var _ keys.Store = (*Store)(nil)

// Open returns a Store on the vault. It makes no request: a wrong URL,
// identity or role shows on the first call.
func Open(o Options) (*Store, error) {
	if o.VaultURL == "" {
		return nil, errors.New("keyvault: no vault URL (KEY_VAULT_URL, or KEY_VAULT_NAME for https://{name}.vault.azure.net)")
	}
	if !strings.HasPrefix(o.VaultURL, "https://") {
		return nil, errors.New("keyvault: the vault URL must start with https://")
	}
	if o.Credential == nil {
		return nil, errors.New("keyvault: no credential")
	}
	c, err := azsecrets.NewClient(o.VaultURL, o.Credential, &azsecrets.ClientOptions{
		ClientOptions: azcore.ClientOptions{
			Transport: o.Transport,
			Retry:     o.Retry,
		},
		DisableChallengeResourceVerification: o.DisableChallengeResourceVerification,
	})
	if err != nil {
		return nil, fmt.Errorf("keyvault: %w", err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Store{client: c, now: now}, nil
}

func secretName(key string) string { return keys.SecretPrefix + key }

// op names what was being done, for errors: the verb and the role it needs.
type op struct {
	verb string
	role string
}

var (
	opRead  = op{"read key records", ReaderRole}
	opList  = op{"list key records", ReaderRole}
	opWrite = op{"write key records", WriterRole}
)

// Get returns the key's record: keys.ErrSyntax for a malformed key (no
// request is made), keys.ErrNotFound when the vault has no such secret,
// a lifecycle-only record when the secret is disabled, keys.ErrUnavailable
// when the vault cannot be reached, throttles or fails, and an error
// wrapping ErrPermission, naming the role, when the vault refuses the
// identity.
func (s *Store) Get(ctx context.Context, key string) (keys.Record, error) {
	if err := keys.Check(key); err != nil {
		return keys.Record{}, err
	}
	r, _, err := s.get(ctx, key, opRead)
	return r, err
}

// get also returns the value read (nil for a disabled secret).
func (s *Store) get(ctx context.Context, key string, o op) (keys.Record, []byte, error) {
	resp, err := s.client.GetSecret(ctx, secretName(key), "", nil)
	if err != nil {
		if isDisabled(err) {
			r, err := s.disabled(ctx, key, o)
			return r, nil, err
		}
		return keys.Record{}, nil, classify(err, o, key)
	}
	if resp.Value == nil {
		return keys.Record{}, nil, errors.New("keyvault: the vault returned a secret without a value")
	}
	value := []byte(*resp.Value)
	r, err := fromSecret(value, resp.Attributes)
	return r, value, err
}

// fromSecret builds a record from a value and its attributes.
func fromSecret(value []byte, a *azsecrets.SecretAttributes) (keys.Record, error) {
	r, err := keys.ParseRecord(value)
	if err != nil {
		// ParseRecord's errors name members and positions, never values.
		return keys.Record{}, fmt.Errorf("keyvault: the key's secret is not a key record: %w", err)
	}
	applyAttributes(&r, a)
	return r, nil
}

// applyAttributes merges Key Vault's attributes into r: they decide the
// lifecycle, and lifecycle members already in r (from the value) can only
// narrow it.
func applyAttributes(r *keys.Record, a *azsecrets.SecretAttributes) {
	if a == nil {
		return
	}
	if a.Enabled != nil && !*a.Enabled {
		r.Enabled = false
	}
	if a.Expires != nil && (r.Expires.IsZero() || a.Expires.Before(r.Expires)) {
		r.Expires = a.Expires.UTC()
	}
	if a.NotBefore != nil && a.NotBefore.After(r.NotBefore) {
		r.NotBefore = a.NotBefore.UTC()
	}
	if r.Created.IsZero() && a.Created != nil {
		r.Created = a.Created.UTC()
	}
}

// disabledRecord is the record of a disabled secret: its lifecycle, and
// the organisation and contact its tags hold (the value cannot be read).
func disabledRecord(a *azsecrets.SecretAttributes, tags map[string]*string) keys.Record {
	r := keys.Record{}
	applyAttributes(&r, a)
	r.Enabled = false
	if v := tags["org"]; v != nil {
		r.Org = *v
	}
	if v := tags["contact"]; v != nil {
		r.Contact = *v
	}
	return r
}

// disabled reads a disabled secret's attributes from its versions (Key
// Vault refuses the value, and its refusal carries no attributes): the
// latest version is the one created last. It costs one more request
// (list permission, which Key Vault Secrets User has).
func (s *Store) disabled(ctx context.Context, key string, o op) (keys.Record, error) {
	var latest *azsecrets.SecretProperties
	pager := s.client.NewListSecretPropertiesVersionsPager(secretName(key), nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			err = classify(err, o, key)
			if errors.Is(err, ErrPermission) {
				// An identity allowed to get but not to list (an access
				// policy with "get" only, as the original's deployments
				// may have): the key is revoked all the same.
				return keys.Record{Enabled: false}, nil
			}
			return keys.Record{}, err
		}
		for _, p := range page.Value {
			if p == nil || p.Attributes == nil || p.Attributes.Created == nil {
				continue
			}
			if latest == nil || !p.Attributes.Created.Before(*latest.Attributes.Created) {
				latest = p
			}
		}
	}
	if latest == nil {
		return keys.Record{Enabled: false}, nil
	}
	return disabledRecord(latest.Attributes, latest.Tags), nil
}

// Create stores a new key: keys.ErrExists when the vault has the secret
// already (a deleted one in its retention period included), keys.ErrSyntax
// for a malformed key; otherwise Get's errors, with the writer's role.
// r.Created zero means now.
func (s *Store) Create(ctx context.Context, key string, r keys.Record) error {
	if err := keys.Check(key); err != nil {
		return err
	}
	s.write.Lock()
	defer s.write.Unlock()
	_, _, err := s.get(ctx, key, opWrite)
	switch {
	case err == nil:
		return keys.ErrExists
	case !errors.Is(err, keys.ErrNotFound):
		return err
	}
	if r.Created.IsZero() {
		r.Created = s.now().UTC().Truncate(time.Second)
	}
	return s.set(ctx, key, r)
}

// set writes r as a new version, value and attributes in one call.
func (s *Store) set(ctx context.Context, key string, r keys.Record) error {
	value, err := encode(r)
	if err != nil {
		return err
	}
	_, err = s.client.SetSecret(ctx, secretName(key), azsecrets.SetSecretParameters{
		Value:            to.Ptr(string(value)),
		ContentType:      to.Ptr(ContentType),
		SecretAttributes: attributes(r),
		Tags:             tags(r),
	}, nil)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusConflict {
			return fmt.Errorf("%w: the vault holds it as a deleted secret; recover or purge it first", keys.ErrExists)
		}
		return classify(err, opWrite, key)
	}
	return nil
}

// encode writes r's value: the lifecycle is left to the attributes, but
// created stays in the value.
func encode(r keys.Record) ([]byte, error) {
	r.Enabled, r.Expires, r.NotBefore = true, time.Time{}, time.Time{}
	return keys.EncodeRecord(r)
}

// attributes are r's lifecycle as Key Vault attributes; zero times are
// sent as nulls, which clear them.
func attributes(r keys.Record) *azsecrets.SecretAttributes {
	t := func(v time.Time) *time.Time {
		if v.IsZero() {
			return azcore.NullValue[*time.Time]()
		}
		v = v.UTC()
		return &v
	}
	return &azsecrets.SecretAttributes{Enabled: to.Ptr(r.Enabled), Expires: t(r.Expires), NotBefore: t(r.NotBefore)}
}

func tags(r keys.Record) map[string]*string {
	m := map[string]*string{}
	for name, v := range map[string]string{"org": r.Org, "contact": r.Contact} {
		if v == "" {
			continue
		}
		if rs := []rune(v); len(rs) > maxTag {
			v = string(rs[:maxTag])
		}
		m[name] = to.Ptr(v)
	}
	return m
}

// Update replaces the key's record: keys.ErrNotFound when the vault has
// no such secret. A change of content (anything but the lifecycle) writes
// a new version with the attributes in the same call; a change of the
// lifecycle alone updates the latest version's attributes, with no new
// version.
//
// A record without Sets, as Get returns for a disabled key, changes the
// lifecycle only and keeps the stored content: that is how a revoked key
// is enabled again (Get, set Enabled, Update). To change a disabled key's
// content, pass the whole record.
//
// r.Created zero keeps the stored created time when the value can be read.
func (s *Store) Update(ctx context.Context, key string, r keys.Record) error {
	if err := keys.Check(key); err != nil {
		return err
	}
	s.write.Lock()
	defer s.write.Unlock()
	cur, curValue, err := s.get(ctx, key, opWrite)
	if err != nil {
		return err
	}
	if len(r.Sets) == 0 {
		return s.updateAttributes(ctx, key, r, nil)
	}
	if r.Created.IsZero() {
		r.Created = cur.Created
	}
	value, err := encode(r)
	if err != nil {
		return err
	}
	if curValue != nil && string(value) == string(curValue) {
		return s.updateAttributes(ctx, key, r, tags(r))
	}
	return s.set(ctx, key, r)
}

func (s *Store) updateAttributes(ctx context.Context, key string, r keys.Record, t map[string]*string) error {
	_, err := s.client.UpdateSecretProperties(ctx, secretName(key), "", azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: attributes(r),
		Tags:             t,
	}, nil)
	if err != nil {
		return classify(err, opWrite, key)
	}
	return nil
}

// List returns every key in the vault: the secrets named
// keys.SecretPrefix plus a well-formed key. Disabled ones come with their
// lifecycle only, from the listing; the value of each enabled one is read
// (at most 8 at once), so List costs one request per enabled key and a
// few for the listing, and its records are Get's. A secret with the prefix
// whose value is not a record fails the whole List, with an error that
// names the key's fingerprint.
func (s *Store) List(ctx context.Context) ([]keys.Entry, error) {
	var entries []keys.Entry
	var enabled []int
	err := s.eachKey(ctx, func(key string, p *azsecrets.SecretProperties) {
		if p.Attributes != nil && p.Attributes.Enabled != nil && !*p.Attributes.Enabled {
			entries = append(entries, keys.Entry{Key: key, Record: disabledRecord(p.Attributes, p.Tags)})
			return
		}
		enabled = append(enabled, len(entries))
		entries = append(entries, keys.Entry{Key: key})
	})
	if err != nil {
		return nil, err
	}
	gone := make([]bool, len(entries))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listConcurrency)
	for _, i := range enabled {
		g.Go(func() error {
			r, _, err := s.get(gctx, entries[i].Key, opList)
			switch {
			case errors.Is(err, keys.ErrNotFound):
				gone[i] = true // deleted between the listing and the read
			case err != nil:
				return fmt.Errorf("key %s: %w", keys.Fingerprint(entries[i].Key, ""), err)
			}
			entries[i].Record = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]keys.Entry, 0, len(entries))
	for i, e := range entries {
		if !gone[i] {
			out = append(out, e)
		}
	}
	return out, nil
}

// Listing implements keys.Lister with Key Vault's secret listing alone:
// names and attributes, 25 secrets a request, no values, so that a cache
// can list every few seconds. A key's version is its secret's current
// version and last update, which change whenever its record or its
// attributes (enabled, expiry) do, whichever tool changed them.
func (s *Store) Listing(ctx context.Context) (map[string]keys.Attrs, error) {
	out := map[string]keys.Attrs{}
	err := s.eachKey(ctx, func(key string, p *azsecrets.SecretProperties) {
		a := keys.Attrs{Enabled: true, Version: p.ID.Version()}
		if at := p.Attributes; at != nil {
			if at.Enabled != nil {
				a.Enabled = *at.Enabled
			}
			if at.NotBefore != nil {
				a.NotBefore = *at.NotBefore
			}
			if at.Expires != nil {
				a.Expires = *at.Expires
			}
			if at.Updated != nil {
				a.Version += "@" + strconv.FormatInt(at.Updated.UnixNano(), 10)
			}
		}
		out[keys.Canonical(key)] = a
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachKey calls f with every key secret's name (without the prefix) and
// properties, from Key Vault's listing (25 a request, no values).
func (s *Store) eachKey(ctx context.Context, f func(key string, p *azsecrets.SecretProperties)) error {
	pager := s.client.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return classify(err, opList, "")
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil {
				continue
			}
			// Key Vault's names are case-insensitive: so is the prefix, as
			// for Get.
			name := p.ID.Name()
			if len(name) <= len(keys.SecretPrefix) || !strings.EqualFold(name[:len(keys.SecretPrefix)], keys.SecretPrefix) {
				continue
			}
			key := name[len(keys.SecretPrefix):]
			if keys.Check(key) != nil {
				continue
			}
			f(key, p)
		}
	}
	return nil
}

// isDisabled reports Key Vault's refusal to read a disabled secret: 403,
// code Forbidden, inner code SecretDisabled.
func isDisabled(err error) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || re.RawResponse == nil {
		return false
	}
	return innerCode(re) == "SecretDisabled"
}

// innerCode is the innererror code of Key Vault's error body.
func innerCode(re *azcore.ResponseError) string {
	body, err := runtime.Payload(re.RawResponse)
	if err != nil {
		return ""
	}
	// Small and fixed-shape; avoid decoding the message, which may name
	// the secret.
	var e struct {
		Error struct {
			Inner struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error.Inner.Code
}

// classify maps an azsecrets error to the store's errors, with texts of
// our own: never the ResponseError's, which prints the request URL (the
// secret name, hence the key) and Key Vault's message (which names it
// too).
func classify(err error, o op, key string) error {
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &re):
		switch {
		case re.StatusCode == http.StatusNotFound:
			return keys.ErrNotFound
		case re.StatusCode == http.StatusUnauthorized:
			return &PermissionError{Op: o.verb, Role: o.role, Status: re.StatusCode,
				Detail: "the vault did not accept the identity's token (wrong tenant, or an identity the vault does not know)"}
		case re.StatusCode == http.StatusForbidden:
			detail := "the identity has no role that allows it"
			if innerCode(re) == "AccessDenied" {
				detail = "the vault uses access policies and none allows it; add one, or switch the vault to Azure RBAC"
			}
			return &PermissionError{Op: o.verb, Role: o.role, Status: re.StatusCode, Detail: detail}
		case re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%w: the vault is throttling requests (HTTP 429)", keys.ErrUnavailable)
		case re.StatusCode >= 500 || re.StatusCode == http.StatusRequestTimeout:
			return fmt.Errorf("%w: the vault failed (HTTP %d)", keys.ErrUnavailable, re.StatusCode)
		}
		return fmt.Errorf("keyvault: the vault refused to %s (HTTP %d, %s)", o.verb, re.StatusCode, safeCode(re.ErrorCode))
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer in time: %w", keys.ErrUnavailable, context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %w", keys.ErrUnavailable, context.Canceled)
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		// url.Error's text holds the request URL: not passed on.
		return fmt.Errorf("%w: cannot reach the vault (network error)", keys.ErrUnavailable)
	}
	// What remains comes from the credential (or the challenge policy):
	// its text helps ("run az login") and holds no key, but is scrubbed
	// all the same.
	return fmt.Errorf("%w: cannot authenticate to the vault: %s", keys.ErrUnavailable, redact.Values(err.Error(), "[key]", key))
}

// safeCode keeps an error code only if it looks like one (letters and
// digits), so that no free text is passed on.
func safeCode(code string) string {
	if code == "" || len(code) > 64 {
		return "no code"
	}
	for _, c := range code {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "no code"
		}
	}
	return code
}

// PermissionError is a call the vault refused for want of a role or a
// valid token. It wraps ErrPermission. Its text names the role to grant
// and never the key.
type PermissionError struct {
	Op     string // what was being done, "read key records"
	Role   string // ReaderRole or WriterRole
	Status int    // 401 or 403
	Detail string
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("keyvault: the vault refused to let this identity %s (HTTP %d): %s; grant it the %s role on the vault",
		e.Op, e.Status, e.Detail, e.Role)
}

// Unwrap returns ErrPermission.
func (e *PermissionError) Unwrap() error { return ErrPermission }
