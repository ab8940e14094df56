package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/filestore"
	"github.com/hexprox/hexprox/internal/keys/keyvault"
)

// Store kinds, the values of KEY_STORE.
const (
	StoreKeyVault = "keyvault"
	StoreFile     = "file"
)

// Settings say which store to open: the server's settings, possibly
// overridden by --vault or --file.
type Settings struct {
	// Kind is StoreKeyVault or StoreFile.
	Kind string
	// VaultURL is the vault for StoreKeyVault: --vault, or the server's
	// KEY_VAULT_URL or KEY_VAULT_NAME (config.LoadKeys).
	VaultURL string
	// ManagedIdentityClientID is MANAGED_IDENTITY_CLIENT_ID, for a
	// user-assigned identity when run on Azure; locally the admin's own
	// login is used (keyvault.NewCredential).
	ManagedIdentityClientID string
	// File is the keys file for StoreFile: --file or KEYS_FILE.
	File string
	// CreateFile asks OpenStore to create an empty keys file when none
	// exists (keys new does, so that the first key needs no set-up).
	CreateFile bool
}

// settings resolves the store settings: flags first, then KEY_STORE and
// its settings. Errors name the settings that are missing.
func (c *cli) settings() (Settings, error) {
	s := Settings{ManagedIdentityClientID: strings.TrimSpace(c.getenv("MANAGED_IDENTITY_CLIENT_ID"))}
	switch {
	case c.vaultFlag != "" && c.fileFlag != "":
		return s, fmt.Errorf("%w: give --vault or --file, not both", ErrUsage)
	case c.vaultFlag != "":
		v, err := config.VaultURL(c.vaultFlag)
		if err != nil {
			return s, fmt.Errorf("%w: --vault: %v", ErrUsage, err)
		}
		s.Kind, s.VaultURL = StoreKeyVault, v
		return s, nil
	case c.fileFlag != "":
		s.Kind, s.File = StoreFile, c.fileFlag
		return s, nil
	}
	// The server's own resolution, so that the CLI opens what it reads.
	k, err := config.LoadKeys(c.getenv)
	if err != nil {
		return s, fmt.Errorf("%w (or pass --vault URL or --file PATH)", err)
	}
	switch k.Store {
	case config.KeysKeyVault:
		s.Kind, s.VaultURL = StoreKeyVault, k.VaultURL
	case config.KeysFile:
		s.Kind, s.File = StoreFile, k.File
	default:
		return s, errors.New("no key store is configured: set KEY_STORE=keyvault with KEY_VAULT_URL or KEY_VAULT_NAME, " +
			"or KEY_STORE=file with KEYS_FILE; or pass --vault URL or --file PATH")
	}
	return s, nil
}

// OpenStore opens the store that s names: Key Vault with
// keyvault.NewCredential (the managed identity on Azure, the admin's own
// login elsewhere), or the keys file, created empty first when
// s.CreateFile is set. No request is made to Key Vault until the store's
// first call.
func OpenStore(ctx context.Context, s Settings) (keys.Store, error) {
	switch s.Kind {
	case StoreKeyVault:
		cred, err := keyvault.NewCredential(s.ManagedIdentityClientID)
		if err != nil {
			return nil, fmt.Errorf("no Azure identity to reach the vault with (run az login): %w", err)
		}
		return keyvault.Open(keyvault.Options{VaultURL: s.VaultURL, Credential: cred})
	case StoreFile:
		if s.CreateFile {
			if err := filestore.Init(s.File); err != nil {
				return nil, err
			}
		}
		return filestore.Open(s.File)
	}
	return nil, fmt.Errorf("unknown key store %q", s.Kind)
}

// open opens the configured store.
func (c *cli) open(ctx context.Context, create bool) (keys.Store, error) {
	s, err := c.settings()
	if err != nil {
		return nil, err
	}
	s.CreateFile = create
	open := c.env.Open
	if open == nil {
		open = OpenStore
	}
	return open(ctx, s)
}

// explain adds what the admin can do about a store error: the role the
// CLI needs, or which key was not found (by prefix).
func explain(err error, key string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keys.ErrNotFound) && key != "":
		return fmt.Errorf("no such key: %s", prefix(key))
	case errors.Is(err, keyvault.ErrPermission) && !strings.Contains(err.Error(), keyvault.WriterRole):
		return fmt.Errorf("%w (administering keys needs the %s role)", err, keyvault.WriterRole)
	case errors.Is(err, keys.ErrSyntax):
		return fmt.Errorf("not a key: keys are letters, digits and '-', at most %d characters", keys.MaxLen)
	}
	return err
}
