package azstorage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/config"
)

func TestNewServiceClientDoesNotLeakConnectionString(t *testing.T) {
	for _, conn := range []string{
		"AccountName=x;AccountKey=SUPERSECRETKEY;garbage",
		"AccountName=x;AccountKey=SUPERSECRETKEY",
		"AccountKey=SUPERSECRETKEY;TableEndpoint=http://x",
	} {
		_, err := azstorage.NewServiceClient(config.Storage{ConnectionString: conn})
		if err == nil {
			t.Fatalf("accepted a malformed connection string %q", conn)
		}
		if strings.Contains(err.Error(), "SUPERSECRETKEY") {
			t.Fatalf("error quotes the key: %v", err)
		}
	}
}

func TestDevelopmentStorage(t *testing.T) {
	svc, err := azstorage.NewServiceClient(config.Storage{ConnectionString: "UseDevelopmentStorage=true"})
	if err != nil {
		t.Fatal(err)
	}
	// Either a local Azurite answers, or the refusal names where it went.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = svc.CreateTable(ctx, "probe", nil)
	if err != nil && !strings.Contains(err.Error(), "127.0.0.1:10002") {
		t.Fatalf("UseDevelopmentStorage=true should mean Azurite at 127.0.0.1:10002, got %v", err)
	}
	if _, err := azstorage.NewServiceClient(config.Storage{}); err == nil {
		t.Fatal("no settings accepted")
	}
}
