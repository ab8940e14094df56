// Package keystore opens the API key store that the settings name: the
// one place a key store is opened, for the server and the keys CLI alike,
// so that what an administrator changes is what the server reads.
package keystore

import (
	"context"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/filestore"
	"github.com/hexprox/hexprox/internal/keys/keyvault"
)

// Settings say which store to open.
type Settings struct {
	// Kind is config.KeysKeyVault or config.KeysFile.
	Kind string
	// VaultURL is the vault for config.KeysKeyVault.
	VaultURL string
	// ManagedIdentityClientID is MANAGED_IDENTITY_CLIENT_ID, for a
	// user-assigned identity when run on Azure.
	ManagedIdentityClientID string
	// Managed says the host offers a managed identity (config.Keys.Managed);
	// without it the admin's own Azure login reads the vault.
	Managed bool
	// File is the keys file for config.KeysFile.
	File string
	// CreateFile asks Open to create an empty keys file when none exists
	// (keys new does, so that the first key needs no set-up).
	CreateFile bool
	// Retry is the vault client's retry policy; nil means the SDK's
	// defaults, which suit the CLI. The server retries briefly: a warm
	// key is served from memory while the vault is slow, and the SDK's
	// ladder would only delay that.
	Retry *policy.RetryOptions
}

// ServerRetry is the vault retry policy the server uses.
var ServerRetry = policy.RetryOptions{MaxRetries: 2, RetryDelay: 200 * time.Millisecond, MaxRetryDelay: time.Second, TryTimeout: 5 * time.Second}

// FromConfig returns the settings of the store config names (config.Keys
// from config.Load or config.LoadKeys).
func FromConfig(k config.Keys) Settings {
	s := Settings{Kind: k.Store, ManagedIdentityClientID: k.ClientID, Managed: k.Managed}
	switch k.Store {
	case config.KeysKeyVault:
		s.VaultURL = k.VaultURL
	case config.KeysFile:
		s.File = k.File
	}
	return s
}

// Open opens the store that s names: Key Vault with keyvault.NewCredential
// (the managed identity on Azure, the admin's own login elsewhere), or the
// keys file, created empty first when s.CreateFile is set. No request is
// made to Key Vault until the store's first call. Kind "none" (or "")
// opens nothing: nil and no error.
func Open(_ context.Context, s Settings) (keys.Store, error) {
	switch s.Kind {
	case config.KeysKeyVault:
		cred, err := keyvault.NewCredential(s.ManagedIdentityClientID, s.Managed)
		if err != nil {
			return nil, fmt.Errorf("no Azure identity to reach the vault with (run az login): %w", err)
		}
		o := keyvault.Options{VaultURL: s.VaultURL, Credential: cred}
		if s.Retry != nil {
			o.Retry = *s.Retry
		}
		return keyvault.Open(o)
	case config.KeysFile:
		if s.CreateFile {
			if err := filestore.Init(s.File); err != nil {
				return nil, err
			}
		}
		st, err := filestore.Open(s.File)
		if err != nil {
			return nil, fmt.Errorf("KEYS_FILE: %w", err)
		}
		return st, nil
	case config.KeysNone, "":
		return nil, nil
	}
	return nil, fmt.Errorf("unknown key store %q", s.Kind)
}
