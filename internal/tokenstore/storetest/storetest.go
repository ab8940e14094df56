// Package storetest is the conformance suite every tokenstore.Store must
// pass.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/tokenstore"
)

// Key returns a fresh key of the shape the token layer uses.
func Key() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ModifiedSkew is how far a store's clock may be from this process's
// for the Modified checks.
const ModifiedSkew = 5 * time.Second

// Run runs the suite against s, whose clock for Entity.Modified must be
// the real time (within ModifiedSkew).
func Run(t *testing.T, s tokenstore.Store) {
	ctx := context.Background()
	t.Run("get missing", func(t *testing.T) {
		if _, _, err := s.Get(ctx, Key()); !errors.Is(err, tokenstore.ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})
	t.Run("create get update", func(t *testing.T) {
		key := Key()
		lease := time.Now().Add(time.Minute).Truncate(time.Millisecond)
		e := tokenstore.Entity{Data: []byte{0, 1, 2, 255, '"', '\\'}, LeaseUntil: lease, LeaseOwner: "instance-a"}
		tag, err := s.Create(ctx, key, e)
		if err != nil || tag == "" {
			t.Fatalf("create: %q %v", tag, err)
		}
		got, gotTag, err := s.Get(ctx, key)
		if err != nil || gotTag != tag || !bytes.Equal(got.Data, e.Data) || !got.LeaseUntil.Equal(lease) || got.LeaseOwner != "instance-a" {
			t.Fatalf("get: %+v %q %v; want %+v %q", got, gotTag, err, e, tag)
		}
		if _, err := s.Create(ctx, key, e); !errors.Is(err, tokenstore.ErrConflict) {
			t.Fatalf("second create: want ErrConflict, got %v", err)
		}
		tag2, err := s.Update(ctx, key, tokenstore.Entity{Data: []byte("v2")}, tag)
		if err != nil || tag2 == tag {
			t.Fatalf("update: %q %v", tag2, err)
		}
		got, _, _ = s.Get(ctx, key)
		if string(got.Data) != "v2" || !got.LeaseUntil.IsZero() || got.LeaseOwner != "" {
			t.Fatalf("update must replace the whole entity: %+v", got)
		}
		if _, err := s.Update(ctx, key, tokenstore.Entity{Data: []byte("v3")}, tag); !errors.Is(err, tokenstore.ErrConflict) {
			t.Fatalf("stale update: want ErrConflict, got %v", err)
		}
		if _, err := s.Update(ctx, Key(), tokenstore.Entity{}, tag2); !errors.Is(err, tokenstore.ErrNotFound) && !errors.Is(err, tokenstore.ErrConflict) {
			t.Fatalf("update of a missing key: want ErrNotFound or ErrConflict, got %v", err)
		}
		tag3, err := s.Update(ctx, key, tokenstore.Entity{}, tag2)
		if err != nil {
			t.Fatal(err)
		}
		if got, gotTag, _ := s.Get(ctx, key); got.Data != nil && len(got.Data) != 0 || gotTag != tag3 {
			t.Fatalf("empty data must read back empty: %+v", got)
		}
	})
	t.Run("modified is the store's own time", func(t *testing.T) {
		key := Key()
		forged := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
		before := time.Now()
		tag, err := s.Create(ctx, key, tokenstore.Entity{Data: []byte("a"), Modified: forged})
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		// The store's clock and this process's may differ a little.
		if got.Modified.Before(before.Add(-ModifiedSkew)) || got.Modified.After(time.Now().Add(ModifiedSkew)) {
			t.Fatalf("create: Modified %v, want about %v (a writer must not choose it)", got.Modified, before)
		}
		first := got.Modified
		time.Sleep(20 * time.Millisecond)
		if _, err := s.Update(ctx, key, tokenstore.Entity{Data: []byte("b"), Modified: forged}, tag); err != nil {
			t.Fatal(err)
		}
		got, _, _ = s.Get(ctx, key)
		if !got.Modified.After(first) || got.Modified.After(time.Now().Add(ModifiedSkew)) {
			t.Fatalf("update: Modified %v, want after the create's %v", got.Modified, first)
		}
	})
	t.Run("one winner per race", func(t *testing.T) {
		key := Key()
		const n = 16
		created := winners(t, n, func() error {
			_, err := s.Create(ctx, key, tokenstore.Entity{LeaseOwner: "x"})
			return err
		})
		if created != 1 {
			t.Fatalf("%d of %d concurrent creates won, want 1", created, n)
		}
		_, tag, _ := s.Get(ctx, key)
		updated := winners(t, n, func() error {
			_, err := s.Update(ctx, key, tokenstore.Entity{LeaseOwner: "y"}, tag)
			return err
		})
		if updated != 1 {
			t.Fatalf("%d of %d concurrent updates with one ETag won, want 1", updated, n)
		}
	})
}

// winners runs try on n goroutines at once and returns how many
// succeeded. A failure other than tokenstore.ErrConflict fails t.
func winners(t *testing.T, n int, try func() error) int {
	var wg sync.WaitGroup
	var won atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := try(); err == nil {
				won.Add(1)
			} else if !errors.Is(err, tokenstore.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	return int(won.Load())
}
