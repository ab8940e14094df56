package guesslimit

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"testing"
)

func request(remote string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/wmts/x/y/1.0.0/WMTSCapabilities.xml", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func TestClientAddr(t *testing.T) {
	const remote = "203.0.113.7:5555"
	for _, tc := range []struct {
		name   string
		remote string
		xff    []string
		hops   int
		want   string // "" for the zero Addr
	}{
		{name: "no proxy uses RemoteAddr", xff: nil, hops: 0, want: "203.0.113.7"},
		{name: "no proxy ignores XFF", xff: []string{"198.51.100.1"}, hops: 0, want: "203.0.113.7"},
		{name: "negative hops ignore XFF", xff: []string{"198.51.100.1"}, hops: -1, want: "203.0.113.7"},
		{name: "one hop", xff: []string{"198.51.100.1"}, hops: 1, want: "198.51.100.1"},
		{name: "one hop with port", xff: []string{"198.51.100.1:6000"}, hops: 1, want: "198.51.100.1"},
		{name: "spoofed entry to the left", xff: []string{"6.6.6.6, 198.51.100.1:6000"}, hops: 1, want: "198.51.100.1"},
		{name: "spoofed header line before", xff: []string{"6.6.6.6", "198.51.100.1"}, hops: 1, want: "198.51.100.1"},
		{name: "garbage to the left", xff: []string{`unknown, "x", ,,[::1, 198.51.100.1`}, hops: 1, want: "198.51.100.1"},
		{name: "two hops", xff: []string{"1.1.1.1, 198.51.100.1, 10.0.0.5"}, hops: 2, want: "198.51.100.1"},
		{name: "two hops across lines", xff: []string{"1.1.1.1, 198.51.100.1", "10.0.0.5:443"}, hops: 2, want: "198.51.100.1"},
		{name: "IPv6 bracketed with port", xff: []string{"[2001:db8::1]:443"}, hops: 1, want: "2001:db8::1"},
		{name: "IPv6 bare", xff: []string{"2001:db8::1"}, hops: 1, want: "2001:db8::1"},
		{name: "IPv6 bracketed", xff: []string{"[2001:db8::1]"}, hops: 1, want: "2001:db8::1"},
		{name: "IPv6 zone dropped", xff: []string{"[fe80::1%eth0]:80"}, hops: 1, want: "fe80::1"},
		{name: "IPv4-mapped entry", xff: []string{"[::ffff:198.51.100.1]:80"}, hops: 1, want: "198.51.100.1"},
		{name: "IPv4-mapped RemoteAddr", remote: "[::ffff:203.0.113.9]:1234", hops: 0, want: "203.0.113.9"},
		{name: "IPv6 RemoteAddr", remote: "[2001:db8::5]:1234", hops: 0, want: "2001:db8::5"},
		{name: "RemoteAddr without port", remote: "203.0.113.9", hops: 0, want: "203.0.113.9"},
		{name: "tabs and spaces", xff: []string{"\t198.51.100.1 \t"}, hops: 1, want: "198.51.100.1"},
		{name: "empty elements skipped", xff: []string{"198.51.100.1, ,"}, hops: 1, want: "198.51.100.1"},
		{name: "malformed trusted entry", xff: []string{"198.51.100.1, unknown"}, hops: 1, want: "203.0.113.7"},
		{name: "obfuscated identifier", xff: []string{"_hidden"}, hops: 1, want: "203.0.113.7"},
		{name: "IPv4 in brackets", xff: []string{"[198.51.100.1]"}, hops: 1, want: "203.0.113.7"},
		{name: "half bracket", xff: []string{"2001:db8::1]"}, hops: 1, want: "203.0.113.7"},
		{name: "bad port", xff: []string{"198.51.100.1:99999"}, hops: 1, want: "203.0.113.7"},
		{name: "fewer entries than hops", xff: []string{"198.51.100.1"}, hops: 2, want: "203.0.113.7"},
		{name: "no header with hops", xff: nil, hops: 1, want: "203.0.113.7"},
		{name: "empty header with hops", xff: []string{""}, hops: 1, want: "203.0.113.7"},
		{name: "unparsable RemoteAddr", remote: "pipe", hops: 0, want: ""},
		{name: "unparsable RemoteAddr, trusted entry", remote: "pipe", xff: []string{"198.51.100.1"}, hops: 1, want: "198.51.100.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rem := tc.remote
			if rem == "" {
				rem = remote
			}
			got := ClientAddr(request(rem, tc.xff...), tc.hops)
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got != want {
				t.Errorf("ClientAddr(RemoteAddr %q, XFF %q, %d) = %v, want %v", rem, tc.xff, tc.hops, got, want)
			}
		})
	}
}

// Over real connections: a client on 127.0.0.2 sends a spoofed
// X-Forwarded-For through a reverse proxy on 127.0.0.1 that appends the
// address it saw, as Azure's front end does.
func TestClientAddrBehindARealProxy(t *testing.T) {
	got := make(chan [3]netip.Addr, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- [3]netip.Addr{ClientAddr(r, 0), ClientAddr(r, 1), ClientAddr(r, 2)}
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	front := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"] // append, don't replace
		pr.SetXForwarded()
	}})
	defer front.Close()

	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/wmts/x/y/", nil)
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := client.Do(req)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2 here: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	addrs := <-got
	if want := netip.MustParseAddr("127.0.0.1"); addrs[0] != want {
		t.Errorf("0 hops: %v, want the proxy's address %v", addrs[0], want)
	}
	if want := netip.MustParseAddr("127.0.0.2"); addrs[1] != want {
		t.Errorf("1 hop: %v, want the client's address %v", addrs[1], want)
	}
	// Trusting more hops than there are proxies trusts the client.
	if want := netip.MustParseAddr("6.6.6.6"); addrs[2] != want {
		t.Errorf("2 hops: %v, want the client-written %v", addrs[2], want)
	}
}

func FuzzClientAddr(f *testing.F) {
	f.Add("203.0.113.7:5555", "6.6.6.6", "198.51.100.1:6000", uint8(1))
	f.Add("[2001:db8::1]:443", "", "[2001:db8::2]:443, 10.0.0.1", uint8(2))
	f.Add("127.0.0.1:80", "garbage,,", "[::ffff:1.2.3.4]", uint8(1))
	f.Add("[fe80::1%eth0]:1", "1.2.3.4", "unknown", uint8(0))
	f.Fuzz(func(t *testing.T, remote, left, right string, hops uint8) {
		n := int(hops % 5)
		got := ClientAddr(request(remote, right), n)
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("ClientAddr = %v: mapped or zoned", got)
		}
		rem, _ := parseAddr(remote)
		if _, err := netip.ParseAddrPort(remote); err == nil && !got.IsValid() {
			t.Fatalf("RemoteAddr %q is valid but ClientAddr is not", remote)
		}
		if n == 0 && got != rem {
			t.Fatalf("0 hops: ClientAddr = %v, want RemoteAddr's %v", got, rem)
		}
		// Whatever a client writes before the trusted entries changes nothing.
		if _, ok := fromRight([]string{right}, n); ok || n == 0 {
			if again := ClientAddr(request(remote, left, right), n); again != got {
				t.Fatalf("a header line %q before changed %v to %v", left, got, again)
			}
			if again := ClientAddr(request(remote, left+","+right), n); again != got {
				t.Fatalf("a prefix %q changed %v to %v", left, got, again)
			}
		}
	})
}
