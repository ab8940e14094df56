// Command baseline is the yardstick for HexProx's paths:
//
//   - -mode proxy (the default): the smallest reasonable Go reverse proxy,
//     httputil.ReverseProxy passing every request through to one upstream
//     unchanged (the client sends the token), for the stream path;
//   - -mode relay: the least a Go relay on net/http must do for a tile, the
//     ceiling for HexProx's stream path under issue 14's "stay on net/http":
//     one GET through an http.Transport tuned as HexProx's (keep-alive, a
//     64 KiB read buffer), status, Content-Type and Content-Length copied,
//     the body copied through a pooled buffer; no logging, no CORS, no
//     checks. Run it with HexProx's GOGC (400) for a like-for-like figure;
//   - -mode redirect: a bare net/http handler that only writes a 302 with
//     a Location as long as HexProx's, the floor for the redirect path.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
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
	case "relay":
		u, err := url.Parse(*upstream)
		if err != nil {
			log.Fatal(err)
		}
		h = relay(u)
	case "redirect":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", location)
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusFound)
		})
	default:
		log.Fatalf("-mode %q is not proxy, relay or redirect", *mode)
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// relay GETs the request's path and query from upstream and copies the
// answer's status, type, length and body.
func relay(upstream *url.URL) http.Handler {
	tr := &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		ReadBufferSize:      64 << 10,
	}
	bufs := sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := *upstream
		out.Path, out.RawPath, out.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, out.String(), nil)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			http.Error(w, "upstream unreachable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		hdr := w.Header()
		if ct := resp.Header["Content-Type"]; ct != nil {
			hdr["Content-Type"] = ct
		}
		if cl := resp.Header["Content-Length"]; cl != nil {
			hdr["Content-Length"] = cl
		}
		w.WriteHeader(resp.StatusCode)
		buf := bufs.Get().(*[]byte)
		io.CopyBuffer(w, resp.Body, *buf)
		bufs.Put(buf)
	})
}
