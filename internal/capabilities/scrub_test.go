package capabilities

import (
	"encoding/xml"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/fakehexagon"
)

// A short token once corrupted documents: every "1" became "REDACTED",
// so version="1.0.0" read version="REDACTED.0.0" and the proxy's own
// links /1.0.0/... broke.
func TestRewriteShortTokens(t *testing.T) {
	const base = "https://proxy.example/wmts/aWQ/c2VjcmV0"
	golden := render(t, mustRewrite(t, fakeDoc(t, fakehexagon.Switches{}), wmtsOptions()), base)
	for _, tok := range []string{"1", "0", "00", "1.0.0"} {
		t.Run(tok, func(t *testing.T) {
			doc := fakeDocToken(t, fakehexagon.Switches{TokenInCapabilities: true}, tok)
			o := wmtsOptions()
			o.Secrets = []string{tok}
			got := render(t, mustRewrite(t, doc, o), base)
			// The echoed access_token is dropped from the proxy's links, and
			// nothing else changes: the output is the token-free golden.
			if got != golden {
				t.Fatalf("a %q token changed the document:\n%s", tok, diffLine(got, golden))
			}
			assertNoSecretInQueries(t, got, tok)
		})
	}
}

func TestRewriteScrubsQueriesOnly(t *testing.T) {
	const tok = "1"
	in := `<?xml version="1.0"?>
<?xml-stylesheet href="https://style.example/s.xsl?access_token=1"?>
<!-- fetched from https://h/streaming/wmts?access_token=1&v=1.0 -->
<Capabilities version="1.0.0" xmlns:xlink="http://www.w3.org/1999/xlink">
  <TileMatrix>1</TileMatrix>
  <Link xlink:href="https://other.example/x/1/y?access_token=1&amp;BBOX=0,0,1,1&amp;VERSION=1.0.0&amp;t=%31"/>
  <Abstract>See https://other.example/?token=1 or ?a=11&amp;b=1.1</Abstract>
  <Legend xlink:href="https://h/streaming/wmts?SERVICE=WMTS&amp;auth=Bearer%201&amp;VERSION=1.0.0"/>
  <![CDATA[https://other.example/?tok=1]]>
</Capabilities>`
	o := wmtsOptions()
	o.Secrets = []string{tok}
	got := render(t, mustRewrite(t, []byte(in), o), "http://p/wmts/a/b")
	for _, want := range []string{
		`<?xml-stylesheet href="https://style.example/s.xsl?access_token=REDACTED"?>`,
		`<!-- fetched from https://h/streaming/wmts?access_token=REDACTED&v=1.0 -->`,
		`<Capabilities version="1.0.0"`,
		`<TileMatrix>1</TileMatrix>`,
		// A value whose words include the token is replaced whole (BBOX
		// holds the word "1"); other values are kept as written.
		`xlink:href="https://other.example/x/1/y?access_token=REDACTED&amp;BBOX=REDACTED&amp;VERSION=1.0.0&amp;t=REDACTED"`,
		`<Abstract>See https://other.example/?token=REDACTED or ?a=11&amp;b=1.1</Abstract>`,
		`xlink:href="http://p/wmts/a/b?SERVICE=WMTS&amp;auth=REDACTED&amp;VERSION=1.0.0"`,
		`https://other.example/?tok=REDACTED`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	assertWellFormed(t, got)
	assertNoSecretInQueries(t, got, tok)
}

func TestRewriteRealisticToken(t *testing.T) {
	// Contained in a longer value, encoded, or in a nested URL: all found.
	in := `<Capabilities xmlns:xlink="http://www.w3.org/1999/xlink">
  <A xlink:href="https://o/?next=https%3A%2F%2Fo%2F%3Faccess_token%3D` + token + `"/>
  <B xlink:href="https://o/?x=pre` + token + `post&amp;keep=1"/>
  <C xlink:href="https://o/?` + token + `"/>
  <D>text ` + token + ` outside any URL</D>
  <E note="` + token + `" xlink:href="https://o/path/` + token + `/x"/>
  <!-- ` + token + ` -->
</Capabilities>`
	got := render(t, mustRewrite(t, []byte(in), wmtsOptions()), "http://p")
	for _, want := range []string{`?next=REDACTED"`, `?x=REDACTED&amp;keep=1"`, `?REDACTED"`, `<D>text REDACTED outside any URL</D>`, `note="REDACTED"`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in\n%s", want, got)
		}
	}
	// A token this long goes wherever it is: text, attributes, paths, comments.
	if strings.Contains(got, token) {
		t.Errorf("the token survives in\n%s", got)
	}
	assertWellFormed(t, got)
}

func mustRewrite(t testing.TB, doc []byte, o Options) *Document {
	t.Helper()
	d, err := Rewrite(doc, o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func diffLine(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return "got:  " + g[i] + "\nwant: " + w[i]
		}
	}
	return "lengths differ"
}

// The reference statement of where a secret must not survive: no query
// part (after '?' up to white space, '#', a quote, '<' or '>'), split into
// parameters, names and values, as written or decoded, contains a long
// secret or has a b64token word equal to a short one.
var (
	queryRE = regexp.MustCompile(`\?[^\s#"'<>]*`)
	wordRE  = regexp.MustCompile(`[A-Za-z0-9\-._~+/]+=*`)
)

func secretInQueries(text, secret string) (string, bool) {
	for _, q := range queryRE.FindAllString(text, -1) {
		for _, pair := range strings.Split(q[1:], "&") {
			parts := []string{pair}
			if k, v, ok := strings.Cut(pair, "="); ok {
				parts = []string{k, v}
			}
			for _, p := range parts {
				cands := []string{p}
				if dec, err := url.QueryUnescape(p); err == nil {
					cands = append(cands, dec)
				}
				for _, c := range cands {
					if c == secret || len(secret) >= minContained && strings.Contains(c, secret) {
						return q, true
					}
					for _, w := range wordRE.FindAllString(c, -1) {
						if w == secret {
							return q, true
						}
					}
				}
			}
		}
	}
	return "", false
}

// assertNoSecretInQueries checks every attribute value, text, comment,
// directive and processing instruction of doc.
func assertNoSecretInQueries(t testing.TB, doc, secret string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = false
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("output is not well-formed: %v", err)
		}
		var texts []string
		switch tk := tok.(type) {
		case xml.StartElement:
			for _, a := range tk.Attr {
				texts = append(texts, a.Value)
			}
		case xml.CharData:
			texts = append(texts, string(tk))
		case xml.Comment:
			texts = append(texts, string(tk))
		case xml.Directive:
			texts = append(texts, string(tk))
		case xml.ProcInst:
			texts = append(texts, string(tk.Inst))
		}
		for _, s := range texts {
			if q, ok := secretInQueries(s, secret); ok {
				t.Fatalf("secret %q survived in the URL query %q", secret, q)
			}
		}
	}
}
