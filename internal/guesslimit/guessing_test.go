package guesslimit

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hexprox/hexprox/internal/fakehexagon"
)

// guardedProxy is the wiring the server needs, reduced to its core: a
// credential with a cached token skips the limiter; any other asks Check
// first, answers 429 with Retry-After when limited, and records Refused
// when Hexagon refuses it.
type guardedProxy struct {
	limiter   *Limiter
	hexagon   string
	mu        sync.Mutex
	knownGood map[string]bool
}

func (p *guardedProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// /wmts/{id}/{secret}/…, credentials plain for the test's sake.
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/wmts/"), "/", 3)
	id, secret := parts[0], parts[1]
	p.mu.Lock()
	known := p.knownGood[id+"\x00"+secret]
	p.mu.Unlock()
	if known {
		w.WriteHeader(http.StatusOK)
		return
	}
	client := ClientAddr(r, 1)
	if wait, ok := p.limiter.Check(client); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())))
		http.Error(w, "too many refused credentials", http.StatusTooManyRequests)
		return
	}
	q := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	resp, err := http.Get(p.hexagon + "/streaming/oauth/token?" + q.Encode())
	if err != nil {
		http.Error(w, "upstream", http.StatusBadGateway)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		p.mu.Lock()
		p.knownGood[id+"\x00"+secret] = true
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case http.StatusBadRequest, http.StatusUnauthorized:
		p.limiter.Refused(client)
		http.Error(w, "credential refused", http.StatusForbidden)
	default:
		http.Error(w, "upstream", http.StatusBadGateway)
	}
}

func newGuardedProxy(t *testing.T, l *Limiter) (*fakehexagon.Fake, *httptest.Server) {
	t.Helper()
	fake := fakehexagon.New(fakehexagon.Options{})
	fake.AddClient("good-id", "good-secret")
	upstream := httptest.NewServer(fake)
	t.Cleanup(upstream.Close)
	proxy := httptest.NewServer(&guardedProxy{limiter: l, hexagon: upstream.URL, knownGood: map[string]bool{}})
	t.Cleanup(proxy.Close)
	return fake, proxy
}

func get(t *testing.T, base, id, secret, client string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/wmts/"+id+"/"+secret+"/1.0.0/WMTSCapabilities.xml", nil)
	req.Header.Set("X-Forwarded-For", client)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err) // not Fatal: called from workers too
		return &http.Response{Header: http.Header{}}
	}
	io.Copy(io.Discard, resp.Body) // so the connection is reused
	resp.Body.Close()
	return resp
}

// The defect: 5,000 random credentials made 5,000 token requests. With the
// limiter, one address gets its burst and then 429s that cost Hexagon
// nothing, while a credential already known keeps working.
func TestGuessingStopsBeforeHexagon(t *testing.T) {
	// A stopped clock: at 20 a minute, a slow machine would otherwise
	// earn the attacker one more guess every 3 s of the test.
	l, _ := newTest(Options{})
	fake, proxy := newGuardedProxy(t, l)
	const attacker, bystander = "198.51.100.66", "203.0.113.5"
	if resp := get(t, proxy.URL, "good-id", "good-secret", attacker); resp.StatusCode != http.StatusOK {
		t.Fatalf("good credential: %d", resp.StatusCode)
	}
	statuses := map[int]int{}
	for range 5000 {
		resp := get(t, proxy.URL, rand.Text(), rand.Text(), "6.6.6.6, "+attacker) // spoofing changes nothing
		statuses[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
		}
	}
	if got := fake.TokenRequests.Load(); got != 1+DefaultBurst {
		t.Errorf("Hexagon saw %d token requests, want 1 good + %d guesses", got, DefaultBurst)
	}
	if statuses[http.StatusForbidden] != DefaultBurst || statuses[http.StatusTooManyRequests] != 5000-DefaultBurst {
		t.Errorf("statuses %v, want %d refusals then 429s", statuses, DefaultBurst)
	}
	if resp := get(t, proxy.URL, "good-id", "good-secret", attacker); resp.StatusCode != http.StatusOK {
		t.Errorf("the known-good credential was limited: %d", resp.StatusCode)
	}
	if resp := get(t, proxy.URL, "typo-id", "typo-secret", bystander); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another address's first mistake: %d, want Hexagon's refusal", resp.StatusCode)
	}
}

// Guesses in flight together all pass Check before their refusals land;
// the window is the concurrency, not the number of guesses.
func TestConcurrentGuessingIsBoundedByConcurrency(t *testing.T) {
	const workers, guesses = 32, 2000
	l, _ := newTest(Options{})
	fake, proxy := newGuardedProxy(t, l)
	var wg sync.WaitGroup
	next := make(chan struct{}, guesses)
	for range guesses {
		next <- struct{}{}
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for range next {
				get(t, proxy.URL, rand.Text(), rand.Text(), "198.51.100.66")
			}
		})
	}
	wg.Wait()
	got := fake.TokenRequests.Load()
	if got > DefaultBurst+workers {
		t.Errorf("Hexagon saw %d token requests from %d concurrent guessers, want at most burst + concurrency = %d", got, workers, DefaultBurst+workers)
	}
	t.Logf("%d guesses with %d in flight: %d token requests", guesses, workers, got)
}
