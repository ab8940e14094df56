// Package guesslimit stops credential guessing from costing anything
// upstream: it counts, per client address, the credentials Hexagon refused,
// and tells the server when an address has used up its allowance, so that
// the server can answer 429 without asking Hexagon at all.
//
// Without it, every random credential in a request path becomes one token
// request to Hexagon (5,000 guesses made 5,000 token requests in 1.8 s),
// which can get the proxy's outgoing address rate-limited or blocked, or
// lock a client id if Hexagon locks ids after failed attempts.
//
// The package has two halves: [Limiter], the bounded per-address table, and
// [ClientAddr], which finds the address a request came from without letting
// the client choose it.
package guesslimit

import (
	"net/netip"
	"sync"
	"time"
)

// Defaults for the zero fields of [Options].
const (
	DefaultPerMinute = 20
	DefaultBurst     = 10
	DefaultMaxAddrs  = 10_000
)

// maxPenalty bounds how long an address can be made to wait: refusals
// recorded beyond the allowance (requests that passed Check together and
// were refused together) still count, but never push the wait past this.
const maxPenalty = time.Minute

// Options configure a [Limiter]. The zero value is usable: every zero or
// negative field takes its default.
type Options struct {
	// PerMinute is the long-run number of refusals an address may cause
	// per minute once its burst is spent. Default DefaultPerMinute (20).
	PerMinute int

	// Burst is how many refusals an address with a clean record may cause
	// at once before it is limited. Default DefaultBurst (10).
	Burst int

	// MaxAddrs caps the number of addresses tracked, and so the memory
	// used (about 130 bytes per address). Default DefaultMaxAddrs (10,000).
	MaxAddrs int

	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// A Limiter limits refused credentials per client address with a token
// bucket of Burst refusals refilled at PerMinute per minute, kept as one
// timestamp per address (GCRA).
//
// Only refusals are counted: asking [Limiter.Check] costs nothing, and an
// address is tracked only once it has caused a refusal. The server must not
// consult the Limiter for credentials it already holds a token for, so
// known-good credentials are never limited.
//
// Addresses are grouped as an attacker gets them cheaply: an IPv4 address
// is its own key, an IPv6 address is keyed by its /64 prefix (one host is
// routinely given a whole /64), and an IPv4-mapped IPv6 address counts as
// its IPv4 address. The zero [netip.Addr] is one shared key, so an
// unparsable client address is limited rather than exempt.
//
// Memory is bounded: at most MaxAddrs keys are kept, in order of their
// latest refusal, and every operation is O(1). Eviction is built so that
// many addresses cannot buy a fresh allowance for one:
//
//   - entries are created only by refusals, each of which an attacker pays
//     for with a request that reaches Hexagon and counts against an
//     address of their own;
//   - a key is evicted only to make room for the refusal of a new key, and
//     the one evicted is the least recently refused;
//   - when the table is full and even its least recently refused key has
//     not yet earned back its whole burst (the table is saturated: more
//     than MaxAddrs keys are being refused right now), Check answers
//     "limited" for every key the table does not hold, until that key has. Forgetting a key therefore never
//     lets it in while the attack that forced it out lasts, and however
//     many addresses an attacker controls, no more than MaxAddrs×Burst
//     refusals pass Check at once and MaxAddrs×PerMinute per minute after
//     (plus requests in flight together; see below).
//
// The price of the last rule is that an attack from more than MaxAddrs
// keys also holds back new, unknown credentials from everyone else until
// it stops; credentials with a cached token are unaffected.
//
// Check does not reserve: requests from one address that are in flight
// together all pass Check before any of their refusals is recorded. Take
// does: it charges the guess as it admits it, so that a burst of guesses
// sent at once costs no more than the same guesses one after another, and
// Refund gives the charge back when the guess turned out good.
//
// A nil *Limiter limits nothing: Check always allows and Refused does
// nothing, so a server can run without one. A Limiter is safe for
// concurrent use.
type Limiter struct {
	interval time.Duration // 1 min / PerMinute: one refusal's cost
	slack    time.Duration // (Burst-1) × interval: allowance beyond one
	max      int
	now      func() time.Time

	mu      sync.Mutex
	entries map[netip.Addr]*entry
	// root is the sentinel of a circular doubly-linked list of entries:
	// root.next is the most recently refused, root.prev the least.
	root entry
}

type entry struct {
	key netip.Addr
	// tat is the GCRA's theoretical arrival time: the instant at which
	// this key's bucket is full again. The key is limited while
	// tat - now > slack.
	tat        time.Time
	prev, next *entry
}

// New returns a Limiter with the given options, defaults filled in.
func New(o Options) *Limiter {
	if o.PerMinute <= 0 {
		o.PerMinute = DefaultPerMinute
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.MaxAddrs <= 0 {
		o.MaxAddrs = DefaultMaxAddrs
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	interval := time.Minute / time.Duration(o.PerMinute)
	l := &Limiter{
		interval: interval,
		slack:    time.Duration(o.Burst-1) * interval,
		max:      o.MaxAddrs,
		now:      o.Now,
		entries:  make(map[netip.Addr]*entry),
	}
	l.root.next, l.root.prev = &l.root, &l.root
	return l
}

// Check reports whether addr may still try a credential the server does
// not know. When it may not, retryAfter is how long to wait: a whole
// number of seconds, at least one, suitable for a Retry-After header.
// When ok is true, retryAfter is zero. Check records nothing.
func (l *Limiter) Check(addr netip.Addr) (retryAfter time.Duration, ok bool) {
	return l.admit(addr, false)
}

// Take is Check that also charges the guess when it admits it, as if it
// were refused already: guesses in flight together from one address are
// admitted no further than its allowance. Give the charge back with
// Refund when the guess turns out to be no guess (Hexagon accepted the
// credential, or could not answer).
func (l *Limiter) Take(addr netip.Addr) (retryAfter time.Duration, ok bool) {
	return l.admit(addr, true)
}

// lock takes l's lock and returns addr's key and the time now; the
// caller unlocks.
func (l *Limiter) lock(addr netip.Addr) (netip.Addr, time.Time) {
	k, now := key(addr), l.now()
	l.mu.Lock()
	return k, now
}

// admit is Check, and with charge Take.
func (l *Limiter) admit(addr netip.Addr, charge bool) (retryAfter time.Duration, ok bool) {
	if l == nil {
		return 0, true
	}
	k, now := l.lock(addr)
	defer l.mu.Unlock()
	if e := l.entries[k]; e != nil {
		if wait := e.tat.Sub(now) - l.slack; wait > 0 {
			return wholeSeconds(wait), false
		}
	} else if len(l.entries) >= l.max {
		if wait := l.root.prev.tat.Sub(now); wait > 0 {
			// Saturated: see the Limiter doc. The table frees a
			// lossless slot when its oldest key's bucket is full.
			return wholeSeconds(wait), false
		}
	}
	if charge {
		l.chargeLocked(k, now)
	}
	return 0, true
}

// Refund gives back one charge that Take made for addr.
func (l *Limiter) Refund(addr netip.Addr) {
	if l == nil {
		return
	}
	k, now := l.lock(addr)
	defer l.mu.Unlock()
	e := l.entries[k]
	if e == nil {
		return // forgotten meanwhile: nothing to give back
	}
	if e.tat = e.tat.Add(-l.interval); e.tat.Before(now) {
		e.tat = now
	}
}

// Refused records that a credential tried from addr was refused by
// Hexagon. Call it only when Hexagon was actually asked; a refusal the
// server answers from memory costs nothing upstream and need not count.
// At the cap, it evicts the least recently refused address to make room.
func (l *Limiter) Refused(addr netip.Addr) {
	if l == nil {
		return
	}
	k, now := l.lock(addr)
	defer l.mu.Unlock()
	l.chargeLocked(k, now)
}

// chargeLocked records one refusal of key k. Callers hold l.mu.
func (l *Limiter) chargeLocked(k netip.Addr, now time.Time) {
	e := l.entries[k]
	switch {
	case e != nil:
		l.unlink(e)
	case len(l.entries) >= l.max:
		e = l.root.prev // least recently refused: reuse it
		l.unlink(e)
		delete(l.entries, e.key)
		*e = entry{key: k}
		l.entries[k] = e
	default:
		e = &entry{key: k}
		l.entries[k] = e
	}
	tat := e.tat
	if tat.Before(now) {
		tat = now
	}
	tat = tat.Add(l.interval)
	if ceiling := now.Add(l.slack + maxPenalty); tat.After(ceiling) {
		tat = ceiling
	}
	e.tat = tat
	l.pushFront(e)
}

func (l *Limiter) unlink(e *entry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (l *Limiter) pushFront(e *entry) {
	e.prev = &l.root
	e.next = l.root.next
	l.root.next.prev = e
	l.root.next = e
}

// key groups addresses: IPv4 (also IPv4-mapped IPv6) by the whole address,
// IPv6 by its /64 prefix, zones dropped.
func key(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// wholeSeconds rounds d up to a whole number of seconds, at least one.
func wholeSeconds(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second
	if s < 1 {
		s = 1
	}
	return s * time.Second
}
