package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/keystore"
	"github.com/hexprox/hexprox/internal/keys/keyvault"
)

// Store kinds, the values of KEY_STORE.
const (
	StoreKeyVault = config.KeysKeyVault
	StoreFile     = config.KeysFile
)

// Settings say which store to open: the server's settings, possibly
// overridden by --vault or --file.
type Settings = keystore.Settings

// settings resolves the store settings: flags first, then KEY_STORE and
// its settings. Errors name the settings that are missing.
func (c *cli) settings() (Settings, error) {
	// The server's own resolution, so that the CLI opens what it reads.
	k, err := c.keys()
	s := Settings{ManagedIdentityClientID: k.ClientID, Managed: k.Managed}
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
	if err != nil {
		return s, fmt.Errorf("%w (or pass --vault URL or --file PATH)", err)
	}
	if k.Store != config.KeysKeyVault && k.Store != config.KeysFile {
		return s, errors.New("no key store is configured: set KEY_STORE=keyvault with KEY_VAULT_URL or KEY_VAULT_NAME, " +
			"or KEY_STORE=file with KEYS_FILE; or pass --vault URL or --file PATH")
	}
	return keystore.FromConfig(k), nil
}

// storeHint is what a command printed for the admin to run next must
// repeat of this one's store flags (--file, --vault), so that it opens
// the same store.
func (c *cli) storeHint() string {
	switch {
	case c.fileFlag != "":
		return " --file " + shellQuote(c.fileFlag)
	case c.vaultFlag != "":
		return " --vault " + shellQuote(c.vaultFlag)
	}
	return ""
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
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
		open = keystore.Open // as the server opens it
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
