// Package keyadmin is the administration CLI for API keys, the subcommands
// of `handler keys`: create a key, list and show keys, revoke and enable
// them, change their settings, and rotate a Hexagon credential in every
// key that uses it. It works on the same stores the server reads (Key
// Vault with the admin's own Azure login, or a KEYS_FILE) through
// keys.Store, so nothing but the handler binary is needed.
//
// Security contract:
//   - Hexagon client secrets are read only from a prompt without echo or
//     from stdin, never from a flag or an argument, which shell history
//     and process listings keep.
//   - Output never carries a client id or secret, and a key only where
//     the admin named or created it (new, show); list shows key prefixes.
//   - Errors carry neither secrets nor whole keys: unknown keys are named
//     by their prefix.
package keyadmin

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/hexprox/hexprox/internal/config"
	"github.com/hexprox/hexprox/internal/keys"
	"github.com/hexprox/hexprox/internal/provider"
)

// Env is what Run reads and writes. The zero value of each field has a
// stated default, so tests set only what they need.
type Env struct {
	// Stdin supplies client secrets (one per line) when it is not a
	// terminal, and client ids asked for. nil means no input.
	Stdin io.Reader
	// Stdout receives results (tables, keys, URLs); Stderr prompts,
	// warnings and progress. nil means io.Discard.
	Stdout, Stderr io.Writer
	// Keys resolves the server's key-store settings (config.LoadKeys), read
	// only when no --vault or --file says otherwise; nil means no store is
	// configured.
	Keys func() (config.Keys, error)
	// PublicBaseURL is the proxy's address for the URLs printed
	// (PUBLIC_BASE_URL); "" means http://localhost:8080.
	PublicBaseURL string
	// HexagonURL is Hexagon's base URL (HEXAGON_URL), whose token
	// endpoint new credential sets are checked with before they are
	// saved; "" means config.DefaultHexagonURL, as for the server.
	HexagonURL string
	// Providers resolves the profiles a key may name beside Hexagon
	// (config.LoadProviders: PROVIDER_{NAME}_{ROLE}_URL, PROVIDERS_FILE):
	// where another provider's credential is checked before it is saved.
	// nil means the built-in profiles on their own hosts.
	Providers func() (provider.Catalog, error)
	// HashKey keys key fingerprints (TOKEN_HASH_KEY): the CLI shows and
	// accepts the fingerprints the server logs and counts usage under
	// when it is the server's.
	HashKey string
	// ReadSecret reads one secret without echoing it, after showing
	// prompt. nil means: read a line from Stdin when Stdin is not a
	// terminal, and refuse when it is one (this build has no way to turn
	// echo off; see ErrEcho). Surrounding spaces are trimmed from what
	// it returns.
	ReadSecret func(prompt string) (string, error)
	// Open returns the store that the settings name; nil means
	// keystore.Open, as the server opens it.
	// Tests use it to reach the fake Key Vault.
	Open func(ctx context.Context, s Settings) (keys.Store, error)
	// Now is the clock for relative expiry times ("90d") and statuses;
	// nil means time.Now.
	Now func() time.Time
}

// OSEnv is the process's own standard streams, with the settings given.
// On a terminal, secrets are read at a prompt with echo turned off;
// piped, one line each from stdin. getenv supplies PUBLIC_BASE_URL,
// HEXAGON_URL and TOKEN_HASH_KEY, the server's own settings.
func OSEnv(keys func() (config.Keys, error), getenv func(string) string) Env {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) } // as config reads settings
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Keys: keys,
		PublicBaseURL: get("PUBLIC_BASE_URL"), HexagonURL: get("HEXAGON_URL"), HashKey: get("TOKEN_HASH_KEY"),
		Providers: func() (provider.Catalog, error) { return config.LoadProviders(getenv) }}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		env.ReadSecret = func(prompt string) (string, error) {
			fmt.Fprint(os.Stderr, prompt)
			b, err := term.ReadPassword(fd)
			fmt.Fprintln(os.Stderr)
			return string(b), err
		}
	}
	return env
}

// ErrUsage is wrapped by the errors of malformed command lines; their
// text says what is wrong and shows the subcommand's usage.
var ErrUsage = errors.New("usage")

// ErrEcho is returned when a secret would have to be typed on a terminal
// that this build cannot stop from echoing it.
var ErrEcho = errors.New("refusing to read a client secret from the terminal, which would show it: " +
	"pipe it on stdin instead, one line per credential set, e.g.\n" +
	"  read -rs SECRET && printf '%s\\n' \"$SECRET\" | handler keys ...")

// Run runs one `handler keys` subcommand; args are the arguments after
// "keys". It returns nil on success and an error to print otherwise
// (exit codes are the caller's). ctx bounds every store call. Run is
// safe to call concurrently with distinct Envs.
func Run(ctx context.Context, args []string, env Env) error {
	c := newCLI(env)
	// Store flags may come before the subcommand too: keys --file x list.
	global := flag.NewFlagSet("keys", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.storeFlags(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help()
			return nil
		}
		return usageError(err.Error(), usage)
	}
	args = global.Args()
	if len(args) == 0 {
		c.help()
		return fmt.Errorf("%w: no subcommand", ErrUsage)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		if args[0] == "help" {
			c.help()
			return nil
		}
		return usageError(fmt.Sprintf("unknown subcommand %q", args[0]), usage)
	}
	err := cmd.run(ctx, c, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil // the subcommand's usage was printed
	}
	return err
}

// cli is one Run's state.
type cli struct {
	env    Env
	out    io.Writer
	errOut io.Writer
	keys   func() (config.Keys, error)
	now    func() time.Time
	in     *bufio.Reader // over env.Stdin, shared by every read

	vaultFlag string
	fileFlag  string

	// The provider catalog, loaded once a run (catalog): list asks it
	// for every key, and PROVIDERS_FILE is a file to read and parse.
	catOnce sync.Once
	cat     provider.Catalog
	catErr  error
}

func newCLI(env Env) *cli {
	c := &cli{env: env, out: env.Stdout, errOut: env.Stderr, keys: env.Keys, now: env.Now}
	if c.out == nil {
		c.out = io.Discard
	}
	if c.errOut == nil {
		c.errOut = io.Discard
	}
	if c.keys == nil {
		c.keys = func() (config.Keys, error) { return config.Keys{Store: config.KeysNone}, nil }
	}
	if c.now == nil {
		c.now = time.Now
	}
	stdin := env.Stdin
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	c.in = bufio.NewReaderSize(stdin, maxLine)
	return c
}

func (c *cli) storeFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.vaultFlag, "vault", c.vaultFlag, "Key Vault URL (overrides KEY_STORE and KEY_VAULT_URL/KEY_VAULT_NAME)")
	fs.StringVar(&c.fileFlag, "file", c.fileFlag, "keys file (overrides KEY_STORE and KEYS_FILE)")
}

func (c *cli) help() { io.WriteString(c.out, usage) }

type command struct {
	usage string
	run   func(ctx context.Context, c *cli, args []string) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"new":                {usageNew, runNew},
		"list":               {usageList, runList},
		"show":               {usageShow, runShow},
		"revoke":             {usageRevoke, runRevoke},
		"enable":             {usageEnable, runEnable},
		"set":                {usageSet, runSet},
		"replace-credential": {usageReplace, runReplace},
		"rotate":             {usageRotate, runRotate},
	}
}

// parseFlags parses args with fs, allowing positional arguments between
// flags (keys set KEY --expires 2030-01-01), and returns the positional
// ones. -h prints the usage and returns flag.ErrHelp.
func (c *cli) parseFlags(fs *flag.FlagSet, text string, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	c.storeFlags(fs)
	for _, a := range args {
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		if strings.HasPrefix(a, "-") && (name == "client-secret" || name == "secret" || name == "new-client-secret") {
			return nil, usageError("client secrets are never taken as flags (shell history keeps them): "+
				"they are read from a prompt, or from stdin one per line", text)
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				io.WriteString(c.out, text)
				return nil, flag.ErrHelp
			}
			return nil, usageError(err.Error(), text)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usageError(problem, text string) error {
	return fmt.Errorf("%w: %s\n\n%s", ErrUsage, problem, strings.TrimRight(text, "\n"))
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// setFlags reports which flags of fs were given.
func setFlags(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}
