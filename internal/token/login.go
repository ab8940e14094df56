package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
)

// Login is a provider's login service that turns a username and password
// into a token with an end (Vexcel's: a POST with both in the query
// string, answered {"token": …, "date-expiration": "2025-03-27T17:20:24"},
// the date without a time zone, read as UTC). It is the bottom of such a
// credential's stack, as Endpoint is of Hexagon's: each Token call logs
// in once.
//
// The token handed out is a Bearer token whose Expiry is on Now's clock,
// as the grants' are (handOut): the time from Now to the date the login
// gave, at most MaxLifetime, none left when it has passed, and
// DefaultLifetime when there is no date that parses.
//
// Errors are *failure.Errors, a status mapped as a grant's is
// (grantStatusError): a refusal (400, 401, 403) is failure.Forbidden
// wrapping ErrRefused, 429 is "rate limiting". They never hold the URL
// (which carries the password) or the body.
type Login struct {
	URL    string           // the login service, e.g. https://api.vexcelgroup.com/v2/auth/login
	Name   string           // the provider's name in messages: "Vexcel"
	Client *http.Client     // must have a Timeout; nil means http.DefaultClient (tests only)
	Now    func() time.Time // the clock a token's Expiry is set on; nil means time.Now
}

// Source returns cred's login source (cred.ID the username, cred.Secret
// the password); its requests use ctx, which must outlive any request.
func (l *Login) Source(ctx context.Context, cred credential.Credential) oauth2.TokenSource {
	return loginSource{l: l, ctx: ctx, cred: cred}
}

type loginSource struct {
	l    *Login
	ctx  context.Context
	cred credential.Credential
}

// loginDate is the login's date layout: no time zone.
const loginDate = "2006-01-02T15:04:05"

func (s loginSource) Token() (*oauth2.Token, error) {
	u, err := url.Parse(s.l.URL)
	if err != nil {
		return nil, failure.New(failure.Internal, "internal error", errors.New("token: bad login URL"))
	}
	u.RawQuery = url.Values{"username": {s.cred.ID}, "password": {s.cred.Secret}}.Encode()
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return nil, failure.New(failure.Internal, "internal error", errors.New("token: bad login request"))
	}
	resp, err := httpClient(s.l.Client).Do(req)
	if err != nil {
		if s.ctx.Err() != nil {
			err = s.ctx.Err()
		}
		return nil, failure.FromRoundTrip(err, s.l.Name+"'s login") // which drops the URL, and the password in it
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode != http.StatusOK:
		return nil, grantStatusError(resp.StatusCode, "", s.l.Name+"'s login", s.l.Name+" refused the username and password behind this key")
	case err != nil:
		return nil, failure.New(failure.UpstreamFailed, s.l.Name+"'s login is unavailable", fmt.Errorf("login %w", httpStatus(resp.StatusCode)))
	}
	var ans struct {
		Token   string `json:"token"`
		Expires string `json:"date-expiration"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Token == "" {
		return nil, failure.New(failure.UpstreamFailed, s.l.Name+"'s login answered something that is not a token", errNotAToken)
	}
	now := orNow(s.l.Now)()
	left := DefaultLifetime // no usable end: ask again within the hour
	if exp, err := time.ParseInLocation(loginDate, strings.TrimSpace(ans.Expires), time.UTC); err == nil {
		left = exp.Sub(now)
	}
	return issue(ans.Token, "Bearer", left, now), nil
}
