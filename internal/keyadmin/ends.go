package keyadmin

import (
	"fmt"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/provider"
)

// day is the unit of a key's end as the CLI tells it.
const day = 24 * time.Hour

// keyLifetime is the longest life provider name gives its keys
// (provider.Profile.KeyLifetime), and whether it is known.
func (c *cli) keyLifetime(name string) (time.Duration, bool) {
	cat, err := c.catalog()
	if p := cat.Get(name); err == nil && p != nil && p.KeyLifetime > 0 {
		return p.KeyLifetime, true
	}
	return 0, false
}

// formatEnd is a provider key's end: its date when it is a midnight UTC
// (as a date given to --key-expires is), else the RFC 3339 time.
func formatEnd(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(day)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// daysText says how far end is from now: "in 180 days", "in less than a
// day", "ended 3 days ago", "ended today" (less than a day ago).
func daysText(end, now time.Time) string {
	switch n := int(end.Sub(now) / day); {
	case end.After(now) && n == 0:
		return "in less than a day"
	case end.After(now):
		return "in " + plural(n, "day")
	case n == 0:
		return "ended today"
	default:
		return "ended " + plural(-n, "day") + " ago"
	}
}

// endsText is a provider key's end for show: "2027-06-01 (in 180 days)",
// "2026-02-20 (ended 9 days ago)".
func endsText(end, now time.Time) string {
	return formatEnd(end) + " (" + daysText(end, now) + ")"
}

// replaceHint is the command that puts a new key of provider name in
// every key that uses an ending one: with a new key's lifetime as
// --key-expires when the provider's is known.
func (c *cli) replaceHint(name string) string {
	when := "WHEN"
	if l, ok := c.keyLifetime(name); ok {
		when = fmt.Sprintf("%dd", int(l/day))
	}
	return c.keyExpiresHint(name, when)
}

// keyExpiresHint is replace-credential for provider name's keys, with
// --key-expires when, and the store flags of this command.
func (c *cli) keyExpiresHint(name, when string) string {
	return "handler keys replace-credential --provider " + name + " --key-expires " + when + c.storeHint()
}

// titleOf is provider name's title, or the name when the settings make
// no profile of it.
func (c *cli) titleOf(name string) string {
	if cat, err := c.catalog(); err == nil {
		if p := cat.Get(name); p != nil {
			return p.Title
		}
	}
	return name
}

// warnEnding warns, on stderr, when a provider's key behind key (record
// r) ends within keys.EndWarning of now or has ended: its provider
// refuses it then, and the key's maps go blank. One line per key, of
// the set that ends first. Keys that serve nothing (revoked, expired)
// are not warned of.
func (c *cli) warnEnding(key string, r keys.Record, now time.Time) {
	if r.Provider == "" || unreadable(r) {
		return
	}
	if st := r.Status(now); st == keys.Revoked || st == keys.Expired {
		return
	}
	first, ending := -1, 0
	for i, s := range r.Sets {
		end, soon := keys.Ending(s, now)
		if !s.IsKey() || !soon {
			continue
		}
		ending++
		if first < 0 || end.Before(r.Sets[first].Expires) {
			first = i
		}
	}
	if first < 0 {
		return
	}
	title, end := c.titleOf(r.Provider), r.Sets[first].Expires
	which := "the " + title + " key"
	if len(r.Sets) > 1 {
		which = fmt.Sprintf("the %s key of set %d", title, first+1)
	}
	more := ""
	if ending > 1 {
		more = fmt.Sprintf(" (and %s more of its sets)", plural(ending-1, "key"))
	}
	what := fmt.Sprintf("ends %s (%s): %s refuses it then, and the key's maps go blank", formatEnd(end), daysText(end, now), title)
	if !end.After(now) {
		what = fmt.Sprintf("ended %s (%s): %s refuses it, and the key's maps are blank", formatEnd(end), strings.TrimPrefix(daysText(end, now), "ended "), title)
	}
	fmt.Fprintf(c.errOut, "warning: %s behind key %s (%s)%s %s. Replace it with: %s\n",
		which, prefix(key), printable(r.Org), more, what, c.replaceHint(r.Provider))
}

// warnNewKeyEnd warns, on stderr, of what a provider's new key's end
// (zero: not given) lets the proxy do: nothing before the end when it is
// not given though the provider's keys end; a warning soon when it is
// within keys.EndWarning already; and a likely typo when it is beyond
// the provider's longest lifetime.
func (c *cli) warnNewKeyEnd(p *provider.Profile, end, now time.Time) {
	life, lives := p.KeyLifetime, p.KeyLifetime > 0
	switch {
	case end.IsZero() && lives:
		fmt.Fprintf(c.errOut, "warning: %s keys live at most %d days, and this key's end was not given: "+
			"with --key-expires (the date %s shows for the key) the proxy warns %d days before it ends; without it, the maps go blank unannounced. "+
			"To add it, type the same key as old and new in: %s\n",
			p.Title, int(life/day), p.Title, int(keys.EndWarning/day), c.keyExpiresHint(p.Name, "DATE"))
	case end.IsZero():
	case !end.After(now):
		fmt.Fprintf(c.errOut, "warning: by --key-expires, this %s key ended %s (%s): %s refuses it from then. Check the date, or replace the key with: %s\n",
			p.Title, formatEnd(end), strings.TrimPrefix(daysText(end, now), "ended "), p.Title, c.replaceHint(p.Name))
	case !end.After(now.Add(keys.EndWarning)):
		fmt.Fprintf(c.errOut, "warning: this %s key ends %s (%s), within %d days: replace it soon with: %s\n",
			p.Title, formatEnd(end), daysText(end, now), int(keys.EndWarning/day), c.replaceHint(p.Name))
	case lives && end.Sub(now) > life+day:
		fmt.Fprintf(c.errOut, "warning: --key-expires is %s, but %s keys live at most %d days: check the date %s shows for the key\n",
			daysText(end, now), p.Title, int(life/day), p.Title)
	}
}
