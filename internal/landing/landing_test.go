package landing

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
)

func TestRender(t *testing.T) {
	p := Render("v1.2.3-<test>")
	html := string(p.HTML)
	if !strings.Contains(html, "HexProx v1.2.3-&lt;test&gt;") {
		t.Fatal("version missing or unescaped in the footer")
	}
	for _, want := range []string{`<label for="client-id">`, `<label for="client-secret">`, `id="check"`, `role="status"`, `aria-live="polite"`, "ArcGIS Pro", "QGIS", "Keep the address secret"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for _, external := range []string{"<script src", `href="http`, `src="http`, "@import", "url(http"} {
		if strings.Contains(html, external) {
			t.Fatalf("the page must not load anything from elsewhere (%s)", external)
		}
	}
	if strings.Contains(html, ` style="`) {
		t.Fatal("inline style attributes are blocked by the page's CSP")
	}
	// The CSP names the hash of exactly the inline script and style served.
	for _, re := range []struct{ name, open, close string }{{"script-src", "<script>", "</script>"}, {"style-src", "<style>", "</style>"}} {
		start := strings.Index(html, re.open) + len(re.open)
		end := strings.Index(html, re.close)
		sum := sha256.Sum256([]byte(html[start:end]))
		want := re.name + " 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(p.CSP, want) {
			t.Errorf("CSP %q lacks %s", p.CSP, want)
		}
	}
	if !strings.Contains(p.CSP, "default-src 'none'") || !strings.Contains(p.CSP, "connect-src 'self'") {
		t.Fatalf("CSP too loose: %s", p.CSP)
	}
}

// TestPageEncodingMatchesProxy runs the page's own encoder under Node and
// checks that the proxy decodes every result back to the input.
func TestPageEncodingMatchesProxy(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("HEXPROX_REQUIRE_TOOLS") != "" {
			t.Fatal("node not found")
		}
		t.Skip("node not installed")
	}
	values := []string{"plain", "a+b/c=d", "with space", "trailing==", "ünïcödé", "日本語キー", "emoji 🛰️", "~!@#$%^&*()_+`-={}[]|\\:;\"'<>,.?/", strings.Repeat("x", 150)}
	in, _ := json.Marshal(values)
	script := EncodingScript() + "\nconsole.log(JSON.stringify(" + string(in) + ".map(encodeCredential)));"
	if !strings.Contains(script, "function encodeCredential") {
		t.Fatal("encoding function not found in the page")
	}
	out, err := exec.Command(node, "-e", script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var encoded []string
	if err := json.Unmarshal(out, &encoded); err != nil || len(encoded) != len(values) {
		t.Fatalf("node output %s: %v", out, err)
	}
	for i, v := range values {
		if encoded[i] != credential.Encode(v) {
			t.Errorf("page encodes %q as %q, the proxy as %q", v, encoded[i], credential.Encode(v))
		}
		got, err := credential.DecodeSegment(encoded[i])
		if err != nil || got != v {
			t.Errorf("proxy decodes the page's %q to %q, %v; want %q", encoded[i], got, err, v)
		}
		if strings.ContainsAny(encoded[i], "+/=") {
			t.Errorf("page encoding %q needs escaping in a path", encoded[i])
		}
	}
}
