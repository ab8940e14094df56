// Package azuretable is the tokenstore.Store on Azure Table Storage (or
// Azurite): one entity per credential, optimistic concurrency with ETags.
package azuretable

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/tokenstore"
)

// DevelopmentEndpoint is Azurite's default table endpoint.
const DevelopmentEndpoint = "http://127.0.0.1:10002/devstoreaccount1"

// DevelopmentConnectionString returns the connection string of Azurite's
// well-known development account (published by Microsoft; not a secret) at
// tableEndpoint. With DevelopmentEndpoint it is what
// "UseDevelopmentStorage=true" stands for.
func DevelopmentConnectionString(tableEndpoint string) string {
	return "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
		"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
		"TableEndpoint=" + tableEndpoint + ";"
}

// rowKey is the one row each credential's partition holds.
const rowKey = "token"

// Settings say how to reach the table. Exactly one of ConnectionString and
// ServiceURL is set.
type Settings struct {
	ConnectionString string // account key or SAS connection string; secret
	ServiceURL       string // https://<account>.table.core.windows.net, with a token credential
	ClientID         string // user-assigned managed identity; "" for system-assigned
	ManagedIdentity  bool   // use the managed identity (else azidentity's default chain)
	Table            string
}

// Store is a tokenstore.Store on one table. It is safe for concurrent use.
type Store struct {
	svc   *aztables.ServiceClient
	table *aztables.Client
	name  string
}

// Open configures the client without any I/O; call EnsureTable to create
// the table. A missing table is also created on first use.
func Open(s Settings) (*Store, error) {
	opts := &aztables.ClientOptions{ClientOptions: policy.ClientOptions{
		// The token layer bounds each call and falls back to memory; a
		// long retry ladder here would only delay that.
		Retry: policy.RetryOptions{MaxRetries: 1, RetryDelay: 100 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond},
	}}
	var (
		svc *aztables.ServiceClient
		err error
	)
	switch {
	case s.ConnectionString != "":
		svc, err = aztables.NewServiceClientFromConnectionString(s.ConnectionString, opts)
	case s.ServiceURL != "":
		var cred azcore.TokenCredential
		if s.ManagedIdentity || s.ClientID != "" {
			mo := &azidentity.ManagedIdentityCredentialOptions{}
			if s.ClientID != "" {
				mo.ID = azidentity.ClientID(s.ClientID)
			}
			cred, err = azidentity.NewManagedIdentityCredential(mo)
		} else {
			cred, err = azidentity.NewDefaultAzureCredential(nil) // e.g. az login, on a developer's machine
		}
		if err == nil {
			svc, err = aztables.NewServiceClient(s.ServiceURL, cred, opts)
		}
	default:
		err = errors.New("no connection string or service URL")
	}
	if err != nil {
		// Connection-string parse errors can quote the string: keep them out.
		return nil, fmt.Errorf("azuretable: cannot configure the table client (%s)", safeReason(err))
	}
	return &Store{svc: svc, table: svc.NewClient(s.Table), name: s.Table}, nil
}

// EnsureTable creates the table if it does not exist.
func (s *Store) EnsureTable(ctx context.Context) error { return s.createTable(ctx) }

func safeReason(err error) string {
	msg := err.Error()
	if strings.Contains(strings.ToLower(msg), "accountkey") || len(msg) > 200 {
		return "check the connection string's format"
	}
	return msg
}

func (s *Store) createTable(ctx context.Context) error {
	_, err := s.svc.CreateTable(ctx, s.name, nil)
	if err == nil || code(err) == aztables.TableAlreadyExists {
		return nil
	}
	return fmt.Errorf("azuretable: create table %s: %w", s.name, err)
}

// entity is the stored row. Values are strings so that no OData type
// annotations are needed.
type entity struct {
	PartitionKey string
	RowKey       string
	Data         string `json:",omitempty"` // base64
	LeaseUntil   string `json:",omitempty"` // Unix milliseconds
	LeaseOwner   string `json:",omitempty"`
}

func encode(key string, e tokenstore.Entity) ([]byte, error) {
	row := entity{PartitionKey: key, RowKey: rowKey, LeaseOwner: e.LeaseOwner}
	if len(e.Data) > 0 {
		row.Data = base64.StdEncoding.EncodeToString(e.Data)
	}
	if !e.LeaseUntil.IsZero() {
		row.LeaseUntil = strconv.FormatInt(e.LeaseUntil.UnixMilli(), 10)
	}
	return json.Marshal(row)
}

// stored is a row as the service returns it: with the Timestamp it set.
type stored struct {
	entity
	Timestamp string
}

func decode(b []byte) (tokenstore.Entity, error) {
	var row stored
	if err := json.Unmarshal(b, &row); err != nil {
		return tokenstore.Entity{}, err
	}
	modified, err := time.Parse(time.RFC3339Nano, row.Timestamp)
	if err != nil {
		return tokenstore.Entity{}, err
	}
	e := tokenstore.Entity{LeaseOwner: row.LeaseOwner, Modified: modified}
	if row.Data != "" {
		d, err := base64.StdEncoding.DecodeString(row.Data)
		if err != nil {
			return tokenstore.Entity{}, err
		}
		e.Data = d
	}
	if row.LeaseUntil != "" {
		ms, err := strconv.ParseInt(row.LeaseUntil, 10, 64)
		if err != nil {
			return tokenstore.Entity{}, err
		}
		e.LeaseUntil = time.UnixMilli(ms)
	}
	return e, nil
}

// Get implements tokenstore.Store. Entity.Modified is the row's
// Timestamp, which the table service sets on every write. A row it
// cannot decode is tokenstore.ErrUnreadable, with the row's ETag.
func (s *Store) Get(ctx context.Context, key string) (tokenstore.Entity, tokenstore.ETag, error) {
	var resp aztables.GetEntityResponse
	err := s.retryMissingTable(ctx, func() (err error) {
		resp, err = s.table.GetEntity(ctx, key, rowKey, nil)
		return err
	})
	if err != nil {
		return tokenstore.Entity{}, "", mapErr(err)
	}
	e, err := decode(resp.Value)
	if err != nil {
		return tokenstore.Entity{}, tokenstore.ETag(resp.ETag), tokenstore.ErrUnreadable
	}
	return e, tokenstore.ETag(resp.ETag), nil
}

// Create implements tokenstore.Store.
func (s *Store) Create(ctx context.Context, key string, e tokenstore.Entity) (tokenstore.ETag, error) {
	b, err := encode(key, e)
	if err != nil {
		return "", err
	}
	var resp aztables.AddEntityResponse
	err = s.retryMissingTable(ctx, func() (err error) {
		resp, err = s.table.AddEntity(ctx, b, nil)
		return err
	})
	if err != nil {
		return "", mapErr(err)
	}
	return tokenstore.ETag(resp.ETag), nil
}

// Update implements tokenstore.Store.
func (s *Store) Update(ctx context.Context, key string, e tokenstore.Entity, ifMatch tokenstore.ETag) (tokenstore.ETag, error) {
	b, err := encode(key, e)
	if err != nil {
		return "", err
	}
	etag := azcore.ETag(ifMatch)
	resp, err := s.table.UpdateEntity(ctx, b, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		return "", mapErr(err)
	}
	return tokenstore.ETag(resp.ETag), nil
}

// retryMissingTable runs op, and once more after creating the table if it
// is gone (Azurite restarted in memory, or someone deleted it).
func (s *Store) retryMissingTable(ctx context.Context, op func() error) error {
	err := op()
	if code(err) != aztables.TableNotFound {
		return err
	}
	if cerr := s.createTable(ctx); cerr != nil {
		return err
	}
	return op()
}

func code(err error) aztables.TableErrorCode {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return aztables.TableErrorCode(re.ErrorCode)
	}
	return ""
}

func mapErr(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.ErrorCode == string(aztables.EntityAlreadyExists), re.ErrorCode == string(aztables.UpdateConditionNotSatisfied),
			re.StatusCode == http.StatusPreconditionFailed, re.StatusCode == http.StatusConflict && re.ErrorCode != string(aztables.TableBeingDeleted):
			return tokenstore.ErrConflict
		case re.ErrorCode == string(aztables.ResourceNotFound), re.StatusCode == http.StatusNotFound && re.ErrorCode != string(aztables.TableNotFound):
			return tokenstore.ErrNotFound
		}
		return fmt.Errorf("azuretable: %s (HTTP %d)", re.ErrorCode, re.StatusCode)
	}
	return fmt.Errorf("azuretable: %w", err)
}
