package azuretable_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/azuritetest"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/tokenstore"
	"github.com/hexprox/hexprox/internal/tokenstore/azuretable"
	"github.com/hexprox/hexprox/internal/tokenstore/storetest"
)

func TestTableConformance(t *testing.T) {
	az := azuritetest.Start(t)
	s, err := open(t, az, "conformance")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	storetest.Run(t, s)
}

func TestTableRecreatedAfterRestart(t *testing.T) {
	az := azuritetest.Start(t)
	ctx := context.Background()
	s, err := open(t, az, "restarts")
	if err != nil {
		t.Fatal(err)
	}
	key := storetest.Key()
	if _, err := s.Create(ctx, key, tokenstore.Entity{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	az.Stop()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, _, err = s.Get(short, key)
	cancel()
	if err == nil || errors.Is(err, tokenstore.ErrNotFound) || errors.Is(err, tokenstore.ErrConflict) {
		t.Fatalf("an unreachable table must be an error of its own, got %v", err)
	}
	az.Restart() // empty: the table is gone
	if _, _, err := s.Get(ctx, key); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("after a restart: want ErrNotFound (table recreated), got %v", err)
	}
	if _, err := s.Create(ctx, key, tokenstore.Entity{Data: []byte("y")}); err != nil {
		t.Fatalf("create after restart: %v", err)
	}
}

func TestTableUnreadableRowIsAnErrorWithItsETag(t *testing.T) {
	az := azuritetest.Start(t)
	ctx := context.Background()
	s, err := open(t, az, "unreadable")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	// Something else wrote the row: a lease that is not a number.
	svc, err := aztables.NewServiceClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := storetest.Key()
	if _, err := svc.NewClient("unreadable").AddEntity(ctx, []byte(`{"PartitionKey":"`+key+`","RowKey":"token","LeaseUntil":"soon"}`), nil); err != nil {
		t.Fatal(err)
	}
	ent, tag, err := s.Get(ctx, key)
	if !errors.Is(err, tokenstore.ErrUnreadable) || tag == "" || ent.Data != nil {
		t.Fatalf("want ErrUnreadable with an ETag and no data, got %+v %q %v", ent, tag, err)
	}
	if _, err := s.Update(ctx, key, tokenstore.Entity{Data: []byte("fixed")}, tag); err != nil {
		t.Fatalf("the unreadable row must be replaceable at its ETag: %v", err)
	}
	if ent, _, err := s.Get(ctx, key); err != nil || string(ent.Data) != "fixed" {
		t.Fatalf("after the repair: %+v %v", ent, err)
	}
}

func open(t *testing.T, az *azuritetest.Azurite, table string) (*azuretable.Store, error) {
	t.Helper()
	svc, err := azstorage.NewServiceClient(config.Storage{ConnectionString: az.ConnectionString()})
	if err != nil {
		return nil, err
	}
	return azuretable.New(svc, table), nil
}
