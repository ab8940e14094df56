package guesslimit

import (
	"net/http"
	"net/netip"
	"strings"
)

// ClientAddr returns the address of the client that sent r, for keying a
// [Limiter].
//
// trustedHops is the number of proxies in front of this server that each
// append the address they received the request from to X-Forwarded-For:
//
//   - 0 (or negative): the peer's address, r.RemoteAddr, only.
//     X-Forwarded-For is ignored entirely. Right for a server reached
//     directly.
//   - N > 0: the N-th entry from the right of X-Forwarded-For, all the
//     header's lines concatenated in order: the address appended by the
//     outermost trusted proxy. Behind Azure App Service, or a Functions
//     host that forwards requests, the platform's front end appends the
//     client's address, so N is 1; with Azure Front Door or another proxy
//     before it, add one per proxy. A Functions host that proxies
//     requests (Flex Consumption) replaces the header with the one
//     address its connection came from, so N is 1 there whatever is in
//     front (docs/functions-host.md).
//
// Everything a client wrote to the left of the trusted entries is ignored,
// not even parsed, so a client cannot choose its address, nor push itself
// onto the shared RemoteAddr of the front end by writing garbage. Empty
// list elements are skipped. An entry may be an IPv4 or IPv6 address, with
// a port ("1.2.3.4:5678", "[2001:db8::1]:443") or without, IPv6 with or
// without brackets. If the list has fewer than N entries, or the N-th is
// not an address, ClientAddr falls back to r.RemoteAddr: either means the
// request did not come through the configured proxies.
//
// IPv4-mapped IPv6 addresses are returned as IPv4, and zones are dropped.
// The result is valid whenever r.RemoteAddr holds an address (with or
// without a port, as net/http always sets it); otherwise, absent a trusted
// entry, it is the zero Addr, which a Limiter treats as one shared address.
func ClientAddr(r *http.Request, trustedHops int) netip.Addr {
	remote, _ := parseAddr(r.RemoteAddr)
	if trustedHops <= 0 {
		return remote
	}
	entry, ok := fromRight(r.Header.Values("X-Forwarded-For"), trustedHops)
	if !ok {
		return remote
	}
	a, ok := parseAddr(entry)
	if !ok {
		return remote
	}
	return a
}

// fromRight returns the n-th non-empty comma-separated element, counting
// from the right, of the list formed by joining values with commas. It
// looks at nothing to the left of that element.
func fromRight(values []string, n int) (string, bool) {
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for {
			j := strings.LastIndexByte(v, ',')
			elem := strings.Trim(v[j+1:], " \t")
			if elem != "" {
				n--
				if n == 0 {
					return elem, true
				}
			}
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return "", false
}

// parseAddr parses "addr", "addr:port", "[v6]" or "[v6]:port".
func parseAddr(s string) (netip.Addr, bool) {
	s = strings.Trim(s, " \t")
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(s); err != nil {
		if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}
