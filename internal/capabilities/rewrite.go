// Package capabilities rewrites OGC capabilities documents (WMTS and WMS)
// so that every URL a client follows leads back to the proxy.
//
// The rewrite is XML-aware: it walks the document's token stream, copies
// every byte it does not change, and re-serialises only the start elements
// whose URL attributes (any "href", and "template") point at the upstream
// service. URLs elsewhere (a provider's web site, schema locations) are left
// alone. The result is a Document that renders with any proxy base URL, so
// one rewrite serves every host name a client may use.
package capabilities

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Document is a rewritten capabilities document with the proxy's base URL
// left open. It is immutable and safe for concurrent use.
type Document struct {
	// parts are the document's bytes; the escaped base URL goes between
	// each pair of consecutive parts.
	parts [][]byte
	size  int
}

// Matcher decides whether url points at the upstream service and returns
// what follows the proxy's base URL in its place (e.g. "/1.0.0/x.jpg" or
// "?SERVICE=WMS&"). The suffix must not carry a token.
type Matcher func(url string) (suffix string, ok bool)

// Options configure Rewrite.
type Options struct {
	Match Matcher
	// Roots lists the root element names accepted (local names); a
	// document with another root (an exception report, an HTML page) is
	// refused. Empty accepts any.
	Roots []string
	// Secrets are strings that must not survive in the output's URLs
	// (the token the document was fetched with). They are looked for
	// only in URL queries — in attribute values, text, comments,
	// directives and processing instructions — where a parameter name or
	// value holding one is replaced whole by "REDACTED"; see scrubber for
	// the exact rule. The rest of the document is never touched, so a
	// short token ("1") cannot turn version="1.0.0" into nonsense.
	Secrets []string
}

// ErrNotCapabilities is returned for input that is not a well-formed
// capabilities document of an accepted kind.
var ErrNotCapabilities = errors.New("not a capabilities document")

// Rewrite rewrites doc. It refuses documents that declare entities (no
// expansion attacks) or are not well-formed.
func Rewrite(doc []byte, o Options) (*Document, error) {
	sc := scrubber(o.Secrets)
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var (
		out   [][]byte
		cur   []byte // the part being built
		last  int64  // offset up to which doc has been copied or replaced
		stack []xml.Name
		root  bool
	)
	for {
		start := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotCapabilities, err)
		}
		end := d.InputOffset()
		// replace puts b in place of the token's bytes.
		replace := func(b ...[]byte) {
			cur = append(cur, doc[last:start]...)
			for _, p := range b {
				cur = append(cur, p...)
			}
			last = end
		}
		switch t := tok.(type) {
		case xml.Directive:
			if bytes.Contains(t, []byte("ENTITY")) {
				return nil, fmt.Errorf("%w: declares entities", ErrNotCapabilities)
			}
			if v, ok := sc.scrubBytes(t); ok {
				replace([]byte("<!"), []byte(v), []byte(">"))
			}
		case xml.Comment:
			if v, ok := sc.scrubBytes(t); ok {
				replace([]byte("<!--"), []byte(v), []byte("-->"))
			}
		case xml.ProcInst:
			if v, ok := sc.scrubBytes(t.Inst); ok {
				replace([]byte("<?"+t.Target+" "), []byte(v), []byte("?>"))
			}
		case xml.CharData:
			if v, ok := sc.scrubBytes(t); ok {
				replace(escapeText(nil, v))
			}
		case xml.StartElement:
			if !root {
				if len(stack) == 0 && len(o.Roots) > 0 && !contains(o.Roots, t.Name.Local) {
					return nil, fmt.Errorf("%w: root element <%s>", ErrNotCapabilities, t.Name.Local)
				}
				root = true
			} else if len(stack) == 0 {
				return nil, fmt.Errorf("%w: more than one root element", ErrNotCapabilities)
			}
			stack = append(stack, t.Name)
			scrubbed := false
			for i, a := range t.Attr {
				if v, ok := sc.scrub(a.Value); ok {
					if !scrubbed {
						t.Attr = append([]xml.Attr(nil), t.Attr...)
						scrubbed = true
					}
					t.Attr[i].Value = v
				}
			}
			if !scrubbed && !hasMatch(t, o.Match) {
				continue
			}
			cur = append(cur, doc[last:start]...)
			selfClosing := bytes.HasSuffix(doc[start:end], []byte("/>"))
			cur, out = writeStart(cur, out, t, selfClosing, o.Match)
			last = end
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1] != t.Name {
				return nil, fmt.Errorf("%w: mismatched </%s>", ErrNotCapabilities, t.Name.Local)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if !root || len(stack) != 0 {
		return nil, fmt.Errorf("%w: incomplete document", ErrNotCapabilities)
	}
	cur = append(cur, doc[last:]...)
	out = append(out, cur)
	dd := &Document{parts: out}
	for _, p := range dd.parts {
		dd.size += len(p)
	}
	return dd, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func isURLAttr(a xml.Attr) bool {
	return a.Name.Local == "href" || a.Name.Local == "template" && a.Name.Space == ""
}

func hasMatch(t xml.StartElement, m Matcher) bool {
	for _, a := range t.Attr {
		if isURLAttr(a) {
			if _, ok := m(a.Value); ok {
				return true
			}
		}
	}
	return false
}

// writeStart re-serialises a start element, splitting the output at each
// rewritten URL where the base URL goes.
func writeStart(cur []byte, out [][]byte, t xml.StartElement, selfClosing bool, m Matcher) ([]byte, [][]byte) {
	cur = append(cur, '<')
	cur = appendName(cur, t.Name)
	for _, a := range t.Attr {
		cur = append(cur, ' ')
		cur = appendName(cur, a.Name)
		cur = append(cur, '=', '"')
		if suffix, ok := m(a.Value); ok && isURLAttr(a) {
			out = append(out, cur)
			cur = escapeAttr(nil, suffix)
		} else {
			cur = escapeAttr(cur, a.Value)
		}
		cur = append(cur, '"')
	}
	if selfClosing {
		cur = append(cur, '/')
	}
	return append(cur, '>'), out
}

func appendName(b []byte, n xml.Name) []byte {
	if n.Space != "" {
		b = append(b, n.Space...)
		b = append(b, ':')
	}
	return append(b, n.Local...)
}

func escapeAttr(b []byte, s string) []byte {
	var w bytes.Buffer
	_ = xml.EscapeText(&w, []byte(s)) // cannot fail on a bytes.Buffer
	return append(b, w.Bytes()...)
}

// escapeText escapes s as character data: only '&', '<', '>' and '\r'
// (which a parser would otherwise fold), so line breaks and quotes stay
// as written.
func escapeText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '\r':
			b = append(b, "&#xD;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// Bytes returns the document with base (the proxy's credential URL, e.g.
// "https://proxy.example/wmts/ID/SECRET") in place of each upstream URL's
// scheme, host and service path. The result is new on every call.
func (d *Document) Bytes(base string) []byte {
	eb := escapeAttr(nil, base)
	buf := make([]byte, 0, d.size+len(eb)*(len(d.parts)-1))
	for i, p := range d.parts {
		if i > 0 {
			buf = append(buf, eb...)
		}
		buf = append(buf, p...)
	}
	return buf
}

// ServiceMatcher returns a Matcher for URLs of the upstream services at
// servicePaths (e.g. "/streaming/wmts" and "/orders/wmts"), whatever
// scheme and host they name
// (absolute, protocol-relative or path-only). The suffix keeps what
// follows the service path: a REST path hidden in the query
// ("wmts?/1.0.0/x" gives "/1.0.0/x") becomes a real path, any other
// query is kept behind "?", and access_token parameters are dropped.
func ServiceMatcher(servicePaths ...string) Matcher {
	ms := make([]Matcher, len(servicePaths))
	for i, p := range servicePaths {
		ms[i] = serviceMatcher(strings.TrimSuffix(p, "/"))
	}
	if len(ms) == 1 {
		return ms[0]
	}
	return func(u string) (string, bool) {
		for _, m := range ms {
			if sub, ok := m(u); ok {
				return sub, true
			}
		}
		return "", false
	}
}

func serviceMatcher(servicePath string) Matcher {
	return func(u string) (string, bool) {
		rest := u
		lower := strings.ToLower(u)
		switch {
		case strings.HasPrefix(lower, "https://"), strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "//"):
			hostStart := strings.Index(rest, "//") + 2
			i := strings.IndexAny(rest[hostStart:], "/?#")
			if i < 0 {
				return "", false
			}
			rest = rest[hostStart+i:]
		case strings.HasPrefix(u, "/"):
		default:
			return "", false
		}
		path, query, hasQuery := strings.Cut(rest, "?")
		if len(path) < len(servicePath) || !strings.EqualFold(path[:len(servicePath)], servicePath) {
			return "", false
		}
		sub := path[len(servicePath):]
		if sub != "" && sub[0] != '/' {
			return "", false // "/streaming/wmtsx"
		}
		if sub == "" && strings.HasPrefix(query, "/") {
			sub, query, _ = strings.Cut(query, "&")
			if query == "" {
				hasQuery = false
			}
		}
		if hasQuery {
			query = dropToken(query)
			if sub != "" && query == "" {
				return sub, true
			}
			return sub + "?" + query, true
		}
		return sub, true
	}
}

// dropToken removes access_token parameters from a raw query, keeping the
// rest (and a trailing "&") as written.
func dropToken(q string) string {
	if !strings.Contains(strings.ToLower(q), "access_token") {
		return q
	}
	var kept []string
	for _, p := range strings.Split(q, "&") {
		k, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(k, "access_token") {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}
