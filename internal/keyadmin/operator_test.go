package keyadmin

import (
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/keys/storetest"
)

// A mistyped secret is caught before anything is saved: each new set is
// asked of Hexagon's token endpoint once, a refused one saves nothing and
// is named by number, and --no-check saves without asking.
func TestCredentialsAreCheckedBeforeSaving(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		good, bad := "good-"+storetest.Key(t), refusedSecret+storetest.Key(t)
		asked := h.hex.TokenRequests.Load()
		r := h.run(t, good+"\n"+bad+"\n", "new", "--org", "Two Sets", "--contact", "c@example.org", "--client-id", "first-client-id", "--client-id", "second-client-id")
		if r.err == nil || !strings.Contains(r.err.Error(), "Hexagon refused set 2") || !strings.Contains(r.err.Error(), "Nothing was saved") ||
			!strings.Contains(r.err.Error(), "--no-check") {
			t.Fatalf("a refused set: %v", r.err)
		}
		assertNoLeak(t, r, good, bad, "first-client-id", "second-client-id")
		if *h.opens != 0 {
			t.Fatalf("the store was opened %d times for a refused set", *h.opens)
		}
		if n := h.hex.TokenRequests.Load() - asked; n != 2 {
			t.Fatalf("Hexagon was asked %d times for two sets, want once each", n)
		}

		// Accepted: saved, and said so.
		key, r := h.newKey(t, good+"\n", "--org", "One Set", "--contact", "c@example.org", "--client-id", "first-client-id")
		if !strings.Contains(r.errOut, "accepted") {
			t.Errorf("no word of the check: %q", r.errOut)
		}
		// Offline: --no-check saves a set Hexagon would refuse, asking nothing.
		asked = h.hex.TokenRequests.Load()
		h.newKey(t, bad+"\n", "--org", "Offline", "--contact", "c@example.org", "--client-id", "x-id", "--no-check")
		if h.hex.TokenRequests.Load() != asked {
			t.Error("--no-check asked Hexagon")
		}

		// Hexagon down: nothing saved, and the admin is told to retry.
		h.hex.Set(fakehexagon.Switches{TokenStatus: 503})
		opens := *h.opens
		if r := h.run(t, good+"\n", "new", "--org", "Later", "--contact", "c@example.org", "--client-id", "first-client-id"); r.err == nil ||
			!strings.Contains(r.err.Error(), "could not check set 1 with Hexagon") || *h.opens != opens {
			t.Fatalf("Hexagon unavailable: %v (store opened %d times)", r.err, *h.opens-opens)
		}
		h.hex.Set(fakehexagon.Switches{})

		// replace-credential checks the new secret before touching a key.
		r = h.run(t, bad+"\n", "replace-credential", "--client-id", "first-client-id")
		if r.err == nil || !strings.Contains(r.err.Error(), "Hexagon refused the new client id and secret") {
			t.Fatalf("replace with a refused secret: %v", r.err)
		}
		if sets := checkLayout(t, h.raw(t, key)); sets[0][1] != good {
			t.Fatal("a refused replacement was saved")
		}
		assertNoLeak(t, r, bad)
		newer := "newer-" + storetest.Key(t)
		h.mustRun(t, newer+"\n", "replace-credential", "--client-id", "first-client-id")
		if sets := checkLayout(t, h.raw(t, key)); sets[0][1] != newer {
			t.Fatal("an accepted replacement was not saved")
		}
	})
}

// A key has one name everywhere: the fingerprint that logs and usage
// reports show is in new, list and show, and every command takes it, as
// it takes a prefix or the key, in any case.
func TestOneNameForAKey(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		h.env["TOKEN_HASH_KEY"] = "deployment-hash-key"
		key, r := h.newKey(t, "s-"+storetest.Key(t)+"\n", "--org", "Sutter", "--contact", "gis@sutter.example", "--client-id", "sutter-id")
		fp := keys.Fingerprint(key, "deployment-hash-key") // as the server logs it
		if !strings.Contains(r.out, fp) || !strings.Contains(r.out, "handler keys revoke "+fp) {
			t.Fatalf("new does not name the fingerprint %s:\n%s", fp, r.out)
		}
		if r := h.mustRun(t, "", "list"); !strings.Contains(r.out, prefix(key)+"  "+fp) {
			t.Fatalf("list lacks the fingerprint beside the prefix:\n%s", r.out)
		}
		for _, name := range []string{fp, strings.ToUpper(fp), strings.ToUpper(key[:10]), strings.ToLower(key[:9]) + "…", strings.ToLower(key)} {
			r := h.mustRun(t, "", "show", name)
			if !strings.Contains(r.out, prefix(key)) || !strings.Contains(r.out, fp) {
				t.Errorf("show %s:\n%s", name, r.out)
			}
		}
		if r := h.mustRun(t, "", "revoke", fp); !strings.Contains(r.out, "Revoked key "+prefix(key)) {
			t.Errorf("revoke by fingerprint: %s", r.out)
		}
		if r := h.run(t, "", "show", "deadbeef"); r.err == nil || !strings.Contains(r.err.Error(), "no key starts with deadbeef or has it as its fingerprint") {
			t.Errorf("an unknown fingerprint: %v", r.err)
		}
	})
}

// Rotation issues a new key with the same record and lets the old one
// serve for the grace period; the two name each other.
func TestRotate(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		secret := "rot-" + storetest.Key(t)
		old, _ := h.newKey(t, secret+"\n", "--org", "Placer", "--contact", "gis@placer.example", "--client-id", "placer-id",
			"--origin", "https://placer.maps.arcgis.com", "--rate", "5", "--daily", "900", "--endpoint", "orders", "--expires", "2030-01-01")
		r := h.mustRun(t, "", "rotate", keys.Fingerprint(old, ""), "--grace", "14d", "--base-url", "https://hx.example")
		found := keyPattern.FindAllString(r.out, -1)
		if len(found) == 0 || found[0] == old || strings.Contains(r.out, old) {
			t.Fatalf("rotate must print the new key, and never the old one whole:\n%s", r.out)
		}
		next := found[0]
		for _, want := range []string{"https://hx.example/v2/wmts/" + next + "/1.0.0/WMTSCapabilities.xml", "https://hx.example/about/" + next,
			"serves until " + now.Add(14*24*time.Hour).Format(time.RFC3339), "gis@placer.example"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("rotate's output lacks %q:\n%s", want, r.out)
			}
		}
		assertNoLeak(t, r, secret, "placer-id")

		st := h.assertStore(t)
		o, err := st.Get(t.Context(), old)
		if err != nil {
			t.Fatal(err)
		}
		n, err := st.Get(t.Context(), next)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Expires.Equal(now.Add(14*24*time.Hour)) || o.ReplacedBy != next[:10] || !o.Enabled {
			t.Errorf("old key after rotation: expires %v, replaced by %q", o.Expires, o.ReplacedBy)
		}
		if n.Org != "Placer" || n.Contact != "gis@placer.example" || len(n.Sets) != 1 || n.Sets[0].Secret != secret || n.Rate != 5 || n.DailyRequests != 900 ||
			n.Endpoint != keys.Orders || len(n.Origins) != 1 || !n.Expires.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) || n.Replaces != old[:10] || !n.Enabled {
			t.Errorf("new key's record differs: %+v", n)
		}
		if r := h.mustRun(t, "", "show", old); !strings.Contains(r.out, "Replaced by:  "+next[:10]) {
			t.Errorf("show of the old key:\n%s", r.out)
		}
		if r := h.mustRun(t, "", "show", next); !strings.Contains(r.out, "Replaces:     "+old[:10]) {
			t.Errorf("show of the new key:\n%s", r.out)
		}

		// --grace 0 ends the old key now; an earlier expiry is kept.
		h.mustRun(t, "", "rotate", next, "--grace", "0")
		if n, _ := st.Get(t.Context(), next); n.Status(now) != keys.Expired {
			t.Errorf("--grace 0 left the key %v", n.Status(now))
		}
		soon, _ := h.newKey(t, secret+"\n", "--org", "Soon", "--contact", "c@example.org", "--client-id", "placer-id", "--expires", "2d")
		h.mustRun(t, "", "rotate", soon)
		if s, _ := st.Get(t.Context(), soon); !s.Expires.Equal(now.Add(48 * time.Hour)) {
			t.Errorf("rotation lengthened a key's life to %v", s.Expires)
		}
		if r := h.run(t, "", "rotate", soon, "--grace", "soonish"); r.err == nil || !strings.Contains(r.err.Error(), "--grace") {
			t.Errorf("a bad grace: %v", r.err)
		}

		// A key rotated already is not rotated again: its successor would
		// be left serving, unlinked, with no end.
		if r := h.run(t, "", "rotate", old); r.err == nil || !strings.Contains(r.err.Error(), "rotated already, to "+next[:10]) {
			t.Errorf("a second rotation: %v", r.err)
		}
		if n, _ := st.Get(t.Context(), old); n.ReplacedBy != next[:10] {
			t.Errorf("a refused rotation changed the old key: replaced by %q", n.ReplacedBy)
		}
		// Only a key in use: not a revoked one (which the file store can
		// read) nor an expired one.
		revoked, _ := h.newKey(t, secret+"\n", "--org", "Gone", "--contact", "c@example.org", "--client-id", "placer-id")
		h.mustRun(t, "", "revoke", revoked)
		if r := h.run(t, "", "rotate", revoked); r.err == nil || !strings.Contains(r.err.Error(), "revoked") {
			t.Errorf("rotating a revoked key: %v", r.err)
		}
		ended, _ := h.newKey(t, secret+"\n", "--org", "Ended", "--contact", "c@example.org", "--client-id", "placer-id", "--expires", "2026-01-01")
		if r := h.run(t, "", "rotate", ended); r.err == nil || !strings.Contains(r.err.Error(), "is expired") {
			t.Errorf("rotating an expired key: %v", r.err)
		}
	})
}

// A key may name Hexagon's batch endpoints; the record says so only then.
func TestEndpointFlag(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		key, _ := h.newKey(t, "e-"+storetest.Key(t)+"\n", "--org", "Lab", "--contact", "c@example.org", "--client-id", "lab-id", "--endpoint", "ORDERS")
		if m := h.raw(t, key); m["endpoint"] != "orders" {
			t.Fatalf("stored endpoint %v", m["endpoint"])
		}
		if r := h.mustRun(t, "", "show", key); !strings.Contains(r.out, "orders (Hexagon's batch services") {
			t.Errorf("show:\n%s", r.out)
		}
		h.mustRun(t, "", "set", key, "--endpoint", "streaming")
		if m := h.raw(t, key); m["endpoint"] != nil {
			t.Fatalf("a streaming key keeps the original's layout, without an endpoint member: %v", m["endpoint"])
		}
		if r := h.run(t, "", "set", key, "--endpoint", "bulk"); r.err == nil || !strings.Contains(r.err.Error(), `--endpoint is "streaming"`) {
			t.Errorf("a bad endpoint: %v", r.err)
		}
	})
}

// rotate --expires gives the new key an end of its own; without it, the
// new key ends when the old one was to.
func TestRotateWithANewExpiry(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		old, _ := h.newKey(t, "x-"+storetest.Key(t)+"\n", "--org", "Yearly", "--contact", "c@example.org", "--client-id", "y-id", "--expires", "30d")
		r := h.mustRun(t, "", "rotate", old, "--expires", "365d")
		next := keyPattern.FindString(r.out)
		want := now.Add(365 * 24 * time.Hour)
		if !strings.Contains(r.out, "Expires:      "+want.Format(time.RFC3339)) {
			t.Errorf("rotate does not print the new key's expiry:\n%s", r.out)
		}
		st := h.assertStore(t)
		if n, _ := st.Get(t.Context(), next); !n.Expires.Equal(want) {
			t.Errorf("new key expires %v, want %v", n.Expires, want)
		}
		if o, _ := st.Get(t.Context(), old); !o.Expires.Equal(now.Add(7 * 24 * time.Hour)) {
			t.Errorf("old key expires %v, want the grace end", o.Expires)
		}
		r = h.mustRun(t, "", "rotate", next, "--expires", "none")
		third := keyPattern.FindString(r.out)
		n, err := st.Get(t.Context(), third)
		if third == "" || err != nil {
			t.Fatalf("rotate printed no key it stored (%v):\n%s", err, r.out)
		}
		if !n.Expires.IsZero() {
			t.Errorf("--expires none left %v", n.Expires)
		}
	})
}

// A command printed for the admin to run next opens the same store as
// the one that printed it.
func TestPrintedCommandsNameTheStoreFlag(t *testing.T) {
	h := newFileHarness(t)
	path := h.env["KEYS_FILE"]
	delete(h.env, "KEY_STORE") // the store comes from --file alone, as it is printed
	delete(h.env, "KEYS_FILE")
	_, r := h.newKey(t, "s-"+storetest.Key(t)+"\n", "--file", path, "--org", "O", "--contact", "c@example.org", "--client-id", "i")
	line := regexp.MustCompile(`Revoke with: (handler keys revoke .*)`).FindStringSubmatch(r.out)
	if line == nil || !strings.HasSuffix(line[1], " --file "+path) {
		t.Fatalf("the revoke hint does not name the file:\n%s", r.out)
	}
	args := strings.Fields(strings.TrimPrefix(line[1], "handler keys "))
	if r := h.mustRun(t, "", args...); !strings.Contains(r.out, "Revoked key") {
		t.Fatalf("the printed command: %s", r.out)
	}
}

// A key for another provider: its key is read at the prompt, checked
// with the provider (as the proxy will place it) before it is saved, and
// a credential shared between organisations is warned about.
func TestNewKeyForAProvider(t *testing.T) {
	tilesSrv := httptest.NewUnstartedServer(nil)
	tilesSrv.Start()
	fake := planet.New(planet.Options{TilesBase: tilesSrv.URL})
	tilesSrv.Config.Handler = fake.Tiles
	apiSrv := httptest.NewServer(fake.API)
	t.Cleanup(apiSrv.Close)
	t.Cleanup(tilesSrv.Close)
	const good = "PLAK-good-0123456789"
	fake.AddKey(good)
	bothStores(t, func(t *testing.T, h *harness) {
		h.env["PROVIDER_PLANET_API_URL"], h.env["PROVIDER_PLANET_TILES_URL"] = apiSrv.URL, tilesSrv.URL
		asked := fake.CapabilitiesRequests.Load()
		key, r := h.newKey(t, good+"\n", "--provider", "Planet", "--org", "Forestry", "--contact", "gis@forestry.example")
		if fake.CapabilitiesRequests.Load() != asked+1 || !strings.Contains(r.errOut, "Checking 1 key with Planet Basemaps") {
			t.Fatalf("the key was not checked with Planet:\n%s", r.errOut)
		}
		assertNoLeak(t, r, good)
		m := h.raw(t, key)
		sets, _ := m["sets"].([]any)
		if len(sets) != 1 || sets[0].(map[string]any)["provider"] != "planet" || sets[0].(map[string]any)["key"] != good {
			t.Fatalf("stored: %v", m)
		}
		if r := h.mustRun(t, "", "show", key); !strings.Contains(r.out, "planet (every request through the proxy") || strings.Contains(r.out, good) {
			t.Errorf("show:\n%s", r.out)
		}

		// A wrong key saves nothing; Hexagon's flags are refused.
		opens := *h.opens
		if r := h.run(t, "PLAK-wrong\n", "new", "--provider", "planet", "--org", "X", "--contact", "x@example.org"); r.err == nil ||
			!strings.Contains(r.err.Error(), "Planet Basemaps refused the key of set 1") || *h.opens != opens || strings.Contains(r.all(), "PLAK-wrong") {
			t.Fatalf("a wrong key: %v", r.err)
		}
		for _, bad := range [][]string{{"--client-id", "i"}, {"--redirect"}, {"--endpoint", "orders"}, {"--provider", "acme"}} {
			if r := h.run(t, good+"\n", append([]string{"new", "--provider", "planet", "--org", "X", "--contact", "x@example.org"}, bad...)...); !errors.Is(r.err, ErrUsage) {
				t.Errorf("%v: %v", bad, r.err)
			}
		}

		// The same Planet key for another organisation: saved, with a warning.
		_, r = h.newKey(t, good+"\n", "--provider", "planet", "--org", "Parks", "--contact", "gis@parks.example")
		if !strings.Contains(r.errOut, "also behind keys of Forestry") || !strings.Contains(r.errOut, "Planet licenses") {
			t.Errorf("no warning of a shared credential:\n%s", r.errOut)
		}
		if r := h.mustRun(t, "", "list"); !strings.Contains(r.errOut, "also behind keys of") || !strings.Contains(r.out, " planet ") {
			t.Errorf("list:\n%s%s", r.out, r.errOut)
		}
	})
}

// A Vexcel key holds a username and password, checked by logging in
// once before anything is saved.
func TestNewKeyForAProviderWithALogin(t *testing.T) {
	fake := vexcel.New(vexcel.Options{})
	fake.AddUser(vexcel.User{Username: "gis@county.example", Password: "Vx-secret-1"})
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	bothStores(t, func(t *testing.T, h *harness) {
		h.env["PROVIDER_VEXCEL_API_URL"] = up.URL
		logins := fake.Logins.Load()
		key, r := h.newKey(t, "gis@county.example\nVx-secret-1\n", "--provider", "vexcel", "--org", "County", "--contact", "gis@county.example")
		if fake.Logins.Load() != logins+1 || !strings.Contains(r.errOut, "Checking 1 login with Vexcel") {
			t.Fatalf("no login checked:\n%s", r.errOut)
		}
		assertNoLeak(t, r, "Vx-secret-1")
		sets, _ := h.raw(t, key)["sets"].([]any)
		if s, _ := sets[0].(map[string]any); s["provider"] != "vexcel" || s["username"] != "gis@county.example" || s["password"] != "Vx-secret-1" {
			t.Fatalf("stored: %v", sets)
		}
		opens := *h.opens
		if r := h.run(t, "gis@county.example\nwrong\n", "new", "--provider", "vexcel", "--org", "X", "--contact", "x@example.org"); r.err == nil ||
			!strings.Contains(r.err.Error(), "Vexcel refused the username and password of set 1") || *h.opens != opens {
			t.Fatalf("a wrong password: %v", r.err)
		}
	})
}
