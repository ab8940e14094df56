// Package storetest is the conformance suite every keys.Store must pass:
// the JSON file store and the Key Vault store run it alike.
//
// What the suite requires beyond the keys.Store interface comments:
//   - Create, Get and Update of a key that fails keys.Check return
//     keys.ErrSyntax (and reach no backend).
//   - Times come back Equal to what was written when written in whole
//     seconds (Key Vault attributes are Unix seconds).
//   - Created is either zero or set by the store to about the time of
//     Create.
//   - For a disabled record, a store that cannot read its value (Key
//     Vault refuses to read a disabled secret) may return Org, Contact,
//     Note, Sets, Origins and limits empty; whatever it does return must
//     be what was written. Enabled records, from Get and from List, come
//     back whole.
//   - Any spelling of a key (keys are case-insensitive) names its record.
//   - No error text carries a key or a client secret.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/keys"
)

// Key returns a fresh key as keys.New makes them.
func Key(t testing.TB) string {
	t.Helper()
	k, err := keys.New()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Record returns a full record with every field a store supports set,
// and client secrets unique to this call (so leaks can be searched for).
func Record(t testing.TB) keys.Record {
	t.Helper()
	base := time.Now().UTC().Truncate(time.Second)
	return keys.Record{
		Org:     "Sonoma County",
		Contact: "gis@example.org",
		Note:    "portal items; ticket 42",
		Sets: []credential.Credential{
			{ID: "client-one", Secret: "secret-one-" + Key(t)},
			{ID: "client-two", Secret: "secret-two-" + Key(t)},
		},
		Origins:       []string{"https://sonoma.maps.arcgis.com", "https://*.sonomacounty.gov"},
		Enabled:       true,
		NotBefore:     base.Add(-time.Hour),
		Expires:       base.Add(30 * 24 * time.Hour),
		Rate:          12.5,
		Burst:         40,
		DailyRequests: 100000,
	}
}

// Run runs the suite. newStore is called once per subtest and must return
// an empty store that the subtest may fill.
func Run(t *testing.T, newStore func(t *testing.T) keys.Store) {
	ctx := context.Background()

	t.Run("get unknown", func(t *testing.T) {
		s := newStore(t)
		key := Key(t)
		_, err := s.Get(ctx, key)
		if !errors.Is(err, keys.ErrNotFound) {
			t.Fatalf("Get of an unknown key: want ErrNotFound, got %v", err)
		}
		noSecret(t, err, key)
	})

	t.Run("bad syntax", func(t *testing.T) {
		s := newStore(t)
		for _, bad := range []string{"", "a b", "key/../x", "ключ", "k\n", strings.Repeat("a", keys.MaxLen+1)} {
			if _, err := s.Get(ctx, bad); !errors.Is(err, keys.ErrSyntax) {
				t.Errorf("Get(%q): want ErrSyntax, got %v", bad, err)
			}
			if err := s.Create(ctx, bad, Record(t)); !errors.Is(err, keys.ErrSyntax) {
				t.Errorf("Create(%q): want ErrSyntax, got %v", bad, err)
			}
			if err := s.Update(ctx, bad, Record(t)); !errors.Is(err, keys.ErrSyntax) {
				t.Errorf("Update(%q): want ErrSyntax, got %v", bad, err)
			}
		}
	})

	t.Run("create get round trip", func(t *testing.T) {
		s := newStore(t)
		key, want := Key(t), Record(t)
		before := time.Now()
		if err := s.Create(ctx, key, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		checkCreated(t, got, before)
		Same(t, got, want)
	})

	t.Run("original layout", func(t *testing.T) {
		// Only what the original HexProx's records hold: org, contact and
		// one set, no lifecycle bounds, no limits.
		s := newStore(t)
		key := "a1b2c3d4-0000-4e5f-8a9b-abcdefabcdef" // an original-style key, no prefix
		want := keys.Record{Org: "Org name", Contact: "Contact name", Enabled: true,
			Sets: []credential.Credential{{ID: "id-1", Secret: "secret-1"}}}
		if err := s.Create(ctx, key, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		Same(t, got, want)
	})

	t.Run("lifecycle is kept, not enforced", func(t *testing.T) {
		s := newStore(t)
		now := time.Now().UTC().Truncate(time.Second)
		cases := map[string]func(*keys.Record){
			"expired":       func(r *keys.Record) { r.NotBefore = now.Add(-48 * time.Hour); r.Expires = now.Add(-time.Hour) },
			"not yet valid": func(r *keys.Record) { r.NotBefore = now.Add(time.Hour); r.Expires = time.Time{} },
			"unbounded":     func(r *keys.Record) { r.NotBefore = time.Time{}; r.Expires = time.Time{} },
		}
		for name, edit := range cases {
			key, want := Key(t), Record(t)
			edit(&want)
			if err := s.Create(ctx, key, want); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := s.Get(ctx, key)
			if err != nil {
				t.Fatalf("%s: Get must return the record whatever its lifecycle: %v", name, err)
			}
			t.Run(name, func(t *testing.T) { Same(t, got, want) })
		}
	})

	t.Run("disabled", func(t *testing.T) {
		s := newStore(t)
		key, want := Key(t), Record(t)
		want.Enabled = false
		if err := s.Create(ctx, key, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get of a disabled key must return its record: %v", err)
		}
		SameDisabled(t, got, want)

		// Enabling it again (the CLI's "keys enable") gives the whole record back.
		want.Enabled = true
		if err := s.Update(ctx, key, want); err != nil {
			t.Fatal(err)
		}
		got, err = s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		Same(t, got, want)
	})

	t.Run("create twice", func(t *testing.T) {
		s := newStore(t)
		key, first := Key(t), Record(t)
		if err := s.Create(ctx, key, first); err != nil {
			t.Fatal(err)
		}
		second := Record(t)
		second.Org = "Somebody else"
		err := s.Create(ctx, key, second)
		if !errors.Is(err, keys.ErrExists) {
			t.Fatalf("second Create: want ErrExists, got %v", err)
		}
		noSecret(t, err, key, second.Sets[0].Secret, second.Sets[1].Secret)
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		Same(t, got, first)
	})

	t.Run("update replaces", func(t *testing.T) {
		s := newStore(t)
		key, rec := Key(t), Record(t)
		if err := s.Create(ctx, key, rec); err != nil {
			t.Fatal(err)
		}
		next := keys.Record{
			Org:     "Sonoma County (renamed)",
			Contact: "new-gis@example.org",
			Sets:    []credential.Credential{{ID: "client-three", Secret: "secret-three-" + Key(t)}},
			Enabled: true,
			Expires: time.Now().UTC().Truncate(time.Second).Add(time.Hour),
		}
		if err := s.Update(ctx, key, next); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		Same(t, got, next)
	})

	t.Run("any spelling", func(t *testing.T) {
		// Keys are case-insensitive (Key Vault's names are): every
		// spelling reads, updates and collides with the one record.
		s := newStore(t)
		key, rec := Key(t), Record(t)
		if err := s.Create(ctx, key, rec); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{strings.ToLower(key), strings.ToUpper(key)} {
			got, err := s.Get(ctx, k)
			if err != nil {
				t.Fatalf("Get in another spelling: %v", err)
			}
			Same(t, got, rec)
		}
		next := rec
		next.Org = "Renamed through another spelling"
		if err := s.Update(ctx, strings.ToUpper(key), next); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		Same(t, got, next)
		if err := s.Create(ctx, strings.ToLower(key), Record(t)); !errors.Is(err, keys.ErrExists) {
			t.Fatalf("Create in another spelling: want ErrExists, got %v", err)
		}
		entries, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("List after one key in three spellings: %d entries", len(entries))
		}
	})

	t.Run("update unknown", func(t *testing.T) {
		s := newStore(t)
		key, rec := Key(t), Record(t)
		err := s.Update(ctx, key, rec)
		if !errors.Is(err, keys.ErrNotFound) {
			t.Fatalf("Update of an unknown key: want ErrNotFound, got %v", err)
		}
		noSecret(t, err, key, rec.Sets[0].Secret)
		if _, err := s.Get(ctx, key); !errors.Is(err, keys.ErrNotFound) {
			t.Fatalf("Update of an unknown key must not create it: %v", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		s := newStore(t)
		want := map[string]keys.Record{}
		for i := range 3 {
			key, rec := Key(t), Record(t)
			rec.Org = fmt.Sprintf("Org %d", i)
			rec.Enabled = i != 1
			if err := s.Create(ctx, key, rec); err != nil {
				t.Fatal(err)
			}
			want[key] = rec
		}
		entries, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			w, ok := want[e.Key]
			if !ok {
				t.Errorf("List returned a key that was never created (%s)", keys.Fingerprint(e.Key, ""))
				continue
			}
			if seen[e.Key] {
				t.Errorf("List returned %s twice", w.Org)
			}
			seen[e.Key] = true
			if w.Enabled {
				Same(t, e.Record, w)
			} else {
				SameDisabled(t, e.Record, w)
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("List returned %d of the %d keys", len(seen), len(want))
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		s := newStore(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, 4*n)
		for i := range n {
			wg.Go(func() {
				key, rec := Key(t), Record(t)
				rec.Org = fmt.Sprintf("Org %d", i)
				if err := s.Create(ctx, key, rec); err != nil {
					errs <- err
					return
				}
				rec.Note = "updated"
				if err := s.Update(ctx, key, rec); err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx, key)
				if err != nil {
					errs <- err
					return
				}
				if got.Org != rec.Org || got.Note != "updated" {
					errs <- fmt.Errorf("concurrent writers mixed records: got org %q note %q, want %q %q", got.Org, got.Note, rec.Org, "updated")
				}
				if _, err := s.List(ctx); err != nil {
					errs <- err
				}
			})
		}
		// And a race to create one key: exactly one winner.
		key := Key(t)
		var mu sync.Mutex
		wins := 0
		for range n {
			wg.Go(func() {
				err := s.Create(ctx, key, Record(t))
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, keys.ErrExists):
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if wins != 1 {
			t.Fatalf("%d concurrent Creates of one key succeeded; want exactly 1", wins)
		}
		entries, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != n+1 {
			t.Fatalf("List after concurrent creates: %d entries, want %d", len(entries), n+1)
		}
	})
}

// Same fails t unless got has every field of want. Created is not
// compared (the store may set it).
func Same(t testing.TB, got, want keys.Record) {
	t.Helper()
	for _, d := range diff(got, want) {
		t.Errorf("record differs: %s", d)
	}
}

// SameDisabled is Same for a disabled record: a store may be unable to
// read its value, and then returns only the lifecycle (and, if it keeps
// them apart from the value, the organisation and contact); what comes
// back must not be different.
func SameDisabled(t testing.TB, got, want keys.Record) {
	t.Helper()
	if got.Enabled {
		t.Errorf("a disabled record came back enabled")
	}
	if len(got.Sets) == 0 {
		// The store could not read the value: only the lifecycle remains,
		// perhaps with the organisation and contact.
		if !got.Expires.Equal(want.Expires) || !got.NotBefore.Equal(want.NotBefore) {
			t.Errorf("lifecycle of a disabled record: got expires %v not_before %v, want %v %v",
				got.Expires, got.NotBefore, want.Expires, want.NotBefore)
		}
		if got.Org != "" && got.Org != want.Org || got.Contact != "" && got.Contact != want.Contact {
			t.Errorf("a disabled record's org/contact: got %q %q, want %q %q", got.Org, got.Contact, want.Org, want.Contact)
		}
		return
	}
	Same(t, got, want)
}

func diff(got, want keys.Record) []string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s: got %q, want %q", name, g, w))
		}
	}
	tm := func(name string, g, w time.Time) {
		if !g.Equal(w) {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", name, g, w))
		}
	}
	str("org", got.Org, want.Org)
	str("contact", got.Contact, want.Contact)
	str("note", got.Note, want.Note)
	if got.Enabled != want.Enabled {
		d = append(d, fmt.Sprintf("enabled: got %v, want %v", got.Enabled, want.Enabled))
	}
	tm("expires", got.Expires, want.Expires)
	tm("not_before", got.NotBefore, want.NotBefore)
	if got.Rate != want.Rate || got.Burst != want.Burst || got.DailyRequests != want.DailyRequests {
		d = append(d, fmt.Sprintf("limits: got rate %v burst %d daily %d, want %v %d %d",
			got.Rate, got.Burst, got.DailyRequests, want.Rate, want.Burst, want.DailyRequests))
	}
	if !slices.Equal(got.Origins, want.Origins) {
		d = append(d, fmt.Sprintf("origins: got %q, want %q", got.Origins, want.Origins))
	}
	if len(got.Sets) != len(want.Sets) {
		d = append(d, fmt.Sprintf("sets: got %d, want %d", len(got.Sets), len(want.Sets)))
	} else {
		for i := range got.Sets {
			// IDs are not secret; secrets are compared but never printed.
			if got.Sets[i].ID != want.Sets[i].ID || got.Sets[i].Secret != want.Sets[i].Secret {
				d = append(d, fmt.Sprintf("sets[%d]: got client id %q (secret %s), want %q (secret %s)",
					i, got.Sets[i].ID, got.Sets[i].Fingerprint(""), want.Sets[i].ID, want.Sets[i].Fingerprint("")))
			}
		}
	}
	return d
}

func checkCreated(t testing.TB, got keys.Record, before time.Time) {
	t.Helper()
	if got.Created.IsZero() {
		return
	}
	// Key Vault's clock and ours may differ a little; seconds resolution.
	if got.Created.Before(before.Add(-5*time.Minute)) || got.Created.After(time.Now().Add(5*time.Minute)) {
		t.Errorf("created: %v is not about the time of Create (%v)", got.Created, before)
	}
}

// noSecret fails t if err's text holds any of the secrets.
func noSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error text carries a key or secret: the error of type %T", err)
		}
	}
}
