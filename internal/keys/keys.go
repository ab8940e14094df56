// Package keys is HexProx's per-organisation API keys: the key syntax, the
// record a key names (an organisation, its contact, one or more Hexagon
// credential sets, its origins, its lifecycle and limits), and the Store
// interface that Key Vault and a JSON file implement.
//
// A key is a bearer secret: it is never logged, never written into an error
// or a document other than the key holder's own addresses. Logs carry
// Fingerprint instead.
package keys

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
)

// SecretPrefix is the Key Vault secret name prefix of the original HexProx:
// the record of key K is the secret "credential-set-K".
const SecretPrefix = "credential-set-"

// MaxLen is the longest key accepted: Key Vault secret names are at most
// 127 characters, and the name is SecretPrefix plus the key.
const MaxLen = 127 - len(SecretPrefix)

// Errors a Store or a lookup returns. None of them carries the key.
var (
	ErrNotFound    = errors.New("keys: no such key")
	ErrExists      = errors.New("keys: the key exists already")
	ErrSyntax      = errors.New("keys: not a key (letters, digits and '-', at most 112 characters)")
	ErrUnavailable = errors.New("keys: the key store cannot be reached")
	// ErrBusy is returned (with ErrUnavailable) when lookups of keys not
	// in memory are over the cache's MissRate: try again shortly.
	ErrBusy = errors.New("keys: too many lookups of unknown keys")
)

// Record is what a key names.
type Record struct {
	Org     string
	Contact string
	Note    string
	// Sets are the credential sets the key's requests use; at least one.
	// For Hexagon (Provider ""), client ids and secrets; for another
	// provider, its sets (Credential.Provider set): static keys, logins
	// or OAuth2 clients, as its profile takes.
	Sets []credential.Credential
	// Provider names the upstream of every set: "" is Hexagon (the
	// original's records), else a profile of the server's catalog (a
	// built-in one, or the operator's: provider.Catalog).
	Provider string
	// Origins, when given, are the only browser origins the key serves,
	// in place of ALLOWED_ORIGINS, each written as an ALLOWED_ORIGINS entry
	// is (wildcards allowed); none means ALLOWED_ORIGINS.
	Origins []string

	// Lifecycle. A key serves only while Enabled, after NotBefore and
	// before Expires (zero times mean no bound).
	Enabled   bool
	NotBefore time.Time
	Expires   time.Time
	Created   time.Time // zero when the store does not know

	// Limits; zero means none (or the global default).
	Rate          float64 // requests per second per instance
	Burst         int
	DailyRequests int64 // across all instances, per UTC day

	// Redirect lets the key's desktop tiles and maps be answered with a
	// redirect to Hexagon, as credential URLs are. It gives the key holder
	// Hexagon's token, which keeps working without the proxy (no limits,
	// no counting, after the key is revoked) for as long as Hexagon renews
	// it for anyone using the credential set; so it is off unless an
	// operator trusts the organisation with that. Off, everything the key
	// serves goes through the proxy.
	Redirect bool

	// Endpoint is the family of Hexagon's services the key's requests
	// go to: Streaming (the default) or Orders, the batch endpoints for
	// bulk and machine-learning downloads, with a lower rate limit.
	Endpoint Endpoint

	// Replaces and ReplacedBy link a rotated key and its successor, by
	// key prefix (as `keys list` shows it); "" when there is none.
	Replaces, ReplacedBy string
}

// Endpoint is a family of Hexagon's WMTS and WMS services.
type Endpoint uint8

const (
	Streaming Endpoint = iota // /streaming/wmts and /streaming/wms: interactive use
	Orders                    // /orders/wmts and /orders/wms: bulk and ML loads, 429s to respect
)

// String is the endpoint's name in records and on the command line.
func (e Endpoint) String() string {
	if e == Orders {
		return "orders"
	}
	return "streaming"
}

// ParseEndpoint reads an endpoint's name, in any case; "" is Streaming.
func ParseEndpoint(s string) (Endpoint, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "streaming":
		return Streaming, nil
	case "orders":
		return Orders, nil
	}
	return Streaming, errors.New(`keys: an endpoint is "streaming" or "orders"`)
}

// Entry is a key and its record, as List returns them.
type Entry struct {
	Key    string
	Record Record
}

// Store keeps key records. Implementations: Key Vault (the original
// HexProx's layout) and a JSON file. They must be safe for concurrent use.
//
// Keys are case-insensitive, as Key Vault's secret names are: a store
// finds a record by any spelling of its key (callers use Canonical).
//
// Get returns a record whatever its lifecycle state (disabled, expired,
// not yet valid), so that callers can say why a key does not serve; a
// store that cannot read a disabled record returns it with Enabled false
// and no Sets.
type Store interface {
	Get(ctx context.Context, key string) (Record, error)    // ErrNotFound
	Create(ctx context.Context, key string, r Record) error // ErrExists
	Update(ctx context.Context, key string, r Record) error // ErrNotFound; replaces the whole record
	List(ctx context.Context) ([]Entry, error)
}

// Attrs are what a store can say of a key without reading its record:
// whether it serves, and a version that changes whenever its record or
// attributes do.
type Attrs struct {
	Enabled            bool
	NotBefore, Expires time.Time // zero: no bound
	Version            string
}

// record is a record with these attributes' lifecycle, and contact, for
// Record.Status and its refusal.
func (a Attrs) record(contact string) Record {
	return Record{Enabled: a.Enabled, NotBefore: a.NotBefore, Expires: a.Expires, Contact: contact}
}

// Lister is implemented by stores that can list every key's attributes
// cheaply (Key Vault: 25 keys a request, no values; the file store: from
// memory, rereading the file when it changed). A cache that lists them
// every few seconds (Cache.Watch) learns of a revocation, expiry,
// deletion, change or new key within that time, whatever tool made it.
type Lister interface {
	// Listing returns every key's attributes, by canonical key.
	Listing(ctx context.Context) (map[string]Attrs, error)
}

// URLs are a key's addresses on the proxy.
type URLs struct {
	WMTS, WMS, About string
}

// AddressesOf returns the WMTS capabilities, WMS and about addresses of key
// under base (the proxy's public base URL, no trailing slash): what the
// keys CLI hands an organisation and its about page shows. Keys are
// [0-9A-Za-z-], which need no escaping.
func AddressesOf(base, key string) URLs {
	return URLs{
		WMTS:  base + "/v2/wmts/" + key + "/1.0.0/WMTSCapabilities.xml",
		WMS:   base + "/v2/wms/" + key,
		About: base + "/about/" + key,
	}
}
