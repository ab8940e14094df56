package server

// An end-to-end test of the landing page in a real browser: headless
// Chromium (Debian's package) driven by playwright-core from tools/.
// scripts/test installs both; elsewhere the test skips without them.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
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

func TestLandingPageInChromium(t *testing.T) {
	root := repoRoot(t)
	chromium := os.Getenv("CHROMIUM_PATH")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	_, errNode := exec.LookPath("node")
	_, errPW := os.Stat(filepath.Join(root, "tools", "node_modules", "playwright-core"))
	_, errChrome := os.Stat(chromium)
	if errNode != nil || errPW != nil || errChrome != nil {
		if os.Getenv("HEXPROX_REQUIRE_TOOLS") != "" {
			t.Fatalf("browser test needs node, tools/node_modules/playwright-core and %s: %v %v %v", chromium, errNode, errPW, errChrome)
		}
		t.Skip("node, playwright-core or chromium missing; ./scripts/test installs them")
	}
	h := newHarness(t, nil)
	shots := filepath.Join(root, "test", "artifacts")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", filepath.Join(root, "tools", "landing-check.mjs"), h.proxy.URL+"/", clientID, clientSecret, "wrong-secret", shots)
	cmd.Env = append(os.Environ(), "CHROMIUM_PATH="+chromium)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("browser driver: %v\n%s", err, out)
	}
	var r struct {
		Title, Footer, Wmts, Wms, OkClass, OkText, BadText, Error string
		CopiedWmts, CopiedWms, CopyLabel                          string
		CheckDisabledBefore, PhoneOverflow                        bool
		RequestsBeforeCheck                                       int
		ConsoleErrors                                             []string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("driver output %s: %v", out, err)
	}
	if r.Error != "" {
		t.Fatalf("in the browser: %s", r.Error)
	}
	t.Logf("screenshots in %s", shots)
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
	if r.RequestsBeforeCheck != 0 {
		t.Errorf("the page sent %d requests before Check: the secret must stay in the browser", r.RequestsBeforeCheck)
	}
	if r.OkClass != "ok" || !strings.Contains(r.OkText, "OK") || !strings.Contains(r.OkText, "HxGN_Imagery") || !strings.Contains(r.OkText, "image/jpeg") {
		t.Errorf("check with good credentials: %q (%s)", r.OkText, r.OkClass)
	}
	if !strings.Contains(r.BadText, "refused") {
		t.Errorf("check with a wrong secret: %q", r.BadText)
	}
	if !strings.Contains(r.Footer, "HexProx test") {
		t.Errorf("footer %q lacks the version", r.Footer)
	}
	if r.PhoneOverflow {
		t.Error("the page overflows a phone-sized screen")
	}
	for _, e := range r.ConsoleErrors {
		// The refused check is a 403 the browser reports; anything else is a bug (a CSP violation, a script error).
		if !strings.Contains(e, "403") {
			t.Errorf("browser console error: %s", e)
		}
	}
}
