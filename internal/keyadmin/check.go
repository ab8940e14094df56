package keyadmin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/credential"
	"github.com/hexprox/hexprox/internal/failure"
	"github.com/hexprox/hexprox/internal/token"
	"github.com/hexprox/hexprox/internal/upstream"
)

// checkTimeout bounds each token request of a check.
const checkTimeout = 30 * time.Second

// hexagonURL returns Hexagon's base URL (Env.HexagonURL, HEXAGON_URL), as
// the server resolves it.
func (c *cli) hexagonURL() (string, error) {
	v := strings.TrimSpace(c.env.HexagonURL)
	if v == "" {
		return config.DefaultHexagonURL, nil
	}
	u, err := config.BaseURL(v)
	if err != nil {
		return "", fmt.Errorf("%w: HEXAGON_URL: %v", ErrUsage, err)
	}
	return u, nil
}

// checkSets asks Hexagon's token endpoint, once per set, whether it
// accepts the sets. It returns nil when every set is accepted, and
// otherwise an error that names the set as name does (by number: output
// never carries a client id) and says what to do. Nothing is retried: a
// check must not lock an account.
func (c *cli) checkSets(ctx context.Context, sets []credential.Credential, name func(i int) string) error {
	base, err := c.hexagonURL()
	if err != nil {
		return err
	}
	ep := &token.Endpoint{URL: base + upstream.HexagonTokenPath, Client: &http.Client{Timeout: checkTimeout}}
	fmt.Fprintf(c.errOut, "Checking %s with Hexagon (%s)… ", plural(len(sets), "credential set"), base)
	for i, cr := range sets {
		if _, err := ep.Source(ctx, cr).Token(); err != nil {
			fmt.Fprintln(c.errOut, "failed.")
			if errors.Is(err, token.ErrRefused) {
				return fmt.Errorf("Hexagon refused %s: the client id or secret is wrong, or the client is disabled. Nothing was saved.\n"+
					"Check the client id and secret with whoever issued them (a secret typed at the prompt is not shown: type it again), "+
					"and run the command again; --no-check saves without asking Hexagon", name(i))
			}
			return fmt.Errorf("could not check %s with Hexagon: %s. Nothing was saved.\n"+
				"Try again shortly, or pass --no-check to save without checking (offline, say)", name(i), checkProblem(err))
		}
	}
	fmt.Fprintln(c.errOut, "accepted.")
	return nil
}

// setNumber names a new key's sets as its prompts do: "set 1", "set 2"….
func setNumber(i int) string { return fmt.Sprintf("set %d", i+1) }

// checkProblem is what an admin is told of a failed check: the failure's
// own message, which never carries the secret or the URL with it.
func checkProblem(err error) string {
	var fe *failure.Error
	switch {
	case errors.As(err, &fe) && fe.Message != "":
		return fe.Message
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "the check was cut short"
	}
	return "the token endpoint could not be asked"
}
