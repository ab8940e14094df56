package faketest

import (
	"net/http"
	"testing"
)

// Do sends the method and headers it is given to the server Serve
// started, and returns the status and the whole body.
func TestServeAndDo(t *testing.T) {
	base := Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte(r.Method + " " + r.URL.Path + " " + r.Header.Get("X-Test")))
	}))
	resp, body := Do(t, http.MethodPost, base+"/p", map[string]string{"X-Test": "v"})
	if resp.StatusCode != http.StatusTeapot || string(body) != "POST /p v" {
		t.Errorf("Do: %d %q", resp.StatusCode, body)
	}
	if _, body := Get(t, base+"/g", nil); string(body) != "GET /g " {
		t.Errorf("Get: %q", body)
	}
}
