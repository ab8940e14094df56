// Package azstorage connects to the Azure Storage account's Table service
// that HexProx's tables (shared tokens, usage) live in, from the settings
// config gathers: a connection string, or a service URL with a managed
// identity or the developer's own login.
package azstorage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/hexprox/hexprox/internal/config"
)

// DevelopmentEndpoint is Azurite's default table endpoint.
const DevelopmentEndpoint = "http://127.0.0.1:10002/devstoreaccount1"

// DevelopmentConnectionString returns the connection string of Azurite's
// well-known development account (published by Microsoft; not a secret)
// at tableEndpoint. With DevelopmentEndpoint it is what
// "UseDevelopmentStorage=true" stands for, which aztables cannot parse.
func DevelopmentConnectionString(tableEndpoint string) string {
	return "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
		"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
		"TableEndpoint=" + tableEndpoint + ";"
}

// NewServiceClient configures the Table service client without any I/O.
// Its retries are short: every caller bounds its calls and has a fallback
// (memory, a later flush), which a long retry ladder would only delay.
// Errors never quote the connection string.
func NewServiceClient(s config.Storage) (*aztables.ServiceClient, error) {
	opts := &aztables.ClientOptions{ClientOptions: policy.ClientOptions{
		Retry: policy.RetryOptions{MaxRetries: 1, RetryDelay: 100 * time.Millisecond, MaxRetryDelay: 500 * time.Millisecond},
	}}
	var (
		svc *aztables.ServiceClient
		err error
	)
	switch conn := s.ConnectionString; {
	case conn != "":
		if strings.EqualFold(strings.ReplaceAll(conn, " ", ""), "UseDevelopmentStorage=true") {
			conn = DevelopmentConnectionString(DevelopmentEndpoint)
		}
		svc, err = aztables.NewServiceClientFromConnectionString(conn, opts)
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
		return nil, fmt.Errorf("azstorage: cannot configure the table client (%s)", safeReason(err))
	}
	return svc, nil
}

// safeReason keeps a connection-string parse error's text out when it
// could quote the string.
func safeReason(err error) string {
	msg := err.Error()
	if strings.Contains(strings.ToLower(msg), "accountkey") || len(msg) > 200 {
		return "check the connection string's format"
	}
	return msg
}

// Reason is err's short form for messages and logs, which never quotes a
// request URL (it may carry a SAS signature): the service's error code
// and status for its answers, the operation, host and cause for a failed
// request, else the text (unless it could quote a signature or a key).
func Reason(err error) string {
	var re *azcore.ResponseError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		return fmt.Sprintf("%s (HTTP %d)", re.ErrorCode, re.StatusCode)
	case errors.As(err, &ue):
		host := "storage"
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
		return ue.Op + " " + host + ": " + Reason(ue.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	msg := err.Error()
	if low := strings.ToLower(msg); strings.Contains(low, "sig=") || strings.Contains(low, "accountkey") || len(msg) > 300 {
		return "storage unreachable"
	}
	return msg
}

// Safe wraps err so that its text is Reason's, while errors.Is and
// errors.As still see err. nil stays nil.
func Safe(err error) error {
	if err == nil {
		return nil
	}
	return safeError{err}
}

type safeError struct{ err error }

func (e safeError) Error() string { return Reason(e.err) }
func (e safeError) Unwrap() error { return e.err }

// ErrorCode returns the Table service's error code carried by err (an
// *azcore.ResponseError anywhere in its chain), or "" for any other
// error and for nil.
func ErrorCode(err error) aztables.TableErrorCode {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return aztables.TableErrorCode(re.ErrorCode)
	}
	return ""
}

// CreateTable creates the table name unless it exists already. It returns
// the service's error as it is: the caller names the table and decides
// how much of the error to show.
func CreateTable(ctx context.Context, svc *aztables.ServiceClient, name string) error {
	_, err := svc.CreateTable(ctx, name, nil)
	if ErrorCode(err) == aztables.TableAlreadyExists {
		return nil
	}
	return err
}
