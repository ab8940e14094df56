package server_test

// An end-to-end test of the landing page in a real browser: headless
// Chromium (Debian's package) driven by playwright-core from tools/.
// scripts/test installs both; elsewhere the test skips without them.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakehexagon"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/requiretools"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// browserKeys starts the harness with a KEYS_FILE store holding an active
// key and a revoked one, and returns them with a well-formed key that is
// not in the store.
func browserKeys(t *testing.T) (h *harness, active, revoked, unknown string) {
	t.Helper()
	h = newHarness(t, nil)
	store := h.store
	newKey := func() string {
		k, err := keys.New()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	set := []credential.Credential{{ID: clientID, Secret: clientSecret}}
	active, revoked, unknown = newKey(), newKey(), newKey()
	ctx := context.Background()
	if err := store.Create(ctx, active, keys.Record{Org: "Example County <GIS>", Contact: "gis@example.org", Sets: set, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, revoked, keys.Record{Org: "Former Partner", Contact: "revoked-admin@example.org", Sets: set, Enabled: false}); err != nil {
		t.Fatal(err)
	}
	return h, active, revoked, unknown
}

// tokenInURL finds the upstream token in a URL the browser reports (a
// blocked redirect target), so that test output does not print it.
var tokenInURL = regexp.MustCompile(`access_token=[^&'"\s]*`)

// previewResult is what the driver saw after one Check.
type previewResult struct {
	Class, Text, Caption string
	Tiles                []struct {
		Src          string
		NaturalWidth int
	}
}

// assertPreview checks that a successful Check showed a block of tiles
// that all loaded, each through the proxy address the page built.
func assertPreview(t *testing.T, what string, r previewResult, prefix string) {
	t.Helper()
	if len(r.Tiles) < 4 {
		t.Errorf("%s: the preview shows %d tiles, want a block of at least 4 (%q)", what, len(r.Tiles), r.Caption)
	}
	for _, tile := range r.Tiles {
		if tile.NaturalWidth <= 0 {
			t.Errorf("%s: tile %s did not load (naturalWidth %d); caption %q", what, tile.Src, tile.NaturalWidth, r.Caption)
		}
		if !strings.HasPrefix(tile.Src, prefix) {
			t.Errorf("%s: tile %s is not under %s", what, tile.Src, prefix)
		}
	}
	if !strings.Contains(r.Caption, "A preview of HxGN_Imagery") {
		t.Errorf("%s: preview caption %q", what, r.Caption)
	}
}

// needBrowser returns the repository's root and Chromium's path, or skips
// (fails under HEXPROX_REQUIRE_TOOLS) without node, playwright-core or
// Chromium.
func needBrowser(t *testing.T) (root, chromium string) {
	t.Helper()
	root = repoRoot(t)
	chromium = os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, errNode := exec.LookPath("node")
	_, errPW := os.Stat(filepath.Join(root, "tools", "node_modules", "playwright-core"))
	_, errChrome := os.Stat(chromium)
	if errNode != nil || errPW != nil || errChrome != nil {
		requiretools.Missing(t, "the browser test needs node, tools/node_modules/playwright-core and %s (%v %v %v); ./scripts/test installs them", chromium, errNode, errPW, errChrome)
	}
	return root, chromium
}

// runDriver runs a tools/ script in node with args as its JSON argument
// and returns what it printed.
func runDriver(t *testing.T, root, chromium, script string, args any) []byte {
	t.Helper()
	arg, _ := json.Marshal(args)
	cmd := exec.Command("node", filepath.Join(root, "tools", script), string(arg))
	cmd.Env = append(os.Environ(), "CHROMIUM_PATH="+chromium)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("browser driver %s: %v\n%s", script, err, out)
	}
	return out
}

func TestLandingPageInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	h, key, revokedKey, unknownKey := browserKeys(t)
	shots := filepath.Join(root, "test", "artifacts")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	out := runDriver(t, root, chromium, "landing-check.mjs", map[string]string{
		"url": h.proxy.URL + "/", "id": clientID, "secret": clientSecret, "wrongSecret": "wrong-secret",
		"key": key, "revokedKey": revokedKey, "unknownKey": unknownKey,
		"aboutUrl": h.proxy.URL + "/about/" + key, "shots": shots,
	})
	var r struct {
		Title, Footer, Wmts, Wms, Error                 string
		CopiedWmts, CopiedWms, CopyLabel, CopiedKeyWmts string
		KeyWmts, KeyWms                                 string
		CheckDisabledBefore, PhoneOverflow              bool
		KeyboardToKey, KeyboardBack                     bool
		PreviewHiddenAfterEdit                          bool
		BadKeyError, BadKeyCheckDisabled, KeyErrorAfter bool
		RequestsBeforeCheck, RequestsBeforeKeyCheck     int
		Ok, Bad, KeyOk, Revoked, Unknown                previewResult
		About                                           struct {
			Status                                 int
			ContentType, CSP, Title, H1, KeyStatus string
			Wmts, Copied, Text                     string
			PhoneOverflow                          bool
		}
		ConsoleErrors []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("driver output %s: %v", out, err)
	}
	if r.Error != "" {
		t.Fatalf("in the browser: %s", r.Error)
	}
	t.Logf("screenshots in %s", shots)

	// Credentials.
	cred := "/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	if r.Wmts != h.proxy.URL+"/wmts"+cred+"/1.0.0/WMTSCapabilities.xml" || r.Wms != h.proxy.URL+"/wms"+cred {
		t.Fatalf("page built %q and %q", r.Wmts, r.Wms)
	}
	if r.CopiedWmts != r.Wmts || r.CopiedWms != r.Wms || r.CopyLabel != "Copied" {
		t.Errorf("copy buttons: clipboard %q / %q, label %q", r.CopiedWmts, r.CopiedWms, r.CopyLabel)
	}
	if !r.CheckDisabledBefore {
		t.Error("Check must be disabled until both fields are filled")
	}
	if !r.KeyboardToKey || !r.KeyboardBack {
		t.Errorf("the credentials/key choice is not a keyboard-operable radio group (to key %v, back %v)", r.KeyboardToKey, r.KeyboardBack)
	}
	if r.RequestsBeforeCheck != 0 {
		t.Errorf("the page sent %d requests before Check: the secret must stay in the browser", r.RequestsBeforeCheck)
	}
	if r.Ok.Class != "ok" || !strings.Contains(r.Ok.Text, "OK") || !strings.Contains(r.Ok.Text, "HxGN_Imagery") || !strings.Contains(r.Ok.Text, "image/jpeg") {
		t.Errorf("check with good credentials: %q (%s)", r.Ok.Text, r.Ok.Class)
	}
	assertPreview(t, "credentials", r.Ok, h.proxy.URL+"/wmts"+cred+"/1.0.0/HxGN_Imagery/")
	if !r.PreviewHiddenAfterEdit {
		t.Error("the preview must go when the credentials change")
	}
	if r.Bad.Class != "err" || !strings.Contains(r.Bad.Text, "refused") || len(r.Bad.Tiles) != 0 {
		t.Errorf("check with a wrong secret: %q (%s, %d tiles)", r.Bad.Text, r.Bad.Class, len(r.Bad.Tiles))
	}

	// API key.
	if r.KeyWmts != h.proxy.URL+"/v2/wmts/"+key+"/1.0.0/WMTSCapabilities.xml" || r.KeyWms != h.proxy.URL+"/v2/wms/"+key {
		t.Fatalf("page built %q and %q for the key", r.KeyWmts, r.KeyWms)
	}
	if r.CopiedKeyWmts != r.KeyWmts {
		t.Errorf("copy button with a key: clipboard %q", r.CopiedKeyWmts)
	}
	if !r.BadKeyError || !r.BadKeyCheckDisabled || r.KeyErrorAfter {
		t.Errorf("key syntax: error shown %v, Check disabled %v, error after a good key %v", r.BadKeyError, r.BadKeyCheckDisabled, r.KeyErrorAfter)
	}
	if r.RequestsBeforeKeyCheck != 0 {
		t.Errorf("the page sent %d requests while a key was typed, before Check", r.RequestsBeforeKeyCheck)
	}
	if r.KeyOk.Class != "ok" || !strings.Contains(r.KeyOk.Text, "this key works") || !strings.Contains(r.KeyOk.Text, "HxGN_Imagery") {
		t.Errorf("check with a good key: %q (%s)", r.KeyOk.Text, r.KeyOk.Class)
	}
	assertPreview(t, "key", r.KeyOk, h.proxy.URL+"/v2/wmts/"+key+"/1.0.0/HxGN_Imagery/")
	// The server's own words reach the key holder: whom to contact.
	if r.Revoked.Class != "err" || !strings.Contains(r.Revoked.Text, "unknown, revoked or expired") || !strings.Contains(r.Revoked.Text, "revoked-admin@example.org") {
		t.Errorf("check with a revoked key: %q (%s)", r.Revoked.Text, r.Revoked.Class)
	}
	if r.Unknown.Class != "err" || !strings.Contains(r.Unknown.Text, "unknown, revoked or expired") {
		t.Errorf("check with an unknown key: %q (%s)", r.Unknown.Text, r.Unknown.Class)
	}

	// The key's about page.
	a := r.About
	if a.Status != 200 || !strings.HasPrefix(a.ContentType, "text/html") || !strings.Contains(a.CSP, "script-src 'sha256-") {
		t.Errorf("about page: status %d, type %q, CSP %q", a.Status, a.ContentType, a.CSP)
	}
	if a.H1 != "Example County <GIS>" || a.KeyStatus != "active" || a.Wmts != r.KeyWmts || a.Copied != r.KeyWmts {
		t.Errorf("about page: heading %q, status %q, WMTS %q, copied %q", a.H1, a.KeyStatus, a.Wmts, a.Copied)
	}
	if !strings.Contains(a.Text, "gis@example.org") {
		t.Errorf("about page lacks the contact:\n%s", a.Text)
	}
	for _, s := range []string{clientID, clientSecret, credential.Encode(clientID), credential.Encode(clientSecret)} {
		if strings.Contains(a.Text, s) {
			t.Errorf("about page shows a credential (%q)", s)
		}
	}
	if a.PhoneOverflow {
		t.Error("the about page overflows a phone-sized screen")
	}

	if !strings.Contains(r.Footer, "HexProx test") {
		t.Errorf("footer %q lacks the version", r.Footer)
	}
	if r.PhoneOverflow {
		t.Error("the page overflows a phone-sized screen")
	}
	for _, e := range r.ConsoleErrors {
		// Refused checks are 403s the browser reports; anything else is a bug (a CSP violation, a script error).
		if !strings.Contains(e, "403") {
			t.Errorf("browser console error: %s", tokenInURL.ReplaceAllString(e, "access_token=REDACTED"))
		}
	}
	for _, k := range []string{key, revokedKey, unknownKey} {
		if strings.Contains(h.logs.String(), k) {
			t.Errorf("logs contain API key %q", k)
		}
	}
}

// TestAboutPagePreviewInChromium opens about pages as their holders do:
// an active key's page shows a preview whose tiles load through the key's
// own addresses (and on to Hexagon for a key that opts in to redirects)
// with no CSP violation; a revoked key's page loads nothing at all.
func TestAboutPagePreviewInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	h, key, revokedKey, _ := browserKeys(t)
	redirectKey := h.addKey(keys.Record{Org: "Redirecting County", Redirect: true})
	shots := filepath.Join(root, "test", "artifacts")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	about := func(k string) string { return h.proxy.URL + "/about/" + k }
	out := runDriver(t, root, chromium, "about-preview.mjs", map[string]any{
		"pages": map[string]string{"proxied": about(key), "redirected": about(redirectKey), "revoked": about(revokedKey)},
		"shots": shots,
	})
	var r struct {
		Error string
		Pages map[string]struct {
			Status  int
			CSP     string
			Caption string
			Tiles   []struct {
				Src          string
				NaturalWidth int
			}
			Violations, ConsoleErrors, Requests []string
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("driver output %s: %v", tokenInURL.ReplaceAll(out, []byte("access_token=REDACTED")), err)
	}
	if r.Error != "" {
		t.Fatalf("in the browser: %s", tokenInURL.ReplaceAllString(r.Error, "access_token=REDACTED"))
	}
	redact := func(s string) string { return tokenInURL.ReplaceAllString(s, "access_token=REDACTED") }
	for name, k := range map[string]string{"proxied": key, "redirected": redirectKey} {
		p := r.Pages[name]
		what := "about page, " + name + " tiles"
		if p.Status != 200 || !strings.Contains(p.CSP, "connect-src 'self';") {
			t.Errorf("%s: status %d, CSP %q", what, p.Status, p.CSP)
		}
		assertPreview(t, what, previewResult{Caption: p.Caption, Tiles: p.Tiles}, h.proxy.URL+"/v2/wmts/"+k+"/1.0.0/HxGN_Imagery/")
		for _, v := range p.Violations {
			t.Errorf("%s: CSP violation: %s", what, redact(v))
		}
		for _, e := range p.ConsoleErrors {
			t.Errorf("%s: browser console error: %s", what, redact(e))
		}
		toHexagon := 0
		for _, u := range p.Requests {
			switch {
			case strings.HasPrefix(u, h.upstream.URL+"/"):
				toHexagon++
			case !strings.HasPrefix(u, h.proxy.URL+"/"):
				t.Errorf("%s: the page asked for %s", what, redact(u))
			}
		}
		// Tiles go to Hexagon only where the key opts in to redirects.
		if (name == "redirected") != (toHexagon > 0) {
			t.Errorf("%s: %d requests went to Hexagon", what, toHexagon)
		}
	}
	if p := r.Pages["revoked"]; p.Status != 403 || len(p.Tiles) != 0 || len(p.Requests) != 1 || p.Caption != "" {
		t.Errorf("a revoked key's about page: status %d, %d tiles, requests %q, caption %q", p.Status, len(p.Tiles), p.Requests, p.Caption)
	}
	for _, k := range []string{key, redirectKey, revokedKey} {
		if strings.Contains(h.logs.String(), k) {
			t.Errorf("logs contain API key %q", k)
		}
	}
}

// addressMarks is how the landing page marked its addresses after a step
// of landing-refused.mjs.
type addressMarks struct {
	Status, StatusClass, Note, NoteClass, Wmts, Clipboard string
	NoteHidden                                            bool
	Broken, CopyDisabled                                  []bool
	AriaInvalid                                           []string
}

// working says whether the marks are those of addresses that are not
// known to fail: plain, with Copy on, noted "ok" or not at all.
func (m addressMarks) working(note string) bool {
	plain := len(m.Broken) == 2 && len(m.CopyDisabled) == 2 && len(m.AriaInvalid) == 2 && !m.Broken[0] && !m.Broken[1] && !m.CopyDisabled[0] && !m.CopyDisabled[1] &&
		m.AriaInvalid[0] == "false" && m.AriaInvalid[1] == "false"
	if note == "" {
		return plain && m.NoteHidden && m.Note == ""
	}
	return plain && !m.NoteHidden && m.NoteClass == "ok" && strings.Contains(m.Note, note)
}

// notWorking says whether the marks are those of addresses whose last
// Check failed, for why: struck through, invalid, Copy off, and said.
func (m addressMarks) notWorking(why string) bool {
	return len(m.Broken) == 2 && len(m.CopyDisabled) == 2 && len(m.AriaInvalid) == 2 && m.Broken[0] && m.Broken[1] && m.CopyDisabled[0] && m.CopyDisabled[1] &&
		m.AriaInvalid[0] == "true" && m.AriaInvalid[1] == "true" &&
		!m.NoteHidden && m.NoteClass == "bad" && strings.HasPrefix(m.Note, "Not working") && strings.Contains(m.Note, why)
}

// TestLandingPageMarksFailedAddressesInChromium: after a Check that
// Hexagon refuses, or that fails, the addresses are marked not working
// and cannot be copied until a Check of them succeeds; other addresses
// typed in between are merely unchecked, and a good Check's "working"
// goes as soon as the input changes.
func TestLandingPageMarksFailedAddressesInChromium(t *testing.T) {
	root, chromium := needBrowser(t)
	shots := filepath.Join(root, "test", "artifacts")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil)
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fail":
			h.fake.Update(func(s *fakehexagon.Switches) { s.TokenStatus = http.StatusServiceUnavailable })
		case "/heal":
			h.fake.Update(func(s *fakehexagon.Switches) { s.TokenStatus = 0 })
		default:
			http.NotFound(w, r)
		}
	}))
	defer control.Close()
	out := runDriver(t, root, chromium, "landing-refused.mjs", map[string]string{
		"url": h.proxy.URL + "/", "id": clientID, "secret": clientSecret, "wrongSecret": "wrong-secret",
		"betaId": betaID, "betaSecret": betaSecret, "control": control.URL, "shots": shots,
	})
	var r struct {
		Error         string
		Steps         map[string]addressMarks
		ConsoleErrors []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("driver output %s: %v", out, err)
	}
	if r.Error != "" {
		t.Fatalf("in the browser: %s", r.Error)
	}
	s := r.Steps
	refusedURL := h.proxy.URL + "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode("wrong-secret") + "/1.0.0/WMTSCapabilities.xml"
	for _, c := range []struct {
		what, step string // what is checked, after which step
		ok         bool
	}{
		{"not checked yet", "unchecked", s["unchecked"].working("")},
		{"refused", "refused", s["refused"].notWorking("Hexagon refused these credentials") && s["refused"].StatusClass == "err" && s["refused"].Wmts == refusedURL},
		{"refused: Copy copies nothing", "refused", s["refused"].Clipboard == "clipboard before"},
		{"other addresses typed after", "edited", s["edited"].working("")},
		{"the refused addresses typed again", "refusedAgain", s["refusedAgain"].notWorking("Hexagon refused these credentials") && s["refusedAgain"].Wmts == refusedURL},
		{"after switching to a key and back", "refusedAfterModes", s["refusedAfterModes"].notWorking("Hexagon refused these credentials")},
		{"a good Check", "good", s["good"].working("Working") && s["good"].StatusClass == "ok" && s["good"].Wmts != "" && s["good"].Clipboard == s["good"].Wmts},
		{"a good Check, then an edit", "goodEdited", s["goodEdited"].working("")},
		{"a failed Check", "failed", s["failed"].notWorking("the Check failed") && s["failed"].StatusClass == "err"},
		{"the same addresses, checked again when Hexagon works", "healed", s["healed"].working("Working") && s["healed"].StatusClass == "ok" && s["healed"].Wmts != "" && s["healed"].Wmts == s["failed"].Wmts},
	} {
		if !c.ok {
			t.Errorf("%s: %+v", c.what, s[c.step])
		}
	}
	for _, e := range r.ConsoleErrors {
		// Failed checks are 403s and 502s the browser reports; anything else is a bug.
		if !strings.Contains(e, "403") && !strings.Contains(e, "502") {
			t.Errorf("browser console error: %s", e)
		}
	}
}
