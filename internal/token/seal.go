package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/tokenstore"
	"golang.org/x/oauth2"
)

// The sealing of tokens in the shared store: rows named by an HMAC of the
// credential, tokens sealed with AES-256-GCM under a key derived from it,
// and the checks that refuse a row copied back or older than one seen.

// RowKey names a credential's row: hex HMAC-SHA256 of the credential under
// hashKey (or a fixed domain-separation string).
func RowKey(cred credential.Credential, hashKey string) string {
	k := hashKey
	if k == "" {
		k = "hexprox token store row key v1"
	}
	m := hmac.New(sha256.New, []byte(k))
	fmt.Fprintf(m, "%d:%s\x00%d:%s", len(cred.ID), cred.ID, len(cred.Secret), cred.Secret)
	return hex.EncodeToString(m.Sum(nil))
}

// sealer derives the credential's AES-256-GCM key with HKDF-SHA256.
func sealer(cred credential.Credential) cipher.AEAD {
	secret := fmt.Sprintf("%d:%s\x00%d:%s", len(cred.ID), cred.ID, len(cred.Secret), cred.Secret)
	key, err := hkdf.Key(sha256.New, []byte(secret), []byte("hexprox token store v1"), "token sealing key", 32)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// sealed is the plaintext of a stored token.
type sealed struct {
	Token     string `json:"t"`
	Type      string `json:"y,omitempty"`
	Expiry    int64  `json:"e"` // Unix ms
	RefreshAt int64  `json:"r"` // Unix ms
	Written   int64  `json:"w"` // Unix ms: when it was sealed, for this write
}

// seal seals rec for a write now. The caller notes the write time (saw)
// once the write succeeds: a write that lost a race must not make the
// winner's row look old.
func (s *Shared) seal(rec sealed, now time.Time) []byte {
	rec.Written = now.UnixMilli()
	pt, _ := json.Marshal(rec)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(pt)+s.aead.Overhead())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, pt, []byte(s.key))
}

func record(t *oauth2.Token, refreshAt time.Time) sealed {
	return sealed{Token: t.AccessToken, Type: t.TokenType, Expiry: t.Expiry.UnixMilli(), RefreshAt: refreshAt.UnixMilli()}
}

// unseal returns the sealed token in data, or ok false for none or one it
// cannot open (corrupt, or sealed under another credential).
func (s *Shared) unseal(data []byte) (rec sealed, ok bool) {
	n := s.aead.NonceSize()
	if len(data) < n+s.aead.Overhead() {
		return sealed{}, false
	}
	pt, err := s.aead.Open(nil, data[:n], data[n:], []byte(s.key))
	if err != nil || json.Unmarshal(pt, &rec) != nil || rec.Token == "" {
		return sealed{}, false
	}
	return rec, true
}

// open returns the token stored in ent, or ok false for none, one it
// cannot open, or one sealed too long before the entity was written (a
// replayed blob) or before the newest this instance has seen.
func (s *Shared) open(ent tokenstore.Entity) (rec sealed, ok bool) {
	rec, ok = s.unseal(ent.Data)
	if !ok {
		return sealed{}, false
	}
	written := time.UnixMilli(rec.Written)
	if !ent.Modified.IsZero() && written.Before(ent.Modified.Add(-SealSkew)) {
		s.o.Log.Warn("refused a stored token sealed long before its row was written (copied back?); fetching a fresh one",
			"sealed", written.UTC().Format(time.RFC3339), "row_written", ent.Modified.UTC().Format(time.RFC3339))
		return sealed{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if written.Before(s.newest) {
		s.o.Log.Warn("refused a stored token older than one this instance has seen; fetching a fresh one",
			"sealed", written.UTC().Format(time.RFC3339), "newest", s.newest.UTC().Format(time.RFC3339))
		return sealed{}, false
	}
	// A writer's clock far ahead must not make later honest rows look old.
	if limit := ent.Modified.Add(SealSkew); !ent.Modified.IsZero() && written.After(limit) {
		written = limit
	}
	if written.After(s.newest) {
		s.newest = written
	}
	return rec, true
}

// saw notes when this instance wrote a sealed token (a lease alone does
// not count: it carries no seal time that a later read could compare).
func (s *Shared) saw(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = t.Truncate(time.Millisecond); t.After(s.newest) {
		s.newest = t
	}
}
