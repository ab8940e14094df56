// Package credential decodes the Hexagon OAuth client credentials that
// HexProx receives base64-encoded in the URL path, and derives the
// non-secret identifiers (hash key, fingerprint) under which they are cached
// and logged.
package credential

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxSegment is the longest encoded path segment accepted, in bytes.
// Real Hexagon client IDs and secrets are far shorter; the limit keeps
// hostile input from reaching the token endpoint.
const MaxSegment = 256

// Errors returned by Decode; they never contain the input.
var (
	ErrEmpty    = errors.New("credential segment is empty")
	ErrTooLong  = fmt.Errorf("credential segment is longer than %d bytes", MaxSegment)
	ErrBase64   = errors.New("credential segment is not valid base64")
	ErrBadValue = errors.New("decoded credential contains control characters or is not UTF-8")
)

// Credential is a Hexagon OAuth client ID and secret, or, when Provider
// names another provider, one of that provider's sets: a static key (in
// Secret; ID empty), a username and password (ID and Secret), or, with
// Client, an OAuth2 client ID and secret.
//
// Its String and LogValue methods print only the fingerprint, so a
// Credential can be passed to fmt or slog without leaking the secret.
type Credential struct {
	ID       string
	Secret   string
	Provider string // "": Hexagon's; else a provider profile's name
	// Client marks another provider's ID and Secret as an OAuth2 client
	// (an operator's oauth2 profile), not a username and password.
	Client bool
	// Expires is when another provider's key ends, as the provider set
	// it (Maxar's live at most 180 days); zero when not known. The keys
	// CLI and the server's log warn before it passes. It is not part of
	// Key.
	Expires time.Time

	key string // Key, when computed by Decode
}

// IsKey reports whether c is another provider's static key.
func (c Credential) IsKey() bool { return c.Provider != "" && c.ID == "" }

// Decode decodes the two path segments of a credential URL.
// See DecodeSegment for the accepted encodings.
func Decode(idSeg, secretSeg string) (Credential, error) {
	id, err := DecodeSegment(idSeg)
	if err != nil {
		return Credential{}, fmt.Errorf("client id: %w", err)
	}
	secret, err := DecodeSegment(secretSeg)
	if err != nil {
		return Credential{}, fmt.Errorf("client secret: %w", err)
	}
	c := Credential{ID: id, Secret: secret}
	c.key = c.computeKey()
	return c, nil
}

// DecodeSegment decodes one path segment (already percent-decoded).
// It accepts the standard alphabet (what a browser's btoa gives: '+', '/'
// and '=' padding) and the URL-safe alphabet ('-', '_'), mixed, with or
// without padding; spaces and tabs anywhere in the segment are stripped, as
// the original HexProx did (CR, LF and anything else are refused). The decoded value must be UTF-8 without control
// characters (CR, LF, NUL...); spaces and punctuation are allowed, so any
// credential the landing page encodes comes back unchanged.
func DecodeSegment(seg string) (string, error) {
	if len(seg) > MaxSegment {
		return "", ErrTooLong
	}
	seg = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t':
			return -1
		case '-':
			return '+'
		case '_':
			return '/'
		}
		return r
	}, seg)
	seg = strings.TrimRight(seg, "=")
	if seg == "" {
		return "", ErrEmpty
	}
	// encoding/base64 skips CR and LF; a credential must not.
	if strings.Trim(seg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") != "" {
		return "", ErrBase64
	}
	b, err := base64.RawStdEncoding.DecodeString(seg)
	if err != nil {
		return "", ErrBase64
	}
	v := string(b)
	if v == "" || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return "", ErrBadValue
	}
	return v, nil
}

// Encode returns the canonical path segment for a value: URL-safe base64
// without padding, which needs no percent-encoding anywhere in a URL.
func Encode(v string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(v))
}

// Key returns a stable, non-reversible identifier for the credential: the
// hex SHA-256 of the length-prefixed id and secret. It is safe to use as a
// map key in memory; it must not be written anywhere an attacker could try
// to brute-force it offline (the table store uses a keyed HMAC instead).
func (c Credential) Key() string {
	if c.key != "" {
		return c.key
	}
	return c.computeKey()
}

func (c Credential) computeKey() string {
	b := make([]byte, 0, 64+len(c.Provider)+len(c.ID)+len(c.Secret))
	b = append(b, "hexprox-credential-v1\x00"...)
	if c.Provider != "" { // Hexagon's keys are as they always were
		b = strconv.AppendInt(b, int64(len(c.Provider)), 10)
		b = append(b, '/')
		b = append(b, c.Provider...)
		b = append(b, 0)
	}
	b = strconv.AppendInt(b, int64(len(c.ID)), 10)
	b = append(b, ':')
	b = append(b, c.ID...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(len(c.Secret)), 10)
	b = append(b, ':')
	b = append(b, c.Secret...)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Keyed returns c with its Key computed once, so that a credential kept
// for many requests (an API key's sets) is not hashed on each.
func (c Credential) Keyed() Credential {
	if c.key == "" {
		c.key = c.computeKey()
	}
	return c
}

// Fingerprint returns 8 hex digits that tell credentials apart in logs and
// usage rows, far too few to identify one: of an HMAC-SHA256 of the
// credential under hashKey (TOKEN_HASH_KEY, the same on every instance),
// so that nobody without it can test a guessed secret against a log line;
// with hashKey "", of Key, a plain SHA-256, which anyone who reads the
// logs can test guesses against offline.
func (c Credential) Fingerprint(hashKey string) string {
	if hashKey == "" {
		return c.Key()[:8]
	}
	m := hmac.New(sha256.New, []byte(hashKey))
	m.Write([]byte("hexprox-credential-fingerprint-v1\x00"))
	m.Write([]byte(c.Key()))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

// PathSegments returns the canonical encoded id and secret for URLs the
// proxy writes (capabilities documents).
func (c Credential) PathSegments() (id, secret string) {
	return Encode(c.ID), Encode(c.Secret)
}

// String prints nothing of the credential: log its Fingerprint instead.
func (c Credential) String() string { return "[credential]" }

// LogValue implements slog.LogValuer: nothing of the credential.
func (c Credential) LogValue() slog.Value { return slog.StringValue("[credential]") }

// ErrPath is returned by FromPath for a path without two credential segments.
var ErrPath = errors.New("the URL must continue with /{base64 client id}/{base64 client secret}")

// FromPath takes the escaped path that follows a route prefix such as
// "/wmts/" and returns the credential from its first two segments and the
// escaped rest ("" or starting with "/"). Segments are percent-decoded
// one by one, so "%2F" inside a segment stays part of it. A segment that
// still holds a '%' is decoded once more: base64 has none, and the
// Functions host in proxying mode turns a client's "%2F" into "%252F"
// (Kestrel keeps %2F encoded, then YARP escapes its '%';
// docs/functions-host.md).
func FromPath(escaped string) (Credential, string, error) {
	idSeg, rest, ok := strings.Cut(escaped, "/")
	if !ok {
		return Credential{}, "", ErrPath
	}
	secretSeg, rest, found := strings.Cut(rest, "/")
	if found {
		rest = "/" + rest
	}
	if idSeg == "" || secretSeg == "" {
		return Credential{}, "", ErrPath
	}
	id, err1 := unescapeSegment(idSeg)
	secret, err2 := unescapeSegment(secretSeg)
	if err1 != nil || err2 != nil {
		return Credential{}, "", ErrBase64
	}
	c, err := Decode(id, secret)
	return c, rest, err
}

// unescapeSegment percent-decodes a path segment, twice when the first
// pass leaves a '%' (see FromPath).
func unescapeSegment(seg string) (string, error) {
	v, err := url.PathUnescape(seg)
	if err == nil && strings.IndexByte(v, '%') >= 0 {
		v, err = url.PathUnescape(v)
	}
	return v, err
}
