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
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/tokenstore"
)

// rowKey is the one row each credential's partition holds.
const rowKey = "token"

// Store is a tokenstore.Store on one table. It is safe for concurrent use.
type Store struct {
	svc   *aztables.ServiceClient
	table *aztables.Client
	name  string
}

// New returns the store on table, without any I/O (azstorage makes the
// service client); call EnsureTable to create the table. A missing table
// is also created on first use.
func New(svc *aztables.ServiceClient, table string) *Store {
	return &Store{svc: svc, table: svc.NewClient(table), name: table}
}

// EnsureTable creates the table if it does not exist.
func (s *Store) EnsureTable(ctx context.Context) error { return s.createTable(ctx) }

func (s *Store) createTable(ctx context.Context) error {
	if err := azstorage.CreateTable(ctx, s.svc, s.name); err != nil {
		return fmt.Errorf("azuretable: create table %s: %w", s.name, azstorage.Safe(err))
	}
	return nil
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
	if azstorage.ErrorCode(err) != aztables.TableNotFound {
		return err
	}
	if cerr := s.createTable(ctx); cerr != nil {
		return err
	}
	return op()
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
	return fmt.Errorf("azuretable: %w", azstorage.Safe(err))
}
