// Command fakehexagon runs the fake Hexagon service used in HexProx's tests
// as a program, so the whole flow can be tried without Hexagon credentials
// or Azure:
//
//	go run ./cmd/fakehexagon            # listens on 127.0.0.1:9090
//	HEXAGON_URL=http://127.0.0.1:9090 go run .
//
// It prints a ready-made proxy URL for its demo client, and a demo /v2
// API key: it keeps a keys file (by default hexprox-demo-keys.json in the
// system's temporary directory, mode 0600) whose record "Demo
// organisation" holds the demo client, and prints the command that runs
// the proxy with that file (KEYS_FILE) and the key's WMTS, WMS and about
// URLs. A later run reuses the same key, rewriting its record for the
// client of that run, so saved demo URLs keep working.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/keystore"
)

// Demo key record: who the demo key says it belongs to.
const (
	demoOrg     = "Demo organisation"
	demoContact = "you@example.org"
)

func main() {
	srv, err := setup(os.Args[1:], os.Stdout)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.ListenAndServe())
}

// setup parses args, builds the fake and its demo key, prints how to use
// them on out, and returns the server to run. It does not listen.
func setup(args []string, out io.Writer) (*http.Server, error) {
	fs := flag.NewFlagSet("fakehexagon", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address (keep it on loopback)")
	id := fs.String("client-id", "demo-client", "OAuth client id it accepts")
	secret := fs.String("client-secret", "demo-secret", "OAuth client secret it accepts")
	lifetime := fs.Duration("lifetime", 12*time.Hour, "token lifetime")
	tileSize := fs.Int("tile-size", 25<<10, "approximate JPEG tile size in bytes")
	post := fs.Bool("post", false, "accept the standard POST token request as well as GET")
	tileDelay := fs.Duration("tile-delay", 0, "wait this long before answering each tile or document (a slow upstream, for load tests)")
	keysFile := fs.String("keys-file", filepath.Join(os.TempDir(), "hexprox-demo-keys.json"), "keys file for the demo /v2 API key (created if missing; \"\" for none)")
	proxy := fs.String("proxy", "http://localhost:8080", "the proxy's address, for the printed URLs")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	f := fakehexagon.New(fakehexagon.Options{Lifetime: *lifetime, TileSize: *tileSize})
	f.AddClient(*id, *secret)
	var sw fakehexagon.Switches
	if *post {
		sw.TokenMethods = "GET,POST"
	}
	sw.TileDelay = *tileDelay
	f.Set(sw)
	hexagon := "http://" + *addr
	fmt.Fprintf(out, "fake Hexagon on %s (client %q)\n", hexagon, *id)
	fmt.Fprintf(out, "run the proxy with HEXAGON_URL=%s and open:\n  %s/wmts/%s/%s/1.0.0/WMTSCapabilities.xml\n",
		hexagon, *proxy, credential.Encode(*id), credential.Encode(*secret))

	if *keysFile != "" {
		key, err := demoKey(*keysFile, credential.Credential{ID: *id, Secret: *secret})
		if err != nil {
			return nil, fmt.Errorf("demo API key: %w (pass -keys-file elsewhere, or -keys-file= for none)", err)
		}
		fmt.Fprintf(out, "\nor try an API key (/v2, no Azure needed): run the proxy with\n  HEXAGON_URL=%s KEYS_FILE=%s go run .\nand open:\n", hexagon, *keysFile)
		fmt.Fprintf(out, "  WMTS   %s/v2/wmts/%s/1.0.0/WMTSCapabilities.xml\n", *proxy, key)
		fmt.Fprintf(out, "  WMS    %s/v2/wms/%s\n", *proxy, key)
		fmt.Fprintf(out, "  about  %s/about/%s\n", *proxy, key)
	}
	return &http.Server{Addr: *addr, Handler: f, ReadHeaderTimeout: 10 * time.Second}, nil
}

// demoKey makes sure the keys file at path holds an active demo record
// for cred and returns its key: the one an earlier run made, or a new one.
func demoKey(path string, cred credential.Credential) (string, error) {
	store, err := keystore.Open(context.Background(), keystore.Settings{Kind: config.KeysFile, File: path, CreateFile: true})
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	rec := keys.Record{Org: demoOrg, Contact: demoContact, Sets: []credential.Credential{cred}, Enabled: true}
	entries, err := store.List(ctx)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.Record.Org == demoOrg && keys.Check(e.Key) == nil {
			rec.Created = e.Record.Created
			return e.Key, store.Update(ctx, e.Key, rec)
		}
	}
	key, err := keys.New()
	if err != nil {
		return "", err
	}
	return key, store.Create(ctx, key, rec)
}
