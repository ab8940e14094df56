// Command baseline is the yardstick for HexProx's paths:
//
//   - -mode proxy (the default): the smallest reasonable Go reverse proxy,
//     httputil.ReverseProxy passing every request through to one upstream
//     unchanged (the client sends the token), for the stream path;
//   - -mode redirect: a bare net/http handler that only writes a 302 with
//     a Location as long as HexProx's, the floor for the redirect path.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// location is the size of a real redirect's target: the upstream tile URL
// with a token.
const location = "https://services.hxgncontent.com/streaming/wmts?/1.0.0/HxGN_Imagery/default/WebMercator/12/1500/700.jpg&access_token=0123456789abcdef0123456789abcdef"

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:19090", "upstream base URL (proxy mode)")
	mode := flag.String("mode", "proxy", "proxy or redirect")
	flag.Parse()
	var h http.Handler
	switch *mode {
	case "proxy":
		u, err := url.Parse(*upstream)
		if err != nil {
			log.Fatal(err)
		}
		h = &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			Transport: &http.Transport{
				MaxIdleConns:        512,
				MaxIdleConnsPerHost: 256,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	case "redirect":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", location)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusFound)
		})
	default:
		log.Fatalf("-mode %q is not proxy or redirect", *mode)
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
