package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/capabilities"
	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credstate"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/hexhealth"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/publicurl"
	"github.com/hexprox/hexprox/internal/upstream"
	"github.com/hexprox/hexprox/internal/usage"
)

// deliver answers a tile or map request, counted as what it is:
//   - for an API key, streamed: a redirect would hand its holder Hexagon's
//     token, which outlives the key (unless the key's record opts in);
//   - for a credential URL, whose holder has the secret already, streamed
//     to allowed browsers (or to everyone with TILE_MODE=proxy), else
//     redirected (or to no one with TILE_MODE=redirect).
func (s *Server) deliver(c echo.Context, call *upstream.Call, redirected, streamed usage.Kind) error {
	rec := recordOf(c)
	if !s.redirects(rec.in.principal.key, rec.in.browser) {
		return s.stream(c, call, streamed)
	}
	return s.redirect(c, call, redirected)
}

// hexCall puts in rec, and returns, the request's call to Hexagon's URL
// u (without a token), relaying what accept accepts; /healthz hears how
// it goes. A provider's calls are its passProfile's (call).
func (s *Server) hexCall(rec *record, u string, accept func(string) bool) *upstream.Call {
	rec.out.upstream = upstream.Call{Tokens: rec.in.tokens, URL: u, Accept: accept, Health: s.hexHealth}
	return &rec.out.upstream
}

// redirects reports whether deliver answers a tile or map with a
// redirect to Hexagon rather than streaming it: never for a key (nil for
// a credential URL) whose record does not opt in, nor with
// TILE_MODE=proxy; with TILE_MODE=auto, for all but allowed browsers.
func (s *Server) redirects(key *keys.Key, browser bool) bool {
	switch {
	case key != nil && !key.Redirects(), s.cfg.TileMode == config.ModeProxy:
		return false
	case s.cfg.TileMode == config.ModeAuto:
		return !browser
	}
	return true
}

// redirect answers with a 302 to Hexagon carrying a current token, counted
// as kind.
func (s *Server) redirect(c echo.Context, call *upstream.Call, kind usage.Kind) error {
	recordOf(c).out.answer(modeRedirect, kind)
	loc, err := call.Location(c.Request().Context())
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h["Cache-Control"] = noStore // canonical keys, set directly: the hot path
	h["Location"] = []string{loc}
	c.Response().WriteHeader(http.StatusFound)
	return nil
}

// stream relays the upstream's answer (Hexagon's or a provider's) as it
// arrives: a GET or HEAD to the call's URL with a few client headers,
// whitelisted headers back, the body copied through a pooled buffer. The
// call's Do adds the token and retries a refused one. For a key's
// holder, an answer that is not an image is read whole and checked
// first (relayChecked).
//
// It relays by hand rather than through httputil.ReverseProxy, which
// STYLE.md's first habit prefers, for a measured reason: a tile needs
// none of ReverseProxy's generality (request cloning, hop-by-hop header
// surgery, trailers, upgrades, hooks), and paying for it cost 213
// allocations per streamed tile against 186 here, and under load
// 98–122 µs of CPU per tile against 80–99 µs; HexProx streams 1.09–1.21×
// the tiles per second of a bare ReverseProxy (bench/RESULTS.md, round 3).
// What it keeps of ReverseProxy: the header whitelists both ways, the
// Vary merge, 304s and HEAD, and ErrAbortHandler when a body breaks.
func (s *Server) stream(c echo.Context, call *upstream.Call, kind usage.Kind) error {
	rec := recordOf(c)
	rec.out.answer(modeStream, kind)
	rec.out.call = call
	r := c.Request()
	// Do bounds the wait for the upstream's headers; body reads are bounded
	// here (see idleBody), by cancelling this request only.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	hdr := s.upstreamHeader(r.Header)
	if rec.in.principal.key != nil {
		// A key's text answers are checked for the credential
		// (relayChecked), which must read them as sent: without the
		// client's Accept-Encoding the transport asks for gzip itself
		// and decodes it.
		delete(hdr, "Accept-Encoding")
	}
	resp, kept, err := s.send(ctx, call, r.Method, hdr) // GET or HEAD: service refuses the rest
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w := c.Response()
	if rec.in.principal.key != nil && !raster(mediaType(resp.Header)) {
		// Text (feature information, a WMS exception) can echo the
		// request, and with it the token or key the proxy placed: a key's
		// holder gets it only when it shows neither.
		body := idleBody{r: resp.Body, idle: s.cfg.UpstreamTimeout, timer: time.AfterFunc(s.cfg.UpstreamTimeout, cancel)}
		defer body.timer.Stop()
		return relayChecked(w, call, resp.StatusCode, kept, &body)
	}
	copyKept(w.Header(), kept)
	w.WriteHeader(resp.StatusCode)
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	rec.relay.w = w
	// Each write to the client is bounded too, by the same wait: a client
	// that stops reading would otherwise hold this goroutine and its
	// buffers for ever; one that reads slowly but steadily is not cut.
	rec.relay.rc, rec.relay.idle = *http.NewResponseController(w.Writer), s.cfg.UpstreamTimeout
	defer rec.relay.rc.SetWriteDeadline(time.Time{}) // the connection's next answers are not bounded
	body := idleBody{r: resp.Body, idle: s.cfg.UpstreamTimeout, timer: time.AfterFunc(s.cfg.UpstreamTimeout, cancel)}
	_, err = io.CopyBuffer(&rec.relay, &body, *bp)
	body.timer.Stop()
	if err != nil {
		// The status and length have gone: all that is left is to cut
		// the connection, so that the client sees the answer is short.
		// net/http closes it quietly for this panic; finish logs and
		// counts it, by whose end broke: a client that leaves ends the
		// request's context (and so the read from Hexagon); Hexagon
		// breaking off, or going quiet (which cancels only ctx), does not.
		// (That holds while nothing else ends the request's context: a
		// server WriteTimeout or BaseContext would have to be told apart.)
		rec.out.upstreamCut = rec.relay.err == nil && r.Context().Err() == nil
		panic(http.ErrAbortHandler)
	}
	return nil
}

// copyKept sets the upstream's headers to relay on h, adding to the Vary
// the proxy set.
func copyKept(h, kept http.Header) {
	for k, v := range kept {
		if have := h[k]; k == "Vary" && len(have) > 0 { // Origin is there already
			v = append(have[:len(have):len(have)], v...)
		}
		h[k] = v
	}
}

// mediaType is h's Content-Type without parameters, in lower case.
func mediaType(h http.Header) string {
	mt, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// maxChecked caps an answer read whole to be checked (relayChecked).
const maxChecked = 1 << 20

// relayChecked writes an upstream's answer, read whole from body (up to
// maxChecked), only when it shows the call's credential in no spelling
// (provider.Reveals); else the answer is a 502 that says why. A gzip
// answer is checked, and relayed, decompressed (up to maxChecked): the
// client would read the credential the compressed bytes hide; any other
// content coding is refused, as one the check cannot read.
func relayChecked(w *echo.Response, call *upstream.Call, status int, kept http.Header, body io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(body, maxChecked+1))
	if err == nil && len(b) <= maxChecked && len(kept.Values("Content-Encoding")) > 0 {
		switch enc := strings.ToLower(strings.TrimSpace(strings.Join(kept.Values("Content-Encoding"), ","))); {
		case enc == "identity":
		case (enc == "gzip" || enc == "x-gzip") && len(b) > 0:
			zr, zerr := gzip.NewReader(bytes.NewReader(b))
			if zerr != nil {
				return failure.New(failure.UpstreamFailed, call.Upstream()+"'s answer is not the gzip it says it is", errors.New("checked answer: bad gzip"))
			}
			if b, err = io.ReadAll(io.LimitReader(zr, maxChecked+1)); err != nil {
				return failure.New(failure.UpstreamFailed, call.Upstream()+"'s answer is not the gzip it says it is", errors.New("checked answer: bad gzip"))
			}
		case enc == "gzip" || enc == "x-gzip":
		default:
			return failure.New(failure.UpstreamFailed, call.Upstream()+"'s answer is in an encoding the proxy does not relay", errors.New("checked answer: content coding other than gzip"))
		}
		kept.Del("Content-Encoding") // relayed as it was checked: decompressed
	}
	switch {
	case err != nil:
		return failure.FromRoundTrip(err, call.Upstream())
	case len(b) > maxChecked:
		return failure.New(failure.UpstreamFailed, call.Upstream()+"'s answer is larger than the proxy relays", errors.New("checked answer too large"))
	case call.Token != nil && provider.Reveals(b, call.Token.AccessToken):
		return failure.New(failure.UpstreamFailed, call.Upstream()+"'s answer names its credential, so the proxy does not relay it", errors.New("credential in a text answer"))
	}
	copyKept(w.Header(), kept)
	if len(b) > 0 {
		// An empty body (a HEAD, a 304) keeps the upstream's length.
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	}
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

// send makes the call with header (upstreamHeader's, of the client's)
// and checks the answer (checkUpstreamResponse), returning it with the
// headers to relay; on an error the body is drained and closed.
func (s *Server) send(ctx context.Context, call *upstream.Call, method string, header http.Header) (*http.Response, http.Header, error) {
	resp, err := call.Do(ctx, s.upstream, method, header)
	if err != nil {
		return nil, nil, err
	}
	kept, err := checkUpstreamResponse(resp, call)
	if err != nil {
		upstream.Drain(resp.Body)
		return nil, nil, err
	}
	return resp, kept, nil
}

// idleBody reads the upstream's body; a read that waits longer than idle
// (UPSTREAM_TIMEOUT) fires timer, which cancels the upstream request, so
// that an upstream gone quiet mid-body is its failure rather than a
// wait that ends only when the client gives up.
type idleBody struct {
	r     io.Reader
	idle  time.Duration
	timer *time.Timer
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	return b.r.Read(p)
}

// relayWriter is where stream copies to: the response, without its
// ReadFrom (so that io.CopyBuffer uses the pooled buffer rather than
// allocating its own), each write given idle to go out, remembering
// whether writing to the client failed.
type relayWriter struct {
	w    io.Writer
	rc   http.ResponseController // of w
	idle time.Duration
	err  error
}

func (r *relayWriter) Write(p []byte) (int, error) {
	r.rc.SetWriteDeadline(time.Now().Add(r.idle)) // not supported (a recorder): unbounded, as before
	n, err := r.w.Write(p)
	if err != nil {
		r.err = err
	}
	return n, err
}

// ogcException reports whether a media type is one OGC services write
// their exception reports in.
func ogcException(mediaType string) bool {
	switch mediaType {
	case "application/vnd.ogc.se_xml", "application/vnd.ogc.wms_xml", "text/xml", "application/xml":
		return true
	}
	return false
}

// forwardedRequestHeaders are the only client headers sent upstream
// (Hexagon or a provider; a key's stream drops Accept-Encoding).
var forwardedRequestHeaders = []string{"Accept", "Accept-Encoding", "Accept-Language", "If-None-Match", "If-Modified-Since"}

// passedResponseHeaders are the only upstream headers passed to clients.
var passedResponseHeaders = []string{"Content-Type", "Content-Length", "Content-Encoding", "Cache-Control", "Etag", "Last-Modified", "Expires", "Retry-After", "Vary", "Age"}

// upstreamHeader is what is sent upstream of the client's headers, and
// the proxy's User-Agent.
func (s *Server) upstreamHeader(in http.Header) http.Header {
	h := make(http.Header, len(forwardedRequestHeaders)+1)
	for _, k := range forwardedRequestHeaders {
		if v := in[k]; len(v) > 0 {
			h[k] = v
		}
	}
	h["User-Agent"] = s.userAgent
	return h
}

// checkUpstreamResponse relays only what a browser may safely get under
// the proxy's origin: a 2xx or 304 of a media type the call accepts, with
// whitelisted headers, never sniffed and never run as a document. It
// returns the headers to relay.
func checkUpstreamResponse(resp *http.Response, call *upstream.Call) (http.Header, error) {
	switch s := resp.StatusCode; {
	case s >= 400:
		return nil, call.StatusError(resp)
	case s >= 300 && s != http.StatusNotModified:
		return nil, failure.New(failure.UpstreamFailed, fmt.Sprintf("%s answered with a redirect (HTTP %d) where it should have sent the data", call.Upstream(), s), fmt.Errorf("upstream status %d", s))
	case s < 200:
		return nil, failure.New(failure.UpstreamFailed, fmt.Sprintf("%s answered HTTP %d", call.Upstream(), s), fmt.Errorf("upstream status %d", s))
	}
	if resp.StatusCode != http.StatusNotModified && call.Accept != nil {
		if mt := mediaType(resp.Header); !call.Accept(mt) {
			if call.Place != nil && ogcException(mt) {
				// Nearmap and Maxar answer errors as 200 with an OGC
				// exception: the client's request was refused. Its text is
				// not relayed: it may echo a key placed in the path.
				return nil, &failure.Error{Kind: failure.UpstreamStatus, Status: http.StatusBadRequest,
					Message: call.Upstream() + " answered with an OGC exception: check the layer, style, format and other parameters"}
			}
			return nil, failure.New(failure.UpstreamFailed, fmt.Sprintf("%s answered with %q, not the format asked for", call.Upstream(), capped(mt)), errors.New("unexpected upstream media type"))
		}
	}
	// A header that shows the credential in any spelling (an upstream
	// that echoes the request into an ETag, say) is not relayed.
	var cred string
	if call.Token != nil {
		cred = call.Token.AccessToken
	}
	kept := make(http.Header, len(passedResponseHeaders)+2)
	for _, k := range passedResponseHeaders {
		if v := resp.Header[k]; len(v) > 0 && !provider.RevealsAny(v, cred) {
			kept[k] = v
		}
	}
	for _, k := range call.Relay {
		if v := resp.Header.Values(k); len(v) > 0 && !provider.RevealsAny(v, cred) {
			kept[http.CanonicalHeaderKey(k)] = v
		}
	}
	kept["X-Content-Type-Options"] = nosniff
	kept["Content-Security-Policy"] = sandboxed
	return kept, nil
}

// Header values set on every redirect or proxied answer, shared:
// net/http copies them value by value, and nothing appends to them.
var (
	noStore   = []string{"no-store"}
	nosniff   = []string{"nosniff"}
	sandboxed = []string{"sandbox; default-src 'none'"}
)

// buffers lend stream its copy buffers instead of allocating 32 KiB per
// response.
var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// capsKeys start the cache keys of each endpoint family's documents, so
// that keys of different families sharing a credential never share one.
var capsKeys = [...]string{keys.Streaming: "", keys.Orders: "orders:"}

// capsSpec says how to fetch and rewrite one service's capabilities.
type capsSpec struct {
	service     string // the route's first segment: "wmts" or "wms"
	cacheKey    string // per service (and version); the credential's key is added
	roots       []string
	match       capabilities.Matcher
	contentType string
	url         string // the upstream URL, without a token
	// For another provider (nil and "" for Hexagon): where its credential
	// goes, and its name in messages. A document of theirs is served only
	// when nothing of the credential is left in it.
	place  func(u *url.URL, h http.Header, tok *oauth2.Token)
	name   string
	health *hexhealth.Recorder // told how the fetch went: Hexagon's (the server's) or the provider's
}

// capabilities answers with the rewritten document, from the cache when
// it is fresh.
func (s *Server) capabilities(c echo.Context, spec capsSpec) error {
	r := c.Request()
	rec := recordOf(c)
	rec.out.answer(modeCapabilities, usage.Capabilities)
	if _, ok := publicurl.Base(r, s.cfg.PublicBaseURL); !ok {
		return failure.Invalidf(failure.CodeInvalidParameter, "Host", "the Host or X-Forwarded-Host header is not a valid host name")
	}
	// A cached document is served only while the credential is not known
	// to be refused: asking the memory layer first costs nothing when its
	// token is live, and answers 403 once the upstream has refused it.
	if _, err := rec.in.tokens.TokenContext(r.Context()); err != nil {
		name := spec.name
		if name == "" {
			name = "Hexagon"
		}
		return failure.FromRoundTrip(err, name)
	}
	for {
		e := rec.pinned()
		doc, hit, call, err := s.loadCapabilities(r.Context(), spec, e)
		if err != nil && keyRefusedStatic(rec, e, err) {
			continue // the next of the key's sets, as a tile's refusal moves to it
		}
		if err != nil {
			return err
		}
		return s.writeCapabilities(c, spec, doc, hit, call)
	}
}

// keyRefusedStatic reports whether err is the refusal of a provider's
// static key, e, one of an API key's sets with another left: the set is
// marked refused and the request moved to the next one (keyTokens'
// giveUpKey, as a tile's refusal does). A load pins one set, so it
// cannot fail over itself.
func keyRefusedStatic(rec *record, e *credstate.Entry, err error) bool {
	var fe *failure.Error
	if rec.in.principal.key == nil || !e.Cred.IsKey() || !errors.As(err, &fe) || fe.Kind != failure.Forbidden {
		return false
	}
	return rec.in.keySets.giveUpKey()
}

// loadCapabilities returns spec's document fetched with e's credential
// (from the cache when fresh) and the call it came from.
func (s *Server) loadCapabilities(ctx context.Context, spec capsSpec, e *credstate.Entry) (*capabilities.Document, bool, *upstream.Call, error) {
	// One credential from the cache key to the fetch: a key's failover to
	// another set must not put a document fetched with one credential
	// under another's name, for whoever joins the load.
	call := &upstream.Call{Tokens: e.Tokens, URL: spec.url, Place: spec.place, Name: spec.name, Health: spec.health}
	doc, hit, err := s.caps.Get(ctx, spec.cacheKey+e.Cred.Key(), func(ctx context.Context) (*capabilities.Document, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.UpstreamTimeout)
		defer cancel()
		body, err := upstream.Fetch(ctx, s.upstream, call, s.upstreamHeader(nil), MaxCapabilities)
		if err != nil {
			return nil, err
		}
		// call.Token is the token the document was fetched with (after any retry).
		doc, err := capabilities.Rewrite(body, capabilities.Options{Match: spec.match, Roots: spec.roots, Secrets: []string{call.Token.AccessToken}})
		if err != nil {
			return nil, failure.New(failure.UpstreamFailed, call.Upstream()+" answered with something that is not a "+strings.ToUpper(spec.service)+" capabilities document", err)
		}
		if spec.place != nil && provider.Reveals(doc.Bytes(""), call.Token.AccessToken) {
			// A static key lives as long as the licence: a document that
			// would still show it (in a path, say, on a host the profile
			// does not name) is not served at all.
			return nil, failure.New(failure.UpstreamFailed, call.Upstream()+"'s capabilities document names its credential where the proxy cannot take it out", errors.New("credential left in a rewritten document"))
		}
		return doc, nil
	})
	return doc, hit, call, err
}

// writeCapabilities answers with doc, from call (hit: the cache's).
func (s *Server) writeCapabilities(c echo.Context, spec capsSpec, doc *capabilities.Document, hit bool, call *upstream.Call) error {
	r, rec := c.Request(), recordOf(c)
	// The load's result came through a channel, so call is safe to read.
	rec.out.cacheHit, rec.out.call = hit, call
	base, _ := publicurl.Base(r, s.cfg.PublicBaseURL) // checked before the load
	body := doc.Bytes(base + rec.in.principal.ownPath())
	h := c.Response().Header()
	h.Set("Content-Type", spec.contentType)
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(int(s.cfg.CapabilitiesTTL.Seconds())))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if s.cfg.PublicBaseURL == "" {
		h.Add("Vary", publicurl.VaryHeaders)
	}
	c.Response().WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := c.Response().Write(body)
	return err
}
