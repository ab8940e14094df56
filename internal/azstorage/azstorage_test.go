package azstorage_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/azstorage"
	"github.com/hexprox/hexprox/internal/azuritetest"
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

// CreateTable is idempotent against a real Table service, and ErrorCode
// reads the service's code through wrapping.
func TestCreateTableTwiceAndErrorCode(t *testing.T) {
	az := azuritetest.Start(t)
	svc, err := azstorage.NewServiceClient(config.Storage{ConnectionString: az.ConnectionString()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		if err := azstorage.CreateTable(ctx, svc, "twice"); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	_, err = svc.CreateTable(ctx, "twice", nil)
	if got := azstorage.ErrorCode(fmt.Errorf("wrapped: %w", err)); got != aztables.TableAlreadyExists {
		t.Fatalf("ErrorCode = %q of %v, want %q", got, err, aztables.TableAlreadyExists)
	}
	_, err = svc.NewClient("missing").GetEntity(ctx, "p", "r", nil)
	if got := azstorage.ErrorCode(err); got != aztables.TableNotFound {
		t.Fatalf("ErrorCode = %q of %v, want %q", got, err, aztables.TableNotFound)
	}
	if got := azstorage.ErrorCode(nil); got != "" {
		t.Fatalf("ErrorCode(nil) = %q", got)
	}
	if got := azstorage.ErrorCode(errors.New("TableNotFound")); got != "" {
		t.Fatalf("ErrorCode of a plain error = %q", got)
	}
}

// A failed request's error names the operation, the host and the cause,
// never the request URL, which carries a SAS's signature; wrapped by
// Safe, it is still what errors.Is and errors.As find.
func TestReasonNeverQuotesTheRequestURL(t *testing.T) {
	const sig = "SECRETSIGNATURE0123"
	raw := &url.Error{Op: "Get", URL: "https://acct.table.core.windows.net/hexproxtokens()?sv=2022-11-02&sig=" + sig,
		Err: fmt.Errorf("dial: %w", context.DeadlineExceeded)}
	for _, err := range []error{raw, fmt.Errorf("wrapped: %w", raw), errors.New("GET https://acct/t?sv=1&sig=" + sig + ": refused")} {
		safe := azstorage.Safe(err)
		if got := safe.Error(); strings.Contains(got, sig) {
			t.Errorf("Reason(%q) = %q", err, got)
		}
	}
	safe := azstorage.Safe(raw)
	if got, want := safe.Error(), "Get acct.table.core.windows.net: timed out"; got != want {
		t.Errorf("Reason = %q, want %q", got, want)
	}
	var ue *url.Error
	if !errors.Is(safe, context.DeadlineExceeded) || !errors.As(safe, &ue) {
		t.Error("Safe hides the error from errors.Is or errors.As")
	}
	if azstorage.Safe(nil) != nil {
		t.Error("Safe(nil) is not nil")
	}
}
