package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/guesslimit"
	"github.com/hexprox/hexprox/internal/keys"
)

// Guessing credentials: each random credential in a URL would be one
// token request to Hexagon; the guess limit (GUESS_LIMIT, per client
// address) stops them at the proxy. The proxy runs as under the Functions
// host (TRUSTED_HOPS=1): the platform's front end appends the client's
// address to X-Forwarded-For, and the test writes the header as that front
// end would, after whatever the client wrote itself.

func randomGuessHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// forwardedFor is the header a front end sends for a client at addr that
// wrote spoof into X-Forwarded-For itself ("" for nothing).
func forwardedBy(spoof, addr string) map[string]string {
	if spoof == "" {
		return map[string]string{"X-Forwarded-For": addr}
	}
	return map[string]string{"X-Forwarded-For": spoof + ", " + addr}
}

// guessAnswer is what one guess was answered.
type guessAnswer struct {
	status         int
	reachedHexagon bool // the token endpoint was asked during the request
}

// guess sends one random credential from hdr's address, on WMTS or (wms)
// on WMS, and checks the answer: 403 after asking Hexagon, or 429 with
// Retry-After in the route's exception format without asking it.
func (h *harness) guess(hdr map[string]string, wms bool) guessAnswer {
	h.t.Helper()
	id, secret := "guess-"+randomGuessHex(h.t, 6), randomGuessHex(h.t, 16)
	h.noteSecret(secret)
	h.noteSecret(credential.Encode(secret))
	h.noteSecret(credential.Encode(id))
	seg := credential.Encode(id) + "/" + credential.Encode(secret)
	u := h.proxy.URL + "/wmts/" + seg + tilePath
	if wms {
		u = h.proxy.URL + "/wms/" + seg + getMap
	}
	before := h.fake.TokenRequests.Load()
	resp, body := h.get(u, hdr)
	res := guessAnswer{status: resp.StatusCode, reachedHexagon: h.fake.TokenRequests.Load() != before}
	switch resp.StatusCode {
	case http.StatusForbidden:
		if !res.reachedHexagon {
			h.t.Fatalf("a guess was refused without asking Hexagon, yet not limited:\n%s", body)
		}
	case http.StatusTooManyRequests:
		if res.reachedHexagon {
			h.t.Fatal("a limited guess reached Hexagon's token endpoint")
		}
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
			h.t.Fatalf("Retry-After %q, want 1 to 60 seconds", resp.Header.Get("Retry-After"))
		}
		var text string
		if wms {
			text = h.assertServiceException(resp, body, http.StatusTooManyRequests, "1.3.0", "").Exception.Text
		} else {
			text = h.assertException(resp, body, http.StatusTooManyRequests, "").Exception.Text
		}
		if !strings.Contains(text, "refused credentials") {
			h.t.Fatalf("the 429 does not say why: %q", text)
		}
	default:
		h.t.Fatalf("a guess answered %d:\n%s", resp.StatusCode, body)
	}
	return res
}

func TestGuessLimitKeepsRandomCredentialsFromHexagon(t *testing.T) {
	const (
		addrA, addrB = "198.51.100.7", "203.0.113.9"
		guesses      = 200
		slack        = 3 // refusals earned back while the test runs (20/min), or in flight
	)
	// GUESS_LIMIT's default, as main builds it: 20 a minute, burst 10.
	h := newHarness(t, map[string]string{"TRUSTED_HOPS": "1", "GUESS_LIMIT": ""})
	counter := h.app.Usage
	burst := guesslimit.DefaultBurst
	good := h.credURL()
	// The known-good credential, proven once from A.
	if resp, _ := h.get(good+tilePath, forwardedBy("", addrA)); resp.StatusCode != http.StatusFound {
		t.Fatalf("the good credential: %d", resp.StatusCode)
	}

	// A guesses, writing a new left-hand entry every time.
	start := h.fake.TokenRequests.Load()
	firstLimited := -1
	for i := range guesses {
		res := h.guess(forwardedBy(fmt.Sprintf("10.%d.%d.1, 192.0.2.%d", i/250, i%250, i%250), addrA), i%5 == 4)
		if res.status == http.StatusTooManyRequests && firstLimited < 0 {
			firstLimited = i
		}
	}
	askedA := h.fake.TokenRequests.Load() - start
	figure(t, "%d random credentials from one address: %d token requests reached Hexagon (GUESS_LIMIT burst %d); the first 429 came at guess %d",
		guesses, askedA, burst, firstLimited+1)
	if firstLimited != burst {
		t.Fatalf("the first limited guess was number %d, want %d (the burst passes, the next does not)", firstLimited+1, burst+1)
	}
	if askedA < int64(burst) || askedA > int64(burst+slack) {
		t.Fatalf("%d guesses from one address made %d token requests, want %d to %d", guesses, askedA, burst, burst+slack)
	}

	// The known-good credential from the same address still works, and
	// costs no token request.
	before := h.fake.TokenRequests.Load()
	for _, tc := range []struct {
		u      string
		hdr    map[string]string
		status int
	}{
		{good + tilePath, forwardedBy("", addrA), http.StatusFound},
		{good + "/1.0.0/WMTSCapabilities.xml", forwardedBy("192.0.2.50", addrA), http.StatusOK},
		{good + tilePath, map[string]string{"X-Forwarded-For": addrA, "Origin": allowed}, http.StatusOK},
		{h.wmsURL() + getMap, forwardedBy("", addrA), http.StatusFound},
	} {
		if resp, body := h.get(tc.u, tc.hdr); resp.StatusCode != tc.status {
			t.Fatalf("the good credential during the limit: %d, want %d\n%s", resp.StatusCode, tc.status, body)
		}
	}
	if n := h.fake.TokenRequests.Load() - before; n != 0 {
		t.Fatalf("the good credential made %d token requests", n)
	}

	// B has its own allowance, whatever it writes on the left (here, A's
	// address)...
	start = h.fake.TokenRequests.Load()
	refusedB := 0
	for i := 0; ; i++ {
		res := h.guess(forwardedBy(addrA, addrB), false)
		if res.status == http.StatusTooManyRequests {
			break
		}
		refusedB++
		if i > burst+slack {
			t.Fatalf("B is not limited after %d refused guesses", refusedB)
		}
	}
	if refusedB < burst {
		t.Fatalf("B was limited after %d refused guesses: A's guesses used its allowance (burst %d)", refusedB, burst)
	}
	// ...and once limited, cannot escape by writing a different left-hand
	// entry, nor several, nor none.
	for i, spoof := range []string{"", "192.0.2.77", "203.0.113.10", "198.51.100.8, 192.0.2.1", "unknown", "[2001:db8::1]:443"} {
		if res := h.guess(forwardedBy(spoof, addrB), i%2 == 1); res.status != http.StatusTooManyRequests {
			t.Fatalf("B escaped its limit with X-Forwarded-For %q in front: %d", spoof, res.status)
		}
	}
	if n := h.fake.TokenRequests.Load() - start; n != int64(refusedB) {
		t.Fatalf("B's guesses made %d token requests, want %d (one per refused guess)", n, refusedB)
	}

	// Random credentials are not counted: the usage counters hold the
	// good credential (and the Other subject) only.
	if st := counter.Stats(); st.Subjects != 2 || st.FoldedSubjects != 0 {
		t.Fatalf("after %d random credentials the counters hold %d subjects (%d folded), want 2", guesses, st.Subjects, st.FoldedSubjects)
	}
}

// A guess whose client leaves before Hexagon answers is charged all the
// same: the token request goes on without it.
func TestLeavingDoesNotMakeAGuessFree(t *testing.T) {
	h := newHarness(t, map[string]string{"GUESS_LIMIT": "", "TRUSTED_HOPS": "1"})
	h.fake.Set(fakehexagon.Switches{TokenDelay: 150 * time.Millisecond})
	from := "203.0.113.99"
	for i := range 3 * guesslimit.DefaultBurst {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.proxy.URL+"/wmts/"+credential.Encode(fmt.Sprintf("guess-%d", i))+"/"+credential.Encode("nope")+tilePath, nil)
		req.Header.Set("X-Forwarded-For", from)
		if resp, err := h.client.Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
	}
	// The token requests in flight end; their refusals are charged.
	settle(t, "the refusals", func() bool { return h.fake.TokenRequests.Load() >= guesslimit.DefaultBurst })
	time.Sleep(200 * time.Millisecond)
	if n := h.fake.TokenRequests.Load(); n > guesslimit.DefaultBurst+1 {
		t.Fatalf("%d abandoned guesses from one address made %d token requests, want at most the burst (%d)", 3*guesslimit.DefaultBurst, n, guesslimit.DefaultBurst)
	}
	resp, _ := h.get(h.proxy.URL+"/wmts/"+credential.Encode("fresh")+"/"+credential.Encode("guess")+tilePath, map[string]string{"X-Forwarded-For": from})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a fresh guess after abandoned ones: %d, want 429", resp.StatusCode)
	}
}

// Guesses answered 429 hold nothing in memory: the credential table does
// not grow past the guesses Hexagon was asked about.
func TestRefusedGuessesHoldNothing(t *testing.T) {
	h := newHarness(t, map[string]string{"GUESS_LIMIT": "", "TRUSTED_HOPS": "1"})
	statuses := map[int]int{}
	for i := range 50 {
		resp, _ := h.get(h.proxy.URL+"/wmts/"+credential.Encode(fmt.Sprintf("guess-%d", i))+"/"+credential.Encode("nope")+tilePath, map[string]string{"X-Forwarded-For": "203.0.113.7"})
		statuses[resp.StatusCode]++
	}
	if statuses[http.StatusTooManyRequests] == 0 {
		t.Fatalf("50 guesses from one address: %v", statuses)
	}
	if n := h.app.Server.Creds().Len(); n > statuses[http.StatusForbidden] {
		t.Fatalf("%d credentials held after %v", n, statuses)
	}
}

// Guesses sent at once from one address cost what the same guesses one
// after another do: each is charged as it is admitted, not when Hexagon
// answers (300 at once with a 100 ms token endpoint made 300 token
// requests).
func TestGuessesAtOnceAreChargedAsAdmitted(t *testing.T) {
	h := newHarness(t, map[string]string{"GUESS_LIMIT": "", "TRUSTED_HOPS": "1"})
	h.fake.Set(fakehexagon.Switches{TokenDelay: 100 * time.Millisecond})
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, h.proxy.URL+"/wmts/"+credential.Encode(fmt.Sprintf("guess-%d", i))+"/"+credential.Encode("nope")+tilePath, nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.66")
			if resp, err := h.client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := h.fake.TokenRequests.Load(); n > guesslimit.DefaultBurst {
		t.Fatalf("300 guesses at once from one address made %d token requests, want at most the burst (%d)", n, guesslimit.DefaultBurst)
	}
	figure(t, "300 guesses at once from one address → %d token requests", h.fake.TokenRequests.Load())
}

// Unknown keys asked for at once from one address cannot spend the key
// store's budget for everyone: a valid key not in memory yet still serves
// another address (120 at once with a 30 ms store made 40 store calls and
// left the valid key 429).
func TestKeyGuessesAtOnceLeaveTheStoreForOthers(t *testing.T) {
	var counting *countingStore
	h := newHarnessWith(t, map[string]string{"TRUSTED_HOPS": "1", "GUESS_LIMIT": ""}, func(o *app.Options) {
		counting = &countingStore{Store: o.KeyStore, delay: 30 * time.Millisecond}
		o.KeyStore = counting
	})
	valid := h.addKey(keys.Record{Org: "Cold"})
	var wg sync.WaitGroup
	for range 120 {
		wg.Go(func() {
			k, _ := keys.New()
			req, _ := http.NewRequest(http.MethodGet, h.proxy.URL+"/v2/wmts/"+k+tilePath, nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.67")
			if resp, err := h.client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := counting.gets.Load(); n > guesslimit.DefaultBurst {
		t.Fatalf("120 unknown keys at once from one address made %d store calls, want at most the burst (%d)", n, guesslimit.DefaultBurst)
	}
	if resp, body := h.get(h.keyURL(valid)+tilePath, map[string]string{"X-Forwarded-For": "198.51.100.8"}); resp.StatusCode != http.StatusOK {
		t.Fatalf("a valid cold key from another address after the flood: %d %s", resp.StatusCode, body)
	}
}

// A guess that turns out good is given back: valid keys not in memory
// yet, looked up one after another from one address, cost that address
// nothing: its whole burst of unknown keys is still answered 403, and
// only then 429 (which shows the lookups are charged at all).
func TestGoodGuessesAreRefunded(t *testing.T) {
	h := newHarness(t, map[string]string{"GUESS_LIMIT": "", "TRUSTED_HOPS": "1"})
	from := map[string]string{"X-Forwarded-For": "203.0.113.90"}
	for i := range 3 * guesslimit.DefaultBurst {
		key := h.addKey(keys.Record{Org: fmt.Sprintf("Refunded %d", i)})
		if resp, body := h.get(h.keyURL(key)+tilePath, from); resp.StatusCode != http.StatusOK {
			t.Fatalf("valid key %d, not in memory yet: %d %s", i, resp.StatusCode, body)
		}
	}
	limited := 0
	for i := range guesslimit.DefaultBurst + 2 {
		k, _ := keys.New()
		resp, _ := h.get(h.keyURL(k)+tilePath, from)
		switch {
		case i < guesslimit.DefaultBurst && resp.StatusCode != http.StatusForbidden:
			t.Fatalf("unknown key %d after %d good lookups from the same address: %d, want 403", i+1, 3*guesslimit.DefaultBurst, resp.StatusCode)
		case resp.StatusCode == http.StatusTooManyRequests:
			limited++
		}
	}
	// Two past the burst: a refill (one every 3 s at GUESS_LIMIT=20) may
	// let one through, not both.
	if limited == 0 {
		t.Fatalf("%d unknown keys from one address were never limited: lookups are not charged", guesslimit.DefaultBurst+2)
	}
}
