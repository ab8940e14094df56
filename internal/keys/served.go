package keys

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/origin"
	"github.com/hexprox/hexprox/internal/usage/limit"
)

// Key is a key's record as Lookup serves it, with the state of its
// credential sets (which their upstream refused, and the day an ending
// provider key was last warned of). Lookup returns the same *Key
// until the record is next fetched; refusals are forgotten then. A Key is
// safe for concurrent use.
type Key struct {
	rec     Record
	fp      string
	log     *slog.Logger
	now     func() time.Time
	title   string         // the provider's, for messages (Cache.title)
	warned  []atomic.Int64 // per set: 1 + the UTC day its end was last warned of
	origins origin.List    // rec.Origins, parsed once
	limits  *limit.Limiter // rec's rate, burst and daily_requests; nil: none
	next    atomic.Uint64
	refused []atomic.Bool
	lastMu  sync.Mutex // held by RefusedUnlessLast: one last set left, whoever races
}

// newKey serves rec; title names its provider in messages (Cache.title:
// never "").
func newKey(rec Record, fp, title string, log *slog.Logger, now func() time.Time) *Key {
	// The sets hashed once, not per request: a copy, as the store may
	// share the record's slice with other readers.
	sets := make([]credential.Credential, len(rec.Sets))
	for i, c := range rec.Sets {
		sets[i] = c.Keyed()
	}
	rec.Sets = sets
	k := &Key{rec: rec, fp: fp, title: title, log: log, now: now, refused: make([]atomic.Bool, len(rec.Sets)), warned: make([]atomic.Int64, len(rec.Sets)),
		limits: limit.New(limit.Limits{Rate: rec.Rate, Burst: rec.Burst, Daily: rec.DailyRequests})}
	if len(rec.Origins) > 0 {
		var err error
		if k.origins, err = origin.Parse(strings.Join(rec.Origins, ",")); err != nil {
			// An origin the record gets wrong allows nothing; the rest of
			// the key still works.
			log.Warn("the key's origins are not valid ALLOWED_ORIGINS entries; none of them is allowed", "key", fp, "org", rec.Org, "err", err)
			k.origins = origin.List{}
		}
	}
	return k
}

// Limiter returns the key's limits on this instance (nil: none). Its rate
// allowance carries over when the record is fetched again, unless the
// record's limits changed.
func (k *Key) Limiter() *limit.Limiter { return k.limits }

// AllowsOrigin reports whether the key's own origins allow a browser
// origin (the global ALLOWED_ORIGINS are the server's to check).
func (k *Key) AllowsOrigin(o string) bool { return k.origins.Allowed(o) }

// HasOrigins reports whether the key's record names origins of its own:
// then they alone say which browsers it serves, in place of
// ALLOWED_ORIGINS. Origins the record gets wrong allow nothing.
func (k *Key) HasOrigins() bool { return len(k.rec.Origins) > 0 }

func (k *Key) serve(now time.Time) (*Key, error) {
	if err := lifecycle(k.rec, now); err != nil {
		return nil, err
	}
	return k, nil
}

// Record returns a copy of the key's record. It holds the credential
// sets: never log or show it whole.
func (k *Key) Record() Record {
	r := k.rec
	r.Sets = append([]credential.Credential(nil), r.Sets...)
	r.Origins = append([]string(nil), r.Origins...)
	return r
}

// Redirects reports whether the key's record lets its desktop tiles and
// maps be redirected to Hexagon with a token (Record.Redirect).
func (k *Key) Redirects() bool { return k.rec.Redirect }

// Sets returns the key's credential sets, which the caller must not
// change, log or show.
func (k *Key) Sets() []credential.Credential { return k.rec.Sets }

// Provider returns the provider of the key's sets: "" for Hexagon.
func (k *Key) Provider() string { return k.rec.Provider }

// Endpoint returns the family of Hexagon's services the key uses.
func (k *Key) Endpoint() Endpoint { return k.rec.Endpoint }

// Org returns the record's organisation, for logs.
func (k *Key) Org() string { return k.rec.Org }

// Fingerprint returns the key's fingerprint, for logs.
func (k *Key) Fingerprint() string { return k.fp }

// LogValue implements slog.LogValuer: the fingerprint and organisation.
func (k *Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key", k.fp), slog.String("org", k.rec.Org))
}

// Pick returns the credential set to use for a request and its index,
// going round the sets their upstream has not refused, so that requests
// (and the token sources the server keeps per credential) spread evenly
// over them. A set whose provider key ends within EndWarning is logged
// once a day as it is picked (noteEnd).
// When every set was refused it returns a failure.Forbidden whose message
// tells the key holder whom to contact.
func (k *Key) Pick() (credential.Credential, int, error) {
	// Count the sets left, then take the r-th of them: even shares
	// whichever sets were refused (sets are few; this is O(sets)).
	left := uint64(0)
	for i := range k.refused {
		if !k.refused[i].Load() {
			left++
		}
	}
	if left > 0 {
		r := (k.next.Add(1) - 1) % left
		for i := range k.refused {
			if k.refused[i].Load() {
				continue
			}
			if r == 0 {
				if !k.rec.Sets[i].Expires.IsZero() {
					k.noteEnd(i)
				}
				return k.rec.Sets[i], i, nil
			}
			r--
		}
		// A set was refused between the count and the walk: take any left.
		for i := range k.refused {
			if !k.refused[i].Load() {
				return k.rec.Sets[i], i, nil
			}
		}
	}
	who := k.rec.Contact
	if who == "" {
		who = "the administrator of this proxy"
	}
	return credential.Credential{}, -1, failure.New(failure.Forbidden,
		"every "+k.title+" credential behind this key was refused; contact "+who, nil)
}

// EndWarning is how long before a provider's key ends that the server's
// log and the keys CLI warn of it.
const EndWarning = 14 * 24 * time.Hour

// Ending returns the end of set c when it falls within EndWarning of
// now (or has passed), and whether it does.
func Ending(c credential.Credential, now time.Time) (time.Time, bool) {
	return c.Expires, !c.Expires.IsZero() && c.Expires.Sub(now) <= EndWarning
}

// noteEnd warns, at most once a day per set of a key and instance, that
// the key of set i ends within EndWarning (or has ended): its provider
// will refuse it then, and the key holder's maps go blank.
func (k *Key) noteEnd(i int) {
	now := k.now()
	end, soon := Ending(k.rec.Sets[i], now)
	if !soon {
		return
	}
	day := now.Unix()/86400 + 1
	if k.warned[i].Swap(day) == day {
		return
	}
	hint := "replace it (handler keys replace-credential --provider " + k.rec.Provider + " --key-expires DATE)"
	msg := "a provider's key behind this key ends soon: " + hint
	if !end.After(now) {
		msg = "a provider's key behind this key has ended: " + hint
	}
	k.log.Warn(msg, "key", k.fp, "org", k.rec.Org, "provider", k.rec.Provider, "set", i+1,
		"ends", end.UTC().Format(time.RFC3339), "days_left", int(end.Sub(now).Hours()/24))
}

// RefusedUnlessLast marks set refused, as Refused does, unless no other
// set is left, and reports whether it did. Concurrent callers, each on
// a set of its own (requests of one key), cannot between them refuse the
// last one: a refusal that may be of the resource rather than the
// credential (a provider's static key) never leaves the key no set.
func (k *Key) RefusedUnlessLast(set int) bool {
	if set < 0 || set >= len(k.refused) {
		return false
	}
	k.lastMu.Lock()
	defer k.lastMu.Unlock()
	for i := range k.refused {
		if i != set && !k.refused[i].Load() {
			k.Refused(set)
			return true
		}
	}
	return false
}

// Refused marks set (an index Pick returned) as refused by its upstream
// (Hexagon or the key's provider): Pick
// skips it until the record is next fetched. The first refusal of a set
// is logged with the organisation and the set's index. Out-of-range
// indexes are ignored.
func (k *Key) Refused(set int) {
	if set < 0 || set >= len(k.refused) {
		return
	}
	if !k.refused[set].Swap(true) {
		left := 0
		for i := range k.refused {
			if !k.refused[i].Load() {
				left++
			}
		}
		k.log.Warn("the upstream refused a credential set of a key; skipping it until the key is next refreshed",
			"upstream", k.title, "key", k.fp, "org", k.rec.Org, "set", set+1, "sets_left", left) // numbered from 1, as the keys CLI does
	}
}

// Unrefuse takes back a Refused mark of set: the refusal it was made for
// proved to be of the resource (the next set was refused the same
// request), not of the set, which Pick offers again. Out-of-range
// indexes and sets not marked are ignored.
func (k *Key) Unrefuse(set int) {
	if set < 0 || set >= len(k.refused) {
		return
	}
	if k.refused[set].Swap(false) {
		k.log.Info("a credential set of a key is used again: the next set was refused the same request, so the refusal was of the resource",
			"upstream", k.title, "key", k.fp, "org", k.rec.Org, "set", set+1)
	}
}
