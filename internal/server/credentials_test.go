package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/usage/limit"
)

// A credential URL Hexagon accepted is decoded once; a refused one is
// never remembered, so random URLs cannot fill the cache.
func TestDecodedCredentialsKeepOnlyAcceptedOnes(t *testing.T) {
	h := newHarness(t, nil)
	srv := h.proxy.Config.Handler.(*Server)
	good := credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	bad := credential.Encode(clientID) + "/" + credential.Encode("wrong")
	if _, ok := srv.decoded.lookup(good); ok {
		t.Fatal("remembered before any request")
	}
	if resp, _ := h.get(h.proxy.URL+"/wmts/"+bad+tilePath, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused credential: %d", resp.StatusCode)
	}
	if _, ok := srv.decoded.lookup(bad); ok {
		t.Fatal("a refused credential was remembered")
	}
	for i := 0; i < 3; i++ {
		if resp, _ := h.get(h.proxy.URL+"/wmts/"+good+tilePath, nil); resp.StatusCode != http.StatusFound {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	cred, ok := srv.decoded.lookup(good)
	if !ok || cred.ID != clientID || cred.Secret != clientSecret || cred.Fingerprint() != (credential.Credential{ID: clientID, Secret: clientSecret}).Fingerprint() {
		t.Fatalf("an accepted credential should be remembered as it decodes: %v", ok)
	}
	// The WMS route finds it too.
	if resp, _ := h.get(h.proxy.URL+"/wms/"+good+"?SERVICE=WMS&REQUEST=GetCapabilities", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("WMS with a remembered credential: %d", resp.StatusCode)
	}
}

// The cache of decoded credentials starts afresh when full, rather than
// grow: the credential remembered next is found, and the oldest are not.
func TestDecodedCredentialsStartAfreshWhenFull(t *testing.T) {
	h := newHarness(t, nil)
	srv := h.proxy.Config.Handler.(*Server)
	cred := credential.Credential{ID: clientID, Secret: clientSecret}
	if resp, _ := h.get(h.credURL()+tilePath, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("warm-up: %d", resp.StatusCode)
	}
	live := h.tokens.Source(cred)
	for i := range maxDecoded - int(srv.decoded.n.Load()) { // the warm-up's URL is one
		srv.decoded.remember(fmt.Sprintf("id%d/secret", i), cred, live)
	}
	if _, ok := srv.decoded.lookup("id0/secret"); !ok {
		t.Fatal("a full cache lost an entry before it needed room")
	}
	srv.decoded.remember("one-more/secret", cred, live)
	if _, ok := srv.decoded.lookup("one-more/secret"); !ok {
		t.Fatal("the credential remembered after the cache was full is not found")
	}
	if _, ok := srv.decoded.lookup("id0/secret"); ok {
		t.Fatal("the cache grew past maxDecoded instead of starting afresh")
	}
	if n := srv.decoded.n.Load(); n != 1 {
		t.Fatalf("the fresh cache counts %d entries, want 1", n)
	}
}

// RATE_LIMIT's per-credential limiters start afresh when there are
// maxV1Limiters of them; a credential's limiter is its own until then.
func TestV1LimitersStartAfreshWhenFull(t *testing.T) {
	v := newV1Limiters(limit.Limits{Rate: 1, Burst: 1})
	first := v.get("cred-0")
	if v.get("cred-0") != first {
		t.Fatal("a credential got a new limiter on its second request")
	}
	for i := 1; i < maxV1Limiters; i++ {
		v.get(fmt.Sprintf("cred-%d", i))
	}
	if v.get("cred-0") != first || len(v.m) != maxV1Limiters {
		t.Fatalf("%d limiters; the first was replaced before the map was full", len(v.m))
	}
	v.get("one-more")
	if len(v.m) != 1 {
		t.Fatalf("%d limiters after the map was full, want 1 (started afresh)", len(v.m))
	}
	if v.get("cred-0") == first {
		t.Fatal("the first credential kept its limiter across the fresh start")
	}
}
