package keyadmin

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/keys"
)

// defaultGrace is how long a rotated key keeps serving by default: a
// week for its holders to change their URLs.
const defaultGrace = "7d"

// runRotate issues a new key with a key's record and sets the old one to
// expire after a grace period: rotation without a gap, as API
// Management's primary and secondary keys give. The two keys name each
// other (Replaces, ReplacedBy), and both count under the organisation.
func runRotate(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("rotate", flag.ContinueOnError)
	grace := fs.String("grace", defaultGrace, "")
	expires := fs.String("expires", "", "")
	base := fs.String("base-url", "", "")
	pos, err := c.parseFlags(fs, usageRotate, args)
	if err != nil {
		return err
	}
	arg, err := oneKey(pos, usageRotate)
	if err != nil {
		return err
	}
	now := c.now()
	end := now.UTC().Truncate(time.Second)
	if g := strings.TrimSpace(*grace); g != "0" && g != "0d" {
		if end, err = parseWhen(g, now); err != nil {
			return usageError("--grace: "+err.Error(), usageRotate)
		}
	}
	// The new key's end: the old one's unless --expires says otherwise
	// ("none": no end).
	newEnd, keepEnd := time.Time{}, true
	if e := strings.TrimSpace(*expires); e != "" {
		keepEnd = false
		if !strings.EqualFold(e, "none") {
			if newEnd, err = parseWhen(e, now); err != nil {
				return usageError("--expires: "+err.Error(), usageRotate)
			}
		}
	}
	baseURL, err := c.baseURL(*base)
	if err != nil {
		return err
	}
	store, old, r, err := c.openKey(ctx, arg)
	if err != nil {
		return err
	}
	// Only a key in use is rotated: a revoked or expired key has no
	// holders to move (new --copy-credentials-from makes a fresh key),
	// and a key rotated already has its successor, which a second
	// rotation would leave serving unlinked, with no end.
	if r.ReplacedBy != "" {
		return fmt.Errorf("key %s was rotated already, to %s…: rotate that key instead (or revoke this one now with: handler keys revoke %s)",
			prefix(old), r.ReplacedBy, c.fingerprint(old)+c.storeHint())
	}
	if st := r.Status(now); st != keys.Active {
		return fmt.Errorf("key %s is %s: only a key in use is rotated; make a new key with: handler keys new … --copy-credentials-from %s",
			prefix(old), st, c.fingerprint(old)+c.storeHint())
	}

	next := r
	next.Enabled, next.NotBefore, next.Created = true, time.Time{}, time.Time{}
	next.Replaces, next.ReplacedBy = stem(old), ""
	if !keepEnd {
		next.Expires = newEnd
	}
	key, err := keys.New()
	if err != nil {
		return err
	}
	if err := store.Create(ctx, key, next); err != nil {
		return explain(err, "")
	}
	r.ReplacedBy = stem(key)
	if r.Expires.IsZero() || end.Before(r.Expires) {
		r.Expires = end
	}
	fmt.Fprintf(c.out, "Rotated key %s (%s): the new key has the same record.\n\n", prefix(old), printable(r.Org))
	c.writeNewKey(key, baseURL)
	fmt.Fprintf(c.out, "Expires:      %s\n", formatTime(next.Expires))
	if err := store.Update(ctx, old, r); err != nil {
		return fmt.Errorf("the new key was made, but the old key's expiry could not be set: %w\n"+
			"set it with: handler keys set %s --expires %s", explain(err, old), c.fingerprint(old)+c.storeHint(), r.Expires.Format(time.RFC3339))
	}
	fmt.Fprintf(c.out, "\nThe old key %s (%s) serves until %s, then expires.\nGive the new URLs to %s; both keys count under %s.\n",
		prefix(old), c.fingerprint(old), formatTime(r.Expires), printable(r.Contact), printable(r.Org))
	return nil
}

// stem is the prefix of key that list shows, without its "…": what
// Replaces and ReplacedBy keep, and what every command accepts.
func stem(key string) string { return strings.TrimSuffix(prefix(key), "…") }
