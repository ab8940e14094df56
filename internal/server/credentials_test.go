package server

import (
	"net/http"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
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
