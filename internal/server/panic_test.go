package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hexprox/hexprox/internal/app"
	"github.com/hexprox/hexprox/internal/credential"
)

// panickingUpstream panics on every tile, with the URL it was sent (which
// carries a token) in the panic's value, as a careless fmt.Sprint would.
type panickingUpstream struct {
	base     http.RoundTripper
	incoming string // the client's URL, which a careless message might quote too
}

func (p *panickingUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.RawQuery, ".jpg") {
		// The token in the URL, and the client's secret as a careless
		// message might carry it, with no name= for the log's scrubber.
		panic("cannot relay " + r.URL.String() + " for " + clientSecret + " asked at " + p.incoming)
	}
	return p.base.RoundTrip(r)
}

// A panic below the request's record is the client's 500, in its own
// format, and one request line; its value and stack are logged without
// the token they carry, and the server goes on serving.
func TestPanicIsAnsweredInTheClientsFormat(t *testing.T) {
	incoming := "/wmts/" + credential.Encode(clientID) + "/" + credential.Encode(clientSecret) + tilePath
	up := &panickingUpstream{base: http.DefaultTransport, incoming: incoming}
	h := newHarnessWith(t, map[string]string{"TILE_MODE": "proxy"}, func(o *app.Options) { o.Upstream = up })
	resp, body := h.get(h.proxy.URL+incoming, nil)
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

// midBodyPanic relays tiles with no declared length, and a body that
// panics after its first after bytes.
type midBodyPanic struct {
	base  http.RoundTripper
	after int
}

func (m midBodyPanic) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := m.base.RoundTrip(r)
	if err != nil || !strings.Contains(r.URL.RawQuery, ".jpg") {
		return resp, err
	}
	resp.Header.Del("Content-Length")
	resp.ContentLength = -1
	resp.Body = &panicAfter{ReadCloser: resp.Body, left: m.after}
	return resp, nil
}

type panicAfter struct {
	io.ReadCloser
	left int
}

func (p *panicAfter) Read(b []byte) (int, error) {
	if p.left <= 0 {
		panic("tile decoder broke")
	}
	n, err := p.ReadCloser.Read(b[:min(len(b), p.left)])
	p.left -= n
	return n, err
}

// A panic once the answer has started cannot become a 500: the
// connection is cut, so that the client sees the tile is short rather
// than taking a kilobyte for the whole of it.
func TestPanicMidAnswerCutsTheConnection(t *testing.T) {
	for _, after := range []int{1 << 10, 16 << 10} { // before and after net/http's buffers fill
		h := newHarnessWith(t, map[string]string{"TILE_MODE": "proxy"}, func(o *app.Options) {
			o.Upstream = midBodyPanic{base: http.DefaultTransport, after: after}
		})
		// The status line may not have left yet: then the client's error
		// comes before any answer.
		if resp, err := h.client.Get(h.credURL() + tilePath); err == nil {
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("panic after %d bytes: status %d and %d bytes read without an error: a cut tile passed off as whole", after, resp.StatusCode, len(body))
			}
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			logs := h.logs.String()
			if strings.Contains(logs, "response aborted") && strings.Contains(logs, "tile decoder broke") {
				// Logged with the status it is counted as, not the 200 that went.
				if !strings.Contains(logs, `"status":500`) || strings.Contains(logs, `"status":200`) {
					t.Fatalf("panic after %d bytes: the cut answer's line does not say 500:\n%s", after, logs)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("panic after %d bytes: the cut answer and its panic were not logged:\n%s", after, logs)
			}
		}
	}
}
