// Command fakehexagon runs the fake Hexagon service used in HexProx's tests
// as a program, so the whole flow can be tried without Hexagon credentials
// or Azure:
//
//	go run ./cmd/fakehexagon            # listens on 127.0.0.1:9090
//	HEXAGON_URL=http://127.0.0.1:9090 ... go run .   # the command it prints
//
// It prints the command that runs the proxy against it, and ready-made
// proxy URLs for its demo client: a credential URL's WMTS and WMS
// addresses, and a tile and a map that are an image at once (curl -L
// follows a desktop client's redirect). It also prints a demo /v2 API key
// and the same URLs for it: it keeps a keys file (by default
// hexprox-demo-keys.json in the system's temporary directory, mode 0600)
// whose record "Demo organisation" holds the demo client, and the printed
// command names it (KEYS_FILE). A later run reuses the same key, rewriting
// its record for the client of that run, so saved demo URLs keep working.
//
// The printed command gives the proxy a usage directory of the demo's own
// (USAGE_DIR, by default hexprox-demo-usage in the system's temporary
// directory), so the demo's requests stay out of the user's own usage
// report, and, when the proxy is reached on localhost, LISTEN_ADDRESS=
// 127.0.0.1, so the trial is not open to the network.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"net/url"
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
	usageDir := fs.String("usage-dir", filepath.Join(os.TempDir(), "hexprox-demo-usage"), "USAGE_DIR for the printed proxy command: the demo's usage rows stay out of your own report")
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

	var key string
	if *keysFile != "" {
		var err error
		if key, err = demoKey(*keysFile, credential.Credential{ID: *id, Secret: *secret}); err != nil {
			return nil, fmt.Errorf("demo API key: %w (pass -keys-file elsewhere, or -keys-file= for none)", err)
		}
	}
	command := "HEXAGON_URL=" + hexagon
	if key != "" {
		command += " KEYS_FILE=" + *keysFile
	}
	command += " USAGE_DIR=" + *usageDir
	if loopback(*proxy) {
		command += " LISTEN_ADDRESS=127.0.0.1"
	}
	fmt.Fprintf(out, "\nrun the proxy with\n  %s go run .\n", command)
	fmt.Fprintf(out, "(the demo's usage rows go to %s, not your own report: USAGE_DIR=%s go run . usage)\n", *usageDir, *usageDir)

	cred := *proxy + "/wmts/" + credential.Encode(*id) + "/" + credential.Encode(*secret)
	credWMS := *proxy + "/wms/" + credential.Encode(*id) + "/" + credential.Encode(*secret)
	fmt.Fprintf(out, "\nthen open a credential URL (the client id and secret in the path):\n")
	fmt.Fprintf(out, "  WMTS   %s/1.0.0/WMTSCapabilities.xml\n", cred)
	fmt.Fprintf(out, "  tile   %s%s\n", cred, tilePath)
	fmt.Fprintf(out, "  WMS    %s\n", credWMS)
	fmt.Fprintf(out, "  map    %s%s\n", credWMS, mapQuery)
	if key != "" {
		fmt.Fprintf(out, "\nor an API key (/v2, no Azure needed):\n")
		fmt.Fprintf(out, "  WMTS   %s/v2/wmts/%s/1.0.0/WMTSCapabilities.xml\n", *proxy, key)
		fmt.Fprintf(out, "  tile   %s/v2/wmts/%s%s\n", *proxy, key, tilePath)
		fmt.Fprintf(out, "  WMS    %s/v2/wms/%s\n", *proxy, key)
		fmt.Fprintf(out, "  map    %s/v2/wms/%s%s\n", *proxy, key, mapQuery)
		fmt.Fprintf(out, "  about  %s/about/%s\n", *proxy, key)
	}
	fmt.Fprintf(out, "\na tile or map is an image at once: curl -L -o tile.jpg '<tile URL>'\n"+
		"(-L: a desktop client asking with a credential URL is redirected to Hexagon, here the fake, with a token)\n")
	return &http.Server{Addr: *addr, Handler: f, ReadHeaderTimeout: 10 * time.Second}, nil
}

// The tile and map the printed URLs ask for: one the fake serves.
var (
	tilePath = "/1.0.0/" + fakehexagon.Layer + "/" + fakehexagon.Style + "/" + fakehexagon.MatrixSet + "/5/10/12.jpg"
	mapQuery = "?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=" + fakehexagon.Layer +
		"&STYLES=&CRS=EPSG:3857&BBOX=-20037508,-20037508,20037508,20037508&WIDTH=512&HEIGHT=512&FORMAT=image/jpeg"
)

// loopback reports whether the proxy's printed address is this machine
// alone (localhost or a loopback IP), so that the printed command can
// keep the proxy off the network.
func loopback(proxy string) bool {
	u, err := url.Parse(proxy)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
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
