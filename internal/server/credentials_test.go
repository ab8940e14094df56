package server_test

import (
	"net/http"
	"testing"

	"github.com/hexprox/hexprox/internal/credential"
)

// A credential URL Hexagon accepted is decoded once; a refused one is
// never remembered, so random URLs cannot fill the table's spellings.
func TestDecodedCredentialsKeepOnlyAcceptedOnes(t *testing.T) {
	h := newHarness(t, nil)
	srv := h.app.Server
	good := credential.Encode(clientID) + "/" + credential.Encode(clientSecret)
	bad := credential.Encode(clientID) + "/" + credential.Encode("wrong")
	if _, ok := srv.Creds().Spelled(good); ok {
		t.Fatal("remembered before any request")
	}
	if resp, _ := h.get(h.proxy.URL+"/wmts/"+bad+tilePath, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("refused credential: %d", resp.StatusCode)
	}
	if _, ok := srv.Creds().Spelled(bad); ok {
		t.Fatal("a refused credential was remembered")
	}
	for i := 0; i < 3; i++ {
		if resp, _ := h.get(h.proxy.URL+"/wmts/"+good+tilePath, nil); resp.StatusCode != http.StatusFound {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	e, ok := srv.Creds().Spelled(good)
	if !ok || e.Cred.ID != clientID || e.Cred.Secret != clientSecret || e.Who != (credential.Credential{ID: clientID, Secret: clientSecret}).Fingerprint("") {
		t.Fatalf("an accepted credential should be remembered as it decodes: %v", ok)
	}
	// One entry per credential: the spelling leads to the entry the
	// credential has.
	if srv.Creds().Get(credential.Credential{ID: clientID, Secret: clientSecret}) != e {
		t.Fatal("a remembered spelling leads to another entry than its credential's")
	}
	// The WMS route finds it too.
	if resp, _ := h.get(h.proxy.URL+"/wms/"+good+"?SERVICE=WMS&REQUEST=GetCapabilities", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("WMS with a remembered credential: %d", resp.StatusCode)
	}
}
