package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	// VaultURL is the vault for StoreKeyVault: --vault, KEY_VAULT_URL, or
	// keyvault.VaultURL(KEY_VAULT_NAME).
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
	s := Settings{ManagedIdentityClientID: c.getenv("MANAGED_IDENTITY_CLIENT_ID")}
	switch {
	case c.vaultFlag != "" && c.fileFlag != "":
		return s, fmt.Errorf("%w: give --vault or --file, not both", ErrUsage)
	case c.vaultFlag != "":
		s.Kind, s.VaultURL = StoreKeyVault, c.vaultFlag
		return s, nil
	case c.fileFlag != "":
		s.Kind, s.File = StoreFile, c.fileFlag
		return s, nil
	}
	kind := strings.ToLower(strings.TrimSpace(c.getenv("KEY_STORE")))
	if kind == "" {
		// As the server decides: a named vault, else a keys file.
		switch {
		case strings.TrimSpace(c.getenv("KEY_VAULT_URL")) != "" || strings.TrimSpace(c.getenv("KEY_VAULT_NAME")) != "":
			kind = StoreKeyVault
		case strings.TrimSpace(c.getenv("KEYS_FILE")) != "":
			kind = StoreFile
		}
	}
	switch kind {
	case StoreKeyVault:
		s.Kind = StoreKeyVault
		s.VaultURL = strings.TrimSpace(c.getenv("KEY_VAULT_URL"))
		if s.VaultURL == "" {
			if name := strings.TrimSpace(c.getenv("KEY_VAULT_NAME")); name != "" {
				s.VaultURL = keyvault.VaultURL(name)
			}
		}
		if s.VaultURL == "" {
			return s, errors.New("KEY_STORE=keyvault but no vault is set: set KEY_VAULT_URL (https://{name}.vault.azure.net) or KEY_VAULT_NAME, or pass --vault URL")
		}
	case StoreFile:
		s.Kind = StoreFile
		s.File = strings.TrimSpace(c.getenv("KEYS_FILE"))
		if s.File == "" {
			return s, errors.New("KEY_STORE=file but KEYS_FILE is not set: set it to the keys file's path, or pass --file PATH")
		}
	case "", "none":
		return s, errors.New("no key store is configured: set KEY_STORE=keyvault with KEY_VAULT_URL or KEY_VAULT_NAME, " +
			"or KEY_STORE=file with KEYS_FILE; or pass --vault URL or --file PATH")
	default:
		return s, fmt.Errorf("KEY_STORE is %q; it must be keyvault or file (or none, which has no keys to administer)", kind)
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
