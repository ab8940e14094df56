// Package token obtains and caches Hexagon access tokens.
//
// Sources are layered as oauth2.TokenSources: an Endpoint source at the
// bottom (the client-credentials grant against Hexagon), optionally a
// shared store above it, and a Cached source on top that each request
// reads. A Registry holds one Cached source per credential.
package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
)

// ErrRefused marks a token request that the endpoint refused because of the
// credential (400/401). Errors wrapping it map to 403 at the proxy.
var ErrRefused = errors.New("token endpoint refused the credential")

// maxTokenBody caps what is read of a token response.
const maxTokenBody = 1 << 20

// DefaultLifetime is assumed when a token response has no expires_in.
// Hexagon documents 12 hours; an hour keeps a wrong guess cheap.
const DefaultLifetime = time.Hour

// Endpoint is Hexagon's token endpoint. Hexagon documents the
// client-credentials grant as a GET with the credentials in the query
// string; whether it takes the standard POST form is not documented. An
// Endpoint starts with GET and switches to POST for good (per process)
// when the endpoint answers GET with 405 or 501, and back likewise.
//
// An Endpoint is safe for concurrent use.
type Endpoint struct {
	URL    string       // the token URL, e.g. https://services.hxgncontent.com/streaming/oauth/token
	Client *http.Client // must have a Timeout; nil means http.DefaultClient (tests only)
	Now    func() time.Time

	usePost atomic.Bool
}

// Source returns the client-credentials source for cred. Its requests use
// ctx, which must outlive any single HTTP request (it is the server's).
func (e *Endpoint) Source(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
	return &endpointSource{e: e, ctx: ctx, cred: cred}
}

type endpointSource struct {
	e    *Endpoint
	ctx  context.Context
	cred credential.Credential
}

func (s *endpointSource) Token() (*oauth2.Token, error) { return s.e.fetch(s.ctx, s.cred) }

// UsesPost reports whether the endpoint has been found to need POST.
func (e *Endpoint) UsesPost() bool { return e.usePost.Load() }

func (e *Endpoint) fetch(ctx context.Context, cred credential.Credential) (*oauth2.Token, error) {
	post := e.usePost.Load()
	tok, status, err := e.fetchWith(ctx, cred, post)
	if status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented {
		tok, status, err = e.fetchWith(ctx, cred, !post)
		if err == nil || status != http.StatusMethodNotAllowed && status != http.StatusNotImplemented {
			e.usePost.Store(!post)
		}
	}
	return tok, err
}

// fetchWith makes one token request. status is the HTTP status when one
// came back.
func (e *Endpoint) fetchWith(ctx context.Context, cred credential.Credential, post bool) (*oauth2.Token, int, error) {
	client := e.Client
	if client == nil {
		client = http.DefaultClient
	}
	if post {
		return e.fetchPost(ctx, client, cred)
	}
	q := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {cred.ID},
		"client_secret": {cred.Secret},
	}
	sep := "?"
	if strings.Contains(e.URL, "?") {
		sep = "&"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.URL+sep+q.Encode(), nil)
	if err != nil {
		return nil, 0, failure.New(failure.Internal, "cannot build token request", errors.New("bad token URL"))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBody))
	if err != nil {
		return nil, resp.StatusCode, transportError(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, statusError(resp.StatusCode, oauthErrorCode(body))
	}
	tok, err := e.parse(body)
	return tok, resp.StatusCode, err
}

func (e *Endpoint) fetchPost(ctx context.Context, client *http.Client, cred credential.Credential) (*oauth2.Token, int, error) {
	cc := clientcredentials.Config{
		ClientID:     cred.ID,
		ClientSecret: cred.Secret,
		TokenURL:     e.URL,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err == nil {
		// Expiry on this endpoint's clock, as for the GET form.
		lifetime := DefaultLifetime
		if tok.ExpiresIn > 0 {
			lifetime = time.Duration(tok.ExpiresIn) * time.Second
		}
		tok.Expiry, tok.ExpiresIn = e.now().Add(lifetime), int64(lifetime/time.Second)
		return tok, http.StatusOK, nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		// Never pass re on: its Body is the upstream's answer.
		return nil, re.Response.StatusCode, statusError(re.Response.StatusCode, re.ErrorCode)
	}
	return nil, 0, transportError(err)
}

func (e *Endpoint) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Endpoint) parse(body []byte) (*oauth2.Token, error) {
	var r struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   any    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.AccessToken == "" {
		return nil, failure.New(failure.UpstreamFailed, "Hexagon's token endpoint answered something that is not a token", errors.New("unparseable token response"))
	}
	lifetime := DefaultLifetime
	var secs float64
	switch v := r.ExpiresIn.(type) {
	case float64:
		secs = v
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	if secs > 0 {
		lifetime = time.Duration(secs * float64(time.Second))
	}
	return &oauth2.Token{
		AccessToken: r.AccessToken,
		TokenType:   r.TokenType,
		Expiry:      e.now().Add(lifetime),
		ExpiresIn:   int64(lifetime / time.Second),
	}, nil
}

func oauthErrorCode(body []byte) string {
	var r struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &r)
	return r.Error
}

// statusError maps a non-200 token response. code is the OAuth error code,
// kept only if it is a short plain word (it goes into logs).
func statusError(status int, code string) error {
	if len(code) > 40 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") != "" {
		code = ""
	}
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden:
		return &failure.Error{
			Kind:    failure.Forbidden,
			Message: "Hexagon refused the client id and secret in this URL",
			Err:     fmt.Errorf("%w: status %d %s", ErrRefused, status, code),
		}
	case status == http.StatusTooManyRequests:
		return &failure.Error{Kind: failure.UpstreamFailed, Message: "Hexagon's token endpoint is rate limiting", Err: fmt.Errorf("token status %d", status)}
	default:
		return failure.New(failure.UpstreamFailed, "Hexagon's token endpoint is unavailable", fmt.Errorf("token status %d %s", status, code))
	}
}

// transportError classifies a failed round trip without keeping the
// request URL, which for the GET form carries the client secret.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return failure.New(failure.UpstreamTimeout, "Hexagon's token endpoint did not answer in time", err)
	}
	return failure.New(failure.UpstreamFailed, "Hexagon's token endpoint is unreachable", err)
}
