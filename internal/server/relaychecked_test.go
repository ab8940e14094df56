package server_test

import (
	"io"
	"net/http"
	"testing"
)

// A key's text answer is read whole to be checked (relayChecked); its
// HEAD, whose body is empty, still says the GET's length.
func TestCheckedTextKeepsItsLengthOnHEAD(t *testing.T) {
	w := hexagonLeakWorld(t)
	length := map[string]string{}
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		req, err := http.NewRequest(m, w.h.proxy.URL+w.featureInfo, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := w.h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || m == http.MethodGet && len(body) == 0 {
			t.Fatalf("%s feature information: %d, %d bytes", m, resp.StatusCode, len(body))
		}
		length[m] = resp.Header.Get("Content-Length")
	}
	if length[http.MethodHead] != length[http.MethodGet] || length[http.MethodGet] == "" {
		t.Fatalf("Content-Length of GET %q, of HEAD %q", length[http.MethodGet], length[http.MethodHead])
	}
}
