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
)

// profile returns the built-in profile name, with its hosts as the
// server's settings (PROVIDER_{NAME}_{ROLE}_URL) say.
func (c *cli) profile(name string) (*provider.Profile, error) {
	var hosts map[string]map[string]string
	if c.env.ProviderHosts != nil {
		var err error
		if hosts, err = c.env.ProviderHosts(); err != nil {
			return nil, fmt.Errorf("invalid settings: %w", err)
		}
	}
	return provider.Builtin(name, hosts[name])
}

// checkKeys asks the provider, once per key, for its capabilities with
// the key placed as the proxy will place it: a refused key saves
// nothing, named by its set's number (never by a value).
func (c *cli) checkKeys(ctx context.Context, p *provider.Profile, sets []credential.Credential) error {
	if p.Login != nil {
		return c.checkLogins(ctx, p, sets)
	}
	host, _ := p.Host(p.WMTS.Role)
	fmt.Fprintf(c.errOut, "Checking %s with %s (%s)… ", plural(len(sets), "key"), p.Title, host.Base)
	client := &http.Client{Timeout: checkTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, cr := range sets {
		status, err := fetchCapabilities(ctx, client, p, cr.Secret)
		switch {
		case err != nil:
			fmt.Fprintln(c.errOut, "failed.")
			return fmt.Errorf("could not check set %d with %s: it could not be reached. Nothing was saved.\n"+
				"Try again shortly, or pass --no-check to save without checking (offline, say)", i+1, p.Title)
		case status == http.StatusUnauthorized || status == http.StatusForbidden || status == p.NotLicensed && p.NotLicensed != 0:
			fmt.Fprintln(c.errOut, "failed.")
			return fmt.Errorf("%s refused the key of set %d (HTTP %d): it is wrong, revoked or expired. Nothing was saved.\n"+
				"Check it with whoever issued it (a key typed at the prompt is not shown: type it again), "+
				"and run the command again; --no-check saves without asking %s", p.Title, i+1, status, p.Title)
		case status != http.StatusOK:
			fmt.Fprintln(c.errOut, "failed.")
			return fmt.Errorf("could not check set %d with %s: it answered HTTP %d. Nothing was saved.\n"+
				"Try again shortly, or pass --no-check to save without checking", i+1, p.Title, status)
		}
	}
	fmt.Fprintln(c.errOut, "accepted.")
	return nil
}

// checkLogins logs in once with each set's username and password, as
// the proxy will: a refused one saves nothing.
func (c *cli) checkLogins(ctx context.Context, p *provider.Profile, sets []credential.Credential) error {
	host, _ := p.Host(p.Login.Role)
	login := &token.Login{URL: host.Base + p.Login.Path, Name: p.Title, Client: &http.Client{Timeout: checkTimeout}}
	fmt.Fprintf(c.errOut, "Checking %s with %s (%s)… ", plural(len(sets), "login"), p.Title, host.Base)
	for i, cr := range sets {
		if _, err := login.Source(ctx, cr).Token(); err != nil {
			fmt.Fprintln(c.errOut, "failed.")
			if errors.Is(err, token.ErrRefused) {
				return fmt.Errorf("%s refused the username and password of set %d. Nothing was saved.\n"+
					"Check them (a password typed at the prompt is not shown: type it again), and run the command again; --no-check saves without asking %s", p.Title, i+1, p.Title)
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
func fetchCapabilities(ctx context.Context, client *http.Client, p *provider.Profile, key string) (int, error) {
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
	p, err := provider.Builtin(r.Provider, nil)
	if err != nil || p.Licence == "" {
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
