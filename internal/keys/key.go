package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Prefix starts every key New makes: "hxpk-" (HexProx key) and 43
// base62 characters, 48 characters in all. The fixed prefix lets secret
// scanners (GitHub push protection, gitleaks, trufflehog) recognise a
// leaked key with the pattern `hxpk-[0-9A-Za-z]{43}`. Keys made by the
// original HexProx have no prefix and are accepted as they are.
const Prefix = "hxpk-"

// randomChars is the number of base62 characters after Prefix:
// 43 × log2(62) ≈ 256.03 bits.
const randomChars = 43

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Check returns ErrSyntax unless key is 1 to MaxLen characters of
// [0-9A-Za-z-], the alphabet of Key Vault secret names. Every key the
// original HexProx could store passes. Callers check before any store
// call, so that hostile input never reaches a store.
func Check(key string) error {
	if len(key) == 0 || len(key) > MaxLen {
		return ErrSyntax
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '-') {
			return ErrSyntax
		}
	}
	return nil
}

// New returns a new key: Prefix and 43 characters drawn uniformly from
// [0-9A-Za-z] with crypto/rand, at least 256 random bits. It fails only if
// the system's random source does.
func New() (string, error) {
	out := make([]byte, 0, len(Prefix)+randomChars)
	out = append(out, Prefix...)
	buf := make([]byte, 64)
	for len(out) < cap(out) {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("keys: random source: %w", err)
		}
		for _, b := range buf {
			// Rejection sampling: 248 = 4 × 62, so b%62 is uniform below it.
			if b < 248 && len(out) < cap(out) {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out), nil
}

// fingerprintDomain keys the HMAC when no hash key is configured, so that
// fingerprints are at least not plain SHA-256 prefixes of keys.
const fingerprintDomain = "hexprox-api-key-fingerprint-v1"

// Canonical is the one spelling of a key that caches, fingerprints,
// limits and usage are kept under. Key Vault's secret names are
// case-insensitive, so every spelling of a key reads the same record: were
// each its own key here, a key holder could multiply its limits and split
// its usage by changing case. Lower case keeps about 220 of a generated
// key's 256 bits.
func Canonical(key string) string { return strings.ToLower(key) }

// Fingerprint returns 8 hex digits of HMAC-SHA256(hashKey, key): enough to
// tell keys apart in logs, far too short to recover or confirm a key from.
// hashKey "" uses a fixed domain-separation string; with a deployment's
// own hashKey (the same on every instance), fingerprints cannot be
// precomputed by anyone without it. The key itself is never logged.
func Fingerprint(key, hashKey string) string {
	if hashKey == "" {
		hashKey = fingerprintDomain
	}
	m := hmac.New(sha256.New, []byte(hashKey))
	m.Write([]byte(Canonical(key))) // every spelling, one fingerprint
	return hex.EncodeToString(m.Sum(nil)[:4])
}
