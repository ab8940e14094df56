package server_test

// The landing page's key mode for other providers' keys, in Chromium:
// what TestLandingPageInChromium does with a Hexagon key, done with a
// Planet key (a static key, two hosts), a Vexcel key (a login, then
// Bearer) and a Maxar key (a header, KVP-only capabilities), each on a
// proxy beside its fake. The driver is tools/landing-key.mjs.

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider/maxar"
	"github.com/hexprox/hexprox/internal/fakeprovider/nearmap"
	"github.com/hexprox/hexprox/internal/fakeprovider/planet"
	"github.com/hexprox/hexprox/internal/fakeprovider/vexcel"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/provider"
)

// revokedCopy stores rec under a new key, revoked, as `keys revoke` leaves
// it, and returns the key.
func revokedCopy(t *testing.T, h *harness, rec keys.Record) string {
	t.Helper()
	k := h.addKey(rec)
	rec.Enabled = false
	if err := h.store.Update(context.Background(), k, rec); err != nil {
		t.Fatal(err)
	}
	return k
}

// landingKeyCase is what tools/landing-key.mjs saw for one provider.
type landingKeyCase struct {
	KeyMode               bool
	CheckHint             string
	Wmts, Wms             string
	CopiedWmts, CopiedWms string
	RequestsBeforeCheck   int
	// Outage and OutageCached: Checks while the provider fails (Planet only).
	Ok, Revoked, Outage, OutageCached  landingCheck
	OkMarks, RevokedMarks, OutageMarks addressMarks
	RevokedClipboard, Dom              string
	Requests, Violations               []string
	ConsoleErrors                      []struct{ Phase, Text string }
	Responses                          []struct {
		URL, Headers, BodyError string
		Status                  int
		Body                    []byte
	}
}

// landingCheck is the answer to one Check: the status, and the preview.
type landingCheck struct {
	Class, Text, Caption string
	Tiles                []landingTile
}

type landingTile struct {
	Src                         string
	NaturalWidth, NaturalHeight int
	Colours, Opaque             int
}

// A holder of a Planet, Nearmap, Vexcel or Maxar key uses the landing page as a
// Hexagon key's holder does: chooses the key mode by keyboard, pastes the
// key, and gets the key's own addresses; Check says OK with the
// provider's layers and shows a preview whose tiles all load through the
// proxy and show the provider's imagery. The browser never asks a
// provider's host and never receives, or shows, the provider's key,
// password or token. A revoked key of the same provider is marked not
// working, with the proxy's words and the key's contact.
func TestLandingPageKeyModeForProvidersInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	pw := newPlanetWorld(t)
	pk := pw.addPlanetKey("Forestry")
	pRevoked := revokedCopy(t, pw.harness, keys.Record{Org: "Old Forestry", Contact: "planet-admin@forestry.example", Provider: "planet",
		Sets: []credential.Credential{{Provider: "planet", Secret: planetKey}}})

	// For Planet's outage: another HexProx key over the same Planet key
	// (the proxy holds their capabilities once the first is checked, but
	// the browser has none of its tiles); a second Planet key behind a
	// third, whose capabilities the proxy has not fetched; the test's
	// switch that makes Planet answer 503, and mends it.
	pSibling := pw.addPlanetKey("Forestry Annex")
	const planetKey2 = "PLAK-fedcba9876543210-secret"
	pw.fake.AddKey(planetKey2)
	pw.noteSecret(planetKey2)
	pUncached := pw.addKey(keys.Record{Org: "Forestry Two", Contact: "two@forestry.example", Provider: "planet",
		Sets: []credential.Credential{{Provider: "planet", Secret: planetKey2}}})
	pControl := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			pw.fake.Set(planet.Switches{Status: http.StatusServiceUnavailable})
		case "/heal":
			pw.fake.Set(planet.Switches{})
		default:
			http.NotFound(rw, r)
		}
	}))
	t.Cleanup(pControl.Close)

	vh, vf, vk := newVexcelWorld(t)
	vRevoked := revokedCopy(t, vh, keys.Record{Org: "Old County", Contact: "vexcel-admin@county.example", Provider: "vexcel",
		Sets: []credential.Credential{{Provider: "vexcel", ID: vexcelUser, Secret: vexcelPassword}}})

	nw, nf := newNearmapWorld(t, nil)
	nrec := keys.Record{Org: "Water Board", Contact: "nearmap-admin@water.example", Provider: "nearmap",
		Sets: []credential.Credential{{Provider: "nearmap", Secret: nearmapKey}}}
	nk := nw.addKey(nrec)
	nrec.Org = "Old Water Board"
	nRevoked := revokedCopy(t, nw.harness, nrec)

	mw := newMaxarWorld(t)
	mh, mf, mEnd := mw.harness, mw.fake, mw.fake.AddKey(maxarKey, 0)
	mset := []credential.Credential{{Provider: "maxar", Secret: maxarKey, Expires: mEnd}}
	mk := mh.addKey(keys.Record{Org: "Harbour", Contact: "gis@harbour.example", Provider: "maxar", Sets: mset})
	mRevoked := revokedCopy(t, mh, keys.Record{Org: "Old Harbour", Contact: "maxar-admin@harbour.example", Provider: "maxar", Sets: mset})

	type world struct {
		h            *harness
		key, revoked string
		contact      string
		layers       []string
		tilePrefix   string // how every preview tile's address starts
		tile         []byte // the bytes the fake serves for every tile the preview shows
		served       func() int64
	}
	worlds := map[string]world{
		"planet": {pw.harness, pk, pRevoked, "planet-admin@forestry.example", planet.DefaultMosaics,
			pw.keyURL(pk) + "/~tiles" + planet.TilesPath + "/", pw.fake.PNG(), pw.fake.TilesServed.Load},
		"nearmap": {nw.harness, nk, nRevoked, "nearmap-admin@water.example", []string{nearmap.Layer},
			nw.keyURL(nk) + "/~wmts/maps/api/wmts/v1/1.0.0/", nf.JPEG(), nf.TileRequests.Load},
		"vexcel": {vh, vk, vRevoked, "vexcel-admin@county.example", vexcel.Layers,
			vh.keyURL(vk) + "/~api" + vexcel.WMTSPath + "?", vf.JPEG(), vf.TileRequests.Load},
		"maxar": {mh, mk, mRevoked, "maxar-admin@harbour.example", []string{maxar.Layer},
			mh.keyURL(mk) + "/~api" + maxar.WMTSPath + "?", mf.JPEG(), mf.TileRequests.Load},
	}
	cases := map[string]map[string]string{}
	for name, w := range worlds {
		cases[name] = map[string]string{"url": w.h.proxy.URL + "/", "key": w.key, "revokedKey": w.revoked}
	}
	cases["planet"]["control"], cases["planet"]["cachedKey"], cases["planet"]["uncachedKey"] = pControl.URL, pSibling, pUncached
	var r struct{ Cases map[string]landingKeyCase }
	driveChromium(t, root, chromium, "landing-key.mjs", map[string]any{"cases": cases}, &r)
	// Vexcel's login token, which the browser must never have seen.
	if tok := vf.LastToken(); tok != "" {
		vh.noteSecret(tok)
	}

	for name, w := range worlds {
		c, ok := r.Cases[name]
		if !ok {
			t.Errorf("%s: the driver saw nothing", name)
			continue
		}
		proxy := w.h.proxy.URL
		wantWmts := proxy + "/v2/wmts/" + w.key + "/1.0.0/WMTSCapabilities.xml"
		wantWms := proxy + "/v2/wms/" + w.key

		// The addresses: the key's own, shown and copied, before anything is sent.
		if !c.KeyMode {
			t.Errorf("%s: the arrow key did not choose the key mode", name)
		}
		if c.Wmts != wantWmts || c.Wms != wantWms || c.CopiedWmts != wantWmts || c.CopiedWms != wantWms {
			t.Errorf("%s: addresses shown %q and %q, copied %q and %q; want %q and %q", name, c.Wmts, c.Wms, c.CopiedWmts, c.CopiedWms, wantWmts, wantWms)
		}
		if c.RequestsBeforeCheck != 0 {
			t.Errorf("%s: the page sent %d requests before Check", name, c.RequestsBeforeCheck)
		}

		// The page's words in the key mode do not presume Hexagon.
		if strings.Contains(c.CheckHint, "Hexagon") || c.CheckHint == "" {
			t.Errorf("%s: in the key mode, Check is explained as %q", name, c.CheckHint)
		}

		// Check: OK, the provider's layers, the addresses marked working.
		if c.Ok.Class != "ok" || !strings.HasPrefix(c.Ok.Text, "OK — this key works.") {
			t.Errorf("%s: Check said %q (%s)", name, c.Ok.Text, c.Ok.Class)
		}
		for _, l := range w.layers {
			if !strings.Contains(c.Ok.Text, l) {
				t.Errorf("%s: Check's answer %q does not list the layer %s", name, c.Ok.Text, l)
			}
		}
		if !c.OkMarks.working("Working") {
			t.Errorf("%s: after a good Check the addresses are marked %+v", name, c.OkMarks)
		}

		// The preview: every tile loaded through the key's own address,
		// and is the provider's imagery, not a blank.
		if len(c.Ok.Tiles) < 4 || !strings.HasPrefix(c.Ok.Caption, "A preview of "+w.layers[0]) {
			t.Errorf("%s: the preview shows %d tiles, caption %q; want a block of at least 4 of %s", name, len(c.Ok.Tiles), c.Ok.Caption, w.layers[0])
		}
		for _, tile := range c.Ok.Tiles {
			if tile.NaturalWidth != 256 || tile.NaturalHeight != 256 || tile.Colours < 2 || tile.Opaque == 0 {
				t.Errorf("%s: tile %s is %d×%d with %d colours and %d opaque pixels; want a 256 px tile that is not blank",
					name, tile.Src, tile.NaturalWidth, tile.NaturalHeight, tile.Colours, tile.Opaque)
			}
			if !strings.HasPrefix(tile.Src, w.tilePrefix) {
				t.Errorf("%s: tile %s is not under %s", name, tile.Src, w.tilePrefix)
			}
		}
		tileAnswers := 0
		for _, resp := range c.Responses {
			if strings.HasPrefix(resp.URL, w.tilePrefix) {
				tileAnswers++
				if resp.Status != 200 || !bytes.Equal(resp.Body, w.tile) {
					t.Errorf("%s: tile %s answered %d with %d bytes, not the provider's tile", name, resp.URL, resp.Status, len(resp.Body))
				}
			}
		}
		if tileAnswers != len(c.Ok.Tiles) || w.served() < int64(len(c.Ok.Tiles)) {
			t.Errorf("%s: %d tiles shown, %d tile answers seen, %d tiles served by the provider", name, len(c.Ok.Tiles), tileAnswers, w.served())
		}

		// The revoked key: refused in the page's words and the proxy's,
		// whom to ask, the addresses struck through and Copy off.
		if c.Revoked.Class != "err" || !strings.Contains(c.Revoked.Text, "unknown, revoked or expired") || !strings.Contains(c.Revoked.Text, w.contact) {
			t.Errorf("%s: Check of a revoked key said %q (%s)", name, c.Revoked.Text, c.Revoked.Class)
		}
		if !c.RevokedMarks.notWorking("the proxy refused this key") || c.RevokedMarks.Wmts != proxy+"/v2/wmts/"+w.revoked+"/1.0.0/WMTSCapabilities.xml" {
			t.Errorf("%s: a revoked key's addresses are marked %+v", name, c.RevokedMarks)
		}
		if c.RevokedClipboard != "clipboard before" {
			t.Errorf("%s: Copy of a revoked key's address put %q on the clipboard", name, c.RevokedClipboard)
		}

		// Planet failing: the key whose capabilities the proxy holds still
		// checks, its tiles fail and the caption says so without blaming
		// Hexagon; a key checked while Planet fails is refused in the
		// proxy's words, which name Planet, and the page's do not name
		// Hexagon.
		if name == "planet" {
			o := c.OutageCached
			if o.Class != "ok" || len(o.Tiles) == 0 || !strings.Contains(o.Caption, "did not load") || strings.Contains(o.Caption, "Hexagon") {
				t.Errorf("%s: while Planet fails, a Check from the proxy's cache said %q (%s), caption %q over %d tiles", name, o.Text, o.Class, o.Caption, len(o.Tiles))
			}
			for _, tile := range o.Tiles {
				if tile.NaturalWidth != 0 {
					t.Errorf("%s: while Planet fails, tile %s loaded", name, tile.Src)
				}
			}
			if c.Outage.Class != "err" || !strings.Contains(c.Outage.Text, "Planet") || strings.Contains(c.Outage.Text, "Hexagon") {
				t.Errorf("%s: a Check while Planet fails said %q (%s)", name, c.Outage.Text, c.Outage.Class)
			}
			if !c.OutageMarks.notWorking("the Check failed (HTTP 502)") {
				t.Errorf("%s: after a Check while Planet fails, the addresses are marked %+v", name, c.OutageMarks)
			}
		}

		// Where the browser went, and what it heard and showed.
		for _, u := range c.Requests {
			if !strings.HasPrefix(u, proxy+"/") {
				t.Errorf("%s: the page asked for %s, not the proxy", name, u)
			}
		}
		for _, v := range c.Violations {
			t.Errorf("%s: CSP violation: %s", name, v)
		}
		for _, e := range c.ConsoleErrors {
			// The revoked key's Check is a 403 the browser reports, and
			// the outage's answers 502s; anything else is a bug.
			if !(e.Phase == "revoked" && strings.Contains(e.Text, "403")) && !(e.Phase == "outage" && strings.Contains(e.Text, "502")) {
				t.Errorf("%s: browser console error (%s): %s", name, e.Phase, e.Text)
			}
		}
		secrets := w.h.secrets()
		for _, resp := range c.Responses {
			if resp.BodyError != "" {
				t.Errorf("%s: no body of %s (%d) to look for secrets in: %s", name, resp.URL, resp.Status, resp.BodyError)
			}
			seen := resp.URL + "\n" + resp.Headers + "\n" + string(resp.Body)
			for _, s := range secrets {
				if provider.Reveals([]byte(seen), s) { // in any spelling
					t.Errorf("%s: the answer to %s carries the secret %q", name, resp.URL, s)
				}
			}
		}
		for _, s := range secrets {
			if provider.Reveals([]byte(c.Dom), s) {
				t.Errorf("%s: the page shows the secret %q", name, s)
			}
		}
		if len(c.Responses) < 2+len(c.Ok.Tiles) {
			t.Errorf("%s: %d answers seen; want the page, the capabilities, every tile and the refusal", name, len(c.Responses))
		}
	}
}
