package guesslimit_test

import (
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/hexprox/hexprox/internal/guesslimit"
)

// The server's part, for a credential it holds no token for.
func Example() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	l := guesslimit.New(guesslimit.Options{PerMinute: 20, Burst: 3, Now: func() time.Time { return now }})

	// Behind Azure's front end: one trusted hop. The spoofed entry is ignored.
	r := httptest.NewRequest("GET", "/wmts/aWQ/c2VjcmV0/1.0.0/WMTSCapabilities.xml", nil)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.66:51234")
	client := guesslimit.ClientAddr(r, 1)

	for range 5 {
		if wait, ok := l.Check(client); !ok {
			fmt.Printf("%v: 429, Retry-After: %d\n", client, int(wait/time.Second))
			continue
		}
		// … ask Hexagon for a token; it refuses the credential:
		l.Refused(client)
		fmt.Printf("%v: 403 from Hexagon\n", client)
	}
	// Output:
	// 198.51.100.66: 403 from Hexagon
	// 198.51.100.66: 403 from Hexagon
	// 198.51.100.66: 403 from Hexagon
	// 198.51.100.66: 429, Retry-After: 3
	// 198.51.100.66: 429, Retry-After: 3
}
