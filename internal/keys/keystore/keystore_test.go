package keystore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/keys/filestore"
	"github.com/hexprox/hexprox/internal/keys/keyvault"
)

func keysFrom(t *testing.T, env map[string]string) config.Keys {
	t.Helper()
	k, err := config.LoadKeys(func(n string) string { return env[n] })
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOpensWhatTheSettingsName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	s := FromConfig(keysFrom(t, map[string]string{"KEYS_FILE": path}))
	if s.Kind != config.KeysFile || s.File != path {
		t.Fatalf("KEYS_FILE alone: %+v", s)
	}
	if _, err := Open(context.Background(), s); err == nil || !strings.HasPrefix(err.Error(), "KEYS_FILE:") {
		t.Fatalf("a missing keys file must be named as the setting: %v", err)
	}
	s.CreateFile = true
	st, err := Open(context.Background(), s)
	if _, ok := st.(*filestore.Store); err != nil || !ok {
		t.Fatalf("keys file: %T %v", st, err)
	}

	v := FromConfig(keysFrom(t, map[string]string{"KEY_VAULT_NAME": "hexprox-kv", "MANAGED_IDENTITY_CLIENT_ID": "mi", "IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi"}))
	if v.Kind != config.KeysKeyVault || v.VaultURL != "https://hexprox-kv.vault.azure.net" || v.ManagedIdentityClientID != "mi" || !v.Managed {
		t.Fatalf("a vault on Azure: %+v", v)
	}
	v.Retry = &ServerRetry
	if st, err := Open(context.Background(), v); err != nil {
		t.Fatal(err)
	} else if _, ok := st.(*keyvault.Store); !ok {
		t.Fatalf("vault: %T", st)
	}

	if st, err := Open(context.Background(), FromConfig(keysFrom(t, nil))); st != nil || err != nil {
		t.Fatalf("no store configured opens nothing: %v %v", st, err)
	}
	if _, err := Open(context.Background(), Settings{Kind: "floppy"}); err == nil {
		t.Fatal("an unknown kind opened")
	}
}
