package keyadmin

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/termtext"
)

// minPrefix is the shortest key prefix that names a key.
const minPrefix = 8

// recordFlags are the flags of a key's record that new and set share:
// one declaration and one set of checks for both.
type recordFlags struct {
	org, contact, note, expires, notBefore string
	origins                                multi
	rate                                   float64
	burst                                  int
	daily                                  int64
	redirect                               bool
	endpoint                               string

	exp, nbf time.Time     // expires and notBefore, parsed by check
	ep       keys.Endpoint // endpoint, parsed by check
}

func (f *recordFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.org, "org", "", "")
	fs.StringVar(&f.contact, "contact", "", "")
	fs.StringVar(&f.note, "note", "", "")
	fs.Var(&f.origins, "origin", "")
	fs.StringVar(&f.expires, "expires", "", "")
	fs.StringVar(&f.notBefore, "not-before", "", "")
	fs.Float64Var(&f.rate, "rate", 0, "")
	fs.IntVar(&f.burst, "burst", 0, "")
	fs.Int64Var(&f.daily, "daily", 0, "")
	fs.BoolVar(&f.redirect, "redirect", false, "")
	fs.StringVar(&f.endpoint, "endpoint", "", "")
}

// check validates the flags that given reports given and returns every
// problem. For a new key (update false) --org and --contact are required;
// for an update, "none" clears --expires, --not-before and --origin.
func (f *recordFlags) check(given func(name string) bool, update bool, now time.Time) []string {
	var problems []string
	switch {
	case !update && strings.TrimSpace(f.org) == "":
		problems = append(problems, "--org is required")
	case update && given("org") && strings.TrimSpace(f.org) == "":
		problems = append(problems, "--org must not be empty")
	}
	switch {
	case !update && strings.TrimSpace(f.contact) == "":
		problems = append(problems, "--contact is required (key holders are told to contact it)")
	case update && given("contact") && strings.TrimSpace(f.contact) == "":
		problems = append(problems, "--contact must not be empty")
	}
	if update && len(f.origins) == 1 && strings.EqualFold(f.origins[0], "none") {
		f.origins = nil
	}
	for _, o := range f.origins {
		if err := checkOrigin(o); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, t := range []struct {
		name, in string
		out      *time.Time
	}{{"expires", f.expires, &f.exp}, {"not-before", f.notBefore, &f.nbf}} {
		if !given(t.name) || t.in == "" || update && strings.EqualFold(strings.TrimSpace(t.in), "none") {
			continue
		}
		v, err := parseWhen(t.in, now)
		if err != nil {
			problems = append(problems, "--"+t.name+": "+err.Error())
		}
		*t.out = v
	}
	if f.rate < 0 || f.burst < 0 || f.daily < 0 {
		problems = append(problems, "--rate, --burst and --daily must not be negative")
	}
	var err error
	if f.ep, err = keys.ParseEndpoint(f.endpoint); err != nil {
		problems = append(problems, `--endpoint is "streaming" (the default: interactive use) or "orders" (Hexagon's batch services, for bulk and machine-learning downloads)`)
	}
	return problems
}

// apply sets the fields of r whose flags given reports given.
func (f *recordFlags) apply(r *keys.Record, given func(name string) bool) {
	for _, v := range []struct {
		name string
		set  func()
	}{
		{"org", func() { r.Org = strings.TrimSpace(f.org) }},
		{"contact", func() { r.Contact = strings.TrimSpace(f.contact) }},
		{"note", func() { r.Note = f.note }},
		{"origin", func() { r.Origins = f.origins }},
		{"expires", func() { r.Expires = f.exp }},
		{"not-before", func() { r.NotBefore = f.nbf }},
		{"rate", func() { r.Rate = f.rate }},
		{"burst", func() { r.Burst = f.burst }},
		{"daily", func() { r.DailyRequests = f.daily }},
		{"redirect", func() { r.Redirect = f.redirect }},
		{"endpoint", func() { r.Endpoint = f.ep }},
	} {
		if given(v.name) {
			v.set()
		}
	}
}

// all is a given func for a new key: every flag counts, set or not.
func all(string) bool { return true }

func noArgs(pos []string, text string) error {
	if len(pos) > 0 {
		// The arguments are not quoted: one could be a secret typed in
		// the wrong place.
		return usageError(fmt.Sprintf("%d unexpected argument(s); client secrets are read from stdin or a prompt, never from arguments", len(pos)), text)
	}
	return nil
}

func oneKey(pos []string, text string) (string, error) {
	if len(pos) != 1 {
		return "", usageError("give exactly one KEY", text)
	}
	return pos[0], nil
}

func runNew(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	var (
		ids            multi
		base, copyFrom string
		sets           int
		rf             recordFlags
		noCheck, login bool
		providerName   string
		keyExpires     string
	)
	rf.add(fs)
	fs.BoolVar(&noCheck, "no-check", false, "")
	fs.StringVar(&providerName, "provider", provider.Hexagon, "")
	fs.BoolVar(&login, "login", false, "")
	fs.StringVar(&keyExpires, "key-expires", "", "")
	fs.Var(&ids, "client-id", "")
	fs.IntVar(&sets, "sets", 0, "")
	fs.StringVar(&copyFrom, "copy-credentials-from", "", "")
	fs.StringVar(&base, "base-url", "", "")
	pos, err := c.parseFlags(fs, usageNew, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos, usageNew); err != nil {
		return err
	}

	problems := rf.check(all, false, c.now())
	if copyFrom != "" && (len(ids) > 0 || sets > 0) {
		problems = append(problems, "--copy-credentials-from takes the sets of another key: give no --client-id or --sets with it")
	}
	if sets < 0 || sets > 0 && sets < len(ids) {
		problems = append(problems, "--sets must be at least the number of --client-id")
	}
	providerName = strings.ToLower(strings.TrimSpace(providerName))
	other := providerName != provider.Hexagon
	var form setForm
	var prof *provider.Profile
	if other {
		p, err := c.profile(providerName)
		prof = p
		if err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
		} else if form, err = formOf(p, login, keyExpires, c.now()); err != nil {
			problems = append(problems, err.Error())
		}
	}
	switch {
	case !other && (login || keyExpires != ""):
		problems = append(problems, "--login and --key-expires are for other providers' sets (with --provider)")
	case other && len(ids) > 0:
		problems = append(problems, "--client-id is for Hexagon's client credentials: a "+providerName+" set is read at the prompt")
	case other && (rf.redirect || rf.ep != keys.Streaming):
		problems = append(problems, "--redirect and --endpoint are Hexagon's: another provider's tiles always go through the proxy")
	case other && copyFrom != "":
		problems = append(problems, "--copy-credentials-from takes another key's provider with its sets: give no --provider with it")
	}
	baseURL, err := c.baseURL(base)
	if err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
	}
	if len(problems) > 0 {
		return usageError(strings.Join(problems, "\n"), usageNew)
	}
	r := keys.Record{Enabled: true}
	rf.apply(&r, all)

	// Secrets are read before the store is touched, so that a typo in
	// them leaves nothing behind.
	if copyFrom == "" {
		var err error
		if other {
			r.Provider = providerName
			r.Sets, err = c.readProviderSets(ctx, prof, form, max(sets, 1), noCheck)
		} else {
			r.Sets, err = c.readHexagonSets(ctx, ids, max(sets, len(ids), 1), noCheck)
		}
		if err != nil {
			return err
		}
	}
	store, err := c.open(ctx, true)
	if err != nil {
		return err
	}
	if copyFrom != "" {
		from, fr, err := c.resolve(ctx, store, copyFrom)
		if err != nil {
			return err
		}
		if len(fr.Sets) == 0 {
			return fmt.Errorf("key %s is revoked, and Key Vault does not let a revoked key's credentials be read: enable it first, or give the credentials", prefix(from))
		}
		r.Sets, r.Provider = slices.Clone(fr.Sets), fr.Provider
	}
	if entries, err := store.List(ctx); err == nil { // a store that cannot be listed warns of nothing
		c.warnShared(entries, "", r)
	}
	key, err := keys.New()
	if err != nil {
		return err
	}
	if err := store.Create(ctx, key, r); err != nil {
		return explain(err, "")
	}
	fmt.Fprintf(c.out, "Created a key for %s (%s).\n\n", printable(r.Org), plural(len(r.Sets), "credential set"))
	c.writeNewKey(key, baseURL)
	fmt.Fprintf(c.out, "\nIt serves on every instance within about %s.\nAnyone holding these URLs can use the imagery: give them to %s only.\nRevoke with: handler keys revoke %s\n",
		keys.DefaultListEvery, printable(r.Contact), c.fingerprint(key)+c.storeHint())
	if r.Redirect {
		fmt.Fprintf(c.out, "\nWith --redirect, desktop tiles and maps are redirected to Hexagon: the key holder receives Hexagon tokens,\n"+
			"which keep working without the proxy, unlimited and uncounted, even after the key is revoked.\n")
	}
	if prof != nil && !form.login && !form.client && copyFrom == "" {
		c.warnNewKeyEnd(prof, form.expires, c.now())
	}
	return nil
}

// writeNewKey prints a key just made: the whole key (this once), its
// fingerprint and its URLs.
func (c *cli) writeNewKey(key, baseURL string) {
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "Key:\t%s\n", key)
	fmt.Fprintf(w, "Fingerprint:\t%s\n", c.fingerprint(key))
	writeURLs(w, keys.AddressesOf(baseURL, key))
	w.Flush()
}

// fingerprint is the key's name in logs and usage reports, which every
// command accepts in place of the key.
func (c *cli) fingerprint(key string) string { return keys.Fingerprint(key, c.env.HashKey) }

// readHexagonSets reads n Hexagon credential sets: the client ids given
// (ids), the rest at the prompt, each secret without echo; and, unless
// noCheck, asks Hexagon to accept each once.
func (c *cli) readHexagonSets(ctx context.Context, ids []string, n int, noCheck bool) ([]credential.Credential, error) {
	sets := make([]credential.Credential, n)
	for i := range sets {
		var err error
		if i < len(ids) {
			sets[i].ID = strings.TrimSpace(ids[i])
		} else if sets[i].ID, err = c.readVisible(fmt.Sprintf("the client id of set %d", i+1)); err != nil {
			return nil, err
		}
		if sets[i].Secret, err = c.readSecret(fmt.Sprintf("the client secret of set %d", i+1)); err != nil {
			return nil, err
		}
	}
	if noCheck {
		return sets, nil
	}
	return sets, c.checkSets(ctx, sets, setNumber)
}

// setForm is what a new key's sets of another provider are, and a
// key's end when they are keys.
type setForm struct {
	login, client bool // a username and password; a client id and secret; else a key
	expires       time.Time
}

// formOf chooses the form of profile p's sets: a client id and secret
// for an OAuth2 profile, a username and password for a login-only one
// or with --login, else a key, ending at keyExpires when given.
func formOf(p *provider.Profile, login bool, keyExpires string, now time.Time) (setForm, error) {
	var f setForm
	switch {
	case p.TakesClients():
		f.client = true
	case login && !p.TakesLogins():
		return f, fmt.Errorf("--login: %s takes keys, not a username and password", p.Title)
	case login || !p.TakesKeys():
		f.login = true
	}
	if keyExpires == "" {
		return f, nil
	}
	if f.login || f.client {
		return f, fmt.Errorf("--key-expires is the end of a provider's key: %s's sets here are not keys", p.Title)
	}
	t, err := parseWhen(keyExpires, now)
	if err != nil {
		return f, errors.New("--key-expires: " + err.Error())
	}
	f.expires = t
	return f, nil
}

// readProviderSets reads n sets of profile p at the prompt, in form f (a
// key each, a username and a password, or a client id and secret) and,
// unless noCheck, checks each once with the provider.
func (c *cli) readProviderSets(ctx context.Context, p *provider.Profile, f setForm, n int, noCheck bool) ([]credential.Credential, error) {
	id, secret := "", "key" // what the prompts ask for: no id for a key
	switch {
	case f.client:
		id, secret = "client id", "client secret"
	case f.login:
		id, secret = "username", "password"
	}
	sets := make([]credential.Credential, n)
	for i := range sets {
		sets[i] = credential.Credential{Provider: p.Name, Client: f.client, Expires: f.expires} // f.expires: zero but for keys
		var err error
		if id != "" {
			if sets[i].ID, err = c.readVisible(fmt.Sprintf("the %s %s of set %d", p.Title, id, i+1)); err != nil {
				return nil, err
			}
		}
		if sets[i].Secret, err = c.readSecret(fmt.Sprintf("the %s %s of set %d", p.Title, secret, i+1)); err != nil {
			return nil, err
		}
	}
	if noCheck {
		return sets, nil
	}
	return sets, c.checkKeys(ctx, p, sets)
}

func writeURLs(w io.Writer, u keys.URLs) {
	fmt.Fprintf(w, "WMTS:\t%s\n", u.WMTS)
	fmt.Fprintf(w, "WMS:\t%s\n", u.WMS)
	fmt.Fprintf(w, "About:\t%s\n", u.About)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// resolve returns the key that arg names, and its record. arg may be
// the key itself, a prefix of at least minPrefix characters that only one
// key has (a trailing "…" or "..." as list prints it is dropped), or the
// key's fingerprint, as logs and usage reports show it; all in any case,
// as keys are.
func (c *cli) resolve(ctx context.Context, store keys.Store, arg string) (string, keys.Record, error) {
	arg = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(arg), "…"), "...")
	if err := keys.Check(arg); err != nil {
		return "", keys.Record{}, explain(err, "")
	}
	r, err := store.Get(ctx, arg)
	if err == nil {
		if arg == keys.Canonical(arg) {
			// Perhaps another spelling of a mixed-case key: output names
			// the key as it was issued.
			if entries, err := store.List(ctx); err == nil {
				for _, e := range entries {
					if keys.Canonical(e.Key) == arg {
						return e.Key, r, nil
					}
				}
			}
		}
		return arg, r, nil
	}
	if !errors.Is(err, keys.ErrNotFound) {
		return "", keys.Record{}, explain(err, arg)
	}
	fp := isFingerprint(arg)
	if !fp && len(arg) < minPrefix {
		return "", keys.Record{}, fmt.Errorf("%q is too short to name a key: give at least %d characters of it, as keys list shows them, or its fingerprint (8 hex digits)", arg, minPrefix)
	}
	entries, err := store.List(ctx)
	if err != nil {
		return "", keys.Record{}, explain(err, "")
	}
	want := keys.Canonical(arg)
	var found []keys.Entry
	for _, e := range entries {
		if strings.HasPrefix(keys.Canonical(e.Key), want) || fp && c.fingerprint(e.Key) == want {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		msg := fmt.Sprintf("no key starts with %s", shown(arg))
		if fp {
			msg = fmt.Sprintf("no key starts with %s or has it as its fingerprint", arg)
			if c.env.HashKey == "" {
				msg += " (fingerprints depend on TOKEN_HASH_KEY: set it as the server has it)"
			}
		}
		return "", keys.Record{}, errors.New(msg)
	case 1:
		return found[0].Key, found[0].Record, nil
	}
	return "", keys.Record{}, fmt.Errorf("%s matches %d keys: give more of the key, or its fingerprint", shown(arg), len(found))
}

// isFingerprint reports whether s could be a key fingerprint: 8 hex
// digits, in any case.
func isFingerprint(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := range len(s) {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			return false
		}
	}
	return true
}

// shown is what an admin typed, for an error: whole when it is no longer
// than the prefixes list shows, else cut to that length (it might be a
// whole key, mistyped).
func shown(arg string) string {
	if len(arg) <= prefixLen {
		return arg
	}
	return arg[:prefixLen] + "…"
}

func runList(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	pos, err := c.parseFlags(fs, usageList, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos, usageList); err != nil {
		return err
	}
	_, entries, err := c.sortedEntries(ctx)
	if err != nil {
		return err
	}
	now := c.now()
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "KEY\tFINGERPRINT\tORG\tCONTACT\tSETS\tUPSTREAM\tORIGINS\tENABLED\tSTATUS\tEXPIRES\tCREATED")
	for _, e := range entries {
		r := e.Record
		org, contact, sets, endpoint := dash(r.Org), dash(r.Contact), fmt.Sprint(len(r.Sets)), upstreamOf(r)
		if unreadable(r) {
			org, contact, sets, endpoint = "(revoked: unreadable)", "?", "?", "?"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", prefix(e.Key), c.fingerprint(e.Key), org, contact, sets, endpoint,
			dash(strings.Join(r.Origins, ",")), yesNo(r.Enabled), r.Status(now), formatTime(r.Expires), formatTime(r.Created))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.errOut, "%s\n", plural(len(entries), "key"))
	for _, e := range entries {
		if e.Record.Provider != "" && !unreadable(e.Record) {
			c.warnShared(entries, e.Key, e.Record)
		}
	}
	for _, e := range entries {
		c.warnEnding(e.Key, e.Record, now)
	}
	return nil
}

// upstreamOf names where a key's requests go: "hexagon", "hexagon/orders"
// (Hexagon's batch services) or another provider's name.
func upstreamOf(r keys.Record) string {
	switch {
	case r.Provider != "":
		return r.Provider
	case r.Endpoint == keys.Orders:
		return "hexagon/orders"
	}
	return "hexagon"
}

// unreadable reports a record whose contents the store could not read
// (a disabled Key Vault secret): lifecycle only.
func unreadable(r keys.Record) bool { return !r.Enabled && len(r.Sets) == 0 }

// openKey opens the existing store and finds the key arg names (see
// resolve).
func (c *cli) openKey(ctx context.Context, arg string) (keys.Store, string, keys.Record, error) {
	store, err := c.open(ctx, false)
	if err != nil {
		return nil, "", keys.Record{}, err
	}
	key, r, err := c.resolve(ctx, store, arg)
	if err != nil {
		return nil, "", keys.Record{}, err
	}
	return store, key, r, nil
}

// sortedEntries opens the existing store and lists every key, sorted by
// organisation, then creation time, then key. Store errors are explained
// for the operator.
func (c *cli) sortedEntries(ctx context.Context) (keys.Store, []keys.Entry, error) {
	store, err := c.open(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	entries, err := store.List(ctx)
	if err != nil {
		return nil, nil, explain(err, "")
	}
	slices.SortFunc(entries, func(a, b keys.Entry) int {
		return cmp.Or(cmp.Compare(a.Record.Org, b.Record.Org), a.Record.Created.Compare(b.Record.Created), cmp.Compare(a.Key, b.Key))
	})
	return store, entries, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// printable shows a record's text on the admin's terminal, its control
// characters escaped.
func printable(s string) string { return termtext.Printable(s) }

// describe writes one key's details, never a secret or client id.
func (c *cli) describe(w io.Writer, key string, r keys.Record, now time.Time) {
	fmt.Fprintf(w, "Key:\t%s\n", prefix(key))
	fmt.Fprintf(w, "Fingerprint:\t%s\n", c.fingerprint(key))
	if unreadable(r) {
		fmt.Fprintf(w, "Org:\t(revoked: Key Vault does not let a disabled secret be read)\n")
	} else {
		fmt.Fprintf(w, "Org:\t%s\n", dash(r.Org))
		fmt.Fprintf(w, "Contact:\t%s\n", dash(r.Contact))
		if r.Note != "" {
			fmt.Fprintf(w, "Note:\t%s\n", printable(r.Note))
		}
		fmt.Fprintf(w, "Sets:\t%d\n", len(r.Sets))
		fmt.Fprintf(w, "Origins:\t%s\n", dash(strings.Join(r.Origins, ", ")))
	}
	fmt.Fprintf(w, "Enabled:\t%s\n", yesNo(r.Enabled))
	fmt.Fprintf(w, "Status:\t%s\n", r.Status(now))
	fmt.Fprintf(w, "Expires:\t%s\n", formatTime(r.Expires))
	fmt.Fprintf(w, "Not before:\t%s\n", formatTime(r.NotBefore))
	fmt.Fprintf(w, "Created:\t%s\n", formatTime(r.Created))
	if r.Replaces != "" {
		fmt.Fprintf(w, "Replaces:\t%s… (rotated)\n", r.Replaces)
	}
	if r.ReplacedBy != "" {
		fmt.Fprintf(w, "Replaced by:\t%s… (rotated; this key serves until it expires)\n", r.ReplacedBy)
	}
	if !unreadable(r) {
		var lim []string
		if r.Rate > 0 {
			lim = append(lim, fmt.Sprintf("%g requests/s per instance", r.Rate))
		}
		if r.Burst > 0 {
			lim = append(lim, fmt.Sprintf("burst %d", r.Burst))
		}
		if r.DailyRequests > 0 {
			lim = append(lim, fmt.Sprintf("%d requests/day", r.DailyRequests))
		}
		fmt.Fprintf(w, "Limits:\t%s\n", dash(strings.Join(lim, ", ")))
		delivery := "through the proxy (the key holder never receives a Hexagon token)"
		if r.Redirect {
			delivery = "desktop tiles and maps redirected to Hexagon: the key holder receives Hexagon tokens, which revoking the key does not revoke"
		}
		fmt.Fprintf(w, "Tiles:\t%s\n", delivery)
		endpoint := "streaming (Hexagon's interactive services)"
		if r.Provider != "" {
			endpoint = r.Provider + " (every request through the proxy, its key never shown)"
		} else if r.Endpoint == keys.Orders {
			endpoint = "orders (Hexagon's batch services for bulk and machine-learning downloads: a lower rate limit, whose 429s reach the key holder)"
		}
		fmt.Fprintf(w, "Endpoint:\t%s\n", endpoint)
		c.describeEnds(w, r, now)
	}
}

// describeEnds writes when each of a provider's keys among r's sets
// ends, as its provider set it (never the key): "Key 1 ends: 2027-06-01
// (in 180 days)", with the command that replaces it once it is within
// keys.EndWarning.
func (c *cli) describeEnds(w io.Writer, r keys.Record, now time.Time) {
	if r.Provider == "" {
		return
	}
	for i, s := range r.Sets {
		if !s.IsKey() {
			continue
		}
		end, soon := keys.Ending(s, now)
		text := "not recorded (replace-credential --key-expires records it)"
		switch {
		case soon:
			text = endsText(end, now) + "; replace it with: " + c.replaceHint(r.Provider)
		case !end.IsZero():
			text = endsText(end, now)
		}
		fmt.Fprintf(w, "Key %d ends:\t%s\n", i+1, text)
	}
}

func runShow(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	base := fs.String("base-url", "", "")
	pos, err := c.parseFlags(fs, usageShow, args)
	if err != nil {
		return err
	}
	arg, err := oneKey(pos, usageShow)
	if err != nil {
		return err
	}
	baseURL, err := c.baseURL(*base)
	if err != nil {
		return err
	}
	_, key, r, err := c.openKey(ctx, arg)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	c.describe(w, key, r, c.now())
	writeURLs(w, keys.AddressesOf(baseURL, key))
	return w.Flush()
}

func runRevoke(ctx context.Context, c *cli, args []string) error {
	return c.setEnabled(ctx, args, false, usageRevoke)
}

func runEnable(ctx context.Context, c *cli, args []string) error {
	return c.setEnabled(ctx, args, true, usageEnable)
}

func (c *cli) setEnabled(ctx context.Context, args []string, enabled bool, text string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	pos, err := c.parseFlags(fs, text, args)
	if err != nil {
		return err
	}
	arg, err := oneKey(pos, text)
	if err != nil {
		return err
	}
	store, key, r, err := c.openKey(ctx, arg)
	if err != nil {
		return err
	}
	who := prefix(key)
	if r.Org != "" {
		who += " (" + printable(r.Org) + ")"
	}
	if r.Enabled == enabled {
		fmt.Fprintf(c.out, "Key %s is already %s.\n", who, map[bool]string{true: "enabled", false: "revoked"}[enabled])
		return nil
	}
	// A record without sets (a disabled Key Vault secret) changes the
	// lifecycle only: keyvault.Store.Update keeps the stored content.
	r.Enabled = enabled
	if err := store.Update(ctx, key, r); err != nil {
		return explain(err, key)
	}
	if enabled {
		fmt.Fprintf(c.out, "Enabled key %s; status now %s.\n", who, r.Status(c.now()))
	} else {
		fmt.Fprintf(c.out, "Revoked key %s. Its URLs answer 403 on every instance within about %s.\n", who, keys.DefaultListEvery)
	}
	return nil
}

func runSet(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("set", flag.ContinueOnError)
	var rf recordFlags
	rf.add(fs)
	pos, err := c.parseFlags(fs, usageSet, args)
	if err != nil {
		return err
	}
	arg, err := oneKey(pos, usageSet)
	if err != nil {
		return err
	}
	flags := setFlags(fs)
	delete(flags, "vault")
	delete(flags, "file")
	if len(flags) == 0 {
		return usageError("nothing to change", usageSet)
	}
	given := func(name string) bool { return flags[name] }
	now := c.now()
	if problems := rf.check(given, true, now); len(problems) > 0 {
		return usageError(strings.Join(problems, "\n"), usageSet)
	}

	store, key, r, err := c.openKey(ctx, arg)
	if err != nil {
		return err
	}
	// --expires and --not-before are the secret's attributes, which Key
	// Vault changes on a revoked key too; every other flag its contents.
	content := false
	for name := range flags {
		content = content || name != "expires" && name != "not-before"
	}
	if content && unreadable(r) {
		return fmt.Errorf("key %s is revoked, and Key Vault does not let a revoked key's contents be read or changed: "+
			"enable it, change it, and revoke it again (--expires and --not-before work on a revoked key)", prefix(key))
	}
	rf.apply(&r, given)
	if err := store.Update(ctx, key, r); err != nil {
		return explain(err, key)
	}
	fmt.Fprintf(c.out, "Updated key %s:\n\n", prefix(key))
	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	c.describe(w, key, r, now)
	return w.Flush()
}

func runReplace(ctx context.Context, c *cli, args []string) error {
	fs := flag.NewFlagSet("replace-credential", flag.ContinueOnError)
	var oldID, newID, providerName, keyExpires string
	var noCheck bool
	fs.StringVar(&oldID, "client-id", "", "")
	fs.StringVar(&newID, "new-client-id", "", "")
	fs.StringVar(&providerName, "provider", provider.Hexagon, "")
	fs.StringVar(&keyExpires, "key-expires", "", "")
	fs.BoolVar(&noCheck, "no-check", false, "")
	pos, err := c.parseFlags(fs, usageReplace, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos, usageReplace); err != nil {
		return err
	}
	oldID, newID = strings.TrimSpace(oldID), strings.TrimSpace(newID)
	providerName = strings.ToLower(strings.TrimSpace(providerName))
	if providerName == provider.Hexagon {
		providerName = ""
	}
	var p *provider.Profile
	if providerName != "" {
		if p, err = c.profile(providerName); err != nil {
			return usageError(strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "), usageReplace)
		}
	}
	// A provider's key is named by typing it: it has no id.
	keyed := p != nil && oldID == "" && p.TakesKeys()
	switch {
	case oldID == "" && !keyed:
		return usageError("--client-id is required: the client id (or a provider's username) whose secret changes", usageReplace)
	case keyExpires != "" && !keyed:
		return usageError("--key-expires is the end of a provider's new key (with --provider and no --client-id)", usageReplace)
	case keyed && newID != "":
		return usageError("--new-client-id is for client ids and usernames, not a provider's key", usageReplace)
	}
	if newID == "" {
		newID = oldID
	}
	var ends time.Time
	if keyExpires != "" {
		if ends, err = parseWhen(keyExpires, c.now()); err != nil {
			return usageError("--key-expires: "+err.Error(), usageReplace)
		}
	}
	var oldKey string
	if keyed {
		if oldKey, err = c.readSecret("the " + p.Title + " key to replace"); err != nil {
			return err
		}
	}
	// What is replaced and what replaces it, for the prompt and messages:
	// never the key itself.
	old, secretWhat := "client id", "client secret"
	switch {
	case keyed:
		old, secretWhat = p.Title+" key", p.Title+" key"
	case p != nil && p.TakesLogins():
		old, secretWhat = p.Title+" username", p.Title+" password"
	case p != nil:
		old, secretWhat = p.Title+" client id", p.Title+" client secret"
	}
	secret, err := c.readSecret("the new " + secretWhat)
	if err != nil {
		return err
	}
	replacement := credential.Credential{Provider: providerName, ID: newID, Secret: secret, Expires: ends, Client: p != nil && p.TakesClients()}
	if keyed {
		replacement.ID = ""
	}
	// uses reports whether set s is the one being replaced.
	uses := func(s credential.Credential) bool {
		switch {
		case s.Provider != providerName:
			return false
		case keyed:
			return s.IsKey() && s.Secret == oldKey
		}
		return !s.IsKey() && s.ID == oldID
	}
	if !noCheck {
		newSet := []credential.Credential{replacement}
		if p != nil {
			err = c.checkKeys(ctx, p, newSet)
		} else {
			err = c.checkSets(ctx, newSet, func(int) string { return "the new client id and secret" })
		}
		if err != nil {
			return err
		}
	}
	store, entries, err := c.sortedEntries(ctx)
	if err != nil {
		return err
	}
	var changed, current []keys.Entry
	var failed []string
	unread := 0
	for _, e := range entries {
		if unreadable(e.Record) {
			unread++
			continue
		}
		sets := slices.Clone(e.Record.Sets)
		used, differs := false, false
		for i, s := range sets {
			if !uses(s) {
				continue
			}
			used = true
			next := replacement
			if keyed && next.Expires.IsZero() && s.Secret == next.Secret {
				next.Expires = s.Expires // the same key, no new end given: its end stays
			}
			if s != next {
				differs = true
				sets[i] = next
			}
		}
		switch {
		case !used:
			continue
		case !differs:
			current = append(current, e)
			continue
		}
		r := e.Record
		r.Sets = sets
		if err := store.Update(ctx, e.Key, r); err != nil {
			failed = append(failed, fmt.Sprintf("%s (%s): %v", prefix(e.Key), printable(e.Record.Org), explain(err, e.Key)))
			continue
		}
		changed = append(changed, e)
	}

	w := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	if len(changed) > 0 {
		fmt.Fprintf(c.out, "Replaced the credential in %s:\n", plural(len(changed), "key"))
		for _, e := range changed {
			fmt.Fprintf(w, "  %s\t%s\n", prefix(e.Key), printable(e.Record.Org))
		}
		w.Flush()
	}
	if len(current) > 0 {
		fmt.Fprintf(c.out, "Already using the new credential: %s.\n", plural(len(current), "key"))
	}
	if unread > 0 {
		fmt.Fprintf(c.errOut, "warning: %s revoked in Key Vault could not be read and were not changed; "+
			"if one uses this %s, enable it and run replace-credential again.\n", plural(unread, "key"), old)
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not update %d of %d keys that use the %s:\n  %s",
			len(failed), len(failed)+len(changed)+len(current), old, strings.Join(failed, "\n  "))
	}
	if keyed && len(changed)+len(current) > 0 {
		c.warnNewKeyEnd(p, ends, c.now())
	}
	if len(changed)+len(current) == 0 {
		if keyed {
			return fmt.Errorf("no key uses that %s key", p.Title)
		}
		return errors.New("no key uses that client id (client ids are compared exactly)")
	}
	return nil
}
