package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// panickingUpstream panics on every tile, with the URL it was sent (which
// carries a token) in the panic's value, as a careless fmt.Sprint would.
type panickingUpstream struct{ base http.RoundTripper }

func (p panickingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.RawQuery, ".jpg") {
		panic("cannot relay " + r.URL.String())
	}
	return p.base.RoundTrip(r)
}

// A panic below the request's record is the client's 500, in its own
// format, and one request line; its value and stack are logged without
// the token they carry, and the server goes on serving.
func TestPanicIsAnsweredInTheClientsFormat(t *testing.T) {
	h := newHarnessWith(t, map[string]string{"TILE_MODE": "proxy"}, func(o *Options) {
		o.Upstream = panickingUpstream{base: http.DefaultTransport}
	})
	resp, body := h.get(h.credURL()+tilePath, nil)
	rep := h.assertException(resp, body, http.StatusInternalServerError, "NoApplicableCode")
	if strings.Contains(rep.Exception.Text, "panic") || strings.Contains(rep.Exception.Text, "relay") {
		t.Fatalf("the panic's value reached the client: %q", rep.Exception.Text)
	}
	h.noteToken() // the token the panic's value carried: never logged (checkLogs)

	logs := h.logs.String()
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "request" && m["mode"] == "stream" {
			line = m
		}
	}
	if line == nil || line["status"] != float64(http.StatusInternalServerError) || line["err"] == "" {
		t.Fatalf("no request line with status 500 and an error for the panicking tile:\n%s", logs)
	}
	if !strings.Contains(logs, "cannot relay") || !strings.Contains(logs, "panic_test.go") {
		t.Fatalf("the panic's value and stack were not logged:\n%s", logs)
	}

	// The server still answers.
	if resp, body := h.get(h.credURL()+"/1.0.0/WMTSCapabilities.xml", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after a panic: status %d\n%.300s", resp.StatusCode, body)
	}
}
