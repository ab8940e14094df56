package keyadmin

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/keys/storetest"
)

// warningLines returns the lines of stderr that warn of a provider's key
// ending.
func warningLines(errOut string) []string {
	var out []string
	for _, l := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(l, "warning: ") && strings.Contains(l, " behind key ") {
			out = append(out, l)
		}
	}
	return out
}

// keys list warns, after its table, of every key whose provider's key
// ends within keys.EndWarning or has ended, with the command that
// replaces it; show gives each provider key's end, never the key.
func TestListAndShowWarnOfEndingProviderKeys(t *testing.T) {
	fake, url := newMaxar(t)
	bothStores(t, func(t *testing.T, h *harness) {
		h.useMaxar(url)
		mk := func(org string, args ...string) (string, string) {
			secret := "mxr-" + strings.ToLower(org) + "-" + storetest.Key(t)
			fake.AddKey(secret, 0)
			key, _ := h.newKey(t, secret+"\n", append([]string{"--provider", "maxar", "--org", org, "--contact", "c@example.org"}, args...)...)
			return key, secret
		}
		soon, s1 := mk("Soon", "--key-expires", "9d")
		ended, s2 := mk("Ended", "--key-expires", "2026-02-20")
		later, s3 := mk("Later", "--key-expires", "2026-06-09")
		unknown, s4 := mk("Unknown")
		gone, s5 := mk("Gone", "--key-expires", "2d")
		h.mustRun(t, "", "revoke", gone)
		// Two sets: the one that ends first is named.
		for _, k := range []string{"mxr-two-a", "mxr-two-b", "mxr-two-c"} {
			fake.AddKey(k, 0)
		}
		two, _ := h.newKey(t, "mxr-two-a\nmxr-two-b\n", "--provider", "maxar", "--sets", "2", "--org", "Two", "--contact", "c@example.org", "--key-expires", "100d")
		h.mustRun(t, "mxr-two-b\nmxr-two-c\n", "replace-credential", "--provider", "maxar", "--key-expires", "3d") // set 2 of Two now ends in 3 days
		// A Hexagon key says nothing of ends.
		h.newKey(t, "hex-"+storetest.Key(t)+"\n", "--org", "Hex", "--contact", "c@example.org", "--client-id", "hex-id")

		r := h.mustRun(t, "", "list")
		assertNoLeak(t, r, s1, s2, s3, s4, s5, "mxr-two-")
		lines := warningLines(r.errOut)
		if len(lines) != 3 {
			t.Fatalf("want warnings for 3 keys (Soon, Ended, Two), got:\n%s", r.errOut)
		}
		if !strings.HasPrefix(r.errOut, "7 keys\n") {
			t.Errorf("warnings come after the table and its count:\n%s", r.errOut)
		}
		byOrg := map[string]string{}
		for _, l := range lines {
			m := regexp.MustCompile(`behind key (\S+) \(([^)]*)\)`).FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("a warning names no key: %s", l)
			}
			byOrg[m[2]] = l
		}
		hint := "Replace it with: handler keys replace-credential --provider maxar --key-expires 180d"
		for org, want := range map[string][]string{
			"Soon":  {"the Maxar key behind key " + prefix(soon) + " (Soon) ends " + now.Add(9*24*time.Hour).Format(time.RFC3339) + " (in 9 days)", hint},
			"Ended": {"the Maxar key behind key " + prefix(ended) + " (Ended) ended 2026-02-20 (9 days ago): Maxar refuses it", hint},
			"Two":   {"the Maxar key of set 2 behind key " + prefix(two) + " (Two) ends " + now.Add(3*24*time.Hour).Format(time.RFC3339) + " (in 3 days)", hint},
		} {
			for _, w := range want {
				if !strings.Contains(byOrg[org], w) {
					t.Errorf("%s's warning lacks %q:\n%s", org, w, byOrg[org])
				}
			}
		}
		for _, k := range []string{later, unknown, gone} {
			if strings.Contains(r.errOut, prefix(k)) {
				t.Errorf("warned of %s, which ends later, has no known end, or is revoked:\n%s", prefix(k), r.errOut)
			}
		}

		// show: each provider key's end, never the key.
		for _, c := range []struct {
			key, secret string
			want        []string
		}{
			{soon, s1, []string{"Key 1 ends:   " + now.Add(9*24*time.Hour).Format(time.RFC3339) + " (in 9 days); replace it with: handler keys replace-credential --provider maxar --key-expires 180d"}},
			{ended, s2, []string{"Key 1 ends:   2026-02-20 (ended 9 days ago); replace it with:"}},
			{later, s3, []string{"Key 1 ends:   2026-06-09 (in 99 days)\n"}},
			{unknown, s4, []string{"Key 1 ends:   not recorded"}},
			{two, "mxr-two-", []string{"Key 1 ends:   " + now.Add(100*24*time.Hour).Format(time.RFC3339) + " (in 100 days)\n",
				"Key 2 ends:   " + now.Add(3*24*time.Hour).Format(time.RFC3339) + " (in 3 days); replace"}},
		} {
			r := h.mustRun(t, "", "show", c.key)
			assertNoLeak(t, r, c.secret)
			for _, w := range c.want {
				if !strings.Contains(r.out, w) {
					t.Errorf("show %s lacks %q:\n%s", prefix(c.key), w, r.out)
				}
			}
		}
	})
}

// The printed command opens the store list read.
func TestEndWarningNamesTheStoreFlag(t *testing.T) {
	fake, url := newMaxar(t)
	h := newFileHarness(t)
	h.useMaxar(url)
	path := h.env["KEYS_FILE"]
	delete(h.env, "KEY_STORE")
	delete(h.env, "KEYS_FILE")
	fake.AddKey("mxr-soon", 0)
	h.newKey(t, "mxr-soon\n", "--file", path, "--provider", "maxar", "--org", "Soon", "--contact", "c@example.org", "--key-expires", "5d")
	r := h.mustRun(t, "", "list", "--file", path)
	if l := warningLines(r.errOut); len(l) != 1 || !strings.HasSuffix(l[0], "--key-expires 180d --file "+path) {
		t.Errorf("warning: %q", l)
	}
}

// keys new and replace-credential warn of a Maxar key's end: not given
// (Maxar's keys live at most 180 days, and only a given end lets the
// proxy warn), within the warning window already, or beyond 180 days.
func TestNewWarnsOfAMaxarKeysEnd(t *testing.T) {
	fake, url := newMaxar(t)
	h := newFileHarness(t)
	h.useMaxar(url)
	fake.AddKey("mxr-a", 0)
	fake.AddKey("mxr-b", 0)
	args := []string{"new", "--provider", "maxar", "--org", "O", "--contact", "c@example.org"}
	for _, c := range []struct {
		flags []string
		want  string // "" for no warning
	}{
		{nil, "warning: Maxar keys live at most 180 days, and this key's end was not given: with --key-expires (the date Maxar shows for the key) the proxy warns 14 days before it ends; without it, the maps go blank unannounced. To add it, type the same key as old and new in: handler keys replace-credential --provider maxar --key-expires DATE"},
		{[]string{"--key-expires", "180d"}, ""},
		{[]string{"--key-expires", "2026-08-01"}, ""},
		{[]string{"--key-expires", "15d"}, ""},
		{[]string{"--key-expires", "14d"}, "warning: this Maxar key ends " + now.Add(14*24*time.Hour).Format(time.RFC3339) + " (in 14 days), within 14 days: replace it soon with: handler keys replace-credential --provider maxar --key-expires 180d"},
		{[]string{"--key-expires", "2026-02-01"}, "warning: by --key-expires, this Maxar key ended 2026-02-01 (28 days ago): Maxar refuses it from then"},
		{[]string{"--key-expires", "365d"}, "warning: --key-expires is in 365 days, but Maxar keys live at most 180 days: check the date Maxar shows for the key"},
	} {
		r := h.mustRun(t, "mxr-a\n", append(args, c.flags...)...)
		got := ""
		for _, l := range strings.Split(r.errOut, "\n") {
			if strings.HasPrefix(l, "warning: ") {
				got += l
			}
		}
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%v: warned %q, want %q", c.flags, got, c.want)
		}
	}
	// A login has no end to give; an operator's key no known lifetime.
	if r := h.mustRun(t, "", "list"); len(warningLines(r.errOut)) != 2 {
		t.Errorf("list warns of %d keys, want the 14d and the ended one:\n%s", len(warningLines(r.errOut)), r.errOut)
	}

	// replace-credential: the same warnings for the new key.
	r := h.mustRun(t, "mxr-a\nmxr-b\n", "replace-credential", "--provider", "maxar")
	if !strings.Contains(r.errOut, "warning: Maxar keys live at most 180 days") {
		t.Errorf("replace-credential without --key-expires:\n%s", r.errOut)
	}
	r = h.mustRun(t, "mxr-b\nmxr-a\n", "replace-credential", "--provider", "maxar", "--key-expires", "10d")
	if !strings.Contains(r.errOut, "warning: this Maxar key ends "+now.Add(10*24*time.Hour).Format(time.RFC3339)+" (in 10 days), within 14 days") {
		t.Errorf("replace-credential with an end within the window:\n%s", r.errOut)
	}
	// The same key typed as old and new records its end.
	h.mustRun(t, "mxr-a\nmxr-a\n", "replace-credential", "--provider", "maxar", "--key-expires", "2026-08-01")
	st := h.assertStore(t)
	entries, err := st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Record.Sets[0].Expires != time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC) {
			t.Errorf("key %s ends %v after its end was recorded", prefix(e.Key), e.Record.Sets[0].Expires)
		}
	}
	if r := h.mustRun(t, "", "list"); len(warningLines(r.errOut)) != 0 {
		t.Errorf("list still warns:\n%s", r.errOut)
	}
}

func TestDaysText(t *testing.T) {
	for _, c := range []struct {
		end  time.Time
		want string
	}{
		{now.Add(180 * 24 * time.Hour), "in 180 days"},
		{now.Add(24*time.Hour + time.Minute), "in 1 day"},
		{now.Add(time.Hour), "in less than a day"},
		{now, "ended today"},
		{now.Add(-25 * time.Hour), "ended 1 day ago"},
		{now.Add(-9 * 24 * time.Hour), "ended 9 days ago"},
	} {
		if got := daysText(c.end, now); got != c.want {
			t.Errorf("%v from %v: %q, want %q", c.end, now, got, c.want)
		}
	}
	if got := formatEnd(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); got != "2027-06-01" {
		t.Errorf("a midnight end: %q", got)
	}
	if got := formatEnd(now); got != "2026-03-01T12:00:00Z" {
		t.Errorf("an end within a day: %q", got)
	}
}
