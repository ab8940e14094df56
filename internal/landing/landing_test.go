package landing

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/requiretools"
)

func TestRender(t *testing.T) {
	p := Render("v1.2.3-<test>")
	html := string(p.HTML)
	if !strings.Contains(html, "HexProx v1.2.3-&lt;test&gt;") {
		t.Fatal("version missing or unescaped in the footer")
	}
	for _, want := range []string{`<label for="client-id">`, `<label for="client-secret">`, `<label for="api-key">`, `id="check"`, `role="status"`, `aria-live="polite"`, "ArcGIS Pro", "QGIS", "Keep the address secret",
		// The two ways in are a real radio group with a legend and labels.
		`<legend>What did you get?</legend>`,
		`<label class="radio"><input type="radio" name="mode" id="mode-credentials" value="credentials" checked>`,
		`<label class="radio"><input type="radio" name="mode" id="mode-key" value="key"> I have an API key</label>`,
		`id="preview"`,
		// Whether the addresses work is said next to them, and read with them.
		`<p id="addr-state" hidden></p>`, `id="wmts-url" readonly placeholder="Fill in section 1 above" aria-describedby="addr-state"`,
		`id="wms-url" readonly placeholder="Fill in section 1 above" aria-describedby="addr-state"`} {
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
	if !strings.Contains(p.CSP, "default-src 'none'") || !strings.Contains(p.CSP, "connect-src 'self';") || !strings.Contains(p.CSP, "img-src 'self' data:;") {
		t.Fatalf("CSP too loose: %s", p.CSP)
	}
}

func TestRenderAllowsPreviewTilesFromHexagonOnly(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://services.hxgncontent.com", "img-src 'self' data: https://services.hxgncontent.com;"},
		{"http://127.0.0.1:9090/some/path?q=1", "img-src 'self' data: http://127.0.0.1:9090;"},
		{"https://h.example; script-src *", "img-src 'self' data:;"},
		{"https://user:pw@h.example", "img-src 'self' data:;"},
		{"ftp://h.example", "img-src 'self' data:;"},
		{"h.example", "img-src 'self' data:;"},
		{"https://h.exa mple", "img-src 'self' data:;"},
	} {
		csp := Render("v", c.in).CSP
		if !strings.Contains(csp, c.want) {
			t.Errorf("Render(%q): CSP %q lacks %q", c.in, csp, c.want)
		}
		if strings.Count(csp, "script-src") != 1 {
			t.Errorf("Render(%q): CSP %q", c.in, csp)
		}
	}
}

// node returns the path of node, or skips (fails under HEXPROX_REQUIRE_TOOLS).
func node(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		requiretools.Missing(t, "node not installed; ./scripts/test installs it")
	}
	return path
}

// runJS runs script (page code plus a final expression printed as JSON)
// under Node and decodes its output into out.
func runJS(t *testing.T, script string, out any) {
	t.Helper()
	b, err := exec.Command(node(t), "-e", script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("node output %s: %v", b, err)
	}
}

func keysScript(t *testing.T) string {
	t.Helper()
	s := section("// --- keys:", "// --- end keys ---")
	if !strings.Contains(s, "function keyFrom") {
		t.Fatal("keyFrom not found in the page")
	}
	return s
}

// TestPageKeySyntaxMatchesProxy runs the page's key reader under Node:
// it must accept exactly what keys.Check accepts, and find the key in a
// whole /v2 or /about address.
func TestPageKeySyntaxMatchesProxy(t *testing.T) {
	values := []string{"hxpk-0123456789abcdefghijABCDEFGHIJ0123456789a", "legacy-key-1", "k", "-", strings.Repeat("a", keys.MaxLen), strings.Repeat("a", keys.MaxLen+1),
		"", "a b", "key_1", "../x", "k%2F", "ключ", "k\n", "a.b", "a/b", "a?b"}
	in, _ := json.Marshal(values)
	script := keysScript(t) + "\nconsole.log(JSON.stringify(" + string(in) + ".map(keyFrom)));"
	var got []string
	runJS(t, script, &got)
	for i, v := range values {
		want := ""
		// The page trims what is pasted, as it does credentials.
		if keys.Check(strings.TrimSpace(v)) == nil {
			want = strings.TrimSpace(v)
		}
		if got[i] != want {
			t.Errorf("page reads key %q as %q; keys.Check says %q", v, got[i], want)
		}
	}
	addrs := map[string]string{
		"https://proxy.example/v2/wmts/hxpk-abc/1.0.0/WMTSCapabilities.xml":      "hxpk-abc",
		"  https://proxy.example/v2/wms/orig-key?SERVICE=WMS ":                   "orig-key",
		"https://proxy.example/v2/nokeycache/wmts/k1/1.0.0/WMTSCapabilities.xml": "k1",
		"https://proxy.example/about/k2":                                         "k2",
		"https://proxy.example/v2/wmts/bad_key/1.0.0/":                           "",
		"https://proxy.example/wmts/aWQ/c2VjcmV0/1.0.0/":                         "",
	}
	var list []string
	for a := range addrs {
		list = append(list, a)
	}
	in, _ = json.Marshal(list)
	runJS(t, keysScript(t)+"\nconsole.log(JSON.stringify("+string(in)+".map(keyFrom)));", &got)
	for i, a := range list {
		if got[i] != addrs[a] {
			t.Errorf("page reads %q as key %q, want %q", a, got[i], addrs[a])
		}
	}
}

// TestPreviewChoosesAFewLowZoomTiles runs the page's tile choice and
// template filling under Node.
func TestPreviewChoosesAFewLowZoomTiles(t *testing.T) {
	// A Google-compatible grid, levels 0..5 (2^z tiles a side).
	var grid []map[string]any
	for z := 0; z <= 5; z++ {
		grid = append(grid, map[string]any{"id": strconv.Itoa(z), "width": 1 << z, "height": 1 << z})
	}
	limited := []map[string]any{
		{"id": "0", "width": 1, "height": 1, "limits": map[string]int{"minRow": 0, "maxRow": 0, "minCol": 0, "maxCol": 0}},
		{"id": "3", "width": 8, "height": 8, "limits": map[string]int{"minRow": 2, "maxRow": 3, "minCol": 1, "maxCol": 2}},
		{"id": "4", "width": 16, "height": 16, "limits": map[string]int{"minRow": 5, "maxRow": 7, "minCol": 2, "maxCol": 9}},
	}
	type block struct {
		Matrix     string
		Rows, Cols []int
	}
	cases := []struct {
		name string
		in   any
		want *block
	}{
		{"web mercator", grid, &block{"2", []int{1, 2}, []int{0, 1, 2, 3}}},
		{"limits", limited, &block{"4", []int{5, 6}, []int{4, 5, 6, 7}}},
		{"one tile", grid[:1], &block{"0", []int{0}, []int{0}}},
		{"two by two", grid[:2], &block{"1", []int{0, 1}, []int{0, 1}}},
		{"empty", []any{}, nil},
	}
	for _, c := range cases {
		in, _ := json.Marshal(c.in)
		var got *block
		runJS(t, PreviewScript()+"\nconsole.log(JSON.stringify(chooseBlock("+string(in)+")));", &got)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: chose %+v, want %+v", c.name, got, c.want)
		}
	}

	var filled []string
	runJS(t, PreviewScript()+`
const t = "http://p.example/v2/wmts/k/1.0.0/HxGN_Imagery/{Style}/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.jpg";
const v = { Style: "default", TileMatrixSet: "Web Mercator", TileMatrix: "2", TileRow: 1, TileCol: 3 };
console.log(JSON.stringify([fillTemplate(t, v), fillTemplate(t.replace("{TileRow}", "{tilerow}"), v), fillTemplate(t + "?t={Time}", v)]));`, &filled)
	want := []string{
		"http://p.example/v2/wmts/k/1.0.0/HxGN_Imagery/default/Web%20Mercator/2/1/3.jpg",
		"http://p.example/v2/wmts/k/1.0.0/HxGN_Imagery/default/Web%20Mercator/2/1/3.jpg",
		"", // a dimension the page cannot fill: no preview rather than a broken one
	}
	if fmt.Sprint(filled) != fmt.Sprint(want) {
		t.Errorf("fillTemplate gave %q, want %q", filled, want)
	}
}

// TestPageEncodingMatchesProxy runs the page's own encoder under Node and
// checks that the proxy decodes every result back to the input.
func TestPageEncodingMatchesProxy(t *testing.T) {
	node := node(t)
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
