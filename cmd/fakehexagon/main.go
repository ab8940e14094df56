// Command fakehexagon runs the fake Hexagon service used in HexProx's tests
// as a program, so the whole flow can be tried without Hexagon credentials:
//
//	go run ./cmd/fakehexagon            # listens on 127.0.0.1:9090
//	HEXAGON_URL=http://127.0.0.1:9090 go run .
//
// It prints a ready-made proxy URL for its demo client.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "listen address (keep it on loopback)")
	id := flag.String("client-id", "demo-client", "OAuth client id it accepts")
	secret := flag.String("client-secret", "demo-secret", "OAuth client secret it accepts")
	lifetime := flag.Duration("lifetime", 12*time.Hour, "token lifetime")
	tileSize := flag.Int("tile-size", 25<<10, "approximate JPEG tile size in bytes")
	post := flag.Bool("post", false, "accept the standard POST token request as well as GET")
	flag.Parse()

	f := fakehexagon.New(fakehexagon.Options{Lifetime: *lifetime, TileSize: *tileSize})
	f.AddClient(*id, *secret)
	if *post {
		f.Set(fakehexagon.Switches{TokenMethods: "GET,POST"})
	}
	fmt.Printf("fake Hexagon on http://%s (client %q)\n", *addr, *id)
	fmt.Printf("run the proxy with HEXAGON_URL=http://%s and open:\n  http://localhost:8080/wmts/%s/%s/1.0.0/WMTSCapabilities.xml\n",
		*addr, credential.Encode(*id), credential.Encode(*secret))
	srv := &http.Server{Addr: *addr, Handler: f, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
