package keys

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	good := []string{
		"a", "-", "0", "hxpk-" + strings.Repeat("Z", 43),
		"a1b2c3d4-0000-4e5f-8a9b-abcdefabcdef", // an original HexProx-style key
		strings.Repeat("k", MaxLen),
	}
	for _, k := range good {
		if err := Check(k); err != nil {
			t.Errorf("Check(%q) = %v, want nil", k, err)
		}
	}
	bad := []string{
		"", strings.Repeat("k", MaxLen+1), "a b", "a_b", "a.b", "a/b", "a%2Fb", "a\x00", "a\n",
		"ключ", "ｋｅｙ", "a+b", "a=b", "credential-set-x/../y",
	}
	for _, k := range bad {
		if err := Check(k); !errors.Is(err, ErrSyntax) {
			t.Errorf("Check(%q) = %v, want ErrSyntax", k, err)
		}
	}
	if MaxLen != 112 {
		t.Fatalf("MaxLen = %d; Key Vault names are at most 127 characters with the 15-character prefix", MaxLen)
	}
}

func TestNew(t *testing.T) {
	shape := regexp.MustCompile(`^hxpk-[0-9A-Za-z]{43}$`)
	seen := map[string]bool{}
	counts := map[byte]int{}
	const n = 2000
	for range n {
		k, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if !shape.MatchString(k) {
			t.Fatalf("New() = %q, not hxpk- and 43 base62 characters", k)
		}
		if err := Check(k); err != nil {
			t.Fatalf("New() made a key Check refuses: %v", err)
		}
		if seen[k] {
			t.Fatal("New() repeated a key")
		}
		seen[k] = true
		for i := len(Prefix); i < len(k); i++ {
			counts[k[i]]++
		}
	}
	// Every character of the alphabet turns up about equally often:
	// 86,000 draws, 1387 expected each; a biased modulo (256 % 62) would
	// give the first 8 characters about 1.23× the rest.
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters, want 62", len(counts))
	}
	expected := float64(n*randomChars) / 62
	for c, got := range counts {
		if float64(got) < 0.85*expected || float64(got) > 1.15*expected {
			t.Errorf("character %q drawn %d times, expected about %.0f", c, got, expected)
		}
	}
}

func TestFingerprint(t *testing.T) {
	k := "hxpk-0123456789abcdefghijABCDEFGHIJ0123456789a"
	fp := Fingerprint(k, "")
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(fp) {
		t.Fatalf("Fingerprint = %q, want 8 hex digits", fp)
	}
	if fp != Fingerprint(k, "") {
		t.Fatal("Fingerprint is not stable")
	}
	if fp == Fingerprint(k+"b", "") {
		t.Fatal("different keys, same fingerprint")
	}
	if fp == Fingerprint(k, "deployment-hash-key") {
		t.Fatal("the hash key does not change the fingerprint")
	}
	if Fingerprint(k, fingerprintDomain) != fp {
		t.Fatal(`hashKey "" must mean the fixed domain string`)
	}
	if strings.Contains(k, fp) {
		t.Fatal("the fingerprint is part of the key")
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"hxpk-abc", "a1b2-c3", "", "a b", "ключ", strings.Repeat("a", MaxLen+1)} {
		f.Add(s)
	}
	alphabet := regexp.MustCompile(`^[0-9A-Za-z-]{1,112}$`)
	f.Fuzz(func(t *testing.T, s string) {
		err := Check(s)
		if ok := alphabet.MatchString(s); ok != (err == nil) {
			t.Fatalf("Check(%q) = %v; the Key Vault alphabet says ok=%v", s, err, ok)
		}
		if err != nil && !errors.Is(err, ErrSyntax) {
			t.Fatalf("Check(%q) = %v, want ErrSyntax", s, err)
		}
		if err != nil && strings.Contains(err.Error(), s) && s != "" && !strings.Contains(ErrSyntax.Error(), s) {
			t.Fatalf("the error quotes the input")
		}
	})
}
