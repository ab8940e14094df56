package keyadmin

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/origin"
)

// prefixLen is how much of a key list and errors show: "hxpk-" and five
// random characters (about 30 bits: enough to tell keys apart, far too
// little to use one).
const prefixLen = 10

// prefix returns the start of key, followed by "…": at most prefixLen
// characters and never more than half the key, so that no output names a
// whole key.
func prefix(key string) string {
	n := min(prefixLen, len(key)/2)
	return key[:n] + "…"
}

// defaultBaseURL is the proxy's address when neither --base-url nor
// PUBLIC_BASE_URL says.
const defaultBaseURL = "http://localhost:8080"

// baseURL returns the proxy's address for printed URLs, without a
// trailing slash.
func (c *cli) baseURL(flagValue string) (string, error) {
	v, from := flagValue, "--base-url"
	if v == "" {
		v, from = c.env.PublicBaseURL, "PUBLIC_BASE_URL"
	}
	if v == "" {
		return defaultBaseURL, nil
	}
	u, err := config.BaseURL(strings.TrimSpace(v)) // as the server reads it
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrUsage, from, err)
	}
	return u, nil
}

// parseWhen reads a time given on the command line: an RFC 3339 time, a
// date (the start of that day, UTC), or a duration from now: "90d" (days)
// or a Go duration such as "720h". Times are truncated to whole seconds,
// as Key Vault keeps them.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 && n < 100*366 {
			return now.UTC().Add(time.Duration(n) * 24 * time.Hour).Truncate(time.Second), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.UTC().Add(d).Truncate(time.Second), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use a date (2026-12-31), an RFC 3339 time (2026-12-31T17:00:00Z) or a duration from now (90d, 720h)", s)
}

// checkOrigin refuses what the server's ALLOWED_ORIGINS parser would.
func checkOrigin(o string) error {
	if o == "" || strings.ContainsAny(o, ", \t") {
		return fmt.Errorf("origin %q: one origin per --origin, without spaces or commas", o)
	}
	if _, err := origin.Parse(o); err != nil {
		return fmt.Errorf("origin %q is not scheme://host[:port] (the host may start with '*.')", o)
	}
	return nil
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// maxLine bounds a line read from stdin (a client id or secret).
const maxLine = 4096

// readLine reads one line from stdin, without its line ending and
// surrounding spaces. what names it in errors ("the client secret of set
// 1"); the line itself is never quoted.
func (c *cli) readLine(what string) (string, error) {
	line, err := c.in.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("%s: the line on stdin is longer than %d bytes", what, maxLine)
	case err != nil && len(line) == 0:
		return "", fmt.Errorf("stdin ended before %s", what)
	}
	v := strings.TrimSpace(string(line))
	if v == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	return v, nil
}

// isTerminal reports whether r is a terminal (or another character
// device: /dev/null counts, and is refused as a secret source too).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// readSecret reads one client secret: with Env.ReadSecret when set,
// otherwise a line from a non-terminal stdin (ErrEcho for a terminal).
func (c *cli) readSecret(what string) (string, error) {
	if c.env.ReadSecret != nil {
		v, err := c.env.ReadSecret(capitalise(what) + ": ")
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", what, err)
		}
		if v = strings.TrimSpace(v); v == "" {
			return "", fmt.Errorf("%s is empty", what)
		}
		return v, nil
	}
	if isTerminal(c.env.Stdin) {
		return "", ErrEcho
	}
	return c.readLine(what)
}

// readVisible reads a value that may be echoed (a client id), with a
// prompt on stderr when stdin is a terminal.
func (c *cli) readVisible(what string) (string, error) {
	if isTerminal(c.env.Stdin) {
		fmt.Fprintf(c.errOut, "%s: ", capitalise(what))
	}
	return c.readLine(what)
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
