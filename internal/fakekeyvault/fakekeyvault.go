// Package fakekeyvault is a fake Azure Key Vault for tests: an HTTPS server
// that speaks the part of the Key Vault secrets REST API that the azsecrets
// client uses, with Key Vault's own behaviour where tests depend on it.
//
// What it does as Key Vault does:
//
//   - Authentication: a request without a bearer token gets 401 with Key
//     Vault's challenge, WWW-Authenticate: Bearer
//     authorization="https://login.microsoftonline.com/{tenant}",
//     resource="https://vault.azure.net"; azsecrets then asks its credential
//     for a token for "https://vault.azure.net/.default" and sends the
//     request again. A token other than the accepted one gets 401 too.
//   - Secrets: get the latest version (GET /secrets/{name}/ or
//     /secrets/{name}), get a version, set (PUT /secrets/{name}, a new version
//     each time), update properties (PATCH /secrets/{name}/{version}; attributes
//     not given are kept, explicit nulls clear exp/nbf, tags given replace all
//     tags), list (GET /secrets, paged through nextLink), list versions,
//     delete (soft: the name stays taken until purged) and purge.
//   - Lifecycle: getting a disabled secret is refused with 403, code
//     Forbidden, inner code SecretDisabled; exp and nbf are not enforced on
//     get, as Key Vault documents ("a secret's get operation will work for
//     not-yet-valid and expired secrets"): they are returned as attributes.
//   - Errors in Key Vault's shape, {"error": {"code", "message",
//     "innererror"}}; SecretNotFound names the secret, as Key Vault's does.
//   - api-version is required on every request.
//
// The server's certificate is valid for 127.0.0.1 and *.vault.azure.net;
// Client's transport trusts it and sends every host to this server, so a
// vault URL like https://hexprox-test.vault.azure.net works with the
// challenge's resource verification left on (see VaultURL).
//
// Knobs: RequireToken, Deny (missing role), Fail (an HTTP status), Hang,
// Drop (connection closed: "vault down"), Challenges and Requests counts.
// All methods are safe for concurrent use.
package fakekeyvault

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Token is the bearer token the server accepts unless RequireToken says
// otherwise; Credential hands it out.
const Token = "fake-key-vault-token"

// Tenant is the tenant named in the challenge.
const Tenant = "00000000-0000-0000-0000-0000000000fa"

// Resource is the challenge's resource, as real Key Vault names it.
const Resource = "https://vault.azure.net"

// DefaultPageSize is how many secrets one list page holds (Key Vault's
// maximum for maxresults is 25).
const DefaultPageSize = 25

// MaxValueBytes is Key Vault's limit on a secret value.
const MaxValueBytes = 25 * 1024

// Op is an operation, for Deny.
type Op string

// Operations, named after Key Vault's data actions.
const (
	OpGet    Op = "getSecret"
	OpSet    Op = "setSecret"
	OpUpdate Op = "update"
	OpList   Op = "readMetadata"
	OpDelete Op = "delete"
)

// Attributes are a secret version's Key Vault attributes. Zero times mean
// unset.
type Attributes struct {
	Enabled   bool
	NotBefore time.Time
	Expires   time.Time
	Created   time.Time // set by the server
	Updated   time.Time // set by the server
}

// Secret is one version of a secret, as Secret returns it.
type Secret struct {
	Name        string
	Version     string
	Value       string
	ContentType string
	Tags        map[string]string
	Attributes  Attributes
}

type version struct {
	id          string
	value       string
	contentType string
	tags        map[string]string
	attrs       Attributes
}

type secret struct {
	versions []*version // in creation order; the last is the latest
	deleted  bool
}

func (s *secret) latest() *version { return s.versions[len(s.versions)-1] }

func (s *secret) version(id string) *version {
	if id == "" {
		return s.latest()
	}
	for _, v := range s.versions {
		if v.id == id {
			return v
		}
	}
	return nil
}

// Server is a running fake vault. Create it with New; Close it when done.
type Server struct {
	srv    *httptest.Server
	client *http.Client

	mu         sync.Mutex
	secrets    map[string]*secret
	token      string
	denied     map[Op]bool
	failStatus int
	drop       bool
	hang       bool
	hangCh     chan struct{} // closed when hanging stops
	closed     chan struct{}
	now        func() time.Time
	pageSize   int
	seq        int
	challenges int
	total      int
	bySecret   map[string]int
	spelling   map[string]string // lower-case name → the spelling it was made with
	lists      int
	apiVersion string
}

// New starts a fake vault on 127.0.0.1 with TLS.
func New() *Server {
	s := &Server{
		secrets:  map[string]*secret{},
		token:    Token,
		denied:   map[Op]bool{},
		bySecret: map[string]int{},
		spelling: map[string]string{},
		now:      time.Now,
		pageSize: DefaultPageSize,
		closed:   make(chan struct{}),
		hangCh:   make(chan struct{}),
	}
	close(s.hangCh)
	cert, pool := newCert()
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	addr := s.srv.Listener.Addr().String()
	var d net.Dialer
	s.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: true,
	}}
	return s
}

// newCert makes a self-signed certificate for 127.0.0.1 and
// *.vault.azure.net, and a pool that trusts it.
func newCert() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake key vault"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"*.vault.azure.net", "localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// URL is the server's own address, https://127.0.0.1:port. A client using
// it needs azsecrets' DisableChallengeResourceVerification, since the
// challenge names vault.azure.net.
func (s *Server) URL() string { return s.srv.URL }

// VaultURL is a Key Vault-style address, https://hexprox-test.vault.azure.net,
// that Client's transport sends to this server: with it the azsecrets client
// runs exactly as against Azure, resource verification included.
func (s *Server) VaultURL() string { return "https://hexprox-test.vault.azure.net" }

// Client is an HTTP client that trusts the server's certificate and sends
// every request to the server, whatever its host. It implements
// policy.Transporter, for azcore.ClientOptions.Transport.
func (s *Server) Client() *http.Client { return s.client }

// Close stops the server, releasing any hanging requests first.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return
	default:
	}
	close(s.closed)
	s.mu.Unlock()
	s.srv.Close()
}

// Credential returns a token credential that hands out Token; it counts
// its calls and checks the scope azsecrets asks for.
func (s *Server) Credential() *Credential { return &Credential{Token: Token} }

// Credential is an azcore.TokenCredential returning a fixed token. It
// fails when asked for a scope other than Key Vault's. Safe for concurrent
// use.
type Credential struct {
	Token string

	mu     sync.Mutex
	calls  int
	tenant string
}

// GetToken implements azcore.TokenCredential.
func (c *Credential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.tenant = o.TenantID
	if len(o.Scopes) != 1 || o.Scopes[0] != Resource+"/.default" {
		return azcore.AccessToken{}, fmt.Errorf("fakekeyvault: credential asked for scopes %q, want %q", o.Scopes, Resource+"/.default")
	}
	return azcore.AccessToken{Token: c.Token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Calls is how many tokens were asked for.
func (c *Credential) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// TenantID is the tenant of the last token request (taken by azsecrets
// from the challenge).
func (c *Credential) TenantID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tenant
}

// RequireToken sets the bearer token the server accepts (default Token).
func (s *Server) RequireToken(tok string) {
	s.mu.Lock()
	s.token = tok
	s.mu.Unlock()
}

// Deny makes the server refuse the operations with 403 ForbiddenByRbac, as
// Key Vault does when the caller lacks the role; Deny() allows all again.
func (s *Server) Deny(ops ...Op) {
	s.mu.Lock()
	s.denied = map[Op]bool{}
	for _, op := range ops {
		s.denied[op] = true
	}
	s.mu.Unlock()
}

// Fail makes every request, challenge included, answer status (503, 429,
// 500...) in Key Vault's error shape; 0 restores normal service.
func (s *Server) Fail(status int) {
	s.mu.Lock()
	s.failStatus = status
	s.mu.Unlock()
}

// Drop makes the server close every connection without an answer, as a
// vault that is down or unreachable looks; Drop(false) restores it.
func (s *Server) Drop(on bool) {
	s.mu.Lock()
	s.drop = on
	s.mu.Unlock()
}

// Hang makes requests wait without an answer until their client gives up,
// Hang(false) is called, or the server closes.
func (s *Server) Hang(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on == s.hang {
		return
	}
	s.hang = on
	if on {
		s.hangCh = make(chan struct{})
	} else {
		close(s.hangCh)
	}
}

// SetPageSize sets how many secrets a list page holds at most (default 25).
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	s.pageSize = max(n, 1)
	s.mu.Unlock()
}

// Challenges is how many requests were answered with the bearer challenge
// (no token or a wrong one).
func (s *Server) Challenges() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.challenges
}

// Requests is how many authorised requests named the secret (get, set,
// update, versions, delete); challenges are not counted.
func (s *Server) Requests(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySecret[strings.ToLower(name)]
}

// Lists is how many authorised list pages (GET /secrets) were served.
func (s *Server) Lists() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// Total is how many HTTP requests reached the server, refused ones included.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// APIVersion is the api-version of the last request.
func (s *Server) APIVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apiVersion
}

// Set stores a new version of the secret, as PUT does, and returns the
// version id. Tests use it to seed records, in the original HexProx's exact
// JSON for instance. attrs.Created and Updated are stamped by the server.
func (s *Server) Set(name, value, contentType string, tags map[string]string, attrs Attributes) string {
	s.mu.Lock()
	if _, ok := s.spelling[strings.ToLower(name)]; !ok {
		s.spelling[strings.ToLower(name)] = name
	}
	s.mu.Unlock()
	name = strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(name, value, contentType, tags, attrs).id
}

// Put stores an enabled secret with no attributes, tags or content type.
func (s *Server) Put(name, value string) string {
	return s.Set(name, value, "", nil, Attributes{Enabled: true})
}

// Secret returns the latest version of a secret (ok false when there is
// none or it is deleted).
func (s *Server) Secret(name string) (Secret, bool) {
	name = strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[name]
	if sec == nil || sec.deleted {
		return Secret{}, false
	}
	v := sec.latest()
	return Secret{Name: name, Version: v.id, Value: v.value, ContentType: v.contentType,
		Tags: copyTags(v.tags), Attributes: v.attrs}, true
}

// Versions is how many versions a secret has (0 when none).
func (s *Server) Versions(name string) int {
	name = strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.secrets[name]; sec != nil {
		return len(sec.versions)
	}
	return 0
}

// Update changes the latest version's attributes, as PATCH does.
func (s *Server) Update(name string, change func(*Attributes)) bool {
	name = strings.ToLower(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[name]
	if sec == nil || sec.deleted {
		return false
	}
	v := sec.latest()
	change(&v.attrs)
	v.attrs.Updated = s.now().Truncate(time.Second)
	return true
}

func (s *Server) putLocked(name, value, contentType string, tags map[string]string, attrs Attributes) *version {
	sec := s.secrets[name]
	if sec == nil {
		sec = &secret{}
		s.secrets[name] = sec
	}
	s.seq++
	now := s.now().Truncate(time.Second)
	attrs.Created, attrs.Updated = now, now
	id := fmt.Sprintf("%016x%016x", s.seq, now.UnixNano())
	v := &version{id: id, value: value, contentType: contentType, tags: copyTags(tags), attrs: attrs}
	sec.versions = append(sec.versions, v)
	return v
}

func copyTags(t map[string]string) map[string]string {
	if t == nil {
		return nil
	}
	c := make(map[string]string, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

// --- HTTP ---

var (
	nameRE       = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	apiVersionRE = regexp.MustCompile(`^(\d+\.\d+|\d{4}-\d{2}-\d{2})(-preview(\.\d+)?)?$`)
)

type kvError struct {
	Error kvErrorBody `json:"error"`
}

type kvErrorBody struct {
	Code       string       `json:"code"`
	Message    string       `json:"message"`
	InnerError *kvInnerCode `json:"innererror,omitempty"`
}

type kvInnerCode struct {
	Code string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, code, inner, msg string) {
	b := kvErrorBody{Code: code, Message: msg}
	if inner != "" {
		b.InnerError = &kvInnerCode{Code: inner}
	}
	writeJSON(w, status, kvError{Error: b})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-keyvault-service-version", "1.9.0.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.total++
	drop, hang, hangCh, fail := s.drop, s.hang, s.hangCh, s.failStatus
	s.mu.Unlock()

	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if hang {
		select {
		case <-r.Context().Done():
		case <-hangCh:
		case <-s.closed:
		}
		if r.Context().Err() != nil {
			return
		}
	}
	if fail != 0 {
		if fail == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, fail, "Throttled", "", http.StatusText(fail))
		return
	}

	v := r.URL.Query().Get("api-version")
	if !apiVersionRE.MatchString(v) {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The request URI contains an invalid or missing api-version.")
		return
	}

	if !s.authorised(w, r) {
		return
	}
	s.mu.Lock()
	s.apiVersion = v
	s.mu.Unlock()

	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	switch {
	case path == "secrets" && r.Method == http.MethodGet:
		s.list(w, r)
	case len(parts) == 2 && parts[0] == "deletedsecrets" && r.Method == http.MethodDelete:
		s.purge(w, strings.ToLower(parts[1]))
	case len(parts) >= 2 && parts[0] == "secrets":
		// Key Vault's object names are case-insensitive: any spelling
		// reaches the secret, which keeps the spelling it was made with.
		name := strings.ToLower(parts[1])
		if !nameRE.MatchString(name) {
			writeError(w, http.StatusBadRequest, "BadParameter", "", "The secret name is not valid: it must be 1-127 letters, digits and dashes.")
			return
		}
		s.mu.Lock()
		s.bySecret[name]++
		if _, ok := s.spelling[name]; !ok && r.Method == http.MethodPut {
			s.spelling[name] = parts[1]
		}
		s.mu.Unlock()
		ver := ""
		if len(parts) >= 3 {
			ver = parts[2]
		}
		switch {
		case len(parts) == 3 && ver == "versions" && r.Method == http.MethodGet:
			s.versions(w, r, name)
		case len(parts) <= 3 && r.Method == http.MethodGet:
			s.get(w, r, name, ver)
		case len(parts) <= 3 && r.Method == http.MethodPatch:
			s.update(w, r, name, ver)
		case len(parts) == 2 && r.Method == http.MethodPut:
			s.set(w, r, name)
		case len(parts) == 2 && r.Method == http.MethodDelete:
			s.delete(w, r, name)
		default:
			writeError(w, http.StatusMethodNotAllowed, "BadRequest", "", "The method is not allowed on this resource.")
		}
	default:
		writeError(w, http.StatusNotFound, "NotFound", "", "The requested resource is not found.")
	}
}

// authorised answers the bearer challenge unless the request carries the
// accepted token.
func (s *Server) authorised(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	want := s.token
	s.mu.Unlock()
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && got == want {
		return true
	}
	s.mu.Lock()
	s.challenges++
	s.mu.Unlock()
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://login.microsoftonline.com/%s", resource="%s"`, Tenant, Resource))
	msg := "AKV10000: Request is missing a Bearer or PoP token."
	if ok {
		msg = "AKV10032: Invalid issuer. Expected one of the trusted issuers for this vault."
	}
	writeError(w, http.StatusUnauthorized, "Unauthorized", "", msg)
	return false
}

func (s *Server) deny(w http.ResponseWriter, op Op) bool {
	s.mu.Lock()
	d := s.denied[op]
	s.mu.Unlock()
	if !d {
		return false
	}
	writeError(w, http.StatusForbidden, "Forbidden", "ForbiddenByRbac",
		fmt.Sprintf("Caller is not authorized to perform action on resource.\r\nAction: 'Microsoft.KeyVault/vaults/secrets/%s/action'\r\nAssignment: (not found)", op))
	return true
}

func (s *Server) baseURL(r *http.Request) string { return "https://" + r.Host }

// bundle is a secret in Key Vault's JSON.
type bundle struct {
	Value       *string           `json:"value,omitempty"`
	ID          string            `json:"id"`
	ContentType string            `json:"contentType,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Attributes  attrJSON          `json:"attributes"`
}

type attrJSON struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

func unixPtr(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func toAttrJSON(a Attributes) attrJSON {
	return attrJSON{Enabled: a.Enabled, NotBefore: unixPtr(a.NotBefore), Expires: unixPtr(a.Expires),
		Created: a.Created.Unix(), Updated: a.Updated.Unix(), RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90}
}

func (s *Server) toBundle(r *http.Request, name string, v *version, withValue, withVersion bool) bundle {
	b := bundle{ID: s.baseURL(r) + "/secrets/" + name, ContentType: v.contentType, Tags: v.tags, Attributes: toAttrJSON(v.attrs)}
	if withVersion {
		b.ID += "/" + v.id
	}
	if withValue {
		val := v.value
		b.Value = &val
	}
	return b
}

func notFound(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotFound, "SecretNotFound", "",
		fmt.Sprintf("A secret with (name/id) %s was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.", what))
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, name, ver string) {
	if s.deny(w, OpGet) {
		return
	}
	s.mu.Lock()
	sec := s.secrets[name]
	var v *version
	if sec != nil && !sec.deleted {
		v = sec.version(ver)
	}
	var b bundle
	if v != nil && v.attrs.Enabled {
		b = s.toBundle(r, name, v, true, true)
	}
	s.mu.Unlock()
	switch {
	case v == nil:
		notFound(w, strings.TrimSuffix(name+"/"+ver, "/"))
	case !v.attrs.Enabled:
		writeError(w, http.StatusForbidden, "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.")
	default:
		writeJSON(w, http.StatusOK, b)
	}
}

type setBody struct {
	Value       *string           `json:"value"`
	ContentType string            `json:"contentType"`
	Tags        map[string]string `json:"tags"`
	Attributes  map[string]any    `json:"attributes"`
}

// applyAttrs applies the attributes of a request body; explicit nulls
// clear exp and nbf.
func applyAttrs(a *Attributes, raw map[string]any) error {
	for k, val := range raw {
		switch k {
		case "enabled":
			b, ok := val.(bool)
			if !ok {
				return fmt.Errorf("attributes.enabled must be a boolean")
			}
			a.Enabled = b
		case "exp", "nbf":
			var t time.Time
			if val != nil {
				f, ok := val.(float64)
				if !ok {
					return fmt.Errorf("attributes.%s must be a number of seconds", k)
				}
				t = time.Unix(int64(f), 0).UTC()
			}
			if k == "exp" {
				a.Expires = t
			} else {
				a.NotBefore = t
			}
		}
	}
	return nil
}

func (s *Server) set(w http.ResponseWriter, r *http.Request, name string) {
	if s.deny(w, OpSet) {
		return
	}
	var body setBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4*MaxValueBytes)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The request body is not valid JSON.")
		return
	}
	if body.Value == nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "Property value is required.")
		return
	}
	if len(*body.Value) > MaxValueBytes {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The secret value is larger than 25 KB.")
		return
	}
	if len(body.Tags) > 15 {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "A secret can have at most 15 tags.")
		return
	}
	attrs := Attributes{Enabled: true}
	if err := applyAttrs(&attrs, body.Attributes); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", err.Error())
		return
	}
	s.mu.Lock()
	if sec := s.secrets[name]; sec != nil && sec.deleted {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable",
			fmt.Sprintf("Secret %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.", name))
		return
	}
	v := s.putLocked(name, *body.Value, body.ContentType, body.Tags, attrs)
	b := s.toBundle(r, name, v, true, true)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) update(w http.ResponseWriter, r *http.Request, name, ver string) {
	if s.deny(w, OpUpdate) {
		return
	}
	var body struct {
		ContentType *string           `json:"contentType"`
		Tags        map[string]string `json:"tags"`
		Attributes  map[string]any    `json:"attributes"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxValueBytes)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "BadParameter", "", "The request body is not valid JSON.")
		return
	}
	s.mu.Lock()
	sec := s.secrets[name]
	var v *version
	if sec != nil && !sec.deleted {
		v = sec.version(ver)
	}
	if v == nil {
		s.mu.Unlock()
		notFound(w, strings.TrimSuffix(name+"/"+ver, "/"))
		return
	}
	next := v.attrs
	if err := applyAttrs(&next, body.Attributes); err != nil {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "BadParameter", "", err.Error())
		return
	}
	v.attrs = next
	if body.ContentType != nil {
		v.contentType = *body.ContentType
	}
	if body.Tags != nil {
		v.tags = copyTags(body.Tags)
	}
	v.attrs.Updated = s.now().Truncate(time.Second)
	b := s.toBundle(r, name, v, false, true)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, name string) {
	if s.deny(w, OpDelete) {
		return
	}
	s.mu.Lock()
	sec := s.secrets[name]
	if sec == nil || sec.deleted {
		s.mu.Unlock()
		notFound(w, name)
		return
	}
	sec.deleted = true
	v := sec.latest()
	b := s.toBundle(r, name, v, false, true)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) purge(w http.ResponseWriter, name string) {
	if s.deny(w, OpDelete) {
		return
	}
	s.mu.Lock()
	sec := s.secrets[name]
	if sec == nil || !sec.deleted {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "SecretNotFound", "", fmt.Sprintf("Deleted Secret not found: %s", name))
		return
	}
	delete(s.secrets, name)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

type listPage struct {
	Value    []bundle `json:"value"`
	NextLink *string  `json:"nextLink"`
}

// page serves one page of items from the position in $skiptoken.
func (s *Server) page(w http.ResponseWriter, r *http.Request, items []bundle) {
	s.mu.Lock()
	size := s.pageSize // SetPageSize may run beside a list
	s.mu.Unlock()
	if m, err := strconv.Atoi(r.URL.Query().Get("maxresults")); err == nil && m > 0 {
		if m > 25 {
			writeError(w, http.StatusBadRequest, "BadParameter", "", "maxresults must be between 1 and 25.")
			return
		}
		size = min(size, m)
	}
	start := 0
	if tok := r.URL.Query().Get("$skiptoken"); tok != "" {
		b, err := hex.DecodeString(tok)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 || n > len(items) {
			writeError(w, http.StatusBadRequest, "BadParameter", "", "The skip token is not valid.")
			return
		}
		start = n
	}
	end := min(start+size, len(items))
	p := listPage{Value: items[start:end]}
	if p.Value == nil {
		p.Value = []bundle{}
	}
	if end < len(items) {
		q := url.Values{}
		q.Set("api-version", r.URL.Query().Get("api-version"))
		q.Set("$skiptoken", hex.EncodeToString([]byte(strconv.Itoa(end))))
		if m := r.URL.Query().Get("maxresults"); m != "" {
			q.Set("maxresults", m)
		}
		next := s.baseURL(r) + r.URL.Path + "?" + q.Encode()
		p.NextLink = &next
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.deny(w, OpList) {
		return
	}
	s.mu.Lock()
	s.lists++
	names := make([]string, 0, len(s.secrets))
	for n, sec := range s.secrets {
		if !sec.deleted {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	items := make([]bundle, 0, len(names))
	for _, n := range names {
		shown := n
		if sp, ok := s.spelling[n]; ok {
			shown = sp
		}
		items = append(items, s.toBundle(r, shown, s.secrets[n].latest(), false, false))
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

func (s *Server) versions(w http.ResponseWriter, r *http.Request, name string) {
	if s.deny(w, OpList) {
		return
	}
	s.mu.Lock()
	sec := s.secrets[name]
	if sec == nil || sec.deleted {
		s.mu.Unlock()
		notFound(w, name)
		return
	}
	items := make([]bundle, 0, len(sec.versions))
	for _, v := range sec.versions {
		items = append(items, s.toBundle(r, name, v, false, true))
	}
	s.mu.Unlock()
	s.page(w, r, items)
}
