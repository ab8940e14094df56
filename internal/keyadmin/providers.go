package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/provider"
	"github.com/hexprox/hexprox/internal/token"
	"golang.org/x/oauth2"
)

// catalog returns the profiles the server's settings make
// (PROVIDER_{NAME}_{ROLE}_URL, PROVIDERS_FILE), loaded once a run.
func (c *cli) catalog() (provider.Catalog, error) {
	c.catOnce.Do(func() {
		if c.env.Providers == nil {
			c.cat, c.catErr = provider.NewCatalog(nil, nil)
			return
		}
		if c.cat, c.catErr = c.env.Providers(); c.catErr != nil {
			c.cat, c.catErr = provider.Catalog{}, fmt.Errorf("invalid settings: %w", c.catErr)
		}
	})
	return c.cat, c.catErr
}

// profile returns the profile name, as the server's settings make it.
func (c *cli) profile(name string) (*provider.Profile, error) {
	cat, err := c.catalog()
	if err != nil {
		return nil, err
	}
	p := cat.Get(name)
	if p == nil {
		return nil, fmt.Errorf("%w: --provider is one of %s", ErrUsage, strings.Join(append([]string{provider.Hexagon}, cat.Names()...), ", "))
	}
	return p, nil
}

// checkKeys asks the provider once per set whether it takes it, as the
// proxy will use it: a key by a capabilities request with the key
// placed, a login or client by its grant. A refused set saves nothing,
// named by its number (never by a value).
func (c *cli) checkKeys(ctx context.Context, p *provider.Profile, sets []credential.Credential) error {
	if !sets[0].IsKey() {
		return c.checkLogins(ctx, p, sets)
	}
	host, _ := p.Host(p.WMTS.Role)
	fmt.Fprintf(c.errOut, "Checking %s with %s (%s)… ", plural(len(sets), "key"), p.Title, host.Base)
	client := &http.Client{Timeout: checkTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, cr := range sets {
		status, err := fetchCapabilities(ctx, client, p, &oauth2.Token{AccessToken: cr.Secret, TokenType: provider.KeyTokenType})
		if err == nil && status == http.StatusOK {
			continue
		}
		fmt.Fprintln(c.errOut, "failed.")
		switch {
		case err != nil:
			return fmt.Errorf("could not check set %d with %s: it could not be reached. Nothing was saved.\n"+
				"Try again shortly, or pass --no-check to save without checking (offline, say)", i+1, p.Title)
		case status == http.StatusUnauthorized || status == http.StatusForbidden || status == p.NotLicensed && p.NotLicensed != 0:
			return fmt.Errorf("%s refused the key of set %d (HTTP %d): it is wrong, revoked or expired. Nothing was saved.\n"+
				"Check it with whoever issued it (a key typed at the prompt is not shown: type it again), "+
				"and run the command again; --no-check saves without asking %s", p.Title, i+1, status, p.Title)
		default:
			return fmt.Errorf("could not check set %d with %s: it answered HTTP %d. Nothing was saved.\n"+
				"Try again shortly, or pass --no-check to save without checking", i+1, p.Title, status)
		}
	}
	fmt.Fprintln(c.errOut, "accepted.")
	return nil
}

// checkLogins gets a token once with each set (a username and
// password, or a client id and secret), as the proxy will: a refused one
// saves nothing.
func (c *cli) checkLogins(ctx context.Context, p *provider.Profile, sets []credential.Credential) error {
	host, _ := p.Host(p.TokenEndpoint.Role)
	what, secret := "login", "the username and password"
	if sets[0].Client {
		what, secret = "client", "the client id and secret"
	}
	fmt.Fprintf(c.errOut, "Checking %s with %s (%s)… ", plural(len(sets), what), p.Title, host.Base)
	client := &http.Client{Timeout: checkTimeout}
	for i, cr := range sets {
		if _, err := token.Grant(ctx, p, cr, client, c.now, nil).Token(); err != nil {
			fmt.Fprintln(c.errOut, "failed.")
			if errors.Is(err, token.ErrRefused) {
				return fmt.Errorf("%s refused %s of set %d. Nothing was saved.\n"+
					"Check them (a secret typed at the prompt is not shown: type it again), and run the command again; --no-check saves without asking %s", p.Title, secret, i+1, p.Title)
			}
			return fmt.Errorf("could not check set %d with %s: %s. Nothing was saved.\n"+
				"Try again shortly, or pass --no-check to save without checking", i+1, p.Title, checkProblem(err))
		}
	}
	fmt.Fprintln(c.errOut, "accepted.")
	return nil
}

// fetchCapabilities GETs p's capabilities with key placed, and returns
// the status. Its errors carry no URL (which may hold the key).
func fetchCapabilities(ctx context.Context, client *http.Client, p *provider.Profile, key *oauth2.Token) (int, error) {
	host, _ := p.Host(p.WMTS.Role)
	u, err := url.Parse(host.Base + p.WMTS.Path)
	if err != nil {
		return 0, errors.New("bad capabilities URL")
	}
	u.RawQuery = p.WMTS.Query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "", nil)
	if err != nil {
		return 0, errors.New("bad request")
	}
	p.Apply(u, req.Header, key)
	req.URL, req.Host = u, u.Host
	resp, err := client.Do(req)
	if err != nil {
		return 0, errors.New("unreachable")
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// warnShared warns, on stderr, when a set of record r (of key, "" for a
// new one) is an upstream credential that keys of other organisations
// among entries hold too, for a provider whose terms license per
// organisation: one credential shared between organisations is likely a
// breach of them.
func (c *cli) warnShared(entries []keys.Entry, key string, r keys.Record) {
	if r.Provider == "" {
		return
	}
	cat, err := c.catalog()
	p := cat.Get(r.Provider)
	if err != nil || p == nil || p.Licence == "" {
		return
	}
	mine := map[string]bool{}
	for _, s := range r.Sets {
		mine[s.Key()] = true
	}
	var orgs []string
	for _, e := range entries {
		if e.Key == key || e.Record.Provider != r.Provider || strings.EqualFold(e.Record.Org, r.Org) || slices.Contains(orgs, e.Record.Org) {
			continue
		}
		for _, s := range e.Record.Sets {
			if mine[s.Key()] {
				orgs = append(orgs, e.Record.Org)
				break
			}
		}
	}
	if len(orgs) > 0 {
		who := "this key"
		if key != "" {
			who = "key " + prefix(key) + " (" + printable(r.Org) + ")"
		}
		fmt.Fprintf(c.errOut, "warning: the %s credential behind %s is also behind keys of %s. %s: one credential shared between organisations is likely a breach of its terms; give each organisation its own.\n",
			p.Title, who, strings.Join(mapPrintable(orgs), ", "), p.Licence)
	}
}

func mapPrintable(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = printable(s)
	}
	return out
}
