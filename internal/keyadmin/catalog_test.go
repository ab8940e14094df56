package keyadmin

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/keys/storetest"
	"github.com/hexprox/hexprox/internal/provider"
)

// list asks the catalog of every key it warns of (a title, a key's
// lifetime, the licence): the settings, PROVIDERS_FILE among them, are
// read once a run, not once a question.
func TestListLoadsTheCatalogOnce(t *testing.T) {
	fake, url := newMaxar(t)
	bothStores(t, func(t *testing.T, h *harness) {
		h.useMaxar(url)
		for _, org := range []string{"One", "Two", "Three"} {
			secret := "mxr-" + strings.ToLower(org) + "-" + storetest.Key(t)
			fake.AddKey(secret, 0)
			h.newKey(t, secret+"\n", "--provider", "maxar", "--org", org, "--contact", "c@example.org", "--key-expires", "3d")
		}
		var out, errOut bytes.Buffer
		env := h.settings(Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Open: h.open, Now: func() time.Time { return now }})
		load, loads := env.Providers, 0
		env.Providers = func() (provider.Catalog, error) { loads++; return load() }
		if err := Run(context.Background(), []string{"list"}, env); err != nil {
			t.Fatal(err)
		}
		if n := len(warningLines(errOut.String())); n != 3 || loads != 1 {
			t.Fatalf("%d warnings, the settings read %d times; want 3 and once:\n%s", n, loads, errOut.String())
		}
	})
}
