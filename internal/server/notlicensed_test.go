package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/fakeprovider"
	"github.com/hexprox/hexprox/internal/keys"
)

// A profile's not_licensed status is the provider saying "not for this
// credential": the client gets that status with a message that says so,
// asked once (no retry, the key is not given up); a profile without it
// gets the same status as a plain rejection.
func TestNotLicensedIsTheProfilesOwn(t *testing.T) {
	var asked atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if r.URL.Query().Get("key") != "county-key-secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if strings.Contains(r.URL.Path, "/forbidden/") {
			w.WriteHeader(http.StatusConflict) // this service's "not in your licence"
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(fakeprovider.PNG(256))
	}))
	t.Cleanup(up.Close)
	profile := func(name string, notLicensed int) string {
		return fmt.Sprintf(`{"name": %q, "title": "County Ortho", "credential": "static", "not_licensed": %d,
		  "hosts": {"api": {"url": %q, "paths": ["/wmts"]}}, "wmts": "api:/wmts/caps.xml", "place": [{"query": "key"}]}`, name, notLicensed, up.URL)
	}
	file := filepath.Join(t.TempDir(), "providers.json")
	doc := `{"providers": [` + profile("county", http.StatusConflict) + `, ` + strings.Replace(profile("plain", 0), `"not_licensed": 0, `, "", 1) + `]}`
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newKeyHarness(t, map[string]string{"PROVIDERS_FILE": file}, time.Minute)
	h.noteSecret("county-key-secret")
	for _, tc := range []struct {
		provider, want string
	}{
		{"county", "County Ortho does not license this to the credential behind this key (HTTP 409)"},
		{"plain", "County Ortho rejected the request (HTTP 409)"},
	} {
		key := h.addKey(keys.Record{Org: "Roads", Contact: "gis@roads.example", Provider: tc.provider,
			Sets: []credential.Credential{{Provider: tc.provider, Secret: "county-key-secret"}}})
		if resp, _ := h.get(h.keyURL(key)+"/~api/wmts/open/1.png", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: a licensed tile: %d", tc.provider, resp.StatusCode)
		}
		before := asked.Load()
		resp, body := h.get(h.keyURL(key)+"/~api/wmts/forbidden/1.png", nil)
		rep := h.assertException(resp, body, http.StatusConflict, "")
		if !strings.Contains(rep.Exception.Text, tc.want) || asked.Load()-before != 1 {
			t.Errorf("%s: %q after %d upstream requests, want %q after 1", tc.provider, rep.Exception.Text, asked.Load()-before, tc.want)
		}
		if resp, _ := h.get(h.keyURL(key)+"/~api/wmts/open/1.png", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: a licensed tile after a refused one: %d", tc.provider, resp.StatusCode)
		}
	}
}
