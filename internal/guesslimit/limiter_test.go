package guesslimit

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/testclock"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newTest(o Options) (*Limiter, *testclock.Clock) {
	c := testclock.New(t0)
	o.Now = c.Now
	return New(o), c
}

// try is what the server does for an unknown credential that Hexagon
// refuses: ask, and record the refusal only if it was allowed to ask.
func try(l *Limiter, a netip.Addr) bool {
	if _, ok := l.Check(a); !ok {
		return false
	}
	l.Refused(a)
	return true
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// v4 returns a distinct IPv4 address for each i.
func v4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestDefaultsLimitAfterBurstOfTen(t *testing.T) {
	l, _ := newTest(Options{})
	a := addr("203.0.113.7")
	for i := range DefaultBurst {
		if wait, ok := l.Check(a); !ok || wait != 0 {
			t.Fatalf("attempt %d: Check = %v, %v; want allowed with no wait", i+1, wait, ok)
		}
		l.Refused(a)
	}
	wait, ok := l.Check(a)
	if ok {
		t.Fatalf("after %d refusals Check still allows", DefaultBurst)
	}
	// 20 per minute: the next attempt is earned 3 s after the burst.
	if wait != 3*time.Second {
		t.Errorf("retryAfter = %v, want 3s", wait)
	}
}

func TestCheckDoesNotConsume(t *testing.T) {
	l, _ := newTest(Options{Burst: 2})
	a := addr("203.0.113.7")
	for range 100 {
		if _, ok := l.Check(a); !ok {
			t.Fatal("Check alone limited an address that was never refused")
		}
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Check alone tracked %d addresses, want 0", n)
	}
}

func TestRecoversAtTheRetryAfter(t *testing.T) {
	l, clock := newTest(Options{PerMinute: 20, Burst: 3})
	a := addr("198.51.100.20")
	for range 3 {
		l.Refused(a)
	}
	wait, ok := l.Check(a)
	if ok || wait != 3*time.Second {
		t.Fatalf("Check = %v, %v; want limited for 3s", wait, ok)
	}
	clock.Advance(wait - time.Millisecond)
	if wait, ok := l.Check(a); ok || wait != time.Second {
		t.Fatalf("1 ms before the Retry-After: Check = %v, %v; want limited for 1s", wait, ok)
	}
	clock.Advance(time.Millisecond)
	if _, ok := l.Check(a); !ok {
		t.Fatal("still limited at the Retry-After")
	}
	l.Refused(a)
	if wait, ok := l.Check(a); ok || wait != 3*time.Second {
		t.Fatalf("after one more refusal: Check = %v, %v; want limited for 3s again", wait, ok)
	}
	clock.Advance(time.Minute)
	for i := range 3 {
		if !try(l, a) {
			t.Fatalf("a minute later, attempt %d of a fresh burst was limited", i+1)
		}
	}
}

// An address guessing ten times a second for ten minutes gets its burst
// and then exactly PerMinute a minute.
func TestLongRunRateIsPerMinute(t *testing.T) {
	l, clock := newTest(Options{PerMinute: 20, Burst: 10})
	a := addr("203.0.113.9")
	allowed := 0
	for range 10 * 60 * 10 {
		if try(l, a) {
			allowed++
		}
		clock.Advance(100 * time.Millisecond)
	}
	// 10 at t=0, then one at t = 3 s, 6 s, … 597 s: 199 more.
	if allowed != 209 {
		t.Errorf("allowed %d attempts in 10 minutes, want 209", allowed)
	}
}

func TestRetryAfterIsWholeSecondsAtLeastOne(t *testing.T) {
	for _, tc := range []struct {
		perMinute int
		advance   time.Duration
		want      time.Duration
	}{
		{perMinute: 7, want: 9 * time.Second}, // 60/7 = 8.57 s
		{perMinute: 7, advance: 8500 * time.Millisecond, want: time.Second},
		{perMinute: 600, want: time.Second}, // 100 ms
		{perMinute: 1, want: time.Minute},
		{perMinute: 1, advance: 59*time.Second + 999*time.Millisecond, want: time.Second},
	} {
		t.Run(fmt.Sprintf("%d/min+%v", tc.perMinute, tc.advance), func(t *testing.T) {
			l, clock := newTest(Options{PerMinute: tc.perMinute, Burst: 1})
			a := addr("192.0.2.1")
			l.Refused(a)
			clock.Advance(tc.advance)
			wait, ok := l.Check(a)
			if ok {
				t.Fatal("not limited")
			}
			if wait != tc.want || wait%time.Second != 0 || wait < time.Second {
				t.Errorf("retryAfter = %v, want %v", wait, tc.want)
			}
		})
	}
}

// Concurrent requests that all passed Check are all refused together: each
// refusal counts, but the wait they buy is capped at a minute.
func TestRefusalsBeyondTheLimitCountUpToAMinute(t *testing.T) {
	l, clock := newTest(Options{PerMinute: 20, Burst: 10})
	a := addr("203.0.113.50")
	for range 15 {
		l.Refused(a)
	}
	if wait, _ := l.Check(a); wait != 18*time.Second { // 5 over the burst, 3 s each, plus the next one's 3 s
		t.Errorf("after 15 refusals retryAfter = %v, want 18s", wait)
	}
	for range 5000 {
		l.Refused(a)
	}
	if wait, _ := l.Check(a); wait != time.Minute {
		t.Errorf("after 5015 refusals retryAfter = %v, want the 1m cap", wait)
	}
	clock.Advance(time.Minute)
	if !try(l, a) {
		t.Error("still limited once the capped wait passed")
	}
}

func TestAddressesAreIndependent(t *testing.T) {
	l, _ := newTest(Options{Burst: 2})
	a, b := addr("203.0.113.7"), addr("203.0.113.8")
	l.Refused(a)
	l.Refused(a)
	if _, ok := l.Check(a); ok {
		t.Fatal("a not limited")
	}
	if _, ok := l.Check(b); !ok {
		t.Fatal("b, a neighbour of a with no refusals, is limited")
	}
}

func TestAddressGrouping(t *testing.T) {
	for _, tc := range []struct {
		refused, checked string
		same             bool
	}{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"2001:db8:1:2::1", "2001:db8:1:2::1", true},
		{"::ffff:203.0.113.7", "203.0.113.7", true},
		{"203.0.113.7", "::ffff:203.0.113.7", true},
		{"203.0.113.7", "203.0.113.6", false},
		{"fe80::1%eth0", "fe80::2%eth1", true},
		{"::ffff:203.0.113.7", "::ffff:203.0.113.8", false},
	} {
		t.Run(tc.refused+"~"+tc.checked, func(t *testing.T) {
			l, _ := newTest(Options{Burst: 1})
			l.Refused(addr(tc.refused))
			_, ok := l.Check(addr(tc.checked))
			if limited := !ok; limited != tc.same {
				t.Errorf("%s limited after a refusal from %s: %v, want %v", tc.checked, tc.refused, limited, tc.same)
			}
		})
	}
}

// An unparsable client address must not be a way out of the limit.
func TestZeroAddrIsOneSharedAddress(t *testing.T) {
	l, _ := newTest(Options{Burst: 2})
	l.Refused(netip.Addr{})
	l.Refused(netip.Addr{})
	if _, ok := l.Check(netip.Addr{}); ok {
		t.Error("the zero Addr is exempt from the limit")
	}
}

func TestNilLimiterLimitsNothing(t *testing.T) {
	var l *Limiter
	for range 100 {
		l.Refused(addr("203.0.113.7"))
	}
	if wait, ok := l.Check(addr("203.0.113.7")); !ok || wait != 0 {
		t.Errorf("nil Limiter: Check = %v, %v; want allowed", wait, ok)
	}
	if l.Len() != 0 {
		t.Error("nil Limiter has entries")
	}
}

// keys lists the tracked keys from most to least recently refused, and
// checks that the list and the map agree.
func keys(t *testing.T, l *Limiter) []netip.Addr {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []netip.Addr
	for e := l.root.next; e != &l.root; e = e.next {
		if e.next.prev != e || l.entries[e.key] != e {
			t.Fatalf("list and map disagree at %v", e.key)
		}
		out = append(out, e.key)
	}
	if len(out) != len(l.entries) {
		t.Fatalf("list holds %d entries, map %d", len(out), len(l.entries))
	}
	return out
}

func TestEvictsLeastRecentlyRefusedAtTheCap(t *testing.T) {
	l, clock := newTest(Options{MaxAddrs: 3, Burst: 1, PerMinute: 60})
	a, b, c, d, e := v4(1), v4(2), v4(3), v4(4), v4(5)
	for _, x := range []netip.Addr{a, b, c} {
		l.Refused(x)
		clock.Advance(2 * time.Second) // each recovers before the next
	}
	l.Refused(a) // a becomes the most recent; b is now the least
	clock.Advance(2 * time.Second)
	l.Refused(d)
	if got, want := keys(t, l), []netip.Addr{d, a, c}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after d: keys %v, want %v (b evicted)", got, want)
	}
	clock.Advance(2 * time.Second)
	l.Refused(e)
	if got, want := keys(t, l), []netip.Addr{e, d, a}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after e: keys %v, want %v (c evicted)", got, want)
	}
}

func TestMemoryIsBounded(t *testing.T) {
	l, clock := newTest(Options{MaxAddrs: 500})
	for i := range 100_000 {
		l.Refused(v4(i))
		if i%1000 == 0 {
			clock.Advance(time.Minute)
		}
	}
	if n := l.Len(); n != 500 {
		t.Errorf("after 100,000 addresses Len = %d, want the cap, 500", n)
	}
	if n := len(keys(t, l)); n != 500 {
		t.Errorf("list holds %d entries, want 500", n)
	}
}

// However many addresses an attacker uses at once, no more than
// MaxAddrs × Burst guesses reach Hexagon before time passes.
func TestManyAddressesCannotEscapeByEviction(t *testing.T) {
	const maxAddrs, burst = 4, 2
	l, clock := newTest(Options{MaxAddrs: maxAddrs, Burst: burst, PerMinute: 20})
	allowed := 0
	for range 10 {
		for i := range 100 {
			if try(l, v4(i)) {
				allowed++
			}
		}
	}
	if allowed != maxAddrs*burst {
		t.Errorf("100 addresses got %d guesses through, want MaxAddrs×Burst = %d", allowed, maxAddrs*burst)
	}
	if l.Len() > maxAddrs {
		t.Errorf("Len = %d above the cap", l.Len())
	}
	// New addresses are told when the oldest entry has recovered…
	wait, ok := l.Check(v4(1000))
	if ok || wait != 6*time.Second {
		t.Fatalf("saturated: new address Check = %v, %v; want limited for 6s", wait, ok)
	}
	// …and are let in then.
	clock.Advance(wait)
	if !try(l, v4(1000)) {
		t.Error("new address still limited after the saturated table recovered")
	}
}

// An address forced out of a saturated table (a refusal the server
// recorded although Check said no, as concurrent requests can) is still
// limited while the table stays saturated.
func TestEvictedAddressStaysLimitedWhileSaturated(t *testing.T) {
	l, _ := newTest(Options{MaxAddrs: 3, Burst: 2})
	victim := v4(1)
	l.Refused(victim)
	l.Refused(victim)
	l.Refused(v4(2))
	l.Refused(v4(3))
	l.Refused(v4(4)) // evicts victim
	if got := keys(t, l); len(got) != 3 || got[2] != v4(2) {
		t.Fatalf("victim not evicted: keys %v", got)
	}
	if _, ok := l.Check(victim); ok {
		t.Error("the evicted address got a fresh allowance while the table is saturated")
	}
}

func TestClockGoingBackwards(t *testing.T) {
	now := t0
	l := New(Options{Burst: 1, Now: func() time.Time { return now }})
	a := addr("192.0.2.9")
	l.Refused(a)
	now = now.Add(-time.Hour)
	if wait, ok := l.Check(a); ok || wait < time.Second || wait > time.Hour+maxPenalty || wait%time.Second != 0 {
		t.Errorf("after the clock went back: Check = %v, %v", wait, ok)
	}
	l.Refused(a)
	if wait, _ := l.Check(a); wait > maxPenalty+3*time.Second {
		t.Errorf("a refusal after the clock went back set a wait of %v, above the cap", wait)
	}
}

func TestConcurrentRefusalsAreNotLost(t *testing.T) {
	l, _ := newTest(Options{PerMinute: 20, Burst: 10})
	a := addr("203.0.113.99")
	var wg sync.WaitGroup
	for range 15 {
		wg.Go(func() { l.Refused(a) })
	}
	wg.Wait()
	if wait, _ := l.Check(a); wait != 18*time.Second {
		t.Errorf("after 15 concurrent refusals retryAfter = %v, want 18s", wait)
	}
}

func TestConcurrentUse(t *testing.T) {
	l, clock := newTest(Options{MaxAddrs: 64, Burst: 3})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				clock.Advance(10 * time.Millisecond)
				_ = l.Len()
			}
		}
	})
	var workers sync.WaitGroup
	for w := range 8 {
		workers.Go(func() {
			for i := range 5000 {
				a := v4((w*7919 + i*31) % 300)
				if i%5 == 0 {
					a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(w), byte(i), 15: byte(i)})
				}
				try(l, a)
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()
	if n := len(keys(t, l)); n > 64 {
		t.Errorf("%d entries after concurrent use, above the cap of 64", n)
	}
}

// Take charges as it admits: guesses sent at once from one address are
// admitted no further than its burst, and a refund gives a charge back.
func TestTakeReservesAndRefundGivesBack(t *testing.T) {
	l, _ := newTest(Options{})
	a := addr("203.0.113.9")
	admitted := 0
	for range 3 * DefaultBurst { // all "in flight": nothing refused yet
		if _, ok := l.Take(a); ok {
			admitted++
		}
	}
	if admitted != DefaultBurst {
		t.Fatalf("%d guesses in flight together admitted, want the burst (%d)", admitted, DefaultBurst)
	}
	// The guesses turned out good: their charges come back.
	for range DefaultBurst {
		l.Refund(a)
	}
	if _, ok := l.Take(a); !ok {
		t.Fatal("refunded charges were not given back")
	}
	l.Refund(addr("198.51.100.1")) // never charged: nothing to give back, no panic
	var nl *Limiter
	if _, ok := nl.Take(a); !ok {
		t.Fatal("a nil Limiter limits nothing")
	}
	nl.Refund(a)
}

func TestTakeConcurrent(t *testing.T) {
	l, _ := newTest(Options{})
	a := addr("203.0.113.10")
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for range 200 {
		wg.Go(func() {
			if _, ok := l.Take(a); ok {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != DefaultBurst {
		t.Fatalf("200 concurrent guesses: %d admitted, want %d", admitted, DefaultBurst)
	}
}
