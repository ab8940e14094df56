package credential

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestDecodeSegmentAlphabets(t *testing.T) {
	// Values chosen so their encodings contain '+', '/' and '=' in the
	// standard alphabet.
	values := []string{"a", "ab", "abc", "\xfb\xff", "id>>?", "s3cr3t/+=?ü", "0123456789abcdefghijklmnop~~~", "with space", "semi;colon", "日本語 ключ"}
	for _, v := range values {
		std := base64.StdEncoding.EncodeToString([]byte(v))
		forms := map[string]string{
			"std":          std,
			"std-unpadded": strings.TrimRight(std, "="),
			"url":          base64.URLEncoding.EncodeToString([]byte(v)),
			"url-unpadded": base64.RawURLEncoding.EncodeToString([]byte(v)),
			"spaces":       " " + std[:1] + " " + std[1:] + "\t",
			"canonical":    Encode(v),
		}
		for name, seg := range forms {
			got, err := DecodeSegment(seg)
			if !utf8Printable(v) {
				if !errors.Is(err, ErrBadValue) {
					t.Errorf("%s %q: want ErrBadValue, got %q, %v", name, seg, got, err)
				}
				continue
			}
			if err != nil || got != v {
				t.Errorf("%s %q: got %q, %v; want %q", name, seg, got, err, v)
			}
		}
	}
}

func utf8Printable(v string) bool {
	_, err := DecodeSegment(Encode(v))
	return err == nil
}

func TestDecodeSegmentRejects(t *testing.T) {
	cases := map[string]error{
		"":                         ErrEmpty,
		"===":                      ErrEmpty,
		strings.Repeat("QUFB", 65): ErrTooLong,
		"!!!!":                     ErrBase64,
		"QQ%":                      ErrBase64,
		"A":                        ErrBase64,
		Encode("line\r\nbreak"):    ErrBadValue,
		Encode("nul\x00"):          ErrBadValue,
		base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}): ErrBadValue,
	}
	for seg, want := range cases {
		got, err := DecodeSegment(seg)
		if !errors.Is(err, want) {
			t.Errorf("DecodeSegment(%.20q) = %q, %v; want %v", seg, got, err, want)
		}
	}
}

func TestErrorsNeverEchoInput(t *testing.T) {
	secret := "c2VjcmV0LXZhbHVl!"
	_, err := Decode(Encode("id"), secret)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("error %v must exist and not contain the input", err)
	}
}

func TestKeyAndPrinting(t *testing.T) {
	a := Credential{ID: "client", Secret: "topsecret"}
	b := Credential{ID: "clien", Secret: "ttopsecret"}
	if a.Key() == b.Key() {
		t.Fatal("keys of different credentials collide")
	}
	if a.Key() != (Credential{ID: "client", Secret: "topsecret"}).Key() {
		t.Fatal("key not stable")
	}
	var sb strings.Builder
	slog.New(slog.NewJSONHandler(&sb, nil)).Info("x", "cred", a)
	printed := fmt.Sprintf("%v %s %+v", a, a, a) + sb.String()
	for _, secret := range []string{"client", "topsecret"} {
		if strings.Contains(printed, secret) {
			t.Fatalf("printing a credential leaked %q: %s", secret, printed)
		}
	}
	// Not even the fingerprint: it is for whoever knows TOKEN_HASH_KEY to
	// log, keyed.
	if strings.Contains(printed, a.Fingerprint("")) {
		t.Fatalf("printing a credential shows its unkeyed fingerprint: %s", printed)
	}
}

// With a hash key, a credential's fingerprint is keyed: nobody without the
// key can test a guessed secret against a log line.
func TestFingerprintIsKeyed(t *testing.T) {
	c := Credential{ID: "client", Secret: "topsecret"}
	plain, keyed := c.Fingerprint(""), c.Fingerprint("deployment-key")
	if len(plain) != 8 || len(keyed) != 8 || plain == keyed {
		t.Fatalf("plain %q, keyed %q", plain, keyed)
	}
	if plain != c.Key()[:8] {
		t.Fatal("without a key the fingerprint is Key's prefix, as documented")
	}
	if keyed != c.Fingerprint("deployment-key") || keyed == c.Fingerprint("other-key") {
		t.Fatal("a keyed fingerprint must be stable under its key and differ under another")
	}
}

func FuzzDecodeSegment(f *testing.F) {
	for _, s := range []string{"", "aWQ=", "aWQ", "a-_b", " QUJD ", "////", "=", strings.Repeat("A", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seg string) {
		v, err := DecodeSegment(seg)
		if err != nil {
			return
		}
		// Whatever decodes must round-trip through the canonical form.
		again, err := DecodeSegment(Encode(v))
		if err != nil || again != v {
			t.Fatalf("canonical round trip of %q: %q, %v", v, again, err)
		}
	})
}

func TestFromPath(t *testing.T) {
	id, secret := "my+client/id", "p@ss/w+rd=="
	stdID := base64.StdEncoding.EncodeToString([]byte(id))
	stdSecret := base64.StdEncoding.EncodeToString([]byte(secret))
	esc := func(s string) string { return strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(s) }
	ok := map[string]string{
		Encode(id) + "/" + Encode(secret):                                 "",
		Encode(id) + "/" + Encode(secret) + "/":                           "/",
		Encode(id) + "/" + Encode(secret) + "/1.0.0/x.xml":                "/1.0.0/x.xml",
		esc(stdID) + "/" + esc(stdSecret) + "/1.0.0/a%2Fb":                "/1.0.0/a%2Fb",
		strings.ReplaceAll(esc(stdID), "%2B", "+") + "/" + esc(stdSecret): "",
	}
	for p, wantRest := range ok {
		c, rest, err := FromPath(p)
		if err != nil || c.ID != id || c.Secret != secret || rest != wantRest {
			t.Errorf("FromPath(%q) = %v %q %v", p, c, rest, err)
		}
	}
	for _, p := range []string{"", "only-one", "/x", "x//", Encode(id) + "/%zz", Encode(id) + "/%25zz", Encode(id) + "/%25252F", Encode(id) + "/!!", Encode("a\tb") + "/" + Encode("s")} {
		if _, _, err := FromPath(p); err == nil {
			t.Errorf("FromPath(%q) accepted", p)
		}
	}
}

// The Functions host in proxying mode passes a client's "%2F" on as
// "%252F", and "%2B" and "%3D" decoded.
func TestFromPathThroughProxyingHost(t *testing.T) {
	id, secret := "proxy-client~>?", "a>?~secret"
	stdID := base64.StdEncoding.EncodeToString([]byte(id))
	stdSecret := base64.StdEncoding.EncodeToString([]byte(secret))
	if !strings.Contains(stdID, "/") || !strings.ContainsAny(stdSecret, "/") {
		t.Fatalf("test values need a '/' in base64: %s %s", stdID, stdSecret)
	}
	p := strings.ReplaceAll(stdID, "/", "%252F") + "/" + strings.ReplaceAll(stdSecret, "/", "%252F") + "/1.0.0/a%252Fb"
	c, rest, err := FromPath(p)
	if err != nil || c.ID != id || c.Secret != secret || rest != "/1.0.0/a%252Fb" {
		t.Fatalf("FromPath(%q) = %v %q %v", p, c, rest, err)
	}
}

func TestKeyedKeepsTheSameKey(t *testing.T) {
	c := Credential{ID: "id", Secret: "s3cr3t"}
	k := c.Keyed()
	if k.Key() != c.Key() || k.ID != c.ID || k.Secret != c.Secret || k.key == "" {
		t.Fatalf("Keyed changed the credential: %+v vs %+v", k, c)
	}
}
